//! Q8: a caller who hangs up while waiting (or whose call was lost with a
//! node) keeps its place in the queue for the queue's `rejoin_window_s`; a
//! call from the same number to the same queue within it takes that place
//! (its arrival order and priority) instead of joining at the back.
//!
//! Bounded: at most [`MAX_PLACES`] places per tenant (the soonest to expire
//! go first), expired ones dropped as new ones come. Callers without a
//! usable number (empty, `anonymous`, fewer than three digits) keep none.
//!
//! Invariant: both indexes hold the same places.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::QueueId;

/// Places kept per tenant.
pub const MAX_PLACES: usize = 10_000;

/// A place kept for a caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// The entry that left it.
    pub entry: String,
    /// Its priority.
    pub priority: u32,
    /// Its arrival order.
    pub sequence: u64,
    /// Kept until, ms since the epoch.
    pub until_ms: u64,
}

/// The places of one tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Places {
    by_caller: BTreeMap<QueueId, BTreeMap<String, Place>>,
    by_expiry: BTreeSet<(u64, QueueId, String)>,
}

/// Whether `caller` names someone who can call again.
pub fn resumable_caller(caller: &str) -> bool {
    !caller.eq_ignore_ascii_case("anonymous")
        && caller.bytes().filter(u8::is_ascii_digit).count() >= 3
}

impl Places {
    fn remove(&mut self, queue: QueueId, caller: &str) -> Option<Place> {
        let of_queue = self.by_caller.get_mut(&queue)?;
        let place = of_queue.remove(caller)?;
        if of_queue.is_empty() {
            self.by_caller.remove(&queue);
        }
        self.by_expiry
            .remove(&(place.until_ms, queue, caller.to_string()));
        Some(place)
    }

    fn expire(&mut self, now_ms: u64) {
        while let Some((until, queue, caller)) = self.by_expiry.first().cloned() {
            if until > now_ms && self.by_expiry.len() <= MAX_PLACES {
                break;
            }
            self.remove(queue, &caller);
        }
    }

    /// Keeps `place` for `caller` in `queue`.
    pub fn keep(&mut self, queue: QueueId, caller: &str, place: Place, now_ms: u64) {
        self.remove(queue, caller);
        self.by_expiry
            .insert((place.until_ms, queue, caller.to_string()));
        self.by_caller
            .entry(queue)
            .or_default()
            .insert(caller.to_string(), place);
        self.expire(now_ms);
    }

    /// The place `caller` left in `queue`, if still kept; it is used up.
    pub fn take(&mut self, queue: QueueId, caller: &str, now_ms: u64) -> Option<Place> {
        self.expire(now_ms);
        self.remove(queue, caller)
    }

    /// Panics if the two indexes disagree (a bug here).
    pub fn check_invariants(&self) {
        let places: usize = self.by_caller.values().map(BTreeMap::len).sum();
        assert_eq!(
            places,
            self.by_expiry.len(),
            "both indexes hold every place"
        );
        assert!(places <= MAX_PLACES, "places are bounded");
        for (until, queue, caller) in &self.by_expiry {
            assert_eq!(
                self.by_caller
                    .get(queue)
                    .and_then(|q| q.get(caller))
                    .map(|p| p.until_ms),
                Some(*until),
                "the expiry index names a kept place"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place(sequence: u64, until_ms: u64) -> Place {
        Place {
            entry: format!("e{sequence}"),
            priority: 0,
            sequence,
            until_ms,
        }
    }

    #[test]
    fn a_place_is_taken_once_within_its_window_and_not_after() {
        let (q, other) = (QueueId(1), QueueId(2));
        let mut p = Places::default();
        p.keep(q, "+420777000001", place(7, 10_000), 0);
        p.keep(q, "+420777000002", place(8, 5_000), 0);
        assert_eq!(p.take(other, "+420777000001", 1_000), None, "per queue");
        assert_eq!(
            p.take(q, "+420777000001", 1_000).map(|x| x.sequence),
            Some(7)
        );
        assert_eq!(p.take(q, "+420777000001", 1_000), None, "once");
        assert_eq!(
            p.take(q, "+420777000002", 5_000),
            None,
            "expired at its end"
        );
        assert!(p.by_expiry.is_empty());
        p.check_invariants();
    }

    #[test]
    fn the_table_is_bounded_and_drops_the_soonest_to_expire() {
        let q = QueueId(1);
        let mut p = Places::default();
        for i in 0..=MAX_PLACES as u64 {
            p.keep(q, &format!("+420{i:09}"), place(i, 1_000_000 + i), 0);
        }
        assert_eq!(p.by_expiry.len(), MAX_PLACES);
        assert_eq!(
            p.take(q, "+420000000000", 0),
            None,
            "the soonest to expire went"
        );
        assert!(p.take(q, &format!("+420{:09}", MAX_PLACES), 0).is_some());
        p.check_invariants();
    }

    #[test]
    fn callers_without_a_number_keep_no_place() {
        for (caller, ok) in [
            ("+420777000001", true),
            ("anonymous", false),
            ("", false),
            ("12", false),
        ] {
            assert_eq!(resumable_caller(caller), ok, "{caller:?}");
        }
    }
}
