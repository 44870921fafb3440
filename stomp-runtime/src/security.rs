//! Who is on the other end of a session: the principal and the CONNECT authenticator.

use std::sync::Arc;

use async_trait::async_trait;

use crate::frame::Headers;

/// The authenticated user of a session: a name (user destinations are addressed by it) and
/// the authorities granted to it (roles are authorities named `ROLE_...`, as in Spring
/// Security).
///
/// ```
/// use stomp_runtime::Principal;
///
/// let p = Principal::new("ann").with_authorities(["ROLE_operator", "gate:open"]);
/// assert!(p.has_role("operator"));
/// assert!(p.has_authority("gate:open"));
/// assert!(!p.has_role("admin"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal {
    name: Arc<str>,
    authorities: Arc<[Arc<str>]>,
}

impl Principal {
    /// A principal named `name`, with no authorities.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            authorities: Arc::new([]),
        }
    }

    /// The same principal with these authorities (replacing any it had).
    pub fn with_authorities<I>(mut self, authorities: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Arc<str>>,
    {
        self.authorities = authorities.into_iter().map(Into::into).collect();
        self
    }

    /// The user name; user destinations are addressed by it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every authority granted.
    pub fn authorities(&self) -> impl Iterator<Item = &str> {
        self.authorities.iter().map(|a| &**a)
    }

    /// Whether the authority is granted, exactly as named.
    pub fn has_authority(&self, authority: &str) -> bool {
        self.authorities.iter().any(|a| &**a == authority)
    }

    /// Whether the role is granted: the authority `ROLE_{role}`, or `role` itself when it
    /// already starts with `ROLE_`.
    pub fn has_role(&self, role: &str) -> bool {
        let bare = role.strip_prefix("ROLE_").unwrap_or(role);
        self.authorities
            .iter()
            .any(|a| a.strip_prefix("ROLE_") == Some(bare))
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
