//! Parsing of the macros' arguments into a checked model.
//!
//! Errors are collected, not thrown: every bad argument gets a `syn::Error`
//! spanned on its tokens, and all of them are reported in one compile.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Expr, Ident, Lit, LitStr, Token};

/// The span kinds `kind = ...` accepts.
pub const KINDS: &[&str] = &["client", "server", "internal", "producer", "consumer"];
const TRACED_ARGS: &str = "name, kind, attrs, args, fields, skip";

/// Accumulates errors so all of them are reported at once.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }
    pub fn error(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }
    pub fn finish(self) -> Result<(), syn::Error> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// One attribute of `attrs(...)`.
pub struct Attr {
    /// The attribute key, e.g. `gen_ai.request.model`.
    pub key: LitStr,
    pub value: AttrValue,
}

/// A literal is recorded as a static `tracing` field; an expression is
/// evaluated per call and converted with `observra::AttributeValue`.
pub enum AttrValue {
    Literal(Lit),
    Expr(Expr),
}

/// The checked arguments of `#[traced]`.
#[derive(Default)]
pub struct TracedArgs {
    pub name: Option<LitStr>,
    /// One of [`KINDS`].
    pub kind: Option<(String, Span)>,
    pub attrs: Vec<Attr>,
    pub args: Option<Span>,
    pub fields: Option<Vec<Ident>>,
    pub skip: Vec<Ident>,
}

/// Parses a key: dotted identifiers (keywords allowed: `error.type`) or a string.
fn parse_key(input: ParseStream<'_>) -> syn::Result<LitStr> {
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        if lit.value().is_empty() {
            return Err(syn::Error::new(lit.span(), "attribute keys must not be empty"));
        }
        return Ok(lit);
    }
    if !input.peek(Ident::peek_any) {
        return Err(input.error("expected an attribute key: `name`, `dotted.name` or a string literal"));
    }
    let first = Ident::parse_any(input)?;
    let span = first.span();
    let mut key = first.unraw().to_string();
    while input.peek(Token![.]) {
        input.parse::<Token![.]>()?;
        let part = Ident::parse_any(input)
            .map_err(|_| input.error("expected an identifier after `.` in the attribute key"))?;
        key.push('.');
        key.push_str(&part.unraw().to_string());
    }
    Ok(LitStr::new(&key, span))
}

fn parse_ident_list(input: ParseStream<'_>) -> syn::Result<Vec<Ident>> {
    let content;
    syn::parenthesized!(content in input);
    let mut out = Vec::new();
    while !content.is_empty() {
        if content.peek(Token![self]) {
            let tok: Token![self] = content.parse()?;
            out.push(Ident::new("self", tok.span));
        } else if content.peek(Ident) {
            out.push(content.parse()?);
        } else {
            return Err(content.error("expected a parameter name"));
        }
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    Ok(out)
}

fn parse_attrs(input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<Vec<Attr>> {
    let content;
    syn::parenthesized!(content in input);
    let mut out: Vec<Attr> = Vec::new();
    while !content.is_empty() {
        let key = parse_key(&content)?;
        content.parse::<Token![=]>().map_err(|_| {
            syn::Error::new(key.span(), format!("expected `= value` after attribute key `{}`", key.value()))
        })?;
        let expr: Expr = content.parse()?;
        let value = match expr {
            Expr::Lit(syn::ExprLit { lit, attrs }) if attrs.is_empty() => match lit {
                Lit::Str(_) | Lit::Int(_) | Lit::Float(_) | Lit::Bool(_) => AttrValue::Literal(lit),
                other => {
                    errors.error(
                        other.span(),
                        "unsupported literal; attribute values are strings, integers, floats or booleans",
                    );
                    AttrValue::Literal(other)
                }
            },
            other => AttrValue::Expr(other),
        };
        if out.iter().any(|a| a.key.value() == key.value()) {
            errors.error(key.span(), format!("duplicate attribute key `{}`", key.value()));
        }
        out.push(Attr { key, value });
        if content.is_empty() {
            break;
        }
        content.parse::<Token![,]>()?;
    }
    Ok(out)
}

impl TracedArgs {
    /// Parses `#[traced(...)]` arguments, recording every problem in `errors`.
    pub fn parse(tokens: TokenStream, errors: &mut Errors) -> TracedArgs {
        let mut out = TracedArgs::default();
        let parser = |input: ParseStream<'_>| -> syn::Result<()> {
            let mut seen: Vec<String> = Vec::new();
            while !input.is_empty() {
                let ident = Ident::parse_any(input)
                    .map_err(|_| input.error(format!("expected an argument: one of {TRACED_ARGS}")))?;
                let word = ident.to_string();
                if seen.contains(&word) {
                    errors.error(ident.span(), format!("duplicate argument `{word}`"));
                }
                seen.push(word.clone());
                match word.as_str() {
                    "name" => {
                        input.parse::<Token![=]>()?;
                        let expr: Expr = input.parse()?;
                        match expr {
                            Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) if !s.value().is_empty() => {
                                out.name = Some(s)
                            }
                            Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => {
                                errors.error(s.span(), "`name` must not be empty")
                            }
                            other => {
                                errors.error(other.span(), "`name` takes a string literal, e.g. name = \"retrieve\"")
                            }
                        }
                    }
                    "kind" => {
                        input.parse::<Token![=]>()?;
                        let expr: Expr = input.parse()?;
                        let (value, span) = match &expr {
                            Expr::Path(p) if p.path.get_ident().is_some() => {
                                (p.path.get_ident().map(|i| i.to_string()).unwrap_or_default(), p.span())
                            }
                            Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => (s.value(), s.span()),
                            other => (String::new(), other.span()),
                        };
                        if KINDS.contains(&value.as_str()) {
                            out.kind = Some((value, span));
                        } else {
                            errors.error(span, format!("unknown span kind; expected one of: {}", KINDS.join(", ")));
                        }
                    }
                    "attrs" => out.attrs = parse_attrs(input, errors)?,
                    "args" => out.args = Some(ident.span()),
                    "fields" => out.fields = Some(parse_ident_list(input)?),
                    "skip" => out.skip = parse_ident_list(input)?,
                    _ => {
                        errors
                            .error(ident.span(), format!("unknown argument `{word}`; expected one of: {TRACED_ARGS}"));
                        // Skip its value so the rest can still be checked.
                        if input.peek(Token![=]) {
                            input.parse::<Token![=]>()?;
                            input.parse::<Expr>()?;
                        } else if input.peek(syn::token::Paren) {
                            let _content;
                            syn::parenthesized!(_content in input);
                        }
                    }
                }
                if input.is_empty() {
                    break;
                }
                input.parse::<Token![,]>()?;
            }
            Ok(())
        };
        if let Err(e) = parser.parse2(tokens) {
            errors.push(e);
        }
        if let (Some(args_span), Some(_)) = (out.args, &out.fields) {
            errors.error(args_span, "use either `args` (every parameter) or `fields(...)` (only these), not both");
        }
        out
    }
}
