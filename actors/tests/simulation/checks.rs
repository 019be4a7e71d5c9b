//! What the simulation checks after every step and at the end of a run.

use super::*;

impl Sim {
    pub(crate) fn waiting(&self, queue: QueueId) -> Vec<EntryInfo> {
        queue_snapshot(&self.ledger, self.tenant, queue, |_| None)
            .map(|s| s.waiting)
            .unwrap_or_default()
    }

    pub(crate) fn agent_info(&self, user: UserId) -> routing::AgentInfo {
        let t = self.ledger.tenant(self.tenant).expect("tenant");
        let level = t
            .find_user(user)
            .and_then(|u| {
                u.spec
                    .skills
                    .iter()
                    .find(|s| s.skill == self.skill)
                    .map(|s| s.level)
            })
            .unwrap_or(0);
        routing::AgentInfo {
            user,
            skills: [(self.skill, level)].into(),
            order: 0,
            available: true,
            idle_since_ms: 0,
            last_offered_ms: None,
            calls_taken: 0,
            talk_time_ms: 0,
            not_before_ms: 0,
        }
    }

    /// When a queue sends an offer, no more deserving call of it waits
    /// without one that this agent could take.
    pub(crate) fn check_offer_order(&self, queue: QueueId, info: &EntryInfo, agent: UserId) {
        let spec = &self
            .ledger
            .tenant(self.tenant)
            .expect("t")
            .queues()
            .find(|q| q.id == queue)
            .expect("q")
            .spec;
        let me = self.agent_info(agent);
        let call = |e: &EntryInfo| WaitingCall {
            entry: e.entry.clone(),
            priority: e.priority,
            sequence: e.sequence,
            enqueued_at_ms: e.enqueued_at_ms,
        };
        let offered = call(info);
        for e in self.waiting(queue) {
            let w = call(&e);
            let better = routing::service_order(&w, &offered) == std::cmp::Ordering::Less;
            let unoffered = self.offered.get(&e.entry).is_none_or(|a| a.is_empty());
            if better && unoffered && routing::is_eligible(spec, &me, &w, self.now) {
                panic!(
                    "seed {}: {} was offered to {agent} while {} (more deserving) waited unoffered",
                    self.scenario.seed, info.entry, e.entry
                );
            }
        }
    }

    /// Quiet bus: no call waits unoffered while an agent could take it.
    pub(crate) fn check_no_idle_agent_while_waiting(&self) {
        let t = self.ledger.tenant(self.tenant).expect("t");
        for &queue in &self.queue_ids {
            let spec = &t.queues().find(|q| q.id == queue).expect("q").spec;
            for e in self.waiting(queue) {
                if self.offered.get(&e.entry).is_some_and(|a| !a.is_empty()) {
                    continue;
                }
                let w = WaitingCall {
                    entry: e.entry.clone(),
                    priority: e.priority,
                    sequence: e.sequence,
                    enqueued_at_ms: e.enqueued_at_ms,
                };
                let users: BTreeSet<UserId> = self.devices.values().copied().collect();
                for user in users {
                    let voice = t.agent_voice(user);
                    let session = t.session(user);
                    let free = voice.voice == Voice::Idle
                        && voice.not_before_ms <= self.now
                        && session
                            .is_some_and(|s| s.pause.is_none() && s.checked_in.contains(&queue));
                    if free && routing::is_eligible(spec, &self.agent_info(user), &w, self.now) {
                        panic!(
                            "seed {}: {} waits unoffered at {} while agent {user} is free",
                            self.scenario.seed, e.entry, self.now
                        );
                    }
                }
            }
        }
    }
}

/// What every run must end with; the reason it does not.
pub(crate) fn check_outcome(sim: &Sim, s: &Scenario) -> Result<(), TestCaseError> {
    let t = sim.ledger.tenant(sim.tenant).expect("tenant");
    for (entry, call) in &sim.calls {
        // Every phone answers after a minute: every call ends.
        prop_assert!(call.ended, "seed {}: {entry} never ended", s.seed);
        prop_assert!(
            t.activities().is_closed(entry),
            "seed {}: {entry} ended without a record",
            s.seed
        );
    }
    prop_assert!(
        sim.calls.len() == s.calls,
        "seed {}: every call arrived",
        s.seed
    );
    let records = t.activities().last_seq();
    let ended = sim.calls.values().filter(|c| c.ended).count() as u64;
    prop_assert_eq!(records, ended, "seed {}: one record per ended call", s.seed);
    for user in sim.devices.values() {
        prop_assert_eq!(
            t.agent_voice(*user).voice.clone(),
            Voice::Idle,
            "seed {}: agents end idle",
            s.seed
        );
    }
    Ok(())
}
