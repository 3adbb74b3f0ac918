//! Code generation shared by every macro: a checked [`SpanPlan`] (what the
//! span is called, its static fields, what to record when it starts and
//! when the function returns) plus the function become the instrumented
//! function. Generated code names everything by absolute path and calls
//! only `::observra::__private` (and the public `::observra::LlmStream`).

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{AttrStyle, FnArg, Ident, ItemFn, LitStr, Pat, ReturnType, Type};

use crate::args::{AttrValue, Common, Errors, RawArg, allowed, parse_raw};

/// The span kinds `#[traced(kind = ...)]` accepts.
const KINDS: &[&str] = &["client", "server", "internal", "producer", "consumer"];

/// `tracing` callsites hold at most 32 fields.
const MAX_FIELDS: usize = 32;

/// What one macro wants recorded.
pub struct SpanPlan {
    /// The callsite's (static) span name.
    pub name: LitStr,
    /// Static `tracing` fields: `"key" = literal`.
    pub fields: Vec<TokenStream>,
    /// The same static fields as (key, literal), for the call site's static.
    pub statics: Vec<(TokenStream, TokenStream)>,
    /// Statements run once the span exists (`__observra_span: Span`), before the body.
    pub dynamic: Vec<TokenStream>,
    /// Statements run on the returned value (the `Ok` value of a `Result`),
    /// with `__observra_value: &T` and `__observra_span_ref: &Span` in scope.
    pub on_value: Option<TokenStream>,
    /// Wrap the returned stream (`#[llm_call(stream)]`).
    pub stream: bool,
    /// Statements run first once a `tracing` span exists (not on the frame path).
    pub tracing_only: Vec<TokenStream>,
    /// How the function records on the frame path.
    pub frame: FramePlan,
}

/// The frame path of one function: tried before a `tracing` span, unless
/// the function needs a `tracing` span of its own.
#[derive(Default)]
pub struct FramePlan {
    /// The function needs its own `tracing` span (`response = manual`, `stream`).
    pub off: bool,
    /// The span name, when it is not the `tracing` callsite's.
    pub name: Option<String>,
    /// A model call's literal request model.
    pub model: Option<LitStr>,
    /// A model call's request model as an expression (a `&str`); the span
    /// name is then `{name} {model}`.
    pub model_expr: Option<TokenStream>,
}

impl SpanPlan {
    pub fn new(name: LitStr) -> Self {
        SpanPlan {
            name,
            fields: Vec::new(),
            dynamic: Vec::new(),
            on_value: None,
            stream: false,
            tracing_only: Vec::new(),
            frame: FramePlan::default(),
            statics: Vec::new(),
        }
    }
    /// Adds a static field.
    pub fn field(&mut self, key: impl ToTokens, value: impl ToTokens) {
        self.fields.push(quote!(#key = #value));
        self.statics.push((key.to_token_stream(), value.to_token_stream()));
    }
    /// Records `expr` as a typed attribute (via `observra::AttributeValue`).
    pub fn attribute(&mut self, key: impl ToTokens, expr: &syn::Expr) {
        let value = quote_spanned!(expr.span()=> &(#expr));
        self.dynamic.push(quote! {
            ::observra::__private::set_attribute(&__observra_span, #key, #value);
        });
    }
}

/// Runs one macro: parse the item and the arguments, let `build` check them
/// into a plan, and expand. Every error is reported, spanned, in one go, and
/// the function is emitted unchanged beside them so no other errors cascade.
pub fn run(
    macro_name: &str,
    own_args: &[&'static str],
    args: TokenStream,
    item: TokenStream,
    build: impl FnOnce(&[RawArg], &ItemFn, &mut Errors) -> Option<SpanPlan>,
) -> TokenStream {
    let mut errors = Errors::default();
    let func = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let span = item.clone().into_iter().next().map(|t| t.span()).unwrap_or_else(Span::call_site);
            errors.error(span, format!("#[{macro_name}] can only be applied to a function or method with a body"));
            let err = errors.finish().err().map(|e| e.to_compile_error());
            return quote!(#err #item);
        }
    };
    let raw = parse_raw(args, &allowed(own_args), &mut errors);
    let mut common = Common::default();
    let own: Vec<RawArg> = raw.into_iter().filter(|a| !common.take(a, &mut errors)).collect();
    common.check(&mut errors);
    let plan = build(&own, &func, &mut errors);
    check_function(macro_name, &func, &common, &mut errors);
    match (errors.finish(), plan) {
        (Ok(()), Some(plan)) => expand(plan, &common, func),
        (Err(e), _) => {
            let err = e.to_compile_error();
            quote!(#err #func)
        }
        (Ok(()), None) => quote!(#func),
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

fn check_function(macro_name: &str, func: &ItemFn, common: &Common, errors: &mut Errors) {
    if let Some(c) = &func.sig.constness {
        errors.error(c.span, format!("#[{macro_name}] cannot instrument a `const fn`: spans are recorded at run time"));
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
    for s in &common.skip {
        check(s, "skip", errors);
    }
    for f in common.fields.iter().flatten() {
        check(f, "fields", errors);
    }
    let literal_attrs = common.attrs.iter().filter(|a| matches!(a.value, AttrValue::Literal(_))).count();
    if recorded_params(func, common).len() + literal_attrs + 8 > MAX_FIELDS {
        errors.error(
            Span::call_site(),
            format!("a span records at most {MAX_FIELDS} fields; use `skip(...)` or fewer literal attrs"),
        );
    }
}

/// Parameters recorded with `Debug`: `fields(...)`, or with `args` every
/// named parameter except `self` and the skipped ones. None by default.
fn recorded_params(func: &ItemFn, common: &Common) -> Vec<Ident> {
    if let Some(fields) = &common.fields {
        return fields.clone();
    }
    if common.args.is_none() {
        return Vec::new();
    }
    param_names(func).into_iter().filter(|p| p != "self" && !common.skip.iter().any(|s| s == p)).collect()
}

pub fn contains_impl_trait(ty: &Type) -> bool {
    impl_trait_bounds(ty).next().is_some()
}

/// The trait bounds of every `impl Trait` in `ty`, by last path segment.
pub fn impl_trait_bounds(ty: &Type) -> impl Iterator<Item = String> {
    struct Finder(Vec<String>);
    impl<'ast> syn::visit::Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, t: &'ast syn::TypeImplTrait) {
            for b in &t.bounds {
                if let syn::TypeParamBound::Trait(tb) = b {
                    if let Some(seg) = tb.path.segments.last() {
                        self.0.push(seg.ident.to_string());
                    }
                }
            }
            syn::visit::visit_type_impl_trait(self, t);
        }
    }
    let mut f = Finder(Vec::new());
    syn::visit::Visit::visit_type(&mut f, ty);
    f.0.into_iter()
}

/// Whether the declared return type is a `Result` (`Result`, `io::Result`, ...).
pub fn returns_result(output: &ReturnType) -> bool {
    match output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

fn expand(mut plan: SpanPlan, common: &Common, func: ItemFn) -> TokenStream {
    let ItemFn { attrs, vis, sig, block } = func.clone();
    let (inner_attrs, outer_attrs): (Vec<_>, Vec<_>) =
        attrs.into_iter().partition(|a| matches!(a.style, AttrStyle::Inner(_)));
    for attr in &common.attrs {
        match &attr.value {
            AttrValue::Literal(lit) => plan.field(&attr.key, lit),
            AttrValue::Expr(expr) => plan.attribute(&attr.key, expr),
        }
    }
    let mut frame_only = Vec::new();
    for p in recorded_params(&func, common) {
        let key = LitStr::new(&syn::ext::IdentExt::unraw(&p).to_string(), p.span());
        plan.fields.push(quote_spanned!(p.span()=> #key = ::observra::__private::debug_arg(&#p)));
        frame_only.push(quote_spanned!(p.span()=> ::observra::__private::record_debug(&__observra_span, #key, &#p);));
    }
    let fast = frame_site(&plan);
    let (name, fields, dynamic, tracing_only) = (&plan.name, &plan.fields, &plan.dynamic, &plan.tracing_only);

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
    let (fast_decl, not_fast) = match &fast {
        Some(fast) => (
            quote! {
                let __observra_fast = if ::observra::__private::enabled() { #fast } else { ::core::option::Option::None };
                // Before the body takes the parameters, as on the `tracing` path.
                if let ::core::option::Option::Some(__observra_span) = __observra_fast.as_ref() {
                    #(#frame_only)*
                    #(#dynamic)*
                }
            },
            quote!(__observra_fast.is_none() &&),
        ),
        None => (TokenStream::new(), TokenStream::new()),
    };
    let make_span = quote! {
        #fast_decl
        let __observra_span = if #not_fast ::observra::__private::enabled() {
            let __observra_span = ::observra::__private::tracing::span!(
                target: ::core::module_path!(),
                ::observra::__private::tracing::Level::INFO,
                #name
                #(, #fields)*
            );
            if !__observra_span.is_disabled() {
                #(#tracing_only)*
                #(#dynamic)*
            }
            ::core::option::Option::Some(__observra_span)
        } else {
            ::core::option::Option::None
        };
    };

    let is_result = returns_result(&sig.output);
    // Statements on the returned value, with `__observra_span_ref` bound.
    let on_return = {
        let on_err = if is_result {
            quote! {
                if let ::core::result::Result::Err(__observra_err) = &__observra_ret {
                    #[allow(unused_imports)]
                    use ::observra::__private::{ViaDebug as _, ViaDisplay as _, ViaErrorType as _, ViaNoMessage as _, ViaTypeName as _};
                    let __observra_e = ::observra::__private::ErrRef(__observra_err);
                    ::observra::__private::record_error(
                        __observra_span_ref,
                        (&&__observra_e).__observra_error_type(),
                        (&&&__observra_e).__observra_error_message(),
                        __observra_e.type_name(),
                    );
                }
            }
        } else {
            TokenStream::new()
        };
        let on_ok = match (&plan.on_value, is_result) {
            (Some(stmts), true) => quote! {
                if let ::core::result::Result::Ok(__observra_value) = &__observra_ret {
                    #stmts
                }
            },
            (Some(stmts), false) => quote! {
                {
                    let __observra_value = &__observra_ret;
                    #stmts
                }
            },
            (None, _) => TokenStream::new(),
        };
        quote!(if !__observra_span_ref.is_disabled() { #on_err #on_ok })
    };
    let (wrap, passthrough) = match (plan.stream, is_result) {
        (false, _) => (TokenStream::new(), TokenStream::new()),
        (true, false) => (
            quote!(let __observra_ret = ::observra::LlmStream::new(__observra_span_ref.clone(), __observra_ret);),
            quote!(let __observra_ret = ::observra::LlmStream::passthrough(__observra_ret);),
        ),
        (true, true) => (
            quote!(let __observra_ret = __observra_ret.map(|s| ::observra::LlmStream::new(__observra_span_ref.clone(), s));),
            quote!(let __observra_ret = __observra_ret.map(::observra::LlmStream::passthrough);),
        ),
    };
    // Only the way the body is defined and called differs between async and
    // sync functions; the rest of the template is shared.
    let (define_body, plain_call, instrumented_call, fast_call) = if sig.asyncness.is_some() {
        (
            quote!(let __observra_body = async move #body;),
            quote!(__observra_body.await),
            quote! {
                let (__observra_ret, __observra_span) =
                    ::observra::__private::instrument(__observra_span, __observra_body).await;
                let __observra_span_ref = &__observra_span;
            },
            quote! {
                let (__observra_ret, __observra_span) =
                    ::observra::__private::frame_instrument(__observra_span, __observra_body).await;
                let __observra_span_ref = &__observra_span;
            },
        )
    } else {
        (
            quote!(let __observra_body = ::observra::__private::once(move || #body);),
            quote!(__observra_body()),
            quote! {
                let __observra_guard = ::observra::__private::SyncSpan::enter(__observra_span);
                let __observra_ret = __observra_body();
                let __observra_span_ref = __observra_guard.span();
            },
            quote! {
                let __observra_guard = ::observra::__private::FrameSync::enter(&__observra_span);
                let __observra_ret = __observra_body();
                let __observra_span_ref = __observra_guard.span();
            },
        )
    };
    let needs_return_handling = is_result || plan.on_value.is_some() || plan.stream;
    let on_return = if needs_return_handling { on_return } else { TokenStream::new() };
    let tracing_arms = quote! {
        match __observra_span {
            ::core::option::Option::None => {
                let __observra_ret = #plain_call;
                #passthrough
                __observra_ret
            }
            ::core::option::Option::Some(__observra_span) => {
                #instrumented_call
                let _ = __observra_span_ref;
                #on_return
                #wrap
                __observra_ret
            }
        }
    };
    // The frame path (never for `stream`, so no wrap).
    let arms = match &fast {
        Some(_) => quote! {
            if let ::core::option::Option::Some(__observra_span) = __observra_fast {
                #fast_call
                let _ = __observra_span_ref;
                #on_return
                __observra_ret
            } else {
                #tracing_arms
            }
        },
        None => tracing_arms,
    };
    let new_body = quote! {
        #make_span
        #define_body
        #arms
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

/// The value of a string-literal token stream.
fn literal_value(tokens: &TokenStream) -> Option<String> {
    syn::parse2::<LitStr>(tokens.clone()).ok().map(|l| l.value())
}

/// The frame path's call site: a `static` with everything known at compile
/// time, and the expression that starts a call of it (an
/// `Option<::observra::__private::FrameSpan>`). `None` when the function
/// needs a `tracing` span of its own.
fn frame_site(plan: &SpanPlan) -> Option<TokenStream> {
    if plan.frame.off {
        return None;
    }
    let mut kind = quote!(Internal);
    let mut operation = quote!(::core::option::Option::None);
    let mut function = quote!(::core::option::Option::None);
    let mut attrs = Vec::new();
    for (key, value) in &plan.statics {
        match literal_value(key).as_deref() {
            Some(crate::semconv::OTEL_KIND) => {
                kind = match literal_value(value).as_deref() {
                    Some("client") => quote!(Client),
                    Some("server") => quote!(Server),
                    Some("producer") => quote!(Producer),
                    Some("consumer") => quote!(Consumer),
                    _ => quote!(Internal),
                }
            }
            Some(crate::semconv::OBSERVRA_FUNCTION_METRICS) => {
                let name = &plan.name;
                function = quote!(::core::option::Option::Some((#name, ::core::module_path!())));
            }
            Some(crate::semconv::GEN_AI_OPERATION_NAME) => operation = quote!(::core::option::Option::Some(#value)),
            _ => attrs.push(quote!((#key, &#value as &'static dyn ::observra::__private::StaticAttr))),
        }
    }
    let name = match &plan.frame.name {
        Some(n) => quote!(#n),
        None => plan.name.to_token_stream(),
    };
    let model = match &plan.frame.model {
        Some(m) => quote!(::core::option::Option::Some(#m)),
        None => quote!(::core::option::Option::None),
    };
    let name_with_model = plan.frame.model_expr.is_some();
    let begin = match &plan.frame.model_expr {
        Some(m) => quote!(__observra_start.start_with_model(#m)),
        None => quote!(__observra_start.start()),
    };
    Some(quote! {{
        static __OBSERVRA_SITE: ::observra::__private::Site = ::observra::__private::Site {
            name: #name,
            kind: ::observra::__private::SpanKind::#kind,
            operation: #operation,
            model: #model,
            name_with_model: #name_with_model,
            attrs: &[#(#attrs),*],
            function: #function,
        };
        match ::observra::__private::frame_begin(&__OBSERVRA_SITE) {
            ::core::option::Option::Some(__observra_start) => ::core::option::Option::Some(#begin),
            ::core::option::Option::None => ::core::option::Option::None,
        }
    }})
}

/// `#[traced]`: the model check of its own arguments.
pub fn traced(args: TokenStream, item: TokenStream) -> TokenStream {
    run("traced", &["name", "kind", "metrics"], args, item, |raw, func, errors| {
        let mut name = None;
        let mut kind = None;
        let mut metrics = false;
        for arg in raw {
            match arg.key.to_string().as_str() {
                "name" => name = arg.lit_str(errors),
                "kind" => kind = arg.choice(KINDS, errors),
                "metrics" => metrics = arg.flag(errors),
                _ => {}
            }
        }
        let name = name.unwrap_or_else(|| {
            LitStr::new(&syn::ext::IdentExt::unraw(&func.sig.ident).to_string(), func.sig.ident.span())
        });
        let mut plan = SpanPlan::new(name);
        if metrics {
            plan.field(crate::semconv::OBSERVRA_FUNCTION_METRICS, true);
        }
        if let Some((kind, span)) = kind {
            if kind != "internal" {
                plan.fields.push(quote_spanned!(span=> "otel.kind" = #kind));
                plan.statics.push((quote!("otel.kind"), quote!(#kind)));
            }
        }
        Some(plan)
    })
}
