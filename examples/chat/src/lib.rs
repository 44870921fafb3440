//! The chat example: rooms with presence and history, and whispers, over STOMP on
//! WebSocket (the web page) and raw TCP (any other client), with the same handlers.
//!
//! `cargo run -p chat`, then open <http://127.0.0.1:8080/>. The binary is a thin shell
//! around [`server`] and [`app`], which the integration tests start on ephemeral ports:
//!
//! ```no_run
//! use actix_web::{App, HttpServer};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let stomp = chat::server()?;
//! let tcp = tokio::net::TcpListener::bind("127.0.0.1:61623").await?;
//! tokio::spawn({
//!     let stomp = stomp.clone();
//!     async move { stomp.serve_tcp(tcp).await }
//! });
//! let app = chat::app(&stomp);
//! HttpServer::new(move || App::new().configure(app.clone()))
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod controllers;
pub mod logging;
pub mod message;
mod page;
pub mod rooms;

use actix_web::web;
use stomp_runtime::{BuildError, SessionEvent, StompServer};
use tracing::warn;

pub use message::{ChatMessage, Kind, NewMessage, Whisper, WhisperRequest};
pub use rooms::{HISTORY_LEN, ROOMS, Rooms};

/// Where the page connects for STOMP over WebSocket, or over SockJS where WebSocket is
/// unavailable.
pub const WS_PATH: &str = "/ws";

/// The chat's STOMP server: the handlers of [`controllers`], the rooms as state, logins
/// taken as names ([`auth::LoginAsName`]), and the in-memory broker for `/topic` and
/// `/queue`.
///
/// Fails only if handlers linked in from elsewhere clash with the chat's destinations.
pub fn server() -> Result<StompServer, BuildError> {
    let rooms = Rooms::new();
    let departures = rooms.clone();
    StompServer::builder()
        .app_prefix("/app")
        .user_prefix("/user")
        .simple_broker(["/topic", "/queue"])
        .authenticator(auth::LoginAsName)
        .state(rooms)
        // A closed tab or a lost device leaves its rooms, and each room hears of it.
        .on_session_event(move |event, template| {
            let left = match &event {
                SessionEvent::Disconnected { session, .. } => departures.session_closed(session),
                _ => Vec::new(),
            };
            async move {
                for message in left {
                    let destination = format!("/topic/rooms.{}", message.room);
                    if let Err(e) = template.convert_and_send(&destination, &message).await {
                        warn!(%destination, error = %e, "leave not announced");
                    }
                }
            }
        })
        .build()
}

/// The web side of the chat for `App::configure`: the page at `/` with its scripts, and
/// STOMP over WebSocket and SockJS at [`WS_PATH`].
pub fn app(stomp: &StompServer) -> impl Fn(&mut web::ServiceConfig) + Clone + 'static {
    let ws = stomp.sockjs(WS_PATH);
    move |cfg: &mut web::ServiceConfig| {
        page::routes(cfg);
        ws(cfg);
    }
}
