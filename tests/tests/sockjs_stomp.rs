//! STOMP over SockJS reaches the same session core as WebSocket and TCP: the library
//! client over xhr-streaming (`Client::connect_sockjs`) against `StompServer::sockjs`, next to
//! TCP clients, with the server's handlers, limits and heart-beats.

use std::time::Duration;

use bytes::Bytes;
use stomp_runtime::broker::AckMode;
use stomp_runtime::client::{Client, ClientError, ConnectOptions};
use stomp_runtime::config::Limits;
use stomp_runtime::prelude::*;
use stomp_runtime::transport::sockjs::SockJsConfig;
use stomp_runtime::{SessionEvent, StompServer, StompServerBuilder, send_to};
use stomp_tests::{TestServer, WAIT, start_app};
use tokio::sync::mpsc;
use tokio::time::timeout;

#[message_mapping("/sockjs.shout")]
#[send_to("/topic/sockjs.shouts")]
async fn shout(Payload(text): Payload<String>) -> String {
    text.to_uppercase()
}

async fn serve(builder: StompServerBuilder, config: SockJsConfig) -> TestServer {
    let stomp = builder.build().expect("handlers are consistent");
    let endpoint = stomp.sockjs_with("/ws", config);
    start_app(stomp, endpoint).await
}

fn url(server: &TestServer) -> String {
    format!("http://{}/ws", server.http_addr)
}

async fn next(sub: &mut stomp_runtime::client::Subscription) -> String {
    let m = timeout(WAIT, sub.next())
        .await
        .expect("a message in time")
        .expect("the subscription is open");
    m.text().expect("UTF-8 body").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockjs_and_tcp_clients_share_the_broker_and_the_handlers() {
    let server = serve(StompServer::builder(), SockJsConfig::default()).await;
    let browser = Client::connect_sockjs(&url(&server), ConnectOptions::new())
        .await
        .expect("a SockJS session opens");
    assert_eq!(browser.version(), stomp_runtime::frame::Version::V1_2);
    let device = Client::connect_tcp(server.tcp_addr, ConnectOptions::new())
        .await
        .expect("TCP connects");

    // TCP publishes, SockJS receives; the body carries what SockJS must escape.
    let mut topic = browser
        .subscribe("/topic/sockjs.shared", AckMode::Auto)
        .await
        .unwrap();
    let tricky = "line\n\"q\" \\ \u{2028}\u{200d}\u{fff0} ✓";
    device
        .send_receipted("/topic/sockjs.shared", tricky, Default::default())
        .await
        .unwrap();
    assert_eq!(next(&mut topic).await, tricky);

    // SockJS publishes to a queue with a receipt; TCP takes it and acks.
    let mut jobs = device
        .subscribe("/queue/sockjs.jobs", AckMode::ClientIndividual)
        .await
        .unwrap();
    browser
        .send_receipted("/queue/sockjs.jobs", "job 1", Default::default())
        .await
        .unwrap();
    let job = timeout(WAIT, jobs.next()).await.unwrap().unwrap();
    assert_eq!(job.text(), Some("job 1"));
    device.ack(&job).await.unwrap();

    // An application handler answers a SockJS client like any other.
    let mut shouts = device
        .subscribe("/topic/sockjs.shouts", AckMode::Auto)
        .await
        .unwrap();
    let mut text = Headers::new();
    text.push("content-type", "text/plain");
    browser
        .send_receipted("/app/sockjs.shout", "hello", text)
        .await
        .unwrap();
    assert_eq!(next(&mut shouts).await, "HELLO");

    browser.disconnect().await.expect("DISCONNECT is receipted");
    device.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_stream_reconnects_at_the_byte_limit_without_losing_messages() {
    let config = SockJsConfig {
        response_limit: 2048,
        ..SockJsConfig::default()
    };
    let server = serve(StompServer::builder(), config).await;
    let browser = Client::connect_sockjs(&url(&server), ConnectOptions::new())
        .await
        .unwrap();
    let device = Client::connect_tcp(server.tcp_addr, ConnectOptions::new())
        .await
        .unwrap();
    let mut topic = browser
        .subscribe("/topic/sockjs.long", AckMode::Auto)
        .await
        .unwrap();
    // About 60 KiB through a 2 KiB streaming limit: some thirty responses.
    for i in 0..200 {
        let body = format!("{i:03} {}", "x".repeat(300));
        device.send("/topic/sockjs.long", body).await.unwrap();
    }
    for i in 0..200 {
        let got = next(&mut topic).await;
        assert!(
            got.starts_with(&format!("{i:03} ")),
            "message {i}: {got:.10}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_limits_and_heartbeats_hold_over_sockjs() {
    let limits = Limits {
        max_frame_size: 1024,
        ..Limits::default()
    };
    let server = serve(
        StompServer::builder().limits(limits).heartbeat(100, 0),
        SockJsConfig::default(),
    )
    .await;
    let client = Client::connect_sockjs(&url(&server), ConnectOptions::new().heartbeat(0, 100))
        .await
        .unwrap();
    // STOMP heart-beats arrive as SockJS messages.
    let deadline = tokio::time::Instant::now() + WAIT;
    while client.heartbeats_received() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "no heart-beats");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A frame over the limit gets the ERROR frame and the session ends.
    let big = Bytes::from(vec![b'x'; 4096]);
    let _ = client
        .send_receipted("/topic/sockjs.big", big, Default::default())
        .await;
    match timeout(WAIT, client.closed())
        .await
        .expect("closed in time")
    {
        Some(ClientError::Server { message, body, .. }) => {
            let body = String::from_utf8_lossy(&body);
            assert_eq!(message, "frame too large", "{body}");
            assert!(body.contains("1024"), "{body}");
        }
        other => panic!("expected the server's ERROR, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_sockjs_session_ends_its_stomp_session() {
    let (tx, mut events) = mpsc::unbounded_channel();
    let builder = StompServer::builder().on_session_event(move |event, _| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(event);
        }
    });
    let config = SockJsConfig {
        disconnect_delay: Duration::from_millis(200),
        ..SockJsConfig::default()
    };
    let server = serve(builder, config).await;
    let client = Client::connect_sockjs(&url(&server), ConnectOptions::new())
        .await
        .unwrap();
    let _sub = client
        .subscribe("/topic/sockjs.gone", AckMode::Auto)
        .await
        .unwrap();
    let connected = timeout(WAIT, events.recv()).await.unwrap().unwrap();
    let SessionEvent::Connected { session, .. } = connected else {
        panic!("first event: {connected:?}")
    };
    // Gone without DISCONNECT: the streaming request is cut, nobody polls again.
    drop(_sub);
    drop(client);
    // (Subscription events may come first.)
    loop {
        let event = timeout(WAIT, events.recv())
            .await
            .expect("the session ends in time")
            .expect("the server runs");
        if let SessionEvent::Disconnected { session: s, .. } = event {
            assert_eq!(s, session);
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_reaches_sockjs_sessions_and_refuses_new_ones() {
    let server = serve(StompServer::builder(), SockJsConfig::default()).await;
    let client = Client::connect_sockjs(&url(&server), ConnectOptions::new())
        .await
        .unwrap();
    let stomp = server.stomp.clone();
    let report = tokio::spawn(async move { stomp.shutdown(WAIT).await });
    match timeout(WAIT, client.closed())
        .await
        .expect("closed in time")
    {
        Some(ClientError::Server { message, .. }) => assert_eq!(message, "server shutting down"),
        other => panic!("expected the server's ERROR, got {other:?}"),
    }
    let report = report.await.expect("shutdown runs");
    assert_eq!((report.connections, report.forced), (1, 0));
    let r = stomp_tests::http::post(server.http_addr, "/ws/000/late/xhr", "").await;
    assert_eq!(r.status, 503);
    assert!(r.text().await.contains("server shutting down"));
}
