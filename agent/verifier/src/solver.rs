//! The solver daemon: the Verifier's `VerifyRequest` events in, verdicts out through `callback`. Requests are
//! written to the journal before the event cursor moves past them and removed only once answered on chain,
//! so a kill -9 at any point answers every request exactly once (a second answer is refused by the contract,
//! and a request already answered is dropped after a view says so).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chain::bindings::verifier as vf;
use chain::claims::VerifyRequest;
use chain::events::{Event as WatchEvent, Watcher};
use chain::protocol::Protocol;
use chain::sender::{SendError, Sender};
use media::profiles::ProfileSet;
use serde::Serialize;
use tokio::sync::watch;

use crate::fetch::{Challenge, Fetcher};

const PENDING: &str = "verifier/pending";

#[derive(Debug, Clone)]
pub struct SolverOptions {
    pub poll: Duration,
    /// Per request to the transcoder's data.
    pub fetch_timeout: Duration,
    /// A bundle that cannot be fetched for this long fails verification (the transcoder did not provide
    /// the data it pointed to); before that it is tried again every poll.
    pub give_up_after: Duration,
    /// Every report is written here as `<request id>.json` (its keccak256 is on chain).
    pub reports_dir: PathBuf,
    pub profiles: ProfileSet,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SolverStatus {
    pub block: u64,
    pub requests_seen: u64,
    pub passed: u64,
    pub failed: u64,
    pub pending: u64,
    pub failed_txs: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SolverError {
    #[error(transparent)]
    Watch(#[from] chain::events::WatchError),
    #[error(transparent)]
    Journal(#[from] chain::journal::JournalError),
    #[error(transparent)]
    View(#[from] chain::protocol::ViewError),
    #[error(transparent)]
    Node(#[from] chain::node::NodeError),
    #[error("the solver account {0:?} is not a registered solver of the Verifier")]
    NotSolver(chain::Address),
    #[error("writing report {path}: {source}")]
    Report {
        path: String,
        source: std::io::Error,
    },
}

pub struct Solver {
    proto: Protocol,
    sender: Arc<Sender>,
    watcher: Watcher,
    fetcher: Fetcher,
    opts: SolverOptions,
    status: watch::Sender<SolverStatus>,
    unreachable_since: HashMap<u64, Instant>,
}

impl Solver {
    /// Checks the account is a solver and opens the request cursor (from the deployment's block on).
    pub async fn open(
        proto: Protocol,
        sender: Arc<Sender>,
        opts: SolverOptions,
    ) -> Result<(Self, watch::Receiver<SolverStatus>), SolverError> {
        let me = sender.address();
        let is_solver = proto
            .node
            .call(
                None,
                proto.deployment.verifier,
                &vf::is_solver(me),
                0.into(),
                None,
            )
            .await?;
        if vf::decode_is_solver(&is_solver).ok() != Some(true) {
            return Err(SolverError::NotSolver(me));
        }
        let watcher = Watcher::open(
            proto.node.clone(),
            sender.journal().clone(),
            "verifier-requests",
            vec![proto.deployment.verifier],
            vec![vf::events::VerifyRequest::TOPIC],
            proto.deployment.deploy_block,
        )?
        .deferred();
        std::fs::create_dir_all(&opts.reports_dir).map_err(|source| SolverError::Report {
            path: opts.reports_dir.display().to_string(),
            source,
        })?;
        let (status, rx) = watch::channel(SolverStatus::default());
        Ok((
            Self {
                proto,
                sender,
                watcher,
                fetcher: Fetcher::new(opts.fetch_timeout),
                opts,
                status,
                unreachable_since: HashMap::new(),
            },
            rx,
        ))
    }

    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        self.sender.settle_logged().await;
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "verifier: will retry");
                self.status
                    .send_modify(|s| s.last_error = Some(e.to_string()));
            }
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(self.opts.poll) => {}
            }
        }
    }

    fn pending(&self) -> Result<BTreeMap<u64, VerifyRequest>, SolverError> {
        Ok(self.sender.journal().get_meta(PENDING)?.unwrap_or_default())
    }

    fn set_pending(&self, p: &BTreeMap<u64, VerifyRequest>) -> Result<(), SolverError> {
        self.sender.journal().put_meta(PENDING, p)?;
        let n = p.len() as u64;
        self.status.send_modify(|s| s.pending = n);
        Ok(())
    }

    pub async fn tick(&mut self) -> Result<(), SolverError> {
        let block = self.proto.node.block_number().await?;
        self.status.send_modify(|s| s.block = block);
        let mut pending = self.pending()?;
        let mut seen = 0;
        for ev in self.watcher.poll().await? {
            if let WatchEvent::Log(l) = ev
                && let Some(r) = VerifyRequest::from_log(&l)
            {
                tracing::info!(
                    request = r.request_id,
                    job = r.job_id,
                    claim = r.claim_id,
                    segment = r.seg_no,
                    "verification requested"
                );
                pending.insert(r.request_id, r);
                seen += 1;
            }
        }
        // recorded before the cursor moves past them
        self.set_pending(&pending)?;
        self.watcher.commit()?;
        self.status.send_modify(|s| s.requests_seen += seen);
        for (id, req) in pending.clone() {
            if self.answer(&req).await? {
                pending.remove(&id);
                self.unreachable_since.remove(&id);
                self.set_pending(&pending)?;
            }
        }
        Ok(())
    }

    /// Judges and answers one request; true once it needs nothing more.
    async fn answer(&mut self, req: &VerifyRequest) -> Result<bool, SolverError> {
        let id = req.request_id;
        if self.proto.request_answered(id).await? {
            tracing::info!(request = id, "already answered");
            return Ok(true);
        }
        let c = Challenge {
            job_id: req.job_id,
            seg_no: req.seg_no,
            data_hash: req.data_hash,
            transcoded_data_hash: req.transcoded_data_hash,
        };
        let fetched = self.fetcher.bundle(&req.data_storage_hash, &c).await;
        if let Err(e) = &fetched
            && !e.is_final()
        {
            let since = *self
                .unreachable_since
                .entry(id)
                .or_insert_with(Instant::now);
            if since.elapsed() < self.opts.give_up_after {
                tracing::warn!(request = id, error = %e, "proof bundle unreachable: trying again");
                return Ok(false);
            }
        }
        let (set, options) = (self.opts.profiles.clone(), req.transcoding_options.clone());
        let j = tokio::task::spawn_blocking(move || crate::judge(&c, &set, &options, fetched))
            .await
            .expect("judging does not panic");
        let path = self.opts.reports_dir.join(format!("{id}.json"));
        std::fs::write(&path, &j.report_json).map_err(|source| SolverError::Report {
            path: path.display().to_string(),
            source,
        })?;
        let v = &j.verdict;
        match self
            .sender
            .send(self.proto.callback(id, req.transcoded_data_hash, v))
            .await
        {
            Ok(m) => {
                if v.passed {
                    tracing::info!(
                        request = id,
                        job = req.job_id,
                        segment = req.seg_no,
                        score = v.score,
                        block = m.block,
                        "verdict sent: passed"
                    );
                } else {
                    tracing::warn!(request = id, job = req.job_id, segment = req.seg_no, reason = ?j.report.reason, block = m.block, "verdict sent: FAILED");
                }
                self.status.send_modify(|s| {
                    if v.passed {
                        s.passed += 1
                    } else {
                        s.failed += 1
                    }
                });
                Ok(true)
            }
            Err(e @ SendError::WouldRevert { .. })
                if e.to_string().contains("RequestNotPending") =>
            {
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(request = id, error = %e, "sending the verdict");
                let msg = e.to_string();
                self.status.send_modify(|s| {
                    s.failed_txs += 1;
                    s.last_error = Some(msg);
                });
                Ok(false)
            }
        }
    }
}
