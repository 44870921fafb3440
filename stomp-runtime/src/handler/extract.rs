//! Extractors: typed handler arguments taken from the message and its session.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Display;
use std::ops::Deref;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use super::{ExtractError, MessageContext};
use crate::frame::Headers;
use crate::security::Principal;
use crate::template::MessagingTemplate;

/// The name and position of a handler argument, for extractors that look things up by
/// name and for error messages.
#[derive(Debug, Clone, Copy)]
pub struct ArgInfo {
    /// The argument's binding name (`room` in `DestinationVar(room): DestinationVar<String>`).
    pub name: &'static str,
    /// Zero-based position.
    pub index: usize,
}

/// A type that can be a message handler argument.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a message handler argument",
    label = "not an extractor",
    note = "use Payload<T>, DestinationVar<T>, Header<T>, Headers, Principal, SessionInfo, State<T>, MessagingTemplate, Bytes, or Option of one of these"
)]
pub trait FromMessage: Sized {
    /// Extracts the argument, or says why it cannot.
    fn from_message(ctx: &MessageContext, arg: &ArgInfo) -> Result<Self, ExtractError>;
}

/// The message body, deserialized by `content-type`: JSON when it is absent or
/// `application/json`, the text itself for `text/*` (so `Payload<String>` takes text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload<T>(pub T);

impl<T: DeserializeOwned> FromMessage for Payload<T> {
    fn from_message(ctx: &MessageContext, arg: &ArgInfo) -> Result<Self, ExtractError> {
        let ct = ctx
            .headers
            .get("content-type")
            .unwrap_or("application/json");
        let mime = ct
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if mime.starts_with("text/") {
            let text = std::str::from_utf8(&ctx.body)
                .map_err(|_| ExtractError::new(arg.name, "text body is not valid UTF-8"))?;
            let de = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(text);
            return T::deserialize(de).map(Payload).map_err(|e| {
                ExtractError::new(arg.name, format!("cannot read `{mime}` body: {e}"))
            });
        }
        if mime == "application/json" || mime.ends_with("+json") {
            return serde_json::from_slice(&ctx.body)
                .map(Payload)
                .map_err(|e| ExtractError::new(arg.name, format!("invalid JSON payload: {e}")));
        }
        Err(ExtractError::new(
            arg.name,
            format!("content-type `{ct}` cannot be deserialized; take `Bytes` for raw bodies"),
        ))
    }
}

/// The raw body.
impl FromMessage for Bytes {
    fn from_message(ctx: &MessageContext, _arg: &ArgInfo) -> Result<Self, ExtractError> {
        Ok(ctx.body.clone())
    }
}

/// A variable of the matched destination pattern, named like the argument:
/// `DestinationVar(room): DestinationVar<String>` reads `{room}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationVar<T>(pub T);

impl<T: FromStr> FromMessage for DestinationVar<T>
where
    T::Err: Display,
{
    fn from_message(ctx: &MessageContext, arg: &ArgInfo) -> Result<Self, ExtractError> {
        let raw = ctx.var(arg.name).ok_or_else(|| {
            ExtractError::new(
                arg.name,
                format!("the destination has no `{{{}}}`", arg.name),
            )
        })?;
        raw.parse()
            .map(DestinationVar)
            .map_err(|e| ExtractError::new(arg.name, format!("`{raw}` is not a valid value: {e}")))
    }
}

/// One header, named like the argument with `_` read as `-` (leading underscores, which
/// only silence the unused-variable lint, are dropped): `Header(device_id): Header<u32>`
/// reads `device-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<T>(pub T);

impl<T: FromStr> FromMessage for Header<T>
where
    T::Err: Display,
{
    fn from_message(ctx: &MessageContext, arg: &ArgInfo) -> Result<Self, ExtractError> {
        let name = arg.name.trim_start_matches('_').replace('_', "-");
        let raw = ctx
            .headers
            .get(&name)
            .ok_or_else(|| ExtractError::new(arg.name, format!("missing header `{name}`")))?;
        raw.parse().map(Header).map_err(|e| {
            ExtractError::new(
                arg.name,
                format!("header `{name}` = `{raw}` is invalid: {e}"),
            )
        })
    }
}

/// All headers of the SEND (or SUBSCRIBE) frame.
impl FromMessage for Headers {
    fn from_message(ctx: &MessageContext, _arg: &ArgInfo) -> Result<Self, ExtractError> {
        Ok(ctx.headers.clone())
    }
}

/// The authenticated user; fails for anonymous sessions (take `Option<Principal>` to allow
/// them).
impl FromMessage for Principal {
    fn from_message(ctx: &MessageContext, arg: &ArgInfo) -> Result<Self, ExtractError> {
        ctx.session
            .principal
            .clone()
            .ok_or_else(|| ExtractError::new(arg.name, "the session has no authenticated user"))
    }
}

/// `None` where the inner extractor fails.
impl<T: FromMessage> FromMessage for Option<T> {
    fn from_message(ctx: &MessageContext, arg: &ArgInfo) -> Result<Self, ExtractError> {
        Ok(T::from_message(ctx, arg).ok())
    }
}

/// Attributes kept for the life of a session, shared by its handlers.
#[derive(Clone, Default)]
pub struct SessionAttributes {
    map: Arc<Mutex<HashMap<String, Arc<dyn Any + Send + Sync>>>>,
}

impl std::fmt::Debug for SessionAttributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.map.lock().keys()).finish()
    }
}

impl SessionAttributes {
    /// Stores `value` under `key`.
    pub fn insert<T: Any + Send + Sync>(&self, key: impl Into<String>, value: T) {
        self.map.lock().insert(key.into(), Arc::new(value));
    }

    /// The value under `key`, if it is a `T`.
    pub fn get<T: Any + Send + Sync + Clone>(&self, key: &str) -> Option<T> {
        self.map
            .lock()
            .get(key)
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }

    /// Removes `key`.
    pub fn remove(&self, key: &str) {
        self.map.lock().remove(key);
    }
}

/// The calling session: its id, user and attributes.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// The session id (the CONNECTED `session` header).
    pub id: Arc<str>,
    /// The authenticated user, if any.
    pub principal: Option<Principal>,
    /// Attributes kept for the life of the session.
    pub attributes: SessionAttributes,
}

impl FromMessage for SessionInfo {
    fn from_message(ctx: &MessageContext, _arg: &ArgInfo) -> Result<Self, ExtractError> {
        Ok(ctx.session.clone())
    }
}

/// Application state registered with `StompServerBuilder::state`.
#[derive(Debug)]
pub struct State<T: ?Sized>(pub Arc<T>);

impl<T: ?Sized> Clone for State<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: ?Sized> Deref for State<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Application state by type.
#[derive(Default, Clone)]
pub(crate) struct StateMap {
    map: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl StateMap {
    pub(crate) fn insert<T: Any + Send + Sync>(&mut self, value: T) {
        self.map.insert(TypeId::of::<T>(), Arc::new(value));
    }

    pub(crate) fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.map
            .get(&TypeId::of::<T>())
            .cloned()
            .and_then(|a| a.downcast::<T>().ok())
    }
}

impl<T: Any + Send + Sync> FromMessage for State<T> {
    fn from_message(ctx: &MessageContext, arg: &ArgInfo) -> Result<Self, ExtractError> {
        ctx.server.state.get::<T>().map(State).ok_or_else(|| {
            ExtractError::new(
                arg.name,
                format!(
                    "no state of type `{}` was registered on the server builder",
                    std::any::type_name::<T>()
                ),
            )
        })
    }
}

impl FromMessage for MessagingTemplate {
    fn from_message(ctx: &MessageContext, _arg: &ArgInfo) -> Result<Self, ExtractError> {
        Ok(MessagingTemplate::new(ctx.server.clone()))
    }
}

/// The full destination the frame was sent to (with the application prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination(pub String);

impl FromMessage for Destination {
    fn from_message(ctx: &MessageContext, _arg: &ArgInfo) -> Result<Self, ExtractError> {
        Ok(Destination(ctx.destination.clone()))
    }
}
