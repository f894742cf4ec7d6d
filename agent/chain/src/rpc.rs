//! A small blocking Ethereum JSON-RPC client over plain HTTP/1.1 (std only): enough for tools, tests and the
//! gas report against a local node. Transactions are signed locally with ethers-signers (EIP-155 legacy),
//! never by the node. The agent's async client with a tx journal will replace it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ethers_core::types::transaction::eip2718::TypedTransaction;
use ethers_core::types::{Address, Bytes, H256, TransactionReceipt, TransactionRequest, U256};
use ethers_signers::{LocalWallet, Signer};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("RPC URL {0} is not of the form http://host:port[/path]")]
    Url(String),
    #[error("RPC transport: {0}")]
    Io(#[from] std::io::Error),
    #[error("RPC HTTP status {0}")]
    Http(String),
    #[error("RPC response is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("RPC error {code}: {message}")]
    Rpc {
        code: i64,
        message: String,
        data: Option<Bytes>,
    },
    #[error("transaction {hash:?} reverted (gas used {gas_used})")]
    Reverted { hash: H256, gas_used: U256 },
    #[error("no receipt for transaction {0:?} after {1:?}")]
    Timeout(H256, Duration),
    #[error("signing: {0}")]
    Sign(String),
    #[error("unexpected RPC result: {0}")]
    Unexpected(String),
}

impl RpcError {
    /// Revert data carried by an eth_call / eth_estimateGas error, if any.
    pub fn revert_data(&self) -> Option<&[u8]> {
        match self {
            RpcError::Rpc { data: Some(d), .. } => Some(d.as_ref()),
            _ => None,
        }
    }
}

pub struct Rpc {
    host_port: String,
    path: String,
    timeout: Duration,
}

impl Rpc {
    pub fn new(url: &str) -> Result<Self, RpcError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| RpcError::Url(url.into()))?;
        let (host_port, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if !host_port.contains(':') {
            return Err(RpcError::Url(url.into()));
        }
        Ok(Self {
            host_port: host_port.into(),
            path: path.into(),
            timeout: Duration::from_secs(30),
        })
    }

    /// One JSON-RPC call; `result` on success, RpcError::Rpc (with revert data when present) on error.
    pub fn request(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let mut s = TcpStream::connect(&self.host_port)?;
        s.set_read_timeout(Some(self.timeout))?;
        write!(
            s,
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            self.path,
            self.host_port,
            body.len(),
            body
        )?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| RpcError::Http("no header end".into()))?;
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let status = head.lines().next().unwrap_or_default().to_string();
        if !status.contains(" 200") {
            return Err(RpcError::Http(status));
        }
        let mut payload = raw[split + 4..].to_vec();
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            payload = dechunk(&payload)?;
        }
        let v: Value = serde_json::from_slice(&payload)?;
        if let Some(e) = v.get("error") {
            let data = e
                .get("data")
                .and_then(|d| d.as_str().or_else(|| d.get("data").and_then(Value::as_str)));
            return Err(RpcError::Rpc {
                code: e.get("code").and_then(Value::as_i64).unwrap_or_default(),
                message: e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                data: data
                    .and_then(|h| hex::decode(h.trim_start_matches("0x")).ok())
                    .map(Bytes::from),
            });
        }
        Ok(v.get("result").cloned().unwrap_or(Value::Null))
    }

    fn quantity(&self, method: &str, params: Value) -> Result<U256, RpcError> {
        let v = self.request(method, params)?;
        serde_json::from_value(v.clone())
            .map_err(|_| RpcError::Unexpected(format!("{method}: {v}")))
    }

    pub fn chain_id(&self) -> Result<u64, RpcError> {
        Ok(self.quantity("eth_chainId", json!([]))?.as_u64())
    }

    pub fn block_number(&self) -> Result<u64, RpcError> {
        Ok(self.quantity("eth_blockNumber", json!([]))?.as_u64())
    }

    pub fn balance(&self, who: Address) -> Result<U256, RpcError> {
        self.quantity("eth_getBalance", json!([who, "latest"]))
    }

    /// The node's gas price suggestion (eth_gasPrice).
    pub fn gas_price(&self) -> Result<U256, RpcError> {
        self.quantity("eth_gasPrice", json!([]))
    }

    pub fn block_hash(&self, number: u64) -> Result<H256, RpcError> {
        let b = self.request(
            "eth_getBlockByNumber",
            json!([format!("0x{number:x}"), false]),
        )?;
        let h = b
            .get("hash")
            .cloned()
            .ok_or_else(|| RpcError::Unexpected(format!("block {number}: {b}")))?;
        serde_json::from_value(h).map_err(|e| RpcError::Unexpected(e.to_string()))
    }

    /// eth_call at the latest block; returns the return data.
    pub fn call(&self, to: Address, data: &Bytes) -> Result<Bytes, RpcError> {
        let v = self.request("eth_call", json!([{"to": to, "data": data}, "latest"]))?;
        serde_json::from_value(v.clone())
            .map_err(|_| RpcError::Unexpected(format!("eth_call: {v}")))
    }

    /// anvil / hardhat: mine `blocks` empty blocks.
    pub fn mine(&self, blocks: u64) -> Result<(), RpcError> {
        self.request("anvil_mine", json!([format!("0x{blocks:x}")]))?;
        Ok(())
    }

    /// Signs locally (EIP-155), sends, waits for the receipt. A reverted transaction is an error; a revert
    /// found while estimating gas comes back as RpcError::Rpc with the revert data.
    pub fn send(
        &self,
        wallet: &LocalWallet,
        to: Address,
        data: Bytes,
        value: U256,
    ) -> Result<TransactionReceipt, RpcError> {
        let from = wallet.address();
        let call = json!({"from": from, "to": to, "data": data, "value": value});
        let gas = self.quantity("eth_estimateGas", json!([call]))?;
        let nonce = self.quantity("eth_getTransactionCount", json!([from, "pending"]))?;
        // The node's own suggestion, as it is: it follows what recent blocks paid, so a sender that paid a
        // multiple of it would raise the next suggestion by that multiple, transaction after transaction.
        let gas_price = self.gas_price()?;
        let tx: TypedTransaction = TransactionRequest::new()
            .from(from)
            .to(to)
            .data(data)
            .value(value)
            .nonce(nonce)
            .gas(gas + gas / 5)
            .gas_price(gas_price)
            .chain_id(wallet.chain_id())
            .into();
        let sig = wallet
            .sign_transaction_sync(&tx)
            .map_err(|e| RpcError::Sign(e.to_string()))?;
        let raw = tx.rlp_signed(&sig);
        let hash: H256 =
            serde_json::from_value(self.request("eth_sendRawTransaction", json!([raw]))?)?;
        let start = Instant::now();
        loop {
            let r = self.request("eth_getTransactionReceipt", json!([hash]))?;
            if !r.is_null() {
                let receipt: TransactionReceipt = serde_json::from_value(r)?;
                if receipt.status != Some(1u64.into()) {
                    return Err(RpcError::Reverted {
                        hash,
                        gas_used: receipt.gas_used.unwrap_or_default(),
                    });
                }
                return Ok(receipt);
            }
            if start.elapsed() > self.timeout {
                return Err(RpcError::Timeout(hash, self.timeout));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, RpcError> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| RpcError::Http("bad chunk".into()))?;
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16)
            .map_err(|_| RpcError::Http("bad chunk size".into()))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if b.len() < size + 2 {
            return Err(RpcError::Http("truncated chunk".into()));
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(Rpc::new("http://127.0.0.1:8545").is_ok());
        assert!(Rpc::new("http://127.0.0.1:8545/rpc").is_ok());
        for bad in [
            "https://127.0.0.1:8545",
            "127.0.0.1:8545",
            "http://localhost",
        ] {
            assert!(matches!(Rpc::new(bad), Err(RpcError::Url(_))), "{bad}");
        }
    }

    #[test]
    fn connection_refused_is_a_transport_error() {
        // bind then drop: a port nobody listens on
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let rpc = Rpc::new(&format!("http://127.0.0.1:{port}")).unwrap();
        assert!(matches!(rpc.chain_id(), Err(RpcError::Io(_))));
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            dechunk(b"4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n").unwrap(),
            b"abcdef"
        );
        assert!(dechunk(b"9\r\nabc\r\n").is_err());
        assert!(dechunk(b"zz\r\n").is_err());
    }
}
