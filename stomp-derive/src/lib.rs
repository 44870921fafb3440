//! Attribute macros for `stomp-runtime` controllers. Use them through
//! `stomp_runtime` (`use stomp_runtime::{message_mapping, send_to};`), which re-exports them.
//!
//! A handler is a plain `async fn` whose arguments are extractors and whose return value is
//! routed by `#[send_to]` or `#[send_to_user]`. Each annotated function registers itself at
//! link time; `StompServer::builder().build()` collects every one.

mod advice;
mod attrs;
mod mapping;
mod pattern;
mod pointcut;
mod routing;

use proc_macro::TokenStream;
use quote::ToTokens;
use syn::ItemFn;

use mapping::{Handler, Kind};

fn expand_mapping(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    let item_tokens: proc_macro2::TokenStream = item.clone().into();
    let func = match syn::parse::<ItemFn>(item) {
        Ok(f) => f,
        Err(e) => return with_error(e, item_tokens),
    };
    let mut plain = func.clone();
    match Handler::parse(kind, args.into(), func) {
        Ok(h) => h.into_token_stream().into(),
        Err(e) => {
            // The routing attributes belong to this mapping: dropped with it, so they do
            // not report a second, misleading error.
            plain.attrs.retain(|a| {
                !matches!(
                    mapping::attr_ident(a).as_deref(),
                    Some("send_to" | "send_to_user")
                )
            });
            with_error(e, plain.into_token_stream())
        }
    }
}

/// The user's item unchanged beside the error, so IDE features keep working.
fn with_error(e: syn::Error, item: proc_macro2::TokenStream) -> TokenStream {
    let mut out = e.to_compile_error();
    out.extend(item);
    out.into()
}

fn expand_advice(form: advice::Form, args: TokenStream, item: TokenStream) -> TokenStream {
    let item_tokens: proc_macro2::TokenStream = item.clone().into();
    let func = match syn::parse::<ItemFn>(item) {
        Ok(f) => f,
        Err(e) => return with_error(e, item_tokens),
    };
    let mut plain = func.clone();
    match advice::Advice::parse(form, args.into(), func) {
        Ok(a) => a.into_token_stream().into(),
        Err(e) => {
            plain.attrs.retain(|a| {
                !matches!(
                    mapping::attr_ident(a).as_deref(),
                    Some("send_to" | "send_to_user")
                )
            });
            with_error(e, plain.into_token_stream())
        }
    }
}

fn expand_routing(name: &str, args: TokenStream, item: TokenStream) -> TokenStream {
    let item_tokens: proc_macro2::TokenStream = item.clone().into();
    match syn::parse::<ItemFn>(item).and_then(|f| routing::reorder(name, args.into(), f)) {
        Ok(t) => t.into(),
        Err(e) => with_error(e, item_tokens),
    }
}

/// Handles SEND frames whose destination, after the application prefix (default `/app`),
/// matches one of the patterns.
///
/// # Syntax
/// `#[message_mapping("/pattern", ...)]` on an `async fn`. Patterns have segments separated
/// by `/` or `.`; a segment is text, `{var}` (captured, read with `DestinationVar`), `*`
/// (one segment) or `**` (any number).
///
/// Arguments are extractors (`Payload<T>`, `DestinationVar<T>`, `Header<T>`, `Headers`,
/// `Principal`, `Option<Principal>`, `SessionInfo`, `State<T>`, `MessagingTemplate`,
/// `Bytes`). The return value (`()`, `String`, `Bytes`, any `Serialize`, `Option`,
/// `Result<_, E: Into<StompError>>`) goes to `#[send_to]`, `#[send_to_user]`, or by default
/// to `/topic` + the destination without the application prefix.
///
/// # Examples
/// ```
/// use stomp_runtime::prelude::*;
/// use stomp_runtime::{message_mapping, send_to};
///
/// #[derive(Deserialize, Serialize)]
/// struct Chat { user: String, text: String }
///
/// #[message_mapping("/chat.send.{room}")]
/// #[send_to("/topic/rooms.{room}")]
/// async fn send(Payload(msg): Payload<Chat>, DestinationVar(room): DestinationVar<String>) -> Chat {
///     Chat { text: format!("[{room}] {}", msg.text), ..msg }
/// }
/// ```
///
/// # Errors
/// Compile errors for a missing or malformed pattern, a non-`async` function, a `self`
/// receiver, generics, an argument that is not an extractor, a `DestinationVar` named after
/// no pattern variable, and duplicate attributes.
#[proc_macro_attribute]
pub fn message_mapping(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_mapping(Kind::Message, args, item)
}

/// Handles SUBSCRIBE frames to application destinations and answers that subscriber once,
/// directly, without the broker (request-reply, as Spring's `@SubscribeMapping`).
///
/// # Syntax
/// `#[subscribe_mapping("/pattern", ...)]`, patterns and arguments as for
/// [`macro@message_mapping`]. With `#[send_to]` the value is broadcast instead.
///
/// # Examples
/// ```
/// use stomp_runtime::prelude::*;
/// use stomp_runtime::subscribe_mapping;
///
/// #[subscribe_mapping("/rooms.{room}.history")]
/// async fn history(DestinationVar(room): DestinationVar<String>) -> Vec<String> {
///     vec![format!("welcome to {room}")]
/// }
/// ```
///
/// # Errors
/// As for [`macro@message_mapping`].
#[proc_macro_attribute]
pub fn subscribe_mapping(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_mapping(Kind::Subscribe, args, item)
}

/// Publishes the handler's return value to one or more broker destinations; `{var}`
/// placeholders are filled from the matched destination.
///
/// # Syntax
/// `#[send_to("/topic/a", "/topic/rooms.{room}")]`, together with `#[message_mapping]` or
/// `#[subscribe_mapping]` (above or below it).
///
/// # Examples
/// ```
/// use stomp_runtime::{message_mapping, send_to};
///
/// #[message_mapping("/gates.{gate}.open")]
/// #[send_to("/topic/gates.{gate}", "/topic/audit")]
/// async fn open(stomp_runtime::DestinationVar(gate): stomp_runtime::DestinationVar<u32>) -> String {
///     format!("gate {gate} opened")
/// }
/// ```
///
/// # Errors
/// A compile error without a mapping attribute, for an unknown placeholder, or when
/// repeated.
#[proc_macro_attribute]
pub fn send_to(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_routing("send_to", args, item)
}

/// Sends the handler's return value to the calling user's sessions at a user destination
/// (subscribed as `/user/queue/...`); with `broadcast = false`, only to the calling
/// session. Sessions without a principal get their own reply.
///
/// # Syntax
/// `#[send_to_user("/queue/replies")]` or `#[send_to_user("/queue/replies", broadcast = false)]`.
///
/// # Examples
/// ```
/// use stomp_runtime::prelude::*;
/// use stomp_runtime::{message_mapping, send_to_user};
///
/// #[message_mapping("/whoami")]
/// #[send_to_user("/queue/replies", broadcast = false)]
/// async fn whoami(user: Option<Principal>) -> String {
///     user.map(|p| p.name().to_owned()).unwrap_or_else(|| "anonymous".into())
/// }
/// ```
///
/// # Errors
/// A compile error without a mapping attribute, with `#[send_to]`, or when repeated.
#[proc_macro_attribute]
pub fn send_to_user(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_routing("send_to_user", args, item)
}

/// Wraps every handler the pointcut selects, as Spring's `@Around`: the advice receives the
/// [`Invocation`](../stomp_runtime/advice/struct.Invocation.html) and the rest of the chain,
/// and decides whether and how to proceed.
///
/// # Syntax
/// `#[around(<pointcut>, order = N)]` on
/// `async fn(inv: Invocation, next: Next, <extractors>...) -> HandlerResult`. Pointcuts:
/// a destination pattern (`"/payment.**"`, the handler's pattern without the application
/// prefix; `*` one segment, `**` any number), `handler("payments::*")` (the end of the
/// handler's path), `tag(AUDITED)` (a `Tag` constant the handler lists in `tags = [...]`),
/// and `any(...)`, `all(...)`, `not(...)` of those; none selects every handler. Lower
/// `order` runs outside (default 0, ties by function path). Further parameters are
/// extractors, as handlers take them (`State<T>`, `Payload<T>`, ...).
///
/// Not calling `next.run(inv)` refuses the call: the advice's `Err` reaches the client
/// exactly as a handler error would.
///
/// # Examples
/// ```
/// use stomp_runtime::advice::{HandlerResult, Invocation, Next};
/// use stomp_runtime::{around, StompError};
///
/// #[around("/gate.**", order = 1)]
/// async fn only_in_hours(inv: Invocation, next: Next) -> HandlerResult {
///     if inv.headers().get("after-hours").is_some() {
///         return Err(StompError::new("gates are closed after hours"));
///     }
///     next.run(inv).await
/// }
/// ```
///
/// # Errors
/// Compile errors for a malformed pointcut, a non-integer `order`, a function that is not
/// `async`, takes no `Invocation` or no `Next`, or takes `&Invocation`.
#[proc_macro_attribute]
pub fn around(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_advice(advice::Form::Around, args, item)
}

/// Runs before every handler the pointcut selects (Spring's `@Before`); returning `Err`
/// refuses the call.
///
/// # Syntax
/// `#[before(<pointcut>, order = N)]` on
/// `async fn(inv: &Invocation, <extractors>...) -> Result<(), StompError>` (or `()`).
///
/// # Examples
/// ```
/// use stomp_runtime::advice::Invocation;
/// use stomp_runtime::{before, StompError};
///
/// #[before("/payment.**")]
/// async fn require_idempotency_key(inv: &Invocation) -> Result<(), StompError> {
///     match inv.headers().get("idempotency-key") {
///         Some(_) => Ok(()),
///         None => Err(StompError::new("idempotency-key header required")),
///     }
/// }
/// ```
///
/// # Errors
/// As for [`macro@around`], and for a `Next` parameter.
#[proc_macro_attribute]
pub fn before(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_advice(advice::Form::Before, args, item)
}

/// Runs after every successful call of the handlers the pointcut selects (Spring's
/// `@AfterReturning`), seeing the reply.
///
/// # Syntax
/// `#[after_returning(<pointcut>, order = N)]` on
/// `async fn(inv: &Invocation, reply: Option<&Reply>, <extractors>...)`.
///
/// # Examples
/// ```
/// use stomp_runtime::advice::Invocation;
/// use stomp_runtime::after_returning;
/// use stomp_runtime::handler::Reply;
///
/// #[after_returning("/gate.**")]
/// async fn log_reply(inv: &Invocation, reply: Option<&Reply>) {
///     tracing::info!(handler = inv.handler().name, bytes = reply.map_or(0, |r| r.body.len()), "answered");
/// }
/// ```
///
/// # Errors
/// As for [`macro@before`], and for a return type.
#[proc_macro_attribute]
pub fn after_returning(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_advice(advice::Form::AfterReturning, args, item)
}

/// Runs once when a handler the pointcut selects fails (Spring's `@AfterThrowing`): a
/// handler error, an argument that could not be extracted, a refusal by an around advice, a
/// panic. It observes; the error reaches the client unchanged.
///
/// # Syntax
/// `#[after_error(<pointcut>, order = N)]` on
/// `async fn(inv: &Invocation, err: &StompError, <extractors>...)`.
///
/// # Examples
/// ```
/// use stomp_runtime::advice::Invocation;
/// use stomp_runtime::{after_error, StompError};
///
/// #[after_error(handler("payments::*"))]
/// async fn count_failure(inv: &Invocation, err: &StompError) {
///     tracing::warn!(handler = inv.handler().name, kind = ?err.kind(), "payment failed");
/// }
/// ```
///
/// # Errors
/// As for [`macro@before`], for a missing `&StompError`, and for a return type.
#[proc_macro_attribute]
pub fn after_error(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_advice(advice::Form::AfterError, args, item)
}

/// Turns errors of the handlers the pointcut selects into a reply (Spring's
/// `@MessageExceptionHandler`).
///
/// # Syntax
/// `#[message_exception_handler(<pointcut>?, order = N, error_frame?)]` on
/// `async fn(err: &E, inv: &Invocation, <extractors>...) -> R`. With `err: &StompError` it
/// handles every error; with any other `&E` only errors whose source is an `E` (returned
/// with `?` or `StompError::with_source`). The reply `R` (as a handler's return value) goes
/// to the caller's error destination (`/user/queue/errors`), or where `#[send_to]` /
/// `#[send_to_user]` say, or with `error_frame` into an ERROR frame that closes the
/// connection. Handlers are asked by `order`, then path; the first whose type matches
/// answers.
///
/// # Examples
/// ```
/// use stomp_runtime::message_exception_handler;
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("card declined: {0}")]
/// struct Declined(String);
///
/// #[message_exception_handler("/payment.**")]
/// async fn declined(err: &Declined) -> String {
///     format!("payment declined ({})", err.0)
/// }
/// ```
///
/// # Errors
/// As for [`macro@before`], for a missing error parameter, and for two reply targets.
#[proc_macro_attribute]
pub fn message_exception_handler(args: TokenStream, item: TokenStream) -> TokenStream {
    expand_advice(advice::Form::Exception, args, item)
}

/// Calls the function for every session event (connected, subscribed, unsubscribed,
/// disconnected), as `StompServerBuilder::on_session_event` does.
///
/// # Syntax
/// `#[session_event]` on `async fn(event: SessionEvent, template: MessagingTemplate)`; the
/// template parameter is optional.
///
/// # Examples
/// ```
/// use stomp_runtime::{session_event, MessagingTemplate, SessionEvent};
///
/// #[session_event]
/// async fn presence(event: SessionEvent, template: MessagingTemplate) {
///     if let SessionEvent::Disconnected { principal: Some(user), .. } = &event {
///         let _ = template.convert_and_send("/topic/presence", &format!("{} left", user.name())).await;
///     }
/// }
/// ```
///
/// # Errors
/// A compile error for arguments, a non-`async` function, or other parameter types.
#[proc_macro_attribute]
pub fn session_event(args: TokenStream, item: TokenStream) -> TokenStream {
    let item_tokens: proc_macro2::TokenStream = item.clone().into();
    match syn::parse::<ItemFn>(item).and_then(|f| advice::session_event(args.into(), f)) {
        Ok(t) => t.into(),
        Err(e) => with_error(e, item_tokens),
    }
}
