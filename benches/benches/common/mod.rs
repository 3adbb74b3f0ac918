//! The work every benchmarked function does, so the figures compare the
//! instrumentation and nothing else.

use divan::black_box;

/// About 100 ns of work: FNV-1a over 128 bytes. A realistic function body
/// is far longer (a model call takes milliseconds); a body of a few
/// nanoseconds would make any per-call check look like a large ratio.
#[inline(always)]
pub fn work(x: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ x;
    for i in 0..128u64 {
        h ^= black_box(i);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
