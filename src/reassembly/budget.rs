//! One memory budget for the whole process, shared by every worker's flow table.
//!
//! Each table counts the bytes its flows hold exactly, and reserves them from the shared
//! budget in chunks, so the atomic is touched about once per [`CHUNK`] of growth rather
//! than per packet. When the budget is full a table cannot grow: it evicts its own coldest
//! flows until what it holds fits in what it has already reserved. Workers thus compete
//! for free room until the budget is reached, then each keeps the share it had (flows are
//! spread over workers by hash, so shares end up close to even). The total never exceeds
//! the budget by more than one chunk per worker, whatever the number of workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Granularity of reservations from the shared budget.
pub const CHUNK: usize = 256 * 1024;

/// Default budget: the bound for the whole process.
pub const DEFAULT_BUDGET: usize = 256 * 1024 * 1024;

/// The flow tables' share of a process budget (`--memory-budget` bounds the whole process,
/// not only the flows): 1/2. Of the rest, [`fragment_share`] goes to the IP fragment
/// table, [`stateful_share`] to the stateful rules' tables, and the remaining quarter
/// covers what is bounded but not counted byte by byte: the
/// capture file's resident mapped pages (at most two release steps), the batches between
/// reader and workers, exchanges waiting to be put in order, the SQLite writer's queue and
/// page cache, thread stacks, the binary, and the allocator's overhead on the flows' many
/// small allocations.
pub fn flow_share(total: usize) -> usize {
    total / 2
}

/// The stateful rules' tables' share of a process budget: 1/8 (32 MiB of the default; their
/// nominal capacities would hold about 214 MiB, so by default each table keeps about 15 %
/// of its nominal keys, and a budget of 1.7 GiB or more keeps them all).
pub fn stateful_share(total: usize) -> usize {
    total / 8
}

/// The IP fragment table's share of a process budget: 1/8, at most 32 MiB.
pub fn fragment_share(total: usize) -> usize {
    (total / 8).min(32 * 1024 * 1024)
}

/// Bytes that all flow tables of a run may hold together.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    pub fn new(limit: usize) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes reserved by all tables now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn try_take(&self, n: usize) -> bool {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            // One chunk of grace, so a table that holds nothing can always start.
            if cur + n > self.limit.max(CHUNK) {
                return false;
            }
            match self.used.compare_exchange_weak(
                cur,
                cur + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    fn give_back(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// One table's share of the budget.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    reserved: usize,
}

impl Reservation {
    pub fn new(budget: Arc<MemoryBudget>) -> Self {
        Reservation {
            budget,
            reserved: 0,
        }
    }

    /// Adjusts the reservation to cover `held` bytes. False when the budget has no room
    /// left for the growth: the caller must shed bytes until [`Reservation::covers`] holds.
    pub fn fit(&mut self, held: usize) -> bool {
        if held > self.reserved {
            let want = held.div_ceil(CHUNK) * CHUNK;
            if !self.budget.try_take(want - self.reserved) {
                return false;
            }
            self.reserved = want;
        } else if held + 2 * CHUNK < self.reserved {
            let keep = held.div_ceil(CHUNK) * CHUNK + CHUNK;
            self.budget.give_back(self.reserved - keep);
            self.reserved = keep;
        }
        true
    }

    pub fn covers(&self, held: usize) -> bool {
        held <= self.reserved
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.reserved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_share_one_budget_and_give_back() {
        let budget = MemoryBudget::new(4 * CHUNK);
        let mut a = Reservation::new(Arc::clone(&budget));
        let mut b = Reservation::new(Arc::clone(&budget));
        assert!(a.fit(3 * CHUNK));
        assert!(b.fit(CHUNK));
        assert_eq!(budget.used(), 4 * CHUNK);
        assert!(!b.fit(CHUNK + 1), "full: b cannot grow");
        assert!(b.covers(CHUNK));
        assert!(a.fit(0), "shrinking always fits");
        assert!(budget.used() <= 2 * CHUNK);
        assert!(b.fit(2 * CHUNK), "room freed by a is b's to take");
        drop(a);
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}
