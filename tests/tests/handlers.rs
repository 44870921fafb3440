//! Declarative handlers end to end: a real server, real clients, every extractor, every
//! return type, `send_to`, `send_to_user`, `subscribe_mapping`, the template, failures.

use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};
use stomp_runtime::broker::AckMode;
use stomp_runtime::client::{Client, ConnectOptions, Message, Subscription};
use stomp_runtime::frame::{Command, Headers};
use stomp_runtime::prelude::*;
use stomp_runtime::security::TrustLogin;
use stomp_runtime::{ErrorPolicy, message_mapping, send_to, send_to_user, subscribe_mapping};
use stomp_tests::{TestServer, WAIT, start};

#[derive(Debug, Deserialize, Serialize, PartialEq)]
struct ChatMessage {
    user: String,
    text: String,
}

#[message_mapping("/chat.send.{room}")]
#[send_to("/topic/rooms.{room}")]
async fn chat_send(
    Payload(msg): Payload<ChatMessage>,
    DestinationVar(room): DestinationVar<String>,
) -> Result<ChatMessage, StompError> {
    if msg.text.is_empty() {
        return Err(StompError::new("empty messages are not allowed"));
    }
    Ok(ChatMessage {
        user: msg.user,
        text: format!("[{room}] {}", msg.text),
    })
}

#[message_mapping("/gates/{gate}/open")]
#[send_to("/topic/gates.{gate}", "/topic/audit")]
async fn open_gate(DestinationVar(gate): DestinationVar<u32>) -> String {
    format!("gate {gate} open")
}

#[message_mapping("/echo")]
async fn echo(Payload(text): Payload<String>) -> String {
    text
}

#[message_mapping("/raw")]
#[send_to("/topic/raw")]
async fn raw(body: Bytes) -> Bytes {
    body.iter().rev().copied().collect::<Vec<u8>>().into()
}

#[message_mapping("/maybe")]
#[send_to("/topic/maybe")]
async fn maybe(Header(answer): Header<String>) -> Option<String> {
    (answer == "yes").then(|| "yes it is".to_owned())
}

#[message_mapping("/nothing")]
#[send_to("/topic/nothing")]
async fn nothing() {}

#[derive(Serialize)]
struct Inspection {
    device_id: u32,
    header_count: usize,
    user: Option<String>,
    destination: String,
    visits: u32,
    counter: u32,
}

struct Counter(AtomicU32);

#[message_mapping("/inspect")]
#[send_to_user("/queue/inspection", broadcast = false)]
async fn inspect(
    Header(device_id): Header<u32>,
    headers: Headers,
    user: Option<Principal>,
    Destination(destination): Destination,
    session: SessionInfo,
    counter: State<Counter>,
) -> Inspection {
    let visits = session.attributes.get::<u32>("visits").unwrap_or(0) + 1;
    session.attributes.insert("visits", visits);
    Inspection {
        device_id,
        header_count: headers.len(),
        user: user.map(|u| u.name().to_owned()),
        destination,
        visits,
        counter: counter.0.0.fetch_add(1, Ordering::SeqCst) + 1,
    }
}

#[message_mapping("/whisper")]
#[send_to_user("/queue/whispers")]
async fn whisper(user: Principal, Payload(text): Payload<String>) -> String {
    format!("{} says {text}", user.name())
}

#[message_mapping("/me")]
#[send_to_user("/queue/me", broadcast = false)]
async fn me(session: SessionInfo) -> String {
    session.id.to_string()
}

#[message_mapping("/announce")]
async fn announce(
    template: MessagingTemplate,
    Payload(text): Payload<String>,
) -> Result<(), StompError> {
    template
        .convert_and_send("/topic/announcements", &serde_json::json!({ "text": text }))
        .await
}

#[subscribe_mapping("/rooms.{room}.history")]
async fn history(DestinationVar(room): DestinationVar<String>) -> Vec<ChatMessage> {
    vec![ChatMessage {
        user: "system".into(),
        text: format!("welcome to {room}"),
    }]
}

async fn server() -> TestServer {
    server_with(|b| b).await
}

async fn server_with(
    f: impl FnOnce(stomp_runtime::StompServerBuilder) -> stomp_runtime::StompServerBuilder,
) -> TestServer {
    let builder = StompServer::builder()
        .authenticator(TrustLogin)
        .state(Counter(AtomicU32::new(0)));
    start(f(builder).build().expect("handlers are consistent")).await
}

async fn tcp(server: &TestServer, login: Option<&str>) -> Client {
    let mut opts = ConnectOptions::new();
    if let Some(l) = login {
        opts = opts.login(l);
    }
    Client::connect_tcp(server.tcp_addr, opts)
        .await
        .expect("connect")
}

async fn next(sub: &mut Subscription) -> Message {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message in time")
        .expect("subscription open")
}

fn json(headers: &[(&str, &str)]) -> Headers {
    let mut h: Headers = headers.iter().map(|(k, v)| (*k, *v)).collect();
    if !h.contains("content-type") {
        h.push("content-type", "application/json");
    }
    h
}

fn text_headers() -> Headers {
    json(&[("content-type", "text/plain")])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_broadcasts_the_return_value_with_placeholders_over_both_transports() {
    let server = server().await;
    let ws = Client::connect_ws(&server.ws_url, ConnectOptions::new())
        .await
        .unwrap();
    let tcp_client = tcp(&server, None).await;
    let mut a = ws
        .subscribe("/topic/rooms.lobby", AckMode::Auto)
        .await
        .unwrap();
    let mut b = tcp_client
        .subscribe("/topic/rooms.lobby", AckMode::Auto)
        .await
        .unwrap();
    let mut other = tcp_client
        .subscribe("/topic/rooms.kitchen", AckMode::Auto)
        .await
        .unwrap();
    let body = serde_json::to_vec(&ChatMessage {
        user: "ann".into(),
        text: "hi".into(),
    })
    .unwrap();
    ws.send_receipted("/app/chat.send.lobby", body, json(&[]))
        .await
        .unwrap();
    for sub in [&mut a, &mut b] {
        let m = next(sub).await;
        assert_eq!(m.content_type(), Some("application/json"));
        let got: ChatMessage = serde_json::from_slice(m.body()).unwrap();
        assert_eq!(
            got,
            ChatMessage {
                user: "ann".into(),
                text: "[lobby] hi".into()
            }
        );
    }
    tcp_client
        .send_receipted("/topic/rooms.kitchen", "marker", Headers::new())
        .await
        .unwrap();
    assert_eq!(
        next(&mut other).await.body(),
        "marker",
        "lobby message leaked into kitchen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_several_destinations_with_typed_variables() {
    let server = server().await;
    let c = tcp(&server, None).await;
    let mut gate = c.subscribe("/topic/gates.7", AckMode::Auto).await.unwrap();
    let mut audit = c.subscribe("/topic/audit", AckMode::Auto).await.unwrap();
    c.send_receipted("/app/gates/7/open", "", Headers::new())
        .await
        .unwrap();
    assert_eq!(next(&mut gate).await.body(), "gate 7 open");
    let m = next(&mut audit).await;
    assert_eq!(m.body(), "gate 7 open");
    assert_eq!(m.content_type(), Some("text/plain;charset=UTF-8"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_send_to_the_reply_goes_to_topic_plus_the_destination() {
    let server = server().await;
    let c = tcp(&server, None).await;
    let mut echo = c.subscribe("/topic/echo", AckMode::Auto).await.unwrap();
    c.send_receipted("/app/echo", "ping", text_headers())
        .await
        .unwrap();
    assert_eq!(next(&mut echo).await.body(), "ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_option_and_unit_returns() {
    let server = server().await;
    let c = tcp(&server, None).await;
    let mut raw = c.subscribe("/topic/raw", AckMode::Auto).await.unwrap();
    let mut maybe = c.subscribe("/topic/maybe", AckMode::Auto).await.unwrap();
    let mut nothing = c.subscribe("/topic/nothing", AckMode::Auto).await.unwrap();

    c.send_receipted("/app/raw", vec![1u8, 0, 2], Headers::new())
        .await
        .unwrap();
    let m = next(&mut raw).await;
    assert_eq!(&m.body()[..], &[2u8, 0, 1]);
    assert_eq!(m.content_type(), Some("application/octet-stream"));

    // None sends nothing: the first message on the topic is the one after it.
    c.send_receipted("/app/maybe", "", json(&[("answer", "no")]))
        .await
        .unwrap();
    c.send_receipted("/app/maybe", "", json(&[("answer", "yes")]))
        .await
        .unwrap();
    assert_eq!(next(&mut maybe).await.body(), "yes it is");

    // () sends nothing either.
    c.send_receipted("/app/nothing", "", Headers::new())
        .await
        .unwrap();
    c.send_receipted("/topic/nothing", "marker", Headers::new())
        .await
        .unwrap();
    assert_eq!(next(&mut nothing).await.body(), "marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_extractor_reaches_the_handler() {
    let server = server().await;
    let alice = tcp(&server, Some("alice")).await;
    let mut replies = alice
        .subscribe("/user/queue/inspection", AckMode::Auto)
        .await
        .unwrap();
    for expected_visits in 1..=2 {
        alice
            .send_receipted(
                "/app/inspect",
                "",
                json(&[("device-id", "42"), ("x-extra", "1")]),
            )
            .await
            .unwrap();
        let m = next(&mut replies).await;
        let v: serde_json::Value = serde_json::from_slice(m.body()).unwrap();
        assert_eq!(v["device_id"], 42);
        assert_eq!(v["user"], "alice");
        assert_eq!(v["destination"], "/app/inspect");
        assert_eq!(v["visits"], expected_visits, "session attributes persist");
        assert_eq!(v["counter"], expected_visits, "application state is shared");
        assert!(v["header_count"].as_u64().unwrap() >= 3, "{v}");
    }
    let anonymous = tcp(&server, None).await;
    let mut replies = anonymous
        .subscribe("/user/queue/inspection", AckMode::Auto)
        .await
        .unwrap();
    anonymous
        .send_receipted("/app/inspect", "", json(&[("device-id", "1")]))
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(next(&mut replies).await.body()).unwrap();
    assert_eq!(v["user"], serde_json::Value::Null);
    assert_eq!(v["visits"], 1, "attributes are per session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_user_reaches_every_session_of_the_user_and_nobody_else() {
    let server = server().await;
    let alice1 = tcp(&server, Some("alice")).await;
    let alice2 = Client::connect_ws(&server.ws_url, ConnectOptions::new().login("alice"))
        .await
        .unwrap();
    let bob = tcp(&server, Some("bob")).await;
    let mut a1 = alice1
        .subscribe("/user/queue/whispers", AckMode::Auto)
        .await
        .unwrap();
    let mut a2 = alice2
        .subscribe("/user/queue/whispers", AckMode::Auto)
        .await
        .unwrap();
    let mut b = bob
        .subscribe("/user/queue/whispers", AckMode::Auto)
        .await
        .unwrap();
    alice1
        .send_receipted("/app/whisper", "psst", text_headers())
        .await
        .unwrap();
    assert_eq!(next(&mut a1).await.body(), "alice says psst");
    assert_eq!(next(&mut a2).await.body(), "alice says psst");
    bob.send_receipted("/app/whisper", "hey", text_headers())
        .await
        .unwrap();
    assert_eq!(
        next(&mut b).await.body(),
        "bob says hey",
        "bob got only his own"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_false_answers_only_the_calling_session_even_anonymous() {
    let server = server().await;
    let s1 = tcp(&server, Some("carol")).await;
    let s2 = tcp(&server, Some("carol")).await;
    let anon = tcp(&server, None).await;
    let mut m1 = s1.subscribe("/user/queue/me", AckMode::Auto).await.unwrap();
    let mut m2 = s2.subscribe("/user/queue/me", AckMode::Auto).await.unwrap();
    let mut ma = anon
        .subscribe("/user/queue/me", AckMode::Auto)
        .await
        .unwrap();
    s1.send_receipted("/app/me", "", Headers::new())
        .await
        .unwrap();
    s2.send_receipted("/app/me", "", Headers::new())
        .await
        .unwrap();
    anon.send_receipted("/app/me", "", Headers::new())
        .await
        .unwrap();
    assert_eq!(next(&mut m1).await.body(), s1.session().unwrap());
    assert_eq!(next(&mut m2).await.body(), s2.session().unwrap());
    assert_eq!(next(&mut ma).await.body(), anon.session().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_mapping_answers_the_subscriber_once() {
    let server = server().await;
    let c = tcp(&server, None).await;
    let mut sub = c
        .subscribe("/app/rooms.lobby.history", AckMode::Auto)
        .await
        .unwrap();
    let m = next(&mut sub).await;
    assert_eq!(m.destination(), "/app/rooms.lobby.history");
    assert_eq!(m.subscription(), sub.id());
    let history: Vec<ChatMessage> = serde_json::from_slice(m.body()).unwrap();
    assert_eq!(history[0].text, "welcome to lobby");
    // Once only: nothing more arrives for it, while the session still works.
    c.send_receipted("/topic/anything", "x", Headers::new())
        .await
        .unwrap();
    assert!(sub.try_next().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_sends_from_handlers_and_from_outside() {
    let server = server().await;
    let c = tcp(&server, Some("dave")).await;
    let mut ann = c
        .subscribe("/topic/announcements", AckMode::Auto)
        .await
        .unwrap();
    let mut alerts = c
        .subscribe("/user/queue/alerts", AckMode::Auto)
        .await
        .unwrap();
    c.send_receipted("/app/announce", "doors close at 6", text_headers())
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(next(&mut ann).await.body()).unwrap();
    assert_eq!(v["text"], "doors close at 6");
    let template = server.stomp.template();
    let mut headers = Headers::new();
    headers.push("severity", "high");
    template
        .convert_and_send_to_user_with("dave", "/queue/alerts", &"low battery", headers)
        .await
        .unwrap();
    let alert = next(&mut alerts).await;
    assert_eq!(alert.body(), "\"low battery\"");
    assert_eq!(alert.header("severity"), Some("high"));
    assert_eq!(alert.content_type(), Some("application/json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_reach_the_client_on_its_error_queue() {
    let server = server().await;
    let c = tcp(&server, None).await;
    let mut errors = c
        .subscribe("/user/queue/errors", AckMode::Auto)
        .await
        .unwrap();

    c.send_receipted("/app/chat.send.lobby", "{not json", json(&[]))
        .await
        .unwrap();
    let e: serde_json::Value = serde_json::from_slice(next(&mut errors).await.body()).unwrap();
    assert_eq!(e["argument"], "msg");
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("invalid JSON payload"),
        "{e}"
    );
    assert_eq!(e["destination"], "/app/chat.send.lobby");

    let empty = serde_json::to_vec(&ChatMessage {
        user: "x".into(),
        text: String::new(),
    })
    .unwrap();
    c.send_receipted("/app/chat.send.lobby", empty, json(&[]))
        .await
        .unwrap();
    let e: serde_json::Value = serde_json::from_slice(next(&mut errors).await.body()).unwrap();
    assert_eq!(e["error"], "empty messages are not allowed");

    c.send_receipted("/app/gates/seven/open", "", Headers::new())
        .await
        .unwrap();
    let e: serde_json::Value = serde_json::from_slice(next(&mut errors).await.body()).unwrap();
    assert_eq!(e["argument"], "gate");

    c.send_receipted("/app/whisper", "x", text_headers())
        .await
        .unwrap();
    let e: serde_json::Value = serde_json::from_slice(next(&mut errors).await.body()).unwrap();
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("no authenticated user"),
        "{e}"
    );

    c.send_receipted("/app/no/such/handler", "x", Headers::new())
        .await
        .unwrap();
    let e: serde_json::Value = serde_json::from_slice(next(&mut errors).await.body()).unwrap();
    assert!(
        e["error"].as_str().unwrap().contains("no message handler"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_frame_policy_closes_the_session_with_the_reason() {
    let server = server_with(|b| b.error_policy(ErrorPolicy::ErrorFrame)).await;
    let c = tcp(&server, None).await;
    let frame = stomp_runtime::frame::Frame::new(Command::Send)
        .header("destination", "/app/gates/x/open")
        .header("receipt", "r-bad");
    let err = c.request(frame).await.expect_err("the server refuses");
    let stomp_runtime::client::ClientError::Server { message, body, .. } = err else {
        panic!("expected an ERROR frame, got {err}");
    };
    assert_eq!(message, "handler failed");
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("argument `gate`"), "{body}");
    assert!(
        c.closed().await.is_some(),
        "the connection closes after ERROR"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_events_announce_connects_and_every_kind_of_end() {
    use stomp_runtime::SessionEvent;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = server_with(move |b| {
        b.on_session_event(move |event, template| {
            let tx = tx.clone();
            async move {
                if let SessionEvent::Disconnected {
                    principal: Some(p), ..
                } = &event
                {
                    let _ = template
                        .convert_and_send("/topic/presence", &format!("{} left", p.name()))
                        .await;
                }
                let _ = tx.send(event);
            }
        })
    })
    .await;
    let watcher = tcp(&server, None).await;
    let mut presence = watcher
        .subscribe("/topic/presence", AckMode::Auto)
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut rx).await,
        SessionEvent::Connected {
            principal: None,
            ..
        }
    ));
    let e = next_event(&mut rx).await;
    let SessionEvent::Subscribed {
        destination,
        subscription,
        ..
    } = &e
    else {
        panic!("expected the subscription, got {e:?}");
    };
    assert_eq!(destination, "/topic/presence");
    assert_eq!(e.session(), watcher.session().unwrap());
    assert!(!subscription.is_empty());

    let erin = tcp(&server, Some("erin")).await;
    let e = next_event(&mut rx).await;
    assert!(matches!(&e, SessionEvent::Connected { .. }));
    assert_eq!(e.principal().map(|p| p.name()), Some("erin"));
    assert_eq!(e.session(), erin.session().unwrap());
    erin.disconnect().await.unwrap();
    let e = next_event(&mut rx).await;
    assert!(matches!(&e, SessionEvent::Disconnected { .. }), "{e:?}");
    assert_eq!(next(&mut presence).await.body(), "\"erin left\"");

    // A dropped connection (no DISCONNECT) ends the session too.
    let frank = tcp(&server, Some("frank")).await;
    assert!(matches!(
        next_event(&mut rx).await,
        SessionEvent::Connected { .. }
    ));
    drop(frank);
    let e = next_event(&mut rx).await;
    assert!(matches!(&e, SessionEvent::Disconnected { .. }), "{e:?}");
    assert_eq!(next(&mut presence).await.body(), "\"frank left\"");
}

async fn next_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<stomp_runtime::SessionEvent>,
) -> stomp_runtime::SessionEvent {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("event in time")
        .expect("listener alive")
}

/// An actix-web route pushing to a user and a topic through the template, as a server
/// pushes equipment status or alerts without a client message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_pushes_from_an_http_route() {
    use actix_web::{HttpResponse, web};

    let stomp = StompServer::builder()
        .authenticator(TrustLogin)
        .state(Counter(AtomicU32::new(0)))
        .build()
        .unwrap();
    let template = stomp.template();
    let ws = stomp.websocket("/ws");
    let app = move |cfg: &mut web::ServiceConfig| {
        ws(cfg);
        let template = template.clone();
        cfg.route(
            "/alerts/{user}",
            web::post().to(move |user: web::Path<String>, body: String| {
                let template = template.clone();
                async move {
                    let alert = serde_json::json!({ "alert": body });
                    let to_user = template.convert_and_send_to_user(&user, "/queue/alerts", &alert);
                    let to_all = template.convert_and_send("/topic/alerts", &alert);
                    match (to_user.await, to_all.await) {
                        (Ok(()), Ok(())) => HttpResponse::Accepted().finish(),
                        (Err(e), _) | (_, Err(e)) => {
                            HttpResponse::InternalServerError().body(e.to_string())
                        }
                    }
                }
            }),
        );
    };
    let server = stomp_tests::start_app(stomp, app).await;
    let gina = tcp(&server, Some("gina")).await;
    let mut mine = gina
        .subscribe("/user/queue/alerts", AckMode::Auto)
        .await
        .unwrap();
    let mut all = gina
        .subscribe("/topic/alerts", AckMode::Auto)
        .await
        .unwrap();

    let response =
        stomp_tests::http_request(server.http_addr, "POST", "/alerts/gina", "gate 3 jammed").await;
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");

    for sub in [&mut mine, &mut all] {
        let v: serde_json::Value = serde_json::from_slice(next(sub).await.body()).unwrap();
        assert_eq!(v["alert"], "gate 3 jammed");
    }
}

/// Another session's private queue (`/queue/x-user{id}`) cannot be read or written directly,
/// even knowing the id; the owner is reached through `/user/...` only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_user_queues_are_not_reachable_directly() {
    let server = server().await;
    let owner = tcp(&server, Some("hana")).await;
    let mut private = owner
        .subscribe("/user/queue/secrets", AckMode::Auto)
        .await
        .unwrap();
    let resolved = format!("/queue/secrets-user{}", owner.session().unwrap());

    let snoop = tcp(&server, Some("ivan")).await;
    let Err(err) = snoop.subscribe(&resolved, AckMode::Auto).await else {
        panic!("subscribing to another session's user queue was allowed");
    };
    assert_eq!(err.server_message(), Some("forbidden destination"), "{err}");

    let forger = tcp(&server, Some("ivan")).await;
    let err = forger
        .send_receipted(&resolved, "fake", Headers::new())
        .await
        .expect_err("refused");
    assert_eq!(err.server_message(), Some("forbidden destination"), "{err}");

    // Through the user prefix it arrives, and nothing else did before it.
    let sender = tcp(&server, None).await;
    sender
        .send_receipted("/user/hana/queue/secrets", "real", Headers::new())
        .await
        .unwrap();
    assert_eq!(next(&mut private).await.body(), "real");
    // Names that merely contain "-user" are ordinary destinations.
    let c = tcp(&server, None).await;
    c.subscribe("/topic/power-users", AckMode::Auto)
        .await
        .unwrap();
}
