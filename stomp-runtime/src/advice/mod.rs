//! Interceptors, as Spring's controller-and-AOP model has them:
//!
//! - advice around handlers: `#[around]`, `#[before]`, `#[after_returning]` and
//!   `#[after_error]` (Spring's `@Around`, `@Before`, `@AfterReturning`, `@AfterThrowing`),
//!   selected by a [`Pointcut`] and nested by `order` (lowest outermost);
//! - exception handlers: `#[message_exception_handler]` (Spring's
//!   `@MessageExceptionHandler`) turn a handler's error into a reply;
//! - channel interceptors ([`ChannelInterceptor`], Spring's `ChannelInterceptor`) see every
//!   inbound frame and, optionally, every outbound MESSAGE.
//!
//! Which advice applies to which handler is decided once, when the server is built; a
//! handler without advice is called directly.
//!
//! ```
//! use std::time::Instant;
//! use stomp_runtime::advice::{HandlerResult, Invocation, Next};
//! use stomp_runtime::{after_error, around, StompError};
//!
//! /// One log line per call of any handler under `/payment`.
//! #[around("/payment.**", order = 10)]
//! async fn timing(inv: Invocation, next: Next) -> HandlerResult {
//!     let (handler, started) = (inv.handler().name, Instant::now());
//!     let result = next.run(inv).await;
//!     tracing::info!(handler, ok = result.is_ok(), elapsed = ?started.elapsed(), "payment call");
//!     result
//! }
//!
//! #[after_error(handler("payments::*"))]
//! async fn track(inv: &Invocation, err: &StompError) {
//!     tracing::warn!(handler = inv.handler().name, error = %err, "payment failed");
//! }
//! ```

mod channel;
mod invocation;
mod pointcut;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures_util::FutureExt;
use tracing::warn;

pub use channel::{ChannelInterceptor, Deliver, InboundContext, OutboundContext, Refusal};
pub use invocation::{CorrelationId, Invocation, Next};
pub use pointcut::{Pointcut, Tag};

use crate::handler::{HandlerDef, HandlerFuture, Reply, StompError, UserTarget};

/// What a handler call (or an advice around it) ends with: the reply to route, if any, or
/// the error.
pub type HandlerResult = Result<Option<Reply>, StompError>;

/// A boxed future borrowing for `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an advice does.
#[derive(Clone, Copy)]
pub enum AdviceKind {
    /// Wraps the call (`#[around]`, and `#[before]` / `#[after_returning]`, which are thin
    /// forms of it).
    Around(fn(Invocation, Next) -> HandlerFuture),
    /// Observes a failure (`#[after_error]`).
    AfterError(for<'a> fn(&'a Invocation, &'a StompError) -> BoxFuture<'a, ()>),
}

impl std::fmt::Debug for AdviceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AdviceKind::Around(_) => "Around",
            AdviceKind::AfterError(_) => "AfterError",
        })
    }
}

/// One registered advice, as the attribute macros describe it.
#[derive(Debug, Clone, Copy)]
pub struct AdviceDef {
    /// What it does.
    pub kind: AdviceKind,
    /// The attribute it was declared with (`around`, `before`, ...), for logs.
    pub form: &'static str,
    /// Which handlers it applies to.
    pub pointcut: Pointcut,
    /// Nesting: lower is outer; ties broken by `name`.
    pub order: i32,
    /// The function's path.
    pub name: &'static str,
    /// Source file.
    pub file: &'static str,
    /// Source line.
    pub line: u32,
}

inventory::collect!(AdviceDef);

/// Where an exception handler's reply goes.
#[derive(Debug, Clone, Copy)]
pub enum ExceptionTarget {
    /// The calling session's error destination (default `/user/queue/errors`).
    ErrorDestination,
    /// Broker destinations (`#[send_to]`), `{var}`s filled from the failed call.
    SendTo(&'static [&'static str]),
    /// A user destination of the caller (`#[send_to_user]`).
    SendToUser(UserTarget),
    /// An ERROR frame whose body is the reply; the connection closes.
    ErrorFrame,
}

/// The shim of an exception handler: `None` when the error is not of the type it takes.
pub type ExceptionFn =
    for<'a> fn(&'a Invocation, &'a StompError) -> Option<BoxFuture<'a, HandlerResult>>;

/// One registered `#[message_exception_handler]`.
#[derive(Debug, Clone, Copy)]
pub struct ExceptionHandlerDef {
    /// Which handlers' errors it handles.
    pub pointcut: Pointcut,
    /// Which is asked first: lower first; ties broken by `name`.
    pub order: i32,
    /// Where the reply goes.
    pub target: ExceptionTarget,
    /// The function's path.
    pub name: &'static str,
    /// Source file.
    pub file: &'static str,
    /// Source line.
    pub line: u32,
    /// Turns the error into a reply.
    pub handle: ExceptionFn,
}

inventory::collect!(ExceptionHandlerDef);

/// The advice and exception handlers that apply to one handler, in order.
pub(crate) struct Advised {
    pub(crate) around: Arc<[&'static AdviceDef]>,
    pub(crate) after_error: Vec<&'static AdviceDef>,
    pub(crate) exception: Vec<&'static ExceptionHandlerDef>,
}

impl Advised {
    /// Whether anything must see the call after it failed.
    pub(crate) fn observes_failures(&self) -> bool {
        !self.after_error.is_empty() || !self.exception.is_empty()
    }
}

/// Every advice and exception handler, sorted once; resolves which apply to a handler.
pub(crate) struct AdviceRegistry {
    advice: Vec<&'static AdviceDef>,
    exception: Vec<&'static ExceptionHandlerDef>,
}

impl AdviceRegistry {
    pub(crate) fn new(
        mut advice: Vec<&'static AdviceDef>,
        mut exception: Vec<&'static ExceptionHandlerDef>,
    ) -> Self {
        advice.sort_by_key(|a| (a.order, a.name, a.file, a.line));
        advice.dedup_by(|a, b| (a.name, a.file, a.line) == (b.name, b.file, b.line));
        exception.sort_by_key(|e| (e.order, e.name, e.file, e.line));
        exception.dedup_by(|a, b| (a.name, a.file, a.line) == (b.name, b.file, b.line));
        Self { advice, exception }
    }

    /// What applies to `handler`; `None` when nothing does (the handler is called directly).
    pub(crate) fn resolve(&self, handler: &HandlerDef) -> Option<Arc<Advised>> {
        let selected: Vec<_> = self
            .advice
            .iter()
            .copied()
            .filter(|a| a.pointcut.selects(handler))
            .collect();
        let exception: Vec<_> = self
            .exception
            .iter()
            .copied()
            .filter(|e| e.pointcut.selects(handler))
            .collect();
        if selected.is_empty() && exception.is_empty() {
            return None;
        }
        let (around, after_error): (Vec<_>, Vec<_>) = selected
            .into_iter()
            .partition(|a| matches!(a.kind, AdviceKind::Around(_)));
        Some(Arc::new(Advised {
            around: around.into(),
            after_error,
            exception,
        }))
    }

    /// Logs every advice and exception handler whose pointcut selects none of `handlers`.
    pub(crate) fn warn_unused(&self, handlers: &[&'static HandlerDef]) {
        for a in &self.advice {
            if !handlers.iter().any(|h| a.pointcut.selects(h)) {
                warn!(
                    advice = a.name,
                    location = %format_args!("{}:{}", a.file, a.line),
                    pointcut = ?a.pointcut,
                    "#[{}] advice matches no handler", a.form
                );
            }
        }
        for e in &self.exception {
            if !handlers.iter().any(|h| e.pointcut.selects(h)) {
                warn!(
                    exception_handler = e.name,
                    location = %format_args!("{}:{}", e.file, e.line),
                    pointcut = ?e.pointcut,
                    "#[message_exception_handler] matches no handler"
                );
            }
        }
    }
}

/// Runs the rest of the chain and logs the call in one structured `tracing` line: handler,
/// user, session, destination, outcome, duration and correlation id (at `info` on success,
/// `warn` on failure). The body of a logging advice:
///
/// ```
/// use stomp_runtime::advice::{self, HandlerResult, Invocation, Next};
/// use stomp_runtime::around;
///
/// /// Every handler, outermost.
/// #[around(order = -1000)]
/// async fn log_calls(inv: Invocation, next: Next) -> HandlerResult {
///     advice::logged(inv, next).await
/// }
/// ```
pub async fn logged(invocation: Invocation, next: Next) -> HandlerResult {
    let started = std::time::Instant::now();
    let handler = invocation.handler().name;
    let user = invocation.principal().map(|p| p.name().to_owned());
    let session = invocation.session_id().to_owned();
    let destination = invocation.destination().to_owned();
    let correlation = invocation.correlation_id();
    let result = next.run(invocation).await;
    let micros = started.elapsed().as_micros() as u64;
    match &result {
        Ok(reply) => tracing::info!(
            handler, user, session, destination, %correlation, outcome = "ok",
            replied = reply.is_some(), micros, "handler call"
        ),
        Err(e) => tracing::warn!(
            handler, user, session, destination, %correlation, outcome = "error",
            kind = ?e.kind(), error = %e.message(), micros, "handler call"
        ),
    }
    result
}

/// Runs `future`, turning a panic into an error.
pub(crate) async fn contain<T>(
    future: impl Future<Output = Result<T, StompError>>,
) -> Result<T, StompError> {
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(r) => r,
        Err(payload) => Err(StompError::panic(panic_text(payload.as_ref()))),
    }
}

/// The text of a panic payload.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned())
}

/// What the macros need beyond the public API.
#[doc(hidden)]
pub mod support {
    use super::*;

    /// What a `#[before]` advice may return.
    #[diagnostic::on_unimplemented(
        message = "a `#[before]` advice must return `()` or `Result<(), E>`, not `{Self}`",
        note = "return `Err(StompError::new(..))` to refuse the call"
    )]
    pub trait BeforeOutcome {
        /// `Err` refuses the call.
        fn into_result(self) -> Result<(), StompError>;
    }

    impl BeforeOutcome for () {
        fn into_result(self) -> Result<(), StompError> {
            Ok(())
        }
    }

    impl<E: Into<StompError>> BeforeOutcome for Result<(), E> {
        fn into_result(self) -> Result<(), StompError> {
            self.map_err(Into::into)
        }
    }

    /// What an `#[around]` advice may return.
    #[diagnostic::on_unimplemented(
        message = "an `#[around]` advice must return `HandlerResult`, not `{Self}`",
        note = "return `next.run(inv).await`, or `Err(StompError::new(..))` to refuse the call"
    )]
    pub trait AroundOutcome {
        /// The chain's result.
        fn into_result(self) -> HandlerResult;
    }

    impl AroundOutcome for HandlerResult {
        fn into_result(self) -> HandlerResult {
            self
        }
    }

    /// The error an exception handler takes, by type: `&StompError` takes every error,
    /// any other `&E` only errors whose source is an `E`.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` is not an error type an exception handler can take",
        note = "take `&StompError` for every error, or `&E` where `E: std::error::Error + 'static`"
    )]
    pub trait ErrorParam {
        /// The argument, if the error is of this type.
        fn pick(err: &StompError) -> Option<&Self>;
    }

    impl ErrorParam for StompError {
        fn pick(err: &StompError) -> Option<&Self> {
            Some(err)
        }
    }

    impl<E: std::error::Error + 'static> ErrorParam for E {
        fn pick(err: &StompError) -> Option<&Self> {
            err.downcast_ref::<E>()
        }
    }
}
