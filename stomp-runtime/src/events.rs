//! Session lifecycle events, as Spring's `SessionConnectedEvent` and
//! `SessionDisconnectEvent`: presence lists, audit logs, cleaning up per-session state.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::security::Principal;
use crate::template::MessagingTemplate;

/// Something that happened to a session.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// CONNECT was accepted (CONNECTED is on its way).
    Connected {
        /// The session id.
        session: Arc<str>,
        /// The authenticated user, if any.
        principal: Option<Principal>,
    },
    /// The session ended: DISCONNECT, a protocol error, a lost or silent peer, a panic, the
    /// server stopping. Fired exactly once per connected session.
    Disconnected {
        /// The session id.
        session: Arc<str>,
        /// The authenticated user, if any.
        principal: Option<Principal>,
    },
    /// A SUBSCRIBE was accepted (a broker subscription or a `#[subscribe_mapping]`).
    Subscribed {
        /// The session id.
        session: Arc<str>,
        /// The authenticated user, if any.
        principal: Option<Principal>,
        /// The destination as subscribed (`/user/queue/...` for user destinations).
        destination: String,
        /// The subscription id.
        subscription: String,
    },
    /// An UNSUBSCRIBE removed a subscription.
    Unsubscribed {
        /// The session id.
        session: Arc<str>,
        /// The authenticated user, if any.
        principal: Option<Principal>,
        /// The destination as subscribed.
        destination: String,
        /// The subscription id.
        subscription: String,
    },
}

impl SessionEvent {
    /// The session the event is about.
    pub fn session(&self) -> &str {
        match self {
            SessionEvent::Connected { session, .. }
            | SessionEvent::Disconnected { session, .. }
            | SessionEvent::Subscribed { session, .. }
            | SessionEvent::Unsubscribed { session, .. } => session,
        }
    }

    /// The session's user, if any.
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            SessionEvent::Connected { principal, .. }
            | SessionEvent::Disconnected { principal, .. }
            | SessionEvent::Subscribed { principal, .. }
            | SessionEvent::Unsubscribed { principal, .. } => principal.as_ref(),
        }
    }
}

pub(crate) type Listener = Arc<
    dyn Fn(SessionEvent, MessagingTemplate) -> Pin<Box<dyn Future<Output = ()> + Send>>
        + Send
        + Sync,
>;

/// One `#[session_event]` listener, as the attribute registers it.
#[derive(Debug, Clone, Copy)]
pub struct SessionListenerDef {
    /// The function's path.
    pub name: &'static str,
    /// Source file.
    pub file: &'static str,
    /// Source line.
    pub line: u32,
    /// Calls the function.
    pub call: fn(SessionEvent, MessagingTemplate) -> crate::advice::BoxFuture<'static, ()>,
}

inventory::collect!(SessionListenerDef);
