//! Attribute macros for `stomp-runtime` controllers. Use them through
//! `stomp_runtime` (`use stomp_runtime::{message_mapping, send_to};`), which re-exports them.
//!
//! A handler is a plain `async fn` whose arguments are extractors and whose return value is
//! routed by `#[send_to]` or `#[send_to_user]`. Each annotated function registers itself at
//! link time; `StompServer::builder().build()` collects every one.

mod attrs;
mod mapping;
mod pattern;
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
