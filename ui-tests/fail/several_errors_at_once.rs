#[observra::traced(kind = up, colour = "red", skip(nothing))]
fn f(x: u8) -> u8 {
    x
}
fn main() {}
