//! Logging set-up with a filter that can be changed while the daemon runs (fleet `set-log-level`, desired
//! config).

use anyhow::Context;
use tracing_subscriber::{
    EnvFilter, Registry, layer::SubscriberExt, reload, util::SubscriberInitExt,
};

/// Changes the live log filter.
#[derive(Clone)]
pub struct LogHandle(reload::Handle<EnvFilter, Registry>);

impl LogHandle {
    pub fn set(&self, filter: &str) -> anyhow::Result<()> {
        let f =
            EnvFilter::try_new(filter).with_context(|| format!("invalid log filter {filter:?}"))?;
        self.0.reload(f).context("reloading log filter")?;
        tracing::info!(filter, "log filter changed");
        Ok(())
    }

    pub fn current(&self) -> String {
        self.0.with_current(|f| f.to_string()).unwrap_or_default()
    }
}

impl std::fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LogHandle").field(&self.current()).finish()
    }
}

/// Installs the global subscriber (stderr, text or JSON lines) and returns the reload handle.
pub fn init(filter: &str, json: bool) -> anyhow::Result<LogHandle> {
    let filter =
        EnvFilter::try_new(filter).with_context(|| format!("invalid log filter {filter:?}"))?;
    let (layer, handle) = reload::Layer::new(filter);
    use std::io::IsTerminal;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let registry = tracing_subscriber::registry().with(layer);
    if json {
        registry.with(fmt.json()).try_init()
    } else {
        registry.with(fmt).try_init()
    }
    .context("installing the log subscriber")?;
    Ok(LogHandle(handle))
}
