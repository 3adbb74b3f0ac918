//! `observra::metrics! { ... }`: declarative metric registration.
//!
//! Each declaration becomes a `static` with typed recording methods whose
//! parameters are the declared labels, so a call site passes exactly those
//! labels. Names, units, buckets and duplicates are checked here, at compile
//! time, with spanned errors.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Ident, Lit, LitStr, Token, Visibility};

use crate::args::Errors;

const KINDS: &[&str] = &["counter", "updown", "histogram", "gauge"];

struct Decl {
    attrs: Vec<Attribute>,
    vis: Visibility,
    kind: Ident,
    ident: Ident,
    name: LitStr,
    unit: Option<LitStr>,
    buckets: Option<(Vec<(f64, Span)>, Span)>,
    labels: Vec<Ident>,
    labels_span: Option<Span>,
}

struct Decls(Vec<Decl>);

impl Parse for Decls {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut out = Vec::new();
        while !input.is_empty() {
            let attrs = input.call(Attribute::parse_outer)?;
            let vis: Visibility = input.parse()?;
            let kind: Ident = input.parse().map_err(|e| {
                syn::Error::new(e.span(), format!("expected a metric kind: one of {}", KINDS.join(", ")))
            })?;
            let ident: Ident = input.parse()?;
            input.parse::<Token![:]>()?;
            let name: LitStr = input.parse().map_err(|e| {
                syn::Error::new(e.span(), "expected the metric's name as a string, e.g. \"shop.orders\"")
            })?;
            let mut decl = Decl {
                attrs,
                vis,
                kind,
                ident,
                name,
                unit: None,
                buckets: None,
                labels: Vec::new(),
                labels_span: None,
            };
            while input.peek(Token![,]) {
                input.parse::<Token![,]>()?;
                if input.is_empty() || input.peek(Token![;]) {
                    break;
                }
                let key: Ident = input.parse()?;
                match key.to_string().as_str() {
                    "unit" => {
                        input.parse::<Token![=]>()?;
                        decl.unit = Some(input.parse()?);
                    }
                    "buckets" => {
                        input.parse::<Token![=]>()?;
                        let content;
                        let bracket = syn::bracketed!(content in input);
                        let items = content.parse_terminated(Expr::parse, Token![,])?;
                        let mut values = Vec::new();
                        for item in items {
                            let (v, span) = match &item {
                                Expr::Lit(syn::ExprLit { lit: Lit::Float(f), .. }) => {
                                    (f.base10_parse::<f64>()?, f.span())
                                }
                                Expr::Lit(syn::ExprLit { lit: Lit::Int(i), .. }) => {
                                    (i.base10_parse::<f64>()?, i.span())
                                }
                                other => {
                                    return Err(syn::Error::new(other.span(), "bucket boundaries are number literals"));
                                }
                            };
                            values.push((v, span));
                        }
                        decl.buckets = Some((values, bracket.span.join()));
                    }
                    "labels" => {
                        let content;
                        let paren = syn::parenthesized!(content in input);
                        decl.labels = content.parse_terminated(Ident::parse, Token![,])?.into_iter().collect();
                        decl.labels_span = Some(paren.span.join());
                    }
                    other => {
                        return Err(syn::Error::new(
                            key.span(),
                            format!(
                                "unknown setting `{other}`; expected unit = \"...\", buckets = [...] or labels(...)"
                            ),
                        ));
                    }
                }
            }
            input.parse::<Token![;]>().map_err(|e| syn::Error::new(e.span(), "expected `;` after the declaration"))?;
            out.push(decl);
        }
        Ok(Decls(out))
    }
}

/// The OpenTelemetry instrument-name rule: ASCII, starts with a letter,
/// `[A-Za-z0-9_.-/]`, at most 255 characters.
fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("must not be empty");
    }
    if name.len() > 255 {
        return Some("must be at most 255 characters");
    }
    if !name.as_bytes()[0].is_ascii_alphabetic() {
        return Some("must start with an ASCII letter");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-/".contains(&b)) {
        return Some("may only contain ASCII letters, digits, `_`, `.`, `-` and `/`");
    }
    None
}

/// The OpenTelemetry unit rule: ASCII printable, at most 63 characters.
fn unit_problem(unit: &str) -> Option<&'static str> {
    if unit.len() > 63 {
        return Some("must be at most 63 characters");
    }
    if !unit.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Some("may only contain printable ASCII characters");
    }
    None
}

fn description(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => Some(s.value().trim().to_string()),
                _ => None,
            },
            _ => None,
        })
        .filter(|l| !l.is_empty())
        .collect();
    lines.join(" ")
}

fn check(decls: &[Decl], errors: &mut Errors) {
    for (i, d) in decls.iter().enumerate() {
        let kind = d.kind.to_string();
        if !KINDS.contains(&kind.as_str()) {
            errors.error(d.kind.span(), format!("unknown metric kind `{kind}`; expected one of: {}", KINDS.join(", ")));
        }
        if let Some(p) = name_problem(&d.name.value()) {
            errors.error(d.name.span(), format!("invalid instrument name: it {p}"));
        }
        if let Some(u) = &d.unit {
            if let Some(p) = unit_problem(&u.value()) {
                errors.error(u.span(), format!("invalid unit: it {p}"));
            }
        }
        if let Some((values, span)) = &d.buckets {
            if kind != "histogram" {
                errors.error(*span, "only a histogram takes buckets");
            }
            if values.is_empty() {
                errors.error(*span, "give at least one bucket boundary");
            }
            for w in values.windows(2) {
                if w[1].0 <= w[0].0 {
                    errors.error(w[1].1, "bucket boundaries must increase strictly");
                }
            }
        }
        if kind == "gauge" {
            if let Some(span) = d.labels_span {
                errors.error(span, "observable gauges here take no labels; declare one gauge per series");
            }
        }
        for (j, l) in d.labels.iter().enumerate() {
            if d.labels[..j].contains(l) {
                errors.error(l.span(), format!("duplicate label `{l}`"));
            }
        }
        for earlier in &decls[..i] {
            if earlier.ident == d.ident {
                errors.error(d.ident.span(), format!("`{}` is declared twice", d.ident));
            } else if earlier.name.value() == d.name.value() {
                errors.error(
                    d.name.span(),
                    format!("metric `{}` is declared twice (also as `{}`)", d.name.value(), earlier.ident),
                );
            }
        }
    }
}

fn expand_decl(d: &Decl) -> TokenStream {
    let Decl { attrs, vis, ident, name, .. } = d;
    let kind = d.kind.to_string();
    let unit = d.unit.as_ref().map(LitStr::value).unwrap_or_default();
    let desc = description(attrs);
    let buckets = match &d.buckets {
        Some((values, _)) => {
            let v = values.iter().map(|(v, _)| *v);
            quote!(::core::option::Option::Some(&[#(#v),*]))
        }
        None => quote!(::core::option::Option::None),
    };
    let spec = quote! {
        ::observra::__private::metrics::Spec { name: #name, unit: #unit, description: #desc, buckets: #buckets }
    };
    if kind == "gauge" {
        return quote! {
            #(#attrs)*
            #vis static #ident: ::observra::__private::metrics::LazyGauge =
                ::observra::__private::metrics::LazyGauge::new(#spec);
        };
    }
    let (instrument, method, value_ty, doc) = match kind.as_str() {
        "counter" => (quote!(Counter<u64>), quote!(add), quote!(u64), "Adds `value` (a count)."),
        "updown" => (quote!(UpDownCounter<i64>), quote!(add), quote!(i64), "Adds `value`, which may be negative."),
        _ => (quote!(Histogram<f64>), quote!(record), quote!(f64), "Records one measurement."),
    };
    let ty = format_ident!("__ObservraMetric_{}", ident);
    let labels = &d.labels;
    let keys: Vec<LitStr> = labels.iter().map(|l| LitStr::new(&l.to_string(), l.span())).collect();
    let params = labels.iter().map(|l| quote!(#l: impl ::observra::LabelValue));
    let record = quote! {
        self.inner.with(|__observra_instrument| {
            __observra_instrument.#method(
                __observra_value,
                &[#(::observra::__private::metrics::KeyValue::new(#keys, ::observra::LabelValue::label_value(#labels))),*],
            )
        })
    };
    quote! {
        #[doc(hidden)]
        #[allow(non_camel_case_types)]
        #vis struct #ty {
            inner: ::observra::__private::metrics::Lazy<::observra::__private::metrics::#instrument>,
        }
        impl #ty {
            #[doc = #doc]
            #[inline]
            #[allow(dead_code)]
            #vis fn #method(&self, __observra_value: #value_ty #(, #params)*) {
                #record
            }
        }
        #(#attrs)*
        #vis static #ident: #ty = #ty { inner: ::observra::__private::metrics::Lazy::new(#spec) };
    }
}

/// Entry point of `observra::metrics!`.
pub fn metrics(input: TokenStream) -> TokenStream {
    let decls = match syn::parse2::<Decls>(input) {
        Ok(d) => d.0,
        Err(e) => return e.to_compile_error(),
    };
    let mut errors = Errors::default();
    check(&decls, &mut errors);
    if let Err(e) = errors.finish() {
        return e.to_compile_error();
    }
    let out = decls.iter().map(expand_decl);
    quote!(#(#out)*)
}
