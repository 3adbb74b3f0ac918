//! `#[retrieval]`: sync and async retrievers, plain or `Result` returns,
//! every argument, and a type of the user's own implementing
//! `RetrievalResponse`.

use observra::{RetrievalResponse, RetrievedDocument};

struct Hits(Vec<(String, f32)>);

impl RetrievalResponse for Hits {
    fn documents(&self) -> Vec<RetrievedDocument> {
        self.0.iter().map(|(id, s)| RetrievedDocument::new(id.clone(), f64::from(*s))).collect()
    }
}

#[observra::retrieval(data_source = "kb", provider = "openai", model = "text-embedding-3-small", top_k = k, query = q)]
fn search(q: &str, k: u32) -> Vec<RetrievedDocument> {
    let _ = (q, k);
    vec![RetrievedDocument::new("doc_1", 0.9)]
}

#[observra::retrieval(data_source = "kb")]
async fn search_async(q: String) -> Result<Hits, std::io::Error> {
    let _ = q;
    Ok(Hits(vec![("doc_2".into(), 0.5)]))
}

#[observra::retrieval]
fn bare() -> Vec<(String, f64)> {
    vec![("doc_3".into(), 0.1)]
}

fn main() {
    let _ = search("q", 3);
    let _ = search_async("q".into());
    let _ = bare();
}
