//! The box's chain journal in sled: every transaction it signs, written (and flushed) before it is
//! broadcast, keyed by account and nonce, with each fee attempt; the next nonce per account, reserved in the
//! same atomic write; and small persisted cursors (event watching, automation markers).
//!
//! A kill -9 at any moment therefore leaves one of: nothing (the nonce was not reserved), or a record whose
//! raw transaction can be broadcast again as it is. A restart never reuses a nonce and never leaves a gap.

use std::path::Path;

use ethers_core::types::{Address, Bytes, H256, U256};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sled::Transactional;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("chain journal {path}: {source}")]
    Open { path: String, source: sled::Error },
    #[error("chain journal: {0}")]
    Db(#[from] sled::Error),
    #[error("chain journal record is malformed: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("chain journal has no transaction {nonce} of {from:?}")]
    Missing { from: Address, nonce: u64 },
}

/// Fee terms of one signed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fee {
    Legacy {
        gas_price: U256,
    },
    Eip1559 {
        max_fee_per_gas: U256,
        max_priority_fee_per_gas: U256,
    },
}

impl Fee {
    /// The most this attempt pays per gas.
    pub fn cap(&self) -> U256 {
        match self {
            Fee::Legacy { gas_price } => *gas_price,
            Fee::Eip1559 {
                max_fee_per_gas, ..
            } => *max_fee_per_gas,
        }
    }
}

/// One signed version of a transaction (the first, or a fee-bumped replacement with the same nonce).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub hash: H256,
    pub raw: Bytes,
    pub fee: Fee,
    /// Head block when it was signed.
    pub block: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum TxState {
    /// Signed and (possibly) broadcast; no receipt with enough confirmations yet.
    Pending,
    /// Mined with enough confirmations; `success` is the receipt status.
    Mined {
        hash: H256,
        block: u64,
        success: bool,
        gas_used: U256,
    },
    /// The node refused it outright (e.g. insufficient funds); its nonce was given back.
    Rejected { reason: String },
    /// The nonce was used by a transaction this journal does not know.
    Dropped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxRecord {
    pub from: Address,
    pub nonce: u64,
    /// What it is for, e.g. `reward round 42` (shown in status and logs).
    pub label: String,
    pub to: Address,
    pub data: Bytes,
    pub value: U256,
    pub gas: U256,
    pub attempts: Vec<Attempt>,
    #[serde(flatten)]
    pub state: TxState,
}

impl TxRecord {
    pub fn is_pending(&self) -> bool {
        self.state == TxState::Pending
    }
    pub fn latest(&self) -> &Attempt {
        self.attempts
            .last()
            .expect("a record has at least one attempt")
    }
}

/// Opens a sled database, waiting up to a second for its lock: sled holds it for a moment after a `Db` of
/// this process is dropped, and another process may be about to let it go.
pub fn open_db(path: &Path) -> Result<sled::Db, sled::Error> {
    let mut tries = 0;
    loop {
        match sled::open(path) {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && tries < 20 =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

/// The error of a sled transaction that never aborts by itself.
fn storage(e: sled::transaction::TransactionError<()>) -> JournalError {
    match e {
        sled::transaction::TransactionError::Storage(e) => JournalError::Db(e),
        sled::transaction::TransactionError::Abort(()) => unreachable!("never aborted"),
    }
}

#[derive(Clone)]
pub struct Journal {
    db: sled::Db,
    txs: sled::Tree,
    next: sled::Tree,
    meta: sled::Tree,
}

fn key(from: Address, nonce: u64) -> [u8; 28] {
    let mut k = [0u8; 28];
    k[..20].copy_from_slice(from.as_bytes());
    k[20..].copy_from_slice(&nonce.to_be_bytes());
    k
}

impl Journal {
    /// Opens (or creates) the journal. Another process holding it (the daemon, while a CLI command runs with
    /// the same state directory) is waited for a second, then reported.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let db = open_db(path).map_err(|source| JournalError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self {
            txs: db.open_tree("txs")?,
            next: db.open_tree("next_nonce")?,
            meta: db.open_tree("meta")?,
            db,
        })
    }

    /// The next nonce this journal would give `from`, if it has given any.
    pub fn next_nonce(&self, from: Address) -> Result<Option<u64>, JournalError> {
        Ok(self.next.get(from.as_bytes())?.map(|v| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&v);
            u64::from_be_bytes(b)
        }))
    }

    /// Records a new signed transaction and reserves its nonce, atomically, and flushes.
    pub fn record(&self, rec: &TxRecord) -> Result<(), JournalError> {
        let value = serde_json::to_vec(rec)?;
        let k = key(rec.from, rec.nonce);
        (&self.txs, &self.next)
            .transaction(|(txs, next)| {
                txs.insert(&k[..], value.clone())?;
                next.insert(rec.from.as_bytes(), &(rec.nonce + 1).to_be_bytes()[..])?;
                Ok(())
            })
            .map_err(storage)?;
        self.db.flush()?;
        Ok(())
    }

    /// Replaces a record (a new attempt, a new state) and flushes.
    pub fn update(&self, rec: &TxRecord) -> Result<(), JournalError> {
        self.txs
            .insert(key(rec.from, rec.nonce), serde_json::to_vec(rec)?)?;
        self.db.flush()?;
        Ok(())
    }

    /// Marks a record rejected by the node and gives its nonce back when it is the last one reserved.
    pub fn reject(&self, rec: &mut TxRecord, reason: String) -> Result<(), JournalError> {
        rec.state = TxState::Rejected { reason };
        let value = serde_json::to_vec(&*rec)?;
        let k = key(rec.from, rec.nonce);
        let (from, nonce) = (rec.from, rec.nonce);
        (&self.txs, &self.next)
            .transaction(|(txs, next)| {
                txs.insert(&k[..], value.clone())?;
                if next.get(from.as_bytes())?.as_deref() == Some(&(nonce + 1).to_be_bytes()[..]) {
                    next.insert(from.as_bytes(), &nonce.to_be_bytes()[..])?;
                }
                Ok(())
            })
            .map_err(storage)?;
        self.db.flush()?;
        Ok(())
    }

    pub fn get(&self, from: Address, nonce: u64) -> Result<TxRecord, JournalError> {
        match self.txs.get(key(from, nonce))? {
            Some(v) => Ok(serde_json::from_slice(&v)?),
            None => Err(JournalError::Missing { from, nonce }),
        }
    }

    /// Every record of `from`, by nonce (a rejected nonce may appear twice in history: the newest wins).
    pub fn all(&self, from: Address) -> Result<Vec<TxRecord>, JournalError> {
        self.txs
            .scan_prefix(from.as_bytes())
            .map(|kv| Ok(serde_json::from_slice(&kv?.1)?))
            .collect()
    }

    pub fn pending(&self, from: Address) -> Result<Vec<TxRecord>, JournalError> {
        Ok(self
            .all(from)?
            .into_iter()
            .filter(TxRecord::is_pending)
            .collect())
    }

    pub fn get_meta<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, JournalError> {
        Ok(match self.meta.get(name)? {
            Some(v) => Some(serde_json::from_slice(&v)?),
            None => None,
        })
    }

    pub fn put_meta<T: Serialize>(&self, name: &str, value: &T) -> Result<(), JournalError> {
        self.meta.insert(name, serde_json::to_vec(value)?)?;
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(nonce: u64) -> TxRecord {
        TxRecord {
            from: Address::repeat_byte(1),
            nonce,
            label: format!("t{nonce}"),
            to: Address::repeat_byte(2),
            data: Bytes::from(vec![1, 2]),
            value: U256::zero(),
            gas: 21_000.into(),
            attempts: vec![Attempt {
                hash: H256::repeat_byte(nonce as u8),
                raw: Bytes::from(vec![9]),
                fee: Fee::Legacy {
                    gas_price: 7.into(),
                },
                block: 3,
            }],
            state: TxState::Pending,
        }
    }

    #[test]
    fn records_survive_reopen_and_nonces_are_reserved_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = Address::repeat_byte(1);
        {
            let j = Journal::open(dir.path()).unwrap();
            assert_eq!(j.next_nonce(a).unwrap(), None);
            j.record(&rec(0)).unwrap();
            j.record(&rec(1)).unwrap();
            let mut r0 = j.get(a, 0).unwrap();
            r0.state = TxState::Mined {
                hash: r0.latest().hash,
                block: 5,
                success: true,
                gas_used: 1.into(),
            };
            j.update(&r0).unwrap();
            j.put_meta("cursor", &42u64).unwrap();
        }
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.next_nonce(a).unwrap(), Some(2));
        assert_eq!(j.pending(a).unwrap(), vec![rec(1)]);
        assert_eq!(j.all(a).unwrap().len(), 2);
        assert_eq!(j.get_meta::<u64>("cursor").unwrap(), Some(42));
        // a rejected last nonce is given back; an earlier one is not
        let mut r1 = j.get(a, 1).unwrap();
        j.reject(&mut r1, "insufficient funds".into()).unwrap();
        assert_eq!(j.next_nonce(a).unwrap(), Some(1));
        j.record(&rec(1)).unwrap();
        j.record(&rec(2)).unwrap();
        let mut r1 = j.get(a, 1).unwrap();
        j.reject(&mut r1, "x".into()).unwrap();
        assert_eq!(j.next_nonce(a).unwrap(), Some(3));
        assert!(matches!(j.get(a, 9), Err(JournalError::Missing { .. })));
    }
}
