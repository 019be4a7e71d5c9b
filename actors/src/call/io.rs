//! What the call machine takes and gives: its setup, its inputs and
//! outputs, and the requests it makes of the media relay.

use crate::ledger::{Command, Outcome, WriteError};
use crate::messages::{CallMsg, EdgeRequest, Envelope, LegRef};
use crate::model::queue::QueueSpec;
use crate::model::{QueueId, TenantId, UserId};

/// The relay's name of the caller's leg.
pub const CALLER_LEG: &str = "caller";
/// The relay's name of the agents' leg.
pub const AGENT_LEG: &str = "agent";
/// Music on hold when a queue names none.
pub const DEFAULT_MUSIC: &str = "moh-default";
/// The relay's own synthesized melody: the last fallback when no recording
/// of music on hold can be played.
pub const BUILT_IN_MUSIC: &str = "hold-music";

/// What the call glue knows when it hands a call to a call actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSetup {
    /// Tenant.
    pub tenant: TenantId,
    /// The call's id (entry, activity and media session id).
    pub call: String,
    /// This node.
    pub node: u64,
    /// The caller's inbound leg on this node.
    pub leg: u64,
    /// The caller's SIP Call-ID.
    pub sip_call_id: String,
    /// The caller's number.
    pub caller: String,
    /// The number dialled.
    pub called: String,
    /// The caller's SDP offer.
    pub offer_sdp: String,
    /// The queue.
    pub queue: QueueId,
    /// Its settings.
    pub spec: QueueSpec,
    /// When the INVITE arrived, ms since the epoch.
    pub arrived_at_ms: u64,
    /// The relay chosen for the call (its control address, or `local`).
    pub relay: String,
}

/// What to ask of the media relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaRequest {
    /// Create the call's session.
    Create,
    /// Add or update a leg; with the remote SDP the answer is the relay's
    /// answer, without it the relay's offer.
    SetLeg {
        /// Leg name.
        leg: &'static str,
        /// The remote side's SDP.
        remote_sdp: Option<String>,
    },
    /// Loop a music-on-hold prompt to a leg.
    Music {
        /// Leg name.
        leg: &'static str,
        /// Prompt name.
        prompt: String,
    },
    /// Play a prompt once to a leg.
    Prompt {
        /// Leg name.
        leg: &'static str,
        /// Prompt name.
        prompt: String,
    },
    /// The session's recent events (DTMF, prompts finished).
    Events,
    /// Stop what plays to a leg.
    StopPlay {
        /// Leg name.
        leg: &'static str,
    },
    /// Remove the session.
    Remove,
}

/// A successful media answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaReply {
    /// Done.
    Done,
    /// The relay's SDP for a leg.
    Sdp(String),
    /// The session's recent events, oldest first.
    Events(Vec<MediaEvent>),
}

/// An event of a media session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaEvent {
    /// `dtmf`, `generated_finished`, `latched`, ...
    pub kind: String,
    /// The leg's name.
    pub leg: String,
    /// The digit, for `dtmf`.
    pub digit: Option<String>,
}

/// What a media request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaStep {
    /// Creating the session.
    Create,
    /// The caller's leg (the answer to the caller).
    CallerLeg,
    /// The agents' leg (the offer for agents).
    AgentOffer,
    /// The winning agent's answer.
    AgentAnswer,
    /// Music on hold.
    Music,
    /// Reading the session's events (the exit key while waiting, the end
    /// of the parting prompt while leaving).
    Events,
    /// Counting the prompts finished before the parting prompt.
    PromptBaseline,
    /// The parting prompt of an exit.
    Prompt,
    /// Counting the prompts finished before an announcement (Q6).
    AnnounceBaseline,
    /// Reading the events while an announcement plays.
    AnnounceEvents,
    /// One prompt of an announcement.
    AnnouncePrompt,
    /// Stopping the music.
    StopMusic,
    /// Removing the session.
    Remove,
}

/// What a ledger write was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOp {
    /// Entering the queue.
    Enqueue,
    /// Assigning the entry to the agent of a fork.
    Connect {
        /// The agent.
        agent: UserId,
        /// Its answered fork.
        leg: LegRef,
    },
    /// After-call work starts.
    EndCall {
        /// The agent.
        agent: UserId,
    },
    /// Closing an activity no agent holds.
    Close,
    /// Leaving the queue for another (Q5).
    Move {
        /// Why.
        reason: crate::model::queue::ExitReason,
    },
}

/// An input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallInput {
    /// Begin.
    Start,
    /// The relay answered.
    Media {
        /// What for.
        step: MediaStep,
        /// Its answer (`Err` with the reason).
        result: Result<MediaReply, String>,
    },
    /// The ledger answered.
    Ledger {
        /// What for.
        op: CallOp,
        /// Its answer.
        result: Result<Outcome, WriteError>,
    },
    /// A message.
    Message(CallMsg),
}

/// An output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutput {
    /// Ask the relay.
    Media {
        /// What for (comes back with the answer).
        step: MediaStep,
        /// The request.
        request: MediaRequest,
    },
    /// Write to the ledger.
    Ledger {
        /// What for.
        op: CallOp,
        /// The command.
        command: Box<Command>,
    },
    /// Ask a node's SIP edge.
    Edge {
        /// The node.
        node: u64,
        /// The request.
        request: EdgeRequest,
    },
    /// Send a message to another actor.
    Send(Envelope),
    /// Feed [`CallMsg::Timer`] with `timer` after `after_ms`.
    Timer {
        /// Delay.
        after_ms: u64,
        /// Which (given back).
        timer: u64,
    },
    /// The call is over; the actor stops.
    Stop,
}
