//! Retrieval calls (`#[retrieval]`): what a retriever's return value tells
//! of the documents it found, for `gen_ai.retrieval.documents` (content:
//! captured only when capture is on, redacted then).

use serde_json::{Value as Json, json};

use crate::base::frame::Frame;
use observra_semconv as sc;

/// One retrieved document: its id and relevance score, as the
/// conventions' retrieval documents schema has them.
#[derive(Debug, Clone, PartialEq)]
pub struct RetrievedDocument {
    /// The document's identifier in the data source.
    pub id: String,
    /// Its relevance score, when the retriever gives one.
    pub score: Option<f64>,
}

impl RetrievedDocument {
    /// A document with a score.
    pub fn new(id: impl Into<String>, score: f64) -> Self {
        RetrievedDocument { id: id.into(), score: Some(score) }
    }
}

/// What `#[retrieval]` reads from a retriever's return value (the `Ok`
/// value of a `Result`): the documents it found, for capture.
///
/// ```
/// use observra::{RetrievalResponse, RetrievedDocument};
///
/// struct Hits(Vec<(String, f32)>);
///
/// impl RetrievalResponse for Hits {
///     fn documents(&self) -> Vec<RetrievedDocument> {
///         self.0.iter().map(|(id, s)| RetrievedDocument::new(id.clone(), f64::from(*s))).collect()
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not say which documents a retrieval found",
    note = "implement `observra::RetrievalResponse` for it (its `documents()`), or return `Vec<observra::RetrievedDocument>`"
)]
pub trait RetrievalResponse {
    /// The documents found, best first.
    fn documents(&self) -> Vec<RetrievedDocument>;
}

impl RetrievalResponse for Vec<RetrievedDocument> {
    fn documents(&self) -> Vec<RetrievedDocument> {
        self.clone()
    }
}

impl RetrievalResponse for [RetrievedDocument] {
    fn documents(&self) -> Vec<RetrievedDocument> {
        self.to_vec()
    }
}

impl RetrievalResponse for Vec<(String, f64)> {
    fn documents(&self) -> Vec<RetrievedDocument> {
        self.iter().map(|(id, s)| RetrievedDocument::new(id.clone(), *s)).collect()
    }
}

impl<T: RetrievalResponse + ?Sized> RetrievalResponse for &T {
    fn documents(&self) -> Vec<RetrievedDocument> {
        (**self).documents()
    }
}

/// The documents in the conventions' shape: `[{"id": ..., "score": ...}]`.
fn documents_json(docs: &[RetrievedDocument]) -> Json {
    Json::Array(
        docs.iter()
            .map(|d| match d.score {
                Some(s) => json!({"id": d.id, "score": s}),
                None => json!({"id": d.id}),
            })
            .collect(),
    )
}

/// Records the documents on `frame` as captured content.
pub(crate) fn record_documents(frame: &mut Frame, docs: &[RetrievedDocument]) {
    crate::policy::content::record_json(frame, sc::GEN_AI_RETRIEVAL_DOCUMENTS, &documents_json(docs));
}
