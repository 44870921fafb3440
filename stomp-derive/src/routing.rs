//! `#[send_to]` and `#[send_to_user]` met before the mapping attribute: they move below it,
//! where the mapping attribute reads them.

use proc_macro2::TokenStream;
use quote::quote;
use syn::ItemFn;

use crate::mapping::attr_ident;

pub(crate) fn reorder(name: &str, args: TokenStream, mut item: ItemFn) -> syn::Result<TokenStream> {
    let Some(pos) = item.attrs.iter().position(|a| {
        matches!(
            attr_ident(a).as_deref(),
            Some("message_mapping" | "subscribe_mapping" | "message_exception_handler")
        )
    }) else {
        return Err(syn::Error::new(
            item.sig.ident.span(),
            format!(
                "`#[{name}]` needs `#[message_mapping]`, `#[subscribe_mapping]` or `#[message_exception_handler]` on the same function"
            ),
        ));
    };
    let ident = syn::Ident::new(name, proc_macro2::Span::call_site());
    let attr: syn::Attribute = syn::parse_quote!(#[::stomp_runtime::#ident(#args)]);
    item.attrs.insert(pos + 1, attr);
    Ok(quote!(#item))
}
