//! Who is on the other end of a session: the principal and the CONNECT authenticator.

use std::sync::Arc;

use async_trait::async_trait;

use crate::frame::Headers;

/// The authenticated user of a session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal {
    name: Arc<str>,
}

impl Principal {
    /// A principal named `name`.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self { name: name.into() }
    }

    /// The user name; user destinations are addressed by it.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Why a CONNECT was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

/// Decides who a CONNECT frame is, from its headers (`login`, `passcode`, a bearer token).
///
/// ```
/// use stomp_runtime::{frame::Headers, security::{AuthError, Authenticator, Principal}};
///
/// struct LoginIsName;
///
/// #[stomp_runtime::async_trait]
/// impl Authenticator for LoginIsName {
///     async fn authenticate(&self, headers: &Headers) -> Result<Option<Principal>, AuthError> {
///         Ok(headers.get("login").map(Principal::new))
///     }
/// }
/// ```
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// `Ok(None)` lets the session in anonymously; `Err` refuses it with an ERROR frame.
    async fn authenticate(&self, headers: &Headers) -> Result<Option<Principal>, AuthError>;
}

/// Takes the CONNECT `login` header as the user name, without checking a passcode. For
/// development and tests only.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrustLogin;

#[async_trait]
impl Authenticator for TrustLogin {
    async fn authenticate(&self, headers: &Headers) -> Result<Option<Principal>, AuthError> {
        Ok(headers
            .get("login")
            .filter(|l| !l.is_empty())
            .map(Principal::new))
    }
}
