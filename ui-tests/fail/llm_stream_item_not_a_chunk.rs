use futures_core::Stream;
struct Bytes;
struct S;
impl Stream for S {
    type Item = Bytes;
    fn poll_next(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<Option<Bytes>> {
        std::task::Poll::Ready(None)
    }
}
#[observra::llm_call(provider = "openai", model = "gpt-4o", stream)]
fn f() -> impl Stream<Item = Bytes> {
    S
}
fn main() {
    let _ = f();
}
