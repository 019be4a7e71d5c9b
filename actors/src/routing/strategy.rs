//! The strategies of Q1 over the eligible agents of one queue.
//!
//! Invariant: every strategy returns eligible agents only, and at least one
//! when any agent is eligible; ties are broken by `UserId`.

use super::index::{QueueIndex, Ranking};
use super::{skill_level, AgentInfo, Eligibility};
use crate::model::queue::{AgentWeight, QueueSpec, Strategy};
use crate::model::UserId;
use rand::{Rng, RngCore};
use std::cmp::Reverse;
use std::collections::BTreeMap;

/// The agents `spec`'s strategy offers the call to: every eligible agent for
/// ring-all, otherwise at most one. Empty when none is eligible.
pub(super) fn select(
    spec: &QueueSpec,
    index: &QueueIndex,
    filter: &Eligibility,
    rng: &mut impl RngCore,
) -> Vec<UserId> {
    let admits = |agent: &AgentInfo| filter.admits(agent);
    let one = match &spec.strategy {
        Strategy::RingAll => return eligible(index, filter).map(|a| a.user).collect(),
        Strategy::LongestIdle => index.first(Ranking::Idle, admits),
        Strategy::LeastRecent => index.first(Ranking::LastOffered, admits),
        Strategy::FewestCalls => index.first(Ranking::Calls, admits),
        Strategy::LeastTalkTime => index.first(Ranking::TalkTime, admits),
        Strategy::Linear => index.first(Ranking::Order, admits),
        Strategy::RoundRobinMemory => index.next_round_robin(admits),
        Strategy::Random => uniform(&eligible(index, filter).collect::<Vec<_>>(), rng),
        Strategy::WeightedRandom { weights } => weighted(index, filter, weights, rng),
        Strategy::SkillsBased => best_skilled(spec, index, filter),
    };
    one.into_iter().collect()
}

/// Eligible agents in `UserId` order: a scan of the available agents.
fn eligible<'a>(
    index: &'a QueueIndex,
    filter: &'a Eligibility,
) -> impl Iterator<Item = &'a AgentInfo> + 'a {
    index.available().filter(|agent| filter.admits(agent))
}

/// One of `agents`, uniformly; one draw when `agents` is not empty.
fn uniform(agents: &[&AgentInfo], rng: &mut impl RngCore) -> Option<UserId> {
    if agents.is_empty() {
        return None;
    }
    Some(agents[rng.gen_range(0..agents.len())].user)
}

/// One eligible agent, drawn with probability proportional to its weight
/// (agents not listed weigh 1; the first weight listed for an agent counts).
/// Weights below 1 are refused by `QueueSpec::validate`; should every
/// eligible agent weigh 0 anyway, the draw is uniform, so an eligible agent
/// is always found.
fn weighted(
    index: &QueueIndex,
    filter: &Eligibility,
    weights: &[AgentWeight],
    rng: &mut impl RngCore,
) -> Option<UserId> {
    let mut weight_of = BTreeMap::new();
    for listed in weights {
        weight_of
            .entry(listed.user)
            .or_insert(u64::from(listed.weight));
    }
    let agents: Vec<(&AgentInfo, u64)> = eligible(index, filter)
        .map(|agent| (agent, weight_of.get(&agent.user).copied().unwrap_or(1)))
        .collect();
    let total: u64 = agents.iter().map(|(_, weight)| weight).sum();
    if total == 0 {
        let agents: Vec<&AgentInfo> = agents.iter().map(|(agent, _)| *agent).collect();
        return uniform(&agents, rng);
    }
    let mut draw = rng.gen_range(0..total);
    for (agent, weight) in agents {
        if draw < weight {
            return Some(agent.user);
        }
        draw -= weight;
    }
    unreachable!("a draw below the total weight falls in some agent's share")
}

/// The eligible agent with the highest sum of levels in the required skills
/// (missing skills count 0), then the longest idle, then the lowest
/// `UserId`. Q2's penalty/tier is not modelled: `AgentInfo` has none. An
/// index that ranks by the queue's skills answers in O(log n) (plus the
/// agents it skips as ineligible); any other is scanned.
fn best_skilled(spec: &QueueSpec, index: &QueueIndex, filter: &Eligibility) -> Option<UserId> {
    let required: Vec<_> = spec.required_skills.iter().map(|r| r.skill).collect();
    if index.required_skills() == required.as_slice() {
        if let Some(found) = index.first_skilled(&filter.levels, |agent| filter.admits(agent)) {
            return found;
        }
    }
    eligible(index, filter)
        .min_by_key(|agent| {
            let levels: u32 = spec
                .required_skills
                .iter()
                .map(|requirement| u32::from(skill_level(agent, requirement.skill)))
                .sum();
            (Reverse(levels), agent.idle_since_ms, agent.user)
        })
        .map(|agent| agent.user)
}
