//! Bin numbers (RFC 7574 §4.2): a binary-tree numbering of chunk ranges.
//!
//! Chunk `i` is bin `2*i`; a bin at layer `l` with offset `o` is `((2*o + 1) << l) - 1` and covers chunks
//! `o << l ..= ((o + 1) << l) - 1`.

/// A bin number (64-bit internally; the 32-bit wire form is converted at the codec).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Bin(pub u64);

impl Bin {
    /// The bin of a single chunk.
    pub fn chunk(i: u64) -> Bin {
        Bin(i * 2)
    }
    /// The bin at `layer` with `offset`.
    pub fn new(layer: u32, offset: u64) -> Bin {
        Bin(((2 * offset + 1) << layer) - 1)
    }
    /// Layer (0 for single chunks).
    pub fn layer(self) -> u32 {
        self.0.trailing_ones()
    }
    /// Offset within its layer.
    pub fn offset(self) -> u64 {
        (self.0 + 1) >> (self.layer() + 1)
    }
    /// First chunk covered.
    pub fn first_chunk(self) -> u64 {
        self.offset() << self.layer()
    }
    /// Last chunk covered (inclusive).
    pub fn last_chunk(self) -> u64 {
        ((self.offset() + 1) << self.layer()) - 1
    }
    /// Number of chunks covered.
    pub fn chunk_count(self) -> u64 {
        1u64 << self.layer()
    }
    pub fn parent(self) -> Bin {
        Bin::new(self.layer() + 1, self.offset() >> 1)
    }
    pub fn sibling(self) -> Bin {
        Bin::new(self.layer(), self.offset() ^ 1)
    }
    pub fn is_left(self) -> bool {
        self.offset() & 1 == 0
    }
    pub fn left(self) -> Option<Bin> {
        let l = self.layer();
        (l > 0).then(|| Bin::new(l - 1, self.offset() << 1))
    }
    pub fn right(self) -> Option<Bin> {
        let l = self.layer();
        (l > 0).then(|| Bin::new(l - 1, (self.offset() << 1) | 1))
    }
    pub fn contains(self, other: Bin) -> bool {
        self.first_chunk() <= other.first_chunk() && other.last_chunk() <= self.last_chunk()
    }
}

/// The peak bins of content of `n` chunks (RFC 7574 §5.3): the largest complete subtrees, left to right.
pub fn peaks(n: u64) -> Vec<Bin> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for layer in (0..64u32).rev() {
        if n & (1u64 << layer) != 0 {
            out.push(Bin::new(layer, start >> layer));
            start += 1u64 << layer;
        }
    }
    out
}

/// Splits the inclusive chunk range `[start, end]` into the minimal list of aligned bins.
pub fn range_to_bins(start: u64, end: u64) -> Vec<Bin> {
    let mut out = Vec::new();
    let mut s = start;
    while s <= end {
        let mut layer = 0u32;
        while layer < 63 {
            let next = layer + 1;
            if s & ((1u64 << next) - 1) != 0 || s + (1u64 << next) - 1 > end {
                break;
            }
            layer = next;
        }
        out.push(Bin::new(layer, s >> layer));
        match s.checked_add(1u64 << layer) {
            Some(v) => s = v,
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_matches_rfc_figure() {
        // RFC 7574 Figure 2: bins 0..=14 over 8 chunks.
        assert_eq!(Bin(7).layer(), 3);
        assert_eq!((Bin(7).first_chunk(), Bin(7).last_chunk()), (0, 7));
        assert_eq!((Bin(5).first_chunk(), Bin(5).last_chunk()), (2, 3));
        assert_eq!(Bin(1).parent(), Bin(3));
        assert_eq!(Bin(5).parent(), Bin(3));
        assert_eq!(Bin(4).sibling(), Bin(6));
        assert_eq!(Bin(3).sibling(), Bin(11));
        assert_eq!(Bin(3).left(), Some(Bin(1)));
        assert_eq!(Bin(3).right(), Some(Bin(5)));
        assert!(Bin(7).contains(Bin(12)));
        assert!(!Bin(3).contains(Bin(8)));
    }

    #[test]
    fn peaks_and_ranges() {
        assert_eq!(peaks(7), vec![Bin(3), Bin(9), Bin(12)]);
        assert_eq!(peaks(8), vec![Bin(7)]);
        assert_eq!(range_to_bins(0, 6), vec![Bin(3), Bin(9), Bin(12)]);
        assert_eq!(range_to_bins(1, 4), vec![Bin(2), Bin(5), Bin(8)]);
        for s in 0..40u64 {
            for e in s..40 {
                let bins = range_to_bins(s, e);
                let mut next = s;
                for b in bins {
                    assert_eq!(b.first_chunk(), next);
                    next = b.last_chunk() + 1;
                }
                assert_eq!(next, e + 1);
            }
        }
    }
}
