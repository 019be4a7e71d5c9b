//! Who a queue's empty policies count (Q5): the queue's members that are
//! logged in, and those of them that count as available under the queue's
//! `empty_counts`. Kept per agent as reports arrive, so that asking whether
//! the queue is empty costs O(1) and an agent's change O(log n).
//!
//! A member whose report has not arrived yet (a queue actor that just
//! started) counts as logged in and available: a queue never turns callers
//! away for what it does not know yet.

use std::collections::BTreeSet;

use crate::model::agent_status::AgentState;
use crate::model::queue::{EmptyCounts, EmptyPolicy};
use crate::model::UserId;

/// What the queue knows of one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// Not a member, or a member that reported it is not in the queue.
    Absent,
    /// A member that has not reported yet.
    Unknown,
    /// A member in this state.
    State(AgentState),
}

/// Whether an agent in `state` counts as available.
pub fn counts(state: AgentState, counts: &EmptyCounts) -> bool {
    match state {
        AgentState::Idle => true,
        AgentState::Offered => counts.ringing,
        AgentState::Talking => counts.talking,
        AgentState::WrapUp => counts.wrap_up,
        AgentState::Paused => counts.paused,
        AgentState::Disconnected => counts.unreachable,
        AgentState::LoggedOut => false,
    }
}

/// The counted agents of one queue.
#[derive(Debug, Clone, Default)]
pub struct Pool {
    logged_in: BTreeSet<UserId>,
    available: BTreeSet<UserId>,
}

impl Pool {
    /// Records what is known of `user`.
    pub fn update(&mut self, user: UserId, known: Known, rule: &EmptyCounts) {
        let (logged_in, available) = match known {
            Known::Absent => (false, false),
            Known::Unknown => (true, true),
            Known::State(AgentState::LoggedOut) => (false, false),
            Known::State(s) => (true, counts(s, rule)),
        };
        set(&mut self.logged_in, user, logged_in);
        set(&mut self.available, user, available);
    }

    /// Whether `policy` finds the queue empty.
    pub fn empty(&self, policy: EmptyPolicy) -> bool {
        match policy {
            EmptyPolicy::Always => false,
            EmptyPolicy::WhenNoAgentLoggedIn => self.logged_in.is_empty(),
            EmptyPolicy::WhenNoAgentAvailable => self.available.is_empty(),
        }
    }

    /// Agents counted as available (serving the queue).
    pub fn serving(&self) -> usize {
        self.available.len()
    }

    /// Panics if an available agent is not logged in (a bug here).
    pub fn check_invariants(&self) {
        assert!(
            self.available.is_subset(&self.logged_in),
            "an agent counted available is logged in"
        );
    }
}

fn set(of: &mut BTreeSet<UserId>, user: UserId, member: bool) {
    if member {
        of.insert(user);
    } else {
        of.remove(&user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Q5's declared factors: which state counts for "no agent available"
    /// under the default rule and with every factor turned on.
    #[test]
    fn the_factors_table() {
        let all = EmptyCounts {
            paused: true,
            ringing: true,
            talking: true,
            wrap_up: true,
            unreachable: true,
        };
        let none = EmptyCounts {
            paused: false,
            ringing: false,
            talking: false,
            wrap_up: false,
            unreachable: false,
        };
        let default = EmptyCounts::default();
        for (state, by_default, with_all, with_none) in [
            (AgentState::Idle, true, true, true),
            (AgentState::Offered, true, true, false),
            (AgentState::Talking, true, true, false),
            (AgentState::WrapUp, true, true, false),
            (AgentState::Paused, false, true, false),
            (AgentState::Disconnected, false, true, false),
            (AgentState::LoggedOut, false, false, false),
        ] {
            assert_eq!(counts(state, &default), by_default, "{state:?} by default");
            assert_eq!(counts(state, &all), with_all, "{state:?} with all");
            assert_eq!(counts(state, &none), with_none, "{state:?} with none");
        }
    }

    #[test]
    fn policies_read_the_counted_agents() {
        let rule = EmptyCounts::default();
        let mut pool = Pool::default();
        let (a, b) = (UserId(1), UserId(2));
        assert!(pool.empty(EmptyPolicy::WhenNoAgentLoggedIn));
        assert!(!pool.empty(EmptyPolicy::Always));
        pool.update(a, Known::Unknown, &rule);
        assert!(
            !pool.empty(EmptyPolicy::WhenNoAgentAvailable),
            "unknown counts"
        );
        pool.update(a, Known::State(AgentState::Paused), &rule);
        assert!(!pool.empty(EmptyPolicy::WhenNoAgentLoggedIn));
        assert!(pool.empty(EmptyPolicy::WhenNoAgentAvailable));
        pool.update(b, Known::State(AgentState::Talking), &rule);
        assert!(!pool.empty(EmptyPolicy::WhenNoAgentAvailable));
        pool.update(b, Known::Absent, &rule);
        pool.update(a, Known::State(AgentState::LoggedOut), &rule);
        assert!(pool.empty(EmptyPolicy::WhenNoAgentLoggedIn));
        pool.check_invariants();
    }
}
