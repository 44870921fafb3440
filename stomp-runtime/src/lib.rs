//! Spring-style STOMP messaging for actix-web.
//!
//! STOMP 1.0, 1.1 and 1.2 over WebSocket and TCP, an in-memory broker with `/topic` and
//! `/queue` semantics, user destinations, and an async client.

#![warn(missing_docs)]

mod admission;
pub mod advice;
pub mod broker;
pub mod budget;
pub mod client;
pub mod config;
pub mod events;
pub mod frame;
pub mod handler;
mod lifecycle;
pub mod security;
mod server;
pub(crate) mod session;
pub mod template;
pub mod transport;

pub use async_trait::async_trait;
pub use events::SessionEvent;
pub use handler::{
    Destination, DestinationVar, ErrorKind, ErrorPolicy, Header, Json, Payload, SessionInfo, State,
    StompError,
};
pub use lifecycle::ShutdownReport;
pub use security::Principal;
pub use server::{BuildError, ServerConfig, StompServer, StompServerBuilder, Usage};
pub use stomp_derive::{
    after_error, after_returning, around, before, message_exception_handler, message_mapping,
    send_to, send_to_user, session_event, subscribe_mapping,
};
pub use template::MessagingTemplate;

/// Everything a controller module needs: `use stomp_runtime::prelude::*;`.
pub mod prelude {
    pub use crate::advice::{HandlerResult, Invocation, Next, Tag};
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
    pub use stomp_derive::{
        after_error, after_returning, around, before, message_exception_handler, message_mapping,
        send_to, send_to_user, session_event, subscribe_mapping,
    };
}

/// What the macros expand to. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::advice::support::{AroundOutcome, BeforeOutcome, ErrorParam};
    pub use crate::advice::{
        AdviceDef, AdviceKind, BoxFuture, ExceptionHandlerDef, ExceptionTarget, HandlerResult,
        Invocation, Next, Pointcut, Tag,
    };
    pub use crate::events::{SessionEvent, SessionListenerDef};
    pub use crate::handler::{
        HandlerDef, HandlerFuture, HandlerKind, IntoReply, Json, MessageContext, StompError,
        UserTarget, extract, reply,
    };
    pub use crate::template::MessagingTemplate;
    pub use std::option::Option;
    pub use std::pin::Pin;

    /// Logs an advice skipped because one of its arguments could not be extracted.
    pub fn advice_skipped(advice: &str, err: &StompError) {
        tracing::error!(advice, error = %err.detail(), "advice skipped: an argument could not be extracted");
    }
    pub use inventory;
    pub use std::boxed::Box;
}

/// The README's examples compile.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
