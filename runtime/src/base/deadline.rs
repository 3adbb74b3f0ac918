//! Deadlines that never overflow, and sending on a bounded channel until
//! one: shared by the collector's queue and the backends' queues.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

/// `now + d`, saturating: a deadline of `Duration::MAX` means "no deadline"
/// (a hundred years), never an overflow panic.
pub(crate) fn until(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400))).unwrap_or(now)
}

/// Why [`send_within`] could not send.
pub(crate) enum SendFailure {
    /// The receiving thread has stopped.
    Stopped,
    /// The channel stayed full until the deadline.
    TimedOut,
}

/// Sends `msg` on a small control channel, retrying briefly while it is
/// momentarily full, until `until`.
pub(crate) fn send_within<T>(tx: &SyncSender<T>, mut msg: T, until: Instant) -> Result<(), SendFailure> {
    loop {
        match tx.try_send(msg) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Disconnected(_)) => return Err(SendFailure::Stopped),
            Err(TrySendError::Full(m)) => {
                if Instant::now() >= until {
                    return Err(SendFailure::TimedOut);
                }
                msg = m;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}
