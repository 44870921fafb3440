//! The chat example end to end: its server on ephemeral ports (page, WebSocket, TCP), users
//! over both transports, rooms, presence, history, whispers, errors, refused logins, and
//! the page itself over plain HTTP.

use std::net::SocketAddr;

use chat::{ChatMessage, HISTORY_LEN, Kind, Whisper};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use stomp_runtime::broker::AckMode;
use stomp_runtime::client::{Client, ClientError, ConnectOptions, Subscription};
use stomp_runtime::frame::Headers;
use stomp_tests::{TestServer, WAIT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The chat as `main.rs` serves it, on `127.0.0.1:0`.
/// The chat on ephemeral ports: its page routes and `/ws` over HTTP, raw STOMP over TCP.
struct ChatServer(TestServer);

/// Starts the chat. Call from a multi-threaded tokio test.
async fn start() -> ChatServer {
    let stomp = chat::server().expect("the chat's handlers are consistent");
    let app = chat::app(&stomp);
    ChatServer(stomp_tests::start_app(stomp, app).await)
}

impl ChatServer {
    fn http(&self) -> SocketAddr {
        self.0.http_addr
    }

    async fn ws(&self, user: &str) -> Client {
        let url = format!("ws://{}{}", self.http(), chat::WS_PATH);
        Client::connect_ws(&url, ConnectOptions::new().login(user))
            .await
            .expect("a valid name connects over WebSocket")
    }

    async fn tcp(&self, user: &str) -> Client {
        Client::connect_tcp(self.0.tcp_addr, ConnectOptions::new().login(user))
            .await
            .expect("a valid name connects over TCP")
    }
}

fn json_headers() -> Headers {
    let mut h = Headers::new();
    h.push("content-type", "application/json");
    h
}

/// Sends `body` as JSON and waits until the server has handled it.
async fn send(client: &Client, destination: &str, body: Value) {
    client
        .send_receipted(destination, body.to_string(), json_headers())
        .await
        .expect("receipt");
}

async fn next<T: DeserializeOwned>(sub: &mut Subscription) -> T {
    let m = tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("a message in time")
        .expect("subscription open");
    assert_eq!(m.content_type(), Some("application/json"));
    serde_json::from_slice(m.body()).expect("JSON of the expected shape")
}

/// Subscribes to the room's topic, then joins it.
async fn join(client: &Client, room: &str) -> Subscription {
    let topic = subscribe(client, &format!("/topic/rooms.{room}")).await;
    send(client, &format!("/app/chat.join.{room}"), json!({})).await;
    topic
}

async fn subscribe(client: &Client, destination: &str) -> Subscription {
    client
        .subscribe(destination, AckMode::Auto)
        .await
        .expect("subscribed")
}

/// The one answer of a `#[subscribe_mapping]`.
async fn ask<T: DeserializeOwned>(client: &Client, destination: &str) -> T {
    let mut sub = subscribe(client, destination).await;
    let answer = next(&mut sub).await;
    sub.unsubscribe().await.expect("unsubscribed");
    answer
}

async fn members(client: &Client, room: &str) -> Vec<String> {
    ask(client, &format!("/app/rooms.{room}.members")).await
}

async fn history(client: &Client, room: &str) -> Vec<ChatMessage> {
    ask(client, &format!("/app/rooms.{room}.history")).await
}

fn event(m: &ChatMessage) -> (Kind, &str, &str, &str) {
    (m.kind, m.room.as_str(), m.user.as_str(), m.text.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_user_and_a_tcp_user_share_a_room() {
    let chat = start().await;
    let alice = chat.ws("alice").await;
    let bob = chat.tcp("bob").await;

    let mut alice_room = join(&alice, "lobby").await;
    let joined: ChatMessage = next(&mut alice_room).await;
    assert_eq!(event(&joined), (Kind::Join, "lobby", "alice", ""));
    assert_eq!(members(&bob, "lobby").await, ["alice"]);

    let mut bob_room = join(&bob, "lobby").await;
    for sub in [&mut alice_room, &mut bob_room] {
        let m: ChatMessage = next(sub).await;
        assert_eq!(event(&m), (Kind::Join, "lobby", "bob", ""));
    }

    send(
        &alice,
        "/app/chat.send.lobby",
        json!({"text": "  hello, bob "}),
    )
    .await;
    send(&bob, "/app/chat.send.lobby", json!({"text": "hi alice"})).await;
    for sub in [&mut alice_room, &mut bob_room] {
        let first: ChatMessage = next(sub).await;
        assert_eq!(event(&first), (Kind::Chat, "lobby", "alice", "hello, bob"));
        assert!(first.timestamp > 1_600_000_000_000, "{first:?}");
        let second: ChatMessage = next(sub).await;
        assert_eq!(event(&second), (Kind::Chat, "lobby", "bob", "hi alice"));
        assert!(second.id > first.id);
    }

    let lines = history(&bob, "lobby").await;
    let texts: Vec<(&str, &str)> = lines
        .iter()
        .map(|m| (m.user.as_str(), m.text.as_str()))
        .collect();
    assert_eq!(texts, [("alice", "hello, bob"), ("bob", "hi alice")]);
    assert!(
        lines
            .iter()
            .all(|m| m.kind == Kind::Chat && m.room == "lobby")
    );
    assert_eq!(members(&alice, "lobby").await, ["alice", "bob"]);
    assert!(history(&alice, "kitchen").await.is_empty());
    assert!(members(&alice, "kitchen").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_keeps_only_the_last_lines() {
    let chat = start().await;
    let ann = chat.tcp("ann").await;
    let _room = join(&ann, "garden").await;
    for i in 0..=HISTORY_LEN {
        send(
            &ann,
            "/app/chat.send.garden",
            json!({"text": format!("line {i}")}),
        )
        .await;
    }
    let lines = history(&ann, "garden").await;
    assert_eq!(lines.len(), HISTORY_LEN);
    assert_eq!(lines[0].text, "line 1");
    assert_eq!(lines[HISTORY_LEN - 1].text, format!("line {HISTORY_LEN}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whisper_reaches_the_recipient_and_the_senders_sessions_only() {
    let chat = start().await;
    let alice_ws = chat.ws("alice").await;
    let alice_tcp = chat.tcp("alice").await;
    let bob = chat.tcp("bob").await;
    let carol = chat.ws("carol").await;
    let mut inboxes = Vec::new();
    for client in [&alice_ws, &alice_tcp, &bob, &carol] {
        let _ = join(client, "lobby").await;
        inboxes.push(subscribe(client, "/user/queue/whispers").await);
    }
    let [alice_ws_in, alice_tcp_in, bob_in, carol_in] = &mut inboxes[..] else {
        unreachable!("four inboxes");
    };

    send(
        &alice_ws,
        "/app/chat.whisper",
        json!({"to": "bob", "text": "psst"}),
    )
    .await;
    for inbox in [&mut *bob_in, &mut *alice_ws_in, &mut *alice_tcp_in] {
        let w: Whisper = next(inbox).await;
        assert_eq!(
            (w.from.as_str(), w.to.as_str(), w.text.as_str()),
            ("alice", "bob", "psst")
        );
    }

    // Markers: the first whisper carol sees is bob's, so alice's did not reach her; the next
    // bob and alice see are the markers, so nobody got a second copy.
    send(
        &bob,
        "/app/chat.whisper",
        json!({"to": "carol", "text": "m1"}),
    )
    .await;
    send(
        &carol,
        "/app/chat.whisper",
        json!({"to": "alice", "text": "m2"}),
    )
    .await;
    let w: Whisper = next(carol_in).await;
    assert_eq!((w.from.as_str(), w.text.as_str()), ("bob", "m1"));
    let w: Whisper = next(bob_in).await;
    assert_eq!(
        (w.from.as_str(), w.text.as_str()),
        ("bob", "m1"),
        "bob's echo"
    );
    for inbox in [alice_ws_in, alice_tcp_in] {
        let w: Whisper = next(inbox).await;
        assert_eq!((w.from.as_str(), w.text.as_str()), ("carol", "m2"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_reach_only_the_sender_on_its_error_queue() {
    let chat = start().await;
    let alice = chat.tcp("alice").await;
    let bob = chat.ws("bob").await;
    let mut alice_errors = subscribe(&alice, "/user/queue/errors").await;
    let mut bob_errors = subscribe(&bob, "/user/queue/errors").await;
    let mut room = join(&alice, "lobby").await;
    let _: ChatMessage = next(&mut room).await; // her own join

    let long = "x".repeat(chat::controllers::MAX_TEXT_CHARS + 1);
    let cases = [
        (
            "/app/chat.send.lobby",
            json!({"text": " \n "}),
            "the message is empty",
        ),
        (
            "/app/chat.send.lobby",
            json!({"text": long}),
            "the message is 501 characters long; at most 500 are allowed",
        ),
        (
            "/app/chat.send.kitchen",
            json!({"text": "hi"}),
            "join `kitchen` before writing to it",
        ),
        (
            "/app/chat.join.attic",
            json!({}),
            "there is no room `attic`; the rooms are lobby, kitchen, garden",
        ),
        (
            "/app/chat.whisper",
            json!({"to": "nobody", "text": "hi"}),
            "cannot whisper: `nobody` is not in any room",
        ),
        (
            "/app/chat.whisper",
            json!({"to": "alice", "text": ""}),
            "the message is empty",
        ),
    ];
    for (destination, body, expected) in cases {
        send(&alice, destination, body).await;
        let e: Value = next(&mut alice_errors).await;
        assert_eq!(e["error"], expected);
        assert_eq!(e["destination"], destination);
    }
    alice
        .send_receipted("/app/chat.send.lobby", "{oops", json_headers())
        .await
        .unwrap();
    let e: Value = next(&mut alice_errors).await;
    assert_eq!(e["argument"], "message");
    assert!(e["error"].as_str().unwrap().contains("invalid JSON"), "{e}");

    // Nothing rejected reached the room, and bob's first error is his own.
    send(&alice, "/app/chat.send.lobby", json!({"text": "fine"})).await;
    let m: ChatMessage = next(&mut room).await;
    assert_eq!(event(&m), (Kind::Chat, "lobby", "alice", "fine"));
    send(&bob, "/app/chat.send.lobby", json!({"text": ""})).await;
    let e: Value = next(&mut bob_errors).await;
    assert_eq!(e["error"], "the message is empty");
    assert_eq!(history(&bob, "lobby").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_refuses_missing_and_invalid_names() {
    let chat = start().await;
    let url = format!("ws://{}{}", chat.http(), chat::WS_PATH);
    let refused = [
        (
            Client::connect_tcp(chat.0.tcp_addr, ConnectOptions::new()).await,
            "no `login` header",
        ),
        (
            Client::connect_ws(&url, ConnectOptions::new().login("")).await,
            "the name is empty",
        ),
        (
            Client::connect_tcp(chat.0.tcp_addr, ConnectOptions::new().login("a/b")).await,
            "not '/'",
        ),
        (
            Client::connect_ws(&url, ConnectOptions::new().login("x".repeat(25))).await,
            "at most 24",
        ),
    ];
    for (result, reason) in refused {
        let Err(ClientError::Server { message, body, .. }) = result else {
            panic!("expected an ERROR frame ({reason})");
        };
        assert_eq!(message, "authentication failed");
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains(reason), "{body:?} should say {reason:?}");
    }
    let zoe = chat.ws("zoë").await;
    assert_eq!(zoe.connected_headers().get("user-name"), Some("zoë"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_and_closing_the_last_connection_leave_the_room() {
    let chat = start().await;
    let alice = chat.ws("alice").await;
    let bob = chat.tcp("bob").await;
    let bob_again = chat.ws("bob").await;
    let mut room = join(&alice, "lobby").await;
    let _bob_room = join(&bob, "lobby").await;
    let kinds = |m: &ChatMessage| (m.kind, m.user.clone());
    assert_eq!(kinds(&next(&mut room).await), (Kind::Join, "alice".into()));
    assert_eq!(kinds(&next(&mut room).await), (Kind::Join, "bob".into()));

    // Bob's second session comes and goes unannounced: he is still there.
    send(&bob_again, "/app/chat.join.lobby", json!({})).await;
    send(&bob_again, "/app/chat.leave.lobby", json!({})).await;
    send(&alice, "/app/chat.send.lobby", json!({"text": "marker"})).await;
    assert_eq!(kinds(&next(&mut room).await), (Kind::Chat, "alice".into()));
    assert_eq!(members(&alice, "lobby").await, ["alice", "bob"]);

    // An explicit leave is announced, and so is closing the connection without one.
    send(&bob, "/app/chat.leave.lobby", json!({})).await;
    assert_eq!(kinds(&next(&mut room).await), (Kind::Leave, "bob".into()));
    send(&bob_again, "/app/chat.join.lobby", json!({})).await;
    assert_eq!(kinds(&next(&mut room).await), (Kind::Join, "bob".into()));
    bob_again.disconnect().await.expect("polite disconnect");
    assert_eq!(kinds(&next(&mut room).await), (Kind::Leave, "bob".into()));
    assert_eq!(members(&alice, "lobby").await, ["alice"]);
}

/// A plain HTTP/1.1 request (`GET`, `HEAD`): status, headers (names lowercased), body.
async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, Vec<(String, String)>, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("the response in time")
        .expect("read");
    let raw = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a header section");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_scripts_are_served_and_load_nothing_from_elsewhere() {
    let chat = start().await;
    let files = [
        (
            "/",
            "text/html; charset=utf-8",
            r#"<script type="module" src="/chat.js">"#,
        ),
        (
            "/chat.js",
            "text/javascript; charset=utf-8",
            r#"from "./stomp.js""#,
        ),
        (
            "/stomp.js",
            "text/javascript; charset=utf-8",
            "export class StompClient",
        ),
    ];
    for (path, content_type, expected) in files {
        let (status, headers, body) = http(chat.http(), "GET", path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(
            header(&headers, "content-type"),
            Some(content_type),
            "{path}"
        );
        assert!(
            body.contains(expected),
            "{path} should contain {expected:?}"
        );
        for remote in ["http://", "https://", "//cdn"] {
            assert!(!body.contains(remote), "{path} refers to {remote}");
        }
        let (status, headers, body) = http(chat.http(), "HEAD", path).await;
        assert_eq!((status, body.as_str()), (200, ""), "HEAD {path}");
        assert_eq!(
            header(&headers, "content-type"),
            Some(content_type),
            "HEAD {path}"
        );
    }
    let (status, _, _) = http(chat.http(), "GET", "/nowhere").await;
    assert_eq!(status, 404);
}
