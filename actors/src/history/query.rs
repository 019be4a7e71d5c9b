//! Reading activity records: a time range, filters, what the caller may
//! see, and cursor paging. Pure: a store scans its keys newest first and
//! asks [`ActivityQuery::matches`] of each record.

use crate::model::activity::{ActivityOutcome, ActivityRecord, Direction};
use crate::model::{QueueId, UserId};
use std::collections::BTreeSet;

/// Records on a page when the caller names no limit.
pub const DEFAULT_LIMIT: usize = 50;
/// The most records on one page.
pub const MAX_LIMIT: usize = 500;
/// The most records one page examines: a page that runs out of it ends
/// early, with a cursor to go on from (a page may then hold fewer than
/// `limit` records, even none, while more follow).
pub const SCAN_BUDGET: usize = 5_000;
/// The longest cursor text accepted.
const MAX_CURSOR_CHARS: usize = 1_024;

/// How an activity ended, without its details (the `kind` of
/// [`ActivityOutcome`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OutcomeKind {
    /// `answered`.
    Answered,
    /// `abandoned`.
    Abandoned,
    /// `refused`.
    Refused,
    /// `lost`.
    Lost,
    /// `feature_code`.
    FeatureCode,
    /// `exited`.
    Exited,
}

impl OutcomeKind {
    /// Every kind, with its name in the API.
    pub const ALL: [(OutcomeKind, &'static str); 6] = [
        (OutcomeKind::Answered, "answered"),
        (OutcomeKind::Abandoned, "abandoned"),
        (OutcomeKind::Refused, "refused"),
        (OutcomeKind::Lost, "lost"),
        (OutcomeKind::FeatureCode, "feature_code"),
        (OutcomeKind::Exited, "exited"),
    ];

    /// The kind of `outcome`.
    pub fn of(outcome: &ActivityOutcome) -> Self {
        match outcome {
            ActivityOutcome::Answered => OutcomeKind::Answered,
            ActivityOutcome::Abandoned => OutcomeKind::Abandoned,
            ActivityOutcome::Refused { .. } => OutcomeKind::Refused,
            ActivityOutcome::Lost { .. } => OutcomeKind::Lost,
            ActivityOutcome::FeatureCode { .. } => OutcomeKind::FeatureCode,
            ActivityOutcome::Exited { .. } => OutcomeKind::Exited,
        }
    }

    /// The kind named `name` in the API.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(kind, _)| *kind)
    }
}

/// Parses a direction by its name in the API (`inbound`, `outbound`,
/// `internal`).
pub fn parse_direction(name: &str) -> Option<Direction> {
    match name {
        "inbound" => Some(Direction::Inbound),
        "outbound" => Some(Direction::Outbound),
        "internal" => Some(Direction::Internal),
        _ => None,
    }
}

/// Which records a caller may see (U1, U4). A record is visible when it
/// is the caller's own (`own` is its agent), or when it passes both
/// restrictions: its queue is in `queues` (when set), and it has no agent
/// or its agent is in `agents` (when set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Visibility {
    /// Queues whose records it sees; `None`: every record, queued or not.
    pub queues: Option<BTreeSet<QueueId>>,
    /// Agents whose records it sees (records without an agent pass);
    /// `None`: every agent.
    pub agents: Option<BTreeSet<UserId>>,
    /// The caller, whose own records it always sees.
    pub own: Option<UserId>,
}

impl Visibility {
    /// Every record of the tenant.
    pub fn all() -> Self {
        Visibility::default()
    }

    /// Only the records `user` took as the agent.
    pub fn own_only(user: UserId) -> Self {
        Visibility {
            queues: Some(BTreeSet::new()),
            agents: None,
            own: Some(user),
        }
    }

    /// Whether `record` is visible.
    pub fn allows(&self, record: &ActivityRecord) -> bool {
        if self.own.is_some() && record.agent == self.own {
            return true;
        }
        let queue_ok = match &self.queues {
            None => true,
            Some(queues) => record.queue.is_some_and(|q| queues.contains(&q)),
        };
        let agent_ok = match &self.agents {
            None => true,
            Some(agents) => record.agent.is_none_or(|a| agents.contains(&a)),
        };
        queue_ok && agent_ok
    }
}

/// Where a page ends: the key `(time, id)` of the last record it examined.
/// The next page starts strictly after it (older).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The record's time (its key's), ms.
    pub time_ms: u64,
    /// The record's id.
    pub id: String,
}

impl Cursor {
    /// The cursor's text: 16 hex digits of the time, then the id's bytes in
    /// hex (opaque to callers, safe in a URL).
    pub fn encode(&self) -> String {
        let mut text = format!("{:016x}", self.time_ms);
        text.push_str(&hex::encode(self.id.as_bytes()));
        text
    }

    /// Reads a cursor's text (`None` when it is not one).
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() > MAX_CURSOR_CHARS || text.len() < 16 || !text.is_ascii() {
            return None;
        }
        let (time, id) = text.split_at(16);
        let time_ms = u64::from_str_radix(time, 16).ok()?;
        let bytes = hex::decode(id).ok()?;
        let id = String::from_utf8(bytes).ok()?;
        if id.is_empty() {
            return None;
        }
        Some(Cursor { time_ms, id })
    }
}

/// A read of activity records: `from_ms <= started_at_ms < to_ms`, the
/// filters, what the caller may see, the page size and where to go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityQuery {
    /// Earliest start, inclusive.
    pub from_ms: u64,
    /// Latest start, exclusive.
    pub to_ms: u64,
    /// Only this queue's records.
    pub queue: Option<QueueId>,
    /// Only the records this agent took.
    pub agent: Option<UserId>,
    /// Only this direction.
    pub direction: Option<Direction>,
    /// Only this outcome.
    pub outcome: Option<OutcomeKind>,
    /// What the caller may see.
    pub visibility: Visibility,
    /// The most records on the page, 1..=[`MAX_LIMIT`].
    pub limit: usize,
    /// Where the previous page ended.
    pub cursor: Option<Cursor>,
}

impl Default for ActivityQuery {
    fn default() -> Self {
        ActivityQuery {
            from_ms: 0,
            to_ms: u64::MAX,
            queue: None,
            agent: None,
            direction: None,
            outcome: None,
            visibility: Visibility::all(),
            limit: DEFAULT_LIMIT,
            cursor: None,
        }
    }
}

impl ActivityQuery {
    /// Whether `record` belongs on the page (the time range is the
    /// store's: its keys hold the time).
    pub fn matches(&self, record: &ActivityRecord) -> bool {
        self.queue.is_none_or(|q| record.queue == Some(q))
            && self.agent.is_none_or(|a| record.agent == Some(a))
            && self.direction.is_none_or(|d| record.direction == d)
            && self
                .outcome
                .is_none_or(|o| OutcomeKind::of(&record.outcome) == o)
            && self.visibility.allows(record)
    }

    /// The exclusive upper end of the scan: `to_ms`, or the cursor when it
    /// lies below it (`(time, id)`; the id is `None` for a time bound).
    pub fn upper_bound(&self) -> (u64, Option<&str>) {
        match &self.cursor {
            Some(c) if c.time_ms < self.to_ms => (c.time_ms, Some(c.id.as_str())),
            _ => (self.to_ms, None),
        }
    }
}

/// One page of records, newest first, and where the next page starts
/// (`None`: there is nothing more).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActivityPage {
    /// The records.
    pub items: Vec<ActivityRecord>,
    /// Where to go on.
    pub next: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::activity::Direction;

    fn record(id: &str, queue: Option<u64>, agent: Option<u64>) -> ActivityRecord {
        ActivityRecord {
            disposition: None,
            interventions: Vec::new(),
            id: id.into(),
            direction: Direction::Inbound,
            queue: queue.map(QueueId),
            agent: agent.map(UserId),
            caller: "+420777000001".into(),
            called: "+420225000100".into(),
            started_at_ms: 1_000,
            connected_at_ms: None,
            ended_at_ms: 2_000,
            closed_at_ms: 2_000,
            waiting_ms: 1_000,
            interaction_ms: 0,
            processing_ms: 0,
            outcome: ActivityOutcome::Abandoned,
            segments: Vec::new(),
            node: 1,
        }
    }

    #[test]
    fn visibility_table() {
        let set = |v: &[u64]| Some(v.iter().copied().collect::<BTreeSet<u64>>());
        let queues = |v: &[u64]| set(v).map(|s| s.into_iter().map(QueueId).collect());
        let agents = |v: &[u64]| set(v).map(|s| s.into_iter().map(UserId).collect());
        // (visibility, record's queue, record's agent, visible)
        let cases = [
            (Visibility::all(), None, None, true),
            (Visibility::all(), Some(1), Some(7), true),
            (Visibility::own_only(UserId(7)), Some(1), Some(7), true),
            (Visibility::own_only(UserId(7)), Some(1), Some(8), false),
            (Visibility::own_only(UserId(7)), Some(1), None, false),
            (
                Visibility {
                    queues: queues(&[1]),
                    ..Visibility::all()
                },
                Some(1),
                None,
                true,
            ),
            (
                Visibility {
                    queues: queues(&[1]),
                    ..Visibility::all()
                },
                Some(2),
                Some(7),
                false,
            ),
            (
                Visibility {
                    queues: queues(&[1]),
                    ..Visibility::all()
                },
                None,
                None,
                false,
            ),
            (
                Visibility {
                    agents: agents(&[7]),
                    ..Visibility::all()
                },
                Some(2),
                None,
                true,
            ),
            (
                Visibility {
                    agents: agents(&[7]),
                    ..Visibility::all()
                },
                Some(2),
                Some(8),
                false,
            ),
            (
                Visibility {
                    queues: queues(&[1]),
                    agents: agents(&[7]),
                    own: Some(UserId(8)),
                },
                Some(2),
                Some(8),
                true,
            ),
        ];
        for (i, (visibility, queue, agent, visible)) in cases.into_iter().enumerate() {
            assert_eq!(
                visibility.allows(&record("a", queue, agent)),
                visible,
                "case {i}: {visibility:?} queue {queue:?} agent {agent:?}"
            );
        }
    }

    #[test]
    fn filters_narrow_and_combine() {
        let r = record("a", Some(1), Some(7));
        let q = |f: fn(&mut ActivityQuery)| {
            let mut query = ActivityQuery::default();
            f(&mut query);
            query.matches(&r)
        };
        assert!(q(|_| {}));
        assert!(q(|x| x.queue = Some(QueueId(1))));
        assert!(!q(|x| x.queue = Some(QueueId(2))));
        assert!(q(|x| x.agent = Some(UserId(7))));
        assert!(!q(|x| x.agent = Some(UserId(8))));
        assert!(q(|x| x.direction = Some(Direction::Inbound)));
        assert!(!q(|x| x.direction = Some(Direction::Outbound)));
        assert!(q(|x| x.outcome = Some(OutcomeKind::Abandoned)));
        assert!(!q(|x| x.outcome = Some(OutcomeKind::Answered)));
        assert!(!q(|x| {
            x.queue = Some(QueueId(1));
            x.visibility = Visibility::own_only(UserId(8));
        }));
    }

    #[test]
    fn cursors_round_trip_and_refuse_what_is_not_one() {
        for (time_ms, id) in [(0, "a"), (u64::MAX, "call-1-2-3"), (17, "ünï/&?")] {
            let c = Cursor {
                time_ms,
                id: id.into(),
            };
            let text = c.encode();
            assert!(text.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
            assert_eq!(Cursor::parse(&text), Some(c));
        }
        for bad in [
            "",
            "xyz",
            "000000000000000a",
            "000000000000000g61",
            "000000000000000a6",
            "000000000000000aff",
            &"0".repeat(2_000),
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn names_of_outcomes_and_directions() {
        for (kind, name) in OutcomeKind::ALL {
            assert_eq!(OutcomeKind::parse(name), Some(kind));
        }
        assert_eq!(OutcomeKind::parse("Answered"), None);
        assert_eq!(parse_direction("internal"), Some(Direction::Internal));
        assert_eq!(parse_direction("sideways"), None);
        // The names are those the records are served with.
        let served = serde_json::to_value(ActivityOutcome::FeatureCode { result: "x".into() })
            .expect("json");
        assert_eq!(served["kind"], "feature_code");
        assert_eq!(
            serde_json::to_value(Direction::Outbound).expect("json"),
            "outbound"
        );
    }

    #[test]
    fn the_upper_bound_is_the_cursor_below_to() {
        let mut q = ActivityQuery {
            to_ms: 100,
            ..ActivityQuery::default()
        };
        assert_eq!(q.upper_bound(), (100, None));
        q.cursor = Some(Cursor {
            time_ms: 50,
            id: "b".into(),
        });
        assert_eq!(q.upper_bound(), (50, Some("b")));
        q.cursor = Some(Cursor {
            time_ms: 100,
            id: "b".into(),
        });
        assert_eq!(q.upper_bound(), (100, None));
    }
}
