//! Routing (Q1-Q4): which agents a waiting call is offered to, in which
//! order a queue serves its callers, and which call an agent in several
//! queues gets. Pure functions over a [`QueueIndex`]: no clock, no I/O;
//! time comes in as `now_ms` and randomness only through an injected
//! [`RngCore`].
//!
//! An agent is **eligible** for a call at `now_ms` when it is `available`,
//! its `not_before_ms <= now_ms` (Q4 back-off), and for every required skill
//! of the queue its level (0 when it lacks the skill) is at least the
//! [`required_level`] in force after the call's wait (Q2). Required skills
//! filter every strategy, not only skills-based routing.
//!
//! Invariants:
//! - [`choose`] never returns an ineligible agent, returns
//!   [`Choice::NoneEligible`] exactly when no agent is eligible, and
//!   otherwise exactly one agent, except ring-all, which returns every
//!   eligible agent in `UserId` order.
//! - The same index, spec, call, `now_ms` and RNG state give the same
//!   answer: ties are broken by `UserId`, random draws are over eligible
//!   agents in `UserId` order, and only random and weighted-random routing
//!   draw from the RNG: one draw, when some agent is eligible.
//! - A requirement only loosens as a call waits: [`required_level`] never
//!   rises with `waited_ms`, and a relaxation step never makes a requirement
//!   stricter than its own `min_level`.
//! - [`service_order`] and [`most_deserving`] are total orders over calls
//!   with distinct `(queue, sequence)`, so the winner never depends on the
//!   order the caller lists candidates in.
//!
//! Boundary: the caller (the queue actor) computes `available` from the
//! agent's session, state and devices, sets `not_before_ms` from the
//! queue's `reject_backoff_s` / `retry_delay_s`, tells the index about every
//! change with [`QueueIndex::upsert`], and calls [`QueueIndex::chosen`] when
//! it makes an offer. Routing never changes an agent itself.
//!
//! Cost: agent changes are O(log n) in the queue's agents. Choosing with an
//! ordered strategy (longest-idle, least-recent, fewest-calls,
//! least-talk-time, round-robin, linear) walks that strategy's index from
//! the front and stops at the first eligible agent: O((k + 1) log n) where
//! k agents are skipped (backed off or lacking skills). Ring-all, random,
//! weighted-random and skills-based scan every available agent of the
//! queue: O(a log n) for a available agents.

mod index;
mod strategy;
#[cfg(test)]
mod tests;

pub use index::QueueIndex;

use crate::model::queue::{QueueSpec, SkillRequirement};
use crate::model::{QueueId, SkillId, UserId};
use rand::RngCore;
use std::cmp::{Ordering, Reverse};
use std::collections::BTreeMap;

/// An agent as routing sees it for one queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// The agent.
    pub user: UserId,
    /// Skills and levels (1..=10); a missing skill counts as level 0.
    pub skills: BTreeMap<SkillId, u8>,
    /// Position in the queue's member order (linear, round-robin), lower first.
    pub order: u32,
    /// Whether the agent can take an offer now: logged in (or a static
    /// member), checked in, not paused, not offered, not talking, not in
    /// wrap-up, with a reachable device. The caller computes it.
    pub available: bool,
    /// When it last became available (longest-idle).
    pub idle_since_ms: u64,
    /// When it was last offered a call, if ever (least-recent).
    pub last_offered_ms: Option<u64>,
    /// Calls answered (fewest-calls).
    pub calls_taken: u64,
    /// Talk time (least-talk-time).
    pub talk_time_ms: u64,
    /// Not offered before this instant (reject/busy back-off, retry delay
    /// after a missed offer; Q4).
    pub not_before_ms: u64,
}

/// A waiting call as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingCall {
    /// The queue entry's id.
    pub entry: String,
    /// Priority, higher first (Q3).
    pub priority: u32,
    /// Order of arrival in the tenant, lower first.
    pub sequence: u64,
    /// When it entered the queue.
    pub enqueued_at_ms: u64,
}

/// Whom to offer a call to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// One agent, or every eligible agent (in `UserId` order) for ring-all.
    /// Never empty.
    Offer(Vec<UserId>),
    /// No agent is eligible now.
    NoneEligible,
}

/// The agents to offer `call` to now, by the queue's strategy (Q1), among
/// the eligible agents (see the module documentation). Ties are broken by
/// `UserId`. Only random and weighted-random routing draw from `rng`.
pub fn choose(
    spec: &QueueSpec,
    index: &QueueIndex,
    call: &WaitingCall,
    now_ms: u64,
    rng: &mut impl RngCore,
) -> Choice {
    let filter = Eligibility::new(spec, call, now_ms);
    let chosen = strategy::select(spec, index, &filter, rng);
    assert!(
        chosen
            .iter()
            .all(|user| index.get(*user).is_some_and(|agent| filter.admits(agent))),
        "a strategy picks among eligible agents only"
    );
    if chosen.is_empty() {
        Choice::NoneEligible
    } else {
        Choice::Offer(chosen)
    }
}

/// Whether `agent` is eligible for `call` at `now_ms` in a queue with `spec`.
pub fn is_eligible(spec: &QueueSpec, agent: &AgentInfo, call: &WaitingCall, now_ms: u64) -> bool {
    Eligibility::new(spec, call, now_ms).admits(agent)
}

/// The minimum level in force for a required skill after `waited_ms` (Q2):
/// the loosest of the requirement's own `min_level` and the level of every
/// relaxation step already reached (a step is reached at exactly
/// `after_s * 1000` ms). `None`: any agent, whatever its level in that skill.
pub fn required_level(
    spec: &QueueSpec,
    requirement: &SkillRequirement,
    waited_ms: u64,
) -> Option<u8> {
    spec.relaxations
        .iter()
        .filter(|step| u64::from(step.after_s) * 1000 <= waited_ms)
        .try_fold(requirement.min_level, |level, step| {
            step.min_level.map(|relaxed| level.min(relaxed))
        })
}

/// The skill requirements a queue's relaxation steps put in force (Q2), from
/// its first to its last step, without repeats: what a queue index keeps
/// its skills-based sets for.
pub fn skill_steps(spec: &QueueSpec) -> Vec<index::Levels> {
    let mut steps: Vec<index::Levels> = Vec::new();
    let at = std::iter::once(0).chain(spec.relaxations.iter().map(|r| u64::from(r.after_s) * 1000));
    for waited_ms in at {
        let levels: index::Levels = spec
            .required_skills
            .iter()
            .filter_map(|r| required_level(spec, r, waited_ms).map(|level| (r.skill, level)))
            .collect();
        if !steps.contains(&levels) {
            steps.push(levels);
        }
    }
    steps
}

/// Q3 service order inside one queue: higher priority first, then earlier
/// sequence, then (only for equal sequences, which the ledger never
/// assigns) the entry id, so the order is total.
pub fn service_order(a: &WaitingCall, b: &WaitingCall) -> Ordering {
    b.priority
        .cmp(&a.priority)
        .then(a.sequence.cmp(&b.sequence))
        .then_with(|| a.entry.cmp(&b.entry))
}

/// The one declared rule for an agent in several queues (Q3): among
/// candidate calls `(queue, queue weight, call)`, the most deserving is the
/// one with the higher priority, then the longer weighted wait
/// `(now_ms - enqueued_at_ms) * weight` (a call enqueued after `now_ms`
/// has waited 0; the caller passes weight 1 for a queue without one), then
/// the lower queue id, then the lower sequence; among exact duplicates the
/// first listed. Returns the winner's index, `None` for no candidates.
pub fn most_deserving(candidates: &[(QueueId, u32, &WaitingCall)], now_ms: u64) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .min_by_key(|(_, (queue, weight, call))| {
            let waited_ms = u128::from(now_ms.saturating_sub(call.enqueued_at_ms));
            (
                Reverse(call.priority),
                Reverse(waited_ms * u128::from(*weight)),
                *queue,
                call.sequence,
            )
        })
        .map(|(position, _)| position)
}

/// Q4: whether `missed_in_row` consecutive missed offers reach the queue's
/// auto-pause threshold. Never, when the queue has none.
pub fn should_auto_pause(spec: &QueueSpec, missed_in_row: u32) -> bool {
    spec.auto_pause_after_missed
        .is_some_and(|threshold| missed_in_row >= threshold)
}

/// The eligibility rule for one call at one instant, with the required
/// levels worked out once.
#[derive(Debug)]
struct Eligibility {
    now_ms: u64,
    /// Each required skill with the level in force; `None` levels are dropped.
    levels: Vec<(SkillId, u8)>,
}

impl Eligibility {
    fn new(spec: &QueueSpec, call: &WaitingCall, now_ms: u64) -> Self {
        let waited_ms = now_ms.saturating_sub(call.enqueued_at_ms);
        let levels = spec
            .required_skills
            .iter()
            .filter_map(|requirement| {
                required_level(spec, requirement, waited_ms).map(|level| (requirement.skill, level))
            })
            .collect();
        Self { now_ms, levels }
    }

    fn admits(&self, agent: &AgentInfo) -> bool {
        agent.available
            && agent.not_before_ms <= self.now_ms
            && self
                .levels
                .iter()
                .all(|(skill, level)| skill_level(agent, *skill) >= *level)
    }
}

/// An agent's level in `skill`, 0 when it lacks it.
fn skill_level(agent: &AgentInfo, skill: SkillId) -> u8 {
    agent.skills.get(&skill).copied().unwrap_or(0)
}
