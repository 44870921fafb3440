//! What handlers return, and how it becomes a message.

use bytes::Bytes;
use serde::Serialize;

use super::StompError;

/// A message body with its content type, ready for the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The `content-type` header.
    pub content_type: &'static str,
    /// The body.
    pub body: Bytes,
}

/// Wraps a `Serialize` value to be sent as JSON (`application/json`).
///
/// Handlers may return any `Serialize` type directly; the macros wrap it in `Json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

/// A handler return value: `()`, `String`, `&'static str`, `Bytes`, `Vec<u8>`, [`Json`],
/// and `Option` / `Result` of those. `None` and `()` send nothing.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be returned from a message handler",
    note = "return (), String, Bytes, Vec<u8>, any serde::Serialize type, or Option/Result of those"
)]
pub trait IntoReply {
    /// Converts into the message to send, if any.
    fn into_reply(self) -> Result<Option<Reply>, StompError>;
}

impl IntoReply for () {
    fn into_reply(self) -> Result<Option<Reply>, StompError> {
        Ok(None)
    }
}

impl IntoReply for String {
    fn into_reply(self) -> Result<Option<Reply>, StompError> {
        Ok(Some(Reply {
            content_type: "text/plain;charset=UTF-8",
            body: Bytes::from(self),
        }))
    }
}

impl IntoReply for &'static str {
    fn into_reply(self) -> Result<Option<Reply>, StompError> {
        Ok(Some(Reply {
            content_type: "text/plain;charset=UTF-8",
            body: Bytes::from_static(self.as_bytes()),
        }))
    }
}

impl IntoReply for Bytes {
    fn into_reply(self) -> Result<Option<Reply>, StompError> {
        Ok(Some(Reply {
            content_type: "application/octet-stream",
            body: self,
        }))
    }
}

impl IntoReply for Vec<u8> {
    fn into_reply(self) -> Result<Option<Reply>, StompError> {
        Bytes::from(self).into_reply()
    }
}

impl<T: Serialize> IntoReply for Json<T> {
    fn into_reply(self) -> Result<Option<Reply>, StompError> {
        let body = serde_json::to_vec(&self.0)?;
        Ok(Some(Reply {
            content_type: "application/json",
            body: Bytes::from(body),
        }))
    }
}

impl<T: IntoReply> IntoReply for Option<T> {
    fn into_reply(self) -> Result<Option<Reply>, StompError> {
        match self {
            Some(v) => v.into_reply(),
            None => Ok(None),
        }
    }
}

impl<T: IntoReply, E: Into<StompError>> IntoReply for Result<T, E> {
    fn into_reply(self) -> Result<Option<Reply>, StompError> {
        self.map_err(Into::into)?.into_reply()
    }
}
