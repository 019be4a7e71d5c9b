//! How long a queued call waits for its first agent INVITE on this node:
//! `carillon_queue_offer_latency_seconds`, from the moment the call actor,
//! its `Enqueue` committed, tells the queue actor of the entry, to the
//! moment the glue hands the first INVITE to an agent's device to the SIP
//! transport. The span covers routing in the queue actor, the agent
//! actor's reservation (the `OfferCall` ledger write), the device actor
//! and the edge; it does not cover the `Enqueue` write itself (see
//! `carillon_raft_request_duration_seconds` for ledger writes).
//!
//! Observed where both ends happen on this node (a fork placed by another
//! node, the one holding the device's registration, is not timed: the two
//! clocks are not comparable). Only the first INVITE of an entry counts:
//! the other forks of a ring-all offer and the offers after a no-answer
//! are not "the time to reach an agent".
//!
//! Boundary: metrics only; nothing here changes what calls do.
//! Invariant: at most [`MAX_TRACKED`] entries are timed at once; an entry
//! is forgotten at its first INVITE or when it leaves the queue.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use prometheus::{Histogram, HistogramOpts, Registry};

/// Entries timed at once at most; beyond it new entries are not timed.
pub const MAX_TRACKED: usize = 65_536;

/// Buckets, seconds: 0.25 ms steps up to 2 ms and 0.5 ms steps up to 5 ms
/// (the target is p99 <= 5 ms), coarser beyond.
const BUCKETS_S: [f64; 27] = [
    0.000_25, 0.000_5, 0.000_75, 0.001, 0.001_25, 0.001_5, 0.001_75, 0.002, 0.002_5, 0.003,
    0.003_5, 0.004, 0.004_5, 0.005, 0.006, 0.007, 0.008, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5,
];

/// The queue-to-agent latency of this node's calls.
#[derive(Debug)]
pub struct OfferLatency {
    started: Mutex<HashMap<String, Instant>>,
    histogram: Histogram,
}

impl OfferLatency {
    /// A new, unregistered histogram.
    pub fn new() -> Self {
        let histogram = Histogram::with_opts(
            HistogramOpts::new(
                "carillon_queue_offer_latency_seconds",
                "Time from a call's entry into a queue (its Enqueue committed, the queue actor told) to its first agent INVITE handed to the SIP transport, for calls whose agent's device is registered on the node of the call.",
            )
            .buckets(BUCKETS_S.to_vec()),
        )
        .expect("the offer latency histogram's options are valid");
        OfferLatency {
            started: Mutex::new(HashMap::new()),
            histogram,
        }
    }

    /// Registers the histogram.
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.histogram.clone()))
    }

    /// The entry `entry` is in its queue and its queue actor is being told.
    pub fn entered(&self, entry: &str) {
        #[allow(clippy::disallowed_methods)] // a shell's measurement: the clock is read here
        let now = Instant::now();
        let mut started = self.lock();
        if started.len() < MAX_TRACKED {
            started.insert(entry.to_string(), now);
        }
    }

    /// The entry left its queue (answered, abandoned, refused).
    pub fn left(&self, entry: &str) {
        self.lock().remove(entry);
    }

    /// An INVITE to an agent's device for `entry` was handed to the
    /// transport: the first one is observed.
    pub fn dialled(&self, entry: &str) {
        let Some(at) = self.lock().remove(entry) else {
            return;
        };
        self.histogram.observe(at.elapsed().as_secs_f64());
    }

    /// Entries being timed now.
    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // A panic while holding this lock leaves a map that is still whole.
        self.started.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for OfferLatency {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_first_invite_of_an_entry_in_its_queue_is_observed() {
        let latency = OfferLatency::new();
        latency.entered("c1");
        latency.entered("c2");
        latency.dialled("c1");
        latency.dialled("c1"); // a second fork of the same offer
        latency.left("c2"); // abandoned before any INVITE
        latency.dialled("c2");
        latency.dialled("c3"); // never entered here
        assert_eq!(latency.histogram.get_sample_count(), 1);
        assert_eq!(latency.tracked(), 0);
    }

    #[test]
    fn at_most_max_tracked_entries_are_timed() {
        let latency = OfferLatency::new();
        for n in 0..MAX_TRACKED + 10 {
            latency.entered(&format!("c{n}"));
        }
        assert_eq!(latency.tracked(), MAX_TRACKED);
    }
}
