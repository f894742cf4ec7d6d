//! Helpers over a Devnet shared by the integration test and the gas-report example.
#![allow(dead_code)]

use chain::abi::AbiError;
use chain::bindings::{
    bonding_manager as bm, jobs_manager as jm, rounds_manager as rm, service_registry as sr, token,
    verifier as vf,
};
use chain::devnet::Devnet;
use chain::hashes::{self, MerkleTree};
use chain::rpc::RpcError;
use chain::{Address, Bytes, H256, U256};
use ethers_core::types::TransactionReceipt;
use ethers_signers::{LocalWallet, Signer};

pub const ETHER: u128 = 1_000_000_000_000_000_000;
pub const GWEI: u64 = 1_000_000_000;

pub struct Net {
    pub net: Devnet,
    pub deployer: LocalWallet,
    pub transcoder: LocalWallet,
    pub broadcaster: LocalWallet,
    pub delegator: LocalWallet,
}

impl Net {
    pub fn start() -> Self {
        let net = Devnet::start().expect("devnet (anvil + deploy.sh)");
        Self {
            deployer: net.wallet(0),
            transcoder: net.wallet(1),
            broadcaster: net.wallet(2),
            delegator: net.wallet(3),
            net,
        }
    }

    pub fn call<T>(&self, to: Address, data: Bytes, decode: fn(&[u8]) -> Result<T, AbiError>) -> T {
        let out = self.net.rpc.call(to, &data).expect("eth_call");
        decode(&out).expect("decode return data")
    }

    pub fn send(&self, w: &LocalWallet, to: Address, data: Bytes) -> TransactionReceipt {
        self.send_value(w, to, data, U256::zero())
    }

    pub fn send_value(
        &self,
        w: &LocalWallet,
        to: Address,
        data: Bytes,
        value: U256,
    ) -> TransactionReceipt {
        match self.net.rpc.send(w, to, data, value) {
            Ok(r) => r,
            Err(e) => panic!("transaction failed: {} ({e})", self.describe(to, &e)),
        }
    }

    /// The revert reason a transaction would get, decoded with the target contract's error table.
    pub fn revert_reason(&self, w: &LocalWallet, to: Address, data: Bytes) -> String {
        match self.net.rpc.send(w, to, data, U256::zero()) {
            Ok(r) => panic!(
                "expected a revert, got a receipt in block {:?}",
                r.block_number
            ),
            Err(e) => self.describe(to, &e),
        }
    }

    fn describe(&self, to: Address, e: &RpcError) -> String {
        let d = &self.net.deployment;
        let data = e.revert_data().unwrap_or_default();
        if to == d.jobs_manager {
            jm::describe_revert(data)
        } else if to == d.bonding_manager {
            bm::describe_revert(data)
        } else if to == d.rounds_manager {
            rm::describe_revert(data)
        } else if to == d.token {
            token::describe_revert(data)
        } else if to == d.verifier {
            vf::describe_revert(data)
        } else if to == d.service_registry {
            sr::describe_revert(data)
        } else {
            format!("{e}")
        }
    }

    pub fn block(&self) -> u64 {
        self.net.rpc.block_number().expect("block number")
    }

    pub fn round_length(&self) -> u64 {
        self.call(
            self.net.deployment.rounds_manager,
            rm::round_length(),
            rm::decode_round_length,
        )
        .as_u64()
    }

    /// Mine to the first block of the next round and initialize it.
    pub fn next_round(&self) {
        let rl = self.round_length();
        let b = self.block();
        self.net.rpc.mine(rl - b % rl).expect("mine");
        self.send(
            &self.deployer,
            self.net.deployment.rounds_manager,
            rm::initialize_round(),
        );
    }

    /// faucet + approve + bond(amount, to)
    pub fn bond(&self, w: &LocalWallet, amount: U256, to: Address) -> TransactionReceipt {
        let d = &self.net.deployment;
        self.send(w, d.token, token::faucet());
        self.send(w, d.token, token::approve(d.bonding_manager, amount));
        self.send(w, d.bonding_manager, bm::bond(amount, to))
    }
}

/// First log of event `E` in a receipt.
pub fn event<E>(
    r: &TransactionReceipt,
    topic: H256,
    decode: fn(&[H256], &[u8]) -> Result<E, AbiError>,
) -> E {
    let log = r
        .logs
        .iter()
        .find(|l| l.topics.first() == Some(&topic))
        .expect("event in receipt");
    decode(&log.topics, &log.data).expect("decode event")
}

/// What a broadcaster and a transcoder know about one segment.
pub struct Segment {
    pub seg_no: u64,
    pub data_hash: H256,
    pub transcoded_data_hash: H256,
    pub sig: Vec<u8>,
    pub receipt: H256,
}

/// Segments first..=last of a stream: input bytes and renditions are made up per segment, hashed by the
/// rules, signed by the broadcaster's wallet.
pub fn segments(
    stream: &str,
    first: u64,
    last: u64,
    broadcaster: &LocalWallet,
    renditions: usize,
) -> Vec<Segment> {
    (first..=last)
        .map(|n| {
            let input = format!("{stream} input segment {n}").into_bytes();
            let outs: Vec<Vec<u8>> = (0..renditions)
                .map(|r| format!("{stream} seg {n} rendition {r}").into_bytes())
                .collect();
            let data_hash = hashes::data_hash(&input);
            let tdh = hashes::transcoded_data_hash(&outs);
            let sig = chain::sign_segment(broadcaster, stream, n, data_hash).expect("sign");
            let receipt = hashes::receipt_hash(stream, n, data_hash, tdh, &sig);
            Segment {
                seg_no: n,
                data_hash,
                transcoded_data_hash: tdh,
                sig,
                receipt,
            }
        })
        .collect()
}

pub fn tree(segs: &[Segment]) -> MerkleTree {
    MerkleTree::new(segs.iter().map(|s| s.receipt).collect()).expect("non-empty claim")
}

pub fn addr(w: &LocalWallet) -> Address {
    w.address()
}
