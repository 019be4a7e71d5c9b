//! The call's forks to agents' devices: their answers and ends, and
//! hanging them up (part of the call machine).

use super::io::*;
use super::machine::{CallMachine, Phase};
use crate::ledger::Command;
use crate::messages::{Address, AgentMsg, EdgeRequest, LegNotice, LegRef, LegRequest, Message};
use crate::model::activity::{OfferEnd, Segment};
use crate::model::UserId;

pub(super) fn fork_end(notice: &LegNotice) -> OfferEnd {
    match notice {
        LegNotice::Ended { reason, status } => match (reason.as_str(), status) {
            ("rejected", Some(486 | 600)) => OfferEnd::Busy,
            ("rejected", Some(603)) => OfferEnd::Rejected,
            ("rejected", Some(408 | 480 | 487)) => OfferEnd::NoAnswer,
            ("local_hangup", _) => OfferEnd::Cancelled,
            ("transport_failed", _) => OfferEnd::Unreachable,
            _ => OfferEnd::Failed,
        },
        _ => OfferEnd::Failed,
    }
}

impl CallMachine {
    pub(super) fn close_offer(&mut self, agent: UserId, result: OfferEnd, now_ms: u64) {
        if let Some(from_ms) = self.offers.remove(&agent) {
            self.segments.push(Segment::Offer {
                agent,
                from_ms,
                to_ms: now_ms,
                result,
            });
        }
    }

    /// Hangs up every fork still up.
    pub(super) fn hang_up_forks(&mut self, out: &mut Vec<CallOutput>) {
        let live: Vec<LegRef> = self
            .forks
            .iter()
            .filter(|(_, f)| f.live)
            .map(|(l, _)| *l)
            .collect();
        for leg in live {
            self.hang_up_fork(leg, out);
        }
    }

    /// Stops every offer of the call: forks hung up, agents told (it
    /// leaves its queue for an exit).
    pub(super) fn cancel_offers(&mut self, now_ms: u64, out: &mut Vec<CallOutput>) {
        self.hang_up_forks(out);
        self.cancel_offered(now_ms, None, out);
    }

    /// Closes every open offer as cancelled and tells its agent, but
    /// `keep`'s (the agent connected to the call).
    pub(super) fn cancel_offered(
        &mut self,
        now_ms: u64,
        keep: Option<UserId>,
        out: &mut Vec<CallOutput>,
    ) {
        let offered: Vec<UserId> = self.offers.keys().copied().collect();
        for agent in offered {
            self.close_offer(agent, OfferEnd::Cancelled, now_ms);
            if Some(agent) != keep {
                self.send(
                    Address::agent(self.setup.tenant, agent),
                    Message::Agent(AgentMsg::CallEnded {
                        entry: self.setup.call.clone(),
                        end: Some(OfferEnd::Cancelled),
                    }),
                    out,
                );
            }
        }
    }

    pub(super) fn hang_up_fork(&mut self, leg: LegRef, out: &mut Vec<CallOutput>) {
        if let Some(f) = self.forks.get_mut(&leg) {
            if f.live {
                f.live = false;
                out.push(CallOutput::Edge {
                    node: leg.node,
                    request: EdgeRequest::Hangup { leg: leg.leg },
                });
            }
        }
    }

    pub(super) fn on_fork(
        &mut self,
        now_ms: u64,
        leg: LegRef,
        event: LegNotice,
        out: &mut Vec<CallOutput>,
    ) {
        let Some(fork) = self.forks.get(&leg).cloned() else {
            return;
        };
        match event {
            LegNotice::Answered { sdp } => {
                if self.winner.is_some() || self.phase != Phase::Waiting || !fork.live {
                    // A second answer (ring-all), or too late: BYE it.
                    if let Some(f) = self.forks.get_mut(&leg) {
                        f.live = true;
                    }
                    self.hang_up_fork(leg, out);
                    return;
                }
                self.winner = Some((fork.agent, leg));
                self.answered_at_ms = Some(now_ms);
                self.phase = Phase::Connecting;
                let others: Vec<LegRef> = self
                    .forks
                    .iter()
                    .filter(|(l, f)| **l != leg && f.live)
                    .map(|(l, _)| *l)
                    .collect();
                for other in others {
                    self.hang_up_fork(other, out);
                }
                out.push(CallOutput::Media {
                    step: MediaStep::AgentAnswer,
                    request: MediaRequest::SetLeg {
                        leg: AGENT_LEG,
                        remote_sdp: sdp,
                    },
                });
                out.push(CallOutput::Media {
                    step: MediaStep::StopMusic,
                    request: MediaRequest::StopPlay { leg: CALLER_LEG },
                });
                if !self.caller_answered {
                    self.caller_answered = true;
                    let sdp = self.caller_answer.clone().unwrap_or_default();
                    self.edge_leg(
                        LegRequest::Answer {
                            leg: self.setup.leg,
                            sdp,
                        },
                        out,
                    );
                }
                out.push(CallOutput::Ledger {
                    op: CallOp::Connect {
                        agent: fork.agent,
                        leg,
                    },
                    command: Box::new(Command::ConnectCall {
                        tenant: self.setup.tenant,
                        entry: self.setup.call.clone(),
                        user: fork.agent,
                    }),
                });
            }
            LegNotice::Ended { .. } => {
                if let Some(f) = self.forks.get_mut(&leg) {
                    f.live = false;
                }
                if self.winner.map(|(_, l)| l) == Some(leg) {
                    match self.phase {
                        Phase::Connected => self.finish(now_ms, out),
                        // Finished when the connection's answer comes.
                        Phase::Connecting => {}
                        _ => {}
                    }
                    return;
                }
                if self.offers.contains_key(&fork.agent) && self.phase == Phase::Waiting {
                    self.send(
                        Address::agent(self.setup.tenant, fork.agent),
                        Message::Agent(AgentMsg::ForkEnded {
                            entry: self.setup.call.clone(),
                            device: fork.device,
                            end: fork_end(&event),
                        }),
                        out,
                    );
                }
            }
            LegNotice::Progress { .. } | LegNotice::Confirmed | LegNotice::Info { .. } => {}
        }
    }
}
