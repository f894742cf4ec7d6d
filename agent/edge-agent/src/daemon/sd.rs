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
        // Never block: this runs on the async runtime, and a receiver that does not read (a busy service
        // manager, a test) would otherwise stall a runtime thread once its queue is full.  A message that
        // finds the queue full is dropped, as a late watchdog ping would be.
        let sock = UnixDatagram::unbound()?;
        sock.set_nonblocking(true)?;
        let addr = if let Some(abs) = path.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(abs.as_bytes())?
        } else {
            SocketAddr::from_pathname(path)?
        };
        match sock.send_to_addr(msg.as_bytes(), &addr) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tracing::debug!("the service manager's notify queue is full: {msg:?} dropped");
                Ok(())
            }
            r => r.map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receiver_that_does_not_read_never_blocks_the_sender() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let _receiver = UnixDatagram::bind(&path).unwrap(); // never reads
        let n = Notifier {
            socket: Some(path.to_string_lossy().into_owned()),
            watchdog: Some(Duration::from_secs(1)),
        };
        let t = std::time::Instant::now();
        for _ in 0..1000 {
            n.watchdog_ping().unwrap();
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

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
