//! Spring-style STOMP messaging for actix-web.
//!
//! STOMP 1.0, 1.1 and 1.2 over WebSocket and TCP, an in-memory broker with `/topic` and
//! `/queue` semantics, user destinations, and an async client.

pub mod broker;
pub mod client;
pub mod config;
pub mod frame;
pub mod security;
mod server;
pub(crate) mod session;
pub mod transport;

pub use async_trait::async_trait;
pub use server::{BuildError, ServerConfig, StompServer, StompServerBuilder};
