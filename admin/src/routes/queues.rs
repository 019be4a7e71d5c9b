//! Waiting callers (Q3): the ordered list of a queue, enqueue, priority
//! change, assignment (exactly once) and abandonment.

use crate::access::{Area, Caller, Mode};
use crate::extract::{Body, Id};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use carillon_actors::ledger::{Command, Outcome, QueueEntry};
use carillon_actors::model::{QueueId, TenantId, UserId};
use serde::Deserialize;
use utoipa::ToSchema;

/// Body of `POST .../entries`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEntry {
    /// Entry id (for example the call id), unique in the tenant.
    pub entry: String,
    /// Priority 0..=100 (default: the queue's).
    #[serde(default)]
    pub priority: Option<u32>,
}

/// Body of `PUT .../priority`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPriority {
    /// Priority 0..=100.
    pub priority: u32,
}

/// Body of `POST .../withdraw`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Withdrawal {
    /// Another queue (the caller moves there), or a prompt and a hang-up.
    pub destination: carillon_actors::model::queue::Destination,
}

/// Body of `POST .../assign`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignTo {
    /// The agent.
    pub user: UserId,
}

/// Callers waiting in a queue, in service order (priority, then arrival).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/queues/{queue}/entries", tag = "queues",
    params(("tenant" = u64, Path), ("queue" = u64, Path)), responses((status = 200, body = Vec<QueueEntry>)),
    security(("bearer" = [])))]
pub async fn waiting(
    State(app): State<AppState>,
    caller: Caller,
    Id((tenant, queue)): Id<(TenantId, QueueId)>,
) -> Result<Json<Vec<QueueEntry>>, Problem> {
    app.read_tenant(&caller, tenant, Area::Entries, |t| {
        if !t.queues().any(|q| q.id == queue) {
            return Err(Problem::not_found("queue"));
        }
        Ok(Json(t.waiting(queue).into_iter().cloned().collect()))
    })
    .await
}

/// Puts a caller in a queue.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/queues/{queue}/entries", tag = "queues", request_body = NewEntry,
    params(("tenant" = u64, Path), ("queue" = u64, Path)), responses((status = 200, body = Outcome)),
    security(("bearer" = [])))]
pub async fn enqueue(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id((tenant, queue)): Id<(TenantId, QueueId)>,
    Body(b): Body<NewEntry>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(tenant, Area::Entries, Mode::Write)?;
    let command = Command::Enqueue {
        call: None,
        tenant,
        queue,
        entry: b.entry,
        priority: b.priority,
    };
    Ok(Json(app.execute(&caller, &headers, command).await?))
}

/// Changes a waiting caller's priority (Q3, S2).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/entries/{entry}/priority", tag = "queues", request_body = NewPriority,
    params(("tenant" = u64, Path), ("entry" = String, Path)), responses((status = 200, body = Outcome)),
    security(("bearer" = [])))]
pub async fn change_priority(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id((tenant, entry)): Id<(TenantId, String)>,
    Body(b): Body<NewPriority>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(tenant, Area::Entries, Mode::Write)?;
    let command = Command::ChangePriority {
        tenant,
        entry,
        priority: b.priority,
    };
    Ok(Json(app.execute(&caller, &headers, command).await?))
}

/// Sends a waiting caller elsewhere (S2): to another queue, where it waits
/// behind those already there, or to a prompt and a hang-up. Its call
/// carries it out; the record names who did it and when.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/entries/{entry}/withdraw", tag = "queues", request_body = Withdrawal,
    params(("tenant" = u64, Path), ("entry" = String, Path)), responses((status = 200, body = Outcome)),
    security(("bearer" = [])))]
pub async fn withdraw(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id((tenant, entry)): Id<(TenantId, String)>,
    Body(b): Body<Withdrawal>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(tenant, Area::Entries, Mode::Write)?;
    let command = Command::WithdrawEntry {
        tenant,
        entry,
        destination: b.destination,
    };
    Ok(Json(app.execute(&caller, &headers, command).await?))
}

/// Gives a waiting caller to an agent, exactly once.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/entries/{entry}/assign", tag = "queues", request_body = AssignTo,
    params(("tenant" = u64, Path), ("entry" = String, Path)), responses((status = 200, body = Outcome)),
    security(("bearer" = [])))]
pub async fn assign(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id((tenant, entry)): Id<(TenantId, String)>,
    Body(b): Body<AssignTo>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(tenant, Area::Entries, Mode::Write)?;
    let command = Command::AssignEntry {
        tenant,
        entry,
        user: b.user,
    };
    Ok(Json(app.execute(&caller, &headers, command).await?))
}

/// Records that a waiting caller left (or withdraws it, S2): a caller on a
/// call is hung up (its record says `withdrawn`), an entry without a call
/// ends at once.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/entries/{entry}/abandon", tag = "queues",
    params(("tenant" = u64, Path), ("entry" = String, Path)), responses((status = 200, body = Outcome)),
    security(("bearer" = [])))]
pub async fn abandon(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id((tenant, entry)): Id<(TenantId, String)>,
) -> Result<Json<Outcome>, Problem> {
    caller.require(tenant, Area::Entries, Mode::Write)?;
    Ok(Json(
        app.execute(&caller, &headers, Command::AbandonEntry { tenant, entry })
            .await?,
    ))
}
