//! The end of a call: every leg down, the ledger told once, and the
//! activity record (part of the call machine).

use super::io::*;
use super::machine::{CallMachine, Phase};
use crate::ledger::Command;
use crate::messages::{Address, AgentMsg, EdgeRequest, LegRequest, Message, QueueMsg};
use crate::model::activity::{ActivityOutcome, ActivityRecord, Direction, Segment};
use crate::model::UserId;

impl CallMachine {
    /// Ends the call: every leg down, the ledger told once.
    pub(super) fn finish(&mut self, now_ms: u64, out: &mut Vec<CallOutput>) {
        if self.closing_asked {
            return;
        }
        self.closing_asked = true;
        self.phase = Phase::Ending;
        self.hang_up_forks(out);
        if self.caller_live {
            self.caller_live = false;
            let refusal = self.refusal.clone().or_else(|| self.exits.refusal());
            match refusal {
                Some((status, reason)) if !self.caller_answered => self.edge_leg(
                    LegRequest::Reject {
                        leg: self.setup.leg,
                        status,
                        reason,
                    },
                    out,
                ),
                _ => out.push(CallOutput::Edge {
                    node: self.setup.node,
                    request: EdgeRequest::Hangup {
                        leg: self.setup.leg,
                    },
                }),
            }
        }
        let connected = self.connected_at_ms.and(self.winner.map(|(a, _)| a));
        self.cancel_offered(now_ms, connected, out);
        let record = self.record(now_ms, connected);
        match connected {
            Some(agent) => {
                out.push(CallOutput::Ledger {
                    op: CallOp::EndCall { agent },
                    command: Box::new(Command::EndCall {
                        tenant: self.setup.tenant,
                        entry: self.setup.call.clone(),
                        user: agent,
                        record: Box::new(record),
                    }),
                });
                self.send(
                    Address::agent(self.setup.tenant, agent),
                    Message::Agent(AgentMsg::CallEnded {
                        entry: self.setup.call.clone(),
                        end: None,
                    }),
                    out,
                );
            }
            None => {
                if self.enqueued_at_ms.is_some() && self.exits.reason.is_none() {
                    self.send(
                        Address::queue(self.setup.tenant, self.setup.queue),
                        Message::Queue(QueueMsg::Gone {
                            entry: self.setup.call.clone(),
                        }),
                        out,
                    );
                }
                out.push(CallOutput::Ledger {
                    op: CallOp::Close,
                    command: Box::new(Command::CloseActivity {
                        tenant: self.setup.tenant,
                        record: Box::new(record),
                    }),
                });
            }
        }
    }

    pub(super) fn record(&self, now_ms: u64, agent: Option<UserId>) -> ActivityRecord {
        let mut segments = self.segments.clone();
        if let (Some(from_ms), false) = (self.enqueued_at_ms, self.exits.left_current) {
            segments.push(Segment::Queue {
                queue: self.setup.queue,
                from_ms,
                to_ms: self.connected_at_ms.unwrap_or(now_ms),
                reason: if self.connected_at_ms.is_some() {
                    "answered".into()
                } else {
                    "abandoned".into()
                },
            });
        }
        if let (Some(agent), Some(from_ms)) = (agent, self.connected_at_ms) {
            segments.push(Segment::Agent {
                agent,
                from_ms,
                to_ms: now_ms,
            });
        }
        // Chronological; a queue's segment before the offers it made.
        segments.sort_by_key(|s| match s {
            Segment::Queue { from_ms, .. } => (*from_ms, 0),
            Segment::Offer { from_ms, .. } => (*from_ms, 1),
            Segment::Agent { from_ms, .. } => (*from_ms, 2),
            Segment::WrapUp { from_ms, .. } => (*from_ms, 3),
        });
        let outcome = match (&self.refusal, agent) {
            (_, Some(_)) => ActivityOutcome::Answered,
            (None, None) if self.exits.reason.is_some() => ActivityOutcome::Exited {
                reason: self.exits.describe(),
            },
            (Some((status, reason)), None) => ActivityOutcome::Refused {
                status: *status,
                reason: reason.clone(),
            },
            (None, None) => ActivityOutcome::Abandoned,
        };
        let mut record = ActivityRecord {
            disposition: None,
            interventions: Vec::new(),
            id: self.setup.call.clone(),
            direction: Direction::Inbound,
            queue: Some(self.setup.queue),
            agent,
            caller: self.setup.caller.clone(),
            called: self.setup.called.clone(),
            started_at_ms: self.setup.arrived_at_ms,
            connected_at_ms: self.connected_at_ms,
            ended_at_ms: now_ms,
            closed_at_ms: now_ms,
            waiting_ms: 0,
            interaction_ms: 0,
            processing_ms: 0,
            outcome,
            segments,
            node: self.setup.node,
        };
        record.compute_times(
            self.first_enqueued_at_ms
                .unwrap_or(self.setup.arrived_at_ms),
        );
        record
    }
}
