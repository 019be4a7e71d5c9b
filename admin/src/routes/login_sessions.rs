//! `/api/v1/auth/sessions` and `/auth/logout`: the caller's logged-in
//! sessions (each bearer token from `/auth/login` names one), listed and
//! ended. An ended session's token is refused by every node once the node
//! has applied the end (the ledger entry that logout waits for).

use crate::access::Caller;
use crate::extract::Id;
use crate::problem::Problem;
use crate::routes::auth::owner_of;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use carillon_actors::ledger::Command;
use serde::Serialize;
use utoipa::ToSchema;

/// A logged-in session of the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Id.
    pub id: u64,
    /// Opened at, ms since the epoch.
    pub opened_at_ms: u64,
    /// Ends by itself at, ms since the epoch.
    pub expires_at_ms: u64,
    /// The address it logged in from.
    pub source: String,
    /// The client's `User-Agent` (at most 200 characters).
    pub user_agent: String,
    /// The session of the token this request carries.
    pub current: bool,
}

/// The caller's open sessions, oldest first (API tokens are at `/auth/tokens`).
#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth",
    responses((status = 200, body = Vec<SessionView>)), security(("bearer" = [])))]
pub async fn list(State(app): State<AppState>, caller: Caller) -> Json<Vec<SessionView>> {
    let owner = owner_of(&caller);
    let now = app.clock.now_ms();
    Json(app.consensus.read_local(|l| {
        l.login_sessions_of(owner, now)
            .map(|s| SessionView {
                id: s.id,
                opened_at_ms: s.opened_at_ms,
                expires_at_ms: s.expires_at_ms,
                source: s.source.clone(),
                user_agent: s.user_agent.clone(),
                current: caller.session == Some(s.id),
            })
            .collect()
    }))
}

/// Ends one of the caller's sessions (its token stops working everywhere).
#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "auth",
    params(("id" = u64, Path, description = "Session id")),
    responses((status = 204, description = "Ended"),
        (status = 404, description = "Not one of the caller's open sessions", body = crate::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn end(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(id): Id<u64>,
) -> Result<StatusCode, Problem> {
    let owner = owner_of(&caller);
    let now = app.clock.now_ms();
    let mine = app
        .consensus
        .read(|l| l.login_session(id, now).is_some_and(|s| s.owner == owner))
        .await?;
    if !mine {
        return Err(Problem::not_found("session"));
    }
    app.execute(
        &caller,
        &headers,
        Command::CloseLoginSession { session: id },
    )
    .await?;
    tracing::info!(session = id, "session ended by its owner");
    Ok(StatusCode::NO_CONTENT)
}

/// Ends the session of the token this request carries.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204, description = "Logged out"),
        (status = 400, description = "`NOT_A_SESSION`: an API token is revoked at `/auth/tokens/{id}`", body = crate::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn logout(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<StatusCode, Problem> {
    let session = caller.session.ok_or_else(|| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "NOT_A_SESSION",
            "this is an API token, not a session: revoke it with DELETE /api/v1/auth/tokens/{id}",
        )
    })?;
    app.execute(&caller, &headers, Command::CloseLoginSession { session })
        .await?;
    tracing::info!(session, "logged out");
    Ok(StatusCode::NO_CONTENT)
}
