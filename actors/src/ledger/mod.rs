//! The replicated ledger: the directory, the licence ledger, agent sessions
//! and queue entries of every tenant, plus the cluster's operators, token
//! signing key and API tokens. It is the `ReplicatedState` that consensus
//! replicates; `apply` is deterministic and reads time only from the
//! `ApplyContext`.
//!
//! Invariants (checked by `check_invariants`, asserted after licence
//! commands): seats in use never exceed the pool of any kind (L6); devices
//! that count never exceed packages x 10 (L1); a queue entry is waiting in at
//! most one place and is assigned at most once (Q3); a line is bound to at
//! most one agent and an agent to at most one line (D4); every session,
//! seat and binding belongs to an existing user; every id names one object.
//!
//! Code map: `command` (commands and outcomes), `tenant` (one tenant's state
//! and the dispatch), `directory` (branches, skills, groups, pause types,
//! queues), `users`, `devices` (devices and numbers), `binding` (D4),
//! `licences` (L1-L6), `sessions` (A1, A4, A5), `entries` (Q3), `queries`.

mod audit;
mod binding;
mod calls;
mod change;
mod command;
mod device_table;
mod devices;
mod directory;
mod entries;
mod licences;
mod lockouts;
mod login_sessions;
mod password_resets;
mod queries;
mod resume;
mod sessions;
mod tenant;
mod users;

pub use audit::{AuditLog, AuditObject, AuditRecord, AUDIT_KEPT, PLATFORM};
pub use calls::{Activities, AgentVoice, CallCheckpoint, Voice, CLOSED_KEPT, OUTBOX_KEPT};
pub use change::Change;
pub use command::{Command, Outcome, Response, TokenOwner};
pub use entries::{EntryState, QueueEntry};
pub use licences::Licences;
pub use lockouts::{fold_login, Lockout};
pub use login_sessions::{LoginSession, MAX_PER_OWNER as MAX_LOGIN_SESSIONS_PER_OWNER};
pub use password_resets::PasswordReset;
pub use sessions::{agent_state, AfterActivity, AgentSession, AgentStatus};
pub use tenant::TenantState;

use crate::model::agent_status::SessionChange;
use crate::model::directory::Tenant;
use crate::model::feature_codes::FeatureCodes;
use crate::model::refusal::{ensure, Checked};
use crate::model::{ApiTokenId, OperatorId, Refusal, RefusalCode, TenantId};
use carillon_consensus::{ApplyContext, ReplicatedState, SnapshotError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A platform operator account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    /// Id.
    pub id: OperatorId,
    /// Login, unique among operators.
    pub login: String,
    /// argon2id PHC string.
    pub password_phc: String,
}

/// An API token for automation (stored as a hash of its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Id.
    pub id: ApiTokenId,
    /// Who it acts for.
    pub owner: TokenOwner,
    /// Display name.
    pub name: String,
    /// SHA-256 of the secret, hex.
    pub token_hash: String,
    /// When it was created.
    pub created_at_ms: u64,
    /// Revoked tokens authenticate nobody.
    pub revoked: bool,
}

/// The whole replicated state.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    next_id: u64,
    signing_key_hex: Option<String>,
    operators: BTreeMap<OperatorId, Operator>,
    api_tokens: BTreeMap<ApiTokenId, ApiToken>,
    tenants: BTreeMap<TenantId, TenantState>,
    #[serde(default)]
    placement: Placement,
    /// Locked logins, by case-folded login.
    #[serde(default)]
    lockouts: BTreeMap<String, Lockout>,
    /// Sessions opened by logging in, by id.
    #[serde(default)]
    login_sessions: BTreeMap<u64, LoginSession>,
    /// The platform's audit log (operators, the cluster).
    #[serde(default)]
    platform_audit: AuditLog,
    /// Password resets issued, by the hash of their secret.
    #[serde(default)]
    password_resets: BTreeMap<String, PasswordReset>,
    #[serde(skip)]
    changes: change::Pending,
}

/// Why a write through the cluster gave no outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The ledger refused it (the rule is in the refusal).
    Refused(Refusal),
    /// The cluster did not answer (the reason says what failed).
    Unavailable(String),
}

/// The live members actors are placed on, and the epoch that fences their
/// owners' commands (an owner acting on an older epoch is refused).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Grows by one with every change of `members`.
    pub epoch: u64,
    /// Raft members that answer (node ids).
    pub members: std::collections::BTreeSet<u64>,
}

impl Ledger {
    fn allocate_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn tenant_mut(&mut self, tenant: TenantId) -> Checked<&mut TenantState> {
        self.tenants
            .get_mut(&tenant)
            .ok_or_else(|| Refusal::not_found("tenant"))
    }

    /// Applies one command at `now_ms` (the proposer's time).
    pub fn execute(&mut self, command: Command, now_ms: u64) -> Response {
        let changes = change::changes_of(&command);
        let audit = self.audit_before(&command, now_ms);
        let password_set = match &command {
            Command::By { inner, .. } => inner.as_ref(),
            other => other,
        };
        let password_set = match password_set {
            Command::SetUserPassword { tenant, user, .. } => Some((*tenant, *user)),
            _ => None,
        };
        let outcome = self.dispatch(command, now_ms);
        if let Ok(done) = &outcome {
            self.changes.0.extend(changes);
            if let Some((tenant, user)) = password_set {
                self.password_changed(tenant, user);
            }
            if let Some(pending) = audit {
                self.audit_after(pending, done, now_ms);
            }
        }
        if cfg!(debug_assertions) {
            self.check_invariants();
        }
        outcome
    }

    fn dispatch(&mut self, command: Command, now_ms: u64) -> Response {
        use Command as C;
        match command {
            C::Bootstrap { signing_key_hex } => {
                ensure(
                    self.signing_key_hex.is_none(),
                    RefusalCode::AlreadyBootstrapped,
                    || "the cluster is already bootstrapped".into(),
                )?;
                ensure(
                    signing_key_hex.len() >= 64,
                    RefusalCode::CountInvalid,
                    || "a signing key has at least 32 bytes".into(),
                )?;
                self.signing_key_hex = Some(signing_key_hex);
                Ok(Outcome::Done)
            }
            C::CreateOperator {
                login,
                password_phc,
            } => {
                ensure(
                    !self.operators.values().any(|o| o.login == login),
                    RefusalCode::LoginNotUnique,
                    || format!("operator login {login:?} is taken"),
                )?;
                let id = OperatorId(self.allocate_id());
                self.operators.insert(
                    id,
                    Operator {
                        id,
                        login,
                        password_phc,
                    },
                );
                Ok(Outcome::Created { id: id.0 })
            }
            C::CreateTenant {
                spec,
                fingerprint_salt_hex,
            } => {
                spec.validate()?;
                ensure(
                    !self
                        .tenants
                        .values()
                        .any(|t| t.tenant.sip_domain == spec.sip_domain),
                    RefusalCode::SipDomainNotUnique,
                    || format!("SIP domain {:?} belongs to another tenant", spec.sip_domain),
                )?;
                let id = TenantId(self.allocate_id());
                let tenant = Tenant {
                    id,
                    name: spec.name,
                    sip_domain: spec.sip_domain,
                    fingerprint_salt_hex,
                    feature_codes: FeatureCodes::default(),
                    audit_retention_days: crate::model::directory::DEFAULT_AUDIT_RETENTION_DAYS,
                };
                self.tenants.insert(id, TenantState::new(tenant));
                Ok(Outcome::Created { id: id.0 })
            }
            C::SetAuditRetention { tenant, days } => {
                ensure(
                    (1..=crate::model::directory::MAX_AUDIT_RETENTION_DAYS).contains(&days),
                    RefusalCode::CountInvalid,
                    || {
                        format!(
                            "audit records are kept 1 to {} days",
                            crate::model::directory::MAX_AUDIT_RETENTION_DAYS
                        )
                    },
                )?;
                self.tenant_mut(tenant)?.tenant.audit_retention_days = days;
                Ok(Outcome::Done)
            }
            C::RecordAudit { tenant, .. } => {
                if let Some(tenant) = tenant {
                    self.tenant_mut(tenant)?;
                }
                Ok(Outcome::Done)
            }
            C::RenameTenant { tenant, name } => {
                ensure(
                    !name.trim().is_empty() && name.len() <= 200,
                    RefusalCode::NameRequired,
                    || "a name has 1 to 200 characters".into(),
                )?;
                self.tenant_mut(tenant)?.tenant.name = name;
                Ok(Outcome::Done)
            }
            C::SetFeatureCodes { tenant, codes } => {
                codes.validate()?;
                self.tenant_mut(tenant)?.tenant.feature_codes = codes;
                Ok(Outcome::Done)
            }
            C::AddNumber { tenant, e164 } => {
                ensure(
                    crate::model::directory::valid_e164(&e164),
                    RefusalCode::PhoneNumberInvalid,
                    || format!("{e164:?} is not an E.164 number (+ and 6 to 15 digits)"),
                )?;
                ensure(
                    !self
                        .tenants
                        .values()
                        .any(|t| t.numbers.values().any(|n| n.e164 == e164)),
                    RefusalCode::NumberNotUnique,
                    || format!("{e164} is already owned by a tenant"),
                )?;
                // Look the tenant up before taking an id: a refusal changes nothing.
                self.tenant_mut(tenant)?;
                let id = self.allocate_id();
                self.tenant_mut(tenant)?.add_number(id, e164)
            }
            C::CreateApiToken {
                owner,
                name,
                token_hash,
            } => {
                ensure(
                    !name.trim().is_empty() && name.len() <= 100,
                    RefusalCode::TokenNameInvalid,
                    || "a token name has 1 to 100 characters".into(),
                )?;
                crate::model::text::LINE.check("name", &name)?;
                match owner {
                    TokenOwner::Operator { operator } => ensure(
                        self.operators.contains_key(&operator),
                        RefusalCode::NotFound,
                        || "no such operator".into(),
                    )?,
                    TokenOwner::User { tenant, user } => {
                        self.tenant_mut(tenant)?.user(user)?;
                    }
                }
                let id = ApiTokenId(self.allocate_id());
                self.api_tokens.insert(
                    id,
                    ApiToken {
                        id,
                        owner,
                        name,
                        token_hash,
                        created_at_ms: now_ms,
                        revoked: false,
                    },
                );
                Ok(Outcome::Created { id: id.0 })
            }
            C::SetPlacement { epoch, members } => {
                ensure(
                    epoch == self.placement.epoch + 1,
                    RefusalCode::PlacementStale,
                    || {
                        format!(
                            "placement epoch {epoch} does not follow the current {}",
                            self.placement.epoch
                        )
                    },
                )?;
                ensure(!members.is_empty(), RefusalCode::CountInvalid, || {
                    "a placement has at least one member".into()
                })?;
                self.placement = Placement { epoch, members };
                Ok(Outcome::Done)
            }
            C::OfferCall { epoch, .. } | C::FinishWrapUp { epoch, .. }
                if epoch != self.placement.epoch =>
            {
                Err(Refusal::new(
                    RefusalCode::PlacementStale,
                    format!(
                        "the actor acted on placement epoch {epoch}, the current one is {}",
                        self.placement.epoch
                    ),
                ))
            }
            C::By { by, inner, .. } => {
                let noted = inner.session_action();
                let intervention = inner.entry_action();
                let outcome = self.dispatch(*inner, now_ms)?;
                if let Some((tenant, entry, what)) = intervention {
                    let by = by.clone();
                    self.tenant_mut(tenant)?.note_intervention(
                        &entry,
                        crate::model::activity::Intervention {
                            at_ms: now_ms,
                            by,
                            what,
                        },
                    );
                }
                if let Some((tenant, user, what)) = noted {
                    let deferred = matches!(outcome, Outcome::Session { deferred: true });
                    let change = SessionChange {
                        at_ms: now_ms,
                        by,
                        what: what.deferred(deferred),
                    };
                    self.tenant_mut(tenant)?.note_change(user, change);
                }
                Ok(outcome)
            }
            C::LockLogin {
                login,
                until_ms,
                failures,
                last_source,
            } => {
                let login = fold_login(&login);
                ensure(self.login_exists(&login), RefusalCode::NotFound, || {
                    "no account has this login (only accounts are locked)".into()
                })?;
                ensure(until_ms > now_ms, RefusalCode::CountInvalid, || {
                    "a lockout ends in the future".into()
                })?;
                self.lockouts.retain(|_, l| l.until_ms > now_ms);
                self.lockouts.insert(
                    login.clone(),
                    Lockout {
                        login,
                        locked_at_ms: now_ms,
                        until_ms,
                        failures,
                        last_source,
                    },
                );
                Ok(Outcome::Done)
            }
            C::UnlockLogin { login } => {
                let removed = self.lockouts.remove(&fold_login(&login));
                ensure(
                    removed.is_some_and(|l| l.until_ms > now_ms),
                    RefusalCode::NotFound,
                    || "this login is not locked".into(),
                )?;
                Ok(Outcome::Done)
            }
            C::OpenLoginSession {
                owner,
                expires_at_ms,
                source,
                user_agent,
            } => {
                let id =
                    self.open_login_session(owner, expires_at_ms, source, user_agent, now_ms)?;
                Ok(Outcome::Created { id })
            }
            C::IssuePasswordReset {
                tenant,
                user,
                token_hash,
                expires_at_ms,
            } => {
                self.issue_password_reset(tenant, user, token_hash, expires_at_ms, now_ms)?;
                Ok(Outcome::Done)
            }
            C::CompletePasswordReset {
                token_hash,
                password,
            } => {
                self.complete_password_reset(token_hash, password, now_ms)?;
                Ok(Outcome::Done)
            }
            C::CloseLoginSession { session } => {
                self.close_login_session(session)?;
                Ok(Outcome::Done)
            }
            C::RevokeApiToken { token } => {
                let token = self
                    .api_tokens
                    .get_mut(&token)
                    .ok_or_else(|| Refusal::not_found("API token"))?;
                token.revoked = true;
                Ok(Outcome::Done)
            }
            other => {
                let tenant = other.tenant().unwrap_or_else(|| {
                    unreachable!("every remaining command is tenant-scoped: {other:?}")
                });
                let id = self.next_id + 1;
                let state = self.tenant_mut(tenant)?;
                let (outcome, used_id) = state.apply(other, id, now_ms)?;
                if used_id {
                    self.next_id = id;
                }
                Ok(outcome)
            }
        }
    }

    /// Asserts every invariant of every tenant (STYLE: kept on in tests and
    /// simulation; cheap enough to run after each command in debug builds).
    pub fn check_invariants(&self) {
        for state in self.tenants.values() {
            state.check_invariants();
            assert!(
                state.max_id() <= self.next_id,
                "every id was allocated by the ledger's counter"
            );
        }
    }
}

impl Command {
    /// The tenant a tenant-scoped command acts in.
    pub fn tenant(&self) -> Option<TenantId> {
        use Command as C;
        match self {
            C::Bootstrap { .. }
            | C::CreateOperator { .. }
            | C::CreateTenant { .. }
            | C::SetPlacement { .. } => None,
            C::CreateApiToken { .. } | C::RevokeApiToken { .. } => None,
            C::LockLogin { .. } | C::UnlockLogin { .. } => None,
            C::OpenLoginSession { .. } | C::CloseLoginSession { .. } => None,
            C::RecordAudit { tenant, .. } => *tenant,
            C::IssuePasswordReset { .. } | C::CompletePasswordReset { .. } => None,
            C::SetAuditRetention { tenant, .. } => Some(*tenant),
            C::By { inner, .. } => inner.tenant(),
            C::RenameTenant { tenant, .. }
            | C::SetFeatureCodes { tenant, .. }
            | C::CreateBranch { tenant, .. }
            | C::UpdateBranch { tenant, .. }
            | C::DeleteBranch { tenant, .. }
            | C::CreateUser { tenant, .. }
            | C::UpdateUser { tenant, .. }
            | C::DeleteUser { tenant, .. }
            | C::SetUserSkills { tenant, .. }
            | C::SetUserPassword { tenant, .. }
            | C::SetUserPin { tenant, .. }
            | C::CreateDevice { tenant, .. }
            | C::UpdateDevice { tenant, .. }
            | C::DeleteDevice { tenant, .. }
            | C::AddNumber { tenant, .. }
            | C::DeleteNumber { tenant, .. }
            | C::AssignNumber { tenant, .. }
            | C::ReleaseNumber { tenant, .. }
            | C::CreateSkill { tenant, .. }
            | C::UpdateSkill { tenant, .. }
            | C::DeleteSkill { tenant, .. }
            | C::CreateGroup { tenant, .. }
            | C::UpdateGroup { tenant, .. }
            | C::DeleteGroup { tenant, .. }
            | C::CreatePauseType { tenant, .. }
            | C::UpdatePauseType { tenant, .. }
            | C::DeletePauseType { tenant, .. }
            | C::CreateQueue { tenant, .. }
            | C::UpdateQueue { tenant, .. }
            | C::DeleteQueue { tenant, .. }
            | C::BuyLicences { tenant, .. }
            | C::WithdrawLicences { tenant, .. }
            | C::AssignLicence { tenant, .. }
            | C::ReleaseLicence { tenant, .. }
            | C::HandOverLicences { tenant, .. }
            | C::SetLicenceRanks { tenant, .. }
            | C::BuyDevicePackages { tenant, .. }
            | C::WithdrawDevicePackages { tenant, .. }
            | C::Login { tenant, .. }
            | C::Logout { tenant, .. }
            | C::BindDevice { tenant, .. }
            | C::UnbindDevice { tenant, .. }
            | C::CheckIn { tenant, .. }
            | C::CheckOut { tenant, .. }
            | C::Pause { tenant, .. }
            | C::Unpause { tenant, .. }
            | C::SetReachable { tenant, .. }
            | C::BeginActivity { tenant, .. }
            | C::EndActivity { tenant, .. }
            | C::Enqueue { tenant, .. }
            | C::ChangePriority { tenant, .. }
            | C::MoveEntry { tenant, .. }
            | C::WithdrawEntry { tenant, .. }
            | C::AssignEntry { tenant, .. }
            | C::AbandonEntry { tenant, .. }
            | C::OfferCall { tenant, .. }
            | C::ReleaseOffer { tenant, .. }
            | C::ConnectCall { tenant, .. }
            | C::EndCall { tenant, .. }
            | C::FinishWrapUp { tenant, .. }
            | C::SetDisposition { tenant, .. }
            | C::EndWrapUp { tenant, .. }
            | C::CloseActivity { tenant, .. } => Some(*tenant),
        }
    }
}

impl ReplicatedState for Ledger {
    type Command = Command;
    type Response = Response;
    type Change = Change;

    fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes.0)
    }

    fn apply(&mut self, command: Command, context: &ApplyContext) -> Response {
        self.execute(command, context.proposed_at_ms)
    }

    fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        serde_json::to_vec(self).map_err(|e| SnapshotError(e.to_string()))
    }

    fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let ledger: Self =
            serde_json::from_slice(bytes).map_err(|e| SnapshotError(e.to_string()))?;
        ledger.check_invariants();
        Ok(ledger)
    }
}
