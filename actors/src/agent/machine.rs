//! The agent machine (A4, A6, A8, D3, Q3, Q4), sans-IO: `(now, input) ->
//! outputs`.
//!
//! Its durable state is the ledger's (the session and the voice state are
//! its checkpoint, [`AgentSnapshot`]); what it keeps itself is what only
//! lives while the node does: which devices are reachable, the offers that
//! arrived in the current turn, and the progress of the offer that rings.
//!
//! An offer: queue actors offer calls; offers that arrive in one turn are
//! compared by the declared rule of Q3 (`routing::most_deserving`) and the
//! most deserving is reserved through the ledger (`OfferCall`, fenced by
//! the placement epoch); the others are declined. The agent's devices then
//! ring per its ring plan (parallel, or staged with per-step delays); the
//! offer ends at the queue's ring timeout, when every device has failed, or
//! when the call actor connects the agent.
//!
//! Invariants: at most one offer rings at a time, and only one the ledger
//! granted; a reservation is asked for at most once at a time; a report
//! says "available" only when the agent is logged in (or a static member),
//! not paused, free of voice work, past its back-off and has a reachable
//! device.

use std::collections::{BTreeMap, BTreeSet};

use crate::ledger::{Command, Outcome, Voice, WriteError};
use crate::messages::{
    Address, AgentMsg, AgentReport, CallMsg, CallRef, DeviceMsg, EntryInfo, Envelope, Message,
    QueueMsg, RingRequest,
};
use crate::model::activity::{ActivityOutcome, ActivityRecord, Direction, OfferEnd, Segment};
use crate::model::agent_status::{Author, SessionChange, SystemRule};
use crate::model::{DeviceId, QueueId, TenantId, UserId};
use crate::routing;

mod presence;

pub use super::io::*;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ringing {
    entry: EntryInfo,
    asked: BTreeSet<DeviceId>,
    ended: BTreeMap<DeviceId, OfferEnd>,
    next_step: usize,
    stopping: bool,
}

/// The agent machine.
#[derive(Debug, Clone)]
pub struct AgentMachine {
    tenant: TenantId,
    user: UserId,
    snapshot: AgentSnapshot,
    has_snapshot: bool,
    reachable: BTreeMap<DeviceId, bool>,
    candidates: Vec<EntryInfo>,
    deciding: bool,
    reserving: Option<String>,
    ringing: Option<Ringing>,
    state: AgentState,
    last_reports: BTreeMap<QueueId, AgentReport>,
    disconnected_since: Option<u64>,
    timing_out: bool,
    /// What the ledger holds of A8 as far as this machine knows
    /// (`Some(reachable)`), and whether a write is under way.
    reach_recorded: Option<bool>,
    reach_pending: bool,
    /// The last session change already named in a transition.
    seen_change: Option<SessionChange>,
    now_ms: u64,
}

impl AgentMachine {
    /// A machine for `user`; it waits for its first snapshot.
    pub fn new(tenant: TenantId, user: UserId) -> Self {
        AgentMachine {
            tenant,
            user,
            snapshot: AgentSnapshot::default(),
            has_snapshot: false,
            reachable: BTreeMap::new(),
            candidates: Vec::new(),
            deciding: false,
            reserving: None,
            ringing: None,
            state: AgentState::LoggedOut,
            last_reports: BTreeMap::new(),
            disconnected_since: None,
            timing_out: false,
            reach_recorded: None,
            reach_pending: false,
            seen_change: None,
            now_ms: 0,
        }
    }

    /// The current A4 state.
    pub fn state(&self) -> AgentState {
        self.state
    }

    fn any_reachable(&self) -> bool {
        self.snapshot
            .devices()
            .iter()
            .any(|d| self.reachable.get(d).copied().unwrap_or(false))
    }

    fn present(&self) -> bool {
        self.snapshot.logged_in || !self.snapshot.static_queues.is_empty()
    }

    /// Whether the agent can take an offer now (ignoring back-off, which
    /// routing applies with its own clock).
    fn available(&self) -> bool {
        self.has_snapshot
            && self.present()
            && !self.snapshot.paused
            && self.snapshot.voice.voice == Voice::Idle
            && self.reserving.is_none()
            && self.ringing.is_none()
            && self.any_reachable()
    }

    /// Feeds one input.
    pub fn handle(&mut self, now_ms: u64, input: AgentInput) -> Vec<AgentOutput> {
        self.now_ms = now_ms;
        let mut out = Vec::new();
        match input {
            AgentInput::Snapshot(s) => self.on_snapshot(now_ms, *s, &mut out),
            AgentInput::Message(m) => self.on_message(now_ms, m, &mut out),
            AgentInput::Ledger { op, result } => self.on_ledger(now_ms, op, result, &mut out),
            AgentInput::Decide => self.decide(now_ms, &mut out),
        }
        self.check_invariants();
        out
    }

    fn on_snapshot(&mut self, now_ms: u64, snapshot: AgentSnapshot, out: &mut Vec<AgentOutput>) {
        let first = !self.has_snapshot;
        let logged_in_now = snapshot.logged_in && !self.snapshot.logged_in;
        self.snapshot = snapshot;
        self.has_snapshot = true;
        if !self.snapshot.logged_in {
            self.reach_recorded = None;
        } else if first || self.reach_recorded.is_none() {
            self.reach_recorded = Some(!self.snapshot.recorded_unreachable);
        } else if logged_in_now {
            // A new session starts reachable.
            self.reach_recorded = Some(true);
        }
        // Recover what the ledger says the agent is doing, when this machine
        // did not start it (a new owner after a node's death, a restart).
        match self.snapshot.voice.voice.clone() {
            Voice::Offered { entry, .. } if self.ringing.is_none() && self.reserving.is_none() => {
                if let Some(info) = self.snapshot.entry.clone() {
                    if !self.snapshot.call_lost {
                        self.send(
                            Address::Call {
                                call: info.call_ref(),
                            },
                            Message::Call(CallMsg::StopRinging {
                                agent: self.user,
                                end: OfferEnd::Failed,
                            }),
                            out,
                        );
                    }
                    self.release(entry, info.queue, OfferEnd::Failed, out);
                }
            }
            Voice::Talking { entry, since_ms } if self.snapshot.call_lost => {
                if let Some(info) = self.snapshot.entry.clone() {
                    let record = lost_record(&info, self.user, since_ms, now_ms);
                    out.push(AgentOutput::Ledger {
                        op: AgentOp::CloseLost { entry },
                        command: Box::new(Command::CloseActivity {
                            tenant: self.tenant,
                            record: Box::new(record),
                        }),
                    });
                }
            }
            Voice::WrapUp {
                entry, until_ms, ..
            } => {
                out.push(AgentOutput::Timer {
                    after_ms: until_ms.saturating_sub(now_ms),
                    message: AgentMsg::WrapUpOver { entry },
                });
            }
            _ => {}
        }
        if self.snapshot.voice.voice == Voice::Idle {
            if let Some(r) = &self.ringing {
                if !r.stopping {
                    // The ledger no longer holds our offer (the call ended or
                    // another agent took it): stop ringing.
                    self.ringing = None;
                }
            }
        }
        let change = self.snapshot.last_change.clone();
        if change.is_some() && change != self.seen_change {
            self.seen_change = change.clone();
            if let Some(c) = change.filter(|_| !first) {
                self.publish_by(c.what.describe(), c.by, out);
            }
        }
        let reason = if first {
            "state read from the ledger"
        } else {
            "the ledger changed"
        };
        self.publish(reason, out);
        self.time_out_phone(now_ms, out);
        if first {
            self.pull(out);
        }
    }

    /// Asks each queue for its most deserving call when the agent becomes
    /// available (Q3; the queues answer with offers).
    fn pull(&self, out: &mut Vec<AgentOutput>) {
        if !self.available() {
            return;
        }
        for queue in &self.snapshot.queues {
            self.send(
                Address::queue(self.tenant, *queue),
                Message::Queue(QueueMsg::Pull { agent: self.user }),
                out,
            );
        }
    }

    fn decline(&self, entry: &EntryInfo, out: &mut Vec<AgentOutput>) {
        self.send(
            Address::queue(self.tenant, entry.queue),
            Message::Queue(QueueMsg::OfferEnded {
                entry: entry.entry.clone(),
                agent: self.user,
                end: OfferEnd::Cancelled,
            }),
            out,
        );
    }

    fn on_message(&mut self, now_ms: u64, message: AgentMsg, out: &mut Vec<AgentOutput>) {
        match message {
            AgentMsg::Offer(entry) => {
                if !self.available() {
                    self.decline(&entry, out);
                    // The queue thought the agent available: tell it again.
                    self.last_reports.remove(&entry.queue);
                    self.publish("declined an offer while busy", out);
                    return;
                }
                self.candidates.push(*entry);
                if !self.deciding {
                    self.deciding = true;
                    out.push(AgentOutput::DecideLater);
                }
            }
            AgentMsg::NothingWaiting { .. } => {}
            AgentMsg::Report { queue } => {
                self.last_reports.remove(&queue);
                self.publish("a queue asked", out);
            }
            AgentMsg::Reachability { device, reachable } => {
                self.reachable.insert(device, reachable);
                let was = self.state;
                let reason = if reachable {
                    "A8: a device is reachable again"
                } else {
                    "A8: a device stopped answering"
                };
                let by = Author::System {
                    rule: SystemRule::Reachability,
                };
                self.publish_by(reason.into(), by, out);
                if was == AgentState::Disconnected && self.state == AgentState::Idle {
                    self.pull(out);
                }
            }
            AgentMsg::DeviceRinging {
                device,
                entry,
                placed,
            } => {
                if let Some(r) = &mut self.ringing {
                    if r.entry.entry == entry && !placed {
                        r.ended.insert(device, OfferEnd::Unreachable);
                    }
                }
                self.maybe_all_failed(out);
            }
            AgentMsg::ForkEnded { entry, device, end } => {
                if let Some(r) = &mut self.ringing {
                    if r.entry.entry == entry {
                        r.ended.insert(device, end);
                    }
                }
                self.maybe_all_failed(out);
            }
            AgentMsg::RingTimeout { entry } => {
                if self
                    .ringing
                    .as_ref()
                    .is_some_and(|r| r.entry.entry == entry)
                {
                    self.end_offer(OfferEnd::NoAnswer, out);
                }
            }
            AgentMsg::RingStep { entry, step } => {
                let due = self
                    .ringing
                    .as_ref()
                    .is_some_and(|r| r.entry.entry == entry && r.next_step == step && !r.stopping);
                if due {
                    self.ring_step(now_ms, out);
                }
            }
            AgentMsg::Connected { entry } => {
                if self
                    .ringing
                    .as_ref()
                    .is_some_and(|r| r.entry.entry == entry)
                {
                    self.ringing = None;
                }
                out.push(AgentOutput::Refresh);
            }
            AgentMsg::CallEnded { entry, .. } => {
                if self
                    .ringing
                    .as_ref()
                    .is_some_and(|r| r.entry.entry == entry)
                {
                    self.ringing = None;
                }
                out.push(AgentOutput::Refresh);
            }
            AgentMsg::WrapUpOver { entry } => {
                let due = matches!(&self.snapshot.voice.voice, Voice::WrapUp { entry: e, .. } if *e == entry);
                if due {
                    out.push(AgentOutput::Ledger {
                        op: AgentOp::FinishWrapUp {
                            entry: entry.clone(),
                        },
                        command: Box::new(Command::FinishWrapUp {
                            tenant: self.tenant,
                            entry,
                            user: self.user,
                            epoch: self.snapshot.epoch,
                        }),
                    });
                }
            }
            AgentMsg::Refresh => out.push(AgentOutput::Refresh),
        }
    }

    fn decide(&mut self, now_ms: u64, out: &mut Vec<AgentOutput>) {
        self.deciding = false;
        let candidates = std::mem::take(&mut self.candidates);
        if candidates.is_empty() {
            return;
        }
        if !self.available() {
            for c in &candidates {
                self.decline(c, out);
            }
            return;
        }
        let calls: Vec<routing::WaitingCall> = candidates
            .iter()
            .map(|c| routing::WaitingCall {
                entry: c.entry.clone(),
                priority: c.priority,
                sequence: c.sequence,
                enqueued_at_ms: c.enqueued_at_ms,
            })
            .collect();
        let ranked: Vec<(QueueId, u32, &routing::WaitingCall)> = candidates
            .iter()
            .zip(&calls)
            .map(|(c, w)| (c.queue, 1, w))
            .collect();
        let best = routing::most_deserving(&ranked, now_ms).unwrap_or(0);
        for (i, c) in candidates.iter().enumerate() {
            if i != best {
                self.decline(c, out);
            }
        }
        let chosen = candidates[best].clone();
        self.reserving = Some(chosen.entry.clone());
        out.push(AgentOutput::Ledger {
            command: Box::new(Command::OfferCall {
                tenant: self.tenant,
                entry: chosen.entry.clone(),
                user: self.user,
                epoch: self.snapshot.epoch,
            }),
            op: AgentOp::Reserve(Box::new(chosen)),
        });
    }

    fn on_ledger(
        &mut self,
        now_ms: u64,
        op: AgentOp,
        result: Result<Outcome, WriteError>,
        out: &mut Vec<AgentOutput>,
    ) {
        match op {
            AgentOp::Reserve(entry) => {
                self.reserving = None;
                if result.is_err() {
                    self.decline(&entry, out);
                    out.push(AgentOutput::Refresh);
                    return;
                }
                self.snapshot.voice.voice = Voice::Offered {
                    entry: entry.entry.clone(),
                    since_ms: now_ms,
                };
                self.snapshot.voice.last_offered_ms = Some(now_ms);
                self.send(
                    Address::Call {
                        call: entry.call_ref(),
                    },
                    Message::Call(CallMsg::Offered { agent: self.user }),
                    out,
                );
                let timeout_s = self
                    .snapshot
                    .ring_timeout_s
                    .get(&entry.queue)
                    .copied()
                    .unwrap_or(20);
                out.push(AgentOutput::Timer {
                    after_ms: u64::from(timeout_s) * 1000,
                    message: AgentMsg::RingTimeout {
                        entry: entry.entry.clone(),
                    },
                });
                self.ringing = Some(Ringing {
                    entry: *entry,
                    asked: BTreeSet::new(),
                    ended: BTreeMap::new(),
                    next_step: 0,
                    stopping: false,
                });
                self.publish("offered a call", out);
                self.ring_step(now_ms, out);
            }
            AgentOp::Release { queue, entry, end } => {
                if self
                    .ringing
                    .as_ref()
                    .is_some_and(|r| r.entry.entry == entry)
                {
                    self.ringing = None;
                }
                self.send(
                    Address::queue(self.tenant, queue),
                    Message::Queue(QueueMsg::OfferEnded {
                        entry,
                        agent: self.user,
                        end,
                    }),
                    out,
                );
                out.push(AgentOutput::Refresh);
            }
            AgentOp::FinishWrapUp { .. } | AgentOp::CloseLost { .. } => {
                out.push(AgentOutput::Refresh);
            }
            AgentOp::TimeOut => {
                self.timing_out = false;
                self.disconnected_since = None;
                out.push(AgentOutput::Refresh);
            }
            AgentOp::Reachability { reachable } => {
                self.reach_pending = false;
                // A refused or lost write leaves the ledger's view unknown:
                // the next snapshot tells it.
                self.reach_recorded = result.is_ok().then_some(reachable);
            }
        }
        let _ = now_ms;
    }

    /// Rings the devices of the next step of the ring plan (D3), and arms
    /// the step after it.
    fn ring_step(&mut self, now_ms: u64, out: &mut Vec<AgentOutput>) {
        let _ = now_ms;
        let Some(r) = &mut self.ringing else {
            return;
        };
        let plan = &self.snapshot.ring_plan;
        let Some((delay_s, devices)) = plan.get(r.next_step) else {
            return;
        };
        let queue_name = self
            .snapshot
            .queue_names
            .get(&r.entry.queue)
            .cloned()
            .unwrap_or_default();
        let mut sends = Vec::new();
        for device in devices {
            if !r.asked.insert(*device) {
                continue;
            }
            if !self.reachable.get(device).copied().unwrap_or(false) {
                r.ended.insert(*device, OfferEnd::Unreachable);
                continue;
            }
            sends.push(Envelope {
                to: Address::device(self.tenant, *device),
                message: Message::Device(DeviceMsg::Ring(Box::new(RingRequest {
                    call: CallRef {
                        node: r.entry.call.node,
                        call: r.entry.entry.clone(),
                    },
                    agent: self.user,
                    device: *device,
                    sdp: r.entry.call.agent_offer_sdp.clone(),
                    caller: r.entry.call.caller.clone(),
                    display: queue_name.clone(),
                }))),
                hops: 0,
            });
        }
        r.next_step += 1;
        if let Some((next_delay_s, _)) = plan.get(r.next_step) {
            out.push(AgentOutput::Timer {
                after_ms: u64::from(next_delay_s.saturating_sub(*delay_s)) * 1000,
                message: AgentMsg::RingStep {
                    entry: r.entry.entry.clone(),
                    step: r.next_step,
                },
            });
        }
        out.extend(sends.into_iter().map(AgentOutput::Send));
        self.maybe_all_failed(out);
    }

    /// Ends the offer when every device asked has ended and no step is left.
    fn maybe_all_failed(&mut self, out: &mut Vec<AgentOutput>) {
        let Some(r) = &self.ringing else {
            return;
        };
        let steps_left = r.next_step < self.snapshot.ring_plan.len();
        if r.stopping || steps_left || r.asked.iter().any(|d| !r.ended.contains_key(d)) {
            return;
        }
        // The most telling end: a refusal or busy device beats silence.
        let ends: Vec<OfferEnd> = r.ended.values().copied().collect();
        let end = [
            OfferEnd::Rejected,
            OfferEnd::Busy,
            OfferEnd::NoAnswer,
            OfferEnd::Failed,
            OfferEnd::Cancelled,
        ]
        .into_iter()
        .find(|e| ends.contains(e))
        .unwrap_or(OfferEnd::Unreachable);
        self.end_offer(end, out);
    }

    /// Stops the ringing offer: the call actor hangs up the forks, the
    /// ledger releases the agent.
    fn end_offer(&mut self, end: OfferEnd, out: &mut Vec<AgentOutput>) {
        let Some(r) = &mut self.ringing else {
            return;
        };
        if r.stopping {
            return;
        }
        r.stopping = true;
        let entry = r.entry.clone();
        self.send(
            Address::Call {
                call: entry.call_ref(),
            },
            Message::Call(CallMsg::StopRinging {
                agent: self.user,
                end,
            }),
            out,
        );
        self.release(entry.entry.clone(), entry.queue, end, out);
    }

    fn release(&self, entry: String, queue: QueueId, end: OfferEnd, out: &mut Vec<AgentOutput>) {
        out.push(AgentOutput::Ledger {
            command: Box::new(Command::ReleaseOffer {
                tenant: self.tenant,
                entry: entry.clone(),
                user: self.user,
                end,
            }),
            op: AgentOp::Release { entry, queue, end },
        });
    }

    /// Panics if the machine's state is inconsistent (a bug here).
    pub fn check_invariants(&self) {
        assert!(
            !(self.ringing.is_some() && self.reserving.is_some()),
            "an agent reserves only while nothing rings"
        );
        if let Some(r) = &self.ringing {
            assert!(
                r.ended.keys().all(|d| r.asked.contains(d)),
                "only devices that were asked can end"
            );
        }
        if self.deciding {
            assert!(
                !self.candidates.is_empty(),
                "a decision waits only for offers"
            );
        }
    }
}

/// The record of a call whose node died while the agent talked: written by
/// the agent's new owner (C4: once), marked lost.
fn lost_record(info: &EntryInfo, agent: UserId, connected_ms: u64, now_ms: u64) -> ActivityRecord {
    ActivityRecord {
        disposition: None,
        interventions: Vec::new(),
        id: info.entry.clone(),
        direction: Direction::Inbound,
        queue: Some(info.queue),
        agent: Some(agent),
        caller: info.call.caller.clone(),
        called: info.call.called.clone(),
        started_at_ms: info.call.arrived_at_ms.min(connected_ms),
        connected_at_ms: Some(connected_ms),
        ended_at_ms: now_ms.max(connected_ms),
        closed_at_ms: now_ms.max(connected_ms),
        waiting_ms: 0,
        interaction_ms: 0,
        processing_ms: 0,
        outcome: ActivityOutcome::Lost {
            reason: format!(
                "node {} that held the call's dialog stopped answering; the call was cut",
                info.call.node
            ),
        },
        segments: vec![
            Segment::Queue {
                queue: info.queue,
                from_ms: info.enqueued_at_ms,
                to_ms: connected_ms.max(info.enqueued_at_ms),
                reason: "answered".into(),
            },
            Segment::Agent {
                agent,
                from_ms: connected_ms,
                to_ms: now_ms.max(connected_ms),
            },
        ],
        node: info.call.node,
    }
}
