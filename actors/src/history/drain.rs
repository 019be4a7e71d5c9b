//! What a history writer takes next from a tenant's outbox (C4): the
//! records after the sequence its store has, at most [`DRAIN_BATCH`] at a
//! time, and how many records the outbox no longer holds (they were
//! dropped before this store drained them: a long outage, or a node that
//! joined with a snapshot).

use crate::model::activity::ActivityRecord;

/// The most records one drain step takes (bounded work per wake-up).
pub const DRAIN_BATCH: usize = 500;

/// The next step of a writer for one tenant's log (activity records by
/// default, audit records too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainStep<R = ActivityRecord> {
    /// The store has every record the outbox closed.
    UpToDate,
    /// The store has drained further than this replica's outbox reaches
    /// (the replica is still catching up): nothing to do until it does.
    LedgerBehind {
        /// The store's sequence.
        stored: u64,
        /// The outbox's last sequence.
        last_seq: u64,
    },
    /// Write these records and the new drained sequence together.
    Write {
        /// The records, oldest first.
        records: Vec<R>,
        /// The sequence drained through once they are written.
        through: u64,
        /// Records between the stored sequence and the outbox's oldest
        /// that the outbox no longer holds.
        missed: u64,
        /// Whether more records follow `through`.
        more: bool,
    },
}

/// The step after `stored`, given the outbox as
/// [`crate::ledger::Activities::since`] shows it (`first_kept`, the records
/// after `stored` oldest first) and its `last_seq`.
pub fn plan_drain<'a, R: Clone + 'a>(
    stored: u64,
    first_kept: Option<u64>,
    last_seq: u64,
    after_stored: impl Iterator<Item = &'a (u64, R)>,
    batch: usize,
) -> DrainStep<R> {
    assert!(batch > 0, "a drain step takes at least one record");
    if last_seq < stored {
        return DrainStep::LedgerBehind { stored, last_seq };
    }
    if last_seq == stored {
        return DrainStep::UpToDate;
    }
    let missed = match first_kept {
        Some(first) => first.saturating_sub(stored + 1),
        None => last_seq - stored,
    };
    let mut through = stored + missed;
    let mut records = Vec::new();
    for (seq, record) in after_stored.take(batch) {
        assert!(
            *seq > through,
            "the outbox is in closing order after the stored sequence"
        );
        through = *seq;
        records.push(record.clone());
    }
    DrainStep::Write {
        records,
        through,
        missed,
        more: through < last_seq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::activity::{ActivityOutcome, Direction};

    fn outbox(seqs: std::ops::RangeInclusive<u64>) -> Vec<(u64, ActivityRecord)> {
        seqs.map(|seq| {
            (
                seq,
                ActivityRecord {
                    disposition: None,
                    interventions: Vec::new(),
                    id: format!("call-{seq}"),
                    direction: Direction::Inbound,
                    queue: None,
                    agent: None,
                    caller: "1000".into(),
                    called: "2000".into(),
                    started_at_ms: seq,
                    connected_at_ms: None,
                    ended_at_ms: seq,
                    closed_at_ms: seq,
                    waiting_ms: 0,
                    interaction_ms: 0,
                    processing_ms: 0,
                    outcome: ActivityOutcome::Abandoned,
                    segments: Vec::new(),
                    node: 1,
                },
            )
        })
        .collect()
    }

    /// (stored, outbox's kept seqs, last seq, batch) -> (ids written, through, missed, more)
    fn check(
        stored: u64,
        kept: Option<std::ops::RangeInclusive<u64>>,
        batch: usize,
        want: Option<(Vec<u64>, u64, u64, bool)>,
    ) {
        let records = kept.clone().map(outbox).unwrap_or_default();
        let first = records.first().map(|(s, _)| *s);
        let last = records.last().map_or(stored, |(s, _)| *s);
        let step = plan_drain(
            stored,
            first,
            last,
            records.iter().filter(|(s, _)| *s > stored),
            batch,
        );
        match (step, want) {
            (DrainStep::UpToDate, None) => {}
            (
                DrainStep::Write {
                    records,
                    through,
                    missed,
                    more,
                },
                Some(want),
            ) => {
                let ids: Vec<u64> = records.iter().map(|r| r.started_at_ms).collect();
                assert_eq!(
                    (ids, through, missed, more),
                    want,
                    "stored {stored} kept {kept:?}"
                );
            }
            (step, want) => panic!("stored {stored} kept {kept:?}: {step:?}, expected {want:?}"),
        }
    }

    #[test]
    fn steps_through_the_outbox() {
        check(0, None, 10, None);
        check(3, Some(1..=3), 10, None);
        check(0, Some(1..=3), 10, Some((vec![1, 2, 3], 3, 0, false)));
        check(1, Some(1..=3), 10, Some((vec![2, 3], 3, 0, false)));
        check(0, Some(1..=5), 2, Some((vec![1, 2], 2, 0, true)));
        check(2, Some(1..=5), 2, Some((vec![3, 4], 4, 0, true)));
        check(4, Some(1..=5), 2, Some((vec![5], 5, 0, false)));
        // The outbox dropped 1..=6 before this store drained them.
        check(0, Some(7..=9), 10, Some((vec![7, 8, 9], 9, 6, false)));
        check(4, Some(7..=9), 2, Some((vec![7, 8], 8, 2, true)));
        // Exactly caught up to the oldest kept: nothing missed.
        check(6, Some(7..=9), 10, Some((vec![7, 8, 9], 9, 0, false)));
    }

    #[test]
    fn a_replica_behind_the_store_waits() {
        let records = outbox(1..=3);
        assert_eq!(
            plan_drain(5, Some(1), 3, records.iter().filter(|(s, _)| *s > 5), 10),
            DrainStep::LedgerBehind {
                stored: 5,
                last_seq: 3
            }
        );
    }

    #[test]
    fn an_empty_outbox_after_closings_counts_them_missed() {
        let none: Vec<(u64, ActivityRecord)> = Vec::new();
        assert_eq!(
            plan_drain(2, None, 5, none.iter(), 10),
            DrainStep::Write {
                records: Vec::new(),
                through: 5,
                missed: 3,
                more: false
            }
        );
    }
}
