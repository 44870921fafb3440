//! The error type handlers return.

use std::fmt;

/// An error from a message handler or an extractor.
///
/// Any `std::error::Error` converts into it, so handlers can use `?`:
///
/// ```
/// use stomp_runtime::StompError;
///
/// fn parse(n: &str) -> Result<u32, StompError> {
///     Ok(n.parse::<u32>()?)
/// }
/// assert!(parse("x").is_err());
/// ```
pub struct StompError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StompError {
    /// An error with a message for the client.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// The message sent to the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The underlying error, if any.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl fmt::Debug for StompError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StompError")
            .field("message", &self.message)
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
        Self {
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
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
