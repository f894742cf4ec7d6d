//! A daily maintenance window, `HH:MM-HH:MM` in UTC (it may run over midnight, `22:00-02:00`): when a box may
//! do what interrupts its streams, such as the reboot into an installed update.

use std::time::Duration;

const DAY_S: u64 = 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceWindow {
    /// Minutes after midnight UTC; `start == end` is refused (a window of no time, or of all day).
    start_min: u32,
    end_min: u32,
}

impl MaintenanceWindow {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad =
            || format!("maintenance window `{s}`: expected HH:MM-HH:MM (UTC), e.g. 02:00-04:30");
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let minutes = |t: &str| -> Result<u32, String> {
            let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
            if h.len() != 2 || m.len() != 2 {
                return Err(bad());
            }
            let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            if h > 23 || m > 59 {
                return Err(bad());
            }
            Ok(h * 60 + m)
        };
        let (start_min, end_min) = (minutes(a)?, minutes(b)?);
        if start_min == end_min {
            return Err(format!("maintenance window `{s}`: starts where it ends"));
        }
        Ok(MaintenanceWindow { start_min, end_min })
    }

    /// How long from `now_unix_s` until the window is open: zero inside it.
    pub fn wait_from(&self, now_unix_s: u64) -> Duration {
        let now = now_unix_s % DAY_S;
        let (start, end) = (u64::from(self.start_min) * 60, u64::from(self.end_min) * 60);
        let inside = if start < end {
            (start..end).contains(&now)
        } else {
            now >= start || now < end
        };
        if inside {
            Duration::ZERO
        } else {
            Duration::from_secs((start + DAY_S - now) % DAY_S)
        }
    }
}

impl std::fmt::Display for MaintenanceWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02} UTC",
            self.start_min / 60,
            self.start_min % 60,
            self.end_min / 60,
            self.end_min % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 3600;

    #[test]
    fn windows_parse_and_open_at_their_start() {
        let w = MaintenanceWindow::parse("02:00-04:30").unwrap();
        assert_eq!(w.to_string(), "02:00-04:30 UTC");
        let day = 20_000 * DAY_S; // any midnight
        assert_eq!(w.wait_from(day + 2 * H), Duration::ZERO);
        assert_eq!(w.wait_from(day + 4 * H + 29 * 60), Duration::ZERO);
        assert_eq!(
            w.wait_from(day + 4 * H + 30 * 60),
            Duration::from_secs(21 * H + 30 * 60)
        );
        assert_eq!(w.wait_from(day + H), Duration::from_secs(H));
        // over midnight
        let night = MaintenanceWindow::parse("22:00-01:00").unwrap();
        assert_eq!(night.wait_from(day + 23 * H), Duration::ZERO);
        assert_eq!(night.wait_from(day + 30 * 60), Duration::ZERO);
        assert_eq!(night.wait_from(day + H), Duration::from_secs(21 * H));
        assert_eq!(night.wait_from(day + 21 * H), Duration::from_secs(H));
    }

    #[test]
    fn bad_windows_are_refused() {
        for s in [
            "",
            "2-4",
            "02:00",
            "02:00-24:00",
            "02:60-03:00",
            "2:00-03:00",
            "03:00-03:00",
            "aa:bb-cc:dd",
        ] {
            assert!(MaintenanceWindow::parse(s).is_err(), "{s}");
        }
    }
}
