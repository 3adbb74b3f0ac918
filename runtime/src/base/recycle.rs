//! Strings that go from a caller's thread to the collector and come back:
//! a model call's response id is copied into one taken from this thread's
//! stock, the collector copies it out when it makes the span and gives the
//! emptied string back. So once warm a reply costs no allocation on the
//! caller's thread, and its bytes are never freed on another thread (the
//! allocator's cross-thread frees were the caller's largest cost once).
//! Bounded: at most [`MAX_POOLED`] strings of at most [`MAX_KEPT`] bytes
//! wait in the pool, [`BATCH`] in each thread's stock; the rest are freed.

use std::cell::RefCell;
use std::sync::{Mutex, PoisonError};

/// Strings the collector gave back, for any thread to take.
static POOL: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// At most this many strings wait in the pool.
const MAX_POOLED: usize = 4096;
/// A string larger than this is freed, not kept.
const MAX_KEPT: usize = 256;
/// Taken from the pool, or given back to it, this many at a time: one lock
/// for that many calls.
const BATCH: usize = 64;
/// What a new string has room for (response ids are 20 to 40 bytes).
const FRESH: usize = 64;

thread_local! {
    /// This thread's stock, taken from the pool.
    static STOCK: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// The collector's strings to give back, given in batches.
    static GIVEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// `text` in a string from this thread's stock (refilled from the pool when
/// empty); a new one only when none is at hand.
pub(crate) fn string(text: &str) -> String {
    let reused = STOCK
        .try_with(|stock| {
            let mut stock = stock.try_borrow_mut().ok()?;
            if stock.is_empty() {
                let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
                let from = pool.len().saturating_sub(BATCH);
                stock.extend(pool.drain(from..));
            }
            if stock.capacity() == 0 {
                // Room for a batch, made while a fresh string is made anyway.
                stock.reserve_exact(BATCH);
            }
            stock.pop()
        })
        .ok()
        .flatten();
    let mut s = reused.unwrap_or_else(|| String::with_capacity(FRESH.max(text.len())));
    s.push_str(text);
    s
}

/// Gives `s` back (on the collector's thread), emptied; see [`flush`].
pub(crate) fn give_back(mut s: String) {
    if s.capacity() > MAX_KEPT {
        return;
    }
    s.clear();
    let full = GIVEN
        .try_with(|given| {
            let mut given = given.borrow_mut();
            given.push(s);
            given.len() >= BATCH
        })
        .unwrap_or(false);
    if full {
        flush();
    }
}

/// Puts what this thread gave back into the pool (as much as it has room
/// for; the rest is freed).
pub(crate) fn flush() {
    let _ = GIVEN.try_with(|given| {
        let mut given = given.borrow_mut();
        if given.is_empty() {
            return;
        }
        let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
        let room = MAX_POOLED.saturating_sub(pool.len()).min(given.len());
        pool.extend(given.drain(..room));
        given.clear();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_given_back_is_taken_again_and_big_ones_are_not_kept() {
        let s = string("chatcmpl-1");
        assert_eq!(s, "chatcmpl-1");
        let at = s.as_ptr() as usize;
        let before = POOL.lock().unwrap().len();
        give_back(s);
        flush();
        assert_eq!(POOL.lock().unwrap().len(), before + 1, "given back to the pool");
        // Another thread's stock is empty: it takes from the pool, the
        // string given last first.
        let (text, ptr) = std::thread::spawn(|| {
            let s = string("msg_2");
            (s.clone(), s.as_ptr() as usize)
        })
        .join()
        .unwrap();
        assert_eq!(text, "msg_2", "the string holds only the new text");
        assert_eq!(ptr, at, "the same string, reused");
        let big = "x".repeat(MAX_KEPT * 2);
        let before = POOL.lock().unwrap().len();
        give_back(string(&big));
        flush();
        assert_eq!(POOL.lock().unwrap().len(), before, "a large string is freed, not kept");
    }
}
