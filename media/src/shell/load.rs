//! Load figures of the relay process: CPU time from `/proc/self/stat`, and a packet rate
//! over whole seconds.

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, fixed at 100 in the Linux ABI).
const USER_HZ: f64 = 100.0;

/// User + system CPU seconds of this process, or 0 where `/proc` is not available.
pub fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| parse_cpu_seconds(&stat))
        .unwrap_or(0.0)
}

/// Reads utime + stime (fields 14 and 15) from a `/proc/<pid>/stat` line. The command name
/// (field 2) is in parentheses and may hold spaces, so fields are counted after the last `)`.
pub fn parse_cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / USER_HZ)
}

/// Counts events and reports the rate over the last complete second.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateWindow {
    window_start_ms: u64,
    in_window: u64,
    last_rate: f64,
}

impl RateWindow {
    /// Adds `count` events at `now_ms`.
    pub fn add(&mut self, now_ms: u64, count: u64) {
        self.roll(now_ms);
        self.in_window += count;
    }

    /// The rate per second over the last complete window.
    pub fn rate(&mut self, now_ms: u64) -> f64 {
        self.roll(now_ms);
        self.last_rate
    }

    fn roll(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.window_start_ms);
        if elapsed >= 2000 {
            // A whole window passed with nothing counted after it.
            self.last_rate = 0.0;
            self.in_window = 0;
            self.window_start_ms = now_ms;
        } else if elapsed >= 1000 {
            self.last_rate = self.in_window as f64 * 1000.0 / elapsed as f64;
            self.in_window = 0;
            self.window_start_ms = now_ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_fields_are_counted_after_the_name() {
        let stat = "1234 (carillon relay) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_cpu_seconds(stat), Some(3.0));
        assert_eq!(parse_cpu_seconds("garbage"), None);
        assert!(cpu_seconds() >= 0.0);
    }

    #[test]
    fn rate_over_whole_seconds() {
        let mut window = RateWindow::default();
        window.add(0, 10);
        window.add(500, 40);
        assert_eq!(window.rate(900), 0.0, "no full second yet");
        assert_eq!(window.rate(1000), 50.0);
        window.add(1500, 5);
        assert_eq!(window.rate(4000), 0.0, "silence resets the rate");
    }
}
