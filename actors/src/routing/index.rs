//! The agents of one queue, indexed by what each strategy orders by.
//!
//! Invariant: every ordered set holds exactly one key per available agent,
//! built from that agent's current fields, and no key of an unavailable or
//! removed agent ([`QueueIndex::check_invariants`]).

use super::AgentInfo;
use crate::model::UserId;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound::{Excluded, Included, Unbounded};

/// What an ordered strategy ranks available agents by; ties by `UserId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ranking {
    /// `order`, lower first (linear).
    Order,
    /// `idle_since_ms`, earlier first (longest-idle).
    Idle,
    /// `last_offered_ms`, never offered first, then earlier (least-recent).
    LastOffered,
    /// `calls_taken`, fewer first (fewest-calls).
    Calls,
    /// `talk_time_ms`, less first (least-talk-time).
    TalkTime,
}

/// The skills-based key: levels summed over the required skills (higher
/// first), then idle since (earlier first).
type SkillKey = (std::cmp::Reverse<u32>, u64);

/// A skill requirement in force: each skill with its minimum level.
pub type Levels = Vec<(crate::model::SkillId, u8)>;

fn meets(agent: &AgentInfo, levels: &Levels) -> bool {
    levels
        .iter()
        .all(|(skill, level)| agent.skills.get(skill).copied().unwrap_or(0) >= *level)
}

/// The agents of one queue. Every change costs O(log n).
#[derive(Debug, Clone, Default)]
pub struct QueueIndex {
    agents: BTreeMap<UserId, AgentInfo>,
    available: BTreeSet<UserId>,
    by_order: BTreeSet<(u32, UserId)>,
    by_idle: BTreeSet<(u64, UserId)>,
    by_last_offered: BTreeSet<(Option<u64>, UserId)>,
    by_calls: BTreeSet<(u64, UserId)>,
    by_talk_time: BTreeSet<(u64, UserId)>,
    /// Skills-based ranking, one set per skill requirement the queue's
    /// relaxation steps put in force: the agents that meet it, by
    /// [`SkillKey`]. A call looks in the set of the levels in force for it
    /// and skips only agents backed off (Q4).
    skill_sets: Vec<(Levels, BTreeSet<(SkillKey, UserId)>)>,
    /// The skills the skill key sums levels over (the queue's).
    required: Vec<crate::model::SkillId>,
    /// Round-robin memory: the member-order position of the last agent
    /// chosen. A position, not an agent, so it survives that agent leaving.
    cursor: Option<(u32, UserId)>,
}

impl QueueIndex {
    /// An index with no agents and no round-robin memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// The skills the skill ranking sums levels over: the queue's required
    /// skills. O(n log n) when they change (with the queue's settings),
    /// nothing otherwise.
    pub fn set_required_skills(&mut self, skills: Vec<crate::model::SkillId>, steps: Vec<Levels>) {
        let current: Vec<&Levels> = self.skill_sets.iter().map(|(l, _)| l).collect();
        if skills == self.required && steps.iter().collect::<Vec<_>>() == current {
            return;
        }
        self.required = skills;
        let sets = steps
            .into_iter()
            .map(|levels| {
                let set = self
                    .available()
                    .filter(|agent| meets(agent, &levels))
                    .map(|agent| (self.skill_key(agent), agent.user))
                    .collect();
                (levels, set)
            })
            .collect();
        self.skill_sets = sets;
    }

    /// The best-skilled agent `admits` accepts among those meeting
    /// `levels`; `None` when the index keeps no set for `levels` (the
    /// caller scans instead). O(log n) plus the agents skipped.
    pub(super) fn first_skilled(
        &self,
        levels: &Levels,
        admits: impl Fn(&AgentInfo) -> bool,
    ) -> Option<Option<UserId>> {
        let (_, set) = self.skill_sets.iter().find(|(l, _)| l == levels)?;
        Some(
            set.iter()
                .map(|(_, user)| *user)
                .find(|user| admits(self.agent(*user))),
        )
    }

    /// The skills the skill ranking sums over.
    pub fn required_skills(&self) -> &[crate::model::SkillId] {
        &self.required
    }

    fn skill_key(&self, agent: &AgentInfo) -> SkillKey {
        let levels: u32 = self
            .required
            .iter()
            .map(|s| u32::from(agent.skills.get(s).copied().unwrap_or(0)))
            .sum();
        (std::cmp::Reverse(levels), agent.idle_since_ms)
    }

    /// Adds `agent` or replaces the entry with its `user`; returns the
    /// replaced entry. O(log n).
    pub fn upsert(&mut self, agent: AgentInfo) -> Option<AgentInfo> {
        let previous = self.remove(agent.user);
        if agent.available {
            let user = agent.user;
            self.available.insert(user);
            self.by_order.insert((agent.order, user));
            self.by_idle.insert((agent.idle_since_ms, user));
            self.by_last_offered.insert((agent.last_offered_ms, user));
            self.by_calls.insert((agent.calls_taken, user));
            self.by_talk_time.insert((agent.talk_time_ms, user));
            let key = (self.skill_key(&agent), user);
            for (levels, set) in &mut self.skill_sets {
                if meets(&agent, levels) {
                    set.insert(key);
                }
            }
        }
        self.agents.insert(agent.user, agent);
        previous
    }

    /// Removes `user`; returns its entry. The round-robin memory keeps its
    /// position. O(log n).
    pub fn remove(&mut self, user: UserId) -> Option<AgentInfo> {
        let agent = self.agents.remove(&user)?;
        if agent.available {
            self.available.remove(&user);
            self.by_order.remove(&(agent.order, user));
            self.by_idle.remove(&(agent.idle_since_ms, user));
            self.by_last_offered.remove(&(agent.last_offered_ms, user));
            self.by_calls.remove(&(agent.calls_taken, user));
            self.by_talk_time.remove(&(agent.talk_time_ms, user));
            let key = (self.skill_key(&agent), user);
            for (_, set) in &mut self.skill_sets {
                set.remove(&key);
            }
        }
        Some(agent)
    }

    /// The entry of `user`.
    pub fn get(&self, user: UserId) -> Option<&AgentInfo> {
        self.agents.get(&user)
    }

    /// Available agents (whatever their back-off or skills), in `UserId`
    /// order.
    pub fn available(&self) -> impl Iterator<Item = &AgentInfo> + '_ {
        self.available.iter().map(|user| self.agent(*user))
    }

    /// Number of agents, available or not.
    pub fn len(&self) -> usize {
        self.agents.len()
    }

    /// Whether the index has no agents.
    pub fn is_empty(&self) -> bool {
        self.agents.is_empty()
    }

    /// Records that `user` was chosen (offered a call): round-robin routing
    /// continues after its current `order`. Call it when making an offer,
    /// whatever the strategy. Returns false, leaving the memory alone, when
    /// `user` is not in the index.
    pub fn chosen(&mut self, user: UserId) -> bool {
        match self.agents.get(&user) {
            Some(agent) => {
                self.cursor = Some((agent.order, user));
                true
            }
            None => false,
        }
    }

    /// The agent last recorded by [`QueueIndex::chosen`], if any.
    pub fn last_chosen(&self) -> Option<UserId> {
        self.cursor.map(|(_, user)| user)
    }

    /// Asserts the part of the index invariant that concerns `user` (its
    /// keys are current and only present while it is available) and that
    /// every ordered set has one key per available agent. O(log n): cheap
    /// enough to run for each agent a step touched, in production.
    pub fn check_agent(&self, user: UserId) {
        self.check_sizes(self.available.len());
        match self.agents.get(&user) {
            Some(agent) if agent.available => {
                assert_eq!(agent.user, user, "an agent is filed under its own id");
                assert!(
                    self.available.contains(&user),
                    "{user} is in the available set"
                );
                self.check_keys(agent);
            }
            _ => assert!(
                !self.available.contains(&user),
                "{user} is not available and not in the available set"
            ),
        }
    }

    fn check_sizes(&self, available: usize) {
        for len in [
            self.by_order.len(),
            self.by_idle.len(),
            self.by_last_offered.len(),
            self.by_calls.len(),
            self.by_talk_time.len(),
        ] {
            assert_eq!(
                len, available,
                "one key per available agent in every ordered set"
            );
        }
    }

    fn check_keys(&self, agent: &AgentInfo) {
        let user = agent.user;
        assert!(
            self.by_order.contains(&(agent.order, user)),
            "order key of {user} is current"
        );
        assert!(
            self.by_idle.contains(&(agent.idle_since_ms, user)),
            "idle key of {user} is current"
        );
        assert!(
            self.by_last_offered
                .contains(&(agent.last_offered_ms, user)),
            "last-offered key of {user} is current"
        );
        assert!(
            self.by_calls.contains(&(agent.calls_taken, user)),
            "calls key of {user} is current"
        );
        assert!(
            self.by_talk_time.contains(&(agent.talk_time_ms, user)),
            "talk-time key of {user} is current"
        );
        for (levels, set) in &self.skill_sets {
            assert_eq!(
                set.contains(&(self.skill_key(agent), user)),
                meets(agent, levels),
                "the skill sets of {user} are current"
            );
            assert!(
                set.len() <= self.available.len(),
                "skill sets hold available agents"
            );
        }
    }

    /// Asserts the whole index invariant (see the module documentation).
    /// O(n log n): the queue runs it on each periodic snapshot, which costs
    /// O(n) anyway, and [`QueueIndex::check_agent`] on every other step.
    pub fn check_invariants(&self) {
        let available = self.agents.values().filter(|a| a.available).count();
        assert_eq!(
            self.available.len(),
            available,
            "the available set holds exactly the available agents"
        );
        for (user, agent) in &self.agents {
            assert_eq!(*user, agent.user, "an agent is filed under its own id");
        }
        for agent in self.available() {
            assert!(agent.available, "only available agents are indexed");
            self.check_keys(agent);
        }
        self.check_sizes(available);
    }

    /// The first available agent by `ranking` that `admits` accepts.
    pub(super) fn first(
        &self,
        ranking: Ranking,
        admits: impl Fn(&AgentInfo) -> bool,
    ) -> Option<UserId> {
        match ranking {
            Ranking::Order => self.first_in(&self.by_order, &admits),
            Ranking::Idle => self.first_in(&self.by_idle, &admits),
            Ranking::LastOffered => self.first_in(&self.by_last_offered, &admits),
            Ranking::Calls => self.first_in(&self.by_calls, &admits),
            Ranking::TalkTime => self.first_in(&self.by_talk_time, &admits),
        }
    }

    fn first_in<K>(
        &self,
        set: &BTreeSet<(K, UserId)>,
        admits: &impl Fn(&AgentInfo) -> bool,
    ) -> Option<UserId> {
        set.iter()
            .map(|(_, user)| *user)
            .find(|user| admits(self.agent(*user)))
    }

    /// Round-robin with memory: the first available agent that `admits`
    /// accepts after the remembered position in member order, wrapping
    /// around (back to the last chosen agent itself, last). Without memory,
    /// the first in member order.
    pub(super) fn next_round_robin(&self, admits: impl Fn(&AgentInfo) -> bool) -> Option<UserId> {
        let (after, wrapped) = match self.cursor {
            Some(position) => (
                self.by_order.range((Excluded(position), Unbounded)),
                Some(self.by_order.range((Unbounded, Included(position)))),
            ),
            None => (self.by_order.range(..), None),
        };
        after
            .chain(wrapped.into_iter().flatten())
            .map(|(_, user)| *user)
            .find(|user| admits(self.agent(*user)))
    }

    /// An indexed agent; the sets only hold agents of the map.
    fn agent(&self, user: UserId) -> &AgentInfo {
        match self.agents.get(&user) {
            Some(agent) => agent,
            None => panic!("index key of {user} names an agent of the queue"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    fn agent(id: u64, available: bool) -> AgentInfo {
        AgentInfo {
            user: UserId(id),
            skills: BTreeMap::new(),
            order: u32::try_from(id).expect("small test ids"),
            available,
            idle_since_ms: id * 10,
            last_offered_ms: None,
            calls_taken: 0,
            talk_time_ms: 0,
            not_before_ms: 0,
        }
    }

    fn panics(f: impl FnOnce()) -> bool {
        catch_unwind(AssertUnwindSafe(f)).is_err()
    }

    #[test]
    fn the_per_agent_check_finds_what_the_full_check_finds() {
        let mut index = QueueIndex::new();
        for id in 1..=5 {
            index.upsert(agent(id, id != 3));
        }
        for id in 1..=6 {
            index.check_agent(UserId(id));
        }
        index.check_invariants();

        // A key left stale: agent 2's idle time changed behind the index.
        let mut stale = index.clone();
        if let Some(a) = stale.agents.get_mut(&UserId(2)) {
            a.idle_since_ms = 999;
        }
        assert!(panics(|| stale.check_agent(UserId(2))), "stale key of 2");
        assert!(panics(|| stale.check_invariants()), "stale key, full");

        // An unavailable agent left in the available set (and its keys).
        let mut leaked = index.clone();
        leaked.available.insert(UserId(3));
        assert!(panics(|| leaked.check_agent(UserId(3))), "3 leaked");
        assert!(panics(|| leaked.check_agent(UserId(1))), "set sizes differ");
        assert!(panics(|| leaked.check_invariants()), "leaked, full");

        // A key missing from one ordered set.
        let mut missing = index.clone();
        missing.by_talk_time.remove(&(0, UserId(4)));
        assert!(panics(|| missing.check_agent(UserId(4))), "talk key of 4");
        assert!(panics(|| missing.check_invariants()), "missing, full");
    }
}
