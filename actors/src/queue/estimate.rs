//! The estimated wait of a waiting caller (Q6), recomputed on every ask
//! from the live agent pool:
//!
//! `wait = max(0, position - free) x handle / serving`
//!
//! where `position` is the caller's place in service order (1: next),
//! `free` the agents of the queue available now, `serving` the agents the
//! queue counts as available for its empty policies (idle, ringing,
//! talking, in after-call work, by its `empty_counts`), and `handle` the
//! recent handle time: an exponential moving average (weight
//! [`WEIGHT`] per call) of each answered call's talk time, taken from the
//! agents' reports (their talk time and calls answered grow by one call at
//! a time). With no call seen yet, or nobody serving, there is no estimate.

use std::collections::BTreeMap;

use crate::messages::AgentReport;
use crate::model::UserId;

/// The weight of the newest handle time in the average.
pub const WEIGHT: f64 = 0.2;

/// What the estimate is made of.
#[derive(Debug, Clone, Default)]
pub struct Estimator {
    handle_ms: Option<f64>,
    seen: BTreeMap<UserId, (u64, u64)>,
}

impl Estimator {
    /// Learns from an agent's report: calls it answered since the last one.
    pub fn observe(&mut self, report: &AgentReport) {
        let now = (report.calls_taken, report.talk_time_ms);
        if let Some((calls, talk)) = self.seen.insert(report.agent, now) {
            if now.0 > calls && now.1 >= talk {
                let per_call = (now.1 - talk) as f64 / (now.0 - calls) as f64;
                self.handle_ms = Some(match self.handle_ms {
                    Some(h) => h + WEIGHT * (per_call - h),
                    None => per_call,
                });
            }
        }
    }

    /// Forgets an agent that left the queue.
    pub fn forget(&mut self, agent: UserId) {
        self.seen.remove(&agent);
    }

    /// The recent handle time, ms.
    #[cfg(test)]
    pub fn handle_ms(&self) -> Option<f64> {
        self.handle_ms
    }

    /// The wait left for the caller at `position`, seconds.
    pub fn estimate_s(&self, position: u32, free: usize, serving: usize) -> Option<u32> {
        let handle = self.handle_ms?;
        if serving == 0 {
            return None;
        }
        let ahead = u64::from(position).saturating_sub(free as u64);
        let ms = ahead as f64 * handle / serving as f64;
        Some((ms / 1000.0).round() as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::agent_status::AgentState;

    fn report(agent: u64, calls: u64, talk_s: u64) -> AgentReport {
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
            state: AgentState::Idle,
        }
    }

    #[test]
    fn the_estimate_follows_recent_handle_times_and_the_pool() {
        let mut e = Estimator::default();
        assert_eq!(e.estimate_s(3, 0, 2), None, "no call seen yet");
        e.observe(&report(1, 0, 0));
        e.observe(&report(1, 1, 100));
        assert_eq!(e.handle_ms(), Some(100_000.0));
        e.observe(&report(2, 4, 400));
        e.observe(&report(2, 5, 600));
        assert_eq!(e.handle_ms(), Some(120_000.0), "100 + 0.2 x (200 - 100)");
        assert_eq!(e.estimate_s(3, 0, 2), Some(180), "3 x 120 s / 2 agents");
        assert_eq!(e.estimate_s(2, 2, 2), Some(0), "two agents free");
        assert_eq!(e.estimate_s(3, 1, 2), Some(120));
        assert_eq!(e.estimate_s(3, 0, 0), None, "nobody serving");
    }
}
