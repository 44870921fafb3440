//! Pointcut expressions in the advice attributes:
//! `"/payment.**"`, `destination("/a.*")`, `handler("payments::*")`, `tag(AUDITED)`,
//! `any(...)`, `all(...)`, `not(...)`.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{LitStr, Path, Token, parenthesized};

use crate::pattern;

pub(crate) mod kw {
    syn::custom_keyword!(destination);
    syn::custom_keyword!(handler);
    syn::custom_keyword!(tag);
    syn::custom_keyword!(any);
    syn::custom_keyword!(all);
    syn::custom_keyword!(not);
    syn::custom_keyword!(order);
    syn::custom_keyword!(error_frame);
}

/// A parsed pointcut.
pub(crate) enum Pointcut {
    Destination(LitStr),
    Handler(LitStr),
    Tag(Path),
    Any(Vec<Pointcut>),
    All(Vec<Pointcut>),
    Not(Box<Pointcut>),
}

impl Pointcut {
    /// Whether the next tokens start a pointcut (rather than an option such as `order`).
    pub(crate) fn peek(input: ParseStream) -> bool {
        input.peek(LitStr)
            || input.peek(kw::destination)
            || input.peek(kw::handler)
            || input.peek(kw::tag)
            || input.peek(kw::any)
            || input.peek(kw::all)
            || input.peek(kw::not)
    }
}

fn destination(lit: LitStr) -> syn::Result<Pointcut> {
    pattern::variables(&lit.value()).map_err(|reason| {
        syn::Error::new(
            lit.span(),
            format!("invalid destination pointcut: {reason}"),
        )
    })?;
    Ok(Pointcut::Destination(lit))
}

fn handler_glob(lit: LitStr) -> syn::Result<Pointcut> {
    let value = lit.value();
    let ok = !value.is_empty()
        && value.split("::").all(|s| {
            s == "*"
                || s == "**"
                || (!s.is_empty()
                    && s.chars().all(|c| c.is_alphanumeric() || c == '_')
                    && !s.starts_with(|c: char| c.is_ascii_digit()))
        });
    if !ok {
        return Err(syn::Error::new(
            lit.span(),
            "invalid handler pointcut: expected a path of identifiers, `*` and `**` separated by `::`, e.g. \"payments::*\"",
        ));
    }
    Ok(Pointcut::Handler(lit))
}

fn list(input: ParseStream) -> syn::Result<Vec<Pointcut>> {
    let content;
    parenthesized!(content in input);
    let items = Punctuated::<Pointcut, Token![,]>::parse_terminated(&content)?;
    if items.is_empty() {
        return Err(content.error("expected at least one pointcut"));
    }
    Ok(items.into_iter().collect())
}

impl Parse for Pointcut {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if lookahead.peek(LitStr) {
            destination(input.parse()?)
        } else if lookahead.peek(kw::destination) {
            input.parse::<kw::destination>()?;
            let content;
            parenthesized!(content in input);
            destination(content.parse()?)
        } else if lookahead.peek(kw::handler) {
            input.parse::<kw::handler>()?;
            let content;
            parenthesized!(content in input);
            handler_glob(content.parse()?)
        } else if lookahead.peek(kw::tag) {
            input.parse::<kw::tag>()?;
            let content;
            parenthesized!(content in input);
            Ok(Pointcut::Tag(content.parse()?))
        } else if lookahead.peek(kw::any) {
            input.parse::<kw::any>()?;
            Ok(Pointcut::Any(list(input)?))
        } else if lookahead.peek(kw::all) {
            input.parse::<kw::all>()?;
            Ok(Pointcut::All(list(input)?))
        } else if lookahead.peek(kw::not) {
            input.parse::<kw::not>()?;
            let content;
            parenthesized!(content in input);
            Ok(Pointcut::Not(Box::new(content.parse()?)))
        } else {
            Err(lookahead.error())
        }
    }
}

impl ToTokens for Pointcut {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let p = quote!(::stomp_runtime::__private::Pointcut);
        tokens.extend(match self {
            Pointcut::Destination(l) => quote!(#p::Destination(#l)),
            Pointcut::Handler(l) => quote!(#p::Handler(#l)),
            Pointcut::Tag(path) => quote!(#p::Tag(#path)),
            Pointcut::Any(v) => quote!(#p::Any(&[#(#v),*])),
            Pointcut::All(v) => quote!(#p::All(&[#(#v),*])),
            Pointcut::Not(inner) => quote!(#p::Not(&#inner)),
        });
    }
}

/// `<pointcut>?, order = N?, error_frame?` (the last only where allowed).
pub(crate) struct AdviceArgs {
    pub pointcut: Option<Pointcut>,
    pub order: i32,
    pub error_frame: bool,
}

impl AdviceArgs {
    pub(crate) fn parse(input: ParseStream, allow_error_frame: bool) -> syn::Result<Self> {
        let mut args = AdviceArgs {
            pointcut: None,
            order: 0,
            error_frame: false,
        };
        if input.is_empty() {
            return Ok(args);
        }
        if Pointcut::peek(input) {
            args.pointcut = Some(input.parse()?);
            if input.is_empty() {
                return Ok(args);
            }
            input.parse::<Token![,]>()?;
        }
        let mut seen_order = false;
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::order) {
                let key = input.parse::<kw::order>()?;
                if seen_order {
                    return Err(syn::Error::new(key.span, "duplicate `order`"));
                }
                seen_order = true;
                input.parse::<Token![=]>()?;
                let negative = input.parse::<Option<Token![-]>>()?.is_some();
                let lit: syn::Lit = input.parse()?;
                let syn::Lit::Int(int) = &lit else {
                    return Err(syn::Error::new(
                        lit.span(),
                        "`order` takes an integer, e.g. `order = 10` (lower runs outside)",
                    ));
                };
                let value: i64 = int.base10_parse()?;
                let value = if negative { -value } else { value };
                args.order = i32::try_from(value)
                    .map_err(|_| syn::Error::new(int.span(), "`order` must fit in an i32"))?;
            } else if allow_error_frame && lookahead.peek(kw::error_frame) {
                input.parse::<kw::error_frame>()?;
                args.error_frame = true;
            } else if args.pointcut.is_none() && seen_order {
                return Err(lookahead.error());
            } else {
                return Err(input.error(if args.pointcut.is_some() {
                    "expected `order = N` after the pointcut"
                } else {
                    "expected a pointcut (\"/destination.**\", destination(..), handler(\"path::*\"), tag(CONST), any(..), all(..), not(..)) or `order = N`"
                }));
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }

    /// The pointcut's tokens (`Every` when none was given).
    pub(crate) fn pointcut_tokens(&self) -> TokenStream {
        match &self.pointcut {
            Some(p) => p.to_token_stream(),
            None => quote!(::stomp_runtime::__private::Pointcut::Every),
        }
    }
}
