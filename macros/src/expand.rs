//! Code generation shared by every macro: a checked [`SpanPlan`] (what the
//! span is called, its static fields, what to record when it starts and
//! when the function returns) plus the function become the instrumented
//! function. Generated code names everything by absolute path and calls
//! only `::observra::__private` (and the public `::observra::LlmStream`).

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{AttrStyle, Block, FnArg, Ident, ItemFn, Lit, LitStr, Pat, ReturnType, Signature, Type};

use crate::args::{AttrValue, Common, Errors, RawArg, allowed, parse_raw};

/// The span kinds `#[traced(kind = ...)]` accepts.
const KINDS: &[&str] = &["client", "server", "internal", "producer", "consumer"];

/// `tracing` callsites hold at most 32 fields.
const MAX_FIELDS: usize = 32;

/// A span's kind, as OpenTelemetry names it.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub enum SpanKind {
    /// The default: no `otel.kind` field.
    #[default]
    Internal,
    /// A call to a remote service (`#[llm_call]`, `#[retrieval]`, a remote agent).
    Client,
    /// The handling of a remote call.
    Server,
    /// The sending of a message.
    Producer,
    /// The handling of a message.
    Consumer,
}

impl SpanKind {
    /// The kind `name` spells (in any case, as the runtime's layer reads
    /// `otel.kind`), if any.
    pub fn parse(name: &str) -> Option<Self> {
        let all = [Self::Internal, Self::Client, Self::Server, Self::Producer, Self::Consumer];
        all.into_iter().find(|k| k.as_str().eq_ignore_ascii_case(name))
    }

    /// The value of `otel.kind`.
    fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::Client => "client",
            Self::Server => "server",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }

    /// The variant of `opentelemetry::trace::SpanKind`.
    fn variant(self) -> Ident {
        let name = match self {
            Self::Internal => "Internal",
            Self::Client => "Client",
            Self::Server => "Server",
            Self::Producer => "Producer",
            Self::Consumer => "Consumer",
        };
        Ident::new(name, Span::call_site())
    }
}

/// What one macro wants recorded: typed values, rendered to tokens only
/// by the expansion.
pub struct SpanPlan {
    /// The callsite's (static) span name.
    pub name: LitStr,
    /// The span kind (`otel.kind`).
    pub kind: SpanKind,
    /// `gen_ai.operation.name`, for the GenAI macros.
    pub operation: Option<String>,
    /// `#[traced(metrics)]`: count and time the calls (`observra.metrics`).
    pub function_metrics: bool,
    /// Every other static attribute, as (key, literal), in order.
    pub attrs: Vec<(LitStr, Lit)>,
    /// Parameters recorded with `Debug`.
    pub params: Vec<Ident>,
    /// Statements run once the span exists (`__observra_span`: the
    /// `tracing` span or the frame-path call), before the body.
    pub dynamic: Vec<TokenStream>,
    /// Statements run on the returned value (the `Ok` value of a `Result`),
    /// with `__observra_value: &T` and `__observra_span_ref` (a reference to
    /// either span) in scope.
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
    /// A plan for an INTERNAL span named `name` that records nothing yet.
    pub fn new(name: LitStr) -> Self {
        SpanPlan {
            name,
            kind: SpanKind::Internal,
            operation: None,
            function_metrics: false,
            attrs: Vec::new(),
            params: Vec::new(),
            dynamic: Vec::new(),
            on_value: None,
            stream: false,
            tracing_only: Vec::new(),
            frame: FramePlan::default(),
        }
    }
    /// Adds a static attribute.
    pub fn field(&mut self, key: &str, value: impl Into<Lit>) {
        self.attrs.push((LitStr::new(key, Span::call_site()), value.into()));
    }
    /// Adds a literal of `attrs(...)`. The keys with a meaning of their own
    /// (`otel.kind`, `gen_ai.operation.name`, `observra.metrics`) set that
    /// meaning, as the runtime's layer reads them on a `tracing` span.
    fn literal_attr(&mut self, key: &LitStr, value: &Lit) {
        match (key.value().as_str(), value) {
            (crate::semconv::OTEL_KIND, Lit::Str(kind)) => {
                if let Some(kind) = SpanKind::parse(&kind.value()) {
                    self.kind = kind;
                }
            }
            (crate::semconv::OTEL_KIND, _) => {}
            (crate::semconv::GEN_AI_OPERATION_NAME, Lit::Str(op)) => self.operation = Some(op.value()),
            (crate::semconv::OBSERVRA_FUNCTION_METRICS, _) => self.function_metrics = true,
            _ => self.attrs.push((key.clone(), value.clone())),
        }
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
    for attr in &common.attrs {
        match &attr.value {
            AttrValue::Literal(lit) => plan.literal_attr(&attr.key, lit),
            AttrValue::Expr(expr) => plan.attribute(&attr.key, expr),
        }
    }
    plan.params = recorded_params(&func, common);
    let ItemFn { attrs, vis, sig, block } = func;
    let (inner_attrs, outer_attrs): (Vec<_>, Vec<_>) =
        attrs.into_iter().partition(|a| matches!(a.style, AttrStyle::Inner(_)));
    let site = frame_site(&plan);
    let make_span = make_span(&plan, site.as_ref());
    let returns = Returns::new(&plan, returns_result(&sig.output));
    let define_body = define_body(&sig, &block);
    if sig.asyncness.is_some() {
        let arms = async_arms(&returns, site.is_some());
        // Without a frame-path site there is no frame-path call to pass.
        let frame = match site {
            Some(_) => quote!(__observra_fast),
            None => quote!(::core::option::Option::None::<::observra::__private::FrameSpan>),
        };
        return quote! {
            #(#outer_attrs)*
            #vis #sig {
                #(#inner_attrs)*
                // Made in a block that ends before the `.await`: the future
                // holds the span and the body once (a local alive across the
                // `.await` would keep a second copy of each).
                match {
                    #make_span
                    #define_body
                    ::observra::__private::choose(#frame, __observra_span, __observra_body)
                }
                .await
                {
                    #arms
                }
            }
        };
    }
    let arms = call_arms(&returns, site.is_some());
    quote! {
        #(#outer_attrs)*
        #vis #sig {
            #(#inner_attrs)*
            #make_span
            #define_body
            #arms
        }
    }
}

/// The arms over what an async call resolved to (on the frame path, with
/// a `tracing` span, or neither): the result recorded on its span. A
/// function with no frame-path site never resolves on the frame path; its
/// arm only gives the same type as the plain one.
fn async_arms(returns: &Returns, has_frame: bool) -> TokenStream {
    let Returns { on_return, wrap, passthrough } = returns;
    let on_frame = if has_frame {
        quote! {
            let __observra_span_ref = &__observra_span;
            let _ = __observra_span_ref;
            #on_return
        }
    } else {
        quote!(let _ = __observra_span; #passthrough)
    };
    quote! {
        ::observra::__private::Called::Frame(__observra_ret, __observra_span) => {
            #on_frame
            __observra_ret
        }
        ::observra::__private::Called::Tracing(__observra_ret, __observra_span) => {
            let __observra_span_ref = &__observra_span;
            let _ = __observra_span_ref;
            #on_return
            #wrap
            __observra_ret
        }
        ::observra::__private::Called::Plain(__observra_ret) => {
            #passthrough
            __observra_ret
        }
    }
}

/// The function's body, led by a `return` that never runs, so the body's
/// type inference sees the declared return type as it would unwrapped.
fn body_block(sig: &Signature, block: &Block) -> TokenStream {
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
    quote!({ #fake_return #(#stmts)* })
}

/// Makes the call's span: the frame path's start when the function has
/// one (`site`), else (or when it did not start) the `tracing` path's span.
/// Either is only made when `tracing` could record it at all; with no
/// subscriber that check is one relaxed atomic load, and the body runs as
/// if uninstrumented.
fn make_span(plan: &SpanPlan, site: Option<&TokenStream>) -> TokenStream {
    let (frame_start, not_fast) = match site {
        Some(site) => (frame_start(plan, site), quote!(__observra_fast.is_none() &&)),
        None => (TokenStream::new(), TokenStream::new()),
    };
    let tracing_span = tracing_span(plan);
    quote! {
        #frame_start
        let __observra_span = if #not_fast ::observra::__private::enabled() {
            #tracing_span
        } else {
            ::core::option::Option::None
        };
    }
}

/// The frame path's start (`__observra_fast`, an
/// `Option<::observra::__private::FrameSpan>`), and what it records before
/// the body takes the parameters, as the `tracing` path does.
fn frame_start(plan: &SpanPlan, site: &TokenStream) -> TokenStream {
    let params = plan.params.iter().map(|p| {
        let key = param_key(p);
        quote_spanned!(p.span()=> ::observra::__private::record_debug(&__observra_span, #key, &#p);)
    });
    let dynamic = &plan.dynamic;
    quote! {
        let __observra_fast = if ::observra::__private::enabled() { #site } else { ::core::option::Option::None };
        if let ::core::option::Option::Some(__observra_span) = __observra_fast.as_ref() {
            #(#params)*
            #(#dynamic)*
        }
    }
}

/// The `tracing` path's span (an `Option<Span>`), with what it records
/// once it exists.
fn tracing_span(plan: &SpanPlan) -> TokenStream {
    let name = &plan.name;
    let fields = tracing_fields(plan);
    let (tracing_only, dynamic) = (&plan.tracing_only, &plan.dynamic);
    quote! {
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
    }
}

/// The `tracing` callsite's fields: the operation, the static attributes,
/// the kind and the metrics flag (all read by the runtime's layer), then
/// the parameters recorded with `Debug`.
fn tracing_fields(plan: &SpanPlan) -> Vec<TokenStream> {
    let sc_key = |key: &str| LitStr::new(key, Span::call_site());
    let mut fields = Vec::new();
    if let Some(op) = &plan.operation {
        let key = sc_key(crate::semconv::GEN_AI_OPERATION_NAME);
        fields.push(quote!(#key = #op));
    }
    fields.extend(plan.attrs.iter().map(|(key, value)| quote!(#key = #value)));
    if plan.kind != SpanKind::Internal {
        let (key, kind) = (sc_key(crate::semconv::OTEL_KIND), plan.kind.as_str());
        fields.push(quote!(#key = #kind));
    }
    if plan.function_metrics {
        let key = sc_key(crate::semconv::OBSERVRA_FUNCTION_METRICS);
        fields.push(quote!(#key = true));
    }
    fields.extend(plan.params.iter().map(|p| {
        let key = param_key(p);
        quote_spanned!(p.span()=> #key = ::observra::__private::debug_arg(&#p))
    }));
    fields
}

/// The attribute key of a recorded parameter: its name.
fn param_key(param: &Ident) -> LitStr {
    LitStr::new(&syn::ext::IdentExt::unraw(param).to_string(), param.span())
}

/// What the expansion does with the returned value, on either path.
struct Returns {
    /// Records the error or the value, with `__observra_span_ref` bound
    /// (empty when there is nothing to record).
    on_return: TokenStream,
    /// Wraps a returned stream in `LlmStream` when a span records it.
    wrap: TokenStream,
    /// Wraps a returned stream when no span records it.
    passthrough: TokenStream,
}

impl Returns {
    fn new(plan: &SpanPlan, is_result: bool) -> Self {
        let (wrap, passthrough) = stream_wrap(plan.stream, is_result);
        let on_return = if is_result || plan.on_value.is_some() || plan.stream {
            let on_err = if is_result { on_err() } else { TokenStream::new() };
            let on_ok = on_value(plan.on_value.as_ref(), is_result);
            quote!(if !__observra_span_ref.is_disabled() { #on_err #on_ok })
        } else {
            TokenStream::new()
        };
        Returns { on_return, wrap, passthrough }
    }
}

/// Records an `Err` return: its `error.type` and message, described by the
/// best trait the error implements.
fn on_err() -> TokenStream {
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
}

/// Runs the plan's statements on the returned value (the `Ok` value of a `Result`).
fn on_value(stmts: Option<&TokenStream>, is_result: bool) -> TokenStream {
    match (stmts, is_result) {
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
    }
}

/// `#[llm_call(stream)]`: the returned stream (or the `Ok` one) wrapped
/// with the span, and without one.
fn stream_wrap(stream: bool, is_result: bool) -> (TokenStream, TokenStream) {
    match (stream, is_result) {
        (false, _) => (TokenStream::new(), TokenStream::new()),
        (true, false) => (
            quote!(let __observra_ret = ::observra::LlmStream::new(__observra_span_ref.clone(), __observra_ret);),
            quote!(let __observra_ret = ::observra::LlmStream::passthrough(__observra_ret);),
        ),
        (true, true) => (
            quote!(let __observra_ret = __observra_ret.map(|s| ::observra::LlmStream::new(__observra_span_ref.clone(), s));),
            quote!(let __observra_ret = __observra_ret.map(::observra::LlmStream::passthrough);),
        ),
    }
}

/// Binds the body to `__observra_body`: a future for an async function
/// (awaited through `__private::choose`, see [`async_arms`]), a `FnOnce`
/// for a sync one (called by [`call_arms`]).
fn define_body(sig: &Signature, block: &Block) -> TokenStream {
    let body = body_block(sig, block);
    if sig.asyncness.is_some() {
        quote!(let __observra_body = async move #body;)
    } else {
        quote!(let __observra_body = ::observra::__private::once(move || #body);)
    }
}

/// A sync function's call: on the frame path when it started (never for
/// `stream`, so no wrap there), else with the `tracing` span, else plain;
/// the span guard is the same for both paths (`__private::Call` takes a
/// `tracing` span or a frame-path call alike).
fn call_arms(returns: &Returns, has_frame: bool) -> TokenStream {
    let plain_call = quote!(__observra_body());
    let instrumented_call = quote! {
        let __observra_guard = ::observra::__private::Call::enter(&__observra_span);
        let __observra_ret = __observra_body();
    };
    let Returns { on_return, wrap, passthrough } = returns;
    let recorded = quote! {
        #instrumented_call
        let __observra_span_ref = &__observra_span;
        let _ = __observra_span_ref;
        #on_return
    };
    let tracing_arms = quote! {
        match __observra_span {
            ::core::option::Option::None => {
                let __observra_ret = #plain_call;
                #passthrough
                __observra_ret
            }
            ::core::option::Option::Some(__observra_span) => {
                #recorded
                #wrap
                __observra_ret
            }
        }
    };
    if !has_frame {
        return tracing_arms;
    }
    quote! {
        if let ::core::option::Option::Some(__observra_span) = __observra_fast {
            #recorded
            __observra_ret
        } else {
            #tracing_arms
        }
    }
}

/// The frame path's call site: a `static` with everything known at compile
/// time, and the expression that starts a call of it (an
/// `Option<::observra::__private::FrameSpan>`). `None` when the function
/// needs a `tracing` span of its own.
fn frame_site(plan: &SpanPlan) -> Option<TokenStream> {
    if plan.frame.off {
        return None;
    }
    let some = |t: TokenStream| quote!(::core::option::Option::Some(#t));
    let none = quote!(::core::option::Option::None);
    let kind = plan.kind.variant();
    let operation = plan.operation.as_ref().map_or(none.clone(), |op| some(quote!(#op)));
    let callsite = &plan.name;
    let function = if plan.function_metrics { some(quote!((#callsite, ::core::module_path!()))) } else { none.clone() };
    let attrs =
        plan.attrs.iter().map(|(key, value)| quote!((#key, &#value as &'static dyn ::observra::__private::StaticAttr)));
    let name = plan.frame.name.as_ref().map_or(callsite.to_token_stream(), |n| quote!(#n));
    let model = plan.frame.model.as_ref().map_or(none, |m| some(quote!(#m)));
    let name_with_model = plan.frame.model_expr.is_some();
    let fields = plan.params.iter().map(param_key);
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
            fields: &[#(#fields),*],
            meta: ::observra::__private::SiteMeta::new(),
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
        plan.function_metrics = metrics;
        if let Some((kind, _)) = kind {
            plan.kind = SpanKind::parse(&kind).unwrap_or_default();
        }
        Some(plan)
    })
}
