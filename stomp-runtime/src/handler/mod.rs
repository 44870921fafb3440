//! Application handlers: the registry, the routing table, extractors and return values.
//!
//! Handlers are declared with `#[message_mapping]` / `#[subscribe_mapping]` (crate
//! `stomp-derive`), which register a [`HandlerDef`] at link time. The server builder reads
//! the registry once, checks it and freezes a routing table.

mod error;
mod extract;
mod reply;
mod route;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use tracing::{debug, warn};

use crate::broker::{AckMode, BrokerMessage, MessageSink};
use crate::frame::{Frame, Headers};
use crate::server::ServerInner;
use crate::session::sink::{SessionShared, SubscriptionSink};

pub use error::{ExtractError, StompError};
pub(crate) use extract::StateMap;
pub use extract::{
    ArgInfo, Destination, DestinationVar, FromMessage, Header, Payload, SessionAttributes,
    SessionInfo, State,
};
pub use reply::{IntoReply, Json, Reply};
pub use route::{PatternError, RoutePattern};

/// The future a handler shim returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Option<Reply>, HandlerError>> + Send>>;

/// Why a handler invocation produced no reply.
#[derive(Debug)]
pub enum HandlerError {
    /// An argument could not be extracted.
    Extract(ExtractError),
    /// The handler returned an error.
    Handler(StompError),
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandlerError::Extract(e) => e.fmt(f),
            HandlerError::Handler(e) => e.fmt(f),
        }
    }
}

/// Which frames a handler serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandlerKind {
    /// SEND frames (`#[message_mapping]`).
    Message,
    /// SUBSCRIBE frames (`#[subscribe_mapping]`).
    Subscribe,
}

/// Where `#[send_to_user]` sends a return value.
#[derive(Debug, Clone, Copy)]
pub struct UserTarget {
    /// The user destination without the user prefix, e.g. `/queue/replies`.
    pub destination: &'static str,
    /// Every session of the user (`true`) or only the calling session.
    pub broadcast: bool,
}

/// One registered handler, as the macros describe it.
#[derive(Debug, Clone, Copy)]
pub struct HandlerDef {
    /// SEND or SUBSCRIBE.
    pub kind: HandlerKind,
    /// Destination patterns under the application prefix.
    pub patterns: &'static [&'static str],
    /// `#[send_to]` destinations (may hold `{var}` placeholders).
    pub send_to: &'static [&'static str],
    /// `#[send_to_user]`.
    pub send_to_user: Option<UserTarget>,
    /// The function's path.
    pub name: &'static str,
    /// Source file.
    pub file: &'static str,
    /// Source line.
    pub line: u32,
    /// Extracts the arguments, runs the function, converts its return value.
    pub call: fn(MessageContext) -> HandlerFuture,
}

impl HandlerDef {
    fn location(&self) -> String {
        format!("{} ({}:{})", self.name, self.file, self.line)
    }
}

inventory::collect!(HandlerDef);

/// What a handler invocation sees: the frame, the matched variables, the session.
pub struct MessageContext {
    pub(crate) server: Arc<ServerInner>,
    pub(crate) session: SessionInfo,
    pub(crate) destination: String,
    pub(crate) vars: Vec<(String, String)>,
    pub(crate) headers: Headers,
    pub(crate) body: Bytes,
}

impl MessageContext {
    /// A destination variable by name.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The frame's headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The destination as sent (with the application prefix).
    pub fn destination(&self) -> &str {
        &self.destination
    }
}

/// Extracts argument `T` (used by the macros).
#[doc(hidden)]
pub fn extract<T: FromMessage>(
    ctx: &MessageContext,
    name: &'static str,
    index: usize,
) -> Result<T, HandlerError> {
    T::from_message(ctx, &ArgInfo { name, index }).map_err(HandlerError::Extract)
}

/// Converts a return value (used by the macros).
#[doc(hidden)]
pub fn reply<T: IntoReply>(value: T) -> Result<Option<Reply>, HandlerError> {
    value.into_reply().map_err(HandlerError::Handler)
}

/// What goes wrong when handlers are collected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Two handlers of the same kind claim the same pattern.
    #[error("duplicate handler for `{pattern}`: {first} and {second}")]
    Duplicate {
        /// The pattern.
        pattern: String,
        /// One handler (path, file:line).
        first: String,
        /// The other.
        second: String,
    },
    /// A pattern does not parse.
    #[error("{handler}: {error}")]
    Pattern {
        /// The handler (path, file:line).
        handler: String,
        /// What is wrong.
        error: PatternError,
    },
}

struct Route {
    pattern: RoutePattern,
    def: &'static HandlerDef,
}

/// The frozen routing table.
#[derive(Default)]
pub(crate) struct Router {
    message: Vec<Route>,
    subscribe: Vec<Route>,
}

impl Router {
    /// Checks and freezes `defs` (in any order; duplicates by identity are dropped).
    pub(crate) fn build(defs: Vec<&'static HandlerDef>) -> Result<Self, RegistryError> {
        let mut defs = defs;
        defs.sort_by_key(|d| (d.file, d.line, d.name));
        defs.dedup_by(|a, b| {
            std::ptr::eq(*a, *b) || (a.file, a.line, a.name) == (b.file, b.line, b.name)
        });
        let mut router = Router::default();
        for def in defs {
            for p in def.patterns {
                let pattern = RoutePattern::parse(p).map_err(|error| RegistryError::Pattern {
                    handler: def.location(),
                    error,
                })?;
                let table = match def.kind {
                    HandlerKind::Message => &mut router.message,
                    HandlerKind::Subscribe => &mut router.subscribe,
                };
                if let Some(other) = table.iter().find(|r| r.pattern.as_str() == *p) {
                    return Err(RegistryError::Duplicate {
                        pattern: (*p).to_owned(),
                        first: other.def.location(),
                        second: def.location(),
                    });
                }
                table.push(Route { pattern, def });
            }
        }
        // Most specific first: exact patterns, then fewer wildcards; ties by text.
        for table in [&mut router.message, &mut router.subscribe] {
            table.sort_by_key(|r| {
                let s = r.pattern.as_str();
                (
                    !r.pattern.is_exact(),
                    s.matches("**").count(),
                    s.matches(['*', '{']).count(),
                    s.to_owned(),
                )
            });
        }
        Ok(router)
    }

    fn find(
        &self,
        kind: HandlerKind,
        lookup: &str,
    ) -> Option<(&'static HandlerDef, Vec<(String, String)>)> {
        let table = match kind {
            HandlerKind::Message => &self.message,
            HandlerKind::Subscribe => &self.subscribe,
        };
        table
            .iter()
            .find_map(|r| r.pattern.matches(lookup).map(|vars| (r.def, vars)))
    }
}

/// The outcome the session acts on.
pub(crate) enum Dispatched {
    /// Handled (the reply, if any, was routed).
    Done,
    /// The handler failed and the configured policy is an ERROR frame.
    Fatal(String),
}

/// How handler failures reach the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// A JSON message on this user destination of the calling session (default
    /// `/queue/errors`, subscribed as `/user/queue/errors`); the session stays open.
    UserDestination(String),
    /// An ERROR frame; the connection closes.
    ErrorFrame,
}

impl Default for ErrorPolicy {
    fn default() -> Self {
        ErrorPolicy::UserDestination("/queue/errors".into())
    }
}

/// Runs the handler for a SEND (`subscription` is `None`) or SUBSCRIBE to an application
/// destination, and routes what it returns.
pub(crate) async fn dispatch(
    server: &Arc<ServerInner>,
    session: &Arc<SessionShared>,
    session_info: SessionInfo,
    lookup: &str,
    frame: &Frame,
    subscription: Option<&str>,
) -> Dispatched {
    let destination = frame.get("destination").unwrap_or_default().to_owned();
    let kind = if subscription.is_some() {
        HandlerKind::Subscribe
    } else {
        HandlerKind::Message
    };
    let Some((def, vars)) = server.router.find(kind, lookup) else {
        let what = match kind {
            HandlerKind::Message => "message",
            HandlerKind::Subscribe => "subscribe",
        };
        return fail(
            server,
            session,
            &destination,
            format!("no {what} handler for `{destination}`"),
            None,
        )
        .await;
    };
    debug!(session = %session.id, handler = def.name, %destination, "dispatch");
    let principal = session_info.principal.clone();
    let ctx = MessageContext {
        server: server.clone(),
        session: session_info,
        destination: destination.clone(),
        vars: vars.clone(),
        headers: frame.headers.clone(),
        body: frame.body.clone(),
    };
    let reply = match (def.call)(ctx).await {
        Ok(r) => r,
        Err(HandlerError::Extract(e)) => {
            let argument = e.argument.clone();
            return fail(server, session, &destination, e.to_string(), Some(argument)).await;
        }
        Err(HandlerError::Handler(e)) => {
            warn!(handler = def.name, error = %e, "handler failed");
            return fail(server, session, &destination, e.message().to_owned(), None).await;
        }
    };
    let Some(reply) = reply else {
        return Dispatched::Done;
    };
    let message = |dest: &str| {
        BrokerMessage::new(
            dest,
            Some(reply.content_type.to_owned()),
            Headers::new(),
            reply.body.clone(),
        )
    };
    if !def.send_to.is_empty() {
        for template in def.send_to {
            let dest = route::fill(template, &vars);
            if let Err(e) = server.broker.publish(message(&dest)).await {
                warn!(handler = def.name, destination = %dest, error = %e, "reply not published");
            }
        }
    } else if let Some(target) = def.send_to_user {
        let dest = route::fill(target.destination, &vars);
        let msg = message(&dest);
        match &principal {
            Some(user) if target.broadcast => server.send_to_user(user.name(), msg).await,
            _ => server.send_to_session(&session.id, &msg).await,
        }
    } else if let Some(sub) = subscription {
        // Request-reply on SUBSCRIBE: straight to this subscriber, once.
        let sink = SubscriptionSink::new(session.clone(), sub, AckMode::Auto);
        sink.deliver(&message(&destination));
    } else {
        let dest = format!("{}{}", server.config.default_reply_prefix, lookup);
        if let Err(e) = server.broker.publish(message(&dest)).await {
            warn!(handler = def.name, destination = %dest, error = %e, "reply not published");
        }
    }
    Dispatched::Done
}

async fn fail(
    server: &Arc<ServerInner>,
    session: &Arc<SessionShared>,
    destination: &str,
    reason: String,
    argument: Option<String>,
) -> Dispatched {
    match &server.config.error_policy {
        ErrorPolicy::ErrorFrame => Dispatched::Fatal(reason),
        ErrorPolicy::UserDestination(dest) => {
            let body = serde_json::json!({
                "error": reason,
                "destination": destination,
                "argument": argument,
            });
            let mut headers = Headers::new();
            headers.push("message", reason.clone());
            let msg = BrokerMessage::new(
                dest.as_str(),
                Some("application/json".into()),
                headers,
                Bytes::from(body.to_string()),
            );
            // Queued before the RECEIPT that follows, so the client sees the error first.
            server.send_to_session(&session.id, &msg).await;
            Dispatched::Done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: MessageContext) -> HandlerFuture {
        Box::pin(async { Ok(None) })
    }

    const fn def(name: &'static str, line: u32, patterns: &'static [&'static str]) -> HandlerDef {
        HandlerDef {
            kind: HandlerKind::Message,
            patterns,
            send_to: &[],
            send_to_user: None,
            name,
            file: "src/chat.rs",
            line,
            call: never,
        }
    }

    static SEND: HandlerDef = def("chat::send", 10, &["/chat.send"]);
    static SEND_AGAIN: HandlerDef = def("chat::send_again", 20, &["/other", "/chat.send"]);
    static ROOM: HandlerDef = def("chat::room", 30, &["/chat.{room}"]);
    static BROKEN: HandlerDef = def("chat::broken", 40, &["/chat.{room"]);

    #[test]
    fn duplicate_patterns_name_both_handlers_and_their_places() {
        let err = Router::build(vec![&SEND, &SEND_AGAIN])
            .err()
            .expect("duplicate refused");
        let text = err.to_string();
        assert!(text.contains("chat::send (src/chat.rs:10)"), "{text}");
        assert!(text.contains("chat::send_again (src/chat.rs:20)"), "{text}");
        assert!(text.contains("`/chat.send`"), "{text}");
    }

    #[test]
    fn the_same_handler_registered_twice_counts_once() {
        let router = Router::build(vec![&SEND, &SEND, &ROOM]).expect("no duplicate");
        assert_eq!(router.message.len(), 2);
    }

    #[test]
    fn exact_patterns_win_over_variables_whatever_the_registration_order() {
        for defs in [vec![&ROOM, &SEND], vec![&SEND, &ROOM]] {
            let router = Router::build(defs).unwrap();
            let (def, vars) = router.find(HandlerKind::Message, "/chat.send").unwrap();
            assert_eq!(def.name, "chat::send");
            assert!(vars.is_empty());
            let (def, vars) = router.find(HandlerKind::Message, "/chat.lobby").unwrap();
            assert_eq!(def.name, "chat::room");
            assert_eq!(vars, [("room".to_owned(), "lobby".to_owned())]);
        }
    }

    #[test]
    fn malformed_patterns_fail_the_build_with_the_handler_named() {
        let err = Router::build(vec![&BROKEN]).err().expect("refused");
        assert!(
            err.to_string().contains("chat::broken (src/chat.rs:40)"),
            "{err}"
        );
    }
}
