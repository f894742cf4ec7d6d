//! The two pieces of the systemd notify protocol a `Type=notify` service needs (sd_notify(3)): readiness and
//! status messages, and watchdog keep-alives.  Plain datagrams on `$NOTIFY_SOCKET`, no libsystemd.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A handle on `$NOTIFY_SOCKET`; all sends are no-ops when the service was not started by systemd.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    socket: Option<String>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment.
    pub fn from_env() -> Self {
        Self::from_vars(|k| std::env::var(k).ok(), std::process::id())
    }

    pub fn from_vars(get: impl Fn(&str) -> Option<String>, pid: u32) -> Self {
        let socket = get("NOTIFY_SOCKET").filter(|s| !s.is_empty());
        let for_us = get("WATCHDOG_PID")
            .map(|p| p.trim().parse::<u32>().ok() == Some(pid))
            .unwrap_or(true);
        let watchdog = get("WATCHDOG_USEC")
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us)
            .map(Duration::from_micros);
        Self { socket, watchdog }
    }

    /// How often to ping the watchdog: half the interval systemd enforces, as sd_watchdog_enabled(3) advises.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    pub fn ready(&self, status: &str) -> io::Result<()> {
        self.send(&format!(
            "READY=1\nSTATUS={status}\nMAINPID={}",
            std::process::id()
        ))
    }

    pub fn watchdog_ping(&self) -> io::Result<()> {
        self.send("WATCHDOG=1")
    }

    pub fn stopping(&self) -> io::Result<()> {
        self.send("STOPPING=1")
    }

    fn send(&self, msg: &str) -> io::Result<()> {
        let Some(path) = &self.socket else {
            return Ok(());
        };
        let sock = UnixDatagram::unbound()?;
        let addr = if let Some(abs) = path.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(abs.as_bytes())?
        } else {
            SocketAddr::from_pathname(path)?
        };
        sock.send_to_addr(msg.as_bytes(), &addr)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_watchdog_env() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(kk, _)| *kk == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let n = Notifier::from_vars(env(&[("WATCHDOG_USEC", "30000000")]), 7);
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(15)));
        let n = Notifier::from_vars(
            env(&[("WATCHDOG_USEC", "30000000"), ("WATCHDOG_PID", "8")]),
            7,
        );
        assert_eq!(
            n.watchdog_interval(),
            None,
            "watchdog meant for another pid"
        );
        let n = Notifier::from_vars(env(&[("WATCHDOG_USEC", "garbage")]), 7);
        assert_eq!(n.watchdog_interval(), None);
    }

    #[test]
    fn sends_datagrams_to_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let p = path.to_str().unwrap().to_string();
        let n = Notifier::from_vars(
            move |k| (k == "NOTIFY_SOCKET").then(|| p.clone()),
            std::process::id(),
        );
        n.ready("serving").unwrap();
        n.watchdog_ping().unwrap();
        let mut buf = [0u8; 256];
        let len = server.recv(&mut buf).unwrap();
        let msg = std::str::from_utf8(&buf[..len]).unwrap();
        assert!(
            msg.starts_with("READY=1\nSTATUS=serving\nMAINPID="),
            "{msg}"
        );
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }

    #[test]
    fn no_socket_is_a_noop() {
        let n = Notifier::from_vars(|_| None, 1);
        n.ready("x").unwrap();
        assert_eq!(n.watchdog_interval(), None);
    }
}
