//! The front door's throttle at login (`crate::throttle`) and the logins it
//! locked: `/api/v1/lockouts` for operators (every login), and
//! `/api/v1/tenants/{tenant}/lockouts` for a tenant's administrators (the
//! logins of its users).

use crate::access::{Area, Caller, Mode};
use crate::extract::Id;
use crate::problem::Problem;
use crate::state::AppState;
use crate::throttle::{Throttle, Verdict};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use carillon_actors::ledger::{fold_login, Command, Lockout};
use carillon_actors::model::TenantId;
use std::net::IpAddr;

impl AppState {
    /// The node's throttle (held only for a table update, never across an await).
    pub fn throttle(&self) -> std::sync::MutexGuard<'_, Throttle> {
        // A panic while held cannot leave a table half-updated in a way
        // that matters more than refusing every login: keep serving.
        self.throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuses an attempt of a locked login, or one the throttle delays.
    pub fn may_try(&self, login: &str, source: IpAddr, now_ms: u64) -> Result<(), Problem> {
        if let Some(until_ms) = self
            .consensus
            .read_local(|l| l.lockout(login, now_ms).map(|l| l.until_ms))
        {
            self.throttle_metrics.refused("locked");
            return Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "LOGIN_LOCKED",
                "this login is locked after too many failed attempts; it unlocks by itself \
                 or an administrator unlocks it",
            )
            .retry_after_ms(until_ms - now_ms));
        }
        let verdict = self.throttle().admit(login, source, now_ms);
        match verdict {
            Verdict::Allowed => Ok(()),
            Verdict::Wait { retry_after_ms } => {
                self.throttle_metrics.refused("throttled");
                Err(Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "LOGIN_THROTTLED",
                    "too many failed logins from this address: wait before the next attempt",
                )
                .retry_after_ms(retry_after_ms))
            }
        }
    }

    /// Refuses a bad bearer token from a source the bearer throttle delays
    /// (before the linearizable read a bad token would cost).
    pub fn bearer_may_try(&self, source: IpAddr, now_ms: u64) -> Result<(), Problem> {
        let verdict = self
            .bearer_throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .admit("", source, now_ms);
        match verdict {
            Verdict::Allowed => Ok(()),
            Verdict::Wait { retry_after_ms } => {
                self.throttle_metrics.refused("token_throttled");
                Err(Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TOKEN_THROTTLED",
                    "too many invalid bearer tokens from this address: wait before the next one",
                )
                .retry_after_ms(retry_after_ms))
            }
        }
    }

    /// Counts a bad bearer token from `source`.
    pub fn bearer_failed(&self, source: IpAddr, now_ms: u64) {
        let mut throttle = self
            .bearer_throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        throttle.failed("", source, now_ms);
    }

    /// Counts a failed login; locks the login when it reaches the threshold.
    pub async fn login_failed(&self, login: &str, source: IpAddr, now_ms: u64) {
        let failed = {
            let mut throttle = self.throttle();
            let failed = throttle.failed(login, source, now_ms);
            self.throttle_metrics.entries.set(throttle.entries() as i64);
            failed
        };
        let Some(until_ms) = failed.lock_until_ms else {
            return;
        };
        let command = Command::LockLogin {
            login: login.to_string(),
            until_ms,
            failures: failed.login_failures,
            last_source: source.to_string(),
        };
        let id = carillon_consensus::CommandId(format!(
            "lockout/{}/{now_ms}/{}",
            fold_login(login),
            crate::write::hex(&crate::write::random_bytes::<4>())
        ));
        match self.execute_as(id, command).await {
            Ok(_) => {
                tracing::warn!(login = %login, %source, until_ms, "login locked");
                self.throttle_metrics.lockouts.inc();
                let minutes = until_ms.saturating_sub(now_ms).div_ceil(60_000);
                self.notify_login_owners(
                    login,
                    "Your Carillon login is locked",
                    format!(
                        "After {} failed attempts to log in as {login} (the last from {source}), \
                         the login is locked for {minutes} minutes; an administrator can lift \
                         the lock sooner.\n\nIf the attempts were not yours, tell your \
                         administrator.\n",
                        failed.login_failures
                    ),
                );
            }
            // An unknown login is not locked (only accounts are).
            Err(p) if p.code == "NOT_FOUND" => {}
            Err(p) => {
                tracing::warn!(login = %login, problem = %p.detail, "a lockout was not written")
            }
        }
    }
}

fn locked_of_tenant(app: &AppState, tenant: TenantId, now_ms: u64) -> Vec<Lockout> {
    app.consensus.read_local(|l| {
        let Some(t) = l.tenant(tenant) else {
            return Vec::new();
        };
        l.lockouts(now_ms)
            .filter(|lock| t.users().any(|u| fold_login(&u.spec.login) == lock.login))
            .cloned()
            .collect()
    })
}

/// The logins locked now (operators).
#[utoipa::path(get, path = "/api/v1/lockouts", tag = "auth",
    responses((status = 200, body = [Lockout]), (status = 403, body = crate::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn list_all(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Lockout>>, Problem> {
    caller.require_operator()?;
    let now = app.clock.now_ms();
    Ok(Json(
        app.consensus
            .read_local(|l| l.lockouts(now).cloned().collect()),
    ))
}

/// Unlocks a login (operators).
#[utoipa::path(delete, path = "/api/v1/lockouts/{login}", tag = "auth",
    params(("login" = String, Path, description = "The login")),
    responses((status = 204, description = "Unlocked"), (status = 404, body = crate::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn unlock_any(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(login): Id<String>,
) -> Result<StatusCode, Problem> {
    caller.require_operator()?;
    unlock(&app, &caller, &headers, login).await
}

/// The logins of the tenant's users locked now.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/lockouts", tag = "users",
    params(("tenant" = u64, Path, description = "Tenant id")),
    responses((status = 200, body = [Lockout]), (status = 403, body = crate::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn list_of_tenant(
    State(app): State<AppState>,
    caller: Caller,
    Id(tenant): Id<u64>,
) -> Result<Json<Vec<Lockout>>, Problem> {
    let tenant = TenantId(tenant);
    // Administrators only: who is under attack is not for every reader of users.
    caller.require(tenant, Area::Users, Mode::Write)?;
    Ok(Json(locked_of_tenant(&app, tenant, app.clock.now_ms())))
}

/// Unlocks the login of one of the tenant's users.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/lockouts/{login}", tag = "users",
    params(("tenant" = u64, Path, description = "Tenant id"), ("login" = String, Path, description = "The login")),
    responses((status = 204, description = "Unlocked"), (status = 404, body = crate::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn unlock_of_tenant(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id((tenant, login)): Id<(u64, String)>,
) -> Result<StatusCode, Problem> {
    let tenant = TenantId(tenant);
    caller.require(tenant, Area::Users, Mode::Write)?;
    let folded = fold_login(&login);
    let now = app.clock.now_ms();
    if !locked_of_tenant(&app, tenant, now)
        .iter()
        .any(|l| l.login == folded)
    {
        return Err(Problem::not_found("lockout"));
    }
    unlock(&app, &caller, &headers, login).await
}

async fn unlock(
    app: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    login: String,
) -> Result<StatusCode, Problem> {
    app.execute(
        caller,
        headers,
        Command::UnlockLogin {
            login: login.clone(),
        },
    )
    .await?;
    app.throttle().unlocked(&login);
    tracing::info!(login = %login, "login unlocked");
    Ok(StatusCode::NO_CONTENT)
}
