//! The agent's async JSON-RPC client to an Ethereum node: reqwest (hyper + rustls) over HTTP(S), a timeout per
//! request, retries with exponential backoff for transport failures (never for an answer the node gave), and
//! a count of every request sent so the daemon's load on a hosted RPC can be measured.
//!
//! The URL may carry an API key of a hosted provider: it is never logged; errors name only scheme, host and
//! port ([`redact`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ethers_core::types::{Address, Bloom, Bytes, H256, Log, TransactionReceipt, U64, U256};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::deployment::Deployment;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("RPC URL {0:?} is not an http:// or https:// URL")]
    Url(String),
    #[error("Ethereum node at {url} is unreachable after {attempts} attempts: {reason}")]
    Unreachable {
        url: String,
        attempts: u32,
        reason: String,
    },
    #[error("Ethereum node at {url} answered HTTP {status}")]
    Http { url: String, status: u16 },
    #[error("node error {code} from {method}: {message}")]
    Rpc {
        method: String,
        code: i64,
        message: String,
        data: Option<Bytes>,
    },
    #[error("unexpected answer to {method}: {detail}")]
    Decode { method: String, detail: String },
    #[error(
        "the node at {url} is on chain id {node}, but the deployment file is for chain id {deployment}: \
         point rpc_url at the right network or use that network's deployment file"
    )]
    WrongChain {
        url: String,
        node: u64,
        deployment: u64,
    },
    #[error(
        "no contract code at the deployment file's {name} address {address:?} on chain {chain_id}: the deployment \
         file belongs to another chain (or the chain was reset); redeploy or use the right file"
    )]
    NotDeployed {
        name: &'static str,
        address: Address,
        chain_id: u64,
    },
}

impl NodeError {
    /// Revert data carried by an eth_call / eth_estimateGas error, if any.
    pub fn revert_data(&self) -> Option<&[u8]> {
        match self {
            NodeError::Rpc { data: Some(d), .. } => Some(d.as_ref()),
            _ => None,
        }
    }

    /// The node refused the request as such (as opposed to: could not be asked).
    pub fn is_node_answer(&self) -> bool {
        matches!(self, NodeError::Rpc { .. })
    }
}

/// Transport settings.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Per-request timeout.
    pub timeout: Duration,
    /// Further attempts after a transport failure (connection refused, timeout, HTTP 5xx/429).
    pub retries: u32,
    /// First backoff; doubles per attempt up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retries: 4,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// A block header, as far as the agent needs it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub number: U64,
    pub hash: H256,
    pub parent_hash: H256,
    #[serde(default)]
    pub base_fee_per_gas: Option<U256>,
    pub timestamp: U256,
    /// Bloom filter of the block's log addresses and topics (lets a watcher skip blocks with nothing for it).
    #[serde(default)]
    pub logs_bloom: Option<Bloom>,
}

/// `eth_getLogs` filter over a block range.
#[derive(Debug, Clone)]
pub struct LogFilter {
    pub from_block: u64,
    pub to_block: u64,
    pub addresses: Vec<Address>,
    /// topic0 alternatives (empty: any)
    pub topics0: Vec<H256>,
}

#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    shown: String,
    http: reqwest::Client,
    opts: NodeOptions,
    calls: AtomicU64,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("url", &self.inner.shown)
            .finish()
    }
}

/// scheme://host[:port] of a URL: what may be shown of an RPC URL (paths and queries carry API keys).
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => "<rpc url>".into(),
        },
        Err(_) => "<rpc url>".into(),
    }
}

impl Node {
    pub fn new(url: &str, opts: NodeOptions) -> Result<Self, NodeError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| NodeError::Url(redact(url)))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(NodeError::Url(redact(url)));
        }
        let http = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(5)))
            .use_rustls_tls()
            .build()
            .map_err(|e| NodeError::Unreachable {
                url: redact(url),
                attempts: 0,
                reason: e.to_string(),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                url: url.to_string(),
                shown: redact(url),
                http,
                opts,
                calls: AtomicU64::new(0),
                next_id: AtomicU64::new(1),
            }),
        })
    }

    /// Connects and checks that the node serves the deployment's chain and that the contracts are there.
    pub async fn connect(
        url: &str,
        opts: NodeOptions,
        deployment: &Deployment,
    ) -> Result<Self, NodeError> {
        let node = Self::new(url, opts)?;
        node.check_deployment(deployment).await?;
        Ok(node)
    }

    pub async fn check_deployment(&self, deployment: &Deployment) -> Result<(), NodeError> {
        let id = self.chain_id().await?;
        if id != deployment.chain_id {
            return Err(NodeError::WrongChain {
                url: self.inner.shown.clone(),
                node: id,
                deployment: deployment.chain_id,
            });
        }
        if self.code(deployment.controller).await?.is_empty() {
            return Err(NodeError::NotDeployed {
                name: "controller",
                address: deployment.controller,
                chain_id: id,
            });
        }
        Ok(())
    }

    /// The node's URL as it may be shown (no path, no query).
    pub fn shown_url(&self) -> &str {
        &self.inner.shown
    }

    /// HTTP requests sent so far (each attempt counts: that is what a hosted RPC bills).
    pub fn calls(&self) -> u64 {
        self.inner.calls.load(Ordering::Relaxed)
    }

    /// One JSON-RPC call, retried on transport failures.
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, NodeError> {
        let v = self.request_value(method, params).await?;
        serde_json::from_value(v.clone()).map_err(|e| NodeError::Decode {
            method: method.into(),
            detail: format!("{e}: {}", truncate(&v.to_string(), 200)),
        })
    }

    async fn request_value(&self, method: &str, params: Value) -> Result<Value, NodeError> {
        let o = &self.inner.opts;
        let mut backoff = o.backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.once(method, &params).await {
                Ok(v) => return Ok(v),
                Err(Attempt::Final(e)) => return Err(e),
                Err(Attempt::Retry(reason)) => {
                    if attempt > o.retries {
                        return Err(NodeError::Unreachable {
                            url: self.inner.shown.clone(),
                            attempts: attempt,
                            reason,
                        });
                    }
                    tracing::debug!(method, attempt, %reason, "RPC attempt failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(o.max_backoff);
                }
            }
        }
    }

    async fn once(&self, method: &str, params: &Value) -> Result<Value, Attempt> {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.inner.calls.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .inner
            .http
            .post(&self.inner.url)
            .json(&body)
            .send()
            .await
            // reqwest's error text includes the URL: keep only the cause
            .map_err(|e| Attempt::Retry(transport_reason(&e)))?;
        let status = resp.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(Attempt::Retry(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(Attempt::Final(NodeError::Http {
                url: self.inner.shown.clone(),
                status: status.as_u16(),
            }));
        }
        let v: Value = resp
            .json()
            .await
            .map_err(|e| Attempt::Retry(format!("reading the answer: {}", transport_reason(&e))))?;
        if let Some(e) = v.get("error") {
            return Err(Attempt::Final(rpc_error(method, e)));
        }
        Ok(v.get("result").cloned().unwrap_or(Value::Null))
    }

    // ---- typed methods

    pub async fn chain_id(&self) -> Result<u64, NodeError> {
        Ok(self
            .request::<U64>("eth_chainId", json!([]))
            .await?
            .as_u64())
    }

    pub async fn block_number(&self) -> Result<u64, NodeError> {
        Ok(self
            .request::<U64>("eth_blockNumber", json!([]))
            .await?
            .as_u64())
    }

    /// Header of block `number`, or of the latest block when `None`; `None` when the node has no such block.
    pub async fn header(&self, number: Option<u64>) -> Result<Option<Header>, NodeError> {
        let tag = number.map_or_else(|| "latest".to_string(), |n| format!("0x{n:x}"));
        self.request("eth_getBlockByNumber", json!([tag, false]))
            .await
    }

    pub async fn balance(&self, who: Address) -> Result<U256, NodeError> {
        self.request("eth_getBalance", json!([who, "latest"])).await
    }

    pub async fn code(&self, at: Address) -> Result<Bytes, NodeError> {
        self.request("eth_getCode", json!([at, "latest"])).await
    }

    /// Transactions mined from `who` (`pending`: including those in the node's pool).
    pub async fn nonce(&self, who: Address, pending: bool) -> Result<u64, NodeError> {
        let tag = if pending { "pending" } else { "latest" };
        Ok(self
            .request::<U64>("eth_getTransactionCount", json!([who, tag]))
            .await?
            .as_u64())
    }

    /// eth_call at the latest block (or `block`), from `from` when given.
    pub async fn call(
        &self,
        from: Option<Address>,
        to: Address,
        data: &Bytes,
        value: U256,
        block: Option<u64>,
    ) -> Result<Bytes, NodeError> {
        let mut tx = json!({"to": to, "data": data});
        if let Some(f) = from {
            tx["from"] = json!(f);
        }
        if !value.is_zero() {
            tx["value"] = json!(value);
        }
        let tag = block.map_or_else(|| "latest".to_string(), |n| format!("0x{n:x}"));
        self.request("eth_call", json!([tx, tag])).await
    }

    pub async fn estimate_gas(
        &self,
        from: Address,
        to: Address,
        data: &Bytes,
        value: U256,
    ) -> Result<U256, NodeError> {
        self.request(
            "eth_estimateGas",
            json!([{"from": from, "to": to, "data": data, "value": value}]),
        )
        .await
    }

    pub async fn gas_price(&self) -> Result<U256, NodeError> {
        self.request("eth_gasPrice", json!([])).await
    }

    /// Suggested EIP-1559 priority fee; `None` when the node does not know the method.
    pub async fn max_priority_fee(&self) -> Result<Option<U256>, NodeError> {
        match self.request("eth_maxPriorityFeePerGas", json!([])).await {
            Ok(v) => Ok(Some(v)),
            Err(NodeError::Rpc { code: -32601, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn send_raw(&self, raw: &Bytes) -> Result<H256, NodeError> {
        self.request("eth_sendRawTransaction", json!([raw])).await
    }

    pub async fn receipt(&self, hash: H256) -> Result<Option<TransactionReceipt>, NodeError> {
        self.request("eth_getTransactionReceipt", json!([hash]))
            .await
    }

    pub async fn logs(&self, f: &LogFilter) -> Result<Vec<Log>, NodeError> {
        let mut filter = json!({
            "fromBlock": format!("0x{:x}", f.from_block),
            "toBlock": format!("0x{:x}", f.to_block),
            "address": f.addresses,
        });
        if !f.topics0.is_empty() {
            filter["topics"] = json!([f.topics0]);
        }
        self.request("eth_getLogs", json!([filter])).await
    }
}

enum Attempt {
    Retry(String),
    Final(NodeError),
}

fn transport_reason(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() {
        "malformed answer"
    } else {
        "transport error"
    };
    // the innermost cause (e.g. "Connection refused (os error 111)"), without the URL
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = src {
        last = Some(s.to_string());
        src = s.source();
    }
    match last {
        Some(c) => format!("{kind}: {c}"),
        None => kind.to_string(),
    }
}

fn rpc_error(method: &str, e: &Value) -> NodeError {
    // revert data: `data` as hex, or nested as {data: hex} (some nodes), or inside the message (none here)
    let data = e
        .get("data")
        .and_then(|d| d.as_str().or_else(|| d.get("data").and_then(Value::as_str)))
        .and_then(|h| hex::decode(h.trim_start_matches("0x")).ok())
        .map(Bytes::from);
    NodeError::Rpc {
        method: method.into(),
        code: e.get("code").and_then(Value::as_i64).unwrap_or_default(),
        message: truncate(
            e.get("message").and_then(Value::as_str).unwrap_or_default(),
            300,
        ),
        data,
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.len() <= n {
        s.to_string()
    } else {
        let mut end = n;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_redacted() {
        assert!(Node::new("http://127.0.0.1:8545", NodeOptions::default()).is_ok());
        assert!(Node::new("https://rpc.example/v3/KEY", NodeOptions::default()).is_ok());
        for bad in ["127.0.0.1:8545", "ws://127.0.0.1:8545", "http://", ""] {
            assert!(
                matches!(
                    Node::new(bad, NodeOptions::default()),
                    Err(NodeError::Url(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            redact("https://mainnet.example.io/v3/secretkey?x=1"),
            "https://mainnet.example.io"
        );
        assert_eq!(redact("http://127.0.0.1:8545/"), "http://127.0.0.1:8545");
        let e = Node::new("ftp://user:pw@host/secret", NodeOptions::default()).unwrap_err();
        assert!(!e.to_string().contains("secret") && !e.to_string().contains("pw"));
    }

    #[tokio::test]
    async fn unreachable_node_is_a_clear_error_after_retries() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let node = Node::new(
            &format!("http://127.0.0.1:{port}/key123"),
            NodeOptions {
                retries: 2,
                backoff: Duration::from_millis(10),
                ..Default::default()
            },
        )
        .unwrap();
        let e = node.chain_id().await.unwrap_err();
        let text = e.to_string();
        assert!(
            matches!(e, NodeError::Unreachable { attempts: 3, .. }),
            "{text}"
        );
        assert!(
            text.contains("unreachable") && !text.contains("key123"),
            "{text}"
        );
        assert_eq!(node.calls(), 3);
    }

    #[test]
    fn rpc_errors_keep_revert_data() {
        let e = rpc_error(
            "eth_call",
            &json!({"code": 3, "message": "execution reverted", "data": "0xdeadbeef"}),
        );
        assert_eq!(e.revert_data(), Some(&[0xde, 0xad, 0xbe, 0xef][..]));
        let nested = rpc_error(
            "eth_call",
            &json!({"code": -32000, "message": "m", "data": {"data": "0x01"}}),
        );
        assert_eq!(nested.revert_data(), Some(&[1][..]));
    }
}
