//! Interop with STOMP clients we did not write, run as child processes against a real
//! server: `@stomp/stompjs` over WebSocket (Node, `tests/interop/stompjs_ws.mjs`) and
//! `stomp.py` over raw TCP (Python, `tests/interop/stomppy_tcp.py`), each alone and talking
//! to each other through one server, and through two servers relaying to RabbitMQ; and
//! `@stomp/stompjs` carried by `sockjs-client` (`tests/interop/stompjs_sockjs.mjs`), forced
//! onto each of its transports, against the endpoint the `broker` example serves
//! (`StompServer::sockjs`).
//!
//! The clients are installed by `.ci/run`; by hand:
//!
//! ```text
//! npm ci --prefix tests/interop
//! python3 -m pip install -r tests/interop/requirements.txt
//! ```
//!
//! A missing client fails the test with that instruction; it is never skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use stomp_runtime::StompServer;
use stomp_tests::relay::{self, node};
use stomp_tests::script::{Script, blocking};
use stomp_tests::{TestServer, start_app, start_default};

/// Longest a client script may run; each script also has its own 30 s limit and reports it.
const CHILD_DEADLINE: Duration = Duration::from_secs(60);

const NPM_HINT: &str = "run `npm ci --prefix tests/interop` (or `bash .ci/run`)";
const PIP_HINT: &str =
    "run `python3 -m pip install -r tests/interop/requirements.txt` (or `bash .ci/run`)";

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop")
}

/// One run of a client script.
enum Client {
    StompJs { ws_url: String },
    StompPy { host: String, port: u16 },
}

impl Client {
    fn stompjs(server: &TestServer) -> Self {
        Client::StompJs {
            ws_url: server.ws_url.clone(),
        }
    }

    fn stomppy(server: &TestServer) -> Self {
        Client::StompPy {
            host: server.tcp_addr.ip().to_string(),
            port: server.tcp_addr.port(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Client::StompJs { .. } => "stompjs_ws.mjs",
            Client::StompPy { .. } => "stomppy_tcp.py",
        }
    }

    /// Fails, with the install step, when the client's packages are not installed.
    fn require_installed(&self) {
        let dir = interop_dir();
        match self {
            Client::StompJs { .. } => {
                for package in ["@stomp/stompjs", "ws"] {
                    let manifest = dir.join("node_modules").join(package).join("package.json");
                    assert!(
                        manifest.is_file(),
                        "the Node package `{package}` is not installed in {}: {NPM_HINT}",
                        dir.display()
                    );
                }
            }
            Client::StompPy { .. } => {
                let probe = Command::new("python3")
                    .args(["-c", "import stomp"])
                    .output()
                    .unwrap_or_else(|e| panic!("cannot run `python3` ({e}); {PIP_HINT}"));
                assert!(
                    probe.status.success(),
                    "python3 cannot import stomp.py ({}): {PIP_HINT}",
                    String::from_utf8_lossy(&probe.stderr)
                        .lines()
                        .last()
                        .unwrap_or_default()
                );
            }
        }
    }

    fn command(&self, mode_args: &[&str]) -> Command {
        self.require_installed();
        let script = interop_dir().join(self.name());
        let mut cmd = match self {
            Client::StompJs { ws_url } => {
                let mut c = Command::new("node");
                c.arg(script).arg(ws_url);
                c
            }
            Client::StompPy { host, port } => {
                let mut c = Command::new("python3");
                c.arg(script).arg(host).arg(port.to_string());
                c.env("PYTHONUNBUFFERED", "1")
                    .env("PYTHONDONTWRITEBYTECODE", "1");
                c
            }
        };
        cmd.args(mode_args);
        cmd
    }

    fn spawn(&self, mode_args: &[&str]) -> Script {
        Script::spawn(self.name(), self.command(mode_args), CHILD_DEADLINE)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stompjs_over_websocket() {
    let server = start_default().await;
    let client = Client::stompjs(&server);
    let r = blocking(move || client.spawn(&[]).result()).await;
    assert_eq!(r["version"], "1.2", "{r}");
    assert_eq!(r["connectedVersion"], "1.2", "{r}");
    assert_eq!(r["ack"], true, "{r}");
    assert_eq!(r["topic"], true, "{r}");
    assert_eq!(r["binary"]["bytes"], 7, "{r}");
    assert_eq!(r["binary"]["content_length"], "7", "{r}");
    assert_eq!(r["queue_backlog"], true, "{r}");
    assert_eq!(r["disconnect_receipt"], true, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stompjs_oversized_send_gets_an_error_with_its_receipt_then_close_1009() {
    let server = start_default().await;
    let client = Client::stompjs(&server);
    // 1 MiB against the default 64 KiB frame limit, in one WebSocket message.
    let r = blocking(move || {
        client
            .spawn(&["--mode", "oversized", "--count", "1048576"])
            .result()
    })
    .await;
    assert_eq!(r["error_message"], "frame too large", "{r}");
    assert_eq!(r["receipt_id"], "too-big", "{r}");
    assert_eq!(r["close_code"], 1009, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomppy_over_tcp() {
    let server = start_default().await;
    let client = Client::stomppy(&server);
    let r = blocking(move || client.spawn(&[]).result()).await;
    assert_eq!(r["version"], "1.2", "{r}");
    assert_eq!(r["ack"], true, "{r}");
    assert_eq!(r["nack_redelivered"]["same_message_id"], true, "{r}");
    assert_eq!(r["topic"], true, "{r}");
    assert_eq!(
        r["transaction"]["committed"],
        json!(["tx 1", "tx 2"]),
        "{r}"
    );
    assert_eq!(r["transaction"]["aborted_dropped"], true, "{r}");
    assert_eq!(r["disconnect_receipt"], true, "{r}");
}

/// `listener` subscribes (and says so), then `publisher` sends through the same server, or
/// through another one relaying to the same broker.
async fn peer_exchange(listener: Client, publisher: Client, tag: &str) {
    const COUNT: usize = 3;
    // Unique, since a relay's broker outlives the run.
    let tag = stomp_tests::relay::unique(tag);
    let topic = format!("/topic/interop-peer-{tag}");
    let queue = format!("/queue/interop-peer-{tag}");
    let (received, sent) = blocking(move || {
        let count = COUNT.to_string();
        let args = [
            "--topic",
            topic.as_str(),
            "--queue",
            queue.as_str(),
            "--count",
            count.as_str(),
        ];
        let mut listening = listener.spawn(&[&["--mode", "listen"][..], &args[..]].concat());
        let ready = listening.next_json("ready line");
        assert_eq!(ready, json!({"ready": true}));
        let sent = publisher
            .spawn(&[&["--mode", "publish"][..], &args[..]].concat())
            .result();
        (listening.result(), sent)
    })
    .await;
    assert_eq!(sent["sent"], 2 * COUNT, "{sent}");
    let want = |kind: &str| -> Value { (0..COUNT).map(|i| format!("{kind} {i} ✓")).collect() };
    assert_eq!(received["received"]["topic"], want("topic"), "{received}");
    assert_eq!(received["received"]["queue"], want("queue"), "{received}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stompjs_publishes_over_websocket_to_stomppy_over_tcp() {
    let server = start_default().await;
    peer_exchange(
        Client::stomppy(&server),
        Client::stompjs(&server),
        "js-to-py",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomppy_publishes_over_tcp_to_stompjs_over_websocket() {
    let server = start_default().await;
    peer_exchange(
        Client::stompjs(&server),
        Client::stomppy(&server),
        "py-to-js",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stompjs_on_one_relaying_node_reaches_stomppy_on_another() {
    let (a, b) = (node(relay::config()).await, node(relay::config()).await);
    peer_exchange(Client::stomppy(&b), Client::stompjs(&a), "relay-js-to-py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stomppy_on_one_relaying_node_reaches_stompjs_on_another() {
    let (a, b) = (node(relay::config()).await, node(relay::config()).await);
    peer_exchange(Client::stompjs(&b), Client::stomppy(&a), "relay-py-to-js").await;
}

/// `stompjs_sockjs.mjs` forced onto `transport`, against the endpoint the `broker` example
/// mounts: `stomp.sockjs(path)` on a server with the default configuration.
async fn stompjs_over_sockjs(transport: &'static str) {
    let dir = interop_dir();
    for package in ["@stomp/stompjs", "sockjs-client"] {
        let manifest = dir.join("node_modules").join(package).join("package.json");
        assert!(
            manifest.is_file(),
            "the Node package `{package}` is not installed in {}: {NPM_HINT}",
            dir.display()
        );
    }
    let stomp = StompServer::builder()
        .build()
        .expect("default config is valid");
    let endpoint = stomp.sockjs("/ws");
    let server = start_app(stomp, endpoint).await;
    let url = format!("http://{}/ws", server.http_addr);
    let r = blocking(move || {
        let mut cmd = Command::new("node");
        cmd.arg(dir.join("stompjs_sockjs.mjs"))
            .arg(url)
            .args(["--transport", transport]);
        Script::spawn("stompjs_sockjs.mjs", cmd, CHILD_DEADLINE).result()
    })
    .await;
    assert_eq!(r["used"], transport, "{r}");
    assert_eq!(r["version"], "1.2", "{r}");
    assert_eq!(r["ack"], true, "{r}");
    assert_eq!(r["topic"], 3, "{r}");
    assert_eq!(r["disconnect_receipt"], true, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stompjs_over_sockjs_websocket() {
    stompjs_over_sockjs("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stompjs_over_sockjs_xhr_streaming() {
    stompjs_over_sockjs("xhr-streaming").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stompjs_over_sockjs_xhr_polling() {
    stompjs_over_sockjs("xhr-polling").await;
}
