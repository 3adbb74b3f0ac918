//! Every function shape `#[traced]` supports compiles and keeps its meaning.
use observra::traced;
use std::fmt::Display;

#[traced]
fn plain() {}

#[traced]
fn with_return(a: u32, b: u32) -> u32 {
    a + b
}

#[traced]
fn result_io() -> std::io::Result<u8> {
    Ok(1)
}

#[traced]
fn result_question_mark(s: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = s.parse()?;
    Ok(n + 1)
}

#[traced]
fn returns_option(v: &[u8]) -> Option<&u8> {
    v.first()
}

#[traced]
fn returns_impl_trait(n: u32) -> impl Display {
    n
}

#[traced]
fn returns_impl_iterator(v: Vec<u8>) -> impl Iterator<Item = u8> {
    v.into_iter()
}

#[traced]
fn generic<T: Clone + Display, U>(x: &T, _u: U) -> T
where
    U: Send,
{
    x.clone()
}

#[traced]
fn lifetimes<'a>(a: &'a str, _b: &str) -> &'a str {
    a
}

#[traced]
fn early_return(n: i32) -> i32 {
    if n < 0 {
        return 0;
    }
    n
}

#[traced]
fn mut_param(mut n: u32) -> u32 {
    n += 1;
    n
}

#[traced]
fn pattern_param((a, b): (u8, u8)) -> u8 {
    a + b
}

#[traced]
fn inner_attribute() -> u8 {
    #![allow(unused_variables)]
    let unused = 1;
    2
}

#[traced]
unsafe fn unsafe_fn(p: *const u8) -> u8 {
    unsafe { *p }
}

#[traced]
fn never_returns_normally() -> u8 {
    panic!("boom")
}

#[traced]
async fn async_plain() {}

#[traced]
async fn async_result(s: &str) -> Result<u32, std::num::ParseIntError> {
    let n: u32 = s.parse()?;
    Ok(n)
}

#[traced]
async fn async_borrow<'a>(s: &'a str) -> &'a str {
    s
}

#[traced]
async fn async_generic<T: Send + 'static>(t: T) -> T {
    t
}

#[traced]
async fn async_impl_trait() -> impl Display {
    5
}

pub struct Agent {
    n: u32,
}

impl Agent {
    #[traced]
    pub fn by_ref(&self) -> u32 {
        self.n
    }
    #[traced]
    pub fn by_mut(&mut self) -> &mut u32 {
        &mut self.n
    }
    #[traced]
    pub fn by_value(self) -> u32 {
        self.n
    }
    #[traced]
    pub fn returns_self(n: u32) -> Self {
        Self { n }
    }
    #[traced]
    pub async fn by_ref_async(&self) -> u32 {
        self.n
    }
    #[traced]
    pub async fn by_mut_async(&mut self) -> u32 {
        self.n += 1;
        self.n
    }
}

pub trait Tool {
    fn run(&self, input: &str) -> String;
    fn run_async(&self, input: &str) -> impl std::future::Future<Output = String> + Send;
}

impl Tool for Agent {
    #[traced]
    fn run(&self, input: &str) -> String {
        format!("{}{input}", self.n)
    }
    #[traced]
    async fn run_async(&self, input: &str) -> String {
        input.to_string()
    }
}

fn main() {
    plain();
    let _ = with_return(1, 2);
    let _ = result_io();
    let _ = result_question_mark("1");
    let _ = returns_option(&[1]);
    let _ = returns_impl_trait(1).to_string();
    let _ = returns_impl_iterator(vec![1]).count();
    let _ = generic(&1, ());
    let _ = lifetimes("a", "b");
    let _ = early_return(-1);
    let _ = mut_param(1);
    let _ = pattern_param((1, 2));
    let _ = inner_attribute();
    let _ = unsafe { unsafe_fn(&1) };
    let _: fn() -> u8 = never_returns_normally;
    let mut a = Agent::returns_self(1);
    *a.by_mut() += 1;
    let _ = a.by_ref() + a.run("x").len() as u32;
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        async_plain().await;
        let _ = async_result("1").await;
        let _ = async_borrow("x").await;
        let _ = async_generic(1).await;
        let _ = async_impl_trait().await.to_string();
        let _ = a.by_ref_async().await + a.by_mut_async().await;
        let _ = a.run_async("y").await;
    });
    let _ = a.by_value();
}
