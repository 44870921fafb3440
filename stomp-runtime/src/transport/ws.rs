//! STOMP over WebSocket, on actix-web through actix-ws.
//!
//! The subprotocols `v12.stomp`, `v11.stomp` and `v10.stomp` are negotiated (the highest
//! the client offers wins; a handshake offering none is accepted too). Text and binary
//! messages are both read; frames may span messages and one message may hold several.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, ProtocolError};
use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::{FutureExt, StreamExt};
use tracing::debug;

use crate::frame::Version;
use crate::server::StompServer;
use crate::session::driver::{self, FrameSink, FrameSource, SourceFault};
use crate::session::outbound::{CloseReason, Out};
use crate::transport::ConnectionInfo;
use crate::transport::ws_frames::{FrameWatch, GuardedPayload, Tripped};

struct WsSource {
    stream: AggregatedMessageStream,
    session: actix_ws::Session,
    watch: Rc<RefCell<FrameWatch>>,
    /// What the last failed read ran into, when it was the peer's fault.
    fault: Option<SourceFault>,
}

impl WsSource {
    /// Tells a protocol violation (answered with an ERROR) from a failing connection.
    fn classify(&mut self, e: &ProtocolError) -> Option<SourceFault> {
        let fault = |message, details: String, head, close| SourceFault {
            message,
            details,
            head,
            close,
        };
        if let Some(tripped) = self.watch.borrow_mut().take_tripped() {
            return Some(match tripped {
                Tripped::TooLarge { size, max, head } => fault(
                    "frame too large",
                    format!("WebSocket message of {size} bytes exceeds the limit of {max} bytes"),
                    Some(head),
                    CloseReason::TooBig,
                ),
                Tripped::ControlTooLong(len) => fault(
                    "websocket protocol error",
                    format!("WebSocket control frame of {len} bytes exceeds 125 bytes"),
                    None,
                    CloseReason::Protocol,
                ),
            });
        }
        let protocol = |details: String| {
            Some(fault(
                "websocket protocol error",
                details,
                None,
                CloseReason::Protocol,
            ))
        };
        match e {
            ProtocolError::Io(io) if io.kind() == io::ErrorKind::InvalidData => {
                let utf8 = io
                    .get_ref()
                    .is_some_and(|inner| inner.downcast_ref::<std::str::Utf8Error>().is_some());
                if utf8 {
                    Some(fault(
                        "websocket protocol error",
                        "text message is not valid UTF-8".to_owned(),
                        None,
                        CloseReason::InvalidData,
                    ))
                } else {
                    protocol(io.to_string())
                }
            }
            // Reading the connection failed: nothing to answer.
            ProtocolError::Io(_) => None,
            ProtocolError::Overflow => Some(fault(
                "frame too large",
                "WebSocket message exceeds the size limit".to_owned(),
                None,
                CloseReason::TooBig,
            )),
            other => protocol(other.to_string()),
        }
    }
}

impl FrameSource for WsSource {
    fn fault(&mut self) -> Option<SourceFault> {
        self.fault.take()
    }

    fn in_progress(&self) -> bool {
        self.watch.borrow().in_progress()
    }

    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<bool> {
        match self.stream.next().await {
            None | Some(Ok(AggregatedMessage::Close(_))) => Ok(false),
            Some(Ok(AggregatedMessage::Text(text))) => {
                buf.extend_from_slice(text.as_bytes());
                Ok(true)
            }
            Some(Ok(AggregatedMessage::Binary(bytes))) => {
                buf.extend_from_slice(&bytes);
                Ok(true)
            }
            Some(Ok(AggregatedMessage::Ping(payload))) => {
                // Boxed: rare, and kept out of the idle read future.
                let _ = Box::pin(self.session.pong(&payload)).await;
                Ok(true)
            }
            Some(Ok(AggregatedMessage::Pong(_))) => Ok(true),
            Some(Err(e)) => {
                self.fault = self.classify(&e);
                Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
            }
        }
    }
}

struct WsSink {
    session: actix_ws::Session,
}

impl WsSink {
    async fn send(&mut self, bytes: Bytes) -> io::Result<()> {
        // Text frames when the STOMP frame is UTF-8 (what browsers' clients expect),
        // binary otherwise. `Bytes` clones share the buffer: one validation, no copy.
        let sent = match ByteString::try_from(bytes.clone()) {
            Ok(text) => self.session.text(text).await,
            Err(_) => self.session.binary(bytes).await,
        };
        sent.map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "websocket closed"))
    }
}

impl FrameSink for WsSink {
    async fn write(&mut self, item: &Out) -> io::Result<()> {
        match item {
            Out::Frame(b) => self.send(b.clone()).await,
            Out::Message { head, shared } => {
                let mut whole = BytesMut::with_capacity(head.len() + shared.len());
                whole.put_slice(head);
                whole.put_slice(shared);
                self.send(whole.freeze()).await
            }
            Out::Close => Ok(()),
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn heartbeat(&mut self) -> io::Result<()> {
        self.send(Bytes::from_static(b"\n")).await
    }

    async fn close(&mut self, error: bool) {
        let reason = if error {
            CloseReason::Policy
        } else {
            CloseReason::Normal
        };
        self.close_with(reason).await
    }

    async fn close_with(&mut self, reason: CloseReason) {
        let code = match reason {
            CloseReason::Normal => CloseCode::Normal,
            CloseReason::TooBig => CloseCode::Size,
            CloseReason::Protocol => CloseCode::Protocol,
            CloseReason::InvalidData => CloseCode::Invalid,
            CloseReason::Policy => CloseCode::Policy,
            CloseReason::TryAgain => CloseCode::Again,
        };
        let _ = self
            .session
            .clone()
            .close(Some(actix_ws::CloseReason {
                code,
                description: None,
            }))
            .await;
    }
}

/// Picks the highest STOMP subprotocol the client offers.
fn choose_subprotocol(req: &HttpRequest) -> Option<&'static str> {
    let offered: Vec<String> = req
        .headers()
        .get_all("sec-websocket-protocol")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_ascii_lowercase())
        .collect();
    Version::ALL
        .iter()
        .rev()
        .map(|v| v.subprotocol())
        .find(|p| offered.iter().any(|o| o == p))
}

impl StompServer {
    /// Mounts the WebSocket endpoint at `path`, for `App::configure`.
    ///
    /// ```no_run
    /// use actix_web::{App, HttpServer};
    /// use stomp_runtime::StompServer;
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let stomp = StompServer::builder().build().unwrap();
    /// HttpServer::new(move || App::new().configure(stomp.websocket("/ws")))
    ///     .bind(("127.0.0.1", 8080))?
    ///     .run()
    ///     .await
    /// # }
    /// ```
    pub fn websocket(&self, path: &str) -> impl Fn(&mut web::ServiceConfig) + Clone + 'static {
        let server = self.clone();
        let path = path.to_owned();
        move |cfg: &mut web::ServiceConfig| {
            let server = server.clone();
            cfg.route(
                &path,
                web::get().to(move |req: HttpRequest, body: web::Payload| {
                    let server = server.clone();
                    async move { server.accept_websocket(req, body) }
                }),
            );
        }
    }

    /// Decides whether an HTTP request may open a STOMP session, and completes what the
    /// session will know of its connection (the handshake principal). Every HTTP transport
    /// (WebSocket upgrades and SockJS sessions) runs it before the session exists, so the
    /// origin and handshake-principal checks placed here hold for all of them.
    pub(crate) fn handshake(
        &self,
        req: &HttpRequest,
        connection: ConnectionInfo,
    ) -> actix_web::Result<ConnectionInfo> {
        let _ = req;
        Ok(connection)
    }

    /// Upgrades one HTTP request to a STOMP WebSocket session (for custom routes).
    pub fn accept_websocket(
        &self,
        req: HttpRequest,
        body: web::Payload,
    ) -> actix_web::Result<HttpResponse> {
        if self.is_draining() {
            return Ok(HttpResponse::ServiceUnavailable().body("server shutting down"));
        }
        let connection = self.handshake(&req, ConnectionInfo::new("websocket", req.peer_addr()))?;
        let protocols: Vec<&str> = choose_subprotocol(&req).into_iter().collect();
        let limits = &self.inner.config.limits;
        // A WebSocket message holds at most one frame's worth of data plus heart-beats.
        let max_message = limits.max_frame_size.saturating_add(1024);
        // The limit applies as each frame header arrives, before its payload is buffered.
        let (guarded, watch) = GuardedPayload::new(body.into_inner(), max_message);
        let mut guarded: Payload = Payload::Stream {
            payload: Box::pin(guarded),
        };
        let body = web::Payload::from_request(&req, &mut guarded)
            .now_or_never()
            .expect("the payload extractor is ready at once")?;
        let (response, session, stream) = actix_ws::handle_with_protocols(&req, body, &protocols)?;
        let stream = stream
            .max_frame_size(max_message)
            .aggregate_continuations()
            .max_continuation_size(max_message);
        debug!(peer = ?req.peer_addr(), subprotocol = ?protocols.first(), "websocket upgrade");
        let inner = self.inner.clone();
        actix_web::rt::spawn(async move {
            let source = WsSource {
                stream,
                session: session.clone(),
                watch,
                fault: None,
            };
            driver::run(inner, connection, source, WsSink { session }).await;
        });
        Ok(response)
    }
}
