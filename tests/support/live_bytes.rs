//! A global allocator that counts live heap bytes (allocated minus freed,
//! on every thread), for the tests and benches that bound memory. A binary
//! installs it with `#[global_allocator] static ALLOC: LiveBytes = LiveBytes;`
//! and reads [`LiveBytes::now`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering};

static LIVE: AtomicI64 = AtomicI64::new(0);

/// The system allocator, counting live heap bytes.
pub struct LiveBytes;

impl LiveBytes {
    /// Live heap bytes now (meaningful only where this is the global allocator).
    pub fn now() -> i64 {
        LIVE.load(Ordering::Relaxed)
    }
}

unsafe impl GlobalAlloc for LiveBytes {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
