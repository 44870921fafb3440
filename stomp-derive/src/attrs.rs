//! Arguments of the attributes.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{LitBool, LitStr, Token};

mod kw {
    syn::custom_keyword!(broadcast);
    syn::custom_keyword!(tags);
    syn::custom_keyword!(roles);
}

/// `("/a", "/b.{x}")`: one or more destination strings.
pub(crate) struct Destinations(pub Vec<LitStr>);

impl Parse for Destinations {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(input.error(
                "expected a destination string, e.g. `#[message_mapping(\"/chat.send\")]`",
            ));
        }
        let list = Punctuated::<LitStr, Token![,]>::parse_terminated(input).map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected destination strings like \"/chat.send.{room}\"",
            )
        })?;
        Ok(Self(list.into_iter().collect()))
    }
}

/// `("/queue/replies")` or `("/queue/replies", broadcast = false)`.
pub(crate) struct SendToUser {
    pub destination: LitStr,
    pub broadcast: bool,
}

impl Parse for SendToUser {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let lookahead = input.lookahead1();
        if !lookahead.peek(LitStr) {
            return Err(lookahead.error());
        }
        let destination: LitStr = input.parse()?;
        let mut broadcast = true;
        if input.parse::<Option<Token![,]>>()?.is_some() && !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(kw::broadcast) {
                input.parse::<kw::broadcast>()?;
                input.parse::<Token![=]>()?;
                broadcast = input.parse::<LitBool>()?.value;
                input.parse::<Option<Token![,]>>()?;
            } else {
                return Err(lookahead.error());
            }
        }
        if !input.is_empty() {
            return Err(input.error("unexpected tokens after `#[send_to_user]` arguments"));
        }
        Ok(Self {
            destination,
            broadcast,
        })
    }
}

/// `("/a", "/b.{x}", tags = [AUDITED], roles = ["operator"])`.
pub(crate) struct MappingArgs {
    pub patterns: Vec<LitStr>,
    pub tags: Vec<syn::Path>,
    pub roles: Vec<LitStr>,
}

impl Parse for MappingArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        if input.is_empty() {
            return Err(input.error(
                "expected a destination string, e.g. `#[message_mapping(\"/chat.send\")]`",
            ));
        }
        let mut args = MappingArgs {
            patterns: Vec::new(),
            tags: Vec::new(),
            roles: Vec::new(),
        };
        let (mut seen_tags, mut seen_roles) = (false, false);
        while !input.is_empty() {
            let lookahead = input.lookahead1();
            if lookahead.peek(LitStr) {
                if seen_tags || seen_roles {
                    return Err(input.error("destination patterns come before `tags` and `roles`"));
                }
                args.patterns.push(input.parse()?);
            } else if lookahead.peek(kw::tags) {
                let k = input.parse::<kw::tags>()?;
                if std::mem::replace(&mut seen_tags, true) {
                    return Err(syn::Error::new(k.span, "duplicate `tags`"));
                }
                input.parse::<Token![=]>()?;
                let content;
                syn::bracketed!(content in input);
                args.tags = Punctuated::<syn::Path, Token![,]>::parse_terminated(&content)
                    .map_err(|e| {
                        syn::Error::new(
                            e.span(),
                            "expected tag constants, e.g. `tags = [AUDITED]` with `const AUDITED: Tag = Tag::new(\"audited\");`",
                        )
                    })?
                    .into_iter()
                    .collect();
            } else if lookahead.peek(kw::roles) {
                let k = input.parse::<kw::roles>()?;
                if std::mem::replace(&mut seen_roles, true) {
                    return Err(syn::Error::new(k.span, "duplicate `roles`"));
                }
                input.parse::<Token![=]>()?;
                let content;
                syn::bracketed!(content in input);
                args.roles = Punctuated::<LitStr, Token![,]>::parse_terminated(&content)
                    .map_err(|e| {
                        syn::Error::new(
                            e.span(),
                            "expected role names, e.g. `roles = [\"operator\"]`",
                        )
                    })?
                    .into_iter()
                    .collect();
            } else {
                return Err(lookahead.error());
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        if args.patterns.is_empty() {
            return Err(input.error(
                "expected a destination string, e.g. `#[message_mapping(\"/chat.send\")]`",
            ));
        }
        Ok(args)
    }
}
