//! STOMP over SockJS: each SockJS session runs the same session driver as WebSocket and TCP
//! connections, with SockJS messages as the bytes in and out.

use std::io;

use actix_web::{HttpRequest, web};
use bytes::BytesMut;

use super::{RawWebSocket, SockJs, SockJsConfig, SockJsConnection, SockJsHandler};
use crate::server::StompServer;
use crate::session::driver::{self, FrameSink, FrameSource};
use crate::session::outbound::Out;
use crate::transport::ConnectionInfo;

/// Serves STOMP sessions over SockJS.
struct StompOverSockJs {
    server: StompServer,
}

#[crate::async_trait]
impl SockJsHandler for StompOverSockJs {
    fn accept(
        &self,
        request: &HttpRequest,
        connection: ConnectionInfo,
    ) -> actix_web::Result<ConnectionInfo> {
        if self.server.is_draining() {
            return Err(actix_web::error::ErrorServiceUnavailable(
                "server shutting down",
            ));
        }
        // The WebSocket upgrade's own checks, so that SockJS is no way around them.
        self.server.handshake(request, connection)
    }

    async fn on_connection(&self, connection: SockJsConnection) {
        driver::run(
            self.server.inner.clone(),
            connection.info().clone(),
            Source(connection.clone()),
            Sink(connection),
        )
        .await;
    }
}

struct Source(SockJsConnection);

impl FrameSource for Source {
    async fn read(&mut self, buf: &mut BytesMut) -> io::Result<bool> {
        match self.0.recv().await {
            Some(message) => {
                buf.extend_from_slice(message.as_bytes());
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

struct Sink(SockJsConnection);

impl Sink {
    async fn send(&self, text: String) -> io::Result<()> {
        self.0
            .send(text)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "SockJS session closed"))
    }
}

/// SockJS carries text; STOMP frames are UTF-8 but for binary bodies, which lose their
/// invalid sequences.
fn text(parts: &[&[u8]]) -> String {
    let bytes = parts.concat();
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

impl FrameSink for Sink {
    async fn write(&mut self, item: &Out) -> io::Result<()> {
        match item {
            Out::Frame(b) => self.send(text(&[b])).await,
            Out::Message { head, shared } => self.send(text(&[head, shared])).await,
            Out::Close => Ok(()),
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    async fn heartbeat(&mut self) -> io::Result<()> {
        self.send("\n".to_owned()).await
    }

    async fn close(&mut self, error: bool) {
        if error {
            // As the WebSocket transport: a policy violation (the ERROR frame says which).
            self.0.close_with(1008, "Policy violation");
        } else {
            self.0.close();
        }
    }
}

impl StompServer {
    /// Mounts the STOMP endpoint at `path` for SockJS clients and WebSocket clients alike,
    /// for `App::configure`: `new SockJS("http://host/ws")` and `ws://host/ws` (or
    /// `ws://host/ws/websocket`) reach the same sessions, handlers and broker as
    /// [`StompServer::websocket`] and TCP, with [`SockJsConfig`]'s defaults.
    ///
    /// ```no_run
    /// use actix_web::{App, HttpServer};
    /// use stomp_runtime::StompServer;
    ///
    /// # async fn run() -> std::io::Result<()> {
    /// let stomp = StompServer::builder().build().unwrap();
    /// HttpServer::new(move || App::new().configure(stomp.sockjs("/ws")))
    ///     .bind(("127.0.0.1", 8080))?
    ///     .run()
    ///     .await
    /// # }
    /// ```
    pub fn sockjs(&self, path: &str) -> impl Fn(&mut web::ServiceConfig) + Clone + use<> {
        self.sockjs_endpoint(SockJsConfig::default()).mount(path)
    }

    /// [`StompServer::sockjs`] with settings of one's own.
    /// [`SockJsConfig::max_payload_bytes`] should leave room for the largest STOMP frame
    /// JSON-escaped (the default is four times the default frame limit).
    pub fn sockjs_with(
        &self,
        path: &str,
        config: SockJsConfig,
    ) -> impl Fn(&mut web::ServiceConfig) + Clone + use<> {
        self.sockjs_endpoint(config).mount(path)
    }

    /// The SockJS endpoint serving this server's STOMP sessions, to mount with
    /// [`SockJs::mount`] and to ask how many sessions it holds.
    pub fn sockjs_endpoint(&self, config: SockJsConfig) -> SockJs {
        let handler = StompOverSockJs {
            server: self.clone(),
        };
        SockJs::with_raw(
            std::sync::Arc::new(handler),
            config,
            RawWebSocket::Stomp(self.clone()),
        )
    }
}
