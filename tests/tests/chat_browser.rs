//! The chat page in a real browser: the chat on ephemeral ports, and
//! `tests/browser/chat.mjs` driving the system Chromium through playwright-core as a child
//! process. Three users log in through the page, talk, whisper and get an error line; then a
//! raw TCP client says something in the lobby and every page shows it, so browsers and other
//! clients share the rooms. Then the same with `window.WebSocket` removed from every page:
//! the page falls back to SockJS (xhr-streaming) on the same endpoint.
//!
//! Chromium and the driver are installed by `.ci/run`; by hand:
//!
//! ```text
//! apt-get install chromium
//! npm ci --prefix tests/browser
//! ```
//!
//! A missing browser or driver fails the test with that instruction; it is never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use stomp_runtime::client::{Client, ConnectOptions};
use stomp_runtime::frame::Headers;
use stomp_tests::script::{Script, blocking};

/// The browser the script launches; playwright-core never downloads one.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Longest the script may run; it gives up by itself after 60 s and says where.
const CHILD_DEADLINE: Duration = Duration::from_secs(90);

const APT_HINT: &str = "run `apt-get update && apt-get install -y chromium` (or `bash .ci/run`)";
const NPM_HINT: &str = "run `npm ci --prefix tests/browser` (or `bash .ci/run`)";

/// What the TCP client says, and every page must show.
const TCP_LINE: &str = "dan: hello from a TCP client";

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Fails, with the install step, when the browser or its driver is missing.
fn require_installed() {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "no Chromium at {CHROMIUM}: {APT_HINT}"
    );
    let driver = browser_dir().join("node_modules/playwright-core/package.json");
    assert!(
        driver.is_file(),
        "playwright-core is not installed in {}: {NPM_HINT}",
        browser_dir().display()
    );
}

/// Starts `chat.mjs` against `base_url`.
fn spawn_script(base_url: &str, websocket: bool) -> Script {
    let mut cmd = Command::new("node");
    cmd.arg(browser_dir().join("chat.mjs"))
        .args([base_url, "--tcp-text", TCP_LINE]);
    if !websocket {
        cmd.arg("--no-websocket");
    }
    Script::spawn("chat.mjs", cmd, CHILD_DEADLINE)
}

/// Sends `body` as JSON and waits until the server has handled it.
async fn send(client: &Client, destination: &str, body: Value) {
    let mut headers = Headers::new();
    headers.push("content-type", "application/json");
    client
        .send_receipted(destination, body.to_string(), headers)
        .await
        .expect("receipt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_works_in_chromium() {
    let r = chat_in_chromium(true).await;
    for user in ["ann", "bob", "cy"] {
        let used = &r["transports"][user];
        assert_eq!(used["windowWebSocket"], "function", "{user}: {r}");
        assert_eq!(used["websocket"], 1, "{user}: {r}");
        assert_eq!(used["xhr_streaming"], 0, "{user}: {r}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_page_falls_back_to_sockjs_without_websocket() {
    let r = chat_in_chromium(false).await;
    for user in ["ann", "bob", "cy"] {
        let used = &r["transports"][user];
        assert_eq!(used["windowWebSocket"], "undefined", "{user}: {r}");
        assert_eq!(used["websocket"], 0, "{user}: {r}");
        assert!(used["xhr_streaming"].as_u64() >= Some(1), "{user}: {r}");
        assert!(used["xhr_send"].as_u64() >= Some(1), "{user}: {r}");
    }
}

/// Three users in Chromium and one over TCP share the lobby; returns the script's result,
/// its checks of the chat done.
async fn chat_in_chromium(websocket: bool) -> Value {
    require_installed();
    let stomp = chat::server().expect("the chat's handlers are consistent");
    let app = chat::app(&stomp);
    let server = stomp_tests::start_app(stomp, app).await;

    let url = format!("http://{}/", server.http_addr);
    let script = blocking(move || {
        let mut script = spawn_script(&url, websocket);
        let ready = script.next_json("ready line");
        assert_eq!(ready, json!({"ready": true}), "{}", script.output());
        script
    })
    .await;

    // The pages are in the lobby and wait for the TCP client's line.
    let dan = Client::connect_tcp(server.tcp_addr, ConnectOptions::new().login("dan"))
        .await
        .expect("a valid name connects over TCP");
    send(&dan, "/app/chat.join.lobby", json!({})).await;
    let text = TCP_LINE.strip_prefix("dan: ").expect("the line is dan's");
    send(&dan, "/app/chat.send.lobby", json!({ "text": text })).await;

    let r = blocking(move || script.result()).await;

    assert!(r["browser"].as_str().is_some_and(|v| !v.is_empty()), "{r}");
    assert_eq!(r["members"], json!(["ann", "bob", "cy"]), "{r}");
    for user in ["ann", "bob", "cy"] {
        assert_eq!(r["said"][user]["count"], 1, "{user}: {r}");
        assert_eq!(r["tcp"][user]["count"], 1, "{user}: {r}");
    }
    assert_eq!(r["whisper"]["to"], "bob", "{r}");
    assert_eq!(r["whisper"]["bob"]["className"], "whisper", "{r}");
    assert_eq!(r["whisper"]["ann"]["className"], "whisper", "{r}");
    assert_eq!(r["whisper"]["cy"], 0, "{r}");
    assert_eq!(r["error"], "the message is empty", "{r}");
    assert_eq!(r["othersError"], json!([false, false]), "{r}");
    assert_eq!(
        r["tcp"]["members"],
        json!(["ann", "bob", "cy", "dan"]),
        "{r}"
    );
    assert_eq!(
        r["lines"]["bob"],
        json!([
            "bob joined",
            "cy joined",
            "ann: hello from ann",
            "ann → bob (whisper): psst, bob",
            "ann: after the whisper",
            "dan joined",
            TCP_LINE,
        ]),
        "{r}"
    );
    assert_eq!(r["problems"], json!([]), "{r}");
    r
}
