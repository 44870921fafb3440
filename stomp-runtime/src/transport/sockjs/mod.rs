//! SockJS: the same endpoint for browsers and networks without WebSocket.
//!
//! The server side of the SockJS protocol (0.3.3, as `sockjs-client` 1.x speaks it), on
//! actix-web. A client such as `new SockJS("http://host/ws")` asks `GET /ws/info`, then
//! opens a session over the best transport that works: WebSocket, or HTTP streaming
//! (`xhr_streaming`, `eventsource`, `htmlfile`) or polling (`xhr`, `jsonp`), sending over
//! `xhr_send` / `jsonp_send`. Each session is handed to a [`SockJsHandler`], which sees
//! a stream of text messages whatever the transport.
//!
//! STOMP endpoints mount it with [`StompServer::sockjs`](crate::StompServer::sockjs): the
//! SockJS sessions then reach the same session core, handlers, limits and heart-beats as
//! native WebSocket and TCP. For other messages, implement [`SockJsHandler`] (a closure
//! taking a [`SockJsConnection`] will do) and mount it with [`SockJs::mount`]:
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//! use stomp_runtime::transport::sockjs::{SockJs, SockJsConfig, SockJsConnection};
//!
//! # async fn run() -> std::io::Result<()> {
//! let echo = SockJs::new(
//!     |conn: SockJsConnection| async move {
//!         while let Some(message) = conn.recv().await {
//!             if conn.send(message).await.is_err() {
//!                 break;
//!             }
//!         }
//!     },
//!     SockJsConfig::default(),
//! );
//! HttpServer::new(move || App::new().configure(echo.mount("/echo")))
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await
//! # }
//! ```
//!
//! What is bounded: live sessions ([`SockJsConfig::max_sessions`]), messages queued for a
//! client that is between requests ([`SockJsConfig::max_cache_bytes`]; the handler's
//! `send` waits beyond it), a request body or WebSocket message
//! ([`SockJsConfig::max_payload_bytes`]), and the messages waiting for the handler (the
//! same bound; the sending request waits). A session with no receiving request for
//! [`SockJsConfig::disconnect_delay`] is closed and forgotten.
//!
//! A polling client that goes away mid-request should interrupt its session at once (the
//! protocol's `c[1002,"Connection interrupted"]`); actix-web notices only with
//! `HttpServer::h1_allow_half_closed(false)`. Without it, the session ends after its next
//! heart-beat finds the connection gone, or after the disconnect delay.
//!
//! SockJS carries text: a STOMP frame whose body is not UTF-8 reaches a SockJS client with
//! invalid sequences replaced by U+FFFD.

mod frame;
mod receiver;
mod routes;
mod session;
mod stomp;
mod websocket;

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpRequest, web};

pub use session::SessionClosed;

use crate::transport::ConnectionInfo;
use session::{CloseReason, Registry, Session};

/// Settings of one SockJS endpoint. Defaults follow sockjs-node and Spring.
#[derive(Clone, Debug)]
pub struct SockJsConfig {
    /// Whether the `websocket` transport (and raw WebSocket at `/websocket`) is offered.
    pub websocket: bool,
    /// Whether every session response sets a `JSESSIONID` cookie (echoing the client's),
    /// for load balancers with cookie-based sticky sessions; `/info` says so to clients.
    pub cookie_needed: bool,
    /// Silence after which a heart-beat frame (`h`) goes to the client: 25 s.
    pub heartbeat: Duration,
    /// How long a session lives without a receiving request before it is closed and
    /// forgotten; also how long a closed session keeps answering with its close frame: 5 s.
    pub disconnect_delay: Duration,
    /// Bytes of frames after which a streaming response ends and the client opens another,
    /// so that the browser can free what it received: 128 KiB.
    pub response_limit: usize,
    /// Most sessions alive at once, over every transport of the endpoint: 10,000.
    pub max_sessions: usize,
    /// Bytes of messages queued for one client between its receiving requests: 256 KiB.
    pub max_cache_bytes: usize,
    /// Largest `xhr_send` / `jsonp_send` body or WebSocket message, and the bytes of
    /// received messages waiting for the handler: 256 KiB (a 64 KiB STOMP frame with
    /// JSON escaping fits).
    pub max_payload_bytes: usize,
    /// The `sockjs-client` script the iframe page loads (for the iframe-based transports).
    pub client_url: String,
}

impl Default for SockJsConfig {
    fn default() -> Self {
        Self {
            websocket: true,
            cookie_needed: false,
            heartbeat: Duration::from_secs(25),
            disconnect_delay: Duration::from_secs(5),
            response_limit: 128 * 1024,
            max_sessions: 10_000,
            max_cache_bytes: 256 * 1024,
            max_payload_bytes: 256 * 1024,
            client_url: "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js".into(),
        }
    }
}

/// Serves the sessions of a SockJS endpoint.
///
/// Implemented for every `Fn(SockJsConnection) -> impl Future<Output = ()>`.
#[crate::async_trait]
pub trait SockJsHandler: Send + Sync + 'static {
    /// Decides whether the request opening a session may do so (an error is the response),
    /// and may complete what the session knows of its connection (say, a principal
    /// authenticated from the request). Runs for every transport, before the session
    /// exists. Accepts everything as it is by default.
    fn accept(
        &self,
        request: &HttpRequest,
        connection: ConnectionInfo,
    ) -> actix_web::Result<ConnectionInfo> {
        let _ = request;
        Ok(connection)
    }

    /// Runs one session until it ends: read with [`SockJsConnection::recv`] until `None`,
    /// answer with [`SockJsConnection::send`]. When this returns, the session closes.
    async fn on_connection(&self, connection: SockJsConnection);
}

#[crate::async_trait]
impl<F, Fut> SockJsHandler for F
where
    F: Fn(SockJsConnection) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    async fn on_connection(&self, connection: SockJsConnection) {
        self(connection).await
    }
}

/// What is known of the request that opened a session: the transport is `sockjs-` and
/// the SockJS transport's name (`sockjs-websocket`, `sockjs-xhr_streaming`, ...).
pub(crate) fn connection_info(req: &HttpRequest, transport: &'static str) -> ConnectionInfo {
    ConnectionInfo::new(transport, req.peer_addr())
}

/// One SockJS session as its handler sees it: text messages in and out. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SockJsConnection {
    session: Arc<Session>,
    info: Arc<ConnectionInfo>,
}

impl SockJsConnection {
    /// The next message from the client; `None` once the session has ended.
    pub async fn recv(&self) -> Option<String> {
        self.session.recv().await
    }

    /// Sends a message, waiting while the client is behind by more than
    /// [`SockJsConfig::max_cache_bytes`].
    pub async fn send(&self, message: impl Into<String>) -> Result<(), SessionClosed> {
        self.session.send(message.into()).await
    }

    /// Closes the session with `c[3000,"Go away!"]`, after the messages already sent.
    pub fn close(&self) {
        self.session.close(CloseReason::go_away());
    }

    /// Closes the session with a code and reason of one's own (3000-4999 for applications).
    pub fn close_with(&self, code: u16, reason: &str) {
        self.session.close(CloseReason::new(code, reason));
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    /// What is known of the request that opened the session.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }
}

/// How the endpoint serves plain WebSocket (no SockJS framing) at `/websocket` and at the
/// endpoint's own path.
#[derive(Clone)]
pub(crate) enum RawWebSocket {
    /// Each WebSocket text message is one message for the handler.
    Handler,
    /// STOMP over WebSocket, exactly as [`StompServer::websocket`](crate::StompServer::websocket).
    Stomp(crate::StompServer),
}

pub(crate) struct Endpoint {
    pub(crate) config: SockJsConfig,
    pub(crate) handler: Arc<dyn SockJsHandler>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) raw: RawWebSocket,
    pub(crate) iframe: routes::IframePage,
}

/// A SockJS endpoint: a handler, its settings and its sessions. Mount it with
/// [`SockJs::mount`]; clones share the sessions.
#[derive(Clone)]
pub struct SockJs {
    endpoint: Arc<Endpoint>,
}

impl SockJs {
    /// An endpoint serving `handler`.
    pub fn new(handler: impl SockJsHandler, config: SockJsConfig) -> Self {
        Self::with_raw(Arc::new(handler), config, RawWebSocket::Handler)
    }

    pub(crate) fn with_raw(
        handler: Arc<dyn SockJsHandler>,
        config: SockJsConfig,
        raw: RawWebSocket,
    ) -> Self {
        let iframe = routes::IframePage::new(&config.client_url);
        Self {
            endpoint: Arc::new(Endpoint {
                config,
                handler,
                registry: Arc::new(Registry::default()),
                raw,
                iframe,
            }),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &SockJsConfig {
        &self.endpoint.config
    }

    /// Sessions alive now, over every transport.
    pub fn sessions(&self) -> usize {
        self.endpoint.registry.live()
    }

    /// Mounts the endpoint at `path` (no trailing slash), for `App::configure`: the SockJS
    /// URLs under it, and a plain WebSocket upgrade at `path` itself and at
    /// `path/websocket`.
    pub fn mount(&self, path: &str) -> impl Fn(&mut web::ServiceConfig) + Clone + use<> {
        let endpoint = self.endpoint.clone();
        let path = path.trim_end_matches('/').to_owned();
        move |cfg: &mut web::ServiceConfig| routes::register(cfg, &path, &endpoint)
    }
}

/// Runs one session's handler, closes the session when the client is gone for the
/// disconnect delay, and forgets the session once its close has been heard.
pub(crate) async fn run_session(
    ep: Arc<Endpoint>,
    session: Arc<Session>,
    slot: session::Slot,
    info: ConnectionInfo,
    registered: bool,
) {
    let delay = ep.config.disconnect_delay;
    let handler = ep.handler.clone();
    let connection = SockJsConnection {
        session: session.clone(),
        info: Arc::new(info),
    };
    let mut run = handler.on_connection(connection);
    let finished = tokio::select! {
        _ = &mut run => true,
        _ = session.abandoned(delay) => false,
    };
    if !finished {
        tracing::debug!(session = %session.id, "SockJS session abandoned");
        // Wakes the handler, whose `recv` ends.
        session.close(CloseReason::interrupted());
        run.await;
    }
    session.close(CloseReason::go_away());
    if registered {
        if finished {
            // A client that comes back hears the close frame, for a while.
            let _ = tokio::time::timeout(3 * delay, session.abandoned(delay)).await;
        }
        ep.registry.remove(&session);
    }
    drop(slot);
}
