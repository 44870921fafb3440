//! COMMIT publishes all of a transaction's messages or none, and the client learns which:
//! a RECEIPT when all were published, an ERROR saying none was.

use stomp_runtime::StompServer;
use stomp_runtime::config::Limits;
use stomp_runtime::frame::Command;
use stomp_tests::{RawPeer, Seen, TestServer, start};

/// Queues keep at most two messages each.
async fn server() -> TestServer {
    let limits = Limits {
        max_queue_backlog: 2,
        ..Limits::default()
    };
    let stomp = StompServer::builder()
        .limits(limits)
        .heartbeat(0, 0)
        .build()
        .expect("valid configuration");
    start(stomp).await
}

/// A subscriber, with the messages that arrived before its SUBSCRIBE's receipt (a queue's
/// backlog is handed over first).
struct Subscriber {
    peer: RawPeer,
    early: std::collections::VecDeque<String>,
}

async fn subscriber(server: &TestServer, destination: &str) -> Subscriber {
    let mut peer = RawPeer::connect(server.tcp_addr).await;
    peer.handshake().await;
    peer.send(format!(
        "SUBSCRIBE\nid:s\ndestination:{destination}\nreceipt:sub\n\n\0"
    ))
    .await;
    let mut early = std::collections::VecDeque::new();
    loop {
        let frame = peer.frame().await;
        match frame.command {
            Command::Message => early.push_back(String::from_utf8_lossy(&frame.body).into_owned()),
            _ => {
                assert_eq!(frame.get("receipt-id"), Some("sub"), "{frame:?}");
                return Subscriber { peer, early };
            }
        }
    }
}

/// Sends `frames` (each answered with a RECEIPT) on a fresh connection, then COMMIT.
async fn transaction(
    server: &TestServer,
    sends: &[(&str, &str)],
) -> Vec<stomp_runtime::frame::Frame> {
    let mut peer = RawPeer::connect(server.tcp_addr).await;
    peer.handshake().await;
    peer.send("BEGIN\ntransaction:t\nreceipt:b\n\n\0").await;
    assert_eq!(peer.frame().await.get("receipt-id"), Some("b"));
    for (i, (destination, body)) in sends.iter().enumerate() {
        peer.send(format!(
            "SEND\ndestination:{destination}\ntransaction:t\nreceipt:s{i}\n\n{body}\0"
        ))
        .await;
        assert_eq!(
            peer.frame().await.get("receipt-id"),
            Some(format!("s{i}").as_str())
        );
    }
    peer.send("COMMIT\ntransaction:t\nreceipt:c\n\n\0").await;
    let mut frames = vec![peer.frame().await];
    if frames[0].command == Command::Error {
        frames.extend(peer.until_closed().await);
    }
    frames
}

/// The next MESSAGE body.
async fn next_body(sub: &mut Subscriber) -> String {
    if let Some(body) = sub.early.pop_front() {
        return body;
    }
    match sub.peer.next().await {
        Seen::Frame(f) if f.command == Command::Message => {
            String::from_utf8_lossy(&f.body).into_owned()
        }
        other => panic!("unexpected {other:?}"),
    }
}

/// Publishes a marker to `destination`; whatever a subscriber receives before it was
/// published before it.
async fn marker(server: &TestServer, destination: &str) {
    let mut publisher = RawPeer::connect(server.tcp_addr).await;
    publisher.handshake().await;
    publisher
        .send(format!(
            "SEND\ndestination:{destination}\nreceipt:m\n\nmarker\0"
        ))
        .await;
    assert_eq!(publisher.frame().await.get("receipt-id"), Some("m"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_fits_publishes_everything_and_answers_with_its_receipt() {
    let server = server().await;
    let mut topic = subscriber(&server, "/topic/tx-ok").await;
    let frames = transaction(
        &server,
        &[
            ("/topic/tx-ok", "one"),
            ("/queue/tx-ok", "two"),
            ("/topic/tx-ok", "three"),
        ],
    )
    .await;
    assert_eq!(frames[0].command, Command::Receipt, "{frames:?}");
    assert_eq!(frames[0].get("receipt-id"), Some("c"));
    assert_eq!(next_body(&mut topic).await, "one");
    assert_eq!(next_body(&mut topic).await, "three");
    let mut queue = subscriber(&server, "/queue/tx-ok").await;
    assert_eq!(next_body(&mut queue).await, "two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_that_does_not_fit_publishes_nothing_and_says_so() {
    let server = server().await;
    let mut topic = subscriber(&server, "/topic/tx-none").await;
    // The third queue message cannot wait (two per queue): the whole COMMIT is refused,
    // the topic message before it included.
    let frames = transaction(
        &server,
        &[
            ("/topic/tx-none", "topic"),
            ("/queue/tx-none", "q1"),
            ("/queue/tx-none", "q2"),
            ("/queue/tx-none", "q3"),
        ],
    )
    .await;
    let error = frames.last().expect("an ERROR");
    assert_eq!(error.command, Command::Error, "{frames:?}");
    assert_eq!(error.get("message"), Some("transaction not committed"));
    assert_eq!(error.get("receipt-id"), Some("c"));
    let body = String::from_utf8_lossy(&error.body).into_owned();
    assert!(
        body.contains("None of the transaction's messages was published"),
        "{body}"
    );
    assert!(body.contains("full"), "{body}");

    // A message published afterwards is the first the subscribers see.
    marker(&server, "/topic/tx-none").await;
    assert_eq!(next_body(&mut topic).await, "marker");
    marker(&server, "/queue/tx-none").await;
    let mut queue = subscriber(&server, "/queue/tx-none").await;
    assert_eq!(
        next_body(&mut queue).await,
        "marker",
        "no queue message of the refused transaction"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_with_an_unroutable_send_publishes_nothing() {
    let server = server().await;
    let mut topic = subscriber(&server, "/topic/tx-route").await;
    let frames = transaction(&server, &[("/topic/tx-route", "first"), ("/nowhere", "x")]).await;
    let error = frames.last().expect("an ERROR");
    assert_eq!(
        error.get("message"),
        Some("transaction not committed"),
        "{error:?}"
    );
    let body = String::from_utf8_lossy(&error.body).into_owned();
    assert!(body.contains("Nothing handles `/nowhere`"), "{body}");
    marker(&server, "/topic/tx-route").await;
    assert_eq!(next_body(&mut topic).await, "marker");
}
