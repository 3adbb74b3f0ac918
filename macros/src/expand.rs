//! Code generation: a checked [`TracedArgs`] model plus the function become
//! the instrumented function. Generated code names everything by absolute
//! path and calls only `::observra::__private`.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{AttrStyle, FnArg, Ident, ItemFn, LitStr, Pat, ReturnType, Type};

use crate::args::{AttrValue, Errors, TracedArgs};

/// `tracing` callsites hold at most 32 fields.
const MAX_FIELDS: usize = 32;

/// Entry point of `#[traced]`.
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = TracedArgs::parse(args, &mut errors);
    let func = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let span = item.clone().into_iter().next().map(|t| t.span()).unwrap_or_else(Span::call_site);
            errors.error(span, "#[traced] can only be applied to a function or method with a body");
            return with_errors(errors, item);
        }
    };
    check_function(&func, &args, &mut errors);
    match errors.finish() {
        Ok(()) => expand(&args, func),
        Err(e) => {
            let err = e.to_compile_error();
            quote!(#err #func)
        }
    }
}

fn with_errors(errors: Errors, item: TokenStream) -> TokenStream {
    match errors.finish() {
        Ok(()) => item,
        Err(e) => {
            let err = e.to_compile_error();
            quote!(#err #item)
        }
    }
}

/// The names of the function's parameters that can be recorded (`self` included).
fn param_names(func: &ItemFn) -> Vec<Ident> {
    func.sig
        .inputs
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Receiver(r) => Some(Ident::new("self", r.self_token.span)),
            FnArg::Typed(pt) => match &*pt.pat {
                Pat::Ident(pi) => Some(pi.ident.clone()),
                _ => None,
            },
        })
        .collect()
}

fn check_function(func: &ItemFn, args: &TracedArgs, errors: &mut Errors) {
    if let Some(c) = &func.sig.constness {
        errors.error(c.span, "#[traced] cannot instrument a `const fn`: spans are recorded at run time");
    }
    let params = param_names(func);
    let listing = if params.is_empty() {
        "the function has no named parameters".to_string()
    } else {
        format!("parameters are: {}", params.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "))
    };
    let check = |ident: &Ident, what: &str, errors: &mut Errors| {
        if !params.iter().any(|p| p == ident) {
            errors.error(ident.span(), format!("{what}: no parameter named `{ident}`; {listing}"));
        }
    };
    for s in &args.skip {
        check(s, "skip", errors);
    }
    for f in args.fields.iter().flatten() {
        check(f, "fields", errors);
    }
    let recorded = recorded_params(func, args).len();
    let total = recorded + args.attrs.iter().filter(|a| matches!(a.value, AttrValue::Literal(_))).count() + 1;
    if total > MAX_FIELDS {
        errors.error(
            Span::call_site(),
            format!("#[traced] records at most {MAX_FIELDS} fields per span; use `skip(...)` or fewer literal attrs"),
        );
    }
}

/// Parameters recorded with `Debug`: `fields(...)`, or with `args` every
/// named parameter except `self` and the skipped ones. None by default.
fn recorded_params(func: &ItemFn, args: &TracedArgs) -> Vec<Ident> {
    if let Some(fields) = &args.fields {
        return fields.clone();
    }
    if args.args.is_none() {
        return Vec::new();
    }
    param_names(func).into_iter().filter(|p| p != "self" && !args.skip.iter().any(|s| s == p)).collect()
}

fn contains_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut f = Finder(false);
    syn::visit::Visit::visit_type(&mut f, ty);
    f.0
}

/// Whether the declared return type is a `Result` (`Result`, `io::Result`, ...).
fn returns_result(output: &ReturnType) -> bool {
    match output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

fn expand(args: &TracedArgs, func: ItemFn) -> TokenStream {
    let ItemFn { attrs, vis, sig, block } = func.clone();
    let (inner_attrs, outer_attrs): (Vec<_>, Vec<_>) =
        attrs.into_iter().partition(|a| matches!(a.style, AttrStyle::Inner(_)));
    let name = args.name.clone().unwrap_or_else(|| LitStr::new(&sig.ident.unraw_string(), sig.ident.span()));

    // Static fields of the span's callsite.
    let mut fields: Vec<TokenStream> = Vec::new();
    if let Some((kind, span)) = &args.kind {
        if kind != "internal" {
            fields.push(quote_spanned!(*span=> "otel.kind" = #kind));
        }
    }
    let mut dynamic: Vec<TokenStream> = Vec::new();
    for attr in &args.attrs {
        let key = &attr.key;
        match &attr.value {
            AttrValue::Literal(lit) => fields.push(quote!(#key = #lit)),
            AttrValue::Expr(expr) => {
                let value = quote_spanned!(expr.span()=> &(#expr));
                dynamic.push(quote! {
                    ::observra::__private::set_attribute(&__observra_span, #key, #value);
                });
            }
        }
    }
    for p in recorded_params(&func, args) {
        let key = LitStr::new(&p.unraw_string(), p.span());
        fields.push(quote_spanned!(p.span()=> #key = ::observra::__private::debug_arg(&#p)));
    }

    let fake_return = match &sig.output {
        ReturnType::Type(_, ty) if !contains_impl_trait(ty) => quote! {
            #[allow(
                unknown_lints, unreachable_code, clippy::diverging_sub_expression, clippy::let_unit_value,
                clippy::unreachable, clippy::empty_loop, clippy::needless_return
            )]
            if false {
                let __observra_fake_return: #ty = loop {};
                return __observra_fake_return;
            }
        },
        _ => TokenStream::new(),
    };
    let stmts = &block.stmts;
    let body = quote!({ #fake_return #(#stmts)* });

    // The span is only built when `tracing` could record it at all; with no
    // subscriber that check is one relaxed atomic load, and the body runs as
    // if uninstrumented.
    let make_span = quote! {
        let __observra_span = if ::observra::__private::enabled() {
            let __observra_span = ::observra::__private::tracing::span!(
                target: ::core::module_path!(),
                ::observra::__private::tracing::Level::INFO,
                #name
                #(, #fields)*
            );
            if !__observra_span.is_disabled() {
                #(#dynamic)*
            }
            ::core::option::Option::Some(__observra_span)
        } else {
            ::core::option::Option::None
        };
    };

    let is_result = returns_result(&sig.output);
    let record = |span: TokenStream| {
        if !is_result {
            return TokenStream::new();
        }
        quote! {
            if !#span.is_disabled() {
                if let ::core::result::Result::Err(__observra_err) = &__observra_ret {
                    #[allow(unused_imports)]
                    use ::observra::__private::{ViaDebug as _, ViaDisplay as _, ViaErrorType as _, ViaNoMessage as _, ViaTypeName as _};
                    let __observra_e = ::observra::__private::ErrRef(__observra_err);
                    ::observra::__private::record_error(
                        #span,
                        (&&__observra_e).__observra_error_type(),
                        (&&&__observra_e).__observra_error_message(),
                        __observra_e.type_name(),
                    );
                }
            }
        }
    };

    let new_body = if sig.asyncness.is_some() {
        let rec = record(quote!(&__observra_span));
        quote! {
            #make_span
            let __observra_body = async move #body;
            match __observra_span {
                ::core::option::Option::None => __observra_body.await,
                ::core::option::Option::Some(__observra_span) => {
                    let (__observra_ret, __observra_span) =
                        ::observra::__private::instrument(__observra_span, __observra_body).await;
                    #rec
                    __observra_ret
                }
            }
        }
    } else {
        let rec = record(quote!(__observra_guard.span()));
        quote! {
            #make_span
            let __observra_body = ::observra::__private::once(move || #body);
            match __observra_span {
                ::core::option::Option::None => __observra_body(),
                ::core::option::Option::Some(__observra_span) => {
                    let __observra_guard = ::observra::__private::SyncSpan::enter(__observra_span);
                    let __observra_ret = __observra_body();
                    #rec
                    __observra_ret
                }
            }
        }
    };

    let mut out = TokenStream::new();
    for a in &outer_attrs {
        a.to_tokens(&mut out);
    }
    quote! {
        #vis #sig {
            #(#inner_attrs)*
            #new_body
        }
    }
    .to_tokens(&mut out);
    out
}

trait UnrawString {
    fn unraw_string(&self) -> String;
}

impl UnrawString for Ident {
    fn unraw_string(&self) -> String {
        syn::ext::IdentExt::unraw(self).to_string()
    }
}
