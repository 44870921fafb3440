//! Channel interceptors: code that sees every inbound frame of every session (CONNECT
//! included) before it is handled, and optionally every MESSAGE before it is queued.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;

use crate::broker::BrokerMessage;
use crate::frame::{Frame, Version};
use crate::handler::SessionAttributes;
use crate::security::Principal;
use crate::transport::ConnectionInfo;

/// What a channel interceptor knows of the session an inbound frame arrived on, and may
/// change (the principal, at CONNECT).
pub struct InboundContext<'a> {
    pub(crate) session_id: &'a str,
    pub(crate) principal: &'a mut Option<Principal>,
    pub(crate) attributes: &'a SessionAttributes,
    pub(crate) connection: &'a ConnectionInfo,
    pub(crate) version: Version,
    pub(crate) connected: bool,
}

impl InboundContext<'_> {
    /// The session id.
    pub fn session_id(&self) -> &str {
        self.session_id
    }

    /// The session's user so far (set at CONNECT by an authenticator or an interceptor).
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.as_ref()
    }

    /// Sets (or clears) the session's user. Meant for CONNECT: later frames see it, user
    /// destinations resolve to it and session events carry it.
    pub fn set_principal(&mut self, principal: Option<Principal>) {
        *self.principal = principal;
    }

    /// The session's attributes.
    pub fn attributes(&self) -> &SessionAttributes {
        self.attributes
    }

    /// The connection the session runs on: transport, peer address, handshake principal.
    pub fn connection(&self) -> &ConnectionInfo {
        self.connection
    }

    /// The STOMP version in use (1.0 until CONNECT is answered).
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether CONNECT has been accepted.
    pub fn is_connected(&self) -> bool {
        self.connected
    }
}

/// Why an interceptor refused a frame, and how the client hears of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub(crate) message: Cow<'static, str>,
    pub(crate) details: Cow<'static, str>,
    pub(crate) close: bool,
}

impl Refusal {
    /// An ERROR frame with this `message`; the connection closes (always so for CONNECT).
    pub fn error(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
            details: Cow::Borrowed(""),
            close: true,
        }
    }

    /// A message on the session's error destination (as a handler error would be); the
    /// frame is dropped and the session stays open.
    pub fn reply(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            close: false,
            ..Self::error(message)
        }
    }

    /// Adds a longer explanation (the ERROR frame's body).
    pub fn details(mut self, details: impl Into<Cow<'static, str>>) -> Self {
        self.details = details.into();
        self
    }

    /// The short reason.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the connection closes.
    pub fn closes(&self) -> bool {
        self.close
    }
}

/// What a session's subscriber is about to receive, for [`ChannelInterceptor::pre_deliver`].
pub struct OutboundContext<'a> {
    pub(crate) session_id: &'a str,
    pub(crate) principal: Option<&'a Principal>,
    pub(crate) subscription: &'a str,
}

impl OutboundContext<'_> {
    /// The receiving session.
    pub fn session_id(&self) -> &str {
        self.session_id
    }

    /// Its user.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal
    }

    /// The subscription the message is for.
    pub fn subscription(&self) -> &str {
        self.subscription
    }
}

/// What happens to an outbound MESSAGE.
#[derive(Debug, Clone)]
pub enum Deliver {
    /// Delivered as is.
    Pass,
    /// Not delivered to this subscriber.
    Drop,
    /// This message is delivered instead (encoded for this subscriber alone).
    Replace(Arc<BrokerMessage>),
}

/// Sees every inbound frame after parsing and before it is handled (CONNECT included) and,
/// when [`intercepts_outbound`](Self::intercepts_outbound) says so, every MESSAGE before it
/// is queued for a subscriber. Registered in order with
/// `StompServerBuilder::channel_interceptor`; the first refusal wins.
///
/// ```
/// use stomp_runtime::advice::{ChannelInterceptor, InboundContext, Refusal};
/// use stomp_runtime::frame::{Command, Frame};
///
/// /// Devices must say which firmware they run.
/// struct RequireFirmware;
///
/// #[stomp_runtime::async_trait]
/// impl ChannelInterceptor for RequireFirmware {
///     async fn pre_receive(&self, frame: &mut Frame, ctx: &mut InboundContext<'_>) -> Result<(), Refusal> {
///         if frame.command == Command::Connect && frame.get("firmware").is_none() {
///             return Err(Refusal::error("firmware header required"));
///         }
///         if let Some(user) = ctx.principal() {
///             let name = user.name().to_owned();
///             frame.headers.set("x-user", name);
///         }
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait ChannelInterceptor: Send + Sync + 'static {
    /// A name for logs (the type's name by default).
    fn name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }

    /// Passes (`Ok`), changes the frame or the session's principal, or refuses the frame.
    async fn pre_receive(
        &self,
        frame: &mut Frame,
        ctx: &mut InboundContext<'_>,
    ) -> Result<(), Refusal> {
        let _ = (frame, ctx);
        Ok(())
    }

    /// Whether [`pre_deliver`](Self::pre_deliver) should be called (off by default: the
    /// fan-out path then shares one encoding between all subscribers).
    fn intercepts_outbound(&self) -> bool {
        false
    }

    /// Passes, drops or replaces one MESSAGE for one subscriber. Called on the publishing
    /// task: keep it fast and non-blocking.
    fn pre_deliver(&self, message: &BrokerMessage, ctx: &OutboundContext<'_>) -> Deliver {
        let _ = (message, ctx);
        Deliver::Pass
    }
}

impl std::fmt::Debug for dyn ChannelInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
