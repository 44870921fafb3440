//! Spring-style STOMP messaging for actix-web.
//!
//! STOMP 1.0, 1.1 and 1.2 over WebSocket and TCP, an in-memory broker with `/topic` and
//! `/queue` semantics, user destinations, and an async client.

#![warn(missing_docs)]

pub mod broker;
pub mod client;
pub mod config;
pub mod events;
pub mod frame;
pub mod handler;
pub mod security;
mod server;
pub(crate) mod session;
pub mod template;
pub mod transport;

pub use async_trait::async_trait;
pub use events::SessionEvent;
pub use handler::{
    Destination, DestinationVar, ErrorPolicy, Header, Json, Payload, SessionInfo, State, StompError,
};
pub use security::Principal;
pub use server::{BuildError, ServerConfig, StompServer, StompServerBuilder};
pub use stomp_derive::{message_mapping, send_to, send_to_user, subscribe_mapping};
pub use template::MessagingTemplate;

/// Everything a controller module needs: `use stomp_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::frame::Headers;
    pub use crate::handler::{
        Destination, DestinationVar, Header, Json, Payload, SessionAttributes, SessionInfo, State,
        StompError,
    };
    pub use crate::security::Principal;
    pub use crate::server::StompServer;
    pub use crate::template::MessagingTemplate;
    pub use bytes::Bytes;
    pub use serde::{Deserialize, Serialize};
    pub use stomp_derive::{message_mapping, send_to, send_to_user, subscribe_mapping};
}

/// What the macros expand to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::handler::{
        HandlerDef, HandlerError, HandlerFuture, HandlerKind, IntoReply, Json, MessageContext,
        UserTarget, extract, reply,
    };
    pub use inventory;
    pub use std::boxed::Box;
}

/// The README's examples compile.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
