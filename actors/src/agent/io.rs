//! The agent machine's inputs, outputs and what it reads of the ledger.

use std::collections::{BTreeMap, BTreeSet};

use crate::ledger::{AgentVoice, Command, Outcome, WriteError};
use crate::messages::{AgentMsg, EntryInfo, Envelope};
use crate::model::activity::OfferEnd;
use crate::model::agent_status::{Author, SessionChange};
use crate::model::{DeviceId, QueueId, SkillId};

/// What the agent machine reads of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AgentSnapshot {
    /// Logged in from at least one terminal.
    pub logged_in: bool,
    /// Paused (A5).
    pub paused: bool,
    /// Queues it is checked in to, and those it is a static member of.
    pub queues: BTreeSet<QueueId>,
    /// Queues it is a static member of (offered without logging in, A1).
    pub static_queues: BTreeSet<QueueId>,
    /// Voice state and routing figures.
    pub voice: AgentVoice,
    /// Skills and levels.
    pub skills: BTreeMap<SkillId, u8>,
    /// The ring plan: steps of (delay from the start of ringing, devices).
    pub ring_plan: Vec<(u32, Vec<DeviceId>)>,
    /// Ring timeout per queue (Q4), seconds.
    pub ring_timeout_s: BTreeMap<QueueId, u32>,
    /// Queue names (the display name of forks).
    pub queue_names: BTreeMap<QueueId, String>,
    /// The entry of the voice state, when the ledger still knows it.
    pub entry: Option<EntryInfo>,
    /// The placement epoch.
    pub epoch: u64,
    /// Whether the call of the voice state lives on a node that is no
    /// longer a member (its dialog is gone).
    pub call_lost: bool,
    /// Terminals logged in (`panel`, `phone-<device>`, ...).
    pub terminals: Vec<String>,
    /// The session's last change, with who caused it (A4).
    pub last_change: Option<SessionChange>,
    /// Whether the ledger records the agent as disconnected (A8).
    pub recorded_unreachable: bool,
}

/// A2: an agent logged in from a phone whose devices have all been
/// unreachable this long is logged out of the phone (the panel's own
/// terminals answer for themselves).
pub const PHONE_SESSION_TIMEOUT_MS: u64 = 300_000;

/// A8: a logged-in agent whose devices have all been unreachable this long
/// is recorded as disconnected in the ledger (a phone that has not yet
/// reported after a login is not a disconnection).
pub const DISCONNECTED_AFTER_MS: u64 = 2_000;

impl AgentSnapshot {
    pub(crate) fn devices(&self) -> BTreeSet<DeviceId> {
        self.ring_plan
            .iter()
            .flat_map(|(_, d)| d.iter().copied())
            .collect()
    }
}

/// Ledger operations the machine asks for; the answer comes back with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentOp {
    /// Reserve for an entry.
    Reserve(Box<EntryInfo>),
    /// Release an offer.
    Release {
        /// The entry.
        entry: String,
        /// Its queue.
        queue: QueueId,
        /// How it ended.
        end: OfferEnd,
    },
    /// Close after-call work.
    FinishWrapUp {
        /// The entry.
        entry: String,
    },
    /// Close a call lost with its node.
    CloseLost {
        /// The entry.
        entry: String,
    },
    /// Log a phone terminal out after its devices stopped answering (A2).
    TimeOut,
    /// Record whether any device answers (A8).
    Reachability {
        /// What was recorded.
        reachable: bool,
    },
}

/// Why an agent's state changed (A4: every transition names a reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentEvent {
    /// The agent's state is now `state`, for `reason`, caused by `by`.
    StateChanged {
        /// New state.
        state: AgentState,
        /// Why.
        reason: String,
        /// Who caused it.
        by: Author,
    },
}

pub use crate::model::agent_status::AgentState;

/// An input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentInput {
    /// The ledger's view of the agent (at start and after each change).
    Snapshot(Box<AgentSnapshot>),
    /// A message.
    Message(AgentMsg),
    /// The answer to a ledger operation.
    Ledger {
        /// The operation.
        op: AgentOp,
        /// The ledger's answer (`Err` also for an unreachable cluster).
        result: Result<Outcome, WriteError>,
    },
    /// The turn is over: decide between the offers that arrived in it.
    Decide,
}

/// An output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentOutput {
    /// Write to the ledger.
    Ledger {
        /// What it is for (comes back with the answer).
        op: AgentOp,
        /// The command.
        command: Box<Command>,
    },
    /// Send a message.
    Send(Envelope),
    /// Deliver `message` to this actor after `after_ms`.
    Timer {
        /// Delay.
        after_ms: u64,
        /// The message.
        message: AgentMsg,
    },
    /// Feed [`AgentInput::Decide`] after the messages already queued.
    DecideLater,
    /// Read the ledger and feed a snapshot.
    Refresh,
    /// Something to tell the world.
    Event(AgentEvent),
}
