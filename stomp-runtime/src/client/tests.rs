//! Client tests against a scripted fake server on a loopback socket: handshake outcomes,
//! heart-beats in both directions, and hostile input.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use super::*;
use crate::config::Limits;
use crate::frame::{Parsed, Parser};

/// Upper bound on any wait; a healthy run is far below it.
const WAIT: Duration = Duration::from_secs(10);

/// One accepted connection, read with the real parser.
struct Fake {
    stream: TcpStream,
    buf: BytesMut,
    parser: Parser,
}

impl Fake {
    async fn listen() -> (TcpListener, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    async fn accept(listener: &TcpListener) -> Fake {
        let (stream, _) = listener.accept().await.unwrap();
        Fake {
            stream,
            buf: BytesMut::new(),
            parser: Parser::new(&Limits::default()),
        }
    }

    /// The next frame, or `None` at end of stream; heart-beats are counted in `beats`.
    async fn frame(&mut self, beats: &mut usize) -> Option<Frame> {
        loop {
            match self.parser.parse(&mut self.buf).unwrap() {
                Some(Parsed::Frame(f)) => return Some(f),
                Some(Parsed::HeartBeat) => *beats += 1,
                None => {
                    if self.stream.read_buf(&mut self.buf).await.unwrap_or(0) == 0 {
                        return None;
                    }
                }
            }
        }
    }

    async fn expect(&mut self, command: Command) -> Frame {
        let f = timeout(WAIT, self.frame(&mut 0))
            .await
            .unwrap()
            .expect("frame");
        assert_eq!(f.command, command, "{f:?}");
        f
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads CONNECT and answers with `connected` (a whole encoded frame).
    async fn handshake(listener: &TcpListener, connected: &[u8]) -> (Fake, Frame) {
        let mut fake = Fake::accept(listener).await;
        let connect = fake.expect(Command::Connect).await;
        fake.send(connected).await;
        (fake, connect)
    }
}

const CONNECTED_12: &[u8] = b"CONNECTED\nversion:1.2\nsession:s-1\nserver:fake/1\n\n\0";

#[tokio::test]
async fn connect_sends_options_and_reads_connected() {
    let (listener, addr) = Fake::listen().await;
    let server = tokio::spawn(async move { Fake::handshake(&listener, CONNECTED_12).await });
    let opts = ConnectOptions::new().login("u").heartbeat(0, 0);
    let client = Client::connect_tcp(addr, opts).await.unwrap();
    let (_fake, connect) = server.await.unwrap();
    assert_eq!(connect.get("login"), Some("u"));
    assert_eq!(connect.get("host"), Some("127.0.0.1"));
    assert_eq!(client.version(), Version::V1_2);
    assert_eq!(client.session(), Some("s-1"));
    assert_eq!(client.server(), Some("fake/1"));
    assert_eq!(
        client.heartbeat_intervals(),
        (Duration::ZERO, Duration::ZERO)
    );
}

#[tokio::test]
async fn error_instead_of_connected_fails_connect() {
    let (listener, addr) = Fake::listen().await;
    let server = tokio::spawn(async move {
        Fake::handshake(
            &listener,
            b"ERROR\nmessage:bad login\ncontent-length:4\n\nnope\0",
        )
        .await
    });
    let err = Client::connect_tcp(addr, ConnectOptions::new())
        .await
        .unwrap_err();
    server.await.unwrap();
    let ClientError::Server { message, body, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(message, "bad login");
    assert_eq!(&body[..], b"nope");
}

#[tokio::test]
async fn silent_peer_times_out_connect() {
    let (listener, addr) = Fake::listen().await;
    let server = tokio::spawn(async move { Fake::accept(&listener).await });
    let opts = ConnectOptions::new().connect_timeout(Duration::from_millis(200));
    let err = Client::connect_tcp(addr, opts).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                waiting_for: "CONNECTED",
                ..
            }
        ),
        "{err:?}"
    );
    drop(server.await);
}

#[tokio::test]
async fn missing_version_means_1_0_without_heart_beats() {
    let (listener, addr) = Fake::listen().await;
    let server = tokio::spawn(async move {
        Fake::handshake(&listener, b"CONNECTED\nheart-beat:100,100\n\n\0").await
    });
    let client = Client::connect_tcp(addr, ConnectOptions::new().heartbeat(100, 100))
        .await
        .unwrap();
    let _fake = server.await.unwrap();
    assert_eq!(client.version(), Version::V1_0);
    assert_eq!(
        client.heartbeat_intervals(),
        (Duration::ZERO, Duration::ZERO)
    );
}

#[tokio::test]
async fn version_not_offered_is_a_protocol_error() {
    let (listener, addr) = Fake::listen().await;
    let server = tokio::spawn(async move { Fake::handshake(&listener, CONNECTED_12).await });
    let opts = ConnectOptions::new().accept_versions([Version::V1_1]);
    let err = Client::connect_tcp(addr, opts).await.unwrap_err();
    let _fake = server.await.unwrap();
    assert!(matches!(err, ClientError::Protocol(_)), "{err:?}");
}

#[tokio::test]
async fn silent_server_is_noticed() {
    let (listener, addr) = Fake::listen().await;
    let server = tokio::spawn(async move {
        Fake::handshake(&listener, b"CONNECTED\nversion:1.2\nheart-beat:50,0\n\n\0").await
    });
    let client = Client::connect_tcp(addr, ConnectOptions::new().heartbeat(0, 50))
        .await
        .unwrap();
    // Keep the socket open but say nothing.
    let _fake = server.await.unwrap();
    assert_eq!(client.heartbeat_intervals().1, Duration::from_millis(50));
    let cause = timeout(WAIT, client.closed()).await.unwrap();
    assert!(
        matches!(cause, Some(ClientError::HeartbeatTimeout { .. })),
        "{cause:?}"
    );
}

#[tokio::test]
async fn server_beats_keep_the_connection_alive() {
    let (listener, addr) = Fake::listen().await;
    let server = tokio::spawn(async move {
        let (mut fake, _) =
            Fake::handshake(&listener, b"CONNECTED\nversion:1.2\nheart-beat:200,0\n\n\0").await;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            fake.send(b"\r\n").await;
        }
        fake
    });
    // Beats every 20 ms against a 200 ms interval: far inside the tolerance.
    let client = Client::connect_tcp(addr, ConnectOptions::new().heartbeat(0, 200))
        .await
        .unwrap();
    let _fake = server.await.unwrap();
    timeout(WAIT, async {
        while client.heartbeats_received() < 10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert!(!client.is_closed());
}

#[tokio::test]
async fn client_sends_heart_beats_when_idle() {
    let (listener, addr) = Fake::listen().await;
    let server = tokio::spawn(async move {
        let (mut fake, _) =
            Fake::handshake(&listener, b"CONNECTED\nversion:1.2\nheart-beat:0,50\n\n\0").await;
        // Nothing but end-of-lines may arrive.
        let mut beats = 0;
        while beats < 3 {
            let mut byte = [0u8; 1];
            timeout(WAIT, fake.stream.read_exact(&mut byte))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(byte[0], b'\n');
            beats += 1;
        }
    });
    let client = Client::connect_tcp(addr, ConnectOptions::new().heartbeat(50, 0))
        .await
        .unwrap();
    assert_eq!(client.heartbeat_intervals().0, Duration::from_millis(50));
    timeout(WAIT, server).await.unwrap().unwrap();
}

#[tokio::test]
async fn muted_client_sends_no_heart_beats() {
    let (listener, addr) = Fake::listen().await;
    let server = tokio::spawn(async move {
        let (mut fake, _) =
            Fake::handshake(&listener, b"CONNECTED\nversion:1.2\nheart-beat:0,20\n\n\0").await;
        let mut beats = 0;
        let frame = fake.frame(&mut beats).await;
        (frame, beats)
    });
    let opts = ConnectOptions::new()
        .heartbeat(20, 0)
        .send_heartbeats(false);
    let client = Client::connect_tcp(addr, opts).await.unwrap();
    // Several intervals of silence, then a frame: nothing may precede it.
    tokio::time::sleep(Duration::from_millis(150)).await;
    client.send("/queue/x", "after").await.unwrap();
    let (frame, beats) = timeout(WAIT, server).await.unwrap().unwrap();
    assert_eq!(frame.unwrap().command, Command::Send);
    assert_eq!(beats, 0);
}

#[tokio::test]
async fn subscribe_waits_for_receipt_and_routes_messages() {
    let (listener, addr) = Fake::listen().await;
    let server = tokio::spawn(async move {
        let (mut fake, _) = Fake::handshake(&listener, CONNECTED_12).await;
        let sub = fake.expect(Command::Subscribe).await;
        let id = sub.get("id").unwrap().to_owned();
        let receipt = sub.get("receipt").unwrap().to_owned();
        assert_eq!(sub.get("destination"), Some("/topic/a"));
        assert_eq!(sub.get("ack"), Some("client-individual"));
        assert_eq!(sub.get("selector"), Some("x = 1"));
        // A message may overtake the receipt; it must not be lost.
        let msg = Frame::new(Command::Message)
            .header("subscription", id.as_str())
            .header("message-id", "m-1")
            .header("destination", "/topic/a")
            .header("ack", "9")
            .body(&b"a\0b"[..]);
        fake.send(&msg.encode(Version::V1_2)).await;
        fake.send(
            &Frame::new(Command::Receipt)
                .header("receipt-id", receipt)
                .encode(Version::V1_2),
        )
        .await;
        let ack = fake.expect(Command::Ack).await;
        assert_eq!(ack.get("id"), Some("9"));
        let unsub = fake.expect(Command::Unsubscribe).await;
        assert_eq!(unsub.get("id"), Some(id.as_str()));
        let receipt = unsub.get("receipt").unwrap().to_owned();
        fake.send(
            &Frame::new(Command::Receipt)
                .header("receipt-id", receipt)
                .encode(Version::V1_2),
        )
        .await;
        let disconnect = fake.expect(Command::Disconnect).await;
        let receipt = disconnect.get("receipt").unwrap().to_owned();
        fake.send(
            &Frame::new(Command::Receipt)
                .header("receipt-id", receipt)
                .encode(Version::V1_2),
        )
        .await;
        fake
    });
    let client = Client::connect_tcp(addr, ConnectOptions::new())
        .await
        .unwrap();
    let headers: Headers = [("selector", "x = 1")].into_iter().collect();
    let mut sub = client
        .subscribe_with("/topic/a", AckMode::ClientIndividual, headers)
        .await
        .unwrap();
    let m = timeout(WAIT, sub.next()).await.unwrap().unwrap();
    assert_eq!(&m.body()[..], b"a\0b");
    assert_eq!(m.subscription(), sub.id());
    client.ack(&m).await.unwrap();
    sub.unsubscribe().await.unwrap();
    client.disconnect().await.unwrap();
    assert!(client.closed().await.is_none());
    assert!(matches!(
        client.send("/topic/a", "late").await,
        Err(ClientError::Closed)
    ));
    let _fake = server.await.unwrap();
}

#[tokio::test]
async fn error_frame_fails_the_pending_receipt() {
    let (listener, addr) = Fake::listen().await;
    let server = tokio::spawn(async move {
        let (mut fake, _) = Fake::handshake(&listener, CONNECTED_12).await;
        let send = fake.expect(Command::Send).await;
        let receipt = send.get("receipt").unwrap().to_owned();
        let error = Frame::error("no route", "nothing there").header("receipt-id", receipt);
        fake.send(&error.encode(Version::V1_2)).await;
        fake
    });
    let client = Client::connect_tcp(addr, ConnectOptions::new())
        .await
        .unwrap();
    let err = client
        .send_receipted("/nowhere", "x", Headers::new())
        .await
        .unwrap_err();
    assert_eq!(err.server_message(), Some("no route"));
    let cause = client.closed().await.unwrap();
    assert_eq!(cause.server_message(), Some("no route"));
    let _fake = server.await.unwrap();
}

#[tokio::test]
async fn receipt_that_never_comes_times_out() {
    let (listener, addr) = Fake::listen().await;
    let server = tokio::spawn(async move { Fake::handshake(&listener, CONNECTED_12).await });
    let opts = ConnectOptions::new().receipt_timeout(Duration::from_millis(100));
    let client = Client::connect_tcp(addr, opts).await.unwrap();
    let _fake = server.await.unwrap();
    let err = client
        .request(Frame::new(Command::Begin).header("transaction", "t"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Timeout {
                waiting_for: "RECEIPT",
                ..
            }
        ),
        "{err:?}"
    );
    // A missed receipt does not end the connection.
    assert!(!client.is_closed());
}

#[tokio::test]
async fn malformed_input_closes_without_panicking() {
    let (listener, addr) = Fake::listen().await;
    let server = tokio::spawn(async move {
        let (mut fake, _) = Fake::handshake(&listener, CONNECTED_12).await;
        fake.send(b"BOGUS\n\n\0").await;
        fake
    });
    let client = Client::connect_tcp(addr, ConnectOptions::new())
        .await
        .unwrap();
    let _fake = server.await.unwrap();
    let cause = timeout(WAIT, client.closed()).await.unwrap();
    assert!(
        matches!(cause, Some(ClientError::Malformed(_))),
        "{cause:?}"
    );
}

#[tokio::test]
async fn hang_up_ends_subscriptions() {
    let (listener, addr) = Fake::listen().await;
    let server = tokio::spawn(async move {
        let (mut fake, _) = Fake::handshake(&listener, CONNECTED_12).await;
        let sub = fake.expect(Command::Subscribe).await;
        let receipt = sub.get("receipt").unwrap().to_owned();
        fake.send(
            &Frame::new(Command::Receipt)
                .header("receipt-id", receipt)
                .encode(Version::V1_2),
        )
        .await;
        // Dropping the socket hangs up.
    });
    let client = Client::connect_tcp(addr, ConnectOptions::new())
        .await
        .unwrap();
    let mut sub = client.subscribe("/topic/a", AckMode::Auto).await.unwrap();
    server.await.unwrap();
    assert!(timeout(WAIT, sub.next()).await.unwrap().is_none());
    assert!(matches!(client.closed().await, Some(ClientError::Closed)));
}

#[tokio::test]
async fn nack_on_1_0_is_refused_locally() {
    let (listener, addr) = Fake::listen().await;
    let server =
        tokio::spawn(
            async move { Fake::handshake(&listener, b"CONNECTED\nversion:1.0\n\n\0").await },
        );
    let client = Client::connect_tcp(addr, ConnectOptions::new())
        .await
        .unwrap();
    let _fake = server.await.unwrap();
    let m = Message::new(Frame::new(Command::Message).header("message-id", "m-1"));
    assert!(matches!(
        client.nack(&m).await,
        Err(ClientError::InvalidRequest(_))
    ));
    assert!(!client.is_closed());
}
