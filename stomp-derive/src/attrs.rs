//! Arguments of the attributes.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{LitBool, LitStr, Token};

mod kw {
    syn::custom_keyword!(broadcast);
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
