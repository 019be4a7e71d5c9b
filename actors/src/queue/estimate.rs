//! The estimated wait of a waiting caller (Q6), recomputed on every ask
//! from the live agent pool:
//!
//! With `position` the caller's place in service order (1: next), `free`
//! the agents of the queue available now, `k = position - free` (no wait
//! when it is 0 or less), `serving` the agents the queue counts for its
//! empty policies, and `handle` the recent handle time (an exponential
//! moving average, weight [`WEIGHT`] per call, of each answered call's
//! talk time, from the agents' reports):
//!
//! - regular handle times (their moving deviation below [`REGULAR`] of
//!   the mean): the busy agents' calls end about when due, soonest first,
//!   each `max(handle - its age, FLOOR x handle)` from now; the caller
//!   waits for the `k`-th end, a round of `handle` per turn past them all:
//!   `left[(k - 1) mod busy] + ((k - 1) div busy) x handle`;
//! - irregular ones (an exponential's: the age of a call says nothing):
//!   `k x handle / serving`.
//!
//! With no call seen yet, or nobody serving, there is no estimate. Its
//! error against the real waits is measured by
//! `benches/src/bin/estimate_error.rs` (README).

use std::collections::BTreeMap;

use crate::messages::AgentReport;
use crate::model::agent_status::AgentState;
use crate::model::UserId;

/// The weight of the newest handle time in the average.
pub const WEIGHT: f64 = 0.05;

/// Handle times whose deviation is below this share of their mean count as
/// regular.
pub const REGULAR: f64 = 0.5;

/// The least a busy agent's call is still expected to last, as a share of
/// the handle time (a call already longer than usual ends some time).
pub const FLOOR: f64 = 0.1;

/// What the estimate is made of.
#[derive(Debug, Clone, Default)]
pub struct Estimator {
    handle_ms: Option<f64>,
    /// The moving average of the squared deviation from `handle_ms`.
    variance: f64,
    seen: BTreeMap<UserId, (u64, u64)>,
    /// Agents busy with a call, since when.
    busy_since: BTreeMap<UserId, u64>,
}

impl Estimator {
    /// Learns from an agent's report: calls it answered since the last one.
    pub fn observe(&mut self, report: &AgentReport, now_ms: u64) {
        let busy = matches!(
            report.state,
            AgentState::Offered | AgentState::Talking | AgentState::WrapUp
        );
        if busy {
            self.busy_since.entry(report.agent).or_insert(now_ms);
        } else {
            self.busy_since.remove(&report.agent);
        }
        let now = (report.calls_taken, report.talk_time_ms);
        if let Some((calls, talk)) = self.seen.insert(report.agent, now) {
            if now.0 > calls && now.1 >= talk {
                let per_call = (now.1 - talk) as f64 / (now.0 - calls) as f64;
                self.handle_ms = Some(match self.handle_ms {
                    Some(h) => {
                        let d = per_call - h;
                        self.variance = (1.0 - WEIGHT) * (self.variance + WEIGHT * d * d);
                        h + WEIGHT * d
                    }
                    None => per_call,
                });
            }
        }
    }

    /// Forgets an agent that left the queue.
    pub fn forget(&mut self, agent: UserId) {
        self.seen.remove(&agent);
        self.busy_since.remove(&agent);
    }

    /// The recent handle time, ms.
    #[cfg(test)]
    pub fn handle_ms(&self) -> Option<f64> {
        self.handle_ms
    }

    /// The wait left for the caller at `position`, seconds, at `now_ms`.
    /// O(b log b) for `b` busy agents.
    pub fn estimate_s(
        &self,
        position: u32,
        free: usize,
        serving: usize,
        now_ms: u64,
    ) -> Option<u32> {
        let handle = self.handle_ms?;
        if serving == 0 {
            return None;
        }
        let ahead = u64::from(position).saturating_sub(free as u64);
        if ahead == 0 {
            return Some(0);
        }
        let mut left: Vec<f64> = self
            .busy_since
            .values()
            .map(|since| (handle - now_ms.saturating_sub(*since) as f64).max(handle * FLOOR))
            .collect();
        // Regular handle times: the busy agents' calls end about when they
        // are due, soonest first. Irregular ones (like an exponential's):
        // only the rate counts, the time a call has lasted says nothing.
        let regular = self.variance.sqrt() < REGULAR * handle;
        let ms = if left.is_empty() || !regular {
            ahead as f64 * handle / serving as f64
        } else {
            left.sort_by(f64::total_cmp);
            let (k, busy) = (ahead - 1, left.len() as u64);
            left[(k % busy) as usize] + (k / busy) as f64 * handle
        };
        Some((ms / 1000.0).round() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(agent: u64, calls: u64, talk_s: u64, state: AgentState) -> AgentReport {
        AgentReport {
            agent: UserId(agent),
            member: true,
            available: true,
            skills: Default::default(),
            idle_since_ms: 0,
            last_offered_ms: None,
            calls_taken: calls,
            talk_time_ms: talk_s * 1000,
            not_before_ms: 0,
            state,
        }
    }

    #[test]
    fn regular_handle_times_count_the_busy_calls_and_irregular_ones_the_rate() {
        let mut e = Estimator::default();
        assert_eq!(e.estimate_s(3, 0, 2, 0), None, "no call seen yet");
        // Agent 1 ends a 100 s call at 100 s and takes another; agent 2 a
        // 110 s one at 110 s (both busy again from then).
        e.observe(&report(1, 0, 0, AgentState::Talking), 0);
        e.observe(&report(2, 0, 0, AgentState::Talking), 0);
        e.observe(&report(1, 1, 100, AgentState::Idle), 100_000);
        e.observe(&report(1, 1, 100, AgentState::Talking), 100_000);
        e.observe(&report(2, 1, 110, AgentState::Idle), 110_000);
        e.observe(&report(2, 1, 110, AgentState::Talking), 110_000);
        assert_eq!(e.handle_ms(), Some(100_500.0), "100 + 0.05 x (110 - 100)");
        // Regular: at 150 s agent 1's call is due in 50.5 s, agent 2's in
        // 60.5 s; the third caller waits for agent 1's next call.
        assert_eq!(e.estimate_s(1, 0, 2, 150_000), Some(51));
        assert_eq!(e.estimate_s(2, 0, 2, 150_000), Some(61));
        assert_eq!(e.estimate_s(3, 0, 2, 150_000), Some(151));
        assert_eq!(e.estimate_s(2, 2, 2, 150_000), Some(0), "two agents free");
        assert_eq!(e.estimate_s(3, 0, 0, 150_000), None, "nobody serving");
        // Irregular (a 10 s call, then a 400 s one): only the rate counts.
        e.observe(&report(1, 2, 110, AgentState::Talking), 160_000);
        e.observe(&report(2, 2, 510, AgentState::Talking), 510_000);
        let handle = e.handle_ms().expect("a handle time");
        let expected = (3.0 * handle / 2.0 / 1000.0).round() as u32;
        assert_eq!(e.estimate_s(3, 0, 2, 520_000), Some(expected));
    }
}
