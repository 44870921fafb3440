//! The error type handlers, advice and extractors return.

use std::borrow::Cow;
use std::fmt;

/// What kind of failure a [`StompError`] is; advice and exception handlers can tell them
/// apart.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The application chose the message ([`StompError::new`]): it reaches the client as is.
    Application,
    /// An internal error converted with `?` ([`StompError::internal`]): the client sees a
    /// generic text with a correlation id, the detail goes to the log.
    Internal,
    /// An argument could not be extracted from the message.
    Extract {
        /// The handler argument.
        argument: String,
    },
    /// The handler or an advice panicked.
    Panic,
    /// The caller lacks a role or authority the handler or a rule requires.
    Denied,
}

/// An error from a message handler, an advice or an extractor.
///
/// What reaches the client is the message the application chose with [`StompError::new`];
/// any other `std::error::Error` converts with `?` into an *internal* error whose text is
/// never shown to clients (they get `internal error (ref …)` and the log has the detail):
///
/// ```
/// use stomp_runtime::StompError;
///
/// fn parse(n: &str) -> Result<u32, StompError> {
///     if n.is_empty() {
///         return Err(StompError::new("a number is required"));
///     }
///     Ok(n.parse::<u32>()?)
/// }
/// assert_eq!(parse("").unwrap_err().message(), "a number is required");
/// let err = parse("x").unwrap_err();
/// assert_eq!(err.message(), "internal error");
/// assert!(err.downcast_ref::<std::num::ParseIntError>().is_some());
/// ```
pub struct StompError {
    message: Cow<'static, str>,
    kind: ErrorKind,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StompError {
    /// An error with a message for the client.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
            kind: ErrorKind::Application,
            source: None,
        }
    }

    /// An error with a message for the client and the underlying cause (logged, and
    /// reachable with [`downcast_ref`](Self::downcast_ref), never sent).
    pub fn with_source(
        message: impl Into<Cow<'static, str>>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            source: Some(Box::new(source)),
            ..Self::new(message)
        }
    }

    /// An internal error: the client is told only `internal error` and a correlation id.
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            message: Cow::Borrowed(INTERNAL),
            kind: ErrorKind::Internal,
            source: Some(Box::new(source)),
        }
    }

    /// The caller may not do this (a missing role or authority).
    pub fn denied(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind: ErrorKind::Denied,
            ..Self::new(message)
        }
    }

    pub(crate) fn extract(e: ExtractError) -> Self {
        Self {
            message: Cow::Owned(e.to_string()),
            kind: ErrorKind::Extract {
                argument: e.argument,
            },
            source: None,
        }
    }

    pub(crate) fn panic(detail: String) -> Self {
        Self {
            message: Cow::Borrowed(INTERNAL),
            kind: ErrorKind::Panic,
            source: Some(Box::new(PanicError(detail))),
        }
    }

    /// The message meant for the client (`internal error` for internal errors and panics).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// Whether the client may see [`message`](Self::message) without a correlation id.
    pub fn is_internal(&self) -> bool {
        matches!(self.kind, ErrorKind::Internal | ErrorKind::Panic)
    }

    /// The underlying error, if any.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// The underlying error as an `E`, so exception handlers can match on their own types.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.source.as_deref().and_then(|s| s.downcast_ref::<E>())
    }

    /// What the log gets: the client message and, when there is one, the cause.
    pub(crate) fn detail(&self) -> String {
        match &self.source {
            Some(s) => format!("{}: {s}", self.message),
            None => self.message.to_string(),
        }
    }
}

const INTERNAL: &str = "internal error";

/// The cause of a panic, kept as an error so it can be logged and inspected like others.
#[derive(Debug)]
struct PanicError(String);

impl fmt::Display for PanicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "panicked: {}", self.0)
    }
}

impl std::error::Error for PanicError {}

impl fmt::Debug for StompError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StompError")
            .field("message", &self.message)
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish()
    }
}

impl fmt::Display for StompError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for StompError {
    fn from(e: E) -> Self {
        Self::internal(e)
    }
}

/// Why an argument could not be extracted from a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument `{argument}`: {reason}")]
pub struct ExtractError {
    /// The handler argument.
    pub argument: String,
    /// What went wrong.
    pub reason: String,
}

impl ExtractError {
    /// An extraction failure of `argument`.
    pub fn new(argument: &str, reason: impl Into<String>) -> Self {
        Self {
            argument: argument.to_owned(),
            reason: reason.into(),
        }
    }
}
