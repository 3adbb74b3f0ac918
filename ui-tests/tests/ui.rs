//! Compile-pass cases for every function shape `#[traced]` supports, and
//! compile-fail cases whose `.stderr` snapshots show each error pointing at
//! the offending tokens and saying what is allowed.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("pass/*.rs");
    t.compile_fail("fail/*.rs");
}
