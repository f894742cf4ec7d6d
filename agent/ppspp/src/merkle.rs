//! Merkle hash trees over chunks (RFC 7574 §5): leaf = H(chunk), node = H(left || right), and any bin lying
//! wholly beyond the content has the all-zero hash. The root of the smallest full tree that covers the
//! content is the swarm ID of static content.

use crate::bin::{Bin, peaks};
use crate::wire::HashFunc;
use sha1::Digest;
use std::collections::BTreeMap;

/// A digest (up to 64 bytes; `len` set by the hash function).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hash {
    bytes: [u8; 64],
    len: u8,
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Hash {
    pub fn zero(len: usize) -> Hash {
        Hash {
            bytes: [0; 64],
            len: len as u8,
        }
    }
    pub fn from_slice(s: &[u8]) -> Option<Hash> {
        if s.is_empty() || s.len() > 64 {
            return None;
        }
        let mut bytes = [0; 64];
        bytes[..s.len()].copy_from_slice(s);
        Some(Hash {
            bytes,
            len: s.len() as u8,
        })
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// Hashes `parts` concatenated.
pub fn digest(f: HashFunc, parts: &[&[u8]]) -> Hash {
    fn run<D: Digest>(parts: &[&[u8]]) -> Hash {
        let mut d = D::new();
        for p in parts {
            d.update(p);
        }
        Hash::from_slice(&d.finalize()).expect("digest length")
    }
    match f {
        HashFunc::Sha1 => run::<sha1::Sha1>(parts),
        HashFunc::Sha224 => run::<sha2::Sha224>(parts),
        HashFunc::Sha256 => run::<sha2::Sha256>(parts),
        HashFunc::Sha384 => run::<sha2::Sha384>(parts),
        HashFunc::Sha512 => run::<sha2::Sha512>(parts),
    }
}

/// Parent hash.
pub fn node(f: HashFunc, l: &Hash, r: &Hash) -> Hash {
    digest(f, &[l.as_bytes(), r.as_bytes()])
}

/// The layer of the root of the smallest full tree covering `n` chunks.
pub fn root_layer(n: u64) -> u32 {
    if n <= 1 {
        0
    } else {
        64 - (n - 1).leading_zeros()
    }
}

/// Computes the root hash from the peak hashes of content of `n` chunks (zero hashes pad the right).
pub fn root_from_peaks(f: HashFunc, peak_hashes: &[(Bin, Hash)]) -> Option<(Bin, Hash)> {
    let (mut bin, mut h) = *peak_hashes.last()?;
    let mut rest: Vec<(Bin, Hash)> = peak_hashes[..peak_hashes.len() - 1].to_vec();
    let top_layer = root_layer(peak_hashes.iter().map(|(b, _)| b.chunk_count()).sum());
    while bin.layer() < top_layer {
        if bin.is_left() {
            h = node(f, &h, &Hash::zero(f.digest_len()));
        } else {
            let (lb, lh) = rest.pop()?;
            if lb != bin.sibling() {
                return None;
            }
            h = node(f, &lh, &h);
        }
        bin = bin.parent();
    }
    rest.is_empty().then_some((bin, h))
}

/// Hashes known for one piece of content: complete on the seeder, growing on a leecher as uncle hashes
/// are verified.
#[derive(Clone, Debug)]
pub struct HashStore {
    pub func: HashFunc,
    verified: BTreeMap<Bin, Hash>,
}

impl HashStore {
    pub fn new(func: HashFunc) -> Self {
        HashStore {
            func,
            verified: BTreeMap::new(),
        }
    }

    /// Builds the full tree over `chunks` and returns the store and the root hash (the swarm ID).
    pub fn build<'a>(
        func: HashFunc,
        chunks: impl ExactSizeIterator<Item = &'a [u8]>,
    ) -> (Self, Hash) {
        let n = chunks.len() as u64;
        let mut s = HashStore::new(func);
        let mut level: Vec<Hash> = chunks.map(|c| digest(func, &[c])).collect();
        for (i, h) in level.iter().enumerate() {
            s.verified.insert(Bin::chunk(i as u64), *h);
        }
        let top = root_layer(n.max(1));
        let zero = Hash::zero(func.digest_len());
        if level.is_empty() {
            level.push(zero);
        }
        for layer in 1..=top {
            let next: Vec<Hash> = level
                .chunks(2)
                .map(|p| node(func, &p[0], p.get(1).unwrap_or(&zero)))
                .collect();
            for (i, h) in next.iter().enumerate() {
                s.verified.insert(Bin::new(layer, i as u64), *h);
            }
            level = next;
        }
        let root = level[0];
        (s, root)
    }

    pub fn get(&self, b: Bin) -> Option<Hash> {
        self.verified.get(&b).copied()
    }
    pub fn insert(&mut self, b: Bin, h: Hash) {
        self.verified.insert(b, h);
    }
    pub fn contains(&self, b: Bin) -> bool {
        self.verified.contains_key(&b)
    }
    /// Drops all hashes of bins that end before chunk `first_kept` (live discard window).
    pub fn discard_before(&mut self, first_kept: u64) {
        self.verified.retain(|b, _| b.last_chunk() >= first_kept);
    }
    pub fn len(&self) -> usize {
        self.verified.len()
    }
    pub fn is_empty(&self) -> bool {
        self.verified.is_empty()
    }

    /// Uncle hashes a receiver needs to verify `chunk` against `top` (a verified ancestor: a peak or a
    /// munro), nearest to `top` first... (ordered top-down as RFC 7574 §5.4 advises).
    pub fn uncles(&self, chunk: u64, top: Bin) -> Vec<(Bin, Hash)> {
        let mut out = Vec::new();
        let mut b = Bin::chunk(chunk);
        while b != top && b.layer() < top.layer() {
            let s = b.sibling();
            out.push((s, self.get(s).unwrap_or(Hash::zero(self.func.digest_len()))));
            b = b.parent();
        }
        out.reverse();
        out
    }

    /// Verifies chunk data against the verified tree using verified hashes plus `candidates` (unverified
    /// hashes received from the sender). On success the path and its uncles become verified.
    pub fn verify_chunk(
        &mut self,
        chunk: u64,
        data: &[u8],
        candidates: &BTreeMap<Bin, Hash>,
    ) -> bool {
        let mut b = Bin::chunk(chunk);
        let mut h = digest(self.func, &[data]);
        let mut learned: Vec<(Bin, Hash)> = Vec::new();
        loop {
            if let Some(v) = self.get(b) {
                if v != h {
                    return false;
                }
                break;
            }
            learned.push((b, h));
            if b.layer() >= 62 {
                return false;
            }
            let s = b.sibling();
            let sh = match self.get(s).or_else(|| candidates.get(&s).copied()) {
                Some(x) => x,
                None => return false,
            };
            learned.push((s, sh));
            h = if b.is_left() {
                node(self.func, &h, &sh)
            } else {
                node(self.func, &sh, &h)
            };
            b = b.parent();
        }
        for (b, h) in learned {
            self.verified.insert(b, h);
        }
        true
    }

    /// Accepts a set of peak candidates if they form the peaks of some content size and hash to `root`.
    /// Returns the number of chunks the content has.
    pub fn accept_peaks(&mut self, root: &Hash, candidates: &BTreeMap<Bin, Hash>) -> Option<u64> {
        // Walk from chunk 0: the peak starting at `start` is the largest candidate bin starting there.
        let mut start = 0u64;
        let mut chosen = Vec::new();
        loop {
            let mut best: Option<(Bin, Hash)> = None;
            for (b, h) in candidates {
                if b.first_chunk() == start && best.is_none_or(|(bb, _)| b.layer() > bb.layer()) {
                    best = Some((*b, *h));
                }
            }
            let Some((b, h)) = best else { break };
            if let Some((prev, _)) = chosen.last()
                && b.layer() >= Bin::layer(*prev)
            {
                break;
            }
            chosen.push((b, h));
            start = b.last_chunk() + 1;
        }
        // Try every prefix (the sender may also have sent uncles starting at a peak's boundary).
        while !chosen.is_empty() {
            let n: u64 = chosen.iter().map(|(b, _)| b.chunk_count()).sum();
            if peaks(n) == chosen.iter().map(|(b, _)| *b).collect::<Vec<_>>()
                && let Some((_, r)) = root_from_peaks(self.func, &chosen)
                && r == *root
            {
                for (b, h) in &chosen {
                    self.verified.insert(*b, *h);
                }
                return Some(n);
            }
            chosen.pop();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_root_matches_peaks_and_verifies() {
        for f in [HashFunc::Sha1, HashFunc::Sha256] {
            for n in 1..20u64 {
                let data: Vec<Vec<u8>> = (0..n).map(|i| vec![i as u8; 16]).collect();
                let (full, root) = HashStore::build(f, data.iter().map(|c| c.as_slice()));
                let ph: Vec<(Bin, Hash)> = peaks(n)
                    .into_iter()
                    .map(|b| (b, full.get(b).unwrap()))
                    .collect();
                assert_eq!(root_from_peaks(f, &ph).unwrap().1, root, "n={n}");
                let mut leech = HashStore::new(f);
                let cands: BTreeMap<Bin, Hash> = ph.iter().copied().collect();
                assert_eq!(leech.accept_peaks(&root, &cands), Some(n));
                for c in (0..n).rev() {
                    let peak = *peaks(n).iter().find(|p| p.contains(Bin::chunk(c))).unwrap();
                    let unc: BTreeMap<Bin, Hash> = full.uncles(c, peak).into_iter().collect();
                    let mut bad = data[c as usize].clone();
                    bad[0] ^= 1;
                    assert!(!leech.verify_chunk(c, &bad, &unc));
                    assert!(leech.verify_chunk(c, &data[c as usize], &unc));
                }
            }
        }
    }

    #[test]
    fn wrong_peaks_rejected() {
        let f = HashFunc::Sha1;
        let data: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 8]).collect();
        let (full, root) = HashStore::build(f, data.iter().map(|c| c.as_slice()));
        let mut c: BTreeMap<Bin, Hash> = peaks(5)
            .into_iter()
            .map(|b| (b, full.get(b).unwrap()))
            .collect();
        c.insert(Bin(8), Hash::zero(20));
        let mut leech = HashStore::new(f);
        assert_eq!(leech.accept_peaks(&root, &c), None);
    }
}
