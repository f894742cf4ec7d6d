//! The operator console behind `edge-fleet serve`: one operator connection to the broker keeps the
//! fleet's state in memory and drives staged rollouts; an HTTP service (Basic auth against a password
//! file) serves it as a JSON API and as one fleet-wide Prometheus endpoint.
//!
//! * [`fleet_state`]: what the console knows of every box (latest documents, a short telemetry history);
//! * [`rollout`]: staged rollouts as a sans-IO state machine;
//! * [`store`]: rollouts persisted in one JSON file, replaced atomically;
//! * [`driver`]: the tokio task that feeds broker events into both and publishes what rollouts ask;
//! * [`api`]: the HTTP routes; [`metrics`]: the Prometheus text; [`auth`]: operator passwords;
//! * [`client`]: the HTTP client behind `edge-fleet rollout`.

pub mod api;
pub mod auth;
pub mod client;
pub mod driver;
pub mod fleet_state;
pub mod metrics;
pub mod page;
pub mod rollout;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::operator::Operator;
use fleet_state::FleetState;
use rollout::{Action, Rollout};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    #[error("password file: {0}")]
    Passwords(String),
    #[error("rollout state: {0}")]
    State(String),
    #[error(transparent)]
    Fleet(#[from] crate::Error),
    #[error("http: {0}")]
    Http(String),
}

/// What `edge-fleet serve` is given.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address of the HTTP service (port 0: any free port, printed at start).
    pub listen: SocketAddr,
    /// Operator password file (`edge-fleet passwd` writes it).
    pub passwords: PathBuf,
    /// Where rollouts are kept across restarts.
    pub state_dir: PathBuf,
    /// Telemetry samples kept per box.
    pub history: usize,
}

/// The console's mutable state, behind one lock (held for short, non-async steps only).
pub struct Console {
    pub fleet: FleetState,
    pub rollouts: Vec<Rollout>,
    /// Publications asked for by operator requests (rollback), carried out by the driver.
    pub outbox: Vec<Action>,
}

pub struct Shared {
    pub console: Mutex<Console>,
    pub passwords: auth::Passwords,
    pub store: store::Store,
}

impl Shared {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Console> {
        self.console.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs the console until `shutdown` resolves: the driver over `op`, and the HTTP service.  `bound` gets
/// the address actually listened on.
pub async fn serve(
    opts: ServeOptions,
    op: Operator,
    bound: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ConsoleError> {
    let passwords = auth::Passwords::load(&opts.passwords)?;
    let store = store::Store::new(&opts.state_dir)?;
    let rollouts = store.load()?;
    tracing::info!(rollouts = rollouts.len(), "rollouts loaded");
    let shared = std::sync::Arc::new(Shared {
        console: Mutex::new(Console {
            fleet: FleetState::new(opts.history),
            rollouts,
            outbox: Vec::new(),
        }),
        passwords,
        store,
    });
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| ConsoleError::Io(opts.listen.to_string(), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ConsoleError::Io(opts.listen.to_string(), e))?;
    bound(addr);
    let mut driver = tokio::spawn(driver::run(shared.clone(), op));
    let app = api::router(shared.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await
    });
    let result = tokio::select! {
        r = &mut driver => match r {
            Ok(r) => r,
            Err(e) => Err(ConsoleError::State(format!("driver task: {e}"))),
        },
        _ = shutdown => Ok(()),
    };
    driver.abort();
    let _ = stop_tx.send(());
    let _ = http.await;
    // whatever the last step changed is on disk before we go
    let c = shared.lock();
    shared.store.save(&c.rollouts)?;
    result
}
