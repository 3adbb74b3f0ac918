trait Tool {
    #[observra::traced]
    fn run(&self) -> u8;
}
fn main() {}
