//! Validation of operator input, shared by the device (authoritative) and the CLI (early feedback).

use crate::proto::RuntimeConfig;

pub const MAX_SESSION_LIMIT: u32 = 256;

pub fn log_level(s: &str) -> Result<(), String> {
    if s.trim().is_empty() {
        return Err("log_level is empty".into());
    }
    if s.len() > 512 {
        return Err("log_level longer than 512 bytes".into());
    }
    // tracing-subscriber's directive parser panics on some non-ASCII input (it slices inside a character):
    // a directive is module paths, levels and field values, printable ASCII
    if !s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
        return Err("log_level must be printable ASCII".into());
    }
    // a span field filter (`[span{field=value}]`) is compiled to a regex DFA, which some values make take
    // minutes of CPU and gigabytes to build: levels per target and span are all the fleet sets
    if s.contains('{') {
        return Err("log_level: span field filters (`{...}`) are not accepted".into());
    }
    tracing_subscriber::EnvFilter::builder()
        .parse(s)
        .map(|_| ())
        .map_err(|e| format!("log_level `{s}` is not a valid filter: {e}"))
}

/// Checks a desired config on its own (the daemon may refuse more, e.g. an encoder this box lacks).
pub fn runtime_config(c: &RuntimeConfig) -> Result<(), String> {
    if let Some(l) = &c.log_level {
        log_level(l)?;
    }
    if let Some(n) = c.session_limit {
        if n == 0 || n > MAX_SESSION_LIMIT {
            return Err(format!(
                "session_limit {n} out of range 1..={MAX_SESSION_LIMIT}"
            ));
        }
    }
    if let Some(w) = &c.maintenance_window {
        crate::window::MaintenanceWindow::parse(w)?;
    }
    if let Some(t) = c.telemetry_interval_s {
        if !(1..=3600).contains(&t) {
            return Err(format!("telemetry_interval_s {t} out of range 1..=3600"));
        }
    }
    if let Some(e) = &c.encoder {
        if e.is_empty() || !e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("encoder `{e}` is not a valid encoder api name"));
        }
    }
    if let Some(l) = &c.ladder {
        if l.is_empty() {
            return Err("ladder is empty".into());
        }
        if l.len() > 8 {
            return Err(format!("ladder has {} profiles, at most 8", l.len()));
        }
        let mut names = std::collections::BTreeSet::new();
        for n in l {
            let ok = !n.is_empty()
                && n.len() <= 64
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !ok || !names.insert(n.as_str()) {
                return Err(format!("ladder profile name `{n}` invalid or repeated"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_values() {
        assert!(log_level("info,media=debug").is_ok());
        assert!(log_level("info,[[[").is_err());
        assert!(log_level("").is_err());
        // found by the fuzz target `documents`: these made the filter parser panic
        assert!(log_level("\t\t\tG\u{a3}\u{a3}\u{a3}\u{a3}\u{a3}\u{a3}\u{a3}\u{a3}=,").is_err());
        assert!(log_level("z\u{fffd}\u{fffd}[\u{fffd}\u{6}\0").is_err());
        // ... and this one took minutes and gigabytes to build its field matcher
        let slow = format!("[{{hr=NS{}1SS{}h}}]", ".".repeat(54), ".".repeat(22));
        let t = std::time::Instant::now();
        assert!(log_level(&slow).is_err());
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
        assert!(log_level("info,media[segment]=debug").is_ok());
        let mut c = RuntimeConfig {
            session_limit: Some(0),
            ..Default::default()
        };
        assert!(runtime_config(&c).is_err());
        c.session_limit = Some(4);
        assert!(runtime_config(&c).is_ok());
        c.maintenance_window = Some("25:00-02:00".into());
        assert!(runtime_config(&c).is_err());
        c.maintenance_window = Some("23:30-02:00".into());
        assert!(runtime_config(&c).is_ok());
        c.ladder = Some(vec!["720p".into(), "720p".into()]);
        assert!(runtime_config(&c).unwrap_err().contains("repeated"));
        c.ladder = Some(vec!["720p".into(), "a/b".into()]);
        assert!(runtime_config(&c).is_err());
        c.ladder = Some(vec!["720p".into(), "360p".into()]);
        assert!(runtime_config(&c).is_ok());
    }
}
