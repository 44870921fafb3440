//! The dispatch example end to end over the wire: its server on ephemeral ports, devices
//! over raw TCP and an operator board over WebSocket, all with the project's client. Status
//! and faults reach the board, a silent device raises an alert, a command reaches one device
//! only and its answer comes back, a kiosk's call reaches only its area's guide, payments
//! are audited, and the guard and the roles refuse what they must.
//! (`dispatch_browser.rs` drives the board page itself in Chromium.)

use dispatch::fleet::FleetKey;
use dispatch::model::{
    Alert, AlertKind, Call, Command, CommandEvent, CommandStatus, DeviceView, State,
};
use dispatch::{Config, Services};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use stomp_runtime::broker::AckMode;
use stomp_runtime::client::{Client, ClientError, ConnectOptions, Message, Subscription};
use stomp_runtime::frame::Headers;
use stomp_tests::{TestServer, WAIT};

const KEY: &str = "test-fleet-key";
/// The heart-beat the server wants from devices: a silent one is dropped after 1.5 s.
const HEARTBEAT_MS: u64 = 1_000;

/// The dispatch server, with its housekeeping task, on ephemeral ports.
struct Dispatch {
    server: TestServer,
    services: Services,
    housekeeping: tokio::task::JoinHandle<()>,
}

impl Drop for Dispatch {
    fn drop(&mut self) {
        self.housekeeping.abort();
    }
}

async fn start() -> Dispatch {
    let config = Config {
        fleet_size: 40,
        fleet_key: FleetKey::new(KEY),
        heartbeat_ms: HEARTBEAT_MS,
        ..Config::default()
    };
    let (stomp, services) = dispatch::server(&config).expect("the handlers are consistent");
    let housekeeping = tokio::spawn(dispatch::housekeeping(stomp.clone(), services.clone()));
    let app = dispatch::app(&stomp);
    Dispatch {
        server: stomp_tests::start_app(stomp, app).await,
        services,
        housekeeping,
    }
}

impl Dispatch {
    /// A device over TCP, with its fleet passcode, reporting as its heart-beat.
    async fn device(&self, id: &str) -> Client {
        let opts = ConnectOptions::new()
            .login(id)
            .passcode(FleetKey::new(KEY).passcode(id))
            .heartbeat(HEARTBEAT_MS, 0);
        Client::connect_tcp(self.server.tcp_addr, opts)
            .await
            .expect("a fleet device connects")
    }

    /// A person over WebSocket, as the board page connects.
    async fn person(&self, login: &str, password: &str) -> Client {
        let url = format!("ws://{}{}", self.server.http_addr, dispatch::WS_PATH);
        Client::connect_ws(&url, ConnectOptions::new().login(login).passcode(password))
            .await
            .expect("a staff member connects")
    }

    /// Waits until `guide` is on duty in `area` (their call subscription is in place).
    async fn on_duty(&self, guide: &str, area: &str) {
        tokio::time::timeout(WAIT, async {
            loop {
                let summary = self.services.dispatch.summary((0, 0));
                let a = summary.areas.iter().find(|a| a.area == area).expect("area");
                if a.guides.iter().any(|g| g == guide) {
                    return;
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the guide goes on duty");
    }
}

fn json_headers() -> Headers {
    let mut h = Headers::new();
    h.push("content-type", "application/json");
    h
}

/// Sends `body` as JSON and waits until the server has handled it.
async fn send(client: &Client, destination: &str, body: impl Serialize) {
    client
        .send_receipted(
            destination,
            serde_json::to_vec(&body).unwrap(),
            json_headers(),
        )
        .await
        .expect("receipt");
}

async fn next(sub: &mut Subscription) -> Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message in time")
        .expect("subscription open")
}

async fn next_as<T: DeserializeOwned>(sub: &mut Subscription) -> T {
    let m = next(sub).await;
    serde_json::from_slice(m.body())
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(m.body())))
}

/// The next message of `sub` that `keep` accepts, skipping the others.
async fn next_where<T: DeserializeOwned>(sub: &mut Subscription, keep: impl Fn(&T) -> bool) -> T {
    loop {
        let value: T = next_as(sub).await;
        if keep(&value) {
            return value;
        }
    }
}

async fn error(sub: &mut Subscription) -> String {
    let v: Value = next_as(sub).await;
    v["error"].as_str().unwrap_or_default().to_owned()
}

fn status(state: &str, detail: &str) -> Value {
    json!({ "state": state, "detail": detail, "sent_at": dispatch::model::now_ms() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_faults_silence_commands_calls_and_payments() {
    let d = start().await;
    let board = d.person("olivia", "aivilo").await;
    let mut alerts = board
        .subscribe("/topic/alerts", AckMode::Auto)
        .await
        .unwrap();
    let mut devices = board
        .subscribe("/topic/board.devices", AckMode::Auto)
        .await
        .unwrap();
    let mut commands = board
        .subscribe("/topic/board.commands", AckMode::Auto)
        .await
        .unwrap();
    let mut board_errors = board
        .subscribe("/user/queue/errors", AckMode::Auto)
        .await
        .unwrap();

    // Status reaches the board.
    let gate1 = d.device("gate-0001").await;
    let mut gate1_commands = gate1
        .subscribe("/user/queue/commands", AckMode::Auto)
        .await
        .unwrap();
    let mut gate1_errors = gate1
        .subscribe("/user/queue/errors", AckMode::Auto)
        .await
        .unwrap();
    send(&gate1, "/app/device.gate-0001.status", status("ok", "")).await;
    let view: DeviceView = next_as(&mut devices).await;
    assert_eq!(
        (view.id.as_str(), view.state, view.area.as_str()),
        ("gate-0001", State::Ok, "T1-short")
    );
    // An unchanged state is not broadcast again: the next change is the fault.
    send(&gate1, "/app/device.gate-0001.status", status("ok", "")).await;

    // A fault raises an alert, and clearing it clears the alert.
    send(
        &gate1,
        "/app/device.gate-0001.status",
        status("fault", "barrier jammed"),
    )
    .await;
    let view: DeviceView = next_as(&mut devices).await;
    assert_eq!((view.id.as_str(), view.state), ("gate-0001", State::Fault));
    let fault: Alert = next_as(&mut alerts).await;
    assert_eq!(
        (
            fault.kind,
            fault.device.as_str(),
            fault.area.as_str(),
            fault.detail.as_str(),
            fault.cleared
        ),
        (
            AlertKind::Fault,
            "gate-0001",
            "T1-short",
            "barrier jammed",
            false
        )
    );
    let overview: Value = {
        let mut once = board
            .subscribe("/app/board.overview", AckMode::Auto)
            .await
            .unwrap();
        next_as(&mut once).await
    };
    assert_eq!(overview["alerts"][0]["id"], json!(fault.id), "{overview}");
    assert_eq!(overview["summary"]["totals"]["fault"], 1, "{overview}");
    send(&gate1, "/app/device.gate-0001.status", status("ok", "")).await;
    let cleared: Alert = next_as(&mut alerts).await;
    assert_eq!((cleared.id, cleared.cleared), (fault.id, true));
    assert_eq!(next_as::<DeviceView>(&mut devices).await.state, State::Ok);

    // A device that goes silent (socket open, nothing sent) is dropped at its heart-beat
    // deadline, and the disconnect raises the alert.
    let silent = Client::connect_tcp(
        d.server.tcp_addr,
        ConnectOptions::new()
            .login("gate-0002")
            .passcode(FleetKey::new(KEY).passcode("gate-0002"))
            .heartbeat(HEARTBEAT_MS, 0)
            .send_heartbeats(false),
    )
    .await
    .unwrap();
    send(&silent, "/app/device.gate-0002.status", status("ok", "")).await;
    assert_eq!(next_as::<DeviceView>(&mut devices).await.id, "gate-0002");
    let offline: Alert = next_as(&mut alerts).await;
    assert_eq!(
        (offline.kind, offline.device.as_str()),
        (AlertKind::Offline, "gate-0002")
    );
    let view: DeviceView = next_as(&mut devices).await;
    assert_eq!(
        (view.id.as_str(), view.state),
        ("gate-0002", State::Offline)
    );
    assert!(
        silent.closed().await.is_some(),
        "the server dropped the silent device"
    );
    // It comes back: the alert clears.
    let back = d.device("gate-0002").await;
    let cleared: Alert = next_as(&mut alerts).await;
    assert_eq!((cleared.id, cleared.cleared), (offline.id, true));

    // A command reaches that device alone, and its answer reaches the board.
    let gate3 = d.device("gate-0003").await;
    let mut gate3_commands = gate3
        .subscribe("/user/queue/commands", AckMode::Auto)
        .await
        .unwrap();
    send(&board, "/app/gate.gate-0001.open", json!({})).await;
    let sent: CommandEvent = next_as(&mut commands).await;
    assert_eq!(sent.status, CommandStatus::Sent);
    let command: Command = next_as(&mut gate1_commands).await;
    assert_eq!(command, sent.command);
    assert_eq!(
        (command.device.as_str(), command.issued_by.as_str()),
        ("gate-0001", "olivia")
    );
    send(
        &gate1,
        "/app/device.gate-0001.ack",
        json!({ "command": command.id, "ok": true, "detail": "barrier up" }),
    )
    .await;
    let done: CommandEvent = next_as(&mut commands).await;
    assert_eq!(
        (done.command.id.as_str(), done.status),
        (command.id.as_str(), CommandStatus::Done)
    );
    assert!(done.round_trip_ms.is_some_and(|ms| ms >= 0.0), "{done:?}");
    // gate-0003 saw nothing of it: the first command it gets is its own.
    send(&board, "/app/gate.gate-0003.close", json!({})).await;
    let own: Command = next_as(&mut gate3_commands).await;
    assert_eq!((own.device.as_str(), own.id.as_str()), ("gate-0003", "c-2"));
    // A device cannot answer another device's command.
    send(
        &gate1,
        "/app/device.gate-0001.ack",
        json!({ "command": own.id, "ok": true }),
    )
    .await;
    assert_eq!(
        error(&mut gate1_errors).await,
        "no command `c-2` is waiting for gate-0001"
    );
    // A command a device cannot take, or to a device that is not there, is refused.
    send(&board, "/app/kiosk.gate-0001.restart", json!({})).await;
    assert_eq!(error(&mut board_errors).await, "gate-0001 is not a kiosk");
    send(&board, "/app/gate.gate-0004.open", json!({})).await;
    assert_eq!(
        error(&mut board_errors).await,
        "gate-0004 is not connected: the command cannot reach it"
    );

    // A non-operator's command is refused, and reaches no device.
    let gina = d.person("gina", "anig").await;
    let mut gina_errors = gina
        .subscribe("/user/queue/errors", AckMode::Auto)
        .await
        .unwrap();
    send(&gina, "/app/gate.gate-0001.open", json!({})).await;
    assert_eq!(
        error(&mut gina_errors).await,
        "access denied: `open_gate` requires one of the roles operator"
    );
    send(&board, "/app/gate.gate-0001.close", json!({})).await;
    let next_command: Command = next_as(&mut gate1_commands).await;
    assert_eq!(
        (next_command.action, next_command.issued_by.as_str()),
        (dispatch::model::Action::Close, "olivia")
    );
    // Guides do not watch the board.
    let refused = gina.subscribe("/topic/alerts", AckMode::Auto).await;
    assert!(refused.is_ok(), "refused by a reply, the session stays");
    assert_eq!(
        error(&mut gina_errors).await,
        "`/topic/alerts` is for operators"
    );

    // A kiosk's call reaches the guide on duty in its area, and only them.
    let mut gina_calls = gina
        .subscribe("/user/queue/calls", AckMode::Auto)
        .await
        .unwrap();
    let gus = d.person("gus", "sug").await;
    let mut gus_calls = gus
        .subscribe("/user/queue/calls", AckMode::Auto)
        .await
        .unwrap();
    d.on_duty("gina", "T1-short").await;
    d.on_duty("gus", "T1-long").await;
    let kiosk5 = d.device("kiosk-0005").await; // T1-short
    let mut kiosk5_calls = kiosk5
        .subscribe("/user/queue/calls", AckMode::Auto)
        .await
        .unwrap();
    send(
        &kiosk5,
        "/app/kiosk.kiosk-0005.call",
        json!({ "reason": "lost ticket" }),
    )
    .await;
    let call: Call = next_as(&mut gina_calls).await;
    assert_eq!(
        (
            call.kiosk.as_str(),
            call.area.as_str(),
            call.reason.as_str()
        ),
        ("kiosk-0005", "T1-short", "lost ticket")
    );
    assert_eq!(call.guides, ["gina"]);
    let answer: Call = next_as(&mut kiosk5_calls).await;
    assert_eq!(answer.id, call.id, "the kiosk learns who was called");
    let kiosk15 = d.device("kiosk-0015").await; // T1-long
    send(&kiosk15, "/app/kiosk.kiosk-0015.call", json!({})).await;
    let gus_call: Call = next_as(&mut gus_calls).await;
    assert_eq!(
        gus_call.kiosk, "kiosk-0015",
        "gus's first call is his own area's"
    );
    // In an area without a guide on duty, the operators are alerted instead.
    let kiosk25 = d.device("kiosk-0025").await; // T1-garage
    send(
        &kiosk25,
        "/app/kiosk.kiosk-0025.call",
        json!({ "reason": "help" }),
    )
    .await;
    let unanswered: Alert =
        next_where(&mut alerts, |a: &Alert| a.kind == AlertKind::UnansweredCall).await;
    assert_eq!(unanswered.device, "kiosk-0025");
    assert_eq!(
        unanswered.detail,
        "call (help): no guide on duty in T1-garage"
    );

    // Payments go through the audit advice; a processor failure alerts the operators.
    let station = d.device("station-0008").await;
    let mut receipts = station
        .subscribe("/user/queue/payments", AckMode::Auto)
        .await
        .unwrap();
    let mut station_errors = station
        .subscribe("/user/queue/errors", AckMode::Auto)
        .await
        .unwrap();
    let pay = |card: &str| json!({ "ticket": "T123456", "amount": 12000, "card": card });
    send(
        &station,
        "/app/station.station-0008.payment",
        pay("4242 4242 4242 4242"),
    )
    .await;
    let receipt: Value = next_as(&mut receipts).await;
    assert_eq!(
        (receipt["ticket"].as_str(), receipt["last4"].as_str()),
        (Some("T123456"), Some("4242"))
    );
    send(
        &station,
        "/app/station.station-0008.payment",
        pay(dispatch::controllers::test_cards::DECLINED),
    )
    .await;
    assert_eq!(
        error(&mut station_errors).await,
        "card declined: insufficient funds"
    );
    send(
        &station,
        "/app/station.station-0008.payment",
        pay(dispatch::controllers::test_cards::UNREACHABLE),
    )
    .await;
    let internal = error(&mut station_errors).await;
    assert!(internal.starts_with("internal error (ref "), "{internal}");
    assert!(
        !internal.contains("pg.internal"),
        "the processor's address stays inside: {internal}"
    );
    let payment_alert: Alert =
        next_where(&mut alerts, |a: &Alert| a.kind == AlertKind::PaymentError).await;
    assert_eq!(payment_alert.device, "station-0008");
    let trail: Value = {
        let mut once = board
            .subscribe("/app/board.payments", AckMode::Auto)
            .await
            .unwrap();
        next_as(&mut once).await
    };
    let outcomes: Vec<(&str, &str)> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["station"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("station-0008", "ok"),
            ("station-0008", "error"),
            ("station-0008", "error")
        ]
    );
    assert!(
        trail[2]["error"]
            .as_str()
            .unwrap()
            .contains("pg.internal:443"),
        "{trail}"
    );
    assert_eq!(trail[0]["amount"], 12000);

    drop(back);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_keep_to_their_own_destinations_and_logins_are_checked() {
    let d = start().await;
    let board = d.person("olivia", "aivilo").await;
    let mut devices = board
        .subscribe("/topic/board.devices", AckMode::Auto)
        .await
        .unwrap();
    let gate1 = d.device("gate-0001").await;
    let mut errors = gate1
        .subscribe("/user/queue/errors", AckMode::Auto)
        .await
        .unwrap();

    // Reporting for another device, publishing an alert, commanding another device through
    // its user destination: all refused, the session stays.
    send(
        &gate1,
        "/app/device.gate-0003.status",
        status("fault", "forged"),
    )
    .await;
    assert_eq!(
        error(&mut errors).await,
        "gate-0001 may send only for itself (/app/{kind}.gate-0001.{what})"
    );
    send(&gate1, "/topic/alerts", json!({ "kind": "fault" })).await;
    assert_eq!(
        error(&mut errors).await,
        "SEND only to /app/...: `/topic/alerts` is published by the server alone"
    );
    send(&gate1, "/user/gate-0003/queue/commands", json!({})).await;
    assert!(
        error(&mut errors)
            .await
            .starts_with("SEND only to /app/...")
    );
    // Opening itself needs the operator role too.
    send(&gate1, "/app/gate.gate-0001.open", json!({})).await;
    assert_eq!(
        error(&mut errors).await,
        "access denied: `open_gate` requires one of the roles operator"
    );
    // Listening to the board, the alerts or another device's queue.
    for destination in [
        "/topic/alerts",
        "/topic/board.devices",
        "/user/gate-0003/queue/commands",
    ] {
        gate1.subscribe(destination, AckMode::Auto).await.unwrap();
        assert!(
            error(&mut errors)
                .await
                .starts_with("a device subscribes only to its own queues"),
            "{destination}"
        );
    }
    // The board saw none of it: the first change it gets is gate-0001's own report.
    send(
        &gate1,
        "/app/device.gate-0001.status",
        status("warning", "paper low"),
    )
    .await;
    let view: DeviceView = next_as(&mut devices).await;
    assert_eq!(
        (view.id.as_str(), view.state, view.detail.as_str()),
        ("gate-0001", State::Warning, "paper low")
    );

    // Wrong or foreign credentials never connect, with one answer for all.
    let tcp = d.server.tcp_addr;
    // The ERROR frame says "authentication failed", its body why.
    let refused = |login: &str, passcode: Option<String>| {
        let login = login.to_owned();
        let mut opts = ConnectOptions::new().login(login.as_str());
        if let Some(p) = passcode {
            opts = opts.passcode(p);
        }
        async move {
            let Err(e) = Client::connect_tcp(tcp, opts).await else {
                panic!("{login} connected")
            };
            match e {
                ClientError::Server { message, body, .. } => {
                    assert_eq!(message, "authentication failed");
                    String::from_utf8_lossy(&body).trim().to_owned()
                }
                other => panic!("not an ERROR frame: {other}"),
            }
        }
    };
    let answer = "unknown login or wrong passcode";
    let other_key = FleetKey::new("other").passcode("gate-0001");
    assert_eq!(refused("gate-0001", Some(other_key)).await, answer);
    let other_device = FleetKey::new(KEY).passcode("gate-0002");
    assert_eq!(refused("gate-0001", Some(other_device)).await, answer);
    let beyond = FleetKey::new(KEY).passcode("gate-0099");
    assert_eq!(
        refused("gate-0099", Some(beyond)).await,
        answer,
        "not in the fleet"
    );
    assert_eq!(refused("olivia", Some("olivia".into())).await, answer);
    assert_eq!(refused("olivia", None).await, answer);
    assert_eq!(
        refused("", None).await,
        "log in with the `login` and `passcode` headers"
    );
    // A second session of the same device (a restart before the old one timed out) is
    // fine, and the device is offline only once both are gone.
    let again = d.device("gate-0001").await;
    drop(gate1);
    again
        .send_receipted(
            "/app/device.gate-0001.status",
            status("ok", "").to_string(),
            json_headers(),
        )
        .await
        .unwrap();
    let view: DeviceView = next_as(&mut devices).await;
    assert_eq!(
        (view.id.as_str(), view.state),
        ("gate-0001", State::Ok),
        "not offline in between"
    );
}
