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
use tracing::{debug, error, warn};

use crate::advice::{
    self, AdviceKind, AdviceRegistry, Advised, CorrelationId, ExceptionTarget, HandlerResult,
    Invocation, Next, Tag,
};
use crate::broker::{AckMode, BrokerMessage, MessageSink};
use crate::frame::{Frame, Headers};
use crate::security::Principal;
use crate::server::ServerInner;
use crate::session::sink::{SessionShared, SubscriptionSink};

pub use error::{ErrorKind, ExtractError, StompError};
pub(crate) use extract::StateMap;
pub use extract::{
    ArgInfo, Destination, DestinationVar, FromMessage, Header, Payload, SessionAttributes,
    SessionInfo, State,
};
pub use reply::{IntoReply, Json, Reply};
pub use route::{PatternError, RoutePattern};

/// The future a handler shim (or an around advice) returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send>>;

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
    /// Markers pointcuts select it by (`tags = [AUDITED]`).
    pub tags: &'static [Tag],
    /// Roles or authorities of which the caller needs one (`roles = ["operator"]`); checked
    /// before any argument is extracted.
    pub roles: &'static [&'static str],
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
#[derive(Clone)]
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
) -> Result<T, StompError> {
    T::from_message(ctx, &ArgInfo { name, index }).map_err(StompError::extract)
}

/// Converts a return value (used by the macros).
#[doc(hidden)]
pub fn reply<T: IntoReply>(value: T) -> HandlerResult {
    value.into_reply()
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
    /// The advice chain, resolved once; `None` for a handler nothing advises.
    advised: Option<Arc<Advised>>,
}

/// The frozen routing table.
#[derive(Default)]
pub(crate) struct Router {
    message: Vec<Route>,
    subscribe: Vec<Route>,
}

/// A handler found for a destination.
pub(crate) struct Found<'a> {
    def: &'static HandlerDef,
    advised: Option<&'a Arc<Advised>>,
    vars: Vec<(String, String)>,
}

impl Router {
    /// Checks and freezes `defs` (in any order; duplicates by identity are dropped).
    #[cfg(test)]
    pub(crate) fn build(defs: Vec<&'static HandlerDef>) -> Result<Self, RegistryError> {
        Self::with_advice(defs, &AdviceRegistry::new(Vec::new(), Vec::new()))
    }

    /// Like [`build`](Self::build), resolving which advice applies to each handler.
    pub(crate) fn with_advice(
        defs: Vec<&'static HandlerDef>,
        advice: &AdviceRegistry,
    ) -> Result<Self, RegistryError> {
        let mut defs = defs;
        defs.sort_by_key(|d| (d.file, d.line, d.name));
        defs.dedup_by(|a, b| {
            std::ptr::eq(*a, *b) || (a.file, a.line, a.name) == (b.file, b.line, b.name)
        });
        advice.warn_unused(&defs);
        let mut router = Router::default();
        for def in defs {
            let advised = advice.resolve(def);
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
                table.push(Route {
                    pattern,
                    def,
                    advised: advised.clone(),
                });
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

    fn find(&self, kind: HandlerKind, lookup: &str) -> Option<Found<'_>> {
        let table = match kind {
            HandlerKind::Message => &self.message,
            HandlerKind::Subscribe => &self.subscribe,
        };
        table.iter().find_map(|r| {
            r.pattern.matches(lookup).map(|vars| Found {
                def: r.def,
                advised: r.advised.as_ref(),
                vars,
            })
        })
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

/// Where a call came from, for routing its reply or its error.
struct CallSite<'a> {
    server: &'a Arc<ServerInner>,
    session: &'a Arc<SessionShared>,
    principal: Option<Principal>,
    def: &'static HandlerDef,
    destination: &'a str,
    lookup: &'a str,
    vars: &'a [(String, String)],
    subscription: Option<&'a str>,
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
    let Some(Found { def, advised, vars }) = server.router.find(kind, lookup) else {
        let what = match kind {
            HandlerKind::Message => "message",
            HandlerKind::Subscribe => "subscribe",
        };
        let reason = format!("no {what} handler for `{destination}`");
        debug!(session = %session.id, %destination, "{reason}");
        return fail(server, session, &destination, reason, None).await;
    };
    debug!(session = %session.id, handler = def.name, %destination, "dispatch");
    let site = CallSite {
        server,
        session,
        principal: session_info.principal.clone(),
        def,
        destination: &destination,
        lookup,
        vars: &vars,
        subscription,
    };
    let ctx = MessageContext {
        server: server.clone(),
        session: session_info,
        destination: destination.clone(),
        vars: vars.clone(),
        headers: frame.headers.clone(),
        body: frame.body.clone(),
    };
    if let Err(denied) = check_roles(def, site.principal.as_ref()) {
        let invocation = Invocation::new(ctx, def);
        return failed(&site, advised.map(|a| &**a), Some(&invocation), denied).await;
    }
    let result = match advised {
        // Nothing advises this handler: it is called directly.
        None => advice::contain((def.call)(ctx)).await,
        Some(advised) => {
            let invocation = Invocation::new(ctx, def);
            let kept = advised.observes_failures().then(|| invocation.clone());
            let next = Next {
                chain: advised.around.clone(),
                index: 0,
            };
            match advice::contain(next.run(invocation)).await {
                Ok(r) => Ok(r),
                Err(e) => return failed(&site, Some(advised), kept.as_ref(), e).await,
            }
        }
    };
    match result {
        Ok(Some(reply)) => {
            route_reply(&site, def.send_to, def.send_to_user, reply).await;
            Dispatched::Done
        }
        Ok(None) => Dispatched::Done,
        Err(e) => failed(&site, None, None, e).await,
    }
}

/// `Err` unless the handler requires no role or the caller has one of them.
fn check_roles(def: &HandlerDef, principal: Option<&Principal>) -> Result<(), StompError> {
    if def.roles.is_empty()
        || principal.is_some_and(|p| {
            def.roles
                .iter()
                .any(|r| p.has_role(r) || p.has_authority(r))
        })
    {
        return Ok(());
    }
    Err(StompError::denied(format!(
        "access denied: `{}` requires one of the roles {}",
        def.name.rsplit("::").next().unwrap_or(def.name),
        def.roles.join(", ")
    )))
}

/// Sends a reply where the handler's attributes say.
async fn route_reply(
    site: &CallSite<'_>,
    send_to: &[&str],
    send_to_user: Option<UserTarget>,
    reply: Reply,
) {
    let server = site.server;
    let message = |dest: &str| {
        BrokerMessage::new(
            dest,
            Some(reply.content_type.to_owned()),
            Headers::new(),
            reply.body.clone(),
        )
    };
    if !send_to.is_empty() {
        for template in send_to {
            let dest = route::fill(template, site.vars);
            if let Err(e) = server.broker.publish(message(&dest)).await {
                warn!(handler = site.def.name, destination = %dest, error = %e, "reply not published");
            }
        }
    } else if let Some(target) = send_to_user {
        let dest = route::fill(target.destination, site.vars);
        let msg = message(&dest);
        match &site.principal {
            Some(user) if target.broadcast => server.send_to_user(user.name(), msg).await,
            _ => server.send_to_session(&site.session.id, &msg).await,
        }
    } else if let Some(sub) = site.subscription {
        // Request-reply on SUBSCRIBE: straight to this subscriber, once.
        let sink = SubscriptionSink::new(
            site.session.clone(),
            sub,
            AckMode::Auto,
            0,
            server.budget.clone(),
        );
        sink.deliver(&message(site.destination));
    } else {
        let dest = format!("{}{}", server.config.default_reply_prefix, site.lookup);
        if let Err(e) = server.broker.publish(message(&dest)).await {
            warn!(handler = site.def.name, destination = %dest, error = %e, "reply not published");
        }
    }
}

/// A call failed: log it once, tell the `#[after_error]` advice, let an exception handler
/// answer, or else report it by the error policy.
async fn failed(
    site: &CallSite<'_>,
    advised: Option<&Advised>,
    invocation: Option<&Invocation>,
    err: StompError,
) -> Dispatched {
    let correlation = invocation
        .map(Invocation::correlation_id)
        .unwrap_or_else(CorrelationId::random);
    let user = site.principal.as_ref().map(Principal::name);
    let (session, handler, destination) = (&*site.session.id, site.def.name, site.destination);
    match err.kind() {
        ErrorKind::Panic | ErrorKind::Internal => error!(
            session, user, handler, destination, %correlation, kind = ?err.kind(),
            error = %err.detail(), "handler failed"
        ),
        _ => warn!(
            session, user, handler, destination, %correlation, kind = ?err.kind(),
            error = %err.detail(), "handler failed"
        ),
    }
    if let (Some(advised), Some(inv)) = (advised, invocation) {
        for a in &advised.after_error {
            if let AdviceKind::AfterError(observe) = a.kind {
                let observed = advice::contain(async {
                    observe(inv, &err).await;
                    Ok::<(), StompError>(())
                })
                .await;
                if let Err(e) = observed {
                    error!(advice = a.name, handler, error = %e.detail(), "#[after_error] advice failed");
                }
            }
        }
        for h in &advised.exception {
            let Some(answer) = (h.handle)(inv, &err) else {
                continue;
            };
            match advice::contain(answer).await {
                Ok(reply) => {
                    debug!(
                        session,
                        handler,
                        exception_handler = h.name,
                        "error handled"
                    );
                    let Some(reply) = reply else {
                        return Dispatched::Done;
                    };
                    return match h.target {
                        ExceptionTarget::ErrorDestination => {
                            match &site.server.config.error_policy {
                                ErrorPolicy::UserDestination(dest) => {
                                    let msg = BrokerMessage::new(
                                        dest.as_str(),
                                        Some(reply.content_type.to_owned()),
                                        Headers::new(),
                                        reply.body,
                                    );
                                    site.server.send_to_session(&site.session.id, &msg).await;
                                    Dispatched::Done
                                }
                                ErrorPolicy::ErrorFrame => Dispatched::Fatal(
                                    String::from_utf8_lossy(&reply.body).into_owned(),
                                ),
                            }
                        }
                        ExceptionTarget::SendTo(dests) => {
                            route_reply(site, dests, None, reply).await;
                            Dispatched::Done
                        }
                        ExceptionTarget::SendToUser(target) => {
                            route_reply(site, &[], Some(target), reply).await;
                            Dispatched::Done
                        }
                        ExceptionTarget::ErrorFrame => {
                            Dispatched::Fatal(String::from_utf8_lossy(&reply.body).into_owned())
                        }
                    };
                }
                Err(e) => {
                    error!(
                        handler, exception_handler = h.name, error = %e.detail(),
                        "exception handler failed; the original error is reported"
                    );
                    break;
                }
            }
        }
    }
    let reason = if err.is_internal() {
        format!("{} (ref {correlation})", err.message())
    } else {
        err.message().to_owned()
    };
    let argument = match err.kind() {
        ErrorKind::Extract { argument } => Some(argument.clone()),
        _ => None,
    };
    fail(site.server, site.session, destination, reason, argument).await
}

/// Reports a failure to the client by the error policy.
pub(crate) async fn fail(
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
            tags: &[],
            roles: &[],
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
            let found = router.find(HandlerKind::Message, "/chat.send").unwrap();
            assert_eq!(found.def.name, "chat::send");
            assert!(found.vars.is_empty());
            let found = router.find(HandlerKind::Message, "/chat.lobby").unwrap();
            assert_eq!(found.def.name, "chat::room");
            assert_eq!(found.vars, [("room".to_owned(), "lobby".to_owned())]);
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
