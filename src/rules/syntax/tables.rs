//! The memory of the stateful checks: bounded maps with least-recently-used eviction, and
//! [`Tables`], which sizes every check's maps so that together they fit the stateful
//! rules' share of the memory budget. When a map is full, the least recently used eighth
//! of its keys is dropped at once (amortised O(1) per insert), and counted.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

struct Slot<V> {
    value: V,
    created: u64,
    used: u64,
}

/// Heap bytes an entry of a stateful table is assumed to own beyond its inline size (the
/// strings of a remembered message or frame label): an estimate, for [`Tables`].
const ENTRY_HEAP: usize = 128;
/// Fewest keys a table keeps however small the budget.
const MIN_TABLE_KEYS: usize = 64;

/// How the stateful checks get their tables: the engine builds its checks with a
/// [`Tables::measuring`] first, which adds up what every table would hold at its nominal
/// capacity, then again with [`Tables::within`] that total and its budget, which scales
/// every capacity down (never up) so that the tables together fit. A table's cost per key
/// is its map slot (twice, for a hash map's spare capacity) and [`ENTRY_HEAP`].
pub struct Tables {
    scale: f64,
    nominal: std::cell::Cell<usize>,
    allowed: std::cell::Cell<usize>,
    /// Keys every table made here dropped to make room (history shortened), for the run
    /// summary.
    forgotten: Arc<AtomicU64>,
}

impl Tables {
    /// Nominal capacities, counted.
    pub fn measuring() -> Tables {
        Tables {
            scale: 1.0,
            nominal: std::cell::Cell::new(0),
            allowed: std::cell::Cell::new(0),
            forgotten: Arc::default(),
        }
    }

    /// Capacities scaled so that `nominal` bytes of tables fit in `budget`.
    pub fn within(nominal: usize, budget: usize) -> Tables {
        Tables {
            scale: (budget as f64 / nominal.max(1) as f64).min(1.0),
            nominal: std::cell::Cell::new(0),
            allowed: std::cell::Cell::new(0),
            forgotten: Arc::default(),
        }
    }

    /// What the tables asked for so far would hold at their nominal capacities.
    pub fn nominal(&self) -> usize {
        self.nominal.get()
    }

    /// The count of keys the tables made here dropped to make room.
    pub fn forgotten(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.forgotten)
    }

    /// What the tables asked for so far may hold at their scaled capacities.
    pub fn allowed(&self) -> usize {
        self.allowed.get()
    }

    /// Bytes one key of a `Bounded<K, V>` is counted for.
    pub fn key_bytes<K, V>() -> usize {
        2 * (std::mem::size_of::<(K, Slot<V>)>() + 1) + ENTRY_HEAP
    }

    fn cap<K, V>(&self, nominal: usize) -> usize {
        self.scaled(nominal, Self::key_bytes::<K, V>())
    }

    /// `nominal` scaled to the budget (never below the floor), both counted at `each` bytes.
    fn scaled(&self, nominal: usize, each: usize) -> usize {
        let cap =
            ((nominal as f64 * self.scale) as usize).clamp(MIN_TABLE_KEYS.min(nominal), nominal);
        self.nominal.set(self.nominal.get() + nominal * each);
        self.allowed.set(self.allowed.get() + cap * each);
        cap
    }

    /// Bytes one item of a `BoundedList<T>` is counted for.
    pub fn item_bytes<T>() -> usize {
        std::mem::size_of::<T>() + ENTRY_HEAP
    }

    /// A [`BoundedList`] of at most `nominal` items, fewer when the budget is short.
    pub fn list<T>(&self, nominal: usize) -> BoundedList<T> {
        BoundedList {
            items: Vec::new(),
            cap: self.scaled(nominal, Self::item_bytes::<T>()),
            forgotten: self.forgotten(),
        }
    }

    /// A [`Bounded`] of at most `nominal` keys, fewer when the budget is short.
    pub fn bounded<K: Hash + Eq + Clone, V>(&self, nominal: usize) -> Bounded<K, V> {
        let mut table = Bounded::new(self.cap::<K, V>(nominal));
        table.forgotten = Some(self.forgotten());
        table
    }

    /// As [`Tables::bounded`], keeping evicted entries ([`Bounded::keeping_evicted`]).
    pub fn keeping_evicted<K: Hash + Eq + Clone, V>(&self, nominal: usize) -> Bounded<K, V> {
        let mut table = Bounded::keeping_evicted(self.cap::<K, V>(nominal));
        table.forgotten = Some(self.forgotten());
        table
    }
}

/// A map with at most `cap` keys: inserting into a full map first drops the least
/// recently used eighth of the keys (by last `get_mut` / insert).
pub struct Bounded<K, V> {
    map: HashMap<K, Slot<V>>,
    cap: usize,
    clock: u64,
    /// Entries dropped to make room, kept for the owner when it asked for them.
    evicted: Option<Vec<(K, V)>>,
    /// Where entries dropped to make room are counted ([`Tables`]).
    forgotten: Option<Arc<AtomicU64>>,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    pub fn new(cap: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            cap: cap.max(1),
            clock: 0,
            evicted: None,
            forgotten: None,
        }
    }

    /// A map whose evicted entries are kept until [`Bounded::take_evicted`], for checks
    /// that settle a finding when its evidence leaves memory.
    pub fn keeping_evicted(cap: usize) -> Self {
        let mut m = Self::new(cap);
        m.evicted = Some(Vec::new());
        m
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The value, without counting as a use.
    pub fn peek(&self, k: &K) -> Option<&V> {
        self.map.get(k).map(|s| &s.value)
    }

    /// The value, counting as a use.
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        let now = self.tick();
        self.map.get_mut(k).map(|s| {
            s.used = now;
            &mut s.value
        })
    }

    /// The value for `k`, inserted with `make` when absent (evicting when full).
    pub fn get_or_insert_with(&mut self, k: K, make: impl FnOnce() -> V) -> &mut V {
        let now = self.tick();
        if !self.map.contains_key(&k) {
            self.make_room();
        }
        let slot = self.map.entry(k).or_insert_with(|| Slot {
            value: make(),
            created: now,
            used: now,
        });
        slot.used = now;
        &mut slot.value
    }

    pub fn insert(&mut self, k: K, v: V) {
        let now = self.tick();
        if let Some(s) = self.map.get_mut(&k) {
            s.value = v;
            s.used = now;
            return;
        }
        self.make_room();
        self.map.insert(
            k,
            Slot {
                value: v,
                created: now,
                used: now,
            },
        );
    }

    pub fn remove(&mut self, k: &K) -> Option<V> {
        self.map.remove(k).map(|s| s.value)
    }

    /// Entries evicted since the last call (always empty unless made with
    /// [`Bounded::keeping_evicted`]).
    pub fn take_evicted(&mut self) -> Vec<(K, V)> {
        self.evicted
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Every entry, in the order the keys were first inserted (deterministic output).
    pub fn drain(&mut self) -> Vec<(K, V)> {
        let mut all: Vec<(u64, K, V)> = self
            .map
            .drain()
            .map(|(k, s)| (s.created, k, s.value))
            .collect();
        all.sort_by_key(|(c, _, _)| *c);
        all.into_iter().map(|(_, k, v)| (k, v)).collect()
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        self.map.retain(|k, s| keep(k, &mut s.value));
    }

    fn make_room(&mut self) {
        if self.map.len() < self.cap {
            return;
        }
        let before = self.map.len();
        self.drop_least_recent();
        if let Some(count) = &self.forgotten {
            count.fetch_add((before - self.map.len()) as u64, Ordering::Relaxed);
        }
    }

    /// Drops the least recently used eighth of the keys.
    fn drop_least_recent(&mut self) {
        let n = (self.cap / 8).max(1);
        let mut ticks: Vec<u64> = self.map.values().map(|s| s.used).collect();
        let (_, cutoff, _) = ticks.select_nth_unstable(n - 1);
        let cutoff = *cutoff;
        match self.evicted.as_mut() {
            Some(log) => {
                let old: Vec<K> = self
                    .map
                    .iter()
                    .filter(|(_, s)| s.used <= cutoff)
                    .map(|(k, _)| k.clone())
                    .collect();
                let mut gone: Vec<(u64, K, V)> = old
                    .into_iter()
                    .filter_map(|k| self.map.remove(&k).map(|s| (s.created, k, s.value)))
                    .collect();
                gone.sort_by_key(|(c, _, _)| *c);
                log.extend(gone.into_iter().map(|(_, k, v)| (k, v)));
            }
            None => self.map.retain(|_, s| s.used > cutoff),
        }
    }
}

/// A list of at most `cap` items kept for the end of the capture: items past the cap are
/// not kept, and counted with the keys the tables forgot.
pub struct BoundedList<T> {
    items: Vec<T>,
    cap: usize,
    forgotten: Arc<AtomicU64>,
}

impl<T> BoundedList<T> {
    /// Keeps `item` if there is room; otherwise counts it as forgotten.
    pub fn push(&mut self, item: T) {
        if self.items.len() < self.cap {
            self.items.push(item);
        } else {
            self.forgotten.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every item, in the order pushed.
    pub fn drain(&mut self) -> std::vec::Drain<'_, T> {
        self.items.drain(..)
    }
}

/// Appends to a per-key history, dropping the oldest items beyond `cap`.
pub fn push_capped<T>(list: &mut std::collections::VecDeque<T>, item: T, cap: usize) {
    list.push_back(item);
    while list.len() > cap {
        list.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::RuleSet;

    #[test]
    fn bounded_map_evicts_least_recently_used() {
        let mut m: Bounded<u32, u32> = Bounded::keeping_evicted(8);
        for i in 0..8 {
            m.insert(i, i);
        }
        // Use 0 so that 1 is now the oldest.
        assert!(m.get_mut(&0).is_some());
        m.insert(100, 100);
        assert_eq!(m.len(), 8);
        assert!(m.peek(&0).is_some());
        assert!(m.peek(&1).is_none());
        assert_eq!(m.take_evicted(), vec![(1, 1)]);
        for i in 200..10_000 {
            m.insert(i, i);
        }
        assert!(m.len() <= 8);
    }

    #[test]
    fn bounded_lists_keep_their_first_items_and_count_the_rest() {
        let measuring = Tables::measuring();
        let _: BoundedList<u64> = measuring.list(1_000);
        assert_eq!(measuring.nominal(), 1_000 * Tables::item_bytes::<u64>());
        let tables = Tables::within(measuring.nominal(), measuring.nominal() / 10);
        let mut list: BoundedList<u64> = tables.list(1_000);
        for i in 0..1_000 {
            list.push(i);
        }
        assert_eq!(list.len(), 100);
        assert_eq!(tables.forgotten().load(Ordering::Relaxed), 900);
        assert_eq!(
            list.drain().collect::<Vec<_>>(),
            (0..100).collect::<Vec<_>>()
        );
    }

    #[test]
    fn tables_are_scaled_down_alike_to_fit_their_budget() {
        let measuring = Tables::measuring();
        let a: Bounded<u64, u64> = measuring.bounded(10_000);
        let b: Bounded<u64, String> = measuring.keeping_evicted(1_000);
        assert_eq!((a.cap, b.cap), (10_000, 1_000), "nominal when measuring");
        let nominal = measuring.nominal();
        assert_eq!(
            nominal,
            10_000 * Tables::key_bytes::<u64, u64>() + 1_000 * Tables::key_bytes::<u64, String>()
        );
        // A quarter of the budget: every table a quarter of its keys, none below the floor.
        let tables = Tables::within(nominal, nominal / 4);
        let a: Bounded<u64, u64> = tables.bounded(10_000);
        let b: Bounded<u64, String> = tables.bounded(1_000);
        let tiny: Bounded<u64, u64> = tables.bounded(100);
        assert!((2_490..=2_500).contains(&a.cap), "{}", a.cap);
        assert!((240..=250).contains(&b.cap), "{}", b.cap);
        assert_eq!(tiny.cap, MIN_TABLE_KEYS);
        // A budget beyond the need never grows a table.
        let roomy = Tables::within(nominal, usize::MAX);
        let a: Bounded<u64, u64> = roomy.bounded(10_000);
        assert_eq!(a.cap, 10_000);
    }

    #[test]
    fn the_builtin_stateful_tables_fit_their_share_of_the_default_budget() {
        let Ok(set) = RuleSet::builtin() else {
            panic!("the built-in rules load");
        };
        let measuring = Tables::measuring();
        for rule in &set.rules {
            if let Some(crate::rules::checks::CheckKind::Stateful(make)) = rule.check {
                make(&measuring);
            }
        }
        let nominal = measuring.nominal();
        let share = crate::reassembly::stateful_share(crate::reassembly::DEFAULT_BUDGET);
        println!(
            "stateful tables: {} MiB nominal, {} MiB share",
            nominal >> 20,
            share >> 20
        );
        let tables = Tables::within(nominal, share);
        let mut count = 0;
        for rule in &set.rules {
            if let Some(crate::rules::checks::CheckKind::Stateful(make)) = rule.check {
                make(&tables);
                count += 1;
            }
        }
        assert!(count >= 10, "{count} stateful checks");
        assert_eq!(tables.nominal(), nominal, "the same tables both times");
        // Within the share, but for each table's floor of keys and rounding.
        let slack = 2 * count * MIN_TABLE_KEYS * 1024;
        assert!(
            tables.allowed() <= share + slack,
            "{} > {share}",
            tables.allowed()
        );
        assert!(
            tables.allowed() + slack >= share.min(nominal),
            "the share is used"
        );
    }
}
