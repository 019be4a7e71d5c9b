//! `/api/v1/tenants/{tenant}/numbers`: public numbers (DIDs) a tenant owns
//! and where they lead (D2, V5). Operators give numbers to tenants;
//! administrators assign them.

use super::{created, Created};
use crate::access::{Area, Caller, Mode};
use crate::extract::{Body, Id};
use crate::problem::Problem;
use crate::state::AppState;
use crate::write::created_id;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use carillon_actors::ledger::Command;
use carillon_actors::model::directory::{Number, NumberTarget};
use carillon_actors::model::{NumberId, TenantId};
use serde::Deserialize;
use utoipa::ToSchema;

/// Body of `POST /numbers`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNumber {
    /// E.164 number (+420...).
    pub e164: String,
}

/// Body of `POST /numbers/assign`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignNumber {
    /// The number, which the tenant must own (V5).
    pub e164: String,
    /// Where calls to it go.
    pub target: NumberTarget,
}

/// Body of `POST /numbers/release`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseNumber {
    /// The number.
    pub e164: String,
}

/// The tenant's numbers.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/numbers", tag = "numbers", params(("tenant" = u64, Path)),
    responses((status = 200, body = Vec<Number>)), security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Id(tenant): Id<TenantId>,
) -> Result<Json<Vec<Number>>, Problem> {
    app.read_tenant(&caller, tenant, Area::Numbers, |t| {
        Ok(Json(t.numbers().cloned().collect()))
    })
    .await
}

/// Gives a number to the tenant (operators).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/numbers", tag = "numbers", params(("tenant" = u64, Path)),
    request_body = NewNumber, responses((status = 201, body = Created)), security(("bearer" = [])))]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(body): Body<NewNumber>,
) -> Result<(StatusCode, Json<Created>), Problem> {
    caller.require_operator()?;
    let command = Command::AddNumber {
        tenant,
        e164: body.e164,
    };
    Ok(created(created_id(
        &app.execute(&caller, &headers, command).await?,
    )?))
}

/// Takes an unassigned number back from the tenant (operators).
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/numbers/{number}", tag = "numbers",
    params(("tenant" = u64, Path), ("number" = u64, Path)), responses((status = 204, description = "Deleted")),
    security(("bearer" = [])))]
pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id((tenant, number)): Id<(TenantId, NumberId)>,
) -> Result<StatusCode, Problem> {
    caller.require_operator()?;
    app.execute(&caller, &headers, Command::DeleteNumber { tenant, number })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Assigns an owned, free number to a user, queue or IVR (V5).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/numbers/assign", tag = "numbers", params(("tenant" = u64, Path)),
    request_body = AssignNumber, responses((status = 204, description = "Assigned")), security(("bearer" = [])))]
pub async fn assign(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(body): Body<AssignNumber>,
) -> Result<StatusCode, Problem> {
    caller.require(tenant, Area::Numbers, Mode::Write)?;
    let command = Command::AssignNumber {
        tenant,
        e164: body.e164,
        target: body.target,
    };
    app.execute(&caller, &headers, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Releases an assigned number.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/numbers/release", tag = "numbers", params(("tenant" = u64, Path)),
    request_body = ReleaseNumber, responses((status = 204, description = "Released")), security(("bearer" = [])))]
pub async fn release(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(body): Body<ReleaseNumber>,
) -> Result<StatusCode, Problem> {
    caller.require(tenant, Area::Numbers, Mode::Write)?;
    app.execute(
        &caller,
        &headers,
        Command::ReleaseNumber {
            tenant,
            e164: body.e164,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
