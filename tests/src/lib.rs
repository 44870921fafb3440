//! Support for the integration tests: a real server on ephemeral loopback ports (WebSocket
//! and TCP), and a raw TCP peer for byte-level protocol checks.

pub mod http;
pub mod proxy;
pub mod raw_ws;
pub mod relay;
pub mod script;

use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use actix_web::{App, HttpServer};
use bytes::BytesMut;
use stomp_runtime::StompServer;
use stomp_runtime::config::Limits;
use stomp_runtime::frame::{Frame, Parsed, Parser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Generous bound on any single wait in a test; a healthy run never gets near it.
pub const WAIT: Duration = Duration::from_secs(10);

/// A server listening on `127.0.0.1`, WebSocket at `/ws` and raw TCP.
pub struct TestServer {
    /// The server (for its broker and configuration).
    pub stomp: StompServer,
    /// `ws://127.0.0.1:PORT/ws` (with [`start`]).
    pub ws_url: String,
    /// The HTTP address (WebSocket endpoint, and the routes given to [`start_app`]).
    pub http_addr: SocketAddr,
    /// The raw STOMP address.
    pub tcp_addr: SocketAddr,
    http: actix_web::dev::ServerHandle,
    tcp_task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.tcp_task.abort();
        let http = self.http.clone();
        std::thread::spawn(move || {
            actix_rt::System::new().block_on(http.stop(false));
        });
    }
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Starts `stomp` on fresh ephemeral ports, WebSocket at `/ws`. Call from a
/// multi-threaded tokio test.
pub async fn start(stomp: StompServer) -> TestServer {
    let ws = stomp.websocket("/ws");
    start_app(stomp, ws).await
}

/// Starts `stomp` for raw TCP and an actix-web app configured by `app` (which mounts the
/// WebSocket endpoint where it likes) on fresh ephemeral ports.
pub async fn start_app<F>(stomp: StompServer, app: F) -> TestServer
where
    F: Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
{
    init_tracing();
    let (tx, rx) = std_mpsc::channel();
    std::thread::spawn(move || {
        let sys = actix_rt::System::new();
        sys.block_on(async move {
            let server = HttpServer::new(move || App::new().configure(app.clone()))
                .workers(1)
                .disable_signals()
                // A client that goes away during a long-poll is noticed at once (SockJS).
                .h1_allow_half_closed(false)
                .shutdown_timeout(1)
                .bind(("127.0.0.1", 0))
                .expect("bind an ephemeral loopback port");
            let addr = server.addrs()[0];
            let server = server.run();
            tx.send((addr, server.handle())).expect("test is waiting");
            let _ = server.await;
        });
    });
    let (ws_addr, http) =
        tokio::task::spawn_blocking(move || rx.recv().expect("http server started"))
            .await
            .expect("join");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind tcp");
    let tcp_addr = listener.local_addr().expect("local addr");
    let tcp_stomp = stomp.clone();
    let tcp_task = tokio::spawn(async move {
        let _ = tcp_stomp.serve_tcp(listener).await;
    });
    TestServer {
        stomp,
        ws_url: format!("ws://{ws_addr}/ws"),
        http_addr: ws_addr,
        tcp_addr,
        http,
        tcp_task,
    }
}

/// Starts a server with the default configuration (simple broker on `/topic`, `/queue`).
pub async fn start_default() -> TestServer {
    start(
        StompServer::builder()
            .build()
            .expect("default config is valid"),
    )
    .await
}

/// A raw TCP peer: writes arbitrary bytes, reads frames with our parser.
pub struct RawPeer {
    stream: TcpStream,
    buf: BytesMut,
    parser: Parser,
}

/// What a raw peer observed while waiting for a frame.
#[derive(Debug)]
pub enum Seen {
    /// A frame arrived.
    Frame(Frame),
    /// The server closed the connection.
    Closed,
}

impl RawPeer {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let limits = Limits {
            max_frame_size: 16 * 1024 * 1024,
            ..Limits::default()
        };
        Self {
            stream,
            buf: BytesMut::new(),
            parser: Parser::new(&limits),
        }
    }

    /// Writes raw bytes.
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let _ = self.stream.write_all(bytes.as_ref()).await;
    }

    /// Sends CONNECT for 1.2 and waits for CONNECTED.
    pub async fn handshake(&mut self) -> Frame {
        self.send("CONNECT\naccept-version:1.2\nhost:localhost\n\n\0")
            .await;
        let frame = self.frame().await;
        assert_eq!(
            frame.command,
            stomp_runtime::frame::Command::Connected,
            "{frame:?}"
        );
        frame
    }

    /// The next frame or the close, skipping heart-beats; panics after [`WAIT`].
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(WAIT, async {
            loop {
                match self.parser.parse(&mut self.buf) {
                    Ok(Some(Parsed::Frame(f))) => return Seen::Frame(f),
                    Ok(Some(Parsed::HeartBeat)) => continue,
                    Ok(None) => {}
                    Err(e) => panic!("server sent a malformed frame: {e}"),
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return Seen::Closed,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("server answered in time")
    }

    /// The next frame; panics if the connection closes instead.
    pub async fn frame(&mut self) -> Frame {
        match self.next().await {
            Seen::Frame(f) => f,
            Seen::Closed => panic!("connection closed while a frame was expected"),
        }
    }

    /// Waits for the connection to close, returning the frames seen before.
    pub async fn until_closed(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            match self.next().await {
                Seen::Frame(f) => frames.push(f),
                Seen::Closed => return frames,
            }
        }
    }
}

/// Sends one HTTP/1.1 request (`Connection: close`) and returns the whole response as text.
pub async fn http_request(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect http");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .expect("response in time")
        .expect("read response");
    response
}
