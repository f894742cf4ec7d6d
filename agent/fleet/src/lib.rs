//! Fleet management over MQTT v5 for edge transcoder boxes.
//!
//! * Device side: [`device::run`] with a [`device::Hooks`] implementation from the daemon.
//! * Operator side: [`operator::Operator`] (used by the `edge-fleet` CLI), and the operator console
//!   behind `edge-fleet serve` in [`console`] (JSON API, fleet-wide metrics, staged rollouts).
//! * The protocol rules live in the sans-IO [`core::Core`]; the topics in [`topics`]; wire documents in
//!   [`proto`]; the PKI in [`pki`]; a broker harness for tests in [`testkit`].

pub mod config;
#[cfg(feature = "console")]
pub mod console;
pub mod core;
pub mod device;
pub mod operator;
pub mod pki;
pub mod proto;
pub mod provision;
pub mod standalone;
pub mod sysstat;
pub mod testkit;
pub mod tls;
pub mod topics;
pub mod validate;
pub mod window;

pub use config::DeviceConfig;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("fleet config: {0}")]
    Config(String),
    #[error("identity: {0}")]
    Identity(String),
    #[error("mqtt: {0}")]
    Mqtt(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("{0}")]
    Other(String),
}
