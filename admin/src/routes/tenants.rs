//! `/api/v1/tenants`: tenants (U1), created by platform operators.

use super::{created, Created};
use crate::access::{Area, Caller, Mode};
use crate::extract::{Body, Id};
use crate::problem::Problem;
use crate::state::AppState;
use crate::write::{created_id, hex, random_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use carillon_actors::ledger::Command;
use carillon_actors::model::directory::{TenantSpec, TenantView};
use carillon_actors::model::feature_codes::FeatureCodes;
use carillon_actors::model::TenantId;
use serde::Deserialize;
use utoipa::ToSchema;

/// Every tenant the caller may see (operators: all; users: their own).
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants",
    responses((status = 200, body = Vec<TenantView>)), security(("bearer" = [])))]
pub async fn list(State(app): State<AppState>, caller: Caller) -> Json<Vec<TenantView>> {
    Json(app.consensus.read_local(|l| {
        l.tenants()
            .filter(|t| caller.is_operator() || caller.tenant() == Some(t.id))
            .map(TenantView::from)
            .collect()
    }))
}

/// Creates a tenant.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = TenantSpec,
    responses((status = 201, body = Created)), security(("bearer" = [])))]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(spec): Body<TenantSpec>,
) -> Result<(StatusCode, Json<Created>), Problem> {
    caller.require_operator()?;
    let command = Command::CreateTenant {
        spec,
        fingerprint_salt_hex: hex(&random_bytes::<16>()),
    };
    Ok(created(created_id(
        &app.execute(&caller, &headers, command).await?,
    )?))
}

/// One tenant.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = u64, Path)), responses((status = 200, body = TenantView)), security(("bearer" = [])))]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Id(tenant): Id<TenantId>,
) -> Result<Json<TenantView>, Problem> {
    app.read_tenant(&caller, tenant, Area::Tenant, |t| {
        Ok(Json(TenantView::from(t.info())))
    })
    .await
}

/// Body of `PATCH /api/v1/tenants/{tenant}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameTenant {
    /// The new display name.
    pub name: String,
}

/// Renames a tenant (its SIP domain is fixed).
#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}", tag = "tenants", request_body = RenameTenant,
    params(("tenant" = u64, Path)), responses((status = 200, body = TenantView)), security(("bearer" = [])))]
pub async fn rename(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(body): Body<RenameTenant>,
) -> Result<Json<TenantView>, Problem> {
    caller.require(tenant, Area::Tenant, Mode::Write)?;
    app.execute(
        &caller,
        &headers,
        Command::RenameTenant {
            tenant,
            name: body.name,
        },
    )
    .await?;
    app.with_tenant(tenant, |t| Ok(Json(TenantView::from(t.info()))))
        .await
}

/// The tenant's phone feature codes (A3).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/feature-codes", tag = "tenants",
    params(("tenant" = u64, Path)), responses((status = 200, body = FeatureCodes)), security(("bearer" = [])))]
pub async fn feature_codes(
    State(app): State<AppState>,
    caller: Caller,
    Id(tenant): Id<TenantId>,
) -> Result<Json<FeatureCodes>, Problem> {
    app.read_tenant(&caller, tenant, Area::Tenant, |t| {
        Ok(Json(t.info().feature_codes.clone()))
    })
    .await
}

/// Replaces the tenant's phone feature codes (A3): all six at once, each of
/// 2 to 16 characters of `0-9*#` with a `*` or `#`, none a prefix of
/// another (`FEATURE_CODE_INVALID`, `FEATURE_CODE_AMBIGUOUS`). Phones use the
/// new codes from their next call on.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/feature-codes", tag = "tenants", request_body = FeatureCodes,
    params(("tenant" = u64, Path)), responses((status = 200, body = FeatureCodes)), security(("bearer" = [])))]
pub async fn set_feature_codes(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(codes): Body<FeatureCodes>,
) -> Result<Json<FeatureCodes>, Problem> {
    caller.require(tenant, Area::Tenant, Mode::Write)?;
    app.execute(
        &caller,
        &headers,
        Command::SetFeatureCodes { tenant, codes },
    )
    .await?;
    app.with_tenant(tenant, |t| Ok(Json(t.info().feature_codes.clone())))
        .await
}
