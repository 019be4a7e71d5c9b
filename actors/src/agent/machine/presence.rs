//! The agent machine's presence: its A4 state derived from the ledger and
//! its devices, the transitions it tells (with who caused them), its
//! reports to the queues, and A8/A2 upkeep (recording a disconnection,
//! timing out a phone login).

use std::collections::BTreeSet;

use super::*;

impl AgentMachine {
    pub(super) fn derive_state(&self) -> AgentState {
        crate::ledger::agent_state(
            self.present(),
            &self.snapshot.voice.voice,
            self.snapshot.paused,
            self.any_reachable(),
        )
    }

    pub(super) fn send(&self, to: Address, message: Message, out: &mut Vec<AgentOutput>) {
        out.push(AgentOutput::Send(Envelope {
            to,
            message,
            hops: 0,
        }));
    }

    pub(super) fn report(&self, queue: QueueId) -> AgentReport {
        let v = &self.snapshot.voice;
        AgentReport {
            agent: self.user,
            member: self.snapshot.queues.contains(&queue) && self.present(),
            available: self.available(),
            skills: self.snapshot.skills.clone(),
            idle_since_ms: v.idle_since_ms,
            last_offered_ms: v.last_offered_ms,
            calls_taken: v.calls_taken,
            talk_time_ms: v.talk_time_ms,
            not_before_ms: v.not_before_ms,
            state: self.derive_state(),
        }
    }

    /// Tells every queue that should know what changed, and emits the A4
    /// transition with its reason; the call flow caused it.
    pub(super) fn publish(&mut self, reason: &str, out: &mut Vec<AgentOutput>) {
        let by = Author::System {
            rule: SystemRule::CallFlow,
        };
        self.publish_by(reason.to_string(), by, out);
    }

    /// [`Self::publish`] for a transition `by` caused.
    pub(super) fn publish_by(&mut self, reason: String, by: Author, out: &mut Vec<AgentOutput>) {
        let state = self.derive_state();
        if state == AgentState::Disconnected {
            self.disconnected_since.get_or_insert(self.now_ms);
        } else {
            self.disconnected_since = None;
        }
        if state != self.state {
            self.state = state;
            out.push(AgentOutput::Event(AgentEvent::StateChanged {
                state,
                reason,
                by,
            }));
        }
        self.record_reachability(out);
        let queues: BTreeSet<QueueId> = self
            .snapshot
            .queues
            .iter()
            .chain(self.last_reports.keys())
            .copied()
            .collect();
        for queue in queues {
            let report = self.report(queue);
            if self.last_reports.get(&queue) == Some(&report) {
                continue;
            }
            if report.member {
                self.last_reports.insert(queue, report.clone());
            } else {
                self.last_reports.remove(&queue);
            }
            self.send(
                Address::queue(self.tenant, queue),
                Message::Queue(QueueMsg::Agent(Box::new(report))),
                out,
            );
        }
    }

    /// A8: records in the ledger that the agent is disconnected (after
    /// [`DISCONNECTED_AFTER_MS`] without a reachable device) or reachable
    /// again, once per change.
    pub(super) fn record_reachability(&mut self, out: &mut Vec<AgentOutput>) {
        if !self.has_snapshot || !self.snapshot.logged_in || self.reach_pending {
            return;
        }
        let reachable = if self.any_reachable() {
            true
        } else if self
            .disconnected_since
            .is_some_and(|since| self.now_ms.saturating_sub(since) >= DISCONNECTED_AFTER_MS)
        {
            false
        } else {
            return;
        };
        if self.reach_recorded == Some(reachable) {
            return;
        }
        self.reach_pending = true;
        out.push(AgentOutput::Ledger {
            op: AgentOp::Reachability { reachable },
            command: Box::new(Command::SetReachable {
                tenant: self.tenant,
                user: self.user,
                reachable,
            }),
        });
    }

    /// A2: logs the phone terminals out once every device has been
    /// unreachable for [`PHONE_SESSION_TIMEOUT_MS`].
    pub(super) fn time_out_phone(&mut self, now_ms: u64, out: &mut Vec<AgentOutput>) {
        let Some(since) = self.disconnected_since else {
            return;
        };
        if self.timing_out || now_ms.saturating_sub(since) < PHONE_SESSION_TIMEOUT_MS {
            return;
        }
        let phones: Vec<String> = self
            .snapshot
            .terminals
            .iter()
            .filter(|t| t.starts_with("phone-"))
            .cloned()
            .collect();
        if phones.is_empty() {
            return;
        }
        self.timing_out = true;
        let by = Author::System {
            rule: SystemRule::PhoneTimeout,
        };
        out.push(AgentOutput::Event(AgentEvent::StateChanged {
            state: AgentState::LoggedOut,
            reason: "A2: the agent's phone stopped answering; logged out of it".into(),
            by: by.clone(),
        }));
        for terminal in phones {
            out.push(AgentOutput::Ledger {
                op: AgentOp::TimeOut,
                command: Box::new(Command::By {
                    from: None,
                    by: by.clone(),
                    inner: Box::new(Command::Logout {
                        tenant: self.tenant,
                        user: self.user,
                        terminal,
                    }),
                }),
            });
        }
    }
}
