//! The bytes the database writer's queue holds: a bound on top of its count of messages
//! (a prepared exchange holds its heads as JSON, up to twice the 64 KiB head cap, and a
//! connection's packets up to 4 MiB, so 1,024 of them could hold hundreds of MiB). The
//! sender takes a [`Charge`] before queueing a message; the writer thread drops it once
//! the message is written, which gives the bytes back.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Bytes the exchanges and packets waiting in the writer's queue may hold together.
pub const QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// What the messages in the queue hold now, in bytes ([`QUEUE_BYTES`]).
#[derive(Default)]
pub(super) struct QueueBytes {
    bytes: Mutex<usize>,
    freed: Condvar,
}

/// A message's share of [`QueueBytes`], given back when dropped.
pub(super) struct Charge {
    queued: Arc<QueueBytes>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        let mut held = self
            .queued
            .bytes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *held = held.saturating_sub(self.bytes);
        self.queued.freed.notify_all();
    }
}

impl QueueBytes {
    /// Takes `bytes` of [`QUEUE_BYTES`], waiting while the queue holds too much (but never
    /// when it holds nothing, so a message larger than the bound still goes through).
    /// `None` when `stopped` says the writer is gone, which would never give bytes back.
    pub(super) fn charge(
        queued: &Arc<QueueBytes>,
        bytes: usize,
        stopped: impl Fn() -> bool,
    ) -> Option<Charge> {
        let mut held = queued.bytes.lock().unwrap_or_else(PoisonError::into_inner);
        while *held > 0 && *held + bytes > QUEUE_BYTES {
            if stopped() {
                return None;
            }
            held = queued
                .freed
                .wait_timeout(held, Duration::from_millis(100))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *held += bytes;
        Some(Charge {
            queued: Arc::clone(queued),
            bytes,
        })
    }
}
