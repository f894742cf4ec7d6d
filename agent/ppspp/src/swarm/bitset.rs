//! The set of chunks a peer has (from its HAVE messages): a bounded, sliding bit set that the scheduler
//! queries for rarest-first and that the live discard window slides forward.

/// A bit set over chunk numbers: a window of at most [`BitSet::MAX_SPAN`] chunks starting at `base`
/// (bits below `base` were discarded and read as unset). Bounded: a peer cannot make us allocate more than
/// 2 MiB per channel or loop over more than that many words.
#[derive(Clone, Debug, Default)]
pub(super) struct BitSet {
    base: u64,
    words: Vec<u64>,
    /// Chunks in the set.
    len: u64,
}

impl BitSet {
    const MAX_SPAN: u64 = 1 << 24;

    pub(super) fn get(&self, i: u64) -> bool {
        if i < self.base {
            return false;
        }
        let i = i - self.base;
        self.words
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    pub(super) fn set_range(&mut self, s: u64, e: u64) {
        if self.words.is_empty() {
            self.base = s & !63;
        }
        let s = s.max(self.base);
        let e = e.min(self.base.saturating_add(Self::MAX_SPAN - 1));
        if s > e {
            return;
        }
        let (s, e) = (s - self.base, e - self.base);
        let need = (e / 64 + 1) as usize;
        if self.words.len() < need {
            self.words.resize(need, 0);
        }
        let (sw, ew) = ((s / 64) as usize, (e / 64) as usize);
        let before: u64 = self.words[sw..=ew]
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum();
        let lo = !0u64 << (s % 64);
        let hi = !0u64 >> (63 - e % 64);
        if sw == ew {
            self.words[sw] |= lo & hi;
        } else {
            self.words[sw] |= lo;
            for w in &mut self.words[sw + 1..ew] {
                *w = !0;
            }
            self.words[ew] |= hi;
        }
        let after: u64 = self.words[sw..=ew]
            .iter()
            .map(|w| u64::from(w.count_ones()))
            .sum();
        self.len += after - before;
    }

    /// How many chunks are in the set.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// Whether any chunk in `s..=e` is in the set.
    pub(super) fn any_in(&self, s: u64, e: u64) -> bool {
        let s = s.max(self.base);
        let top = self.base + self.words.len() as u64 * 64;
        let e = e.min(top.saturating_sub(1));
        if self.words.is_empty() || s > e {
            return false;
        }
        let (s, e) = (s - self.base, e - self.base);
        let (sw, ew) = ((s / 64) as usize, (e / 64) as usize);
        let lo = !0u64 << (s % 64);
        let hi = !0u64 >> (63 - e % 64);
        if sw == ew {
            return self.words[sw] & lo & hi != 0;
        }
        self.words[sw] & lo != 0
            || self.words[sw + 1..ew].iter().any(|w| *w != 0)
            || self.words[ew] & hi != 0
    }

    /// Whether every chunk in `s..=e` is in the set (word by word: `base` is a multiple of 64).
    pub(super) fn all_in(&self, s: u64, e: u64) -> bool {
        if s > e {
            return true;
        }
        if s < self.base {
            return false;
        }
        let mut a = s;
        loop {
            let b = (a | 63).min(e);
            let Some(w) = self.words.get(((a - self.base) / 64) as usize) else {
                return false;
            };
            let mask = (!0u64 << (a % 64)) & (!0u64 >> (63 - b % 64));
            if w & mask != mask {
                return false;
            }
            if b == e {
                return true;
            }
            a = b + 1;
        }
    }

    /// The lowest chunk in the set.
    pub(super) fn first(&self) -> Option<u64> {
        self.words
            .iter()
            .position(|w| *w != 0)
            .map(|i| self.base + i as u64 * 64 + u64::from(self.words[i].trailing_zeros()))
    }

    /// Forgets chunks below `first_kept` (live discard window), sliding the window forward.
    pub(super) fn discard_before(&mut self, first_kept: u64) {
        let first_kept = first_kept & !63;
        if first_kept <= self.base {
            return;
        }
        let drop = ((first_kept - self.base) / 64) as usize;
        let gone: u64 = self
            .words
            .drain(..drop.min(self.words.len()))
            .map(|w| u64::from(w.count_ones()))
            .sum();
        self.len -= gone;
        self.base = first_kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitset_ranges_bounds_and_discard() {
        let mut b = BitSet::default();
        b.set_range(100, 300);
        assert!(!b.get(99) && b.get(100) && b.get(200) && b.get(300) && !b.get(301));
        b.set_range(5, 6); // below base: clipped away
        assert!(!b.get(5));
        b.set_range(64, 64);
        assert!(b.get(64));
        // A hostile range is clipped to the window, cheaply.
        b.set_range(0, u64::MAX - 1);
        assert!(b.get(BitSet::MAX_SPAN + 63));
        assert!(!b.get(BitSet::MAX_SPAN + 64 + 64));
        assert!(b.words.len() as u64 <= BitSet::MAX_SPAN / 64);
        b.discard_before(1000);
        assert!(!b.get(500) && b.get(1000) && b.get(5000));
        let mut c = BitSet::default();
        c.set_range(3, 3);
        assert!(c.get(3) && !c.get(2) && !c.get(4));
        assert!(c.any_in(0, 3) && c.any_in(3, 1 << 40) && !c.any_in(0, 2) && !c.any_in(4, 1000));
        assert!(!BitSet::default().any_in(0, u64::MAX));
        c.set_range(130, 130);
        assert!(
            c.any_in(64, 191) && c.any_in(100, 130) && !c.any_in(4, 129) && !c.any_in(131, 1 << 30)
        );
        let mut d = BitSet::default();
        d.set_range(10, 200);
        assert!(d.all_in(10, 200) && d.all_in(63, 64) && d.all_in(70, 70) && d.all_in(5, 4));
        assert!(!d.all_in(9, 200) && !d.all_in(10, 201) && !d.all_in(0, 1000));
        d.set_range(202, 300);
        assert!(!d.all_in(10, 300) && d.all_in(202, 300));
        assert!(!BitSet::default().all_in(0, 0));
        // The count follows overlapping ranges and the discard.
        assert_eq!(d.len(), 191 + 99);
        d.set_range(150, 250);
        assert_eq!(d.len(), 191 + 99 + 1);
        d.discard_before(128);
        assert_eq!(d.len(), 191 + 99 + 1 - (128 - 10));
    }
}
