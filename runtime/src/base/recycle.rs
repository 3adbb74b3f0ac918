//! What goes from a caller's thread to the collector and comes back, so
//! once warm a call costs no allocation on the caller's thread and its
//! bytes are never freed on another thread (the allocator's cross-thread
//! frees were the caller's largest cost once). A model call's response id
//! is copied into a string taken from this thread's stock ([`string`]); the
//! collector copies it out when it makes the span and gives the emptied
//! string back. A call's frame, its side store and an agent's totals cell
//! are recycled the same way (`frame::recycled`).
//!
//! One mechanism for all ([`Recycler`]): a thread takes from its stock,
//! refilled from a shared pool [`BATCH`] at a time (one lock for that many
//! calls); the collector gives back in batches of the same size. Bounded:
//! at most `max_pooled` wait in each pool and [`BATCH`] in each thread's
//! stock; the rest are freed (and strings larger than [`MAX_KEPT`] bytes).

use std::cell::RefCell;
use std::sync::{Mutex, PoisonError};
use std::thread::LocalKey;

/// Taken from a pool, or given back to it, this many at a time.
const BATCH: usize = 64;
/// A string larger than this is freed, not kept.
const MAX_KEPT: usize = 256;
/// What a new string has room for (response ids are 20 to 40 bytes).
const FRESH: usize = 64;

/// A pool of `T`s given back by the collector, and the per-thread stocks
/// and give-back batches it is reached through.
pub(crate) struct Recycler<T: 'static> {
    pool: Mutex<Vec<T>>,
    /// A thread's stock, taken from the pool.
    stock: &'static LocalKey<RefCell<Vec<T>>>,
    /// What a thread gives back, given in batches.
    given: &'static LocalKey<RefCell<Vec<T>>>,
    /// At most this many wait in the pool.
    max_pooled: usize,
}

impl<T: 'static> Recycler<T> {
    /// A pool reached through the thread-locals `stock` and `given`,
    /// holding at most `max_pooled`.
    pub(crate) const fn new(
        stock: &'static LocalKey<RefCell<Vec<T>>>,
        given: &'static LocalKey<RefCell<Vec<T>>>,
        max_pooled: usize,
    ) -> Self {
        Recycler { pool: Mutex::new(Vec::new()), stock, given, max_pooled }
    }

    /// One from this thread's stock (refilled from the pool when empty);
    /// `None` when none is at hand. `next` is shown the one the next take
    /// will give, to ask for its memory early ([`prefetch_for_write`]).
    #[inline]
    pub(crate) fn take(&'static self, next: impl FnOnce(&T)) -> Option<T> {
        self.stock
            .try_with(|stock| {
                let mut stock = stock.try_borrow_mut().ok()?;
                if stock.is_empty() {
                    let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
                    let from = pool.len().saturating_sub(BATCH);
                    stock.extend(pool.drain(from..));
                }
                if stock.capacity() == 0 {
                    // Room for a batch, made while a fresh one is made anyway.
                    stock.reserve_exact(BATCH);
                }
                let taken = stock.pop();
                if let Some(coming) = stock.last() {
                    next(coming);
                }
                taken
            })
            .ok()
            .flatten()
    }

    /// Puts `t` back in this thread's own stock (it was taken and not
    /// used), if the stock has room; else frees it.
    pub(crate) fn keep(&'static self, t: T) {
        let _ = self.stock.try_with(|stock| {
            if let Ok(mut stock) = stock.try_borrow_mut() {
                if stock.len() < stock.capacity() {
                    stock.push(t);
                }
            }
        });
    }

    /// Gives `t` back (on the collector's thread); see [`flush`].
    pub(crate) fn give_back(&'static self, t: T) {
        let full = self
            .given
            .try_with(|given| {
                let mut given = given.borrow_mut();
                given.push(t);
                given.len() >= BATCH
            })
            .unwrap_or(false);
        if full {
            self.flush();
        }
    }

    /// Puts what this thread gave back into the pool (as much as it has
    /// room for; the rest is freed).
    pub(crate) fn flush(&'static self) {
        let _ = self.given.try_with(|given| {
            let mut given = given.borrow_mut();
            if given.is_empty() {
                return;
            }
            let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
            let room = self.max_pooled.saturating_sub(pool.len()).min(given.len());
            pool.extend(given.drain(..room));
            given.clear();
        });
    }
}

/// Asks for the memory of `*at` to be brought into this core's cache,
/// ready to be written: a recycled object was last written by the
/// collector, on another core, and fetching its cache lines when it is
/// written stalls the caller (about a fifth of a call). Asked one call
/// ahead, they arrive while that call runs. A hint only: it never faults,
/// and a CPU without `prefetchw` runs it as a no-op.
#[inline(always)]
pub(crate) fn prefetch_for_write<T: ?Sized>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        let base = (at as *const T).cast::<u8>();
        let size = std::mem::size_of_val(at);
        let mut offset = 0;
        // Every cache line the object touches, its last byte's included.
        while offset < size + 63 {
            let line = base.wrapping_add(offset.min(size.saturating_sub(1)));
            // SAFETY: `prefetchw` reads and writes nothing; it is a hint
            // that never faults, whatever the address.
            unsafe {
                std::arch::asm!("prefetchw [{0}]", in(reg) line, options(nostack, preserves_flags, readonly));
            }
            offset += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

thread_local! {
    static STRING_STOCK: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static STRINGS_GIVEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Response-id strings.
static STRINGS: Recycler<String> = Recycler::new(&STRING_STOCK, &STRINGS_GIVEN, 4096);

/// `text` in a string from this thread's stock; a new one only when none
/// is at hand.
pub(crate) fn string(text: &str) -> String {
    // The next string's first cache line (most ids fit in it), asked for early.
    let taken = STRINGS.take(|coming| prefetch_for_write(coming.as_str()));
    let mut s = taken.unwrap_or_else(|| String::with_capacity(FRESH.max(text.len())));
    s.push_str(text);
    s
}

/// Gives `s` back (on the collector's thread), emptied.
pub(crate) fn give_back(mut s: String) {
    if s.capacity() > MAX_KEPT {
        return;
    }
    s.clear();
    STRINGS.give_back(s);
}

/// Puts what this thread gave back into the pool of strings.
pub(crate) fn flush() {
    STRINGS.flush();
}

#[cfg(test)]
#[allow(clippy::vec_box, reason = "boxes stand for the recycled allocations")]
mod tests {
    use super::*;

    thread_local! {
        static TEST_STOCK: RefCell<Vec<Box<u64>>> = const { RefCell::new(Vec::new()) };
        static TEST_GIVEN: RefCell<Vec<Box<u64>>> = const { RefCell::new(Vec::new()) };
    }

    /// A recycler of its own, so no other test's collector gives to it.
    static TEST: Recycler<Box<u64>> = Recycler::new(&TEST_STOCK, &TEST_GIVEN, 2);

    #[test]
    fn what_is_given_back_is_taken_again_on_another_thread_within_the_bound() {
        assert!(TEST.take(|_| {}).is_none(), "nothing at hand yet");
        let given: Vec<Box<u64>> = (0..3).map(Box::new).collect();
        let at: Vec<usize> = given.iter().map(|b| &**b as *const u64 as usize).collect();
        for b in given {
            TEST.give_back(b);
        }
        assert!(TEST.pool.lock().unwrap().is_empty(), "given in batches");
        TEST.flush();
        assert_eq!(TEST.pool.lock().unwrap().len(), 2, "the pool keeps at most its bound; the rest is freed");
        let taken = std::thread::spawn(|| {
            let mut shown = 0;
            let a = TEST.take(|coming| shown = &**coming as *const u64 as usize).expect("from the pool");
            let b = TEST.take(|_| panic!("nothing comes after the last")).expect("from the stock");
            let none = TEST.take(|_| {});
            (&*a as *const u64 as usize, &*b as *const u64 as usize, none.is_none(), shown)
        })
        .join()
        .unwrap();
        assert_eq!((taken.0, taken.1), (at[1], at[0]), "the same boxes, the one given last first");
        assert!(taken.2, "a stock holds only what it took");
        assert_eq!(taken.3, taken.1, "each take shows the one the next take gives");
    }

    #[test]
    fn a_string_comes_back_empty_and_big_ones_are_not_kept() {
        let s = string("chatcmpl-1");
        assert_eq!(s, "chatcmpl-1");
        let big = string(&"x".repeat(MAX_KEPT * 2));
        let before = STRINGS.given.with(|g| g.borrow().len());
        give_back(big);
        assert_eq!(STRINGS.given.with(|g| g.borrow().len()), before, "a large string is freed, not kept");
        give_back(s);
        let back = STRINGS.given.with(|g| g.borrow_mut().pop()).expect("given back");
        assert!(back.is_empty() && back.capacity() >= 10, "emptied, its room kept");
    }
}
