//! The SockJS layer on its own, without STOMP: the endpoints a SockJS protocol test suite
//! expects, so that any such suite can be pointed at the `sockjs-echo` binary.
//!
//! - `/echo`: sends every message back.
//! - `/close`: closes each session right after opening it (`c[3000,"Go away!"]`).
//! - `/disabled_websocket_echo`: `/echo` without the WebSocket transport.
//! - `/cookie_needed_echo`: `/echo` with `JSESSIONID` cookies.
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//!
//! # async fn run() -> std::io::Result<()> {
//! let app = sockjs_echo::app(&sockjs_echo::Options::default());
//! HttpServer::new(move || App::new().configure(app.clone()))
//!     .bind(("127.0.0.1", 8081))?
//!     .run()
//!     .await
//! # }
//! ```

use std::time::Duration;

use actix_web::web;
use stomp_runtime::transport::sockjs::{SockJs, SockJsConfig, SockJsConnection};

/// Settings shared by the four endpoints.
#[derive(Clone, Debug)]
pub struct Options {
    /// Bytes after which a streaming response ends. The protocol's test suite expects
    /// 4,096 (the library's default is 128 KiB).
    pub response_limit: usize,
    /// Silence after which a heart-beat frame goes out.
    pub heartbeat: Duration,
    /// How long a session without a receiving request lives.
    pub disconnect_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            response_limit: 4096,
            heartbeat: SockJsConfig::default().heartbeat,
            disconnect_delay: SockJsConfig::default().disconnect_delay,
        }
    }
}

impl Options {
    fn config(&self) -> SockJsConfig {
        SockJsConfig {
            response_limit: self.response_limit,
            heartbeat: self.heartbeat,
            disconnect_delay: self.disconnect_delay,
            ..SockJsConfig::default()
        }
    }
}

/// Sends every message back until the session ends.
pub async fn echo(conn: SockJsConnection) {
    while let Some(message) = conn.recv().await {
        if conn.send(message).await.is_err() {
            break;
        }
    }
}

/// Closes the session as soon as it opens.
pub async fn close(conn: SockJsConnection) {
    conn.close();
}

/// The four endpoints, for `App::configure`.
pub fn app(options: &Options) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    let config = options.config();
    let echo_ws = SockJs::new(echo, config.clone()).mount("/echo");
    let close_ws = SockJs::new(close, config.clone()).mount("/close");
    let no_ws = SockJs::new(
        echo,
        SockJsConfig {
            websocket: false,
            ..config.clone()
        },
    )
    .mount("/disabled_websocket_echo");
    let cookie = SockJs::new(
        echo,
        SockJsConfig {
            cookie_needed: true,
            ..config
        },
    )
    .mount("/cookie_needed_echo");
    move |cfg: &mut web::ServiceConfig| {
        echo_ws(cfg);
        close_ws(cfg);
        no_ws(cfg);
        cookie(cfg);
    }
}
