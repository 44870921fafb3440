//! Session lifecycle events, as Spring's `SessionConnectedEvent` and
//! `SessionDisconnectEvent`: presence lists, audit logs, cleaning up per-session state.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::security::Principal;
use crate::template::MessagingTemplate;

/// Something that happened to a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionEvent {
    /// CONNECT was accepted (CONNECTED is on its way).
    Connected {
        /// The session id.
        session: Arc<str>,
        /// The authenticated user, if any.
        principal: Option<Principal>,
    },
    /// The session ended: DISCONNECT, a protocol error, a lost or silent peer.
    Disconnected {
        /// The session id.
        session: Arc<str>,
        /// The authenticated user, if any.
        principal: Option<Principal>,
    },
}

impl SessionEvent {
    /// The session the event is about.
    pub fn session(&self) -> &str {
        match self {
            SessionEvent::Connected { session, .. }
            | SessionEvent::Disconnected { session, .. } => session,
        }
    }

    /// The session's user, if any.
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            SessionEvent::Connected { principal, .. }
            | SessionEvent::Disconnected { principal, .. } => principal.as_ref(),
        }
    }
}

pub(crate) type Listener = Arc<
    dyn Fn(SessionEvent, MessagingTemplate) -> Pin<Box<dyn Future<Output = ()> + Send>>
        + Send
        + Sync,
>;
