//! `#[around]`, `#[before]`, `#[after_returning]`, `#[after_error]`,
//! `#[message_exception_handler]` and `#[session_event]`: check the function, classify its
//! parameters, and register a shim.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat, ReturnType, Type};

use crate::attrs::{Destinations, SendToUser};
use crate::mapping::{arg_name, attr_ident, convert, generic_args, last_segment, uses};
use crate::pointcut::AdviceArgs;

/// Which advice attribute.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Around,
    Before,
    AfterReturning,
    AfterError,
    Exception,
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Form::Around => "around",
            Form::Before => "before",
            Form::AfterReturning => "after_returning",
            Form::AfterError => "after_error",
            Form::Exception => "message_exception_handler",
        }
    }

    /// The signature to show in errors.
    fn signature(self) -> &'static str {
        match self {
            Form::Around => "async fn(inv: Invocation, next: Next, ...) -> HandlerResult",
            Form::Before => "async fn(inv: &Invocation, ...) -> Result<(), StompError>",
            Form::AfterReturning => "async fn(inv: &Invocation, reply: Option<&Reply>, ...)",
            Form::AfterError => "async fn(inv: &Invocation, err: &StompError, ...)",
            Form::Exception => "async fn(err: &MyError, inv: &Invocation, ...) -> impl IntoReply",
        }
    }
}

/// What a parameter is.
enum Param {
    /// `Invocation` by value.
    Invocation,
    /// `&Invocation`.
    InvocationRef,
    /// `Next`.
    Next,
    /// `&StompError` (after_error) or `&E` (exception handlers).
    Error(Type),
    /// `Option<&Reply>`.
    Reply,
    /// Anything else: an extractor read from the invocation.
    Extract { ty: Type, name: String },
}

fn referenced(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Reference(r) => Some(&r.elem),
        _ => None,
    }
}

fn is_option_of_reply_ref(ty: &Type) -> bool {
    last_segment(ty).as_deref() == Some("Option")
        && generic_args(ty).first().is_some_and(|inner| {
            referenced(inner).is_some_and(|t| last_segment(t).as_deref() == Some("Reply"))
        })
}

fn classify(form: Form, index: usize, pat: &Pat, ty: &Type) -> syn::Result<Param> {
    let last = last_segment(ty);
    let inner_last = referenced(ty).and_then(last_segment);
    let wrong = |what: &str| {
        syn::Error::new(
            ty.span(),
            format!(
                "`#[{}]` takes {what}; expected `{}`",
                form.name(),
                form.signature()
            ),
        )
    };
    Ok(match (last.as_deref(), inner_last.as_deref()) {
        (Some("Invocation"), _) => match form {
            Form::Around => Param::Invocation,
            _ => return Err(wrong("the invocation by reference, `&Invocation`")),
        },
        (_, Some("Invocation")) => match form {
            Form::Around => {
                return Err(wrong(
                    "the invocation by value, `Invocation` (it is handed on to `next.run`)",
                ));
            }
            _ => Param::InvocationRef,
        },
        (Some("Next"), _) => match form {
            Form::Around => Param::Next,
            _ => {
                return Err(wrong(
                    "no `Next` (only `#[around]` advice decides whether to proceed)",
                ));
            }
        },
        (_, Some("StompError")) if matches!(form, Form::AfterError | Form::Exception) => {
            Param::Error(referenced(ty).cloned().unwrap_or_else(|| ty.clone()))
        }
        _ if form == Form::Exception && referenced(ty).is_some() => {
            Param::Error(referenced(ty).cloned().unwrap_or_else(|| ty.clone()))
        }
        _ if form == Form::AfterReturning && is_option_of_reply_ref(ty) => Param::Reply,
        _ => Param::Extract {
            ty: ty.clone(),
            name: arg_name(pat).unwrap_or_else(|| format!("arg{index}")),
        },
    })
}

/// A checked advice function, ready to generate.
pub(crate) struct Advice {
    form: Form,
    args: AdviceArgs,
    item: ItemFn,
    params: Vec<Param>,
    /// For exception handlers: where the reply goes.
    target: TokenStream,
    consumed: Vec<syn::Path>,
}

impl Advice {
    pub(crate) fn parse(form: Form, args: TokenStream, mut item: ItemFn) -> syn::Result<Self> {
        let args =
            (|input: syn::parse::ParseStream| AdviceArgs::parse(input, form == Form::Exception))
                .parse2(args)?;
        let mut errors: Option<syn::Error> = None;
        let mut push_err = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        let sig = &item.sig;
        if sig.asyncness.is_none() {
            push_err(syn::Error::new(
                sig.fn_token.span(),
                format!(
                    "`#[{}]` functions must be `async fn`: `{}`",
                    form.name(),
                    form.signature()
                ),
            ));
        }
        if !sig.generics.params.is_empty() {
            push_err(syn::Error::new(
                sig.generics.span(),
                "advice cannot be generic: the registry needs one concrete function",
            ));
        }
        let mut params = Vec::new();
        for (index, input) in sig.inputs.iter().enumerate() {
            match input {
                FnArg::Receiver(r) => push_err(syn::Error::new(
                    r.span(),
                    "advice are free functions: remove `self` (share state with `State<T>` instead)",
                )),
                FnArg::Typed(pt) => match classify(form, index, &pt.pat, &pt.ty) {
                    Ok(p) => params.push(p),
                    Err(e) => push_err(e),
                },
            }
        }
        let count = |f: fn(&Param) -> bool| params.iter().filter(|p| f(p)).count();
        let ident_span = sig.ident.span();
        let need = |what: &str| {
            syn::Error::new(
                ident_span,
                format!("`#[{}]` needs {what}: `{}`", form.name(), form.signature()),
            )
        };
        match form {
            Form::Around => {
                if count(|p| matches!(p, Param::Invocation)) != 1 {
                    push_err(need("exactly one `Invocation` parameter"));
                }
                if count(|p| matches!(p, Param::Next)) != 1 {
                    push_err(need(
                        "exactly one `next: Next` parameter (call `next.run(inv).await` to proceed)",
                    ));
                }
            }
            Form::AfterError | Form::Exception if count(|p| matches!(p, Param::Error(_))) != 1 => {
                push_err(need("exactly one error parameter"));
            }
            _ => {}
        }
        if count(|p| matches!(p, Param::InvocationRef)) > 1 {
            push_err(need("at most one `&Invocation` parameter"));
        }
        if matches!(form, Form::AfterReturning | Form::AfterError)
            && let ReturnType::Type(_, ty) = &sig.output
            && !matches!(&**ty, Type::Tuple(t) if t.elems.is_empty())
        {
            push_err(syn::Error::new(
                ty.span(),
                format!(
                    "`#[{}]` observes and cannot change the outcome: return nothing",
                    form.name()
                ),
            ));
        }

        // Exception handlers route their reply like handlers do.
        let mut target = quote!(::stomp_runtime::__private::ExceptionTarget::ErrorDestination);
        let mut consumed = Vec::new();
        if form == Form::Exception {
            let mut kept = Vec::new();
            let mut chosen: Option<Span> = None;
            if args.error_frame {
                target = quote!(::stomp_runtime::__private::ExceptionTarget::ErrorFrame);
                chosen = Some(Span::call_site());
            }
            for attr in std::mem::take(&mut item.attrs) {
                let name = attr_ident(&attr);
                let (is_to, is_user) = (
                    name.as_deref() == Some("send_to"),
                    name.as_deref() == Some("send_to_user"),
                );
                if !is_to && !is_user {
                    kept.push(attr);
                    continue;
                }
                consumed.push(attr.path().clone());
                if chosen.is_some() {
                    push_err(syn::Error::new(
                        attr.meta.span(),
                        "an exception handler's reply goes to one place: one of `#[send_to]`, `#[send_to_user]` or `error_frame`",
                    ));
                    continue;
                }
                chosen = Some(attr.span());
                if is_to {
                    match attr.parse_args::<Destinations>() {
                        Ok(d) => {
                            let d = d.0;
                            target = quote!(::stomp_runtime::__private::ExceptionTarget::SendTo(&[#(#d),*]));
                        }
                        Err(e) => push_err(e),
                    }
                } else {
                    match attr.parse_args::<SendToUser>() {
                        Ok(u) => {
                            let (d, b) = (&u.destination, u.broadcast);
                            target = quote!(::stomp_runtime::__private::ExceptionTarget::SendToUser(
                                ::stomp_runtime::__private::UserTarget { destination: #d, broadcast: #b }
                            ));
                        }
                        Err(e) => push_err(e),
                    }
                }
            }
            item.attrs = kept;
        }
        if let Some(e) = errors {
            return Err(e);
        }
        Ok(Self {
            form,
            args,
            item,
            params,
            target,
            consumed,
        })
    }

    /// `let __eN = <extract>;` for each extractor; `on_err` is what a failure does.
    fn extractions(&self, inv: &TokenStream, on_err: &TokenStream) -> Vec<TokenStream> {
        self.params
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p {
                Param::Extract { ty, name } => {
                    let b = format_ident!("__e{i}");
                    Some(quote_spanned! {ty.span()=>
                        let #b = match #inv.extract::<#ty>(#name) {
                            ::core::result::Result::Ok(v) => v,
                            ::core::result::Result::Err(__err) => #on_err,
                        };
                    })
                }
                _ => None,
            })
            .collect()
    }

    /// The call's arguments, in the declared order.
    fn call_args(
        &self,
        inv: &TokenStream,
        err: &TokenStream,
        reply: &TokenStream,
    ) -> Vec<TokenStream> {
        self.params
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                Param::Invocation | Param::InvocationRef => inv.clone(),
                Param::Next => quote!(__next),
                Param::Error(_) => err.clone(),
                Param::Reply => reply.clone(),
                Param::Extract { .. } => format_ident!("__e{i}").into_token_stream(),
            })
            .collect()
    }
}

impl ToTokens for Advice {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let p = quote!(::stomp_runtime::__private);
        let item = &self.item;
        let vis = &item.vis;
        let ident = &item.sig.ident;
        let ident_str = ident.to_string();
        let line = quote_spanned!(ident.span()=> ::core::line!());
        let pointcut = self.args.pointcut_tokens();
        let order = self.args.order;
        let form = self.form.name();
        let skip = quote! {{
            #p::advice_skipped(#ident_str, &__err);
            return __r;
        }};
        let (konst, def_ty, def, shim) = match self.form {
            Form::Around => {
                let ex = self.extractions(
                    &quote!(__inv),
                    &quote!(return ::core::result::Result::Err(__err)),
                );
                let args = self.call_args(&quote!(__inv), &quote!(), &quote!());
                (
                    quote!(ADVICE),
                    quote!(AdviceDef),
                    quote!(kind: #p::AdviceKind::Around(#ident::__stomp_advice)),
                    quote! {
                        fn __stomp_advice(__inv: #p::Invocation, __next: #p::Next) -> #p::HandlerFuture {
                            #p::Box::pin(async move {
                                #(#ex)*
                                #p::AroundOutcome::into_result(#ident(#(#args),*).await)
                            })
                        }
                    },
                )
            }
            Form::Before => {
                let ex = self.extractions(
                    &quote!(__inv),
                    &quote!(return ::core::result::Result::Err(__err)),
                );
                let args = self.call_args(&quote!(&__inv), &quote!(), &quote!());
                (
                    quote!(ADVICE),
                    quote!(AdviceDef),
                    quote!(kind: #p::AdviceKind::Around(#ident::__stomp_advice)),
                    quote! {
                        fn __stomp_advice(__inv: #p::Invocation, __next: #p::Next) -> #p::HandlerFuture {
                            #p::Box::pin(async move {
                                {
                                    #(#ex)*
                                    #p::BeforeOutcome::into_result(#ident(#(#args),*).await)?;
                                }
                                __next.run(__inv).await
                            })
                        }
                    },
                )
            }
            Form::AfterReturning => {
                let ex = self.extractions(&quote!(__kept), &skip);
                let args = self.call_args(&quote!(&__kept), &quote!(), &quote!(__reply.as_ref()));
                (
                    quote!(ADVICE),
                    quote!(AdviceDef),
                    quote!(kind: #p::AdviceKind::Around(#ident::__stomp_advice)),
                    quote! {
                        fn __stomp_advice(__inv: #p::Invocation, __next: #p::Next) -> #p::HandlerFuture {
                            #p::Box::pin(async move {
                                let __kept = ::core::clone::Clone::clone(&__inv);
                                let __r = __next.run(__inv).await;
                                if let ::core::result::Result::Ok(__reply) = &__r {
                                    #(#ex)*
                                    #ident(#(#args),*).await;
                                }
                                __r
                            })
                        }
                    },
                )
            }
            Form::AfterError => {
                let skip = quote! {{
                    #p::advice_skipped(#ident_str, &__err);
                    return;
                }};
                let ex = self.extractions(&quote!(__inv), &skip);
                let args = self.call_args(&quote!(__inv), &quote!(__error), &quote!());
                (
                    quote!(ADVICE),
                    quote!(AdviceDef),
                    quote!(kind: #p::AdviceKind::AfterError(#ident::__stomp_after_error)),
                    quote! {
                        fn __stomp_after_error<'a>(
                            __inv: &'a #p::Invocation,
                            __error: &'a #p::StompError,
                        ) -> #p::BoxFuture<'a, ()> {
                            #p::Box::pin(async move {
                                #(#ex)*
                                #ident(#(#args),*).await;
                            })
                        }
                    },
                )
            }
            Form::Exception => {
                let ex = self.extractions(
                    &quote!(__inv),
                    &quote!(return ::core::result::Result::Err(__err)),
                );
                let args = self.call_args(&quote!(__inv), &quote!(__error), &quote!());
                let err_ty = self
                    .params
                    .iter()
                    .find_map(|p| match p {
                        Param::Error(t) => Some(t.clone()),
                        _ => None,
                    })
                    .expect("checked in parse: exactly one error parameter");
                let ret_ty: Type = match &item.sig.output {
                    ReturnType::Default => syn::parse_quote!(()),
                    ReturnType::Type(_, t) => (**t).clone(),
                };
                let converted = convert(&ret_ty, quote!(__ret));
                let reply = quote_spanned!(ret_ty.span()=> #p::reply(#converted));
                let target = &self.target;
                let pick =
                    quote_spanned!(err_ty.span()=> <#err_ty as #p::ErrorParam>::pick(__err)?);
                (
                    quote!(EXCEPTION_HANDLER),
                    quote!(ExceptionHandlerDef),
                    quote!(target: #target, handle: #ident::__stomp_exception),
                    quote! {
                        fn __stomp_exception<'a>(
                            __inv: &'a #p::Invocation,
                            __err: &'a #p::StompError,
                        ) -> #p::Option<#p::BoxFuture<'a, #p::HandlerResult>> {
                            let __error = #pick;
                            #p::Option::Some(#p::Box::pin(async move {
                                #(#ex)*
                                let __ret = #ident(#(#args),*).await;
                                #reply
                            }))
                        }
                    },
                )
            }
        };
        let form_field = if self.form == Form::Exception {
            quote!()
        } else {
            quote!(form: #form,)
        };
        let consumed = uses(&self.consumed);
        tokens.extend(quote! {
            #item
            #consumed

            #[doc(hidden)]
            #[allow(non_camel_case_types, missing_docs, dead_code)]
            #vis struct #ident {}

            #[allow(non_snake_case)]
            impl #ident {
                /// The registration of this function, for the server builder.
                #[doc(hidden)]
                #vis const #konst: &'static #p::#def_ty = &#p::#def_ty {
                    #def,
                    #form_field
                    pointcut: #pointcut,
                    order: #order,
                    name: ::core::concat!(::core::module_path!(), "::", #ident_str),
                    file: ::core::file!(),
                    line: #line,
                };

                #shim
            }

            #p::inventory::submit! { *#ident::#konst }
        });
    }
}

/// `#[session_event]`: `async fn(event: SessionEvent[, template: MessagingTemplate])`.
pub(crate) fn session_event(args: TokenStream, item: ItemFn) -> syn::Result<TokenStream> {
    if !args.is_empty() {
        return Err(syn::Error::new(
            args.span(),
            "`#[session_event]` takes no arguments",
        ));
    }
    let sig = &item.sig;
    let expected = "expected `async fn(event: SessionEvent, template: MessagingTemplate)` (the template is optional)";
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(
            sig.fn_token.span(),
            format!("`#[session_event]` functions must be `async fn`: {expected}"),
        ));
    }
    let mut args = Vec::new();
    let mut has_event = false;
    for input in &sig.inputs {
        let FnArg::Typed(pt) = input else {
            return Err(syn::Error::new(input.span(), expected));
        };
        match last_segment(&pt.ty).as_deref() {
            Some("SessionEvent") if !has_event => {
                has_event = true;
                args.push(quote!(__event));
            }
            Some("MessagingTemplate") => {
                args.push(quote!(::core::clone::Clone::clone(&__template)))
            }
            _ => return Err(syn::Error::new(pt.ty.span(), expected)),
        }
    }
    if !has_event {
        return Err(syn::Error::new(sig.ident.span(), expected));
    }
    let p = quote!(::stomp_runtime::__private);
    let vis = &item.vis;
    let ident = &sig.ident;
    let ident_str = ident.to_string();
    let line = quote_spanned!(ident.span()=> ::core::line!());
    Ok(quote! {
        #item

        #[doc(hidden)]
        #[allow(non_camel_case_types, missing_docs, dead_code)]
        #vis struct #ident {}

        #[allow(non_snake_case)]
        impl #ident {
            /// The registration of this listener.
            #[doc(hidden)]
            #vis const LISTENER: &'static #p::SessionListenerDef = &#p::SessionListenerDef {
                name: ::core::concat!(::core::module_path!(), "::", #ident_str),
                file: ::core::file!(),
                line: #line,
                call: #ident::__stomp_listener,
            };

            fn __stomp_listener(
                __event: #p::SessionEvent,
                __template: #p::MessagingTemplate,
            ) -> #p::Pin<#p::Box<dyn ::core::future::Future<Output = ()> + ::core::marker::Send>> {
                #p::Box::pin(async move {
                    #ident(#(#args),*).await;
                    ::core::mem::drop(__template);
                })
            }
        }

        #p::inventory::submit! { *#ident::LISTENER }
    })
}
