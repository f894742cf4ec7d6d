//! Live-stream authentication: the Unified Merkle Tree (RFC 7574 §6.1) with signed munros.
//!
//! The source groups `chunks_per_munro` (a power of two) consecutive chunks into a munro, builds the
//! Merkle subtree over them and signs it. Signatures are Ed25519 (DNSSEC algorithm 15, RFC 8080). The
//! signed message is `bin (u64, big endian) || timestamp (u64 BE, µs) || munro hash`, binding the hash to its
//! position in the stream. The swarm ID of a live stream is `algorithm (1 byte) || public key (32 bytes)`.

use crate::bin::Bin;
use crate::merkle::Hash;
use crate::wire::sigalg;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// The source's signing key.
pub struct SourceKey(SigningKey);

impl SourceKey {
    /// From a 32-byte secret seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SourceKey(SigningKey::from_bytes(&seed))
    }
    /// The live swarm ID: DNSSEC algorithm number followed by the public key.
    pub fn swarm_id(&self) -> Vec<u8> {
        let mut v = vec![sigalg::ED25519];
        v.extend_from_slice(self.0.verifying_key().as_bytes());
        v
    }
    pub fn sign(&self, munro: Bin, timestamp: u64, hash: &Hash) -> Vec<u8> {
        self.0
            .sign(&signed_message(munro, timestamp, hash))
            .to_bytes()
            .to_vec()
    }
}

/// The public half, from a live swarm ID.
#[derive(Clone, Debug)]
pub struct SourcePublicKey(VerifyingKey);

impl SourcePublicKey {
    /// Parses a live swarm ID; only Ed25519 keys are supported.
    pub fn from_swarm_id(id: &[u8]) -> Option<Self> {
        if id.len() != 33 || id[0] != sigalg::ED25519 {
            return None;
        }
        VerifyingKey::from_bytes(id[1..].try_into().ok()?)
            .ok()
            .map(SourcePublicKey)
    }
    pub fn verify(&self, munro: Bin, timestamp: u64, hash: &Hash, sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        self.0
            .verify_strict(&signed_message(munro, timestamp, hash), &sig)
            .is_ok()
    }
}

fn signed_message(munro: Bin, timestamp: u64, hash: &Hash) -> Vec<u8> {
    let mut m = Vec::with_capacity(16 + hash.as_bytes().len());
    m.extend_from_slice(&munro.0.to_be_bytes());
    m.extend_from_slice(&timestamp.to_be_bytes());
    m.extend_from_slice(hash.as_bytes());
    m
}

/// The munro that contains `chunk` when munros are `per` chunks (a power of two).
pub fn munro_of(chunk: u64, per: u64) -> Bin {
    Bin::new(per.trailing_zeros(), chunk / per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_tamper() {
        let k = SourceKey::from_seed([7; 32]);
        let p = SourcePublicKey::from_swarm_id(&k.swarm_id()).unwrap();
        let h = Hash::from_slice(&[1; 20]).unwrap();
        let s = k.sign(Bin(7), 42, &h);
        assert!(p.verify(Bin(7), 42, &h, &s));
        assert!(!p.verify(Bin(23), 42, &h, &s));
        assert!(!p.verify(Bin(7), 43, &h, &s));
        assert!(!p.verify(Bin(7), 42, &Hash::from_slice(&[2; 20]).unwrap(), &s));
        assert!(SourcePublicKey::from_swarm_id(&[15; 5]).is_none());
        assert_eq!(munro_of(17, 8), Bin::new(3, 2));
    }
}
