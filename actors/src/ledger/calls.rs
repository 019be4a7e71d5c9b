//! The voice state of agents (A4, A6, Q4) and the life of a queue call in
//! the ledger: an offer reserves an agent (at most one voice offer or call
//! per agent, ever), a connection assigns the entry (once), the hang-up
//! starts after-call work, and closing writes the activity record once
//! (C4) into the tenant's outbox, which every node's history store drains.
//!
//! This is the agent machine's checkpoint together with its session (A1,
//! A5): the machine keeps nothing durable of its own.
//!
//! Invariants: an agent's voice state names at most one entry; an entry is
//! offered only while waiting, and every agent it is offered to has it as
//! its offer; an activity id is closed at most once within the last
//! [`CLOSED_KEPT`] closings; the outbox holds at most [`OUTBOX_KEPT`]
//! records, in closing order.

use super::command::Outcome;
use super::entries::EntryState;
use super::tenant::TenantState;
use crate::model::activity::{ActivityOutcome, ActivityRecord, OfferEnd, Segment};
use crate::model::agent_status::{Author, SessionAction, SessionChange, SystemRule};
use crate::model::refusal::{ensure, Checked};
use crate::model::{QueueId, Refusal, RefusalCode, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Closed activity ids remembered (a late second close is refused).
pub const CLOSED_KEPT: usize = 100_000;
/// Records kept in a tenant's outbox for history stores that catch up.
pub const OUTBOX_KEPT: usize = 10_000;

/// What an agent is doing on voice (A4, A6: one at a time).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Voice {
    /// Nothing.
    #[default]
    Idle,
    /// Offered an entry; its devices ring.
    Offered {
        /// The entry.
        entry: String,
        /// Since.
        since_ms: u64,
    },
    /// Connected to the caller of an entry.
    Talking {
        /// The entry.
        entry: String,
        /// Since.
        since_ms: u64,
    },
    /// After-call work on an entry until `until_ms` (A4).
    WrapUp {
        /// The entry.
        entry: String,
        /// Started.
        since_ms: u64,
        /// Ends.
        until_ms: u64,
    },
}

impl Voice {
    /// The entry it is about.
    pub fn entry(&self) -> Option<&str> {
        match self {
            Voice::Idle => None,
            Voice::Offered { entry, .. }
            | Voice::Talking { entry, .. }
            | Voice::WrapUp { entry, .. } => Some(entry),
        }
    }
}

/// An agent's voice state and the figures routing orders agents by (Q1, Q4).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentVoice {
    /// What the agent does now.
    pub voice: Voice,
    /// When it last became free of voice work.
    pub idle_since_ms: u64,
    /// When it was last offered a call.
    pub last_offered_ms: Option<u64>,
    /// Calls answered.
    pub calls_taken: u64,
    /// Talk time, ms.
    pub talk_time_ms: u64,
    /// Offers missed in a row (Q4).
    pub missed_in_row: u32,
    /// Not offered before this instant (Q4 back-off and retry delay).
    pub not_before_ms: u64,
    /// The record of the call in after-call work, completed when it closes.
    pub pending_record: Option<ActivityRecord>,
}

/// Where a queue call lives: what a survivor needs to reach it (C4: the call
/// checkpoint of DESIGN.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallCheckpoint {
    /// The node whose SIP edge holds the caller's dialog (and the call actor).
    pub node: u64,
    /// The caller's leg on that node.
    pub leg: u64,
    /// SIP Call-ID of the caller's dialog.
    pub sip_call_id: String,
    /// The caller's number.
    pub caller: String,
    /// The number dialled.
    pub called: String,
    /// The media session (relay session id) and the relay's control address.
    pub media_session: String,
    /// The relay that holds it.
    pub relay: String,
    /// The relay's SDP offer for the agent's leg.
    pub agent_offer_sdp: String,
    /// When the call arrived, ms since the epoch.
    pub arrived_at_ms: u64,
}

/// Closed activities and the outbox of their records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activities {
    closed: BTreeSet<String>,
    closed_order: VecDeque<String>,
    next_seq: u64,
    outbox: VecDeque<(u64, ActivityRecord)>,
}

impl Activities {
    /// Records closed after `seq` (exclusive), oldest first, and the oldest
    /// sequence still kept (a reader behind it has missed records).
    pub fn since(&self, seq: u64) -> (Option<u64>, impl Iterator<Item = &(u64, ActivityRecord)>) {
        let first = self.outbox.front().map(|(s, _)| *s);
        (first, self.outbox.iter().filter(move |(s, _)| *s > seq))
    }

    /// The sequence number of the last record closed (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.next_seq
    }

    /// Whether `id` was closed (within the kept window).
    pub fn is_closed(&self, id: &str) -> bool {
        self.closed.contains(id)
    }

    fn close(&mut self, record: ActivityRecord) -> Checked<u64> {
        ensure(
            !self.closed.contains(&record.id),
            RefusalCode::ActivityClosed,
            || {
                format!(
                    "activity {:?} is already closed (C4: one record)",
                    record.id
                )
            },
        )?;
        self.closed.insert(record.id.clone());
        self.closed_order.push_back(record.id.clone());
        if self.closed_order.len() > CLOSED_KEPT {
            if let Some(old) = self.closed_order.pop_front() {
                self.closed.remove(&old);
            }
        }
        self.next_seq += 1;
        self.outbox.push_back((self.next_seq, record));
        if self.outbox.len() > OUTBOX_KEPT {
            self.outbox.pop_front();
        }
        Ok(self.next_seq)
    }

    pub(crate) fn check_invariants(&self) {
        assert_eq!(
            self.closed.len(),
            self.closed_order.len(),
            "each closed id is kept once"
        );
        assert!(self.closed.len() <= CLOSED_KEPT && self.outbox.len() <= OUTBOX_KEPT);
        let seqs: Vec<u64> = self.outbox.iter().map(|(s, _)| *s).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] + 1 == w[1]),
            "the outbox is in closing order, without gaps"
        );
    }
}

fn busy(what: &str) -> Refusal {
    Refusal::new(RefusalCode::AgentBusy, format!("A6: the agent {what}"))
}

impl TenantState {
    /// The voice state of an agent (default when it never had any).
    pub fn agent_voice(&self, user: UserId) -> AgentVoice {
        self.voice.get(&user).cloned().unwrap_or_default()
    }

    fn is_static_member(&self, user: UserId, queue: QueueId) -> bool {
        self.queues
            .get(&queue)
            .is_some_and(|q| q.spec.static_members.contains(&user))
    }

    /// Reserves `user` for `entry` (Q4 offer; A6 one voice offer at a time).
    pub(crate) fn offer_call(
        &mut self,
        entry: &str,
        user: UserId,
        now_ms: u64,
    ) -> Checked<Outcome> {
        self.user(user)?;
        let e = self
            .entries
            .get(entry)
            .ok_or_else(|| Refusal::not_found("queue entry"))?
            .clone();
        ensure(
            e.state == EntryState::Waiting,
            RefusalCode::EntryNotWaiting,
            || "the caller is no longer waiting".into(),
        )?;
        let in_queue = match self.sessions.get(&user) {
            Some(s) => {
                ensure(s.pause.is_none(), RefusalCode::AgentUnavailable, || {
                    "A5: the agent is paused".into()
                })?;
                s.checked_in.contains(&e.queue)
            }
            None => false,
        } || self.is_static_member(user, e.queue);
        ensure(in_queue, RefusalCode::AgentUnavailable, || {
            "A1: the agent is neither checked in to the queue nor a static member".into()
        })?;
        let ring_all = self
            .queues
            .get(&e.queue)
            .is_some_and(|q| q.spec.strategy == crate::model::queue::Strategy::RingAll);
        ensure(
            ring_all || e.offered_to.iter().all(|u| *u == user),
            RefusalCode::EntryAlreadyAssigned,
            || {
                "Q1: the caller is already offered to another agent (only ring-all offers a call to several)".into()
            },
        )?;
        let state = self.voice.entry(user).or_default();
        match &state.voice {
            Voice::Idle => {}
            Voice::Offered { .. } => return Err(busy("already has an offer")),
            Voice::Talking { .. } => return Err(busy("is on a call")),
            Voice::WrapUp { until_ms, .. } if *until_ms > now_ms => {
                return Err(busy("is in after-call work"))
            }
            Voice::WrapUp { .. } => return Err(busy("has after-call work to close first")),
        }
        state.voice = Voice::Offered {
            entry: entry.to_string(),
            since_ms: now_ms,
        };
        state.last_offered_ms = Some(now_ms);
        self.entries.offered(entry, user, true);
        Ok(Outcome::Done)
    }

    /// Ends an offer that was not answered (or lost a ring-all race); Q4:
    /// counts missed offers, auto-pauses after N, backs off after a refusal.
    pub(crate) fn release_offer(
        &mut self,
        entry: &str,
        user: UserId,
        end: OfferEnd,
        now_ms: u64,
    ) -> Checked<Outcome> {
        self.user(user)?;
        let state = self.voice.entry(user).or_default();
        let holds = matches!(&state.voice, Voice::Offered { entry: e, .. } if e == entry);
        ensure(holds, RefusalCode::ActivityUnknown, || {
            "the agent holds no offer of this entry".into()
        })?;
        state.voice = Voice::Idle;
        state.idle_since_ms = now_ms;
        self.entries.offered(entry, user, false);
        let queue = self.entries.get(entry).map(|e| e.queue);
        let spec = queue
            .and_then(|q| self.queues.get(&q))
            .map(|q| q.spec.clone());
        let state = self.voice.entry(user).or_default();
        let mut paused = false;
        if let Some(spec) = spec {
            if end.is_missed() {
                state.missed_in_row += 1;
                state.not_before_ms = now_ms + u64::from(spec.retry_delay_s) * 1000;
                if let (Some(n), Some(pause_type)) =
                    (spec.auto_pause_after_missed, spec.auto_pause_type)
                {
                    if state.missed_in_row >= n {
                        state.missed_in_row = 0;
                        if let Some(session) = self.sessions.get_mut(&user) {
                            if session.pause.is_none() {
                                session.pause = Some(super::sessions::ActivePause {
                                    pause_type,
                                    since_ms: now_ms,
                                });
                                paused = true;
                            }
                        }
                        if paused {
                            self.note_change(
                                user,
                                SessionChange {
                                    at_ms: now_ms,
                                    by: Author::System {
                                        rule: SystemRule::MissedOffers,
                                    },
                                    what: SessionAction::Paused {
                                        pause_type,
                                        deferred: false,
                                    },
                                },
                            );
                        }
                    }
                }
            } else if end.backs_off() {
                state.not_before_ms = now_ms + u64::from(spec.reject_backoff_s) * 1000;
            }
        }
        Ok(Outcome::OfferReleased {
            auto_paused: paused,
        })
    }

    /// The agent answered: the entry is assigned to it (once), every other
    /// offer of the entry ends, and the agent's activity opens.
    pub(crate) fn connect_call(
        &mut self,
        entry: &str,
        user: UserId,
        now_ms: u64,
    ) -> Checked<Outcome> {
        self.user(user)?;
        let state = self.voice.get(&user).cloned().unwrap_or_default();
        let holds = matches!(&state.voice, Voice::Offered { entry: e, .. } if e == entry);
        ensure(holds, RefusalCode::ActivityUnknown, || {
            "the agent holds no offer of this entry".into()
        })?;
        let others: Vec<UserId> = self
            .entries
            .get(entry)
            .map(|e| {
                e.offered_to
                    .iter()
                    .copied()
                    .filter(|u| *u != user)
                    .collect()
            })
            .unwrap_or_default();
        self.assign_entry(entry, user)?;
        for other in others {
            if let Some(s) = self.voice.get_mut(&other) {
                if s.voice.entry() == Some(entry) {
                    s.voice = Voice::Idle;
                    s.idle_since_ms = now_ms;
                }
            }
        }
        let state = self.voice.entry(user).or_default();
        state.voice = Voice::Talking {
            entry: entry.to_string(),
            since_ms: now_ms,
        };
        state.missed_in_row = 0;
        state.calls_taken += 1;
        if let Some(session) = self.sessions.get_mut(&user) {
            session.activities.insert(entry.to_string());
        }
        Ok(Outcome::Done)
    }

    /// The interaction ended: after-call work starts for the queue's
    /// `wrap_up_s` (closing at once when it is 0), with the call's record.
    pub(crate) fn end_call(
        &mut self,
        entry: &str,
        user: UserId,
        record: ActivityRecord,
        now_ms: u64,
    ) -> Checked<Outcome> {
        self.user(user)?;
        let state = self.voice.get(&user).cloned().unwrap_or_default();
        let Voice::Talking { since_ms, .. } = state.voice else {
            return Err(Refusal::new(
                RefusalCode::ActivityUnknown,
                "the agent is not on this call",
            ));
        };
        ensure(
            state.voice.entry() == Some(entry),
            RefusalCode::ActivityUnknown,
            || "the agent is not on this call".into(),
        )?;
        // The agent's own limit, else its queue's (A4).
        let wrap_up_s = self
            .users
            .get(&user)
            .and_then(|u| u.spec.wrap_up_s)
            .unwrap_or_else(|| {
                self.entries
                    .get(entry)
                    .and_then(|e| self.queues.get(&e.queue))
                    .map_or(0, |q| q.spec.wrap_up_s)
            });
        let s = self.voice.entry(user).or_default();
        s.talk_time_ms += now_ms.saturating_sub(since_ms);
        s.voice = Voice::WrapUp {
            entry: entry.to_string(),
            since_ms: now_ms,
            until_ms: now_ms + u64::from(wrap_up_s) * 1000,
        };
        s.pending_record = Some(record);
        if wrap_up_s == 0 {
            return self.finish_wrap_up(entry, user, None, now_ms);
        }
        Ok(Outcome::WrapUp {
            until_ms: now_ms + u64::from(wrap_up_s) * 1000,
        })
    }

    /// After-call work is over: the activity closes and its record is
    /// written; a pause or logout asked for during the call takes effect.
    /// The call `user` is wrapping up, and the disposition `code` checked
    /// against its queue's codes (C4).
    fn wrap_up_of(&self, user: UserId, code: Option<&str>) -> Checked<String> {
        self.user(user)?;
        let entry = match self.voice.get(&user).map(|s| &s.voice) {
            Some(Voice::WrapUp { entry, .. }) => entry.clone(),
            _ => {
                return Err(Refusal::new(
                    RefusalCode::ActivityUnknown,
                    "A4: the agent is not in after-call work",
                ))
            }
        };
        if let Some(code) = code {
            let codes = self
                .entries
                .get(&entry)
                .and_then(|e| self.queues.get(&e.queue))
                .map(|q| q.spec.disposition_codes.clone())
                .unwrap_or_default();
            ensure(
                codes.iter().any(|c| c == code),
                RefusalCode::DispositionUnknown,
                || {
                    format!(
                        "C4: {code:?} is not a disposition code of the call's queue (its codes: {})",
                        if codes.is_empty() { "none".to_string() } else { codes.join(", ") }
                    )
                },
            )?;
        }
        Ok(entry)
    }

    /// The interventions noted on `entry` while it waited (S2).
    fn interventions_of(&self, entry: &str) -> Vec<crate::model::activity::Intervention> {
        self.entries
            .get(entry)
            .map(|e| e.interventions.clone())
            .unwrap_or_default()
    }

    pub(crate) fn set_disposition(&mut self, user: UserId, code: &str) -> Checked<Outcome> {
        self.wrap_up_of(user, Some(code))?;
        if let Some(record) = self
            .voice
            .get_mut(&user)
            .and_then(|s| s.pending_record.as_mut())
        {
            record.disposition = Some(code.to_string());
        }
        Ok(Outcome::Done)
    }

    pub(crate) fn end_wrap_up(
        &mut self,
        user: UserId,
        disposition: Option<String>,
        now_ms: u64,
    ) -> Checked<Outcome> {
        let entry = self.wrap_up_of(user, disposition.as_deref())?;
        self.finish_wrap_up(&entry, user, disposition, now_ms)
    }

    pub(crate) fn finish_wrap_up(
        &mut self,
        entry: &str,
        user: UserId,
        disposition: Option<String>,
        now_ms: u64,
    ) -> Checked<Outcome> {
        self.user(user)?;
        let state = self.voice.get(&user).cloned().unwrap_or_default();
        let Voice::WrapUp { since_ms, .. } = &state.voice else {
            return Err(Refusal::new(
                RefusalCode::ActivityUnknown,
                "the agent has no after-call work on this call",
            ));
        };
        ensure(
            state.voice.entry() == Some(entry),
            RefusalCode::ActivityUnknown,
            || "the agent has no after-call work on this call".into(),
        )?;
        let since_ms = *since_ms;
        let mut record = state.pending_record.clone().ok_or_else(|| {
            Refusal::new(RefusalCode::ActivityUnknown, "the call's record is missing")
        })?;
        record.closed_at_ms = now_ms.max(record.ended_at_ms);
        if disposition.is_some() {
            record.disposition = disposition;
        }
        record.interventions = self.interventions_of(entry);
        if now_ms > since_ms {
            record.segments.push(Segment::WrapUp {
                agent: user,
                from_ms: since_ms,
                to_ms: now_ms,
            });
        }
        // Waiting counts from the first queue (a moved entry knows only its
        // last one).
        let entered = record.first_queued_ms().unwrap_or_else(|| {
            self.entries
                .get(entry)
                .map_or(record.started_at_ms, |e| e.enqueued_at_ms)
        });
        record.compute_times(entered);
        let seq = self.activities.close(record)?;
        let s = self.voice.entry(user).or_default();
        s.voice = Voice::Idle;
        s.idle_since_ms = now_ms;
        s.pending_record = None;
        if self
            .sessions
            .get(&user)
            .is_some_and(|s| s.activities.contains(entry))
        {
            self.end_activity(user, entry, now_ms)?;
        }
        Ok(Outcome::ActivityClosed { seq })
    }

    /// Closes an activity no agent holds (abandoned, refused, lost): the
    /// entry stops waiting, its offers end, and the record is written.
    pub(crate) fn close_activity(
        &mut self,
        mut record: ActivityRecord,
        now_ms: u64,
    ) -> Checked<Outcome> {
        ensure(
            !self.activities.is_closed(&record.id),
            RefusalCode::ActivityClosed,
            || {
                format!(
                    "activity {:?} is already closed (C4: one record)",
                    record.id
                )
            },
        )?;
        let holders: Vec<UserId> = self
            .voice
            .iter()
            .filter(|(_, s)| s.voice.entry() == Some(record.id.as_str()))
            .map(|(u, _)| *u)
            .collect();
        for user in &holders {
            let talking = matches!(
                self.voice.get(user).map(|s| &s.voice),
                Some(Voice::Talking { .. } | Voice::WrapUp { .. })
            );
            ensure(
                !talking || matches!(record.outcome, ActivityOutcome::Lost { .. }),
                RefusalCode::AgentBusy,
                || "an agent holds this call; its close comes through the agent".into(),
            )?;
        }
        let entered = record.first_queued_ms().unwrap_or_else(|| {
            self.entries
                .get(&record.id)
                .map_or(record.started_at_ms, |e| e.enqueued_at_ms)
        });
        record.interventions = self.interventions_of(&record.id);
        if self
            .entries
            .get(&record.id)
            .is_some_and(|e| e.state == EntryState::Waiting)
        {
            if matches!(
                record.outcome,
                ActivityOutcome::Abandoned | ActivityOutcome::Lost { .. }
            ) {
                self.keep_place(&record.id, now_ms);
            }
            self.abandon_entry(&record.id)?;
        }
        for user in holders {
            if let Some(s) = self.voice.get_mut(&user) {
                s.voice = Voice::Idle;
                s.idle_since_ms = now_ms;
                s.pending_record = None;
            }
            if self
                .sessions
                .get(&user)
                .is_some_and(|s| s.activities.contains(&record.id))
            {
                self.end_activity(user, &record.id, now_ms)?;
            }
        }
        record.closed_at_ms = record.closed_at_ms.max(record.ended_at_ms);
        record.compute_times(entered);
        let seq = self.activities.close(record)?;
        Ok(Outcome::ActivityClosed { seq })
    }

    /// Asserts the voice invariants.
    pub(crate) fn check_voice(&self) {
        for (user, state) in &self.voice {
            assert!(
                self.users.contains_key(user),
                "voice state belongs to a user"
            );
            if let Voice::Offered { entry, .. } = &state.voice {
                let e = self.entries.get(entry);
                assert!(
                    e.is_some_and(|e| e.offered_to.contains(user)),
                    "an offer is recorded on its entry"
                );
            }
        }
        for entry in self.entries.all() {
            for user in &entry.offered_to {
                assert!(
                    entry.state == EntryState::Waiting,
                    "only waiting entries are offered"
                );
                assert!(
                    self.voice
                        .get(user)
                        .is_some_and(|s| s.voice.entry() == Some(entry.entry.as_str())),
                    "every agent an entry is offered to holds it"
                );
            }
        }
        self.activities.check_invariants();
    }
}

/// Voice state by agent.
pub type VoiceTable = BTreeMap<UserId, AgentVoice>;
