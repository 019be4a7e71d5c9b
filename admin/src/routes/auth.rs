//! `/api/v1/auth`: log in (V2 passwords, argon2id), who am I, API tokens.

use crate::access::Caller;
use crate::extract::{Body, Id};
use crate::problem::Problem;
use crate::routes::sessions::ClientIp;
use crate::state::AppState;
use crate::token::{self, Claims, Principal, SESSION_TTL_MS};
use crate::write::{created_id, hex, random_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use carillon_actors::ledger::{Command, TokenOwner};
use carillon_actors::model::credentials::{hash_api_token, verify_panel_password, verify_phc};
use carillon_actors::model::user::Role;
use carillon_actors::model::{ApiTokenId, OperatorId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use utoipa::ToSchema;

/// Body of `POST /api/v1/auth/login`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login name.
    pub login: String,
    /// Panel password.
    pub password: String,
    /// The tenant, when the same login exists in several tenants.
    #[serde(default)]
    pub tenant: Option<TenantId>,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never log a password.
        f.debug_struct("LoginRequest")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// A session.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    /// Bearer token for `Authorization: Bearer <token>`.
    pub token: String,
    /// When it expires, ms since the epoch.
    pub expires_at_ms: u64,
    /// Who it is for.
    pub whoami: WhoAmI,
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct WhoAmI {
    /// `operator` or `user`.
    pub kind: String,
    /// Operator or user id.
    pub id: u64,
    /// The user's tenant.
    pub tenant: Option<u64>,
    /// The user's roles.
    pub roles: BTreeSet<Role>,
}

impl From<&Caller> for WhoAmI {
    fn from(caller: &Caller) -> Self {
        match caller.principal {
            Principal::Operator { id } => Self {
                kind: "operator".into(),
                id,
                tenant: None,
                roles: BTreeSet::new(),
            },
            Principal::User { tenant, id } => Self {
                kind: "user".into(),
                id,
                tenant: Some(tenant),
                roles: caller.roles.clone(),
            },
        }
    }
}

fn bad_credentials() -> Problem {
    Problem::unauthenticated("unknown login or wrong password")
}

enum Candidate {
    Operator {
        id: OperatorId,
        phc: String,
    },
    User {
        tenant: TenantId,
        id: UserId,
        hash: carillon_actors::model::credentials::PasswordHash,
    },
}

/// Logs in with a login and a panel password; answers a bearer token.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = Session),
        (status = 401, description = "Unknown login or wrong password", body = crate::problem::ProblemBody),
        (status = 429, description = "`LOGIN_THROTTLED` or `LOGIN_LOCKED`, with `Retry-After`", body = crate::problem::ProblemBody)))]
pub async fn login(
    State(app): State<AppState>,
    ClientIp(source): ClientIp,
    headers: HeaderMap,
    Body(body): Body<LoginRequest>,
) -> Result<Json<Session>, Problem> {
    let LoginRequest {
        login,
        password,
        tenant,
    } = body;
    let source = source.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let now = app.clock.now_ms();
    app.may_try(&login, source, now)?;
    let result = check_password(&app, login.clone(), password, tenant).await;
    match &result {
        Ok(_) => app.throttle().succeeded(&login, source),
        Err(p) if p.code == "UNAUTHENTICATED" => app.login_failed(&login, source, now).await,
        Err(_) => {}
    }
    let (principal, phc) = result?;
    let key = app
        .consensus
        .read_local(|l| l.signing_key_hex().and_then(crate::access::hex_decode))
        .ok_or_else(|| Problem::unavailable("the cluster is not bootstrapped yet"))?;
    let expires_at_ms = now + SESSION_TTL_MS;
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let opened = app
        .execute_as(
            carillon_consensus::CommandId(hex(&random_bytes::<16>())),
            Command::OpenLoginSession {
                owner: owner_of_principal(principal),
                expires_at_ms,
                source: source.to_string(),
                user_agent,
            },
        )
        .await?;
    let claims = Claims {
        principal,
        session: created_id(&opened)?,
        password_tag: token::password_tag(&phc),
        issued_at_ms: now,
        expires_at_ms,
    };
    let token = token::sign(&claims, &key);
    let caller = crate::access::authenticate_fresh(&app, &token, now).await?;
    tracing::info!(login = %login, "logged in");
    Ok(Json(Session {
        token,
        expires_at_ms: claims.expires_at_ms,
        whoami: WhoAmI::from(&caller),
    }))
}

/// The account `login` names, if `password` is its password.
async fn check_password(
    app: &AppState,
    login: String,
    password: String,
    tenant: Option<TenantId>,
) -> Result<(Principal, String), Problem> {
    // Linearizable: a user created a moment ago on another node can log in here.
    let candidates = app
        .consensus
        .read(|ledger| {
            let mut found = Vec::new();
            if let Some(op) = ledger.operator_by_login(&login) {
                found.push(Candidate::Operator {
                    id: op.id,
                    phc: op.password_phc.clone(),
                });
            }
            for (t, user) in ledger.users_by_login(&login) {
                if tenant.is_some_and(|want| want != t.id) || !user.spec.can_log_in() {
                    continue;
                }
                if let Some(hash) = &user.password {
                    found.push(Candidate::User {
                        tenant: t.id,
                        id: user.id,
                        hash: hash.clone(),
                    });
                }
            }
            found
        })
        .await?;
    if candidates.len() > 1 {
        return Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "LOGIN_AMBIGUOUS",
            "this login exists in several tenants: give `tenant`",
        ));
    }
    let candidate = candidates.into_iter().next().ok_or_else(bad_credentials)?;
    // argon2 is deliberately slow: keep it off the async workers.
    let checked = tokio::task::spawn_blocking(move || {
        let ok = match &candidate {
            Candidate::Operator { phc, .. } => verify_phc(&password, phc),
            Candidate::User { hash, .. } => verify_panel_password(&password, hash),
        };
        (ok, candidate)
    })
    .await
    .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()))?;
    let (ok, candidate) = checked;
    if !ok {
        tracing::info!(login = %login, "login refused: wrong password");
        return Err(bad_credentials());
    }
    Ok(match candidate {
        Candidate::Operator { id, phc } => (Principal::Operator { id: id.0 }, phc),
        Candidate::User { tenant, id, hash } => (
            Principal::User {
                tenant: tenant.0,
                id: id.0,
            },
            hash.phc,
        ),
    })
}

/// Who the bearer token speaks for.
#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth", responses((status = 200, body = WhoAmI)),
    security(("bearer" = [])))]
pub async fn me(caller: Caller) -> Json<WhoAmI> {
    Json(WhoAmI::from(&caller))
}

/// Body of `POST /api/v1/auth/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiToken {
    /// A name to recognise it by.
    pub name: String,
}

/// A new API token: the secret is shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiToken {
    /// Token id (for revoking).
    pub id: u64,
    /// The secret bearer token; it is not stored and cannot be shown again.
    pub token: String,
}

/// An API token (without its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiTokenView {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Created, ms since the epoch.
    pub created_at_ms: u64,
    /// Revoked.
    pub revoked: bool,
}

/// Who owns the caller's tokens and sessions.
pub fn owner_of(caller: &Caller) -> TokenOwner {
    owner_of_principal(caller.principal)
}

fn owner_of_principal(principal: Principal) -> TokenOwner {
    match principal {
        Principal::Operator { id } => TokenOwner::Operator {
            operator: OperatorId(id),
        },
        Principal::User { tenant, id } => TokenOwner::User {
            tenant: TenantId(tenant),
            user: UserId(id),
        },
    }
}

/// Creates an API token acting as the caller, for automation.
#[utoipa::path(post, path = "/api/v1/auth/tokens", tag = "auth", request_body = NewApiToken,
    responses((status = 201, body = CreatedApiToken)), security(("bearer" = [])))]
pub async fn create_token(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<NewApiToken>,
) -> Result<(StatusCode, Json<CreatedApiToken>), Problem> {
    let secret = format!("cat_{}", hex(&random_bytes::<24>()));
    let command = Command::CreateApiToken {
        owner: owner_of(&caller),
        name: body.name,
        token_hash: hash_api_token(&secret),
    };
    let id = created_id(&app.execute(&caller, &headers, command).await?)?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiToken { id, token: secret }),
    ))
}

/// The caller's API tokens.
#[utoipa::path(get, path = "/api/v1/auth/tokens", tag = "auth",
    responses((status = 200, body = Vec<ApiTokenView>)), security(("bearer" = [])))]
pub async fn list_tokens(State(app): State<AppState>, caller: Caller) -> Json<Vec<ApiTokenView>> {
    let owner = owner_of(&caller);
    Json(app.consensus.read_local(|l| {
        l.api_tokens_of(owner)
            .map(|t| ApiTokenView {
                id: t.id.0,
                name: t.name.clone(),
                created_at_ms: t.created_at_ms,
                revoked: t.revoked,
            })
            .collect()
    }))
}

/// Revokes one of the caller's API tokens.
#[utoipa::path(delete, path = "/api/v1/auth/tokens/{id}", tag = "auth",
    params(("id" = u64, Path, description = "Token id")),
    responses((status = 204, description = "Revoked")), security(("bearer" = [])))]
pub async fn revoke_token(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(id): Id<u64>,
) -> Result<StatusCode, Problem> {
    let owner = owner_of(&caller);
    let mine = app
        .consensus
        .read_local(|l| l.api_tokens_of(owner).any(|t| t.id == ApiTokenId(id)));
    if !mine {
        return Err(Problem::not_found("API token"));
    }
    app.execute(
        &caller,
        &headers,
        Command::RevokeApiToken {
            token: ApiTokenId(id),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
