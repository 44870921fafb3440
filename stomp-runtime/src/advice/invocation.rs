//! What an advice sees of a handler call, and how it proceeds.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use super::{AdviceDef, AdviceKind, contain};
use crate::frame::Headers;
use crate::handler::{
    ArgInfo, FromMessage, HandlerDef, HandlerFuture, MessageContext, SessionInfo, StompError,
};
use crate::security::Principal;

/// An id that ties a client's error reply, the log lines and audit records of one handler
/// call together (16 hex digits, unpredictable).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CorrelationId(u64);

impl CorrelationId {
    pub(crate) fn random() -> Self {
        // Not a secret, but unpredictable ids cannot be used to probe other calls.
        Self(getrandom::u64().unwrap_or_else(|_| {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default(),
            );
            h.finish()
        }))
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One call of a handler, as advice sees it: which handler, the destination and its
/// variables, the frame's headers and payload, the session and its user.
///
/// An around advice receives it by value and hands it to [`Next::run`]; it may change the
/// headers or the payload on the way.
#[derive(Clone)]
pub struct Invocation {
    pub(crate) ctx: MessageContext,
    pub(crate) handler: &'static HandlerDef,
    pub(crate) correlation: CorrelationId,
}

impl fmt::Debug for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invocation")
            .field("handler", &self.handler.name)
            .field("destination", &self.ctx.destination)
            .field("session", &self.ctx.session.id)
            .field("correlation", &self.correlation)
            .finish()
    }
}

impl Invocation {
    pub(crate) fn new(ctx: MessageContext, handler: &'static HandlerDef) -> Self {
        Self {
            ctx,
            handler,
            correlation: CorrelationId::random(),
        }
    }

    /// The handler being called: its path (`name`), source `file` and `line`, patterns and
    /// tags.
    pub fn handler(&self) -> &'static HandlerDef {
        self.handler
    }

    /// The destination as the client sent it (with the application prefix).
    pub fn destination(&self) -> &str {
        &self.ctx.destination
    }

    /// A variable of the matched pattern.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.ctx.var(name)
    }

    /// Every variable of the matched pattern, in pattern order.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.ctx.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The frame's headers.
    pub fn headers(&self) -> &Headers {
        &self.ctx.headers
    }

    /// The frame's headers, to change before the handler reads them.
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.ctx.headers
    }

    /// The raw payload.
    pub fn payload(&self) -> &Bytes {
        &self.ctx.body
    }

    /// Replaces the payload the handler will read.
    pub fn set_payload(&mut self, body: impl Into<Bytes>) {
        self.ctx.body = body.into();
    }

    /// The session's user, if authenticated.
    pub fn principal(&self) -> Option<&Principal> {
        self.ctx.session.principal.as_ref()
    }

    /// The calling session.
    pub fn session(&self) -> &SessionInfo {
        &self.ctx.session
    }

    /// The calling session's id.
    pub fn session_id(&self) -> &str {
        &self.ctx.session.id
    }

    /// The id of this call (also in the log lines and in an internal error's reply).
    pub fn correlation_id(&self) -> CorrelationId {
        self.correlation
    }

    /// Extracts anything a handler could take (`State<T>`, `Payload<T>`, `Header<T>`, ...):
    /// advice reads application state and typed payloads with it.
    ///
    /// ```
    /// use stomp_runtime::advice::Invocation;
    /// use stomp_runtime::{Payload, StompError};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Payment { amount: u64 }
    ///
    /// fn amount(inv: &Invocation) -> Result<u64, StompError> {
    ///     let Payload(p): Payload<Payment> = inv.extract("payment")?;
    ///     Ok(p.amount)
    /// }
    /// ```
    pub fn extract<T: FromMessage>(&self, name: &'static str) -> Result<T, StompError> {
        T::from_message(&self.ctx, &ArgInfo { name, index: 0 }).map_err(StompError::extract)
    }
}

/// The rest of the chain: the next advice inward, and at the end the handler itself.
pub struct Next {
    pub(crate) chain: Arc<[&'static AdviceDef]>,
    pub(crate) index: usize,
}

impl fmt::Debug for Next {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rest: Vec<&str> = self.chain[self.index..].iter().map(|a| a.name).collect();
        f.debug_struct("Next").field("advice", &rest).finish()
    }
}

impl Next {
    /// Runs the rest of the chain and the handler. Not calling it refuses the call: the
    /// advice's own result goes back instead.
    pub fn run(self, invocation: Invocation) -> HandlerFuture {
        match self.chain.get(self.index) {
            Some(advice) => {
                let next = Next {
                    chain: self.chain.clone(),
                    index: self.index + 1,
                };
                match advice.kind {
                    // Contained at every layer, so that an outer advice sees an inner panic
                    // as an error (and an audit advice records it).
                    AdviceKind::Around(around) => Box::pin(contain(around(invocation, next))),
                    // Chains hold around advice only; anything else is passed over.
                    AdviceKind::AfterError(_) => next.run(invocation),
                }
            }
            None => Box::pin(contain((invocation.handler.call)(invocation.ctx))),
        }
    }
}
