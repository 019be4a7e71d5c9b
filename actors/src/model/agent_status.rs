//! Who changed an agent's state, and what the agent is doing (A4, A8).
//!
//! Every session command that reaches the ledger through the API, a phone
//! or a rule of the system is wrapped in `Command::By` with its [`Author`];
//! the ledger keeps each agent's last [`SessionChange`] (also after logout)
//! and the agent machines name it in their transitions.

use super::{DeviceId, OperatorId, PauseTypeId, QueueId, UserId};
use serde::{Deserialize, Serialize};

/// Who caused a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Author {
    /// A user of the tenant through the panel or the API (the agent itself,
    /// a supervisor, an administrator).
    User {
        /// The user.
        user: UserId,
    },
    /// A platform operator through the API.
    Operator {
        /// The operator.
        operator: OperatorId,
    },
    /// The agent on its phone, by a feature code (A3).
    Phone {
        /// The phone.
        device: DeviceId,
    },
    /// A rule of the system.
    System {
        /// The rule.
        rule: SystemRule,
    },
}

/// The rules of the system that change agents' states on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SystemRule {
    /// A2: the tenant's daily logout time.
    DailyLogout,
    /// A2: every phone of an agent logged in from a phone stopped answering.
    PhoneTimeout,
    /// Q4: too many missed offers in a row paused the agent.
    MissedOffers,
    /// A8: the agent's devices stopped or started answering.
    Reachability,
    /// The call flow: an offer, an answer, a hang-up, the end of wrap-up.
    CallFlow,
    /// The front door: a login locked after too many failures.
    FrontDoor,
    /// The node's configuration: the operator account made at bootstrap.
    Bootstrap,
}

/// What a session change did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum SessionAction {
    /// A terminal logged in.
    LoggedIn {
        /// The terminal.
        terminal: String,
    },
    /// A terminal logged out (`deferred`: at the end of the activity, A5).
    LoggedOut {
        /// The terminal.
        terminal: String,
        /// Takes effect when the current activity ends.
        deferred: bool,
    },
    /// Checked in to a queue.
    CheckedIn {
        /// The queue.
        queue: QueueId,
    },
    /// Checked out of a queue.
    CheckedOut {
        /// The queue.
        queue: QueueId,
    },
    /// Paused (`deferred`: after the current activity, A5).
    Paused {
        /// The pause type.
        pause_type: PauseTypeId,
        /// Takes effect when the current activity ends.
        deferred: bool,
    },
    /// The pause (or a pending one) ended.
    Unpaused,
    /// No device of the agent answers (A8): not offered calls.
    Disconnected,
    /// A device of the agent answers again (A8).
    Reconnected,
}

impl SessionAction {
    /// A short description for logs and events.
    pub fn describe(&self) -> String {
        match self {
            SessionAction::LoggedIn { terminal } => format!("logged in from {terminal}"),
            SessionAction::LoggedOut { terminal, deferred } => format!(
                "logged out of {terminal}{}",
                if *deferred { " after the activity" } else { "" }
            ),
            SessionAction::CheckedIn { queue } => format!("checked in to queue {}", queue.0),
            SessionAction::CheckedOut { queue } => format!("checked out of queue {}", queue.0),
            SessionAction::Paused {
                pause_type,
                deferred,
            } => format!(
                "paused with type {}{}",
                pause_type.0,
                if *deferred { " after the activity" } else { "" }
            ),
            SessionAction::Unpaused => "unpaused".into(),
            SessionAction::Disconnected => "A8: no device answers".into(),
            SessionAction::Reconnected => "A8: a device answers again".into(),
        }
    }
}

impl Author {
    /// A short description for logs and events.
    pub fn describe(&self) -> String {
        match self {
            Author::User { user } => format!("user {}", user.0),
            Author::Operator { operator } => format!("operator {}", operator.0),
            Author::Phone { device } => format!("phone {}", device.0),
            Author::System { rule } => format!("the system ({rule:?})"),
        }
    }
}

/// The last change of an agent's session: when, by whom, what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionChange {
    /// When (the proposer's clock, ms since the Unix epoch).
    pub at_ms: u64,
    /// Who.
    pub by: Author,
    /// What.
    pub what: SessionAction,
}

/// The states of A4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Not logged in (and no static membership).
    LoggedOut,
    /// Ready.
    Idle,
    /// An offer rings.
    Offered,
    /// On a call.
    Talking,
    /// After-call work.
    WrapUp,
    /// Paused.
    Paused,
    /// Logged in, but no device or panel reachable (A8).
    Disconnected,
}
