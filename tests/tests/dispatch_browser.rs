//! The dispatch board in a real browser: the dispatch server on ephemeral ports, devices
//! over raw TCP with the project's client, and `tests/browser/dispatch.mjs` driving the
//! system Chromium through playwright-core as a child process. An operator's board shows
//! the devices' status, a fault and a silent device's alerts; the operator's click on
//! "Open" reaches that gate alone and the board shows its answer with the round trip; a
//! kiosk's call shows on its area's guide's page only.
//!
//! Chromium and the driver are installed by `.ci/run`; by hand:
//!
//! ```text
//! apt-get install chromium
//! npm ci --prefix tests/browser
//! ```
//!
//! A missing browser or driver fails the test with that instruction; it is never skipped.
//! The board's screenshot is left in the target directory (`dispatch-board.png`).

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Duration;

use dispatch::fleet::FleetKey;
use dispatch::model::{Action, Command};
use dispatch::{Config, Services};
use serde_json::{Value, json};
use stomp_runtime::broker::AckMode;
use stomp_runtime::client::{Client, ConnectOptions, Subscription};
use stomp_runtime::frame::Headers;
use stomp_tests::WAIT;
use stomp_tests::script::{Script, blocking};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHILD_DEADLINE: Duration = Duration::from_secs(90);
const APT_HINT: &str = "run `apt-get update && apt-get install -y chromium` (or `bash .ci/run`)";
const NPM_HINT: &str = "run `npm ci --prefix tests/browser` (or `bash .ci/run`)";

const KEY: &str = "browser-test-fleet-key";
const HEARTBEAT_MS: u64 = 1_000;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

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

fn json_headers() -> Headers {
    let mut h = Headers::new();
    h.push("content-type", "application/json");
    h
}

async fn send(client: &Client, destination: &str, body: Value) {
    client
        .send_receipted(destination, body.to_string(), json_headers())
        .await
        .expect("receipt");
}

async fn next_command(sub: &mut Subscription) -> Command {
    let m = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a command in time")
        .expect("subscription open");
    serde_json::from_slice(m.body()).expect("a command")
}

async fn device(tcp: std::net::SocketAddr, id: &str, heartbeats: bool) -> Client {
    let opts = ConnectOptions::new()
        .login(id)
        .passcode(FleetKey::new(KEY).passcode(id))
        .heartbeat(HEARTBEAT_MS, 0)
        .send_heartbeats(heartbeats);
    Client::connect_tcp(tcp, opts)
        .await
        .expect("a fleet device connects")
}

fn status(state: &str, detail: &str) -> Value {
    json!({ "state": state, "detail": detail, "sent_at": dispatch::model::now_ms() })
}

/// Waits until each guide is on duty (their page's call subscription is in place).
async fn on_duty(services: &Services, guides: &[(&str, &str)]) {
    tokio::time::timeout(WAIT, async {
        loop {
            let summary = services.dispatch.summary((0, 0));
            let all = guides.iter().all(|(guide, area)| {
                summary
                    .areas
                    .iter()
                    .any(|a| a.area == *area && a.guides.iter().any(|g| g == guide))
            });
            if all {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the guides' pages go on duty");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_board_works_in_chromium() {
    require_installed();
    let config = Config {
        fleet_size: 40,
        fleet_key: FleetKey::new(KEY),
        heartbeat_ms: HEARTBEAT_MS,
        ..Config::default()
    };
    let (stomp, services) = dispatch::server(&config).expect("the handlers are consistent");
    let housekeeping = tokio::spawn(dispatch::housekeeping(stomp.clone(), services.clone()));
    let app = dispatch::app(&stomp);
    let server = stomp_tests::start_app(stomp, app).await;
    let tcp = server.tcp_addr;

    let url = format!("http://{}/", server.http_addr);
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dispatch-board.png");
    let shot_arg = shot.clone();
    let script = blocking(move || {
        let mut cmd = Process::new("node");
        cmd.arg(browser_dir().join("dispatch.mjs"))
            .arg(&url)
            .arg(&shot_arg);
        let mut script = Script::spawn("dispatch.mjs", cmd, CHILD_DEADLINE);
        let ready = script.next_json("ready line");
        assert_eq!(ready, json!({"ready": true}), "{}", script.output());
        script
    })
    .await;
    on_duty(&services, &[("gina", "T1-short"), ("gus", "T1-long")]).await;

    // The equipment: two gates listening for commands, a kiosk in each guide's area, and a
    // gate that will hang.
    let gate1 = device(tcp, "gate-0001", true).await;
    let mut gate1_commands = gate1
        .subscribe("/user/queue/commands", AckMode::Auto)
        .await
        .unwrap();
    let gate3 = device(tcp, "gate-0003", true).await;
    let mut gate3_commands = gate3
        .subscribe("/user/queue/commands", AckMode::Auto)
        .await
        .unwrap();
    let kiosk5 = device(tcp, "kiosk-0005", true).await;
    let kiosk15 = device(tcp, "kiosk-0015", true).await;
    let hung = device(tcp, "gate-0002", false).await;

    send(&kiosk5, "/app/device.kiosk-0005.status", status("ok", "")).await;
    send(&gate1, "/app/device.gate-0001.status", status("ok", "")).await;
    send(
        &gate1,
        "/app/device.gate-0001.status",
        status("fault", "barrier jammed"),
    )
    .await;
    send(&hung, "/app/device.gate-0002.status", status("ok", "")).await;
    send(
        &kiosk5,
        "/app/kiosk.kiosk-0005.call",
        json!({ "reason": "lost ticket" }),
    )
    .await;
    send(
        &kiosk15,
        "/app/kiosk.kiosk-0015.call",
        json!({ "reason": "payment problem" }),
    )
    .await;

    // The page's click reaches gate-0001, which answers.
    let command = next_command(&mut gate1_commands).await;
    assert_eq!(
        (command.action, command.issued_by.as_str()),
        (Action::Open, "olivia")
    );
    send(
        &gate1,
        "/app/device.gate-0001.ack",
        json!({ "command": command.id, "ok": true, "detail": "barrier up" }),
    )
    .await;

    let r = blocking(move || script.result()).await;

    // gate-0003 never heard of it: the first command it gets is the one sent to it now.
    let url = format!("ws://{}{}", server.http_addr, dispatch::WS_PATH);
    let oscar = Client::connect_ws(&url, ConnectOptions::new().login("oscar").passcode("racso"))
        .await
        .unwrap();
    send(&oscar, "/app/gate.gate-0003.close", json!({})).await;
    let own = next_command(&mut gate3_commands).await;
    assert_eq!(
        (own.device.as_str(), own.action),
        ("gate-0003", Action::Close)
    );

    assert!(r["browser"].as_str().is_some_and(|v| !v.is_empty()), "{r}");
    assert_eq!(r["loginHidden"], true, "the sign-in form goes away: {r}");
    assert_eq!(r["guideSeesBoard"], false, "{r}");
    assert_eq!(
        r["rows"]["kiosk-0005"],
        json!({"state": "ok", "className": "ok"}),
        "{r}"
    );
    assert_eq!(
        r["rows"]["gate-0001"],
        json!({"state": "fault", "className": "fault"}),
        "{r}"
    );
    assert_eq!(r["rows"]["gate-0002"]["state"], "offline", "{r}");
    assert_eq!(
        r["alerts"]["fault"], "FAULT gate-0001 (T1-short): barrier jammed",
        "{r}"
    );
    let offline = r["alerts"]["offline"].as_str().unwrap_or_default();
    assert!(
        offline.starts_with("OFFLINE gate-0002 (T1-short): connection lost"),
        "{r}"
    );
    let line = r["command"].as_str().unwrap_or_default();
    let prefix = format!("{} open gate-0001 (olivia): done in ", command.id);
    let rest = line
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{line}"));
    let ms: u64 = rest
        .strip_suffix(" ms (barrier up)")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no round trip in {line:?}"));
    assert!(ms < WAIT.as_millis() as u64, "{line}");
    assert_eq!(
        r["calls"]["gina"], "kiosk-0005 (T1-short): lost ticket",
        "{r}"
    );
    assert_eq!(
        r["calls"]["gus"], "kiosk-0015 (T1-long): payment problem",
        "{r}"
    );
    assert_eq!(
        r["calls"]["ginaAll"].as_array().map(Vec::len),
        Some(1),
        "{r}"
    );
    assert_eq!(
        r["calls"]["gusAll"].as_array().map(Vec::len),
        Some(1),
        "{r}"
    );
    assert_eq!(r["problems"], json!([]), "{r}");
    assert!(shot.is_file(), "the screenshot is at {}", shot.display());
    housekeeping.abort();
}
