//! Authentication (bearer session tokens and API tokens) and authorisation
//! by role (U3, U4) with branch/group scoping (U1).
//!
//! Rules: an object of another tenant is 404, never 403 (its existence is
//! not revealed); an object outside a scoped caller's branches or groups is
//! 404 too; a role that may not use an area at all gets 403.

use crate::problem::Problem;
use crate::state::AppState;
use crate::token::{self, Principal};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use carillon_actors::history::Visibility;
use carillon_actors::ledger::{Ledger, TenantState, TokenOwner};
use carillon_actors::model::agent_status::Author;
use carillon_actors::model::credentials::hash_api_token;
use carillon_actors::model::user::{Role, Scope, User};
use carillon_actors::model::{OperatorId, TenantId, UserId};
use std::collections::BTreeSet;

/// Parts of the API a role may read or change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// The tenant record.
    Tenant,
    /// Branches.
    Branches,
    /// Users.
    Users,
    /// Devices.
    Devices,
    /// Numbers (DIDs).
    Numbers,
    /// Queues and their configuration.
    Queues,
    /// Skills, groups, pause types.
    Catalogue,
    /// The licence report and seat assignment.
    Licences,
    /// Buying and withdrawing licences and device packages, ranks.
    LicencePool,
    /// Agent sessions.
    Sessions,
    /// Waiting callers.
    Entries,
    /// Activity records (H1): who may read them at all; which records a
    /// reader sees is `routes::history`'s visibility.
    History,
    /// The audit trail and its retention (system administrators only).
    Audit,
}

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// GET.
    Read,
    /// Anything that changes state.
    Write,
}

/// Whether `role` may use `area` in `mode` (before scoping).
pub fn role_allows(role: Role, area: Area, mode: Mode) -> bool {
    use Area as A;
    match role {
        Role::SystemAdministrator => true,
        Role::TeamAdministrator => match area {
            A::Users | A::Devices | A::Queues | A::Licences | A::Sessions | A::Entries => true,
            A::Tenant | A::Branches | A::Numbers | A::Catalogue | A::History => mode == Mode::Read,
            A::LicencePool | A::Audit => false,
        },
        Role::Supervisor => match area {
            A::Sessions | A::Entries => true,
            A::Tenant
            | A::Branches
            | A::Users
            | A::Devices
            | A::Numbers
            | A::Queues
            | A::Catalogue
            | A::History => mode == Mode::Read,
            A::Licences | A::LicencePool | A::Audit => false,
        },
        // An agent reads its own activity records only (routes::history).
        Role::Agent => {
            matches!(area, A::Tenant | A::Queues | A::Catalogue | A::History) && mode == Mode::Read
        }
        Role::PbxUser | Role::UcUser => area == A::Tenant && mode == Mode::Read,
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who.
    pub principal: Principal,
    /// The user's roles (empty for operators).
    pub roles: BTreeSet<Role>,
    /// The managed part of the tenant (whole tenant when empty).
    pub scope: Scope,
    /// The login session of a session token (`None` for an API token).
    pub session: Option<u64>,
    /// The address the request came from (for the audit trail).
    pub source: Option<std::net::IpAddr>,
}

impl Caller {
    /// Whether the caller is a platform operator.
    pub fn is_operator(&self) -> bool {
        matches!(self.principal, Principal::Operator { .. })
    }

    /// The caller's user id, for tenant users.
    pub fn user_id(&self) -> Option<UserId> {
        match self.principal {
            Principal::User { id, .. } => Some(UserId(id)),
            Principal::Operator { .. } => None,
        }
    }

    /// The caller's tenant, for tenant users.
    pub fn tenant(&self) -> Option<TenantId> {
        match self.principal {
            Principal::User { tenant, .. } => Some(TenantId(tenant)),
            Principal::Operator { .. } => None,
        }
    }

    /// The caller as the author of a ledger command.
    pub fn author(&self) -> Author {
        match self.principal {
            Principal::Operator { id } => Author::Operator {
                operator: OperatorId(id),
            },
            Principal::User { id, .. } => Author::User { user: UserId(id) },
        }
    }

    /// A key that scopes idempotency keys to the caller.
    pub fn key_prefix(&self) -> String {
        match self.principal {
            Principal::Operator { id } => format!("op{id}"),
            Principal::User { tenant, id } => format!("t{tenant}u{id}"),
        }
    }

    /// Only operators.
    pub fn require_operator(&self) -> Result<(), Problem> {
        if self.is_operator() {
            Ok(())
        } else {
            Err(Problem::forbidden("only a platform operator may do this"))
        }
    }

    /// Operators and system administrators may see the cluster.
    pub fn require_cluster_read(&self) -> Result<(), Problem> {
        if self.is_operator() || self.roles.contains(&Role::SystemAdministrator) {
            Ok(())
        } else {
            Err(Problem::forbidden(
                "only operators and system administrators see the cluster",
            ))
        }
    }

    /// Checks that the caller may use `area` of `tenant` in `mode`: another
    /// tenant is 404, a role without the right is 403.
    pub fn require(&self, tenant: TenantId, area: Area, mode: Mode) -> Result<(), Problem> {
        if self.is_operator() {
            return Ok(());
        }
        if self.tenant() != Some(tenant) {
            return Err(Problem::not_found("tenant"));
        }
        if self.roles.iter().any(|r| role_allows(*r, area, mode)) {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "the caller's roles may not {} {area:?}",
                if mode == Mode::Read { "read" } else { "change" }
            )))
        }
    }

    /// Like `require`, but a caller may always read itself (and agents may
    /// act on their own session): `subject` is the user concerned.
    pub fn require_for_user(
        &self,
        tenant: TenantId,
        area: Area,
        mode: Mode,
        subject: UserId,
    ) -> Result<(), Problem> {
        let own = self.tenant() == Some(tenant) && self.user_id() == Some(subject);
        let self_allowed = match area {
            Area::Users => mode == Mode::Read,
            Area::Sessions => self.roles.contains(&Role::Agent),
            _ => false,
        };
        if own && self_allowed {
            return Ok(());
        }
        self.require(tenant, area, mode)
    }

    /// Whether the caller's scope covers `user` (U1). Operators and whole-
    /// tenant callers see everyone; a caller always sees itself.
    pub fn sees_user(&self, user: &User) -> bool {
        if self.is_operator() || self.scope.is_whole_tenant() || self.user_id() == Some(user.id) {
            return true;
        }
        let by_branch = user
            .spec
            .branch
            .is_some_and(|b| self.scope.branches.contains(&b));
        let by_group = user
            .spec
            .groups
            .iter()
            .any(|g| self.scope.groups.contains(g));
        by_branch || by_group
    }

    /// Which activity records of `tenant` the caller sees (H1, U1, U4), once
    /// it may read the history at all: operators and system administrators
    /// every record; team administrators and supervisors the records of
    /// the queues their data rights name (all queues when none), of agents
    /// in their scope and data rights (records no agent took pass), and
    /// their own; agents only the records they took.
    pub fn history_visibility(&self, tenant: &TenantState) -> Visibility {
        let Some(me) = self.user_id() else {
            return Visibility::all();
        };
        if self.roles.contains(&Role::SystemAdministrator) {
            return Visibility::all();
        }
        let manages =
            self.roles.contains(&Role::TeamAdministrator) || self.roles.contains(&Role::Supervisor);
        if !manages {
            return Visibility::own_only(me);
        }
        let rights = tenant
            .find_user(me)
            .map(|u| u.spec.data_rights.clone())
            .unwrap_or_default();
        let queues = (!rights.queues.is_empty()).then_some(rights.queues);
        let agents = (!self.scope.is_whole_tenant() || !rights.users.is_empty()).then(|| {
            tenant
                .users()
                .filter(|u| self.sees_user(u))
                .filter(|u| rights.users.is_empty() || rights.users.contains(&u.id))
                .map(|u| u.id)
                .collect()
        });
        Visibility {
            queues,
            agents,
            own: Some(me),
        }
    }

    /// Whether the caller may list all users of the area (true) or only
    /// itself (false: agents and PBX users reading their own record).
    pub fn may_list(&self, tenant: TenantId, area: Area) -> bool {
        self.require(tenant, area, Mode::Read).is_ok()
    }
}

/// Resolves a bearer token against the ledger at `now_ms`.
pub fn authenticate(ledger: &Ledger, bearer: &str, now_ms: u64) -> Result<Caller, Problem> {
    if let Some(secret) = bearer.strip_prefix("cat_") {
        let hash = hash_api_token(&format!("cat_{secret}"));
        let token = ledger
            .api_token_by_hash(&hash)
            .filter(|t| !t.revoked)
            .ok_or_else(|| Problem::unauthenticated("unknown or revoked API token"))?;
        return match token.owner {
            TokenOwner::Operator { operator } => operator_caller(ledger, operator),
            TokenOwner::User { tenant, user } => user_caller(ledger, tenant, user, None),
        };
    }
    let key = ledger
        .signing_key_hex()
        .and_then(hex_decode)
        .ok_or_else(|| Problem::unavailable("the cluster is not bootstrapped yet"))?;
    let claims = token::verify(bearer, &key, now_ms)
        .map_err(|e| Problem::unauthenticated(format!("invalid bearer token: {e}")))?;
    let owner = match claims.principal {
        Principal::Operator { id } => TokenOwner::Operator {
            operator: OperatorId(id),
        },
        Principal::User { tenant, id } => TokenOwner::User {
            tenant: TenantId(tenant),
            user: UserId(id),
        },
    };
    if ledger
        .login_session(claims.session, now_ms)
        .is_none_or(|s| s.owner != owner)
    {
        return Err(Problem::unauthenticated(
            "this session has ended (logged out)",
        ));
    }
    let caller = match claims.principal {
        Principal::Operator { id } => {
            let caller = operator_caller(ledger, OperatorId(id))?;
            let phc = ledger
                .operator(OperatorId(id))
                .map(|o| o.password_phc.as_str())
                .unwrap_or_default();
            if token::password_tag(phc) != claims.password_tag {
                return Err(Problem::unauthenticated(
                    "the password changed since this token was issued",
                ));
            }
            Ok(caller)
        }
        Principal::User { tenant, id } => user_caller(
            ledger,
            TenantId(tenant),
            UserId(id),
            Some(&claims.password_tag),
        ),
    }?;
    Ok(Caller {
        session: Some(claims.session),
        ..caller
    })
}

fn operator_caller(ledger: &Ledger, id: OperatorId) -> Result<Caller, Problem> {
    ledger
        .operator(id)
        .ok_or_else(|| Problem::unauthenticated("the operator no longer exists"))?;
    Ok(Caller {
        principal: Principal::Operator { id: id.0 },
        roles: BTreeSet::new(),
        scope: Scope::default(),
        session: None,
        source: None,
    })
}

fn user_caller(
    ledger: &Ledger,
    tenant: TenantId,
    id: UserId,
    password_tag: Option<&str>,
) -> Result<Caller, Problem> {
    let user = ledger
        .tenant(tenant)
        .and_then(|t| t.find_user(id))
        .ok_or_else(|| Problem::unauthenticated("the user no longer exists"))?;
    if !user.spec.can_log_in() {
        return Err(Problem::unauthenticated(
            "the user may not log in (inactive or without panel access)",
        ));
    }
    if let Some(tag) = password_tag {
        let current = user.password.as_ref().map(|p| token::password_tag(&p.phc));
        if current.as_deref() != Some(tag) {
            return Err(Problem::unauthenticated(
                "the password changed since this token was issued",
            ));
        }
    }
    Ok(Caller {
        principal: Principal::User {
            tenant: tenant.0,
            id: id.0,
        },
        roles: user.spec.roles.clone(),
        scope: user.spec.scope.clone(),
        session: None,
        source: None,
    })
}

/// Decodes lowercase or uppercase hex.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Problem> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                Problem::unauthenticated("this route needs `Authorization: Bearer <token>`")
            })?;
        let bearer = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| {
                Problem::unauthenticated("the Authorization header is not `Bearer <token>`")
            })?;
        let now_ms = app.clock.now_ms();
        let bearer = bearer.trim();
        let source = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let with_source = |caller: Caller| Caller { source, ..caller };
        let Some(source) = source else {
            return authenticate_fresh(app, bearer, now_ms).await;
        };
        // A good token always passes (and costs no throttle entry).
        let local = app
            .consensus
            .read_local(|ledger| authenticate(ledger, bearer, now_ms));
        if local.is_ok() {
            return local.map(with_source);
        }
        app.bearer_may_try(source, now_ms)?;
        let fresh = app
            .consensus
            .read(|ledger| authenticate(ledger, bearer, now_ms))
            .await?;
        if fresh.as_ref().is_err_and(|p| p.code == "UNAUTHENTICATED") {
            app.bearer_failed(source, now_ms);
        }
        fresh.map(with_source)
    }
}

/// [`authenticate`] on this node's ledger, and when that refuses, once more
/// on a linearizable read: this node may not have applied the user, token
/// or session yet.
pub async fn authenticate_fresh(
    app: &AppState,
    bearer: &str,
    now_ms: u64,
) -> Result<Caller, Problem> {
    match app
        .consensus
        .read_local(|ledger| authenticate(ledger, bearer, now_ms))
    {
        Ok(caller) => Ok(caller),
        Err(_) => {
            app.consensus
                .read(|ledger| authenticate(ledger, bearer, now_ms))
                .await?
        }
    }
}
