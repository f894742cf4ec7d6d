//! Machine figures from `/proc` and `/sys`.  Anything that cannot be read is left out (`None`).

use std::path::Path;

use crate::proto::SystemStats;

/// Keeps the previous `/proc/stat` sample so CPU load is a delta, not an average since boot.
#[derive(Debug, Default)]
pub struct Sampler {
    last_cpu: Option<(u64, u64)>,
}

fn read(p: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// (total, idle+iowait) jiffies from the aggregate `cpu` line.
fn cpu_times(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 4 {
        return None;
    }
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    // guest time is already included in user/nice
    let total: u64 = v.iter().take(8).sum();
    Some((total, idle))
}

fn meminfo_kib(meminfo: &str, key: &str) -> Option<u64> {
    meminfo
        .lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Highest reading over the thermal zones, in degrees Celsius.
pub fn temperature_c(sys_class_thermal: &Path) -> Option<f64> {
    let mut best: Option<f64> = None;
    for e in std::fs::read_dir(sys_class_thermal).ok()?.flatten() {
        if !e.file_name().to_string_lossy().starts_with("thermal_zone") {
            continue;
        }
        if let Some(m) = read(e.path().join("temp")).and_then(|s| s.trim().parse::<i64>().ok()) {
            let c = m as f64 / 1000.0;
            if (-40.0..=150.0).contains(&c) {
                best = Some(best.map_or(c, |b: f64| b.max(c)));
            }
        }
    }
    best
}

impl Sampler {
    pub fn sample(&mut self) -> SystemStats {
        let mut s = SystemStats::default();
        if let Some(now) = read("/proc/stat").as_deref().and_then(cpu_times) {
            if let Some(prev) = self.last_cpu {
                let dt = now.0.saturating_sub(prev.0);
                let di = now.1.saturating_sub(prev.1);
                if dt > 0 {
                    s.cpu_percent =
                        Some(((dt - di.min(dt)) as f64 * 100.0 / dt as f64 * 10.0).round() / 10.0);
                }
            }
            self.last_cpu = Some(now);
        }
        if let Some(l) = read("/proc/loadavg") {
            s.load1 = l.split_whitespace().next().and_then(|x| x.parse().ok());
        }
        if let Some(m) = read("/proc/meminfo") {
            s.mem_total_bytes = meminfo_kib(&m, "MemTotal").map(|k| k * 1024);
            s.mem_available_bytes = meminfo_kib(&m, "MemAvailable").map(|k| k * 1024);
        }
        s.temperature_c = temperature_c(Path::new("/sys/class/thermal"));
        if let Some(u) = read("/proc/uptime") {
            s.uptime_s = u
                .split_whitespace()
                .next()
                .and_then(|x| x.parse::<f64>().ok())
                .map(|f| f as u64);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_formats() {
        assert_eq!(
            cpu_times("cpu  10 0 10 70 10 0 0 0 0 0\ncpu0 1 2 3 4\n"),
            Some((100, 80))
        );
        let m = "MemTotal:       24000000 kB\nMemFree: 1 kB\nMemAvailable:   12000 kB\n";
        assert_eq!(meminfo_kib(m, "MemTotal"), Some(24_000_000));
        assert_eq!(meminfo_kib(m, "MemAvailable"), Some(12000));
        assert_eq!(meminfo_kib(m, "Mem"), None);
    }

    #[test]
    fn reads_this_machine() {
        let mut s = Sampler::default();
        let a = s.sample();
        assert!(a.mem_total_bytes.unwrap() > 0 && a.uptime_s.is_some());
        assert!(a.cpu_percent.is_none(), "first sample has no delta");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let b = s.sample();
        let c = b.cpu_percent.unwrap();
        assert!((0.0..=100.0).contains(&c));
    }

    #[test]
    fn temperature_from_a_fake_sysfs_tree() {
        let d = tempfile::tempdir().unwrap();
        for (z, t) in [
            ("thermal_zone0", "41000\n"),
            ("thermal_zone1", "57500\n"),
            ("cooling_device0", "1"),
        ] {
            std::fs::create_dir(d.path().join(z)).unwrap();
            std::fs::write(d.path().join(z).join("temp"), t).unwrap();
        }
        assert_eq!(temperature_c(d.path()), Some(57.5));
        assert_eq!(temperature_c(&d.path().join("missing")), None);
    }
}
