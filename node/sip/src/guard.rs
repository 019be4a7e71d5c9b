//! Protection of the SIP edge against floods and credential scanners: a
//! token bucket per source address, and a ban of a source after repeated
//! authentication failures (the scanners that hunt for toll fraud).
//!
//! Invariants:
//! - both tables are bounded: at most `max_sources` entries each; idle
//!   entries leave at [`Guard::sweep`]; when a table is full, an unknown
//!   source is treated as limited rather than growing the table;
//! - a ban lasts exactly `ban_ms` from the failure that triggered it, then
//!   the source starts again with no failures counted.

use std::collections::HashMap;
use std::net::IpAddr;

/// Settings of the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardConfig {
    /// Requests per second allowed from one source address (sustained).
    pub rate_per_second: u32,
    /// Requests allowed in a burst above the sustained rate.
    pub burst: u32,
    /// Authentication failures within `failure_window_ms` that ban a source.
    pub max_auth_failures: u32,
    /// Window in which failures are counted.
    pub failure_window_ms: u64,
    /// How long a ban lasts.
    pub ban_ms: u64,
    /// Most sources tracked in each table.
    pub max_sources: usize,
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            rate_per_second: 500,
            burst: 1_000,
            max_auth_failures: 5,
            failure_window_ms: 60_000,
            ban_ms: 600_000,
            max_sources: 100_000,
        }
    }
}

/// What the guard says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Allow,
    /// Over the rate: answer 503 once (`notify`), then drop silently until
    /// the bucket refills.
    RateLimited {
        /// Whether this is the first refused request of the episode.
        notify: bool,
    },
    /// The source is banned until `until_ms`.
    Banned {
        /// When the ban ends.
        until_ms: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens, in thousandths of a request.
    tokens_milli: u64,
    last_ms: u64,
    notified: bool,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    window_start_ms: u64,
    banned_until_ms: Option<u64>,
}

/// Per-source rate limits and authentication-failure bans.
#[derive(Debug)]
pub struct Guard {
    config: GuardConfig,
    buckets: HashMap<IpAddr, Bucket>,
    failures: HashMap<IpAddr, Failures>,
    /// Requests refused by the rate limit since start.
    pub rate_limited_total: u64,
    /// Requests refused because their source was banned, since start.
    pub banned_total: u64,
    /// Bans imposed since start.
    pub bans_total: u64,
}

impl Guard {
    /// A guard with `config`.
    pub fn new(config: GuardConfig) -> Self {
        Guard {
            config,
            buckets: HashMap::new(),
            failures: HashMap::new(),
            rate_limited_total: 0,
            banned_total: 0,
            bans_total: 0,
        }
    }

    fn capacity_milli(&self) -> u64 {
        u64::from(self.config.burst.max(1)) * 1_000
    }

    /// Decides on one request from `source` at `now_ms`.
    pub fn check(&mut self, now_ms: u64, source: IpAddr) -> Verdict {
        if let Some(f) = self.failures.get_mut(&source) {
            match f.banned_until_ms {
                Some(until) if now_ms < until => {
                    self.banned_total += 1;
                    return Verdict::Banned { until_ms: until };
                }
                Some(_) => *f = Failures::fresh(now_ms),
                None => {}
            }
        }
        let capacity = self.capacity_milli();
        let rate = u64::from(self.config.rate_per_second);
        let full = self.buckets.len() >= self.config.max_sources;
        let bucket = match self.buckets.get_mut(&source) {
            Some(b) => b,
            None if full => {
                self.rate_limited_total += 1;
                return Verdict::RateLimited { notify: false };
            }
            None => self.buckets.entry(source).or_insert(Bucket {
                tokens_milli: capacity,
                last_ms: now_ms,
                notified: false,
            }),
        };
        // `rate` requests per 1000 ms = `rate` milli-tokens per ms.
        let refill = now_ms.saturating_sub(bucket.last_ms).saturating_mul(rate);
        bucket.tokens_milli = bucket.tokens_milli.saturating_add(refill).min(capacity);
        bucket.last_ms = bucket.last_ms.max(now_ms);
        if bucket.tokens_milli >= 1_000 {
            bucket.tokens_milli -= 1_000;
            bucket.notified = false;
            Verdict::Allow
        } else {
            self.rate_limited_total += 1;
            let notify = !bucket.notified;
            bucket.notified = true;
            Verdict::RateLimited { notify }
        }
    }

    /// Records an authentication failure from `source`; returns the end of
    /// the ban when this failure imposed one.
    pub fn auth_failed(&mut self, now_ms: u64, source: IpAddr) -> Option<u64> {
        let full = self.failures.len() >= self.config.max_sources;
        let config = self.config;
        let f = match self.failures.get_mut(&source) {
            Some(f) => f,
            // A full table records no new source (the rate limit still
            // applies to it); `sweep` makes room as windows close.
            None if full => return None,
            None => self
                .failures
                .entry(source)
                .or_insert(Failures::fresh(now_ms)),
        };
        if now_ms.saturating_sub(f.window_start_ms) > config.failure_window_ms {
            *f = Failures::fresh(now_ms);
        }
        f.count += 1;
        if f.count >= config.max_auth_failures && f.banned_until_ms.is_none() {
            let until = now_ms.saturating_add(config.ban_ms);
            f.banned_until_ms = Some(until);
            self.bans_total += 1;
            return Some(until);
        }
        None
    }

    /// Whether `source` is banned at `now_ms`.
    pub fn is_banned(&self, now_ms: u64, source: IpAddr) -> bool {
        self.failures
            .get(&source)
            .and_then(|f| f.banned_until_ms)
            .is_some_and(|until| now_ms < until)
    }

    /// Sources banned at `now_ms`.
    pub fn banned_sources(&self, now_ms: u64) -> usize {
        self.failures
            .values()
            .filter(|f| f.banned_until_ms.is_some_and(|u| now_ms < u))
            .count()
    }

    /// Drops entries with nothing left to remember.
    pub fn sweep(&mut self, now_ms: u64) {
        let capacity = self.capacity_milli();
        let rate = u64::from(self.config.rate_per_second);
        self.buckets.retain(|_, b| {
            let refill = now_ms.saturating_sub(b.last_ms).saturating_mul(rate);
            b.tokens_milli.saturating_add(refill) < capacity
        });
        let window = self.config.failure_window_ms;
        self.failures.retain(|_, f| match f.banned_until_ms {
            Some(until) => now_ms < until,
            None => now_ms.saturating_sub(f.window_start_ms) <= window,
        });
    }
}

impl Failures {
    fn fresh(now_ms: u64) -> Self {
        Failures {
            count: 0,
            window_start_ms: now_ms,
            banned_until_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn bucket_allows_burst_then_rate() {
        let mut g = Guard::new(GuardConfig {
            rate_per_second: 10,
            burst: 5,
            ..GuardConfig::default()
        });
        for _ in 0..5 {
            assert_eq!(g.check(0, ip(1)), Verdict::Allow);
        }
        assert_eq!(g.check(0, ip(1)), Verdict::RateLimited { notify: true });
        assert_eq!(g.check(0, ip(1)), Verdict::RateLimited { notify: false });
        assert_eq!(g.check(0, ip(2)), Verdict::Allow, "other sources unharmed");
        // 10/s: one token per 100 ms.
        assert_eq!(g.check(100, ip(1)), Verdict::Allow);
        assert_eq!(g.check(100, ip(1)), Verdict::RateLimited { notify: true });
        assert_eq!(g.rate_limited_total, 3);
        g.sweep(10_000);
        assert!(g.buckets.is_empty(), "full buckets are forgotten");
    }

    #[test]
    fn failures_ban_then_the_ban_lifts() {
        let mut g = Guard::new(GuardConfig {
            max_auth_failures: 3,
            failure_window_ms: 1_000,
            ban_ms: 5_000,
            ..GuardConfig::default()
        });
        assert_eq!(g.auth_failed(0, ip(1)), None);
        assert_eq!(g.auth_failed(10, ip(1)), None);
        assert_eq!(g.auth_failed(20, ip(1)), Some(5_020));
        assert_eq!(g.check(30, ip(1)), Verdict::Banned { until_ms: 5_020 });
        assert_eq!(g.check(30, ip(2)), Verdict::Allow);
        assert!(g.is_banned(5_019, ip(1)));
        assert_eq!(g.check(5_020, ip(1)), Verdict::Allow);
        assert_eq!(g.auth_failed(5_030, ip(1)), None, "counting starts again");
        // Failures spread wider than the window never ban.
        for i in 0..10 {
            assert_eq!(g.auth_failed(10_000 + i * 600, ip(3)), None);
        }
        assert_eq!(g.bans_total, 1);
    }
}
