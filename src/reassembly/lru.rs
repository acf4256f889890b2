//! A slab of entries threaded on intrusive doubly linked lists, ordered by last use.
//!
//! The flow table keeps its flows here so that finding the least recently seen one (to
//! expire, or to evict under memory pressure) and marking one as just seen are O(1): no
//! scan of all flows per packet or per second. Each entry is on exactly one list (the
//! table uses one for open connections and one for finished ones that linger); indices are
//! stable until the entry is removed, so a hash table can map keys to them.

const NIL: u32 = u32::MAX;
/// Entries per slab chunk. The slab grows a chunk at a time: no reallocation copies the
/// whole table (a doubling `Vec` of a million flows would briefly hold both copies).
const CHUNK: usize = 4096;

struct Entry<T> {
    prev: u32,
    next: u32,
    list: u8,
    value: Option<T>,
}

#[derive(Clone, Copy)]
struct Ends {
    /// Least recently used.
    cold: u32,
    /// Most recently used.
    hot: u32,
    len: usize,
}

const EMPTY: Ends = Ends {
    cold: NIL,
    hot: NIL,
    len: 0,
};

/// Entries on `N` lists, each list ordered from cold (least recently used) to hot.
pub(super) struct Lru<T, const N: usize> {
    chunks: Vec<Vec<Entry<T>>>,
    /// Entries in use or free (the next new index).
    len_total: usize,
    free: Vec<u32>,
    lists: [Ends; N],
}

impl<T, const N: usize> Lru<T, N> {
    pub(super) fn new() -> Self {
        Lru {
            chunks: Vec::new(),
            len_total: 0,
            free: Vec::new(),
            lists: [EMPTY; N],
        }
    }

    /// Bytes one entry costs in the slab.
    pub(super) const ENTRY_SIZE: usize = std::mem::size_of::<Entry<T>>();

    pub(super) fn len(&self) -> usize {
        self.lists.iter().map(|l| l.len).sum()
    }

    /// Adds `value` as the hottest entry of `list`; returns its index.
    pub(super) fn insert(&mut self, list: usize, value: T) -> u32 {
        let entry = Entry {
            prev: NIL,
            next: NIL,
            list: list as u8,
            value: Some(value),
        };
        let i = match self.free.pop() {
            Some(i) => {
                *self.at_mut(i) = entry;
                i
            }
            None => {
                if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
                    self.chunks.push(Vec::with_capacity(CHUNK));
                }
                if let Some(c) = self.chunks.last_mut() {
                    c.push(entry);
                }
                self.len_total += 1;
                (self.len_total - 1) as u32
            }
        };
        self.link_hot(list, i);
        i
    }

    fn entry(&self, i: u32) -> Option<&Entry<T>> {
        let i = i as usize;
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    fn entry_mut(&mut self, i: u32) -> Option<&mut Entry<T>> {
        let i = i as usize;
        self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)
    }

    /// An index known to be in the slab (links and the free list only hold such).
    fn at(&self, i: u32) -> &Entry<T> {
        let i = i as usize;
        &self.chunks[i / CHUNK][i % CHUNK]
    }

    fn at_mut(&mut self, i: u32) -> &mut Entry<T> {
        let i = i as usize;
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }

    pub(super) fn get(&self, i: u32) -> Option<&T> {
        self.entry(i).and_then(|e| e.value.as_ref())
    }

    pub(super) fn get_mut(&mut self, i: u32) -> Option<&mut T> {
        self.entry_mut(i).and_then(|e| e.value.as_mut())
    }

    /// Makes `i` the hottest entry of `list` (moving it there from its current list).
    pub(super) fn touch(&mut self, i: u32, list: usize) {
        if self.get(i).is_none() {
            return;
        }
        let e = self.at(i);
        if e.list as usize == list && self.lists[list].hot == i {
            return;
        }
        self.unlink(i);
        self.link_hot(list, i);
    }

    pub(super) fn remove(&mut self, i: u32) -> Option<T> {
        self.get(i)?;
        self.unlink(i);
        self.free.push(i);
        let value = self.at_mut(i).value.take();
        if self.free.len() == self.len_total {
            // Everything is gone (end of a flood): give the memory back.
            self.chunks = Vec::new();
            self.free = Vec::new();
            self.len_total = 0;
        }
        value
    }

    /// The least recently used entry of `list`.
    pub(super) fn coldest(&self, list: usize) -> Option<u32> {
        let c = self.lists[list].cold;
        (c != NIL).then_some(c)
    }

    /// The most recently used entry of `list`.
    pub(super) fn hottest(&self, list: usize) -> Option<u32> {
        let h = self.lists[list].hot;
        (h != NIL).then_some(h)
    }

    /// The entry used just before `i` on its list.
    pub(super) fn colder(&self, i: u32) -> Option<u32> {
        let p = self.entry(i)?.prev;
        (p != NIL).then_some(p)
    }

    /// The entry used just after `i` on its list.
    #[cfg(test)]
    pub(super) fn hotter(&self, i: u32) -> Option<u32> {
        let n = self.entry(i)?.next;
        (n != NIL).then_some(n)
    }

    fn link_hot(&mut self, list: usize, i: u32) {
        let old_hot = self.lists[list].hot;
        {
            let e = self.at_mut(i);
            e.list = list as u8;
            e.prev = old_hot;
            e.next = NIL;
        }
        if old_hot == NIL {
            self.lists[list].cold = i;
        } else {
            self.at_mut(old_hot).next = i;
        }
        self.lists[list].hot = i;
        self.lists[list].len += 1;
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next, list) = {
            let e = self.at(i);
            (e.prev, e.next, e.list as usize)
        };
        if prev == NIL {
            self.lists[list].cold = next;
        } else {
            self.at_mut(prev).next = next;
        }
        if next == NIL {
            self.lists[list].hot = prev;
        } else {
            self.at_mut(next).prev = prev;
        }
        self.lists[list].len -= 1;
        let e = self.at_mut(i);
        e.prev = NIL;
        e.next = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(lru: &Lru<&'static str, 2>, list: usize) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut at = lru.coldest(list);
        while let Some(i) = at {
            out.push(*lru.get(i).unwrap_or(&"?"));
            at = lru.hotter(i);
        }
        out
    }

    #[test]
    fn touch_moves_to_the_hot_end_and_between_lists() {
        let mut lru: Lru<&'static str, 2> = Lru::new();
        let a = lru.insert(0, "a");
        let b = lru.insert(0, "b");
        let c = lru.insert(0, "c");
        assert_eq!(order(&lru, 0), ["a", "b", "c"]);
        lru.touch(a, 0);
        assert_eq!(order(&lru, 0), ["b", "c", "a"]);
        lru.touch(c, 1);
        assert_eq!(order(&lru, 0), ["b", "a"]);
        assert_eq!(order(&lru, 1), ["c"]);
        assert_eq!(lru.remove(b), Some("b"));
        assert_eq!(lru.remove(b), None, "removed once");
        assert_eq!(order(&lru, 0), ["a"]);
        let d = lru.insert(0, "d");
        assert_eq!(d, b, "a freed slot is reused");
        assert_eq!(order(&lru, 0), ["a", "d"]);
        assert_eq!(lru.coldest(0), Some(a));
        assert_eq!(lru.hottest(0), Some(d));
        assert_eq!(lru.colder(d), Some(a));
        assert_eq!(lru.len(), 3);
    }
}
