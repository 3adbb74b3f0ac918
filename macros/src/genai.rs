//! `#[llm_call]`, `#[tool_call]`, `#[agent]` and `#[workflow]`: their
//! argument models and the span plans they expand to. Attribute names come
//! from the `observra-semconv` crate the runtime uses too, so no
//! name is spelled twice.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ItemFn, Lit, LitBool, LitStr, ReturnType};

use crate::args::{Errors, RawArg};
use crate::expand::{SpanKind, SpanPlan, impl_trait_bounds, run};
use crate::semconv as sc;

const TOOL_TYPES: &[&str] = &["function", "extension", "datastore"];
const RESPONSE_MODES: &[&str] = &["auto", "manual"];

/// Request parameters of `#[llm_call]` and the attribute each becomes.
const REQUEST_PARAMS: &[(&str, &str)] = &[
    ("temperature", sc::GEN_AI_REQUEST_TEMPERATURE),
    ("max_tokens", sc::GEN_AI_REQUEST_MAX_TOKENS),
    ("top_p", sc::GEN_AI_REQUEST_TOP_P),
    ("top_k", sc::GEN_AI_REQUEST_TOP_K),
    ("stop_sequences", sc::GEN_AI_REQUEST_STOP_SEQUENCES),
    ("seed", sc::GEN_AI_REQUEST_SEED),
    ("frequency_penalty", sc::GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", sc::GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("choice_count", sc::GEN_AI_REQUEST_CHOICE_COUNT),
    ("server_address", sc::SERVER_ADDRESS),
    ("server_port", sc::SERVER_PORT),
    ("conversation_id", sc::GEN_AI_CONVERSATION_ID),
];

fn lit(s: &str) -> LitStr {
    LitStr::new(s, Span::call_site())
}

/// The plan of a GenAI `operation` span: named `{operation} {target}`
/// (`{operation}` alone without a target), with `gen_ai.operation.name`.
fn operation_plan(operation: &str, target: Option<&str>) -> SpanPlan {
    let name = match target {
        Some(t) => format!("{operation} {t}"),
        None => operation.to_string(),
    };
    let mut plan = SpanPlan::new(lit(&name));
    plan.operation = Some(operation.to_string());
    plan
}

fn fn_name(func: &ItemFn) -> String {
    syn::ext::IdentExt::unraw(&func.sig.ident).to_string()
}

/// Provider names are lowercase identifiers (`openai`, `aws.bedrock`, `gcp.vertex_ai`).
fn valid_provider(p: &str) -> bool {
    !p.is_empty()
        && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
        && p.as_bytes()[0].is_ascii_lowercase()
}

/// A `provider = "..."` argument: a lowercase identifier, or an error.
fn provider_arg(arg: &RawArg, errors: &mut Errors) -> Option<LitStr> {
    let p = arg.lit_str(errors)?;
    if valid_provider(&p.value()) {
        return Some(p);
    }
    errors.error(
        p.span(),
        "provider names are lowercase, e.g. \"openai\", \"anthropic\", \"aws.bedrock\", \"gcp.vertex_ai\"",
    );
    None
}

/// Statements capturing `expr` as content under `key` when capture is on.
fn capture(plan: &mut SpanPlan, helper: &str, key: &str, expr: &Expr) {
    let helper = syn::Ident::new(helper, Span::call_site());
    let value = quote_spanned!(expr.span()=> &(#expr));
    plan.dynamic.push(quote! {
        if ::observra::__private::capturing() {
            ::observra::__private::#helper(&__observra_span, #key, #value);
        }
    });
}

/// `#[llm_call]`'s own arguments, each checked on its own.
struct LlmArgs {
    /// `gen_ai.provider.name` (required).
    provider: Option<LitStr>,
    /// `gen_ai.request.model` (required, or given by `request`).
    model: Option<Expr>,
    /// `gen_ai.operation.name` (default `chat`).
    operation: String,
    /// Where `stream` was given.
    stream: Option<Span>,
    /// `response = manual`: the return value is not read.
    response_manual: bool,
    /// Request parameters: (attribute, expression).
    params: Vec<(&'static str, Expr)>,
    /// Input messages, captured when capture is on.
    input: Option<Expr>,
    /// System instructions, captured when capture is on.
    system: Option<Expr>,
    /// A value implementing `observra::LlmRequest`.
    request: Option<Expr>,
}

impl LlmArgs {
    /// The arguments `#[llm_call]` takes besides the common ones.
    fn names() -> Vec<&'static str> {
        let mut own = vec!["provider", "model", "operation", "stream", "input", "system", "response", "request"];
        own.extend(REQUEST_PARAMS.iter().map(|(k, _)| *k));
        own
    }

    /// Checks each argument.
    fn parse(raw: &[RawArg], errors: &mut Errors) -> Self {
        let mut args = LlmArgs {
            provider: None,
            model: None,
            operation: sc::operation::CHAT.to_string(),
            stream: None,
            response_manual: false,
            params: Vec::new(),
            input: None,
            system: None,
            request: None,
        };
        for arg in raw {
            let key = arg.key.to_string();
            match key.as_str() {
                "provider" => args.provider = provider_arg(arg, errors),
                "model" => args.model = arg.expr(errors),
                "operation" => {
                    if let Some((op, _)) = arg.choice(sc::operation::LLM, errors) {
                        args.operation = op;
                    }
                }
                "stream" => {
                    if arg.flag(errors) {
                        args.stream = Some(arg.key.span());
                    }
                }
                "response" => {
                    args.response_manual = arg.choice(RESPONSE_MODES, errors).is_some_and(|(m, _)| m == "manual")
                }
                "input" => args.input = arg.expr(errors),
                "system" => args.system = arg.expr(errors),
                "request" => args.request = arg.expr(errors),
                _ => {
                    if let Some((_, attr)) = REQUEST_PARAMS.iter().find(|(k, _)| *k == key) {
                        args.params.extend(arg.expr(errors).map(|e| (*attr, e)));
                    }
                }
            }
        }
        args
    }

    /// Cross-argument checks: a provider and a model are required (a
    /// `request` gives the model), and `stream` needs a returned stream.
    fn check(&mut self, raw: &[RawArg], func: &ItemFn, errors: &mut Errors) {
        let here = Span::call_site();
        if self.provider.is_none() && !raw.iter().any(|a| a.key == "provider") {
            errors.error(
                here,
                "#[llm_call] needs `provider = \"...\"` (gen_ai.provider.name), e.g. provider = \"openai\"",
            );
        }
        if let (None, Some(req)) = (&self.model, &self.request) {
            // The request knows its model.
            self.model = Some(syn::parse_quote_spanned!(req.span()=> ::observra::LlmRequest::model(&(#req))));
        }
        if self.model.is_none() && !raw.iter().any(|a| a.key == "model" || a.key == "request") {
            errors.error(
                here,
                "#[llm_call] needs `model = <expr>` (gen_ai.request.model), e.g. model = req.model, or `request = <expr>` of a type implementing observra::LlmRequest",
            );
        }
        if let Some(span) = self.stream {
            let is_stream = match &func.sig.output {
                ReturnType::Type(_, ty) => impl_trait_bounds(ty).any(|b| b == "Stream"),
                ReturnType::Default => false,
            };
            if !is_stream {
                errors.error(
                    span,
                    "`stream` needs the function to return `impl Stream<Item = ...>` (or a `Result` of one) so the stream can be wrapped",
                );
            }
        }
    }
}

/// `#[llm_call]`.
pub fn llm_call(args: TokenStream, item: TokenStream) -> TokenStream {
    run("llm_call", &LlmArgs::names(), args, item, |raw, func, errors| {
        let mut args = LlmArgs::parse(raw, errors);
        args.check(raw, func, errors);
        let (provider, model) = (args.provider.take()?, args.model.take()?);
        let op = &args.operation;
        let mut plan = SpanPlan::new(lit(op));
        plan.operation = Some(op.clone());
        plan.field(sc::GEN_AI_PROVIDER_NAME, provider);
        plan.kind = SpanKind::Client;
        if args.stream.is_some() {
            plan.field(sc::GEN_AI_REQUEST_STREAM, LitBool::new(true, Span::call_site()));
        }
        llm_model(&mut plan, op, &model);
        // The frame path, unless the function needs its `tracing` span.
        plan.frame.off = args.response_manual || args.stream.is_some();
        llm_request(&mut plan, &args);
        plan.stream = args.stream.is_some();
        if !args.response_manual && args.stream.is_none() {
            plan.on_value = Some(llm_response(func));
        }
        Some(plan)
    })
}

/// How the span learns its request model: a literal names the span
/// `{operation} {model}` at compile time; an expression does per call.
fn llm_model(plan: &mut SpanPlan, op: &str, model: &Expr) {
    let start = match model {
        // A literal model: the span name is built here, not on every call.
        Expr::Lit(syn::ExprLit { lit: Lit::Str(lit_model), .. }) => {
            let name = format!("{op} {}", lit_model.value());
            plan.frame.model = Some(lit_model.clone());
            let start = quote! { ::observra::__private::llm_start_static(&__observra_span, #name, #lit_model); };
            plan.frame.name = Some(name);
            start
        }
        _ => {
            let model_ref = quote_spanned!(model.span()=> ::core::convert::AsRef::<str>::as_ref(&(#model)));
            plan.frame.model_expr = Some(model_ref.clone());
            quote! { ::observra::__private::llm_start(&__observra_span, #op, #model_ref); }
        }
    };
    plan.tracing_only.push(start);
}

/// What the call records from its arguments: the request, then the
/// explicit parameters (so they win), then the captured input.
fn llm_request(plan: &mut SpanPlan, args: &LlmArgs) {
    if let Some(req) = &args.request {
        let value = quote_spanned!(req.span()=> &(#req));
        plan.dynamic.push(quote! {
            ::observra::__private::record_llm_request(&__observra_span, #value);
        });
    }
    for (attr, expr) in &args.params {
        if *attr == sc::GEN_AI_REQUEST_TOP_K {
            // Typed as the conventions in use say.
            let value = quote_spanned!(expr.span()=> &(#expr));
            plan.dynamic.push(quote! {
                ::observra::__private::set_top_k(&__observra_span, #value);
            });
        } else {
            plan.attribute(attr, expr);
        }
    }
    if let Some(e) = &args.input {
        capture(plan, "capture_messages", sc::GEN_AI_INPUT_MESSAGES, e);
    }
    if let Some(e) = &args.system {
        capture(plan, "capture_system", sc::GEN_AI_SYSTEM_INSTRUCTIONS, e);
    }
}

/// Reads the returned `LlmResponse`; a type that is not one is an error
/// pointing at the return type.
fn llm_response(func: &ItemFn) -> TokenStream {
    let ret_span = match &func.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => func.sig.ident.span(),
    };
    quote_spanned! {ret_span=>
        ::observra::__private::record_llm_response(__observra_span_ref, __observra_value);
    }
}

/// `#[tool_call]`.
pub fn tool_call(args: TokenStream, item: TokenStream) -> TokenStream {
    run("tool_call", &["name", "description", "tool_type", "call_id", "arguments"], args, item, |raw, func, errors| {
        let mut name = None;
        let mut description = None;
        let mut tool_type = "function".to_string();
        let mut call_id = None;
        let mut arguments = None;
        for arg in raw {
            match arg.key.to_string().as_str() {
                "name" => name = arg.lit_str(errors),
                "description" => description = arg.lit_str(errors),
                "tool_type" => {
                    if let Some((t, _)) = arg.choice(TOOL_TYPES, errors) {
                        tool_type = t;
                    }
                }
                "call_id" => call_id = arg.expr(errors),
                "arguments" => arguments = arg.expr(errors),
                _ => {}
            }
        }
        let name = name.map(|n| n.value()).unwrap_or_else(|| fn_name(func));
        let mut plan = operation_plan(sc::operation::EXECUTE_TOOL, Some(&name));
        plan.field(sc::GEN_AI_TOOL_NAME, lit(&name));
        plan.field(sc::GEN_AI_TOOL_TYPE, lit(&tool_type));
        if let Some(d) = description {
            plan.field(sc::GEN_AI_TOOL_DESCRIPTION, d);
        }
        if let Some(e) = &call_id {
            plan.attribute(sc::GEN_AI_TOOL_CALL_ID, e);
        }
        if let Some(e) = &arguments {
            capture(&mut plan, "capture_content", sc::GEN_AI_TOOL_CALL_ARGUMENTS, e);
        }
        let key = sc::GEN_AI_TOOL_CALL_RESULT;
        plan.on_value = Some(quote! {
            if ::observra::__private::capturing() {
                #[allow(unused_imports)]
                use ::observra::__private::{ViaCapture as _, ViaNoCapture as _};
                (&&::observra::__private::ResultRef(__observra_value)).__observra_capture(__observra_span_ref, #key);
            }
        });
        Some(plan)
    })
}

/// `#[retrieval]`.
pub fn retrieval(args: TokenStream, item: TokenStream) -> TokenStream {
    run("retrieval", &["data_source", "provider", "model", "top_k", "query"], args, item, |raw, _func, errors| {
        let mut data_source = None;
        let mut provider = None;
        let mut model = None;
        let mut top_k = None;
        let mut query = None;
        for arg in raw {
            match arg.key.to_string().as_str() {
                "data_source" => data_source = arg.lit_str(errors),
                "provider" => provider = provider_arg(arg, errors),
                "model" => model = arg.lit_str(errors),
                "top_k" => top_k = arg.expr(errors),
                "query" => query = arg.expr(errors),
                _ => {}
            }
        }
        let mut plan = operation_plan(sc::operation::RETRIEVAL, data_source.as_ref().map(LitStr::value).as_deref());
        // A retriever is called over the network as a rule: CLIENT, as the conventions say.
        plan.kind = SpanKind::Client;
        if let Some(d) = data_source {
            plan.field(sc::GEN_AI_DATA_SOURCE_ID, d);
        }
        if let Some(p) = provider {
            plan.field(sc::GEN_AI_PROVIDER_NAME, p);
        }
        if let Some(m) = model {
            plan.field(sc::GEN_AI_REQUEST_MODEL, m);
        }
        if let Some(k) = &top_k {
            // Its name and type depend on the conventions in use.
            let as_f64 = quote_spanned!(k.span()=> ((#k) as f64));
            plan.dynamic.push(quote! {
                #[allow(clippy::unnecessary_cast)]
                let __observra_top_k = #as_f64;
                ::observra::__private::set_retrieval_top_k(&__observra_span, __observra_top_k);
            });
        }
        if let Some(q) = &query {
            capture(&mut plan, "capture_content", sc::GEN_AI_RETRIEVAL_QUERY_TEXT, q);
        }
        plan.on_value = Some(quote! {
            ::observra::__private::retrieved(__observra_span_ref, __observra_value);
        });
        Some(plan)
    })
}

/// `#[agent]`.
pub fn agent(args: TokenStream, item: TokenStream) -> TokenStream {
    run(
        "agent",
        &["name", "id", "description", "version", "conversation_id", "provider", "remote"],
        args,
        item,
        |raw, _func, errors| {
            let mut name = None;
            let mut plan_fields: Vec<(&str, LitStr)> = Vec::new();
            let mut dynamic: Vec<(&str, Expr)> = Vec::new();
            let mut remote = false;
            for arg in raw {
                match arg.key.to_string().as_str() {
                    "name" => name = arg.lit_str(errors),
                    "description" => plan_fields.extend(arg.lit_str(errors).map(|l| (sc::GEN_AI_AGENT_DESCRIPTION, l))),
                    "version" => plan_fields.extend(arg.lit_str(errors).map(|l| (sc::GEN_AI_AGENT_VERSION, l))),
                    "provider" => plan_fields.extend(arg.lit_str(errors).map(|l| (sc::GEN_AI_PROVIDER_NAME, l))),
                    "id" => dynamic.extend(arg.expr(errors).map(|e| (sc::GEN_AI_AGENT_ID, e))),
                    "conversation_id" => dynamic.extend(arg.expr(errors).map(|e| (sc::GEN_AI_CONVERSATION_ID, e))),
                    "remote" => remote = arg.flag(errors),
                    _ => {}
                }
            }
            let mut plan = operation_plan(sc::operation::INVOKE_AGENT, name.as_ref().map(LitStr::value).as_deref());
            if let Some(n) = name {
                plan.field(sc::GEN_AI_AGENT_NAME, n);
            }
            for (k, v) in plan_fields {
                plan.field(k, v);
            }
            if remote {
                plan.kind = SpanKind::Client;
            }
            for (k, e) in &dynamic {
                plan.attribute(k, e);
            }
            Some(plan)
        },
    )
}

/// `#[workflow]`.
pub fn workflow(args: TokenStream, item: TokenStream) -> TokenStream {
    run("workflow", &["name"], args, item, |raw, func, errors| {
        let name = raw.iter().find(|a| a.key == "name").and_then(|a| a.lit_str(errors));
        let name = name.map(|n| n.value()).unwrap_or_else(|| fn_name(func));
        let mut plan = operation_plan(sc::operation::INVOKE_WORKFLOW, Some(&name));
        plan.field(sc::GEN_AI_WORKFLOW_NAME, lit(&name));
        Some(plan)
    })
}
