//! Parsing of the macros' arguments into checked models.
//!
//! Two steps: [`parse_raw`] splits the attribute into `key = value`,
//! `key(...)` and bare `key` items (rejecting duplicates); each macro then
//! checks its items into a model. Errors are collected, not thrown: every
//! bad argument gets a `syn::Error` spanned on its tokens, and all of them
//! are reported in one compile.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Expr, Ident, Lit, LitStr, Token};

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

/// One item of an attribute's argument list.
pub struct RawArg {
    pub key: Ident,
    pub value: RawValue,
}

/// The value part of an item.
pub enum RawValue {
    /// `key`
    Flag,
    /// `key = expr`
    Assign(Expr),
    /// `key(...)`: the tokens inside the parentheses.
    Group(TokenStream),
}

/// Splits the argument list into items; duplicates are errors.
pub fn parse_raw(tokens: TokenStream, allowed: &[&str], errors: &mut Errors) -> Vec<RawArg> {
    let mut out: Vec<RawArg> = Vec::new();
    let parser = |input: ParseStream<'_>| -> syn::Result<()> {
        while !input.is_empty() {
            let key = Ident::parse_any(input)
                .map_err(|_| input.error(format!("expected an argument: one of {}", allowed.join(", "))))?;
            let value = if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
                RawValue::Assign(input.parse()?)
            } else if input.peek(syn::token::Paren) {
                let content;
                syn::parenthesized!(content in input);
                RawValue::Group(content.parse()?)
            } else {
                RawValue::Flag
            };
            let word = key.to_string();
            if !allowed.contains(&word.as_str()) {
                errors.error(key.span(), format!("unknown argument `{word}`; expected one of: {}", allowed.join(", ")));
            } else if out.iter().any(|a| a.key == key) {
                errors.error(key.span(), format!("duplicate argument `{word}`"));
            } else {
                out.push(RawArg { key, value });
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
    out
}

impl RawArg {
    fn describe(&self) -> String {
        self.key.to_string()
    }

    /// `key = "non-empty string"`.
    pub fn lit_str(&self, errors: &mut Errors) -> Option<LitStr> {
        match &self.value {
            RawValue::Assign(Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. })) if !s.value().is_empty() => {
                Some(s.clone())
            }
            RawValue::Assign(Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. })) => {
                errors.error(s.span(), format!("`{}` must not be empty", self.describe()));
                None
            }
            RawValue::Assign(other) => {
                errors.error(
                    other.span(),
                    format!("`{}` takes a string literal, e.g. {} = \"...\"", self.describe(), self.describe()),
                );
                None
            }
            _ => {
                errors.error(
                    self.key.span(),
                    format!("`{}` takes a value: {} = \"...\"", self.describe(), self.describe()),
                );
                None
            }
        }
    }

    /// `key = <expression>`.
    pub fn expr(&self, errors: &mut Errors) -> Option<Expr> {
        match &self.value {
            RawValue::Assign(e) => Some(e.clone()),
            _ => {
                errors.error(
                    self.key.span(),
                    format!(
                        "`{}` takes an expression over the parameters: {} = <expr>",
                        self.describe(),
                        self.describe()
                    ),
                );
                None
            }
        }
    }

    /// `key = choice` or `key = "choice"` among `choices`.
    pub fn choice(&self, choices: &[&str], errors: &mut Errors) -> Option<(String, Span)> {
        let found = match &self.value {
            RawValue::Assign(Expr::Path(p)) if p.path.get_ident().is_some() => {
                p.path.get_ident().map(|i| (i.to_string(), i.span()))
            }
            RawValue::Assign(Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. })) => Some((s.value(), s.span())),
            RawValue::Assign(other) => Some((String::new(), other.span())),
            _ => None,
        };
        match found {
            Some((v, span)) if choices.contains(&v.as_str()) => Some((v, span)),
            Some((_, span)) => {
                errors.error(span, format!("unknown {}; expected one of: {}", self.describe(), choices.join(", ")));
                None
            }
            None => {
                errors.error(self.key.span(), format!("`{}` takes one of: {}", self.describe(), choices.join(", ")));
                None
            }
        }
    }

    /// A bare `key`.
    pub fn flag(&self, errors: &mut Errors) -> bool {
        match &self.value {
            RawValue::Flag => true,
            _ => {
                errors.error(self.key.span(), format!("`{}` is a flag and takes no value", self.describe()));
                false
            }
        }
    }

    /// `key(a, b)`.
    pub fn ident_list(&self, errors: &mut Errors) -> Vec<Ident> {
        let RawValue::Group(tokens) = &self.value else {
            errors.error(
                self.key.span(),
                format!("`{}` takes a list of parameters: {}(a, b)", self.describe(), self.describe()),
            );
            return Vec::new();
        };
        let parser = |input: ParseStream<'_>| -> syn::Result<Vec<Ident>> {
            let mut out = Vec::new();
            while !input.is_empty() {
                if input.peek(Token![self]) {
                    let tok: Token![self] = input.parse()?;
                    out.push(Ident::new("self", tok.span));
                } else if input.peek(Ident) {
                    out.push(input.parse()?);
                } else {
                    return Err(input.error("expected a parameter name"));
                }
                if input.is_empty() {
                    break;
                }
                input.parse::<Token![,]>()?;
            }
            Ok(out)
        };
        parser.parse2(tokens.clone()).unwrap_or_else(|e| {
            errors.push(e);
            Vec::new()
        })
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

/// Parses `attrs(key = value, ...)`.
pub fn parse_attrs(arg: &RawArg, errors: &mut Errors) -> Vec<Attr> {
    let RawValue::Group(tokens) = &arg.value else {
        errors.error(arg.key.span(), "`attrs` takes a list: attrs(key = value, ...)");
        return Vec::new();
    };
    let mut out: Vec<Attr> = Vec::new();
    let mut inner_errors = Errors::default();
    let parser = |content: ParseStream<'_>| -> syn::Result<()> {
        while !content.is_empty() {
            let key = parse_key(content)?;
            content.parse::<Token![=]>().map_err(|_| {
                syn::Error::new(key.span(), format!("expected `= value` after attribute key `{}`", key.value()))
            })?;
            let expr: Expr = content.parse()?;
            let value = match expr {
                Expr::Lit(syn::ExprLit { lit, attrs }) if attrs.is_empty() => match lit {
                    Lit::Str(_) | Lit::Int(_) | Lit::Float(_) | Lit::Bool(_) => AttrValue::Literal(lit),
                    other => {
                        inner_errors.error(
                            other.span(),
                            "unsupported literal; attribute values are strings, integers, floats or booleans",
                        );
                        AttrValue::Literal(other)
                    }
                },
                other => AttrValue::Expr(other),
            };
            if out.iter().any(|a| a.key.value() == key.value()) {
                inner_errors.error(key.span(), format!("duplicate attribute key `{}`", key.value()));
            }
            out.push(Attr { key, value });
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        Ok(())
    };
    if let Err(e) = parser.parse2(tokens.clone()) {
        errors.push(e);
    }
    if let Err(e) = inner_errors.finish() {
        errors.push(e);
    }
    out
}

/// Arguments every macro accepts: what to record besides its own data.
#[derive(Default)]
pub struct Common {
    pub attrs: Vec<Attr>,
    pub args: Option<Span>,
    pub fields: Option<Vec<Ident>>,
    pub skip: Vec<Ident>,
}

/// The names [`Common`] takes.
pub const COMMON: &[&str] = &["attrs", "args", "fields", "skip"];

impl Common {
    /// Takes `arg` if it is one of the common arguments.
    pub fn take(&mut self, arg: &RawArg, errors: &mut Errors) -> bool {
        match arg.key.to_string().as_str() {
            "attrs" => self.attrs = parse_attrs(arg, errors),
            "args" => {
                if arg.flag(errors) {
                    self.args = Some(arg.key.span());
                }
            }
            "fields" => self.fields = Some(arg.ident_list(errors)),
            "skip" => self.skip = arg.ident_list(errors),
            _ => return false,
        }
        true
    }

    /// Cross-argument checks.
    pub fn check(&self, errors: &mut Errors) {
        if let (Some(args_span), Some(_)) = (self.args, &self.fields) {
            errors.error(args_span, "use either `args` (every parameter) or `fields(...)` (only these), not both");
        }
    }
}

/// Allowed names: a macro's own plus the common ones.
pub fn allowed(own: &[&'static str]) -> Vec<&'static str> {
    own.iter().chain(COMMON.iter()).copied().collect()
}
