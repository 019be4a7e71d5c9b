//! The call machine of an inbound queue call (C1, C2, C4, Q3, Q4), sans-IO.
//!
//! One per call, on the node whose SIP edge holds the caller's dialog. It
//! sets up the call's media session on a relay (the caller's leg answered,
//! the agents' leg offered), answers the caller (200, or 183 with early
//! media, per the queue), plays music on hold, enters the queue in the
//! ledger with the call's checkpoint, and then follows the offers: forks to
//! agents' devices are placed by the nodes that hold their registrations,
//! the first answer wins (every other fork is hung up: CANCEL, or BYE after
//! a late 2xx), the ledger assigns the entry to the winner, the relay
//! bridges the two legs. A hang-up on either side ends both; the activity
//! record is written once, by the ledger: at the end of after-call work for
//! a call an agent took, at once for one that never reached an agent.
//!
//! Invariants: at most one fork wins; no fork stays up once the call has a
//! winner or has ended; the machine asks the ledger to close the activity
//! (or to start after-call work) exactly once; nothing is output after
//! [`CallOutput::Stop`].

use std::collections::BTreeMap;

use super::io::*;
use crate::ledger::{CallCheckpoint, Command, Outcome, WriteError};
use crate::messages::{
    Address, AgentMsg, CallMsg, CallRef, EdgeRequest, EntryInfo, Envelope, LegNotice, LegRef,
    LegRequest, Message, QueueMsg,
};
use crate::model::activity::{ActivityOutcome, ActivityRecord, Direction, OfferEnd, Segment};
use crate::model::queue::{AnswerMode, ExitReason};
use crate::model::{DeviceId, QueueId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Setup,
    Enqueuing,
    Waiting,
    /// Leaving the queue for another (the ledger's answer pending).
    Moving,
    /// Playing the parting prompt of an exit, then hanging up.
    Leaving,
    Connecting,
    Connected,
    Ending,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Fork {
    agent: UserId,
    device: DeviceId,
    live: bool,
}

/// The call machine.
#[derive(Debug, Clone)]
pub struct CallMachine {
    pub(super) setup: CallSetup,
    pub(super) phase: Phase,
    caller_answer: Option<String>,
    agent_offer: Option<String>,
    pub(super) caller_answered: bool,
    pub(super) caller_live: bool,
    /// When the call entered its current queue.
    pub(super) enqueued_at_ms: Option<u64>,
    /// When it entered its first queue (its waiting time starts there).
    pub(super) first_enqueued_at_ms: Option<u64>,
    entry_sequence: u64,
    priority: u32,
    /// When the last enqueue was asked of the ledger.
    enqueue_asked_ms: u64,
    forks: BTreeMap<LegRef, Fork>,
    /// Agents offered and since when.
    offers: BTreeMap<UserId, u64>,
    winner: Option<(UserId, LegRef)>,
    connected_at_ms: Option<u64>,
    /// Segments closed so far (queues left, offers ended).
    pub(super) segments: Vec<Segment>,
    closing_asked: bool,
    refusal: Option<(u16, String)>,
    bridge_failed: bool,
    answered_at_ms: Option<u64>,
    /// The music on hold last asked of the relay.
    music: Option<String>,
    /// The queue exits' bookkeeping (Q5).
    pub(super) exits: super::exit::Exits,
}

fn fork_end(notice: &LegNotice) -> OfferEnd {
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
    /// A machine for a call the glue accepted.
    pub fn new(setup: CallSetup) -> Self {
        CallMachine {
            setup,
            phase: Phase::Setup,
            caller_answer: None,
            agent_offer: None,
            caller_answered: false,
            caller_live: true,
            enqueued_at_ms: None,
            first_enqueued_at_ms: None,
            entry_sequence: 0,
            priority: 0,
            enqueue_asked_ms: 0,
            forks: BTreeMap::new(),
            offers: BTreeMap::new(),
            winner: None,
            connected_at_ms: None,
            segments: Vec::new(),
            closing_asked: false,
            refusal: None,
            bridge_failed: false,
            answered_at_ms: None,
            music: None,
            exits: Default::default(),
        }
    }

    fn me(&self) -> CallRef {
        CallRef {
            node: self.setup.node,
            call: self.setup.call.clone(),
        }
    }

    fn caller_leg(&self) -> LegRef {
        LegRef {
            node: self.setup.node,
            leg: self.setup.leg,
        }
    }

    fn edge_leg(&self, request: LegRequest, out: &mut Vec<CallOutput>) {
        out.push(CallOutput::Edge {
            node: self.setup.node,
            request: EdgeRequest::Leg(Box::new(request)),
        });
    }

    pub(super) fn send(&self, to: Address, message: Message, out: &mut Vec<CallOutput>) {
        out.push(CallOutput::Send(Envelope {
            to,
            message,
            hops: 0,
        }));
    }

    /// Feeds one input.
    pub fn handle(&mut self, now_ms: u64, input: CallInput) -> Vec<CallOutput> {
        let mut out = Vec::new();
        if self.phase == Phase::Done {
            return out;
        }
        match input {
            CallInput::Start => out.push(CallOutput::Media {
                step: MediaStep::Create,
                request: MediaRequest::Create,
            }),
            CallInput::Media { step, result } => self.on_media(now_ms, step, result, &mut out),
            CallInput::Ledger { op, result } => self.on_ledger(now_ms, op, result, &mut out),
            CallInput::Message(m) => self.on_message(now_ms, m, &mut out),
        }
        self.check_invariants();
        out
    }

    fn on_media(
        &mut self,
        now_ms: u64,
        step: MediaStep,
        result: Result<MediaReply, String>,
        out: &mut Vec<CallOutput>,
    ) {
        match (step, result) {
            (MediaStep::Create, Ok(_)) => out.push(CallOutput::Media {
                step: MediaStep::CallerLeg,
                request: MediaRequest::SetLeg {
                    leg: CALLER_LEG,
                    remote_sdp: Some(self.setup.offer_sdp.clone()),
                },
            }),
            (MediaStep::CallerLeg, Ok(MediaReply::Sdp(sdp))) => {
                self.caller_answer = Some(sdp);
                out.push(CallOutput::Media {
                    step: MediaStep::AgentOffer,
                    request: MediaRequest::SetLeg {
                        leg: AGENT_LEG,
                        remote_sdp: None,
                    },
                });
            }
            (MediaStep::AgentOffer, Ok(MediaReply::Sdp(sdp))) => {
                self.agent_offer = Some(sdp);
                if !self.caller_live {
                    self.finish(now_ms, out);
                    return;
                }
                let answer = self.caller_answer.clone().unwrap_or_default();
                let leg = self.setup.leg;
                match self.setup.spec.answer {
                    AnswerMode::Answer => {
                        self.caller_answered = true;
                        self.edge_leg(LegRequest::Answer { leg, sdp: answer }, out);
                    }
                    AnswerMode::EarlyMedia => self.edge_leg(
                        LegRequest::Progress {
                            leg,
                            status: 183,
                            sdp: Some(answer),
                        },
                        out,
                    ),
                }
                self.play_music(self.queue_music(), out);
                self.enqueue(now_ms, self.setup.queue, out);
            }
            (MediaStep::AgentAnswer, Err(reason)) => {
                // The winner's media cannot be bridged: the call fails once
                // the ledger has answered the connection.
                self.refusal = Some((
                    500,
                    format!("the relay refused the agent's answer: {reason}"),
                ));
                self.bridge_failed = true;
            }
            (MediaStep::Create | MediaStep::CallerLeg | MediaStep::AgentOffer, result) => {
                let reason = match result {
                    Err(e) => e,
                    Ok(other) => format!("unexpected answer {other:?}"),
                };
                let (status, text) =
                    if reason.contains("NO_COMMON_CODEC") || reason.contains("BAD_SDP") {
                        (
                            488,
                            format!("Not Acceptable Here - the relay refused the offer: {reason}"),
                        )
                    } else {
                        (
                            503,
                            format!("Service Unavailable - no media relay for the call: {reason}"),
                        )
                    };
                self.refusal = Some((status, text));
                self.finish(now_ms, out);
            }
            (MediaStep::Music, Err(reason)) => {
                // A queue's music class the relay lacks: the default class,
                // then the relay's own melody; the caller never waits in
                // silence because of a missing file.
                let next = match self.music.as_deref() {
                    Some(BUILT_IN_MUSIC) => None,
                    Some(DEFAULT_MUSIC) => Some(BUILT_IN_MUSIC),
                    _ => Some(DEFAULT_MUSIC),
                };
                tracing::warn!(
                    call = %self.setup.call,
                    music = ?self.music,
                    fallback = ?next,
                    %reason,
                    "the relay cannot play the queue's music on hold"
                );
                if let Some(next) = next {
                    if matches!(self.phase, Phase::Enqueuing | Phase::Waiting) {
                        self.play_music(next.to_string(), out);
                    }
                }
            }
            (MediaStep::Events | MediaStep::PromptBaseline | MediaStep::Prompt, result) => {
                self.on_exit_media(now_ms, step, result, out)
            }
            // Music, its stop, the agent's answer and the removal need no step.
            _ => {}
        }
    }

    pub(super) fn play_music(&mut self, prompt: String, out: &mut Vec<CallOutput>) {
        self.music = Some(prompt.clone());
        out.push(CallOutput::Media {
            step: MediaStep::Music,
            request: MediaRequest::Music {
                leg: CALLER_LEG,
                prompt,
            },
        });
    }

    /// The current queue's music on hold.
    pub(super) fn queue_music(&self) -> String {
        self.setup
            .spec
            .music_on_hold
            .as_deref()
            .filter(|m| *m != "default")
            .map(|m| format!("moh-{m}"))
            .unwrap_or_else(|| DEFAULT_MUSIC.to_string())
    }

    /// Asks the ledger to put the caller in `queue`.
    pub(super) fn enqueue(&mut self, now_ms: u64, queue: QueueId, out: &mut Vec<CallOutput>) {
        self.phase = Phase::Enqueuing;
        self.enqueue_asked_ms = now_ms;
        out.push(CallOutput::Ledger {
            op: CallOp::Enqueue,
            command: Box::new(Command::Enqueue {
                tenant: self.setup.tenant,
                queue,
                entry: self.setup.call.clone(),
                priority: None,
                call: Some(Box::new(self.checkpoint())),
            }),
        });
    }

    /// The caller waits, since `since_ms`, in the queue the ledger's outcome
    /// names (its first, or the one it moved to): the queue hears of it, the
    /// exits are armed.
    pub(super) fn waits(
        &mut self,
        now_ms: u64,
        since_ms: u64,
        outcome: Outcome,
        out: &mut Vec<CallOutput>,
    ) {
        let Outcome::Enqueued {
            queue,
            sequence,
            priority,
            spec,
            ..
        } = outcome
        else {
            panic!("the ledger answers an enqueue or a move with the caller's place: {outcome:?}");
        };
        let music_before = self.queue_music();
        self.setup.queue = queue;
        self.setup.spec = *spec;
        self.entry_sequence = sequence;
        self.priority = priority;
        self.enqueued_at_ms = Some(since_ms);
        self.first_enqueued_at_ms.get_or_insert(since_ms);
        self.phase = Phase::Waiting;
        self.send(
            Address::queue(self.setup.tenant, self.setup.queue),
            Message::Queue(QueueMsg::Enqueued(Box::new(self.entry_info()))),
            out,
        );
        let music = self.queue_music();
        if music != music_before {
            self.play_music(music, out);
        }
        self.arm_exits(now_ms, out);
    }

    fn checkpoint(&self) -> CallCheckpoint {
        CallCheckpoint {
            node: self.setup.node,
            leg: self.setup.leg,
            sip_call_id: self.setup.sip_call_id.clone(),
            caller: self.setup.caller.clone(),
            called: self.setup.called.clone(),
            media_session: self.setup.call.clone(),
            relay: self.setup.relay.clone(),
            agent_offer_sdp: self.agent_offer.clone().unwrap_or_default(),
            arrived_at_ms: self.setup.arrived_at_ms,
        }
    }

    fn entry_info(&self) -> EntryInfo {
        EntryInfo {
            tenant: self.setup.tenant,
            queue: self.setup.queue,
            entry: self.setup.call.clone(),
            priority: self.priority,
            sequence: self.entry_sequence,
            enqueued_at_ms: self.enqueued_at_ms.unwrap_or(self.setup.arrived_at_ms),
            call: self.checkpoint(),
        }
    }

    fn on_ledger(
        &mut self,
        now_ms: u64,
        op: CallOp,
        result: Result<Outcome, WriteError>,
        out: &mut Vec<CallOutput>,
    ) {
        match op {
            CallOp::Enqueue => match result {
                Ok(outcome) => {
                    self.waits(now_ms, self.enqueue_asked_ms, outcome, out);
                    if !self.caller_live {
                        self.finish(now_ms, out);
                    }
                }
                Err(error) if self.exits.joined > 0 || self.exits.reason.is_some() => {
                    // The queue a turned-away caller was sent to refused it.
                    self.parted(now_ms, &error, out);
                }
                Err(WriteError::Refused(r))
                    if r.code == crate::model::RefusalCode::QueueFull
                        && crate::model::queue::ExitReason::QueueFull
                            .destination(&self.setup.spec)
                            .is_some() =>
                {
                    self.exit(now_ms, crate::model::queue::ExitReason::QueueFull, out);
                }
                Err(error) => {
                    self.enqueued_at_ms = None;
                    self.refusal = Some(match error {
                        WriteError::Refused(r)
                            if r.code == crate::model::RefusalCode::QueueFull =>
                        {
                            (486, format!("Busy Here - {}", r.message))
                        }
                        WriteError::Refused(r) => {
                            (480, format!("Temporarily Unavailable - {}", r.message))
                        }
                        WriteError::Unavailable(reason) => (
                            503,
                            format!("Service Unavailable - the cluster did not answer: {reason}"),
                        ),
                    });
                    self.finish(now_ms, out);
                }
            },
            CallOp::Connect { agent, leg } => match result {
                Ok(_) => {
                    self.phase = Phase::Connected;
                    // Connected when the agent's answer arrived (what the
                    // clients see), not when the ledger confirmed it.
                    self.connected_at_ms = Some(self.answered_at_ms.unwrap_or(now_ms));
                    self.close_offer(agent, OfferEnd::Answered, now_ms);
                    self.cancel_offered(now_ms, None, out);
                    self.send(
                        Address::agent(self.setup.tenant, agent),
                        Message::Agent(AgentMsg::Connected {
                            entry: self.setup.call.clone(),
                        }),
                        out,
                    );
                    self.send(
                        Address::queue(self.setup.tenant, self.setup.queue),
                        Message::Queue(QueueMsg::Gone {
                            entry: self.setup.call.clone(),
                        }),
                        out,
                    );
                    if !self.caller_live
                        || self.bridge_failed
                        || !self.forks.get(&leg).is_some_and(|f| f.live)
                    {
                        self.finish(now_ms, out);
                    }
                }
                Err(_) => {
                    // The offer was released meanwhile (a ring timeout that
                    // crossed the answer), or the caller left: not this agent.
                    self.winner = None;
                    self.answered_at_ms = None;
                    self.hang_up_fork(leg, out);
                    self.phase = Phase::Waiting;
                    if !self.caller_live || self.bridge_failed {
                        self.finish(now_ms, out);
                    } else {
                        // An exit that came due while the answer was connected.
                        self.exit_if_due(now_ms, out);
                    }
                }
            },
            CallOp::Move { reason } => match result {
                Ok(outcome) => {
                    let left = self.setup.queue;
                    self.left_queue(now_ms, left, reason);
                    self.waits(now_ms, now_ms, outcome, out);
                    if !self.caller_live {
                        self.finish(now_ms, out);
                    }
                }
                Err(error) => self.parted(now_ms, &error, out),
            },
            CallOp::EndCall { .. } | CallOp::Close => {
                self.phase = Phase::Done;
                out.push(CallOutput::Media {
                    step: MediaStep::Remove,
                    request: MediaRequest::Remove,
                });
                out.push(CallOutput::Stop);
            }
        }
    }

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
    fn hang_up_forks(&mut self, out: &mut Vec<CallOutput>) {
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
    fn cancel_offered(&mut self, now_ms: u64, keep: Option<UserId>, out: &mut Vec<CallOutput>) {
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

    fn hang_up_fork(&mut self, leg: LegRef, out: &mut Vec<CallOutput>) {
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

    fn on_message(&mut self, now_ms: u64, message: CallMsg, out: &mut Vec<CallOutput>) {
        match message {
            CallMsg::Offered { agent } => {
                if matches!(self.phase, Phase::Waiting | Phase::Enqueuing) {
                    self.offers.entry(agent).or_insert(now_ms);
                }
            }
            CallMsg::Forked { leg, agent, device } => {
                let wanted =
                    matches!(self.phase, Phase::Waiting) && self.offers.contains_key(&agent);
                self.forks.insert(
                    leg,
                    Fork {
                        agent,
                        device,
                        live: true,
                    },
                );
                if !wanted {
                    // Too late: the call has a winner, ended, or the offer is over.
                    self.hang_up_fork(leg, out);
                }
            }
            CallMsg::StopRinging { agent, end } => {
                let legs: Vec<LegRef> = self
                    .forks
                    .iter()
                    .filter(|(_, f)| f.agent == agent && f.live)
                    .map(|(l, _)| *l)
                    .collect();
                if self.winner.map(|(a, _)| a) == Some(agent) {
                    return; // its answer is being connected
                }
                for leg in legs {
                    self.hang_up_fork(leg, out);
                }
                self.close_offer(agent, end, now_ms);
            }
            CallMsg::Leg { leg, event } if leg == self.caller_leg() => {
                if let LegNotice::Ended { .. } = event {
                    self.caller_live = false;
                    match self.phase {
                        Phase::Waiting | Phase::Connected | Phase::Leaving => {
                            self.finish(now_ms, out)
                        }
                        // Finished when the current step answers.
                        Phase::Setup | Phase::Enqueuing | Phase::Moving | Phase::Connecting => {}
                        Phase::Ending | Phase::Done => {}
                    }
                }
            }
            CallMsg::Leg { leg, event } => self.on_fork(now_ms, leg, event, out),
            CallMsg::Exit { queue, reason } => {
                if queue == self.setup.queue {
                    self.exit(now_ms, reason, out);
                }
            }
            CallMsg::Withdraw { destination } => {
                self.exit_to(now_ms, ExitReason::Withdrawn, Some(destination), out)
            }
            CallMsg::Timer { timer } => self.on_timer(now_ms, timer, out),
        }
    }

    fn on_fork(&mut self, now_ms: u64, leg: LegRef, event: LegNotice, out: &mut Vec<CallOutput>) {
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

    fn record(&self, now_ms: u64, agent: Option<UserId>) -> ActivityRecord {
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

    /// The agent that was connected, if any.
    pub fn connected_agent(&self) -> Option<UserId> {
        self.connected_at_ms.and(self.winner.map(|(a, _)| a))
    }

    /// The call's reference.
    pub fn call_ref(&self) -> CallRef {
        self.me()
    }

    /// Panics if the machine's state is inconsistent (a bug here).
    pub fn check_invariants(&self) {
        if let Some((agent, leg)) = self.winner {
            assert_eq!(
                self.forks.get(&leg).map(|f| f.agent),
                Some(agent),
                "the winner is one of the forks"
            );
            let other_live = self
                .forks
                .iter()
                .filter(|(l, f)| **l != leg && f.live)
                .count();
            assert_eq!(other_live, 0, "no other fork stays up once a fork won");
        }
        self.check_exit_invariants(
            self.forks.values().filter(|f| f.live).count(),
            self.offers.len(),
        );
        if matches!(self.phase, Phase::Ending | Phase::Done) {
            assert!(
                self.forks.values().all(|f| !f.live),
                "an ended call has no fork up"
            );
            assert!(self.closing_asked, "an ended call told the ledger");
        }
    }
}
