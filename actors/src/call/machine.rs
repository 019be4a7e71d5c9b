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
use crate::model::activity::{OfferEnd, Segment};
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
pub(super) struct Fork {
    pub(super) agent: UserId,
    pub(super) device: DeviceId,
    pub(super) live: bool,
}

/// The call machine.
#[derive(Debug, Clone)]
pub struct CallMachine {
    pub(super) setup: CallSetup,
    pub(super) phase: Phase,
    pub(super) caller_answer: Option<String>,
    pub(super) agent_offer: Option<String>,
    pub(super) caller_answered: bool,
    pub(super) caller_live: bool,
    /// When the call entered its current queue.
    pub(super) enqueued_at_ms: Option<u64>,
    /// When it entered its first queue (its waiting time starts there).
    pub(super) first_enqueued_at_ms: Option<u64>,
    pub(super) entry_sequence: u64,
    pub(super) priority: u32,
    /// When the last enqueue was asked of the ledger.
    pub(super) enqueue_asked_ms: u64,
    pub(super) forks: BTreeMap<LegRef, Fork>,
    /// Agents offered and since when.
    pub(super) offers: BTreeMap<UserId, u64>,
    pub(super) winner: Option<(UserId, LegRef)>,
    pub(super) connected_at_ms: Option<u64>,
    /// Segments closed so far (queues left, offers ended).
    pub(super) segments: Vec<Segment>,
    pub(super) closing_asked: bool,
    pub(super) refusal: Option<(u16, String)>,
    pub(super) bridge_failed: bool,
    pub(super) answered_at_ms: Option<u64>,
    /// The music on hold last asked of the relay.
    pub(super) music: Option<String>,
    /// The queue exits' bookkeeping (Q5).
    pub(super) exits: super::exit::Exits,
    /// The waiting caller's announcements (Q6).
    pub(super) announcements: super::announce::Announcements,
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
            announcements: Default::default(),
        }
    }

    pub(super) fn me(&self) -> CallRef {
        CallRef {
            node: self.setup.node,
            call: self.setup.call.clone(),
        }
    }

    pub(super) fn caller_leg(&self) -> LegRef {
        LegRef {
            node: self.setup.node,
            leg: self.setup.leg,
        }
    }

    pub(super) fn edge_leg(&self, request: LegRequest, out: &mut Vec<CallOutput>) {
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
                tracing::warn!(call = %self.setup.call, status, %text, "the call has no media");
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
            (
                MediaStep::AnnounceBaseline | MediaStep::AnnounceEvents | MediaStep::AnnouncePrompt,
                result,
            ) => self.on_announce_media(now_ms, step, result, out),
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

    fn on_message(&mut self, now_ms: u64, message: CallMsg, out: &mut Vec<CallOutput>) {
        match message {
            CallMsg::Offered { agent } => {
                if matches!(self.phase, Phase::Waiting | Phase::Enqueuing) {
                    self.offers.entry(agent).or_insert(now_ms);
                    // An offer stops the announcement at once (Q6).
                    self.end_announcement(out);
                }
            }
            CallMsg::Place {
                position,
                estimated_wait_s,
            } => self.on_place(now_ms, position, estimated_wait_s, out),
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
                    self.exit_asked(now_ms, reason, None, out);
                }
            }
            CallMsg::Withdraw { destination } => {
                self.exit_asked(now_ms, ExitReason::Withdrawn, Some(destination), out)
            }
            CallMsg::Timer { timer } => self.on_timer(now_ms, timer, out),
        }
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
        assert!(
            !self.announcing() || self.offers.is_empty(),
            "an offered caller hears no announcement"
        );
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
