//! `#[llm_call(request = ...)]`: the model and parameters come from a value
//! implementing `observra::LlmRequest`; `model` may be left out, or given
//! to override the request's.

struct Ask {
    model: String,
    temperature: f32,
}

impl observra::LlmRequest for Ask {
    fn model(&self) -> &str {
        &self.model
    }
    fn parameters(&self) -> observra::RequestParams {
        let mut p = observra::RequestParams::default();
        p.temperature = Some(observra::widen_f32(self.temperature));
        p
    }
}

#[observra::llm_call(provider = "openai", request = req)]
fn by_request(req: &Ask) -> observra::Usage {
    let _ = req;
    observra::Usage::new(1, 1)
}

#[observra::llm_call(provider = "openai", request = req, model = "gpt-4o", max_tokens = 10)]
async fn by_request_with_overrides(req: Ask) -> observra::Usage {
    let _ = req.model;
    observra::Usage::new(1, 1)
}

fn main() {
    let _ = by_request(&Ask { model: "gpt-4o-mini".into(), temperature: 0.2 });
    let _ = by_request_with_overrides(Ask { model: "gpt-4o-mini".into(), temperature: 0.2 });
}
