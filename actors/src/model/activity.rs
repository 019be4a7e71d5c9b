//! Activities (C1, C4): one record per interaction, from the customer's
//! first contact to the end of after-call work, with ordered segments and
//! the three times of C1.
//!
//! The times, for an inbound queue call: **waiting** from entering the queue
//! to the agent's connection (or to the caller leaving); **interaction**
//! from the connection to the hang-up; **processing** from the connection to
//! the end of after-call work (the time the agent has the activity open).

use super::ids::{QueueId, UserId};
use serde::{Deserialize, Serialize};

/// Which way the call went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// A customer called in.
    Inbound,
    /// An agent or user called out.
    Outbound,
    /// Between two users.
    Internal,
}

/// How an activity ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ActivityOutcome {
    /// An agent took it.
    Answered,
    /// The caller left before an agent took it.
    Abandoned,
    /// Refused before it reached a queue (the rule is in `reason`).
    Refused {
        /// The SIP status sent.
        status: u16,
        /// The rule.
        reason: String,
    },
    /// The node that held its dialog died; the record was written by a survivor.
    Lost {
        /// What happened.
        reason: String,
    },
    /// The caller left the queue by one of its exits (Q5) and was hung up
    /// there (a prompt and a hang-up, or a destination that refused it).
    Exited {
        /// The exit (`max_wait`, `overflow`, `queue_full`, `no_agents`,
        /// `emptied`, `exit_key`) and what followed.
        reason: String,
    },
    /// A feature code dialled from a phone (A3).
    FeatureCode {
        /// The code and what it did.
        result: String,
    },
}

/// How an offer to an agent ended (Q4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OfferEnd {
    /// The agent answered.
    Answered,
    /// Nobody answered within the ring timeout.
    NoAnswer,
    /// The agent refused (603 Decline, or a rejection in the panel).
    Rejected,
    /// The device was busy (486, 600).
    Busy,
    /// No device could be reached.
    Unreachable,
    /// The caller left, or another agent answered first (ring-all).
    Cancelled,
    /// The agent's device failed otherwise (a 4xx-6xx, a timeout).
    Failed,
}

impl OfferEnd {
    /// Whether the agent gets the back-off of Q4 (reject or busy).
    pub fn backs_off(self) -> bool {
        matches!(self, OfferEnd::Rejected | OfferEnd::Busy)
    }

    /// Whether it counts as a missed offer for auto-pause (Q4).
    pub fn is_missed(self) -> bool {
        matches!(self, OfferEnd::NoAnswer)
    }
}

/// One ordered part of an activity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Segment {
    /// Time in a queue.
    Queue {
        /// The queue.
        queue: QueueId,
        /// Entered, ms since the epoch.
        from_ms: u64,
        /// Left.
        to_ms: u64,
        /// Why it left (`answered`, `abandoned`, ...).
        reason: String,
    },
    /// An offer to an agent.
    Offer {
        /// The agent.
        agent: UserId,
        /// Offered.
        from_ms: u64,
        /// Ended.
        to_ms: u64,
        /// How it ended.
        result: OfferEnd,
    },
    /// The agent's leg: connected to the customer.
    Agent {
        /// The agent.
        agent: UserId,
        /// Connected.
        from_ms: u64,
        /// Hung up.
        to_ms: u64,
    },
    /// After-call work.
    WrapUp {
        /// The agent.
        agent: UserId,
        /// Started (the hang-up).
        from_ms: u64,
        /// Ended.
        to_ms: u64,
    },
}

/// A change a user made to a waiting call (S2): who, when, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Intervention {
    /// When, ms since the epoch.
    pub at_ms: u64,
    /// Who.
    pub by: super::agent_status::Author,
    /// What (`priority 80`, `withdrawn to queue 25`, ...).
    pub what: String,
}

/// One activity, written once (C4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivityRecord {
    /// The activity's id (the call's).
    pub id: String,
    /// Which way.
    pub direction: Direction,
    /// The queue, for queue calls.
    pub queue: Option<QueueId>,
    /// The agent who took it, if any.
    pub agent: Option<UserId>,
    /// The caller's number or address.
    pub caller: String,
    /// What was dialled.
    pub called: String,
    /// First contact, ms since the epoch.
    pub started_at_ms: u64,
    /// Connected to an agent.
    pub connected_at_ms: Option<u64>,
    /// The interaction ended (hang-up).
    pub ended_at_ms: u64,
    /// The activity closed (after-call work done).
    pub closed_at_ms: u64,
    /// C1 waiting time.
    pub waiting_ms: u64,
    /// C1 interaction time.
    pub interaction_ms: u64,
    /// C1 processing time.
    pub processing_ms: u64,
    /// How it ended.
    pub outcome: ActivityOutcome,
    /// Ordered segments.
    pub segments: Vec<Segment>,
    /// The node that held its dialog.
    pub node: u64,
    /// The disposition code the agent chose in after-call work (C4; one of
    /// the queue's `disposition_codes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<String>,
    /// What users changed while the call waited (S2), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interventions: Vec<Intervention>,
}

impl ActivityRecord {
    /// When the caller entered its first queue, if it did.
    pub fn first_queued_ms(&self) -> Option<u64> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Queue { from_ms, .. } => Some(*from_ms),
                _ => None,
            })
            .min()
    }

    /// Fills the three times of C1 from the record's instants (`entered_ms`:
    /// when it entered the queue, or started for calls that never queued).
    pub fn compute_times(&mut self, entered_ms: u64) {
        let connected = self.connected_at_ms;
        self.waiting_ms = connected
            .unwrap_or(self.ended_at_ms)
            .saturating_sub(entered_ms);
        self.interaction_ms = connected.map_or(0, |c| self.ended_at_ms.saturating_sub(c));
        self.processing_ms = connected.map_or(0, |c| self.closed_at_ms.saturating_sub(c));
    }

    /// Panics if the record's instants are out of order (a bug in who wrote it).
    pub fn check_invariants(&self) {
        assert!(
            self.started_at_ms <= self.ended_at_ms && self.ended_at_ms <= self.closed_at_ms,
            "an activity starts, ends, then closes: {self:?}"
        );
        if let Some(c) = self.connected_at_ms {
            assert!(
                self.started_at_ms <= c && c <= self.ended_at_ms,
                "a connection lies within the call"
            );
        }
        assert!(
            self.processing_ms >= self.interaction_ms,
            "processing includes the interaction"
        );
    }
}
