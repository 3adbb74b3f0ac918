//! A retriever must say which documents it found.

#[observra::retrieval(data_source = "kb")]
fn search() -> Vec<String> {
    vec!["doc_1".into()]
}

fn main() {
    let _ = search();
}
