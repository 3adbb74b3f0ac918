struct Secret(String);
#[observra::traced(args)]
fn f(s: Secret, n: u8) -> usize {
    s.0.len() + n as usize
}
fn main() {}
