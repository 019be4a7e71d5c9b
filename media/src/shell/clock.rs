//! The shell's clock: milliseconds since the relay started, read only here and handed to
//! the sans-IO core as `now_ms`.

use std::time::{Duration, Instant};

/// A monotonic clock starting at zero when the relay starts.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    // The shell is where time is read (STYLE.md: pure code takes `now` as an argument).
    #[allow(clippy::disallowed_methods)]
    pub fn start() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    /// Milliseconds since the start.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// How long from now until `ms` milliseconds after the start (zero if that has passed),
    /// for timers.
    // The shell is where time is read.
    #[allow(clippy::disallowed_methods)]
    pub fn duration_until(&self, ms: u64) -> Duration {
        (self.start + Duration::from_millis(ms)).saturating_duration_since(Instant::now())
    }
}
