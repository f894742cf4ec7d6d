//! Receipts stored per second in the proof store, against sled itself storing the same bytes (baseline, same
//! run): batched (one flush at the end, what a burst costs) and durable (flushed per receipt, what the daemon
//! does before it answers a segment). Usage: receipt_bench [N_BATCHED] [N_DURABLE]
use std::time::Instant;

use chain::Bytes;
use proof::{EncodeMode, ProofStore, Receipt};

fn receipt(seg: u64) -> Receipt {
    let input = seg.to_be_bytes();
    let renditions = [[1u8; 32], [2u8; 32], [3u8; 32]];
    let mut r = Receipt::new(
        "bench-stream",
        seg,
        &input,
        &renditions,
        Bytes::from(vec![7u8; 65]),
        EncodeMode::Fidelity,
    );
    r.input = Some(format!("/var/lib/edge-agent/inputs/bench-stream/{seg}.ts").into());
    r.outputs = (0..3)
        .map(|i| format!("/var/lib/edge-agent/hls/bench-stream/{i}/{seg}.ts").into())
        .collect();
    r
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let m: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let receipts: Vec<Receipt> = (0..n).map(receipt).collect();

    // baseline: sled inserting the same serialized values under the same keys, one flush at the end
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path().join("raw")).unwrap();
    let values: Vec<Vec<u8>> = receipts
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap())
        .collect();
    let t = Instant::now();
    for (i, v) in values.iter().enumerate() {
        let mut k = [0u8; 16];
        k[8..].copy_from_slice(&(i as u64).to_be_bytes());
        db.insert(k, v.as_slice()).unwrap();
    }
    db.flush().unwrap();
    let raw = n as f64 / t.elapsed().as_secs_f64();

    let store = ProofStore::open(&dir.path().join("store")).unwrap();
    let t = Instant::now();
    for r in &receipts {
        store.insert_receipt(1, 100, r).unwrap();
    }
    store.flush().unwrap();
    let batched = n as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    for r in receipts.iter().take(m as usize) {
        store.put_receipt(2, 100, r).unwrap();
    }
    let durable = m as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    for i in 0..m {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&3u64.to_be_bytes());
        k[8..].copy_from_slice(&i.to_be_bytes());
        db.insert(k, values[i as usize].as_slice()).unwrap();
        db.flush().unwrap();
    }
    let raw_durable = m as f64 / t.elapsed().as_secs_f64();

    println!(
        "receipts, batched (one flush per {n}):  store {batched:>9.0}/s  sled baseline {raw:>9.0}/s  ratio {:.2}",
        batched / raw
    );
    println!(
        "receipts, durable (flush each, {m}):    store {durable:>9.0}/s  sled baseline {raw_durable:>9.0}/s  ratio {:.2}",
        durable / raw_durable
    );
}
