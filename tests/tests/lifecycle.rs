//! Graceful shutdown and health, end to end: sessions idle, mid-transaction, stuck in a
//! handler, and a peer that stopped reading all end within the deadline with an ERROR (or
//! cut), disconnect events fire once each, new connections are refused, readiness flips.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use stomp_runtime::broker::AckMode;
use stomp_runtime::client::{Client, ClientError, ConnectOptions};
use stomp_runtime::config::Limits;
use stomp_runtime::frame::Command;
use stomp_runtime::prelude::*;
use stomp_runtime::security::TrustLogin;
use stomp_runtime::{SessionEvent, message_mapping};
use stomp_tests::{RawPeer, Seen, TestServer, WAIT, http_request, start_app};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static NEVER: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Never returns by itself: a handler stuck on a dependency.
#[message_mapping("/stuck")]
async fn stuck() -> String {
    NEVER.notified().await;
    "released".into()
}

async fn serve(events: Arc<Mutex<Vec<SessionEvent>>>) -> TestServer {
    serve_with(events, Limits::default()).await
}

async fn serve_with(events: Arc<Mutex<Vec<SessionEvent>>>, limits: Limits) -> TestServer {
    let stomp = StompServer::builder()
        .without_discovery()
        .limits(limits)
        .handler(stuck::HANDLER)
        .authenticator(TrustLogin)
        .on_session_event(move |e, _| {
            events.lock().push(e);
            async {}
        })
        .build()
        .unwrap();
    let ws = stomp.websocket("/ws");
    let health = stomp.health();
    start_app(stomp, move |cfg| {
        ws(cfg);
        health(cfg);
    })
    .await
}

async fn http_get(server: &TestServer, path: &str) -> String {
    http_request(server.http_addr, "GET", path, "").await
}

async fn client(server: &TestServer, login: &str) -> Client {
    Client::connect_tcp(server.tcp_addr, ConnectOptions::new().login(login))
        .await
        .unwrap()
}

/// The ERROR a client saw before its connection ended.
async fn farewell(c: &Client) -> String {
    match tokio::time::timeout(WAIT, c.closed())
        .await
        .expect("closed in time")
    {
        Some(ClientError::Server { message, .. }) => message,
        other => panic!("expected an ERROR, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_says_goodbye_to_every_session_within_the_deadline() {
    let events: Arc<Mutex<Vec<SessionEvent>>> = Arc::default();
    let server = serve(events.clone()).await;
    let live = http_get(&server, "/health/live").await;
    assert!(live.starts_with("HTTP/1.1 200"), "{live}");
    let ready = http_get(&server, "/health/ready").await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(ready.contains("\"status\":\"ready\""), "{ready}");

    // Idle, with a message queued for it just before the shutdown.
    let idle = client(&server, "idle").await;
    let mut sub = idle.subscribe("/topic/news", AckMode::Auto).await.unwrap();
    // Mid-transaction: what it sent inside the transaction is never published.
    let tx_client = client(&server, "tx").await;
    let tx = tx_client.begin().await.unwrap();
    tx.send("/topic/news", "uncommitted".to_owned())
        .await
        .unwrap();
    // Stuck in a handler that never returns.
    let busy = client(&server, "busy").await;
    busy.send("/app/stuck", "x".to_owned()).await.unwrap();
    // A raw peer that connected and never reads again.
    let mut deaf = RawPeer::connect(server.tcp_addr).await;
    deaf.handshake().await;
    // Over WebSocket too.
    let ws = Client::connect_ws(&server.ws_url, ConnectOptions::new().login("ws"))
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        while server.stomp.connections() < 5 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("all five connected");

    server
        .stomp
        .template()
        .convert_and_send("/topic/news", &"last news")
        .await
        .unwrap();
    // Delivered before the goodbye.
    let m = tokio::time::timeout(WAIT, sub.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.body(), "\"last news\"");

    let deadline = Duration::from_secs(3);
    let started = Instant::now();
    let report = server.stomp.shutdown(deadline).await;
    let took = started.elapsed();
    assert_eq!(report.connections, 5);
    assert!(
        took < deadline + Duration::from_secs(5),
        "shutdown took {took:?}"
    );

    for c in [&idle, &tx_client, &busy, &ws] {
        assert_eq!(farewell(c).await, "server shutting down");
    }
    let seen = deaf.until_closed().await;
    assert!(
        seen.iter().any(
            |f| f.command == Command::Error && f.get("message") == Some("server shutting down")
        ),
        "{seen:?}"
    );

    // Every session connected once and disconnected once; the uncommitted SEND was never
    // published (the idle subscriber saw only the last news).
    let mut count: HashMap<String, (usize, usize)> = HashMap::new();
    for e in events.lock().iter() {
        let entry = count.entry(e.session().to_owned()).or_default();
        match e {
            SessionEvent::Connected { .. } => entry.0 += 1,
            SessionEvent::Disconnected { .. } => entry.1 += 1,
            _ => {}
        }
    }
    assert_eq!(count.len(), 5, "{count:?}");
    assert!(count.values().all(|c| *c == (1, 1)), "{count:?}");
    assert!(sub.try_next().is_none());
    assert_eq!(server.stomp.connections(), 0);

    // Draining: no new sessions, readiness says so, liveness still answers.
    let ready = http_get(&server, "/health/ready").await;
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");
    assert!(ready.contains("\"status\":\"draining\""), "{ready}");
    assert!(
        http_get(&server, "/health/live")
            .await
            .starts_with("HTTP/1.1 200")
    );
    let refused = Client::connect_ws(&server.ws_url, ConnectOptions::new()).await;
    assert!(
        refused.is_err(),
        "a WebSocket upgrade while draining is refused"
    );
    match tokio::net::TcpStream::connect(server.tcp_addr).await {
        Err(_) => {}
        Ok(mut s) => {
            // Accepted by the kernel before the listener closed: nothing answers.
            s.write_all(b"CONNECT\naccept-version:1.2\n\n\0").await.ok();
            let mut buf = [0u8; 64];
            let n = tokio::time::timeout(WAIT, s.read(&mut buf))
                .await
                .expect("closed in time");
            assert!(matches!(n, Ok(0) | Err(_)), "no CONNECTED while draining");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_cannot_take_the_goodbye_is_cut_at_the_deadline() {
    let events: Arc<Mutex<Vec<SessionEvent>>> = Arc::default();
    // Room for far more than the socket buffers hold, so that the writer blocks rather
    // than the slow-consumer policy cutting the peer first.
    let limits = Limits {
        max_outbound_bytes: 64 * 1024 * 1024,
        ..Limits::default()
    };
    let server = serve_with(events.clone(), limits).await;
    // A raw peer that stopped reading while a large backlog is queued for it: its socket
    // buffers fill and the goodbye cannot be written.
    let mut deaf = RawPeer::connect(server.tcp_addr).await;
    deaf.handshake().await;
    deaf.send("SUBSCRIBE\nid:0\ndestination:/topic/flood\nreceipt:r\n\n\0")
        .await;
    match deaf.next().await {
        Seen::Frame(f) if f.command == Command::Receipt => {}
        other => panic!("expected the RECEIPT, got {other:?}"),
    }
    let body = "x".repeat(32 * 1024);
    for _ in 0..640 {
        let _ = server
            .stomp
            .template()
            .convert_and_send("/topic/flood", &body)
            .await;
    }
    let deadline = Duration::from_millis(500);
    let report = server.stomp.shutdown(deadline).await;
    assert_eq!(report.connections, 1);
    assert_eq!(report.forced, 1, "the peer could not be said goodbye to");
    assert_eq!(server.stomp.connections(), 0, "cut and cleaned up");
    let disconnects = events
        .lock()
        .iter()
        .filter(|e| matches!(e, SessionEvent::Disconnected { .. }))
        .count();
    assert_eq!(disconnects, 1);
    drop(deaf);
}
