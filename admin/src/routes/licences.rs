//! `/api/v1/tenants/{tenant}/licences`: the licence report and ledger (L1-L6).

use crate::access::{Area, Caller, Mode};
use crate::extract::{Body, Id};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use carillon_actors::ledger::{Command, Outcome};
use carillon_actors::model::licence::{LicenceKind, LicenceRank, LicenceReport};
use carillon_actors::model::{TenantId, UserId};
use serde::Deserialize;
use utoipa::ToSchema;

/// A number of seats or packages of a kind.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Seats {
    /// Kind.
    pub kind: LicenceKind,
    /// How many (1..=100000).
    pub count: u32,
}

/// A number of device packages.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Packages {
    /// How many packages of 10 devices.
    pub count: u32,
}

/// A seat for a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// The user.
    pub user: UserId,
    /// The kind the user needs.
    pub kind: LicenceKind,
}

/// A hand-over (L4).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HandOver {
    /// The user who leaves.
    pub from: UserId,
    /// The user who takes the seats.
    pub to: UserId,
}

/// Licence ranks (L5).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ranks {
    /// The ranks; kinds not listed never substitute.
    pub ranks: Vec<LicenceRank>,
}

/// The licence report: pool, in use, free per kind, pending withdrawals,
/// substitutions, device packages.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/licences", tag = "licences", params(("tenant" = u64, Path)),
    responses((status = 200, body = LicenceReport)), security(("bearer" = [])))]
pub async fn report(
    State(app): State<AppState>,
    caller: Caller,
    Id(tenant): Id<TenantId>,
) -> Result<Json<LicenceReport>, Problem> {
    let now = app.clock.now_ms();
    app.read_tenant(&caller, tenant, Area::Licences, |t| {
        Ok(Json(t.licence_report(now)))
    })
    .await
}

async fn run(
    app: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    tenant: TenantId,
    area: Area,
    command: Command,
) -> Result<Json<Outcome>, Problem> {
    caller.require(tenant, area, Mode::Write)?;
    Ok(Json(app.execute(caller, headers, command).await?))
}

/// Buys seats (L3: the pool grows at once).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/licences/purchases", tag = "licences",
    params(("tenant" = u64, Path)), request_body = Seats, responses((status = 200, body = Outcome)), security(("bearer" = [])))]
pub async fn buy(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(b): Body<Seats>,
) -> Result<Json<Outcome>, Problem> {
    let command = Command::BuyLicences {
        tenant,
        kind: b.kind,
        count: b.count,
    };
    run(&app, &caller, &headers, tenant, Area::LicencePool, command).await
}

/// Withdraws free seats (L3: billed until the end of the month; never a seat in use).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/licences/withdrawals", tag = "licences",
    params(("tenant" = u64, Path)), request_body = Seats, responses((status = 200, body = Outcome)), security(("bearer" = [])))]
pub async fn withdraw(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(b): Body<Seats>,
) -> Result<Json<Outcome>, Problem> {
    let command = Command::WithdrawLicences {
        tenant,
        kind: b.kind,
        count: b.count,
    };
    run(&app, &caller, &headers, tenant, Area::LicencePool, command).await
}

/// Assigns a seat, substituting a higher rank when needed (L5).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/licences/assignments", tag = "licences",
    params(("tenant" = u64, Path)), request_body = Assignment, responses((status = 200, body = Outcome)), security(("bearer" = [])))]
pub async fn assign(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(b): Body<Assignment>,
) -> Result<Json<Outcome>, Problem> {
    visible(&app, &caller, tenant, b.user).await?;
    let command = Command::AssignLicence {
        tenant,
        user: b.user,
        kind: b.kind,
    };
    run(&app, &caller, &headers, tenant, Area::Licences, command).await
}

/// Releases a seat back to the pool.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/licences/releases", tag = "licences",
    params(("tenant" = u64, Path)), request_body = Assignment, responses((status = 200, body = Outcome)), security(("bearer" = [])))]
pub async fn release(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(b): Body<Assignment>,
) -> Result<Json<Outcome>, Problem> {
    visible(&app, &caller, tenant, b.user).await?;
    let command = Command::ReleaseLicence {
        tenant,
        user: b.user,
        kind: b.kind,
    };
    run(&app, &caller, &headers, tenant, Area::Licences, command).await
}

/// Hands every seat of a leaving user to another in one step (L4).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/licences/hand-over", tag = "licences",
    params(("tenant" = u64, Path)), request_body = HandOver, responses((status = 200, body = Outcome)), security(("bearer" = [])))]
pub async fn hand_over(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(b): Body<HandOver>,
) -> Result<Json<Outcome>, Problem> {
    visible(&app, &caller, tenant, b.from).await?;
    visible(&app, &caller, tenant, b.to).await?;
    let command = Command::HandOverLicences {
        tenant,
        from: b.from,
        to: b.to,
    };
    run(&app, &caller, &headers, tenant, Area::Licences, command).await
}

/// Sets the substitution ranks (L5).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/licences/ranks", tag = "licences",
    params(("tenant" = u64, Path)), request_body = Ranks, responses((status = 200, body = Outcome)), security(("bearer" = [])))]
pub async fn ranks(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(b): Body<Ranks>,
) -> Result<Json<Outcome>, Problem> {
    let command = Command::SetLicenceRanks {
        tenant,
        ranks: b.ranks,
    };
    run(&app, &caller, &headers, tenant, Area::LicencePool, command).await
}

/// Buys device packages of 10 (L1).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/licences/device-packages", tag = "licences",
    params(("tenant" = u64, Path)), request_body = Packages, responses((status = 200, body = Outcome)), security(("bearer" = [])))]
pub async fn buy_packages(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(b): Body<Packages>,
) -> Result<Json<Outcome>, Problem> {
    let command = Command::BuyDevicePackages {
        tenant,
        count: b.count,
    };
    run(&app, &caller, &headers, tenant, Area::LicencePool, command).await
}

/// Withdraws device packages not needed by existing devices (L1).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/licences/device-package-withdrawals", tag = "licences",
    params(("tenant" = u64, Path)), request_body = Packages, responses((status = 200, body = Outcome)), security(("bearer" = [])))]
pub async fn withdraw_packages(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(b): Body<Packages>,
) -> Result<Json<Outcome>, Problem> {
    let command = Command::WithdrawDevicePackages {
        tenant,
        count: b.count,
    };
    run(&app, &caller, &headers, tenant, Area::LicencePool, command).await
}

/// A scoped caller may only manage seats of users it sees (404 otherwise).
async fn visible(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    user: UserId,
) -> Result<(), Problem> {
    caller.require(tenant, Area::Licences, Mode::Write)?;
    app.with_tenant(tenant, |t| match t.find_user(user) {
        Some(u) if caller.sees_user(u) => Ok(()),
        _ => Err(Problem::not_found("user")),
    })
    .await
}
