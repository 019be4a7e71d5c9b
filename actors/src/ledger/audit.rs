//! The audit trail: every administrative change (tenants, branches, users,
//! roles, passwords and PINs, devices, numbers, skills, groups, pause types,
//! queues, licences, API tokens, cluster membership), every login and
//! logout, every lockout and its lifting is an [`AuditRecord`]: who, from
//! where, when, what, and the object before and after as the API shows it.
//!
//! Secrets never enter a record: the before and after are the API's views
//! of the object (which show that a password, PIN or SIP secret is set,
//! never the secret or its hash), and the command's own fields are not
//! copied. Records are made while the ledger applies the command, so every
//! replica makes the same ones; each tenant (and the platform, for
//! operators and the cluster) has a log of at most [`AUDIT_KEPT`] records
//! that every node's history store drains (the same way as activity
//! records), and the history store keeps them for the tenant's
//! `audit_retention_days`.
//!
//! Failed login attempts are not audited one by one (a ledger write per
//! guess would let a spray write the log); the throttle counts them, and the
//! lockout they lead to is audited.

use super::{Command, Ledger, Outcome, TokenOwner};
use crate::model::agent_status::{Author, SystemRule};
use crate::model::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::VecDeque;

/// Records kept in a log for history stores that catch up.
pub const AUDIT_KEPT: usize = 2_000;

/// The id of the platform's log in a history store (operators, the cluster).
pub const PLATFORM: TenantId = TenantId(0);

/// What an audit record is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditObject {
    /// `tenant`, `branch`, `user`, `device`, `number`, `skill`, `group`,
    /// `pause_type`, `queue`, `licences`, `api_token`, `session`,
    /// `lockout`, `operator`, `member`.
    pub kind: String,
    /// Its id (a login for a lockout, the E.164 for a number).
    pub id: Option<String>,
}

/// One audited change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    /// Its sequence in its log, as text (unique per tenant).
    pub id: String,
    /// When, ms since the epoch (the proposer's clock).
    pub at_ms: u64,
    /// Who: a user, an operator, or a rule of the system.
    pub actor: Author,
    /// The address the request came from, when it came over the API.
    pub source: Option<String>,
    /// What: the command's name (`create_user`, `set_user_password`,
    /// `open_login_session`, `lock_login`, ...).
    pub action: String,
    /// The object changed.
    pub object: Option<AuditObject>,
    /// The object before, as the API shows it (absent for a creation).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub before: Option<Value>,
    /// The object after (absent for a deletion).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub after: Option<Value>,
}

/// One log of audit records: the last [`AUDIT_KEPT`], numbered from 1.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLog {
    next_seq: u64,
    kept: VecDeque<(u64, AuditRecord)>,
}

impl AuditLog {
    fn push(&mut self, mut record: AuditRecord) {
        self.next_seq += 1;
        record.id = self.next_seq.to_string();
        self.kept.push_back((self.next_seq, record));
        if self.kept.len() > AUDIT_KEPT {
            self.kept.pop_front();
        }
        assert!(
            self.kept.len() <= AUDIT_KEPT
                && self.kept.back().map(|(s, _)| *s) == Some(self.next_seq),
            "an audit log is bounded and ends with its last record"
        );
    }

    /// The sequence of the first record kept, and the records after `seq`.
    pub fn since(&self, seq: u64) -> (Option<u64>, impl Iterator<Item = &(u64, AuditRecord)>) {
        let first = self.kept.front().map(|(s, _)| *s);
        (first, self.kept.iter().filter(move |(s, _)| *s > seq))
    }

    /// The sequence of the last record made (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.next_seq
    }
}

/// What an object is, to find it before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tenant,
    Branch,
    User,
    Device,
    Number,
    Skill,
    Group,
    PauseType,
    Queue,
    Licences,
    ApiToken,
    Session,
    Lockout,
    Operator,
    Member,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Tenant => "tenant",
            Kind::Branch => "branch",
            Kind::User => "user",
            Kind::Device => "device",
            Kind::Number => "number",
            Kind::Skill => "skill",
            Kind::Group => "group",
            Kind::PauseType => "pause_type",
            Kind::Queue => "queue",
            Kind::Licences => "licences",
            Kind::ApiToken => "api_token",
            Kind::Session => "session",
            Kind::Lockout => "lockout",
            Kind::Operator => "operator",
            Kind::Member => "member",
        }
    }
}

/// An audited command, noted before it is applied.
#[derive(Debug)]
pub(super) struct Pending {
    log: Option<TenantId>,
    actor: Author,
    source: Option<String>,
    action: String,
    kind: Kind,
    id: Option<String>,
    before: Option<Value>,
    given_after: Option<Value>,
}

fn owner_log(owner: TokenOwner) -> Option<TenantId> {
    match owner {
        TokenOwner::User { tenant, .. } => Some(tenant),
        TokenOwner::Operator { .. } => None,
    }
}

fn owner_actor(owner: TokenOwner) -> Author {
    match owner {
        TokenOwner::User { user, .. } => Author::User { user },
        TokenOwner::Operator { operator } => Author::Operator { operator },
    }
}

/// The command's name: its serde tag.
fn action_of(command: &Command) -> String {
    serde_json::to_value(command)
        .ok()
        .and_then(|v| v.get("command").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default()
}

impl Ledger {
    /// What `command` is about, if it is audited: its log (`None`: the
    /// platform's), object kind and id (`None` until a creation names it).
    fn subject(&self, command: &Command) -> Option<(Option<TenantId>, Kind, Option<String>)> {
        use Command as C;
        let s = |id: u64| Some(id.to_string());
        Some(match command {
            C::CreateOperator { .. } => (None, Kind::Operator, None),
            C::CreateTenant { .. } => (None, Kind::Tenant, None),
            C::RenameTenant { tenant, .. }
            | C::SetFeatureCodes { tenant, .. }
            | C::SetAuditRetention { tenant, .. } => (Some(*tenant), Kind::Tenant, s(tenant.0)),
            C::CreateBranch { tenant, .. } => (Some(*tenant), Kind::Branch, None),
            C::UpdateBranch { tenant, branch, .. } | C::DeleteBranch { tenant, branch } => {
                (Some(*tenant), Kind::Branch, s(branch.0))
            }
            C::CreateUser { tenant, .. } => (Some(*tenant), Kind::User, None),
            C::UpdateUser { tenant, user, .. }
            | C::DeleteUser { tenant, user }
            | C::SetUserSkills { tenant, user, .. }
            | C::SetUserPassword { tenant, user, .. }
            | C::SetUserPin { tenant, user, .. } => (Some(*tenant), Kind::User, s(user.0)),
            C::CreateDevice { tenant, .. } => (Some(*tenant), Kind::Device, None),
            C::UpdateDevice { tenant, device, .. } | C::DeleteDevice { tenant, device } => {
                (Some(*tenant), Kind::Device, s(device.0))
            }
            C::AddNumber { tenant, e164 }
            | C::AssignNumber { tenant, e164, .. }
            | C::ReleaseNumber { tenant, e164 } => {
                (Some(*tenant), Kind::Number, Some(e164.clone()))
            }
            C::DeleteNumber { tenant, number } => (
                Some(*tenant),
                Kind::Number,
                self.tenant(*tenant)
                    .and_then(|t| t.numbers().find(|n| n.id == *number))
                    .map(|n| n.e164.clone()),
            ),
            C::CreateSkill { tenant, .. } => (Some(*tenant), Kind::Skill, None),
            C::UpdateSkill { tenant, skill, .. } | C::DeleteSkill { tenant, skill } => {
                (Some(*tenant), Kind::Skill, s(skill.0))
            }
            C::CreateGroup { tenant, .. } => (Some(*tenant), Kind::Group, None),
            C::UpdateGroup { tenant, group, .. } | C::DeleteGroup { tenant, group } => {
                (Some(*tenant), Kind::Group, s(group.0))
            }
            C::CreatePauseType { tenant, .. } => (Some(*tenant), Kind::PauseType, None),
            C::UpdatePauseType {
                tenant, pause_type, ..
            }
            | C::DeletePauseType { tenant, pause_type } => {
                (Some(*tenant), Kind::PauseType, s(pause_type.0))
            }
            C::CreateQueue { tenant, .. } => (Some(*tenant), Kind::Queue, None),
            C::UpdateQueue { tenant, queue, .. } | C::DeleteQueue { tenant, queue } => {
                (Some(*tenant), Kind::Queue, s(queue.0))
            }
            C::BuyLicences { tenant, .. }
            | C::WithdrawLicences { tenant, .. }
            | C::AssignLicence { tenant, .. }
            | C::ReleaseLicence { tenant, .. }
            | C::HandOverLicences { tenant, .. }
            | C::SetLicenceRanks { tenant, .. }
            | C::BuyDevicePackages { tenant, .. }
            | C::WithdrawDevicePackages { tenant, .. } => {
                (Some(*tenant), Kind::Licences, s(tenant.0))
            }
            C::CreateApiToken { owner, .. } => (owner_log(*owner), Kind::ApiToken, None),
            C::RevokeApiToken { token } => (
                self.api_tokens.get(token).and_then(|t| owner_log(t.owner)),
                Kind::ApiToken,
                s(token.0),
            ),
            C::OpenLoginSession { owner, .. } => (owner_log(*owner), Kind::Session, None),
            C::CloseLoginSession { session } => (
                self.login_sessions
                    .get(session)
                    .and_then(|s| owner_log(s.owner)),
                Kind::Session,
                s(*session),
            ),
            C::LockLogin { login, .. } | C::UnlockLogin { login } => {
                // Recorded in every log the login belongs to (`audit_after`).
                let folded = super::fold_login(login);
                let log = self.users_by_login(&folded).next().map(|(t, _)| t.id);
                (log, Kind::Lockout, Some(folded))
            }
            C::RecordAudit { tenant, object, .. } => (*tenant, Kind::Member, object.clone()),
            C::IssuePasswordReset { tenant, user, .. } => (Some(*tenant), Kind::User, s(user.0)),
            C::CompletePasswordReset { token_hash, .. } => {
                let (tenant, user) = self.reset_user(token_hash)?;
                (Some(tenant), Kind::User, s(user.0))
            }
            _ => return None,
        })
    }

    /// The object as the API shows it now (no secret, no hash).
    fn object_view(
        &self,
        log: Option<TenantId>,
        kind: Kind,
        id: Option<&str>,
        now_ms: u64,
    ) -> Option<Value> {
        let id = id?;
        let num = id.parse::<u64>().ok();
        let t = log.and_then(|t| self.tenant(t));
        let view = |v: Option<Value>| v.filter(|v| !v.is_null());
        match kind {
            Kind::Operator => num
                .and_then(|n| self.operators.get(&crate::model::OperatorId(n)))
                .map(|o| json!({"id": o.id, "login": o.login})),
            Kind::Tenant => {
                let state = self.tenant(TenantId(num?))?;
                let info = state.info();
                Some(json!({
                    "view": to_json(&state.view()),
                    "feature_codes": to_json(&info.feature_codes),
                    "audit_retention_days": info.audit_retention_days,
                }))
            }
            Kind::Branch => view(t?.branches().find(|b| Some(b.id.0) == num).map(to_json)),
            Kind::User => t?
                .user_view(crate::model::UserId(num?))
                .map(|u| to_json(&u)),
            Kind::Device => t?
                .device_views()
                .find(|d| Some(d.id.0) == num)
                .map(|d| to_json(&d)),
            Kind::Number => t?.numbers().find(|n| n.e164 == id).map(to_json),
            Kind::Skill => t?.skills().find(|n| Some(n.id) == num).map(to_json),
            Kind::Group => t?.groups().find(|n| Some(n.id) == num).map(to_json),
            Kind::PauseType => t?.pause_types().find(|n| Some(n.id) == num).map(to_json),
            Kind::Queue => t?.queues().find(|q| Some(q.id.0) == num).map(to_json),
            Kind::Licences => t.map(|t| to_json(&t.licence_report(now_ms))),
            Kind::ApiToken => self.api_tokens.get(&crate::model::ApiTokenId(num?)).map(
                |a| json!({"id": a.id, "owner": a.owner, "name": a.name, "revoked": a.revoked}),
            ),
            Kind::Session => self.login_sessions.get(&num?).map(to_json),
            Kind::Lockout => self
                .lockouts
                .get(id)
                .filter(|l| l.until_ms > now_ms)
                .map(to_json),
            Kind::Member => None,
        }
    }

    /// Notes `command` before it is applied, if it is audited.
    pub(super) fn audit_before(&self, command: &Command, now_ms: u64) -> Option<Pending> {
        let (actor, source, inner) = match command {
            Command::By { by, from, inner } => (Some(by.clone()), from.clone(), inner.as_ref()),
            other => (None, None, other),
        };
        let (log, kind, id) = self.subject(inner)?;
        let actor = match (actor, inner) {
            (Some(by), _) => by,
            (None, Command::OpenLoginSession { owner, .. }) => owner_actor(*owner),
            (None, Command::CreateOperator { .. }) => Author::System {
                rule: SystemRule::Bootstrap,
            },
            (None, Command::CompletePasswordReset { token_hash, .. }) => {
                match self.reset_user(token_hash) {
                    Some((_, user)) => Author::User { user },
                    None => Author::System {
                        rule: SystemRule::FrontDoor,
                    },
                }
            }
            (None, _) => Author::System {
                rule: SystemRule::FrontDoor,
            },
        };
        let source = match inner {
            Command::OpenLoginSession { source, .. } => Some(source.clone()),
            Command::LockLogin { last_source, .. } => Some(last_source.clone()),
            _ => source,
        };
        let given_after = match inner {
            Command::RecordAudit { after, .. } => after.clone(),
            _ => None,
        };
        let before = match inner {
            Command::RecordAudit { before, .. } => before.clone(),
            _ => self.object_view(log, kind, id.as_deref(), now_ms),
        };
        Some(Pending {
            log,
            actor,
            source,
            action: action_of(inner),
            kind,
            id,
            before,
            given_after,
        })
    }

    /// Records what an audited command did, once it was applied.
    pub(super) fn audit_after(&mut self, pending: Pending, outcome: &Outcome, now_ms: u64) {
        let Pending {
            log,
            actor,
            source,
            action,
            kind,
            mut id,
            before,
            given_after,
        } = pending;
        if id.is_none() {
            if let Outcome::Created { id: created } = outcome {
                id = Some(created.to_string());
            }
        }
        // A new tenant's records go to its own log.
        let log = match (kind, log, id.as_deref()) {
            (Kind::Tenant, None, Some(t)) => t.parse().ok().map(TenantId),
            _ => log,
        };
        let after = match kind {
            Kind::Member => given_after,
            _ => self.object_view(log, kind, id.as_deref(), now_ms),
        };
        let record = AuditRecord {
            id: String::new(),
            at_ms: now_ms,
            actor,
            source,
            action,
            object: Some(AuditObject {
                kind: kind.name().to_string(),
                id,
            }),
            before,
            after,
        };
        // A login's lockout concerns every tenant with a user of that login
        // (and the platform for an operator's): each sees it in its own log.
        let mut logs: Vec<Option<TenantId>> = match (&record.object, kind) {
            (
                Some(AuditObject {
                    id: Some(login), ..
                }),
                Kind::Lockout,
            ) => {
                let mut logs: Vec<Option<TenantId>> = self
                    .users_by_login(login)
                    .map(|(t, _)| Some(t.id))
                    .collect();
                if self
                    .operators
                    .values()
                    .any(|o| super::fold_login(&o.login) == *login)
                {
                    logs.push(None);
                }
                logs
            }
            _ => vec![log],
        };
        if logs.is_empty() {
            logs.push(log);
        }
        for log in logs {
            let target = match log.and_then(|t| self.tenants.get_mut(&t)) {
                Some(state) => &mut state.audit,
                None => &mut self.platform_audit,
            };
            target.push(record.clone());
            self.changes.0.push(super::Change::Audited {
                tenant: log
                    .filter(|t| self.tenants.contains_key(t))
                    .unwrap_or(PLATFORM),
            });
        }
    }

    /// The platform's audit log (operators, the cluster).
    pub fn platform_audit(&self) -> &AuditLog {
        &self.platform_audit
    }

    /// The audit log of `tenant`, or the platform's for [`PLATFORM`].
    pub fn audit_log(&self, tenant: TenantId) -> Option<&AuditLog> {
        if tenant == PLATFORM {
            return Some(&self.platform_audit);
        }
        self.tenant(tenant).map(|t| &t.audit)
    }
}

/// A view as JSON.
fn to_json<T: Serialize>(view: &T) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}
