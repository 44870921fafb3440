//! Connection-level behaviour with the client, over TCP and WebSocket: version
//! negotiation, refused logins, DISCONNECT, heart-beats in both directions, and slow
//! consumers.

mod client_support;

use std::time::Duration;

use bytes::BytesMut;
use stomp_runtime::StompServer;
use stomp_runtime::broker::AckMode;
use stomp_runtime::client::{ClientError, ConnectOptions};
use stomp_runtime::config::Limits;
use stomp_runtime::frame::{Command, Frame, Headers, Parsed, Parser, Version};
use stomp_runtime::security::{AuthError, Authenticator, Principal};
use stomp_tests::{WAIT, start, start_default};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use client_support::{Transport, eventually, next, numbered, on_both_transports, text};

on_both_transports!(
    each_version_is_negotiated_and_acks_in_its_own_terms,
    refused_login_fails_connect_with_the_servers_error,
    disconnect_ends_the_session_cleanly,
    heart_beats_flow_both_ways,
    silent_client_is_dropped_with_an_error,
    slow_consumer_is_cut_off_and_others_keep_receiving,
);

async fn each_version_is_negotiated_and_acks_in_its_own_terms(t: Transport) {
    let server = start_default().await;
    let publisher = t.connect(&server).await;
    assert_eq!(
        publisher.version(),
        Version::V1_2,
        "the highest is the default"
    );
    for version in Version::ALL {
        let queue = format!("/queue/v{}", version.as_str());
        let opts = ConnectOptions::new().accept_versions([version]);
        let first = t.connect_with(&server, opts.clone()).await;
        assert_eq!(first.version(), version);
        assert_eq!(
            first.connected_headers().get("version"),
            Some(version.as_str())
        );
        let mut a = first
            .subscribe(&queue, AckMode::ClientIndividual)
            .await
            .unwrap();
        let headers: Headers = [("x-colon", "a:b")].into_iter().collect();
        for body in numbered("m", 2) {
            publisher
                .send_with(&queue, body, headers.clone())
                .await
                .unwrap();
        }
        let m0 = next(&mut a).await;
        let m1 = next(&mut a).await;
        assert_eq!((text(&m0), text(&m1)), ("m0".into(), "m1".into()));
        assert_eq!(m1.header("x-colon"), Some("a:b"), "{version}");
        assert_eq!(m1.ack_id().is_some(), version == Version::V1_2);
        // An ACK in the wrong terms would end the session with an ERROR.
        first.ack(&m1).await.unwrap();
        if version == Version::V1_0 {
            assert!(matches!(
                first.nack(&m0).await,
                Err(ClientError::InvalidRequest(_))
            ));
        } else {
            first.nack(&m0).await.unwrap();
        }
        // m0 (NACKed, or left unacked on 1.0) goes to the next subscriber; m1 does not.
        let second = t.connect_with(&server, opts).await;
        let mut b = second.subscribe(&queue, AckMode::Auto).await.unwrap();
        first.disconnect().await.unwrap();
        assert!(first.closed().await.is_none(), "{version}");
        assert_eq!(text(&next(&mut b).await), "m0", "{version}");
        publisher.send(&queue, "after").await.unwrap();
        assert_eq!(text(&next(&mut b).await), "after", "{version}");
    }
}

/// Lets `alice` in with passcode `secret`, nobody else.
struct OnlyAlice;

#[stomp_runtime::async_trait]
impl Authenticator for OnlyAlice {
    async fn authenticate(&self, headers: &Headers) -> Result<Option<Principal>, AuthError> {
        match (headers.get("login"), headers.get("passcode")) {
            (Some("alice"), Some("secret")) => Ok(Some(Principal::new("alice"))),
            _ => Err(AuthError("bad credentials".into())),
        }
    }
}

async fn refused_login_fails_connect_with_the_servers_error(t: Transport) {
    let server = start(
        StompServer::builder()
            .authenticator(OnlyAlice)
            .build()
            .unwrap(),
    )
    .await;
    let wrong = ConnectOptions::new().login("alice").passcode("guess");
    let err = t.try_connect(&server, wrong).await.unwrap_err();
    let ClientError::Server { message, body, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(message, "authentication failed");
    assert_eq!(&body[..], b"bad credentials");
    let right = ConnectOptions::new().login("alice").passcode("secret");
    let client = t.connect_with(&server, right).await;
    assert_eq!(client.connected_headers().get("user-name"), Some("alice"));
    assert!(client.session().is_some());
    assert!(client.server().is_some_and(|s| s.starts_with("stomp-rs/")));
}

async fn disconnect_ends_the_session_cleanly(t: Transport) {
    let server = start_default().await;
    let client = t.connect(&server).await;
    let mut sub = client.subscribe("/topic/bye", AckMode::Auto).await.unwrap();
    client.disconnect().await.unwrap();
    assert!(client.is_closed());
    assert!(client.closed().await.is_none());
    assert!(
        tokio::time::timeout(WAIT, sub.next())
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        client.send("/topic/bye", "late").await,
        Err(ClientError::Closed)
    ));
    assert!(matches!(
        client.subscribe("/topic/bye", AckMode::Auto).await,
        Err(ClientError::Closed)
    ));
    // A second DISCONNECT is a no-op.
    client.disconnect().await.unwrap();
}

async fn heart_beats_flow_both_ways(t: Transport) {
    // The server sends every 300 ms and wants a beat every 200 ms; it tolerates three times
    // that, so a busy machine does not make the test flaky.
    let mut config = stomp_runtime::ServerConfig::default();
    config.heartbeat.send = Duration::from_millis(300);
    config.heartbeat.receive = Duration::from_millis(200);
    config.heartbeat.grace = 3.0;
    let server = start(StompServer::builder().config(config).build().unwrap()).await;
    let client = t
        .connect_with(&server, ConnectOptions::new().heartbeat(100, 300))
        .await;
    assert_eq!(
        client.heartbeat_intervals(),
        (Duration::from_millis(200), Duration::from_millis(300))
    );
    // Five server beats take 1.5 s: long enough for the server to have dropped a client
    // whose own beats were missing.
    eventually("five heart-beats from the server", || {
        client.heartbeats_received() >= 5
    })
    .await;
    assert!(!client.is_closed(), "{:?}", client.closed().await);
    let mut sub = client
        .subscribe("/topic/alive", AckMode::Auto)
        .await
        .unwrap();
    client
        .send_receipted("/topic/alive", "still here", Headers::new())
        .await
        .unwrap();
    assert_eq!(text(&next(&mut sub).await), "still here");
}

async fn silent_client_is_dropped_with_an_error(t: Transport) {
    let server = start(StompServer::builder().heartbeat(0, 100).build().unwrap()).await;
    let opts = ConnectOptions::new()
        .heartbeat(100, 0)
        .send_heartbeats(false);
    let client = t.connect_with(&server, opts).await;
    let cause = tokio::time::timeout(WAIT, client.closed())
        .await
        .expect("dropped within WAIT")
        .expect("closed by an error");
    assert_eq!(
        cause.server_message(),
        Some("heart-beat timeout"),
        "{cause:?}"
    );
}

/// A raw TCP subscriber that never reads, with a small receive buffer so the server's
/// queue for it fills quickly.
struct SlowPeer {
    stream: TcpStream,
    parser: Parser,
    buf: BytesMut,
}

impl SlowPeer {
    async fn connect(addr: std::net::SocketAddr, subscribe: &str) -> SlowPeer {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let hello = format!("CONNECT\naccept-version:1.2\nhost:localhost\n\n\0{subscribe}");
        stream.write_all(hello.as_bytes()).await.unwrap();
        let limits = Limits {
            max_frame_size: 16 * 1024 * 1024,
            ..Limits::default()
        };
        let mut peer = SlowPeer {
            stream,
            parser: Parser::new(&limits),
            buf: BytesMut::new(),
        };
        let connected = peer.frame().await.expect("CONNECTED");
        assert_eq!(connected.command, Command::Connected);
        let receipt = peer.frame().await.expect("RECEIPT");
        assert_eq!(receipt.command, Command::Receipt, "{receipt:?}");
        peer
    }

    /// The next frame; `None` once the server has closed the connection.
    async fn frame(&mut self) -> Option<Frame> {
        let read = async {
            loop {
                match self.parser.parse(&mut self.buf) {
                    Ok(Some(Parsed::Frame(f))) => return Some(f),
                    Ok(Some(Parsed::HeartBeat)) => {}
                    Ok(None) => match self.stream.read_buf(&mut self.buf).await {
                        Ok(0) | Err(_) => return None,
                        Ok(_) => {}
                    },
                    // A frame cut short by the teardown.
                    Err(_) => return None,
                }
            }
        };
        tokio::time::timeout(WAIT, read)
            .await
            .expect("the server answers or closes within WAIT")
    }
}

async fn slow_consumer_is_cut_off_and_others_keep_receiving(t: Transport) {
    const WINDOW: usize = 8;
    let limits = Limits {
        max_outbound_bytes: 64 * 1024,
        ..Limits::default()
    };
    let server = start(StompServer::builder().limits(limits).build().unwrap()).await;
    let mut slow = SlowPeer::connect(
        server.tcp_addr,
        "SUBSCRIBE\nid:flood\ndestination:/topic/flood\n\n\0\
         SUBSCRIBE\nid:held\ndestination:/queue/held\nack:client-individual\nreceipt:r\n\n\0",
    )
    .await;
    let publisher = t.connect(&server).await;
    // Two queue messages go to the slow peer, which never acknowledges them.
    for body in ["held0", "held1"] {
        publisher
            .send_receipted("/queue/held", body, Headers::new())
            .await
            .unwrap();
    }
    let normal = t.connect(&server).await;
    let mut flood = normal
        .subscribe("/topic/flood", AckMode::Auto)
        .await
        .unwrap();
    let mut held = normal
        .subscribe("/queue/held", AckMode::Auto)
        .await
        .unwrap();

    // Flood in windows the normal subscriber keeps up with, so only the slow peer falls
    // behind, until the server lets go of the slow session (it never reads a byte): the
    // queue messages it held then go to the other subscriber. How much the kernel buffers
    // before that varies, so the flood stops on the event, not at a fixed count; past
    // 16 MiB (four times Linux's largest default send buffer) it slows down while the
    // server tears the session down.
    const GENTLE_AFTER: usize = 4096;
    let body = "x".repeat(4096);
    let deadline = tokio::time::Instant::now() + 3 * WAIT;
    let mut released = Vec::new();
    let mut sent = 0;
    while released.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slow session was not released after {sent} messages"
        );
        for i in sent..sent + WINDOW {
            publisher
                .send("/topic/flood", format!("{i:06}{body}"))
                .await
                .unwrap();
        }
        for i in sent..sent + WINDOW {
            let m = next(&mut flood).await;
            assert_eq!(&text(&m)[..6], format!("{i:06}"), "in order, none lost");
        }
        sent += WINDOW;
        if sent > GENTLE_AFTER {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        while let Some(m) = held.try_next() {
            released.push(text(&m));
        }
    }
    released.sort();
    assert_eq!(released, ["held0", "held1"]);
    assert!(!normal.is_closed() && !publisher.is_closed());
    publisher
        .send_receipted("/topic/flood", "last", Headers::new())
        .await
        .unwrap();
    assert_eq!(text(&next(&mut flood).await), "last");

    // The slow peer finds its connection closed after part of the flood.
    let mut messages = 0;
    while let Some(frame) = slow.frame().await {
        match frame.command {
            Command::Message => messages += 1,
            Command::Error => assert_eq!(frame.get("message"), Some("slow consumer")),
            other => panic!("unexpected {other}"),
        }
    }
    assert!(messages < sent, "the slow peer got all {messages} messages");
}
