//! `#[retrieval]` arguments of the wrong form, each named in its error.

#[observra::retrieval(data_source = 3)]
fn not_a_string() -> Vec<observra::RetrievedDocument> {
    Vec::new()
}

#[observra::retrieval(data_source = "kb", provider = "OpenAI")]
fn provider_not_lowercase() -> Vec<observra::RetrievedDocument> {
    Vec::new()
}

#[observra::retrieval(data_source = "kb", index = "orders")]
fn unknown_argument() -> Vec<observra::RetrievedDocument> {
    Vec::new()
}

#[observra::retrieval(top_k)]
fn top_k_without_value() -> Vec<observra::RetrievedDocument> {
    Vec::new()
}

fn main() {}
