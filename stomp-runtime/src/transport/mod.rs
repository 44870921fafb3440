//! Transports: thin adapters moving bytes between a socket and a session.
//!
//! - [`ws`]: STOMP over WebSocket, mounted into an actix-web `App`.
//! - [`tcp`]: raw STOMP over TCP, for devices, kiosks and non-browser clients.
//! - [`sockjs`]: the SockJS protocol, for browsers and networks without WebSocket.

pub mod sockjs;
pub mod tcp;
pub mod ws;
mod ws_frames;

use std::net::SocketAddr;

use crate::security::Principal;

/// What a session knows of the connection it runs on; channel interceptors and
/// authenticators read it.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// `websocket`, `tcp`, or another transport's name.
    pub transport: &'static str,
    /// The peer's address, when the transport knows it.
    pub remote_addr: Option<SocketAddr>,
    /// The user the handshake authenticated (a bearer token on the WebSocket upgrade), if
    /// any: the session starts with it.
    pub principal: Option<Principal>,
}

impl ConnectionInfo {
    /// A connection over `transport` from `remote_addr`.
    pub fn new(transport: &'static str, remote_addr: Option<SocketAddr>) -> Self {
        Self {
            transport,
            remote_addr,
            principal: None,
        }
    }

    /// The same connection with a principal authenticated at the handshake.
    pub fn with_principal(mut self, principal: Option<Principal>) -> Self {
        self.principal = principal;
        self
    }
}
