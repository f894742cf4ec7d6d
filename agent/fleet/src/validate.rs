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
    if let Some(ps) = &c.profiles {
        if ps.is_empty() {
            return Err("profiles is empty".into());
        }
        if ps.len() > 8 {
            return Err(format!("{} profiles, at most 8", ps.len()));
        }
        let mut names = std::collections::BTreeSet::new();
        for p in ps {
            if p.name.is_empty() || !names.insert(p.name.as_str()) {
                return Err(format!("profile name `{}` empty or repeated", p.name));
            }
            if p.width == 0 || p.height == 0 || p.width > 7680 || p.height > 4320 {
                return Err(format!(
                    "profile `{}`: {}x{} out of range",
                    p.name, p.width, p.height
                ));
            }
            if p.width % 2 != 0 || p.height % 2 != 0 {
                return Err(format!(
                    "profile `{}`: {}x{} must be even for 4:2:0",
                    p.name, p.width, p.height
                ));
            }
            if p.bitrate_kbps < 64 || p.bitrate_kbps > 100_000 {
                return Err(format!(
                    "profile `{}`: bitrate_kbps {} out of range 64..=100000",
                    p.name, p.bitrate_kbps
                ));
            }
            if let Some(f) = p.fps {
                if f == 0 || f > 120 {
                    return Err(format!("profile `{}`: fps {f} out of range 1..=120", p.name));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Profile;

    #[test]
    fn rejects_bad_values() {
        assert!(log_level("info,media=debug").is_ok());
        assert!(log_level("info,[[[").is_err());
        assert!(log_level("").is_err());
        let mut c = RuntimeConfig {
            session_limit: Some(0),
            ..Default::default()
        };
        assert!(runtime_config(&c).is_err());
        c.session_limit = Some(4);
        assert!(runtime_config(&c).is_ok());
        c.profiles = Some(vec![Profile {
            name: "720p".into(),
            width: 1279,
            height: 720,
            bitrate_kbps: 3000,
            fps: None,
        }]);
        assert!(runtime_config(&c).unwrap_err().contains("even"));
    }
}
