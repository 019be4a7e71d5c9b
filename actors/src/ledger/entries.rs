//! Queue entries (Q3): callers waiting in queues, in priority-then-FIFO
//! order; each entry is assigned to an agent at most once.
//!
//! Invariant: an entry is waiting in exactly one queue's order while its
//! state is `Waiting`, and in none otherwise.

use super::command::Outcome;
use super::tenant::TenantState;
use crate::model::refusal::{ensure, Checked};
use crate::model::{QueueId, Refusal, RefusalCode, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The highest caller priority.
pub const MAX_PRIORITY: u32 = 100;
/// Finished entries remembered (so a late second assignment is refused).
pub const FINISHED_KEPT: usize = 100_000;

/// Where an entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum EntryState {
    /// Waiting for an agent.
    Waiting,
    /// Given to an agent (once).
    Assigned {
        /// The agent.
        user: UserId,
    },
    /// The caller left.
    Abandoned,
}

/// A caller in a queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueEntry {
    /// Caller-supplied id (for example the call id).
    pub entry: String,
    /// The queue.
    pub queue: QueueId,
    /// Priority, higher first.
    pub priority: u32,
    /// Order of arrival in the tenant.
    pub sequence: u64,
    /// When it entered the queue.
    pub enqueued_at_ms: u64,
    /// State.
    pub state: EntryState,
    /// The agents it is offered to now (several for ring-all).
    #[serde(default)]
    pub offered_to: std::collections::BTreeSet<UserId>,
    /// Where the call lives (absent for entries made through the API).
    #[serde(default)]
    pub call: Option<Box<super::calls::CallCheckpoint>>,
    /// Where a user sent it (S2), for its call actor to carry out.
    #[serde(default)]
    pub withdrawal: Option<crate::model::queue::Destination>,
    /// What users changed while it waited (S2), the last
    /// [`MAX_INTERVENTIONS`] kept.
    #[serde(default)]
    pub interventions: Vec<crate::model::activity::Intervention>,
    /// The entry whose place it took (Q8: the caller called again).
    #[serde(default)]
    pub resumed_from: Option<String>,
}

/// Interventions kept per entry.
pub const MAX_INTERVENTIONS: usize = 16;

/// The order key: higher priority first, then earlier arrival.
type WaitKey = (u32, u64, String);

fn wait_key(entry: &QueueEntry) -> WaitKey {
    (
        MAX_PRIORITY - entry.priority,
        entry.sequence,
        entry.entry.clone(),
    )
}

/// All entries of a tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntries {
    next_sequence: u64,
    entries: BTreeMap<String, QueueEntry>,
    waiting: BTreeMap<QueueId, BTreeSet<WaitKey>>,
    finished: VecDeque<String>,
    /// Places kept for callers who left (Q8).
    #[serde(default)]
    places: super::resume::Places,
}

impl QueueEntries {
    /// Callers waiting in `queue`.
    pub fn waiting_count(&self, queue: QueueId) -> usize {
        self.waiting.get(&queue).map_or(0, BTreeSet::len)
    }

    /// Waiting entries of `queue` in service order.
    pub fn waiting(&self, queue: QueueId) -> Vec<&QueueEntry> {
        self.waiting
            .get(&queue)
            .into_iter()
            .flatten()
            .filter_map(|(_, _, id)| self.entries.get(id))
            .collect()
    }

    /// An entry by id.
    pub fn get(&self, entry: &str) -> Option<&QueueEntry> {
        self.entries.get(entry)
    }

    /// Every entry kept (waiting and recently finished).
    pub fn all(&self) -> impl Iterator<Item = &QueueEntry> {
        self.entries.values()
    }

    /// Records that `user` is (or no longer is) offered `entry`.
    pub(crate) fn offered(&mut self, entry: &str, user: UserId, on: bool) {
        if let Some(e) = self.entries.get_mut(entry) {
            if on {
                e.offered_to.insert(user);
            } else {
                e.offered_to.remove(&user);
            }
        }
    }

    /// Ends an entry's wait; returns the agents it was still offered to.
    fn finish(&mut self, entry: &str, state: EntryState) -> std::collections::BTreeSet<UserId> {
        let Some(e) = self.entries.get_mut(entry) else {
            return Default::default();
        };
        let offered = std::mem::take(&mut e.offered_to);
        let key = wait_key(e);
        if let Some(set) = self.waiting.get_mut(&e.queue) {
            set.remove(&key);
            if set.is_empty() {
                self.waiting.remove(&e.queue);
            }
        }
        e.state = state;
        self.finished.push_back(entry.to_string());
        if self.finished.len() > FINISHED_KEPT {
            if let Some(oldest) = self.finished.pop_front() {
                self.entries.remove(&oldest);
            }
        }
        offered
    }

    /// Asserts the order index matches the entries.
    pub fn check_invariants(&self) {
        let indexed: usize = self.waiting.values().map(BTreeSet::len).sum();
        let waiting = self
            .entries
            .values()
            .filter(|e| e.state == EntryState::Waiting)
            .count();
        assert_eq!(
            indexed, waiting,
            "every waiting entry is indexed exactly once"
        );
        for (queue, keys) in &self.waiting {
            for (_, _, id) in keys {
                let e = &self.entries[id];
                assert!(
                    e.queue == *queue && e.state == EntryState::Waiting,
                    "the index holds only waiting entries of its queue"
                );
            }
        }
        assert!(
            self.finished.len() <= FINISHED_KEPT,
            "finished entries are bounded"
        );
        self.places.check_invariants();
    }
}

impl TenantState {
    pub(crate) fn enqueue(
        &mut self,
        queue: QueueId,
        entry: String,
        priority: Option<u32>,
        call: Option<Box<super::calls::CallCheckpoint>>,
        now_ms: u64,
    ) -> Checked<Outcome> {
        let config = self
            .queues
            .get(&queue)
            .ok_or_else(|| Refusal::not_found("queue"))?;
        let priority = priority.unwrap_or(config.spec.default_priority);
        let rejoins = config.spec.rejoin_window_s.is_some();
        ensure(
            priority <= MAX_PRIORITY,
            RefusalCode::PriorityInvalid,
            || format!("a priority is 0 to {MAX_PRIORITY}"),
        )?;
        ensure(
            !entry.is_empty() && entry.len() <= 128,
            RefusalCode::NameRequired,
            || "an entry id has 1 to 128 characters".into(),
        )?;
        crate::model::text::ID.check("entry", &entry)?;
        ensure(
            !self.entries.entries.contains_key(&entry),
            RefusalCode::EntryNotUnique,
            || format!("entry {entry:?} already exists"),
        )?;
        self.check_room(queue)?;
        self.entries.next_sequence += 1;
        let mut record = QueueEntry {
            entry: entry.clone(),
            queue,
            priority,
            sequence: self.entries.next_sequence,
            enqueued_at_ms: now_ms,
            state: EntryState::Waiting,
            offered_to: Default::default(),
            call,
            withdrawal: None,
            interventions: Vec::new(),
            resumed_from: None,
        };
        // Q8: the same number back within the window takes its old place.
        let caller = record.call.as_ref().map(|c| c.caller.clone());
        if let Some(caller) = caller.filter(|c| rejoins && super::resume::resumable_caller(c)) {
            if let Some(place) = self.entries.places.take(queue, &caller, now_ms) {
                record.sequence = place.sequence;
                record.priority = record.priority.max(place.priority);
                record.resumed_from = Some(place.entry);
            }
        }
        Ok(self.place(record))
    }

    /// Q8: a caller leaving `entry` keeps its place for the queue's window.
    pub(crate) fn keep_place(&mut self, entry: &str, now_ms: u64) {
        let Some(e) = self
            .entries
            .get(entry)
            .filter(|e| e.state == EntryState::Waiting)
        else {
            return;
        };
        let Some(window) = self
            .queues
            .get(&e.queue)
            .and_then(|q| q.spec.rejoin_window_s)
        else {
            return;
        };
        let Some(caller) = e
            .call
            .as_ref()
            .map(|c| c.caller.clone())
            .filter(|c| super::resume::resumable_caller(c))
        else {
            return;
        };
        let place = super::resume::Place {
            entry: entry.to_string(),
            priority: e.priority,
            sequence: e.sequence,
            until_ms: now_ms + u64::from(window) * 1000,
        };
        let queue = e.queue;
        self.entries.places.keep(queue, &caller, place, now_ms);
    }

    /// Q5: a queue with a maximum length takes no caller beyond it.
    fn check_room(&self, queue: QueueId) -> Checked<()> {
        let config = self
            .queues
            .get(&queue)
            .ok_or_else(|| Refusal::not_found("queue"))?;
        if let Some(max) = config.spec.max_length {
            let waiting = self.entries.waiting_count(queue);
            ensure(waiting < max as usize, RefusalCode::QueueFull, || {
                format!("the queue holds at most {max} callers")
            })?;
        }
        Ok(())
    }

    /// Files a waiting entry in its queue's index; what the caller follows.
    fn place(&mut self, record: QueueEntry) -> Outcome {
        self.entries
            .waiting
            .entry(record.queue)
            .or_default()
            .insert(wait_key(&record));
        let outcome = Outcome::Enqueued {
            queue: record.queue,
            sequence: record.sequence,
            priority: record.priority,
            enqueued_at_ms: record.enqueued_at_ms,
            spec: Box::new(self.queues[&record.queue].spec.clone()),
        };
        self.entries.entries.insert(record.entry.clone(), record);
        outcome
    }

    pub(crate) fn move_entry(
        &mut self,
        entry: &str,
        queue: QueueId,
        now_ms: u64,
    ) -> Checked<Outcome> {
        let old = self.waiting_entry(entry)?.clone();
        ensure(old.queue != queue, RefusalCode::QueueConfigInvalid, || {
            "Q5: the caller already waits in that queue".into()
        })?;
        self.check_room(queue)?;
        if let Some(set) = self.entries.waiting.get_mut(&old.queue) {
            set.remove(&wait_key(&old));
        }
        self.release_voice_offers(entry, old.offered_to.iter().copied());
        self.entries.next_sequence += 1;
        let record = QueueEntry {
            queue,
            priority: self.queues[&queue].spec.default_priority,
            sequence: self.entries.next_sequence,
            enqueued_at_ms: now_ms,
            offered_to: Default::default(),
            withdrawal: None,
            ..old
        };
        Ok(self.place(record))
    }

    fn waiting_entry(&self, entry: &str) -> Checked<&QueueEntry> {
        let e = self
            .entries
            .entries
            .get(entry)
            .ok_or_else(|| Refusal::not_found("queue entry"))?;
        match e.state {
            EntryState::Waiting => Ok(e),
            EntryState::Assigned { .. } => Err(Refusal::new(
                RefusalCode::EntryAlreadyAssigned,
                "the entry was already assigned",
            )),
            EntryState::Abandoned => Err(Refusal::new(
                RefusalCode::EntryNotWaiting,
                "the caller has left the queue",
            )),
        }
    }

    pub(crate) fn change_priority(&mut self, entry: &str, priority: u32) -> Checked<Outcome> {
        ensure(
            priority <= MAX_PRIORITY,
            RefusalCode::PriorityInvalid,
            || format!("a priority is 0 to {MAX_PRIORITY}"),
        )?;
        let old = self.waiting_entry(entry)?.clone();
        let set = self.entries.waiting.entry(old.queue).or_default();
        set.remove(&wait_key(&old));
        let updated = QueueEntry { priority, ..old };
        set.insert(wait_key(&updated));
        self.entries.entries.insert(entry.to_string(), updated);
        Ok(Outcome::Done)
    }

    /// S2: a user sends a waiting caller elsewhere. The call's actor carries
    /// it out (it holds the dialog and the media); an entry without a call
    /// moves or leaves at once.
    pub(crate) fn withdraw_entry(
        &mut self,
        entry: &str,
        destination: crate::model::queue::Destination,
        now_ms: u64,
    ) -> Checked<Outcome> {
        use crate::model::queue::Destination;
        let e = self.waiting_entry(entry)?.clone();
        match &destination {
            Destination::Queue { queue } => {
                ensure(*queue != e.queue, RefusalCode::QueueConfigInvalid, || {
                    "S2: the caller already waits in that queue".into()
                })?;
                self.check_room(*queue)?;
            }
            Destination::Number { number } => {
                return Err(Refusal::new(
                    RefusalCode::QueueConfigInvalid,
                    format!(
                        "S2: the caller cannot be sent to the external number {number:?}: \
                         dialling out needs an outbound trunk, which this version does not have"
                    ),
                ))
            }
            Destination::Hangup { .. } => {}
        }
        if e.withdrawal.is_some() {
            return Err(Refusal::new(
                RefusalCode::EntryNotWaiting,
                "S2: the caller is being withdrawn already",
            ));
        }
        if e.call.is_none() {
            return match destination {
                Destination::Queue { queue } => self.move_entry(entry, queue, now_ms),
                _ => self.abandon_entry(entry),
            };
        }
        if let Some(e) = self.entries.entries.get_mut(entry) {
            e.withdrawal = Some(destination);
        }
        Ok(Outcome::Done)
    }

    /// Notes who changed a waiting entry (S2); kept until its record.
    pub(crate) fn note_intervention(
        &mut self,
        entry: &str,
        intervention: crate::model::activity::Intervention,
    ) {
        if let Some(e) = self.entries.entries.get_mut(entry) {
            if e.interventions.len() == MAX_INTERVENTIONS {
                e.interventions.remove(0);
            }
            e.interventions.push(intervention);
        }
    }

    pub(crate) fn assign_entry(&mut self, entry: &str, user: UserId) -> Checked<Outcome> {
        self.user(user)?;
        self.waiting_entry(entry)?;
        let offered = self.entries.finish(entry, EntryState::Assigned { user });
        self.release_voice_offers(entry, offered.into_iter().filter(|u| *u != user));
        Ok(Outcome::Done)
    }

    pub(crate) fn abandon_entry(&mut self, entry: &str) -> Checked<Outcome> {
        self.waiting_entry(entry)?;
        let offered = self.entries.finish(entry, EntryState::Abandoned);
        self.release_voice_offers(entry, offered.into_iter());
        Ok(Outcome::Done)
    }

    /// The agents still offered an entry that stopped waiting are free again.
    fn release_voice_offers(&mut self, entry: &str, users: impl Iterator<Item = UserId>) {
        for user in users {
            if let Some(v) = self.voice.get_mut(&user) {
                if matches!(&v.voice, super::calls::Voice::Offered { entry: e, .. } if e == entry) {
                    v.voice = super::calls::Voice::Idle;
                }
            }
        }
    }
}
