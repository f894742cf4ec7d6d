//! The hash rules shared with the contracts (contracts/README.md, "Hash rules"; ProtocolHashes.sol).
//! Pure functions: no I/O, no clock.

use ethers_core::types::{H256, U256};
use ethers_core::utils::keccak256;

/// Profile ID: the first 4 bytes of keccak256(profile name), e.g. `P720p30fps16x9` -> `49d54ea9`.
pub fn profile_id(name: &str) -> [u8; 4] {
    let h = keccak256(name.as_bytes());
    [h[0], h[1], h[2], h[3]]
}

/// A job's transcodingOptions: the 8-hex-character IDs of its profiles, concatenated in the job's order,
/// which is also the canonical rendition order of `transcoded_data_hash`.
pub fn transcoding_options<S: AsRef<str>>(profiles: &[S]) -> String {
    profiles
        .iter()
        .map(|p| hex::encode(profile_id(p.as_ref())))
        .collect()
}

/// dataHash = keccak256(bytes of the input segment).
pub fn data_hash(segment: &[u8]) -> H256 {
    H256(keccak256(segment))
}

/// transcodedDataHash = keccak256(keccak256(r_0) ++ keccak256(r_1) ++ ...), renditions in the job's profile
/// order (the order of transcodingOptions).
pub fn transcoded_data_hash<B: AsRef<[u8]>>(renditions_in_profile_order: &[B]) -> H256 {
    let hashes: Vec<H256> = renditions_in_profile_order
        .iter()
        .map(|r| data_hash(r.as_ref()))
        .collect();
    transcoded_data_hash_of(&hashes)
}

/// transcodedDataHash from the renditions' hashes (profile order), for when only the hashes are kept.
pub fn transcoded_data_hash_of(rendition_hashes: &[H256]) -> H256 {
    let mut cat = Vec::with_capacity(32 * rendition_hashes.len());
    for h in rendition_hashes {
        cat.extend_from_slice(h.as_bytes());
    }
    H256(keccak256(cat))
}

fn u256_be(v: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    U256::from(v).to_big_endian(&mut b);
    b
}

/// segment hash = keccak256(abi.encodePacked(bytes(streamId), uint256 segNo, bytes32 dataHash)).
pub fn segment_hash(stream_id: &str, seg_no: u64, data_hash: H256) -> H256 {
    let mut m = Vec::with_capacity(stream_id.len() + 64);
    m.extend_from_slice(stream_id.as_bytes());
    m.extend_from_slice(&u256_be(seg_no));
    m.extend_from_slice(data_hash.as_bytes());
    H256(keccak256(m))
}

/// EIP-191 (version 0x45) digest the broadcaster signs: keccak256("\x19Ethereum Signed Message:\n32" ++ hash).
pub fn eth_signed_message_hash(hash: H256) -> H256 {
    let mut m = b"\x19Ethereum Signed Message:\n32".to_vec();
    m.extend_from_slice(hash.as_bytes());
    H256(keccak256(m))
}

/// receipt hash = keccak256(abi.encodePacked(bytes(streamId), uint256 segNo, bytes32 dataHash,
/// bytes32 transcodedDataHash, bytes broadcasterSig)). This is a claim's Merkle leaf.
pub fn receipt_hash(
    stream_id: &str,
    seg_no: u64,
    data_hash: H256,
    transcoded_data_hash: H256,
    broadcaster_sig: &[u8],
) -> H256 {
    let mut m = Vec::with_capacity(stream_id.len() + 96 + broadcaster_sig.len());
    m.extend_from_slice(stream_id.as_bytes());
    m.extend_from_slice(&u256_be(seg_no));
    m.extend_from_slice(data_hash.as_bytes());
    m.extend_from_slice(transcoded_data_hash.as_bytes());
    m.extend_from_slice(broadcaster_sig);
    H256(keccak256(m))
}

/// Parent of two nodes: keccak256(min(a, b) ++ max(a, b)).
pub fn hash_pair(a: H256, b: H256) -> H256 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut m = [0u8; 64];
    m[..32].copy_from_slice(lo.as_bytes());
    m[32..].copy_from_slice(hi.as_bytes());
    H256(keccak256(m))
}

/// Sorted-pair Merkle tree over a claim's receipt hashes (leaves in segment order). Each level pairs nodes
/// (2i, 2i+1); a lone last node moves up unchanged.
#[derive(Debug, Clone)]
pub struct MerkleTree {
    levels: Vec<Vec<H256>>,
}

impl MerkleTree {
    /// None for an empty leaf list (a claim covers at least one segment).
    pub fn new(leaves: Vec<H256>) -> Option<Self> {
        if leaves.is_empty() {
            return None;
        }
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let l = levels.last().expect("non-empty");
            let up = l
                .chunks(2)
                .map(|c| {
                    if c.len() == 2 {
                        hash_pair(c[0], c[1])
                    } else {
                        c[0]
                    }
                })
                .collect();
            levels.push(up);
        }
        Some(Self { levels })
    }

    pub fn root(&self) -> H256 {
        self.levels.last().expect("at least one level")[0]
    }

    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Proof of leaf `index`: the concatenated 32-byte siblings from the leaf up (levels where the node has
    /// no sibling contribute nothing). None when out of range.
    pub fn proof(&self, mut index: usize) -> Option<Vec<u8>> {
        if index >= self.len() {
            return None;
        }
        let mut proof = Vec::new();
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sib) = level.get(index ^ 1) {
                proof.extend_from_slice(sib.as_bytes());
            }
            index /= 2;
        }
        Some(proof)
    }
}

/// The contracts' check: fold the proof's siblings into the leaf with `hash_pair` and compare to the root.
/// False for a proof that is not a whole number of 32-byte siblings.
pub fn verify_proof(proof: &[u8], root: H256, leaf: H256) -> bool {
    if proof.len() % 32 != 0 {
        return false;
    }
    proof
        .chunks(32)
        .fold(leaf, |h, sib| hash_pair(h, H256::from_slice(sib)))
        == root
}

/// Challenge rule: segment `seg_no` of a claim made in block `claim_block` must be verified when
/// uint256(keccak256(abi.encodePacked(uint256 claimBlock + 1, bytes32 blockhash(claimBlock + 1),
/// uint256 segNo))) % verificationRate == 0. `next_block_hash` is the hash of block claim_block + 1.
pub fn is_challenged(
    claim_block: u64,
    next_block_hash: H256,
    seg_no: u64,
    verification_rate: u64,
) -> bool {
    let mut m = [0u8; 96];
    m[..32].copy_from_slice(&u256_be(claim_block + 1));
    m[32..64].copy_from_slice(next_block_hash.as_bytes());
    m[64..].copy_from_slice(&u256_be(seg_no));
    (U256::from_big_endian(&keccak256(m)) % U256::from(verification_rate)).is_zero()
}

/// Why a segment signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature is {0} bytes, not 65 (r ++ s ++ v)")]
    Length(usize),
    #[error("the signature's v is {0}, not 27/28 (or 0/1)")]
    V(u8),
    #[error("the signature's s is in the upper half of the curve order (a malleated signature)")]
    HighS,
    #[error("no signer can be recovered from the signature")]
    Unrecoverable,
}

/// The address that signed segment `seg_no` of `stream_id` with `data_hash` (hash rule 5), under the same
/// rules as the contracts: 65 bytes, v in {27, 28} (0/1 accepted), s in the lower half of the order.
pub fn segment_signer(
    stream_id: &str,
    seg_no: u64,
    data_hash: H256,
    sig: &[u8],
) -> Result<ethers_core::types::Address, SignatureError> {
    // secp256k1n / 2
    const HALF_N: [u8; 32] = [
        0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b,
        0x20, 0xa0,
    ];
    if sig.len() != 65 {
        return Err(SignatureError::Length(sig.len()));
    }
    let v = match sig[64] {
        0 | 1 => sig[64] + 27,
        27 | 28 => sig[64],
        other => return Err(SignatureError::V(other)),
    };
    if sig[32..64] > HALF_N[..] {
        return Err(SignatureError::HighS);
    }
    let signature = ethers_core::types::Signature {
        r: U256::from_big_endian(&sig[..32]),
        s: U256::from_big_endian(&sig[32..64]),
        v: v as u64,
    };
    let digest = eth_signed_message_hash(segment_hash(stream_id, seg_no, data_hash));
    signature
        .recover(ethers_core::types::RecoveryMessage::Hash(digest))
        .map_err(|_| SignatureError::Unrecoverable)
}

#[cfg(test)]
mod tests {
    #[test]
    fn segment_signatures_are_recovered_under_the_contracts_rules() {
        use ethers_signers::Signer;
        let w: ethers_signers::LocalWallet =
            "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
                .parse()
                .unwrap();
        let dh = super::data_hash(b"segment bytes");
        let mut sig = crate::sign_segment(&w, "s1", 3, dh).unwrap();
        assert_eq!(super::segment_signer("s1", 3, dh, &sig), Ok(w.address()));
        assert_ne!(
            super::segment_signer("s1", 4, dh, &sig),
            Ok(w.address()),
            "another segment"
        );
        assert_ne!(
            super::segment_signer("s2", 3, dh, &sig),
            Ok(w.address()),
            "another stream"
        );
        let mut v01 = sig.clone();
        v01[64] -= 27;
        assert_eq!(
            super::segment_signer("s1", 3, dh, &v01),
            Ok(w.address()),
            "v as 0/1"
        );
        assert_eq!(
            super::segment_signer("s1", 3, dh, &sig[..64]),
            Err(super::SignatureError::Length(64))
        );
        sig[64] = 29;
        assert_eq!(
            super::segment_signer("s1", 3, dh, &sig),
            Err(super::SignatureError::V(29))
        );
        // s -> n - s with v flipped is the same signature malleated: refused
        let n = super::U256::from_dec_str(
            "115792089237316195423570985008687907852837564279074904382605163141518161494337",
        )
        .unwrap();
        let s = super::U256::from_big_endian(&v01[32..64]);
        let mut high = v01.clone();
        (n - s).to_big_endian(&mut high[32..64]);
        high[64] = 28 - (v01[64] % 2);
        assert_eq!(
            super::segment_signer("s1", 3, dh, &high),
            Err(super::SignatureError::HighS)
        );
    }

    use super::*;

    #[test]
    fn profile_ids_match_the_protocol_table() {
        let table = [
            ("P720p60fps16x9", "a7ac137a"),
            ("P720p30fps16x9", "49d54ea9"),
            ("P720p25fps16x9", "e4a64019"),
            ("P720p30fps4x3", "79332fe7"),
            ("P576p30fps16x9", "5ecf4b52"),
            ("P576p25fps16x9", "8b1843d6"),
            ("P360p30fps16x9", "93c717e7"),
            ("P360p25fps16x9", "7cd40fc7"),
            ("P360p30fps4x3", "b60382a0"),
            ("P240p30fps16x9", "c0a6517a"),
            ("P240p25fps16x9", "1301a7d0"),
            ("P240p30fps4x3", "d435c53a"),
            ("P144p30fps16x9", "fca40bf9"),
            ("P144p25fps16x9", "03f01d1f"),
        ];
        for (name, id) in table {
            assert_eq!(hex::encode(profile_id(name)), id, "{name}");
        }
        assert_eq!(
            transcoding_options(&["P720p30fps16x9", "P360p30fps16x9"]),
            "49d54ea993c717e7"
        );
    }

    #[test]
    fn merkle_proofs_roundtrip_for_every_leaf_of_every_size() {
        for n in 1..=33u64 {
            let leaves: Vec<H256> = (0..n).map(|i| H256(keccak256(i.to_be_bytes()))).collect();
            let tree = MerkleTree::new(leaves.clone()).unwrap();
            for (i, leaf) in leaves.iter().enumerate() {
                let p = tree.proof(i).unwrap();
                assert!(verify_proof(&p, tree.root(), *leaf), "n={n} i={i}");
                assert!(
                    !verify_proof(&p, tree.root(), H256::repeat_byte(7)),
                    "foreign leaf n={n} i={i}"
                );
                if !p.is_empty() {
                    let mut bad = p.clone();
                    bad[0] ^= 1;
                    assert!(
                        !verify_proof(&bad, tree.root(), *leaf),
                        "flipped n={n} i={i}"
                    );
                    assert!(
                        !verify_proof(&p[..p.len() - 1], tree.root(), *leaf),
                        "truncated"
                    );
                }
            }
            assert!(tree.proof(n as usize).is_none());
        }
        assert!(MerkleTree::new(vec![]).is_none());
    }

    #[test]
    fn transcoded_data_hash_depends_on_rendition_order() {
        let a = transcoded_data_hash(&[b"720p".as_slice(), b"360p".as_slice()]);
        let b = transcoded_data_hash(&[b"360p".as_slice(), b"720p".as_slice()]);
        assert_ne!(a, b);
        let mut cat = keccak256(b"720p").to_vec();
        cat.extend_from_slice(&keccak256(b"360p"));
        assert_eq!(a, H256(keccak256(cat)));
    }
}
