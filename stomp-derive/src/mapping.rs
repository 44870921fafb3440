//! `#[message_mapping]` and `#[subscribe_mapping]`: check the function, collect the routing
//! attributes below it, and register a handler shim.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, GenericArgument, ItemFn, LitStr, Pat, PathArguments, ReturnType, Type,
};

use crate::attrs::{MappingArgs, SendToUser};
use crate::pattern;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Message,
    Subscribe,
}

impl Kind {
    fn attr_name(self) -> &'static str {
        match self {
            Kind::Message => "message_mapping",
            Kind::Subscribe => "subscribe_mapping",
        }
    }
}

/// A checked handler, ready to generate.
pub(crate) struct Handler {
    kind: Kind,
    item: ItemFn,
    patterns: Vec<LitStr>,
    tags: Vec<syn::Path>,
    roles: Vec<LitStr>,
    send_to: Vec<LitStr>,
    send_to_user: Option<SendToUser>,
    args: Vec<Arg>,
    /// Paths of the routing attributes consumed here, so the user's imports count as used.
    consumed: Vec<syn::Path>,
}

struct Arg {
    ty: Type,
    name: String,
}

/// The last path segment of an attribute (`send_to` for `#[stomp_runtime::send_to]`).
pub(crate) fn attr_ident(attr: &Attribute) -> Option<String> {
    attr.path().segments.last().map(|s| s.ident.to_string())
}

impl Handler {
    pub(crate) fn parse(kind: Kind, args: TokenStream, mut item: ItemFn) -> syn::Result<Self> {
        let MappingArgs {
            patterns,
            tags,
            roles,
        } = syn::parse2::<MappingArgs>(args)?;
        let mut all_vars: Option<Vec<String>> = None;
        for p in &patterns {
            let vars = pattern::variables(&p.value()).map_err(|reason| {
                syn::Error::new(p.span(), format!("invalid destination pattern: {reason}"))
            })?;
            // A variable is usable when every pattern of the handler defines it.
            all_vars = Some(match all_vars {
                None => vars,
                Some(prev) => prev.into_iter().filter(|v| vars.contains(v)).collect(),
            });
        }
        let vars = all_vars.unwrap_or_default();

        let mut send_to: Option<(Vec<LitStr>, Span)> = None;
        let mut send_to_user: Option<(SendToUser, Span)> = None;
        let mut errors: Option<syn::Error> = None;
        let mut push_err = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        let mut kept = Vec::new();
        let mut consumed = Vec::new();
        for attr in std::mem::take(&mut item.attrs) {
            if matches!(
                attr_ident(&attr).as_deref(),
                Some("send_to" | "send_to_user")
            ) {
                consumed.push(attr.path().clone());
            }
            match attr_ident(&attr).as_deref() {
                Some("send_to") => {
                    if send_to.is_some() {
                        push_err(syn::Error::new(
                            attr.meta.span(),
                            "duplicate `#[send_to]`: list every destination in one attribute, `#[send_to(\"/topic/a\", \"/topic/b\")]`",
                        ));
                        continue;
                    }
                    match attr.parse_args::<crate::attrs::Destinations>() {
                        Ok(d) => send_to = Some((d.0, attr.span())),
                        Err(e) => push_err(e),
                    }
                }
                Some("send_to_user") => {
                    if send_to_user.is_some() {
                        push_err(syn::Error::new(
                            attr.meta.span(),
                            "duplicate `#[send_to_user]`",
                        ));
                        continue;
                    }
                    match attr.parse_args::<SendToUser>() {
                        Ok(d) => send_to_user = Some((d, attr.meta.span())),
                        Err(e) => push_err(e),
                    }
                }
                Some(name @ ("message_mapping" | "subscribe_mapping")) => {
                    push_err(syn::Error::new(
                        attr.meta.span(),
                        format!(
                            "duplicate mapping: a function takes one `#[{}]` (list several patterns in it) and no `#[{name}]` besides",
                            kind.attr_name()
                        ),
                    ));
                }
                _ => kept.push(attr),
            }
        }
        item.attrs = kept;
        if let (Some(_), Some((_, span))) = (&send_to, &send_to_user) {
            push_err(syn::Error::new(
                *span,
                "`#[send_to]` and `#[send_to_user]` exclude each other: the return value goes to one place",
            ));
        }
        if let Some((dests, _)) = &send_to {
            for d in dests {
                check_placeholders(d, &vars).unwrap_or_else(&mut push_err);
            }
        }
        if let Some((u, _)) = &send_to_user {
            check_placeholders(&u.destination, &vars).unwrap_or_else(&mut push_err);
        }

        let sig = &item.sig;
        if sig.asyncness.is_none() {
            push_err(syn::Error::new(
                sig.fn_token.span(),
                format!("`#[{}]` handlers must be `async fn`", kind.attr_name()),
            ));
        }
        if !sig.generics.params.is_empty() {
            push_err(syn::Error::new(
                sig.generics.span(),
                "message handlers cannot be generic: the registry needs one concrete function",
            ));
        }
        let mut args = Vec::new();
        for (index, input) in sig.inputs.iter().enumerate() {
            match input {
                FnArg::Receiver(r) => push_err(syn::Error::new(
                    r.span(),
                    "message handlers are free functions: remove `self` (share state with `State<T>` instead)",
                )),
                FnArg::Typed(pt) => {
                    let name = arg_name(&pt.pat).unwrap_or_else(|| format!("arg{index}"));
                    if last_segment(&pt.ty).as_deref() == Some("DestinationVar")
                        && !vars.contains(&name)
                    {
                        push_err(syn::Error::new(
                            pt.pat.span(),
                            format!(
                                "no `{{{name}}}` in the destination pattern; name the argument after a pattern variable ({})",
                                if vars.is_empty() {
                                    "the pattern has none".to_owned()
                                } else {
                                    vars.iter()
                                        .map(|v| format!("`{v}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                }
                            ),
                        ));
                    }
                    args.push(Arg {
                        ty: (*pt.ty).clone(),
                        name,
                    });
                }
            }
        }
        if let Some(e) = errors {
            return Err(e);
        }
        Ok(Self {
            kind,
            item,
            patterns,
            tags,
            roles,
            send_to: send_to.map(|s| s.0).unwrap_or_default(),
            send_to_user: send_to_user.map(|s| s.0),
            args,
            consumed,
        })
    }
}

fn check_placeholders(dest: &LitStr, vars: &[String]) -> syn::Result<()> {
    let names = pattern::placeholders(&dest.value())
        .map_err(|r| syn::Error::new(dest.span(), format!("invalid destination: {r}")))?;
    for n in names {
        if !vars.contains(&n) {
            return Err(syn::Error::new(
                dest.span(),
                format!(
                    "unknown placeholder `{{{n}}}`: the mapping pattern defines {}",
                    if vars.is_empty() {
                        "no variables".to_owned()
                    } else {
                        vars.iter()
                            .map(|v| format!("`{{{v}}}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// `msg` in `msg: T`, `Payload(msg): Payload<T>`, `mut msg: T`.
pub(crate) fn arg_name(pat: &Pat) -> Option<String> {
    match pat {
        Pat::Ident(p) => Some(p.ident.to_string().trim_start_matches("r#").to_owned()),
        Pat::TupleStruct(ts) if ts.elems.len() == 1 => arg_name(&ts.elems[0]),
        Pat::Reference(r) => arg_name(&r.pat),
        _ => None,
    }
}

pub(crate) fn last_segment(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

pub(crate) fn generic_args(ty: &Type) -> Vec<&Type> {
    let Type::Path(p) = ty else { return Vec::new() };
    let Some(seg) = p.path.segments.last() else {
        return Vec::new();
    };
    let PathArguments::AngleBracketed(a) = &seg.arguments else {
        return Vec::new();
    };
    a.args
        .iter()
        .filter_map(|g| match g {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect()
}

/// An expression converting `value` of type `ty` into something `IntoReply`: types the
/// runtime knows pass through, `Option`/`Result` are mapped inside, anything else is
/// wrapped in `Json` (it must be `Serialize`).
pub(crate) fn convert(ty: &Type, value: TokenStream) -> TokenStream {
    let direct = ["String", "Bytes", "Json", "str"];
    match ty {
        Type::Tuple(t) if t.elems.is_empty() => value,
        Type::Reference(r) if matches!(&*r.elem, Type::Path(p) if p.path.is_ident("str")) => value,
        Type::Path(_) => {
            let last = last_segment(ty).unwrap_or_default();
            let inner = generic_args(ty);
            let bytes = last == "Vec"
                && inner
                    .first()
                    .is_some_and(|t| last_segment(t).as_deref() == Some("u8"));
            if direct.contains(&last.as_str()) || bytes {
                value
            } else if (last == "Option" || last == "Result") && !inner.is_empty() {
                let v = format_ident!("__v");
                let body = convert(inner[0], quote!(#v));
                quote!(#value.map(|#v| #body))
            } else {
                quote_spanned!(ty.span()=> ::stomp_runtime::__private::Json(#value))
            }
        }
        _ => quote_spanned!(ty.span()=> ::stomp_runtime::__private::Json(#value)),
    }
}

impl ToTokens for Handler {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let item = &self.item;
        let vis = &item.vis;
        let ident = &item.sig.ident;
        let ident_str = ident.to_string();
        let kind = match self.kind {
            Kind::Message => quote!(::stomp_runtime::__private::HandlerKind::Message),
            Kind::Subscribe => quote!(::stomp_runtime::__private::HandlerKind::Subscribe),
        };
        let patterns = &self.patterns;
        let tags = &self.tags;
        let roles = &self.roles;
        let send_to = &self.send_to;
        let send_to_user = match &self.send_to_user {
            None => quote!(::core::option::Option::None),
            Some(u) => {
                let d = &u.destination;
                let b = u.broadcast;
                quote!(::core::option::Option::Some(::stomp_runtime::__private::UserTarget {
                    destination: #d,
                    broadcast: #b,
                }))
            }
        };
        let bindings: Vec<_> = (0..self.args.len())
            .map(|i| format_ident!("__arg{i}"))
            .collect();
        let extracts = self.args.iter().enumerate().map(|(i, a)| {
            let ty = &a.ty;
            let name = &a.name;
            let b = &bindings[i];
            quote_spanned! {ty.span()=>
                let #b = ::stomp_runtime::__private::extract::<#ty>(&__ctx, #name, #i)?;
            }
        });
        let ret_ty: Type = match &item.sig.output {
            ReturnType::Default => syn::parse_quote!(()),
            ReturnType::Type(_, t) => (**t).clone(),
        };
        let converted = convert(&ret_ty, quote!(__ret));
        let reply = quote_spanned! {ret_ty.span()=>
            ::stomp_runtime::__private::reply(#converted)
        };
        let consumed = uses(&self.consumed);
        // The line of the function's name, not of the attribute.
        let line = quote_spanned!(ident.span()=> ::core::line!());
        tokens.extend(quote! {
            #item
            #consumed

            #[doc(hidden)]
            #[allow(non_camel_case_types, missing_docs, dead_code)]
            #vis struct #ident {}

            #[allow(non_snake_case)]
            impl #ident {
                /// The registration of this handler, for `StompServerBuilder::handler`.
                #[doc(hidden)]
                #vis const HANDLER: &'static ::stomp_runtime::__private::HandlerDef =
                    &::stomp_runtime::__private::HandlerDef {
                        kind: #kind,
                        patterns: &[#(#patterns),*],
                        send_to: &[#(#send_to),*],
                        send_to_user: #send_to_user,
                        tags: &[#(#tags),*],
                        roles: &[#(#roles),*],
                        name: ::core::concat!(::core::module_path!(), "::", #ident_str),
                        file: ::core::file!(),
                        line: #line,
                        call: #ident::__stomp_call,
                    };

                fn __stomp_call(
                    __ctx: ::stomp_runtime::__private::MessageContext,
                ) -> ::stomp_runtime::__private::HandlerFuture {
                    ::stomp_runtime::__private::Box::pin(async move {
                        #(#extracts)*
                        ::core::mem::drop(__ctx);
                        let __ret = #ident(#(#bindings),*).await;
                        #reply
                    })
                }
            }

            ::stomp_runtime::__private::inventory::submit! { *#ident::HANDLER }
        });
    }
}

/// `use path as _;` for each attribute path, so importing `send_to` is not reported unused
/// once the mapping attribute has consumed it.
pub(crate) fn uses(paths: &[syn::Path]) -> TokenStream {
    if paths.is_empty() {
        return TokenStream::new();
    }
    quote! {
        const _: () = {
            #(#[allow(unused_imports)] use #paths as _;)*
        };
    }
}
