//! The exits of a waiting call (Q5), part of the call machine: the
//! maximum wait and the overflow timeout (the call's own timers), the exit
//! key (the relay's DTMF events, read every [`DTMF_POLL_MS`] while the
//! queue has a key), a full queue (the ledger refuses the entry), and the
//! queue's empty policies (the queue actor sends
//! [`crate::messages::CallMsg::Exit`]).
//!
//! An exit cancels the call's offers and sends the caller where the queue
//! says ([`ExitReason::destination`]): into another queue (the ledger moves
//! the entry: it waits there from now, behind those already waiting), or
//! to a prompt and a hang-up, or a plain hang-up (an unanswered caller gets
//! 486 for a full queue, 480 otherwise, with the rule in the reason). Each
//! queue the call leaves is a segment of its record with the exit's name;
//! a call that ends at an exit's hang-up has the outcome `exited`. A call
//! passes through at most [`MAX_QUEUES`] queues (overflow chains may loop).
//!
//! Invariant: while the call moves or leaves, no fork is up and no agent is
//! offered it.

use super::io::{CallOp, CallOutput, MediaReply, MediaRequest, MediaStep, CALLER_LEG};
use super::machine::{CallMachine, Phase};
use crate::ledger::{Command, WriteError};
use crate::messages::{Address, Message, QueueMsg};
use crate::model::activity::Segment;
use crate::model::queue::{Destination, ExitReason};
use crate::model::QueueId;

/// How often the relay's events are read for the exit key, and for the end
/// of a parting prompt.
pub const DTMF_POLL_MS: u64 = 250;
/// A parting prompt plays for at most this long before the hang-up.
pub const PARTING_PROMPT_MAX_MS: u64 = 30_000;
/// Queues one call may pass through.
pub const MAX_QUEUES: usize = 8;

const TIMER_MAX_WAIT: u64 = 1;
const TIMER_OVERFLOW: u64 = 2;
const TIMER_POLL: u64 = 3;

/// The exit bookkeeping of one call.
#[derive(Debug, Clone, Default)]
pub struct Exits {
    /// Queues the call has joined.
    pub(super) joined: usize,
    /// The current queue's timers carry this generation; older ones are
    /// ignored.
    generation: u64,
    /// The current queue's timed exits: when, and which.
    due: Vec<(u64, ExitReason)>,
    /// An exit the queue or a user asked for while an answer was being
    /// connected: taken if the connection fails.
    pending: Option<(ExitReason, Option<Destination>)>,
    /// Why the call is leaving its current queue, once it is.
    pub(super) reason: Option<ExitReason>,
    /// What followed the exit, for the record.
    followed: String,
    /// The current queue's segment is closed already.
    pub(super) left_current: bool,
    /// DTMF events of the caller's leg seen so far.
    dtmf_seen: usize,
    /// Prompts finished on the caller's leg before the parting prompt.
    finished_before: usize,
    leaving_since_ms: u64,
    prompt: Option<String>,
}

impl Exits {
    /// The reason phrase for an unanswered caller the exit hangs up.
    pub(super) fn refusal(&self) -> Option<(u16, String)> {
        let reason = self.reason?;
        let (status, text) = match reason {
            ExitReason::QueueFull => (486, "Busy Here"),
            _ => (480, "Temporarily Unavailable"),
        };
        Some((
            status,
            format!("{text} - {} ({})", reason.describe(), self.followed),
        ))
    }

    /// The record's outcome reason: the exit and what followed.
    pub(super) fn describe(&self) -> String {
        match self.reason {
            Some(r) => format!("{}: {}", r.as_str(), self.followed),
            None => String::new(),
        }
    }
}

fn timer_id(generation: u64, kind: u64) -> u64 {
    (generation << 4) | kind
}

impl CallMachine {
    /// A timer of the current queue (`kind` below 16).
    pub(super) fn timer_id(&self, kind: u64) -> u64 {
        timer_id(self.exits.generation, kind)
    }
}

fn count(events: &[super::MediaEvent], kind: &str) -> usize {
    events
        .iter()
        .filter(|e| e.kind == kind && e.leg == CALLER_LEG)
        .count()
}

impl CallMachine {
    /// The caller waits in a new queue: its timed exits and the exit key's
    /// reading start.
    pub(super) fn arm_exits(&mut self, now_ms: u64, out: &mut Vec<CallOutput>) {
        let x = &mut self.exits;
        x.joined += 1;
        x.generation += 1;
        x.due.clear();
        x.pending = None;
        x.reason = None;
        x.left_current = false;
        let spec = &self.setup.spec;
        let mut timed = Vec::new();
        if let Some(s) = spec.max_wait_s {
            timed.push((u64::from(s) * 1000, ExitReason::MaxWait, TIMER_MAX_WAIT));
        }
        if let Some(o) = &spec.overflow {
            timed.push((
                u64::from(o.after_s) * 1000,
                ExitReason::Overflow,
                TIMER_OVERFLOW,
            ));
        }
        for (after_ms, reason, kind) in timed {
            x.due.push((now_ms + after_ms, reason));
            out.push(CallOutput::Timer {
                after_ms,
                timer: timer_id(x.generation, kind),
            });
        }
        if spec.exit_dtmf_key.is_some() {
            self.poll_later(out);
        }
        self.arm_announcement(out);
    }

    fn poll_later(&self, out: &mut Vec<CallOutput>) {
        out.push(CallOutput::Timer {
            after_ms: DTMF_POLL_MS,
            timer: timer_id(self.exits.generation, TIMER_POLL),
        });
    }

    pub(super) fn on_timer(&mut self, now_ms: u64, timer: u64, out: &mut Vec<CallOutput>) {
        if timer >> 4 != self.exits.generation {
            return; // a timer of a queue the call has left
        }
        match timer & 0xf {
            TIMER_MAX_WAIT | TIMER_OVERFLOW => self.exit_if_due(now_ms, out),
            super::announce::TIMER_ANNOUNCE => self.announcement_due(now_ms, out),
            super::announce::TIMER_ANNOUNCE_POLL => self.announcement_poll(out),
            TIMER_POLL if matches!(self.phase, Phase::Waiting | Phase::Leaving) => {
                out.push(CallOutput::Media {
                    step: MediaStep::Events,
                    request: MediaRequest::Events,
                });
            }
            _ => {}
        }
    }

    /// An exit asked for by the queue (`destination` from its settings) or a
    /// user (`Some`): taken now, or, while an answer is being connected,
    /// kept for the connection's failure.
    pub(super) fn exit_asked(
        &mut self,
        now_ms: u64,
        reason: ExitReason,
        destination: Option<Destination>,
        out: &mut Vec<CallOutput>,
    ) {
        if self.phase == Phase::Connecting {
            self.exits.pending = Some((reason, destination));
            return;
        }
        let destination = destination.or_else(|| reason.destination(&self.setup.spec).cloned());
        self.exit_to(now_ms, reason, destination, out);
    }

    /// Takes an exit kept while an answer was connected, or the earliest
    /// timed exit that is due, if the call still waits.
    pub(super) fn exit_if_due(&mut self, now_ms: u64, out: &mut Vec<CallOutput>) {
        if let Some((reason, destination)) = self.exits.pending.take() {
            self.exit_asked(now_ms, reason, destination, out);
            return;
        }
        let due = self
            .exits
            .due
            .iter()
            .filter(|(at, _)| *at <= now_ms)
            .min_by_key(|(at, _)| *at)
            .map(|(_, r)| *r);
        if let Some(reason) = due {
            self.exit(now_ms, reason, out);
        }
    }

    /// The caller leaves its queue for `reason`. A waiting caller does; so
    /// does one whose entry a full queue refused (it never waited there).
    pub(super) fn exit(&mut self, now_ms: u64, reason: ExitReason, out: &mut Vec<CallOutput>) {
        let destination = reason.destination(&self.setup.spec).cloned();
        self.exit_to(now_ms, reason, destination, out);
    }

    /// [`Self::exit`] to `destination` (`None`: a hang-up).
    pub(super) fn exit_to(
        &mut self,
        now_ms: u64,
        reason: ExitReason,
        destination: Option<Destination>,
        out: &mut Vec<CallOutput>,
    ) {
        let entered = match self.phase {
            Phase::Waiting => true,
            Phase::Enqueuing if reason == ExitReason::QueueFull => false,
            _ => return, // connecting, moving, leaving or ended: too late
        };
        // The exit's own prompt or the next queue's music follows.
        self.end_announcement(out);
        if entered {
            self.cancel_offers(now_ms, out);
            self.send(
                Address::queue(self.setup.tenant, self.setup.queue),
                Message::Queue(QueueMsg::Gone {
                    entry: self.setup.call.clone(),
                }),
                out,
            );
        }
        self.exits.reason = Some(reason);
        match destination {
            Some(Destination::Queue { queue }) if self.exits.joined < MAX_QUEUES => {
                self.exits.followed = format!("sent to queue {}", queue.0);
                if entered {
                    self.phase = Phase::Moving;
                    out.push(CallOutput::Ledger {
                        op: CallOp::Move { reason },
                        command: Box::new(Command::MoveEntry {
                            tenant: self.setup.tenant,
                            entry: self.setup.call.clone(),
                            queue,
                        }),
                    });
                } else {
                    let here = self.setup.queue;
                    self.close_segment(here, now_ms, now_ms, reason);
                    self.enqueue(now_ms, queue, out);
                }
            }
            Some(Destination::Queue { .. }) => {
                self.exits.followed =
                    format!("hung up: the call already passed through {MAX_QUEUES} queues");
                self.leave(now_ms, None, out);
            }
            Some(Destination::Hangup { prompt }) => {
                self.exits.followed = match &prompt {
                    Some(p) => format!("hung up after the prompt {p}"),
                    None => "hung up".into(),
                };
                self.leave(now_ms, prompt, out);
            }
            Some(Destination::Number { number }) => {
                // Refused by the queue's validation until trunks exist.
                self.exits.followed = format!("hung up: {number} cannot be dialled");
                self.leave(now_ms, None, out);
            }
            None => {
                self.exits.followed = "hung up".into();
                self.leave(now_ms, None, out);
            }
        }
    }

    fn close_segment(&mut self, queue: QueueId, from_ms: u64, to_ms: u64, reason: ExitReason) {
        self.segments.push(Segment::Queue {
            queue,
            from_ms,
            to_ms,
            reason: reason.as_str().into(),
        });
        self.exits.left_current = true;
    }

    /// The caller moved out of `queue`: its segment closes.
    pub(super) fn left_queue(&mut self, now_ms: u64, queue: QueueId, reason: ExitReason) {
        let from_ms = self.enqueued_at_ms.unwrap_or(now_ms);
        self.close_segment(queue, from_ms, now_ms, reason);
    }

    /// The caller is hung up at the exit, after `prompt` if there is one.
    fn leave(&mut self, now_ms: u64, prompt: Option<String>, out: &mut Vec<CallOutput>) {
        if let (Some(from_ms), false) = (self.enqueued_at_ms, self.exits.left_current) {
            let (queue, reason) = (self.setup.queue, self.exits.reason);
            if let Some(reason) = reason {
                self.close_segment(queue, from_ms, now_ms, reason);
            }
        }
        match prompt {
            Some(p) if self.caller_live => {
                self.phase = Phase::Leaving;
                self.exits.prompt = Some(p);
                self.exits.leaving_since_ms = now_ms;
                out.push(CallOutput::Media {
                    step: MediaStep::PromptBaseline,
                    request: MediaRequest::Events,
                });
            }
            _ => self.finish(now_ms, out),
        }
    }

    /// The queue an exit sent the caller to refused it: hung up.
    pub(super) fn parted(&mut self, now_ms: u64, error: &WriteError, out: &mut Vec<CallOutput>) {
        let why = match error {
            WriteError::Refused(r) => r.message.clone(),
            WriteError::Unavailable(e) => format!("the cluster did not answer: {e}"),
        };
        self.exits.followed = format!("{}, which refused it ({why}); hung up", self.exits.followed);
        self.leave(now_ms, None, out);
    }

    pub(super) fn on_exit_media(
        &mut self,
        now_ms: u64,
        step: MediaStep,
        result: Result<MediaReply, String>,
        out: &mut Vec<CallOutput>,
    ) {
        match (step, self.phase, result) {
            (MediaStep::Events, Phase::Waiting, Ok(MediaReply::Events(events))) => {
                let digits: Vec<&str> = events
                    .iter()
                    .filter(|e| e.kind == "dtmf" && e.leg == CALLER_LEG)
                    .filter_map(|e| e.digit.as_deref())
                    .collect();
                // The relay keeps a window of recent events: the ones past
                // the count seen so far are new.
                let new = digits.len().saturating_sub(self.exits.dtmf_seen);
                self.exits.dtmf_seen = digits.len();
                let key = self.setup.spec.exit_dtmf_key.clone();
                if key.is_some_and(|k| digits[digits.len() - new..].contains(&k.as_str())) {
                    self.exit(now_ms, ExitReason::ExitKey, out);
                } else {
                    self.poll_later(out);
                }
            }
            (MediaStep::Events, Phase::Waiting, Err(_)) => self.poll_later(out),
            (MediaStep::PromptBaseline, Phase::Leaving, Ok(MediaReply::Events(events))) => {
                self.exits.finished_before = count(&events, "generated_finished");
                let prompt = self.exits.prompt.clone().unwrap_or_default();
                out.push(CallOutput::Media {
                    step: MediaStep::StopMusic,
                    request: MediaRequest::StopPlay { leg: CALLER_LEG },
                });
                out.push(CallOutput::Media {
                    step: MediaStep::Prompt,
                    request: MediaRequest::Prompt {
                        leg: CALLER_LEG,
                        prompt,
                    },
                });
                self.poll_later(out);
            }
            (MediaStep::Events, Phase::Leaving, Ok(MediaReply::Events(events))) => {
                let finished = count(&events, "generated_finished") > self.exits.finished_before;
                let too_long =
                    now_ms.saturating_sub(self.exits.leaving_since_ms) > PARTING_PROMPT_MAX_MS;
                if finished || too_long {
                    self.finish(now_ms, out);
                } else {
                    self.poll_later(out);
                }
            }
            (_, Phase::Leaving, Err(reason)) => {
                tracing::warn!(call = %self.setup.call, %reason, "the parting prompt cannot play");
                self.finish(now_ms, out);
            }
            _ => {}
        }
    }

    /// Panics if an exit left an offer behind (a bug here).
    pub(super) fn check_exit_invariants(&self, forks_up: usize, offered: usize) {
        if matches!(self.phase, Phase::Moving | Phase::Leaving) {
            assert_eq!(forks_up, 0, "no fork is up while the call leaves its queue");
            assert_eq!(
                offered, 0,
                "no agent is offered a call that leaves its queue"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_ids_keep_their_generation_and_kind() {
        let id = timer_id(7, TIMER_POLL);
        assert_eq!(id >> 4, 7);
        assert_eq!(id & 0xf, TIMER_POLL);
    }

    #[test]
    fn a_full_queue_is_busy_and_other_exits_unavailable() {
        let mut x = Exits {
            reason: Some(ExitReason::QueueFull),
            followed: "hung up".into(),
            ..Exits::default()
        };
        assert_eq!(
            x.refusal(),
            Some((486, "Busy Here - Q5: the queue is full (hung up)".into()))
        );
        x.reason = Some(ExitReason::MaxWait);
        assert_eq!(x.refusal().map(|r| r.0), Some(480));
        assert_eq!(x.describe(), "max_wait: hung up");
    }
}
