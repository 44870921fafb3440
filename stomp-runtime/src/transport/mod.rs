//! Transports: thin adapters moving bytes between a socket and a session.
//!
//! - [`ws`]: STOMP over WebSocket, mounted into an actix-web `App`.
//! - [`tcp`]: raw STOMP over TCP, for devices, kiosks and non-browser clients.

pub mod tcp;
pub mod ws;
