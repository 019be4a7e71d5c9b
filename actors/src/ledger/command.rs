//! The ledger's commands (imperative) and outcomes.

use super::calls::CallCheckpoint;
use crate::model::activity::{ActivityRecord, OfferEnd};
use crate::model::agent_status::{Author, SessionAction};
use crate::model::credentials::{PasswordHash, SipSecret};
use crate::model::directory::{
    BranchSpec, DeviceSpec, NamedSpec, NumberTarget, PauseTypeSpec, TenantSpec,
};
use crate::model::feature_codes::FeatureCodes;
use crate::model::licence::{LicenceKind, LicenceRank};
use crate::model::queue::QueueSpec;
use crate::model::user::{SkillLevel, UserSpec};
use crate::model::{
    ApiTokenId, BranchId, DeviceId, GroupId, NumberId, OperatorId, PauseTypeId, QueueId, Refusal,
    SkillId, TenantId, UserId,
};
use serde::{Deserialize, Serialize};

/// Who an API token acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TokenOwner {
    /// A platform operator.
    Operator {
        /// The operator.
        operator: OperatorId,
    },
    /// A tenant user.
    User {
        /// The tenant.
        tenant: TenantId,
        /// The user.
        user: UserId,
    },
}

/// A request to change the ledger. Secrets arrive hashed; plaintext never
/// enters the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
#[allow(missing_docs)]
pub enum Command {
    /// Set the cluster's token signing key, once.
    Bootstrap {
        signing_key_hex: String,
    },
    CreateOperator {
        login: String,
        password_phc: String,
    },
    CreateTenant {
        spec: TenantSpec,
        fingerprint_salt_hex: String,
    },
    RenameTenant {
        tenant: TenantId,
        name: String,
    },
    /// Replace the tenant's phone feature codes (A3).
    SetFeatureCodes {
        tenant: TenantId,
        codes: FeatureCodes,
    },
    CreateBranch {
        tenant: TenantId,
        spec: BranchSpec,
    },
    UpdateBranch {
        tenant: TenantId,
        branch: BranchId,
        spec: BranchSpec,
    },
    DeleteBranch {
        tenant: TenantId,
        branch: BranchId,
    },
    CreateUser {
        tenant: TenantId,
        spec: UserSpec,
        password: Option<PasswordHash>,
        pin_fingerprint: Option<String>,
    },
    UpdateUser {
        tenant: TenantId,
        user: UserId,
        spec: UserSpec,
    },
    /// Deletes a user: its seats return to the pool (L4), its session and
    /// line binding end, its numbers and devices are released.
    DeleteUser {
        tenant: TenantId,
        user: UserId,
    },
    /// Replaces a user's skills and levels (A7).
    SetUserSkills {
        tenant: TenantId,
        user: UserId,
        skills: Vec<SkillLevel>,
    },
    SetUserPassword {
        tenant: TenantId,
        user: UserId,
        password: PasswordHash,
    },
    SetUserPin {
        tenant: TenantId,
        user: UserId,
        pin_fingerprint: String,
    },
    CreateDevice {
        tenant: TenantId,
        spec: DeviceSpec,
        sip_secret: Option<SipSecret>,
    },
    /// `sip_secret: None` keeps the current secret.
    UpdateDevice {
        tenant: TenantId,
        device: DeviceId,
        spec: DeviceSpec,
        sip_secret: Option<SipSecret>,
    },
    DeleteDevice {
        tenant: TenantId,
        device: DeviceId,
    },
    AddNumber {
        tenant: TenantId,
        e164: String,
    },
    DeleteNumber {
        tenant: TenantId,
        number: NumberId,
    },
    AssignNumber {
        tenant: TenantId,
        e164: String,
        target: NumberTarget,
    },
    ReleaseNumber {
        tenant: TenantId,
        e164: String,
    },
    CreateSkill {
        tenant: TenantId,
        spec: NamedSpec,
    },
    UpdateSkill {
        tenant: TenantId,
        skill: SkillId,
        spec: NamedSpec,
    },
    DeleteSkill {
        tenant: TenantId,
        skill: SkillId,
    },
    CreateGroup {
        tenant: TenantId,
        spec: NamedSpec,
    },
    UpdateGroup {
        tenant: TenantId,
        group: GroupId,
        spec: NamedSpec,
    },
    DeleteGroup {
        tenant: TenantId,
        group: GroupId,
    },
    CreatePauseType {
        tenant: TenantId,
        spec: PauseTypeSpec,
    },
    UpdatePauseType {
        tenant: TenantId,
        pause_type: PauseTypeId,
        spec: PauseTypeSpec,
    },
    DeletePauseType {
        tenant: TenantId,
        pause_type: PauseTypeId,
    },
    CreateQueue {
        tenant: TenantId,
        spec: QueueSpec,
    },
    UpdateQueue {
        tenant: TenantId,
        queue: QueueId,
        spec: QueueSpec,
    },
    DeleteQueue {
        tenant: TenantId,
        queue: QueueId,
    },
    BuyLicences {
        tenant: TenantId,
        kind: LicenceKind,
        count: u32,
    },
    WithdrawLicences {
        tenant: TenantId,
        kind: LicenceKind,
        count: u32,
    },
    AssignLicence {
        tenant: TenantId,
        user: UserId,
        kind: LicenceKind,
    },
    ReleaseLicence {
        tenant: TenantId,
        user: UserId,
        kind: LicenceKind,
    },
    HandOverLicences {
        tenant: TenantId,
        from: UserId,
        to: UserId,
    },
    SetLicenceRanks {
        tenant: TenantId,
        ranks: Vec<LicenceRank>,
    },
    BuyDevicePackages {
        tenant: TenantId,
        count: u32,
    },
    WithdrawDevicePackages {
        tenant: TenantId,
        count: u32,
    },
    CreateApiToken {
        owner: TokenOwner,
        name: String,
        token_hash: String,
    },
    RevokeApiToken {
        token: ApiTokenId,
    },
    /// The front door locks a login after too many failed attempts from
    /// any source (only a login some account has).
    LockLogin {
        login: String,
        until_ms: u64,
        failures: u32,
        last_source: String,
    },
    /// An administrator lifts a login's lockout.
    UnlockLogin {
        login: String,
    },
    /// A login opens a session (its bearer token names it).
    OpenLoginSession {
        owner: TokenOwner,
        expires_at_ms: u64,
        source: String,
        user_agent: String,
    },
    /// A password reset for a user who forgot the password (U5): the hash
    /// of the secret the user's e-mail carries.
    IssuePasswordReset {
        tenant: TenantId,
        user: UserId,
        token_hash: String,
        expires_at_ms: u64,
    },
    /// The reset's secret and the new password (hashed): used once.
    CompletePasswordReset {
        token_hash: String,
        password: PasswordHash,
    },
    /// Logout, or its owner ends it from elsewhere.
    CloseLoginSession {
        session: u64,
    },
    Login {
        tenant: TenantId,
        user: UserId,
        terminal: String,
    },
    Logout {
        tenant: TenantId,
        user: UserId,
        terminal: String,
    },
    /// Binds a logged-in agent to a line (D4); the previous line is freed.
    BindDevice {
        tenant: TenantId,
        user: UserId,
        device: DeviceId,
    },
    /// Frees the agent's line (D4); refused for a fixed binding.
    UnbindDevice {
        tenant: TenantId,
        user: UserId,
    },
    CheckIn {
        tenant: TenantId,
        user: UserId,
        queue: QueueId,
    },
    CheckOut {
        tenant: TenantId,
        user: UserId,
        queue: QueueId,
    },
    Pause {
        tenant: TenantId,
        user: UserId,
        pause_type: PauseTypeId,
    },
    Unpause {
        tenant: TenantId,
        user: UserId,
    },
    /// `command` on behalf of `by` (A4: who caused a change; the API, the
    /// phones' feature codes and the system's rules wrap what they send).
    By {
        by: Author,
        /// The address the request came from (the API's client).
        #[serde(default)]
        from: Option<String>,
        inner: Box<Command>,
    },
    /// A tenant's audit records are kept this many days (1..=3650).
    SetAuditRetention {
        tenant: TenantId,
        days: u32,
    },
    /// Audits a change made outside the ledger (cluster membership): its
    /// log (`None`: the platform's), object id, before and after.
    RecordAudit {
        tenant: Option<TenantId>,
        object: Option<String>,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    },
    /// The agent machine's view of its devices (A8): none answers
    /// (`reachable: false`, the agent is disconnected) or one does again.
    /// Changes nothing for an agent without a session.
    SetReachable {
        tenant: TenantId,
        user: UserId,
        reachable: bool,
    },
    BeginActivity {
        tenant: TenantId,
        user: UserId,
        activity: String,
    },
    EndActivity {
        tenant: TenantId,
        user: UserId,
        activity: String,
    },
    /// A caller enters a queue; a call routed through the node carries its
    /// checkpoint (where its dialog and media live).
    Enqueue {
        tenant: TenantId,
        queue: QueueId,
        entry: String,
        priority: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call: Option<Box<CallCheckpoint>>,
    },
    ChangePriority {
        tenant: TenantId,
        entry: String,
        priority: u32,
    },
    /// A user sends a waiting caller to a destination (S2): another queue
    /// (a move) or a prompt and a hang-up.
    WithdrawEntry {
        tenant: TenantId,
        entry: String,
        destination: crate::model::queue::Destination,
    },
    /// A waiting caller leaves its queue for another (Q5 overflow and
    /// exits): it waits there from now, behind those already waiting, at
    /// that queue's default priority; the other queue's limit applies.
    MoveEntry {
        tenant: TenantId,
        entry: String,
        queue: QueueId,
    },
    AssignEntry {
        tenant: TenantId,
        entry: String,
        user: UserId,
    },
    AbandonEntry {
        tenant: TenantId,
        entry: String,
    },
    /// The live members actors are placed on, from `epoch` on (the leader
    /// proposes it when a member's health changes).
    SetPlacement {
        epoch: u64,
        members: std::collections::BTreeSet<u64>,
    },
    /// Reserves an agent for a waiting entry (Q4 offer; A6: at most one
    /// voice offer per agent). Fenced: refused unless `epoch` is current.
    OfferCall {
        tenant: TenantId,
        entry: String,
        user: UserId,
        epoch: u64,
    },
    /// Ends an unanswered offer (Q4: missed offers, auto-pause, back-off).
    ReleaseOffer {
        tenant: TenantId,
        entry: String,
        user: UserId,
        end: OfferEnd,
    },
    /// The agent answered: the entry is assigned to it, other offers end.
    ConnectCall {
        tenant: TenantId,
        entry: String,
        user: UserId,
    },
    /// The call ended: after-call work starts; the record waits in it.
    EndCall {
        tenant: TenantId,
        entry: String,
        user: UserId,
        record: Box<ActivityRecord>,
    },
    /// After-call work is over: the activity closes, its record is written.
    /// Fenced like an offer.
    FinishWrapUp {
        tenant: TenantId,
        entry: String,
        user: UserId,
        epoch: u64,
    },
    /// The agent chooses the disposition of the call it is wrapping up (C4).
    SetDisposition {
        tenant: TenantId,
        user: UserId,
        code: String,
    },
    /// The agent ends its after-call work before its limit (A4), with a
    /// disposition if it names one.
    EndWrapUp {
        tenant: TenantId,
        user: UserId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disposition: Option<String>,
    },
    /// Closes an activity no agent holds (abandoned, refused, lost).
    CloseActivity {
        tenant: TenantId,
        record: Box<ActivityRecord>,
    },
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
    /// An object was created.
    Created {
        /// Its id.
        id: u64,
    },
    /// Done, nothing to report.
    Done,
    /// A licence seat was assigned (L5: `used` differs from the need when substituted).
    LicenceAssigned {
        /// The kind serving the seat.
        used: LicenceKind,
        /// Whether a higher-ranked kind stands in.
        substituted: bool,
    },
    /// Licences handed over (L4).
    HandedOver {
        /// Needs moved to the new user.
        moved: Vec<LicenceKind>,
        /// Needs the new user already had or does not need: back to the pool.
        returned: Vec<LicenceKind>,
    },
    /// A session change; `deferred` when it waits for the end of the activity (A5).
    Session {
        /// Whether it takes effect after the current activity.
        deferred: bool,
    },
    /// An offer ended; `auto_paused` when it made the agent pause (Q4).
    OfferReleased {
        /// Whether the agent was paused for missed offers.
        auto_paused: bool,
    },
    /// After-call work runs until `until_ms`.
    WrapUp {
        /// When it ends.
        until_ms: u64,
    },
    /// A caller entered (or moved to) a queue: its place there, and the
    /// queue's settings the call follows from now on.
    Enqueued {
        /// The queue.
        queue: QueueId,
        /// Arrival order in the tenant (Q3).
        sequence: u64,
        /// Priority (Q3).
        priority: u32,
        /// When it entered, ms since the epoch.
        enqueued_at_ms: u64,
        /// The queue's settings.
        spec: Box<crate::model::queue::QueueSpec>,
    },
    /// An activity closed; its record has this outbox sequence number.
    ActivityClosed {
        /// The record's sequence number in the tenant's outbox.
        seq: u64,
    },
}

/// The answer to a command.
pub type Response = Result<Outcome, Refusal>;

impl Command {
    /// The waiting entry a user's command changes, and what it does (S2);
    /// `None` for other commands.
    pub(crate) fn entry_action(&self) -> Option<(TenantId, String, String)> {
        use crate::model::queue::Destination;
        match self {
            Command::ChangePriority {
                tenant,
                entry,
                priority,
            } => Some((*tenant, entry.clone(), format!("priority {priority}"))),
            Command::WithdrawEntry {
                tenant,
                entry,
                destination,
            } => {
                let to = match destination {
                    Destination::Queue { queue } => format!("queue {}", queue.0),
                    Destination::Number { number } => number.clone(),
                    Destination::Hangup { prompt: Some(p) } => format!("a hang-up after {p}"),
                    Destination::Hangup { prompt: None } => "a hang-up".into(),
                };
                Some((*tenant, entry.clone(), format!("withdrawn to {to}")))
            }
            Command::AbandonEntry { tenant, entry } => {
                Some((*tenant, entry.clone(), "abandoned".into()))
            }
            _ => None,
        }
    }

    /// The agent and what a session command does to its session (`deferred`
    /// is filled in from the outcome); `None` for other commands.
    pub(crate) fn session_action(&self) -> Option<(TenantId, UserId, SessionAction)> {
        use Command as C;
        let (tenant, user, what) = match self {
            C::Login {
                tenant,
                user,
                terminal,
            } => (
                tenant,
                user,
                SessionAction::LoggedIn {
                    terminal: terminal.clone(),
                },
            ),
            C::Logout {
                tenant,
                user,
                terminal,
            } => (
                tenant,
                user,
                SessionAction::LoggedOut {
                    terminal: terminal.clone(),
                    deferred: false,
                },
            ),
            C::CheckIn {
                tenant,
                user,
                queue,
            } => (tenant, user, SessionAction::CheckedIn { queue: *queue }),
            C::CheckOut {
                tenant,
                user,
                queue,
            } => (tenant, user, SessionAction::CheckedOut { queue: *queue }),
            C::Pause {
                tenant,
                user,
                pause_type,
            } => (
                tenant,
                user,
                SessionAction::Paused {
                    pause_type: *pause_type,
                    deferred: false,
                },
            ),
            C::Unpause { tenant, user } => (tenant, user, SessionAction::Unpaused),
            _ => return None,
        };
        Some((*tenant, *user, what))
    }
}

impl SessionAction {
    /// Marks an action that waits for the end of the activity (A5).
    pub(crate) fn deferred(mut self, later: bool) -> Self {
        if let SessionAction::LoggedOut { deferred, .. } | SessionAction::Paused { deferred, .. } =
            &mut self
        {
            *deferred = later;
        }
        self
    }
}
