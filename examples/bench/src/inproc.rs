//! An in-process server with one application handler, on runtimes of its own (an actix
//! system thread for WebSocket, a tokio thread for TCP), reached through real loopback
//! sockets.

use std::net::SocketAddr;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use actix_web::{App, HttpServer};
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};

use stomp_runtime::advice::{HandlerResult, Invocation, Next, Tag};
use stomp_runtime::{StompServer, around, message_mapping, send_to};
use tokio::sync::oneshot;

/// Where [`echo`] publishes what it receives.
pub const ECHO_REPLY_TOPIC: &str = "/topic/bench.echo";
/// Where clients send to reach [`echo`].
pub const ECHO_DESTINATION: &str = "/app/bench.echo";

/// Sends the body back, unchanged, to every subscriber of `/topic/bench.echo`.
#[message_mapping("/bench.echo")]
#[send_to("/topic/bench.echo")]
pub async fn echo(body: Bytes) -> Bytes {
    body
}

/// Where [`advised_echo`] publishes what it receives.
pub const ADVISED_REPLY_TOPIC: &str = "/topic/bench.advised";
/// Where clients send to reach [`advised_echo`].
pub const ADVISED_DESTINATION: &str = "/app/bench.advised";

/// Selects the handler the three advices wrap.
pub const ADVISED: Tag = Tag::new("bench-advised");

/// [`echo`] again, with three around advices (a timer, a header check, a counter): the cost
/// of a typical interceptor chain, next to the same handler without one.
#[message_mapping("/bench.advised", tags = [ADVISED])]
#[send_to("/topic/bench.advised")]
pub async fn advised_echo(body: Bytes) -> Bytes {
    body
}

static TIMED_NANOS: AtomicU64 = AtomicU64::new(0);
static CALLS: AtomicU64 = AtomicU64::new(0);

/// Times the call, as a metrics advice would.
#[around(tag(ADVISED), order = 1)]
pub async fn bench_timer(inv: Invocation, next: Next) -> HandlerResult {
    let t0 = std::time::Instant::now();
    let r = next.run(inv).await;
    TIMED_NANOS.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
    r
}

/// Looks at a header and the principal, as an authorization advice would.
#[around(tag(ADVISED), order = 2)]
pub async fn bench_guard(inv: Invocation, next: Next) -> HandlerResult {
    if inv.headers().get("deny").is_some() && inv.principal().is_none() {
        return Err(stomp_runtime::StompError::new("denied"));
    }
    next.run(inv).await
}

/// Counts calls, as an audit advice would.
#[around(tag(ADVISED), order = 3)]
pub async fn bench_counter(inv: Invocation, next: Next) -> HandlerResult {
    CALLS.fetch_add(1, Ordering::Relaxed);
    next.run(inv).await
}

/// A running in-process server; dropping it stops both transports.
pub struct InProcServer {
    /// `ws://127.0.0.1:PORT/ws`.
    pub ws_url: String,
    /// `http://127.0.0.1:PORT/ws`: the same endpoint over SockJS.
    pub sockjs_url: String,
    /// `tcp://127.0.0.1:PORT`.
    pub tcp_url: String,
    http: actix_web::dev::ServerHandle,
    stop_tcp: Option<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl InProcServer {
    /// Starts the server on ephemeral loopback ports: one actix worker for WebSocket and a
    /// single-threaded tokio runtime for TCP, heart-beats off, `/app/bench.echo` routed to
    /// [`echo`] and `/app/bench.advised` to [`advised_echo`] under three advices.
    pub fn start() -> Result<Self, String> {
        let stomp = StompServer::builder()
            .without_discovery()
            .handler(echo::HANDLER)
            .handler(advised_echo::HANDLER)
            .advice(bench_timer::ADVICE)
            .advice(bench_guard::ADVICE)
            .advice(bench_counter::ADVICE)
            .simple_broker(["/topic", "/queue"])
            .heartbeat(0, 0)
            // Every generator connection comes from 127.0.0.1.
            .limits(stomp_runtime::config::Limits {
                max_connections_per_address: usize::MAX,
                max_connects_per_second: usize::MAX,
                ..Default::default()
            })
            .build()
            .map_err(|e| format!("in-process server: {e}"))?;

        let (tx, rx) = std_mpsc::channel();
        let ws_stomp = stomp.clone();
        let http_thread = std::thread::Builder::new()
            .name("bench-server-ws".into())
            .spawn(move || {
                let sys = actix_rt::System::new();
                sys.block_on(async move {
                    let server =
                        HttpServer::new(move || App::new().configure(ws_stomp.sockjs("/ws")))
                            .workers(1)
                            .disable_signals()
                            .shutdown_timeout(1)
                            .bind(("127.0.0.1", 0));
                    let server = match server {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = tx.send(Err(format!("bind websocket: {e}")));
                            return;
                        }
                    };
                    let addr = server.addrs()[0];
                    let server = server.run();
                    let _ = tx.send(Ok((addr, server.handle())));
                    let _ = server.await;
                });
            })
            .map_err(|e| format!("spawn server thread: {e}"))?;
        let (ws_addr, http) = rx
            .recv()
            .map_err(|_| "websocket server thread died".to_owned())??;

        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| format!("bind tcp: {e}"))?;
        let tcp_addr: SocketAddr = listener.local_addr().map_err(|e| e.to_string())?;
        let (stop_tcp, stopped) = oneshot::channel::<()>();
        let tcp_thread = std::thread::Builder::new()
            .name("bench-server-tcp".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a current-thread runtime builds");
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = stomp.serve_tcp(listener) => {}
                        _ = stopped => {}
                    }
                });
            })
            .map_err(|e| format!("spawn server thread: {e}"))?;

        Ok(Self {
            ws_url: format!("ws://{ws_addr}/ws"),
            sockjs_url: format!("http://{ws_addr}/ws"),
            tcp_url: format!("tcp://{tcp_addr}"),
            http,
            stop_tcp: Some(stop_tcp),
            threads: vec![http_thread, tcp_thread],
        })
    }
}

impl Drop for InProcServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop_tcp.take() {
            let _ = stop.send(());
        }
        let http = self.http.clone();
        // Stopping needs an actix system; this thread may be inside a tokio runtime.
        let stopper = std::thread::spawn(move || {
            actix_rt::System::new().block_on(http.stop(false));
        });
        let _ = stopper.join();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
