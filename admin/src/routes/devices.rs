//! `/api/v1/tenants/{tenant}/devices`: devices (D1, D2) with SIP
//! credentials (V3) stored as digest HA1 values only, within the tenant's
//! device packages (L1).

use super::{created, Created};
use crate::access::{Area, Caller, Mode};
use crate::extract::{Body, Id};
use crate::presence::{Extension, ExtensionState};
use crate::problem::Problem;
use crate::state::AppState;
use crate::write::created_id;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use carillon_actors::ledger::{Command, TenantState};
use carillon_actors::model::credentials::{sip_ha1, validate_sip_password, SipSecret};
use carillon_actors::model::directory::{DeviceSpec, DeviceView};
use carillon_actors::model::{DeviceId, TenantId};
use serde::Deserialize;
use utoipa::ToSchema;

/// Body of `POST /devices` and `PUT /devices/{id}`: the settings and, for
/// registering kinds, the SIP password (required at creation; on update,
/// omitted keeps the current one).
#[derive(ToSchema)]
pub struct DeviceBody {
    /// Settings.
    #[serde(flatten)]
    pub spec: DeviceSpec,
    /// SIP password (V3).
    #[serde(default)]
    pub sip_password: Option<String>,
}

impl<'de> Deserialize<'de> for DeviceBody {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (spec, mut secrets) = crate::extract::split_secrets(deserializer, &["sip_password"])?;
        Ok(Self {
            spec,
            sip_password: secrets.remove("sip_password"),
        })
    }
}

impl std::fmt::Debug for DeviceBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceBody")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

async fn secret(
    app: &AppState,
    tenant: TenantId,
    body: &DeviceBody,
) -> Result<Option<SipSecret>, Problem> {
    let (Some(password), Some(username)) = (&body.sip_password, &body.spec.sip_username) else {
        return Ok(None);
    };
    validate_sip_password(password)?;
    let realm = app
        .with_tenant(tenant, |t| Ok(t.info().sip_domain.clone()))
        .await?;
    Ok(Some(sip_ha1(username, &realm, password)))
}

/// Whether the caller's scope covers the device (through its owner).
fn sees_device(
    caller: &Caller,
    t: &TenantState,
    owner: Option<carillon_actors::model::UserId>,
) -> bool {
    if caller.is_operator() || caller.scope.is_whole_tenant() {
        return true;
    }
    owner
        .and_then(|o| t.find_user(o))
        .is_some_and(|u| caller.sees_user(u))
}

/// Devices the caller may see.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices", tag = "devices", params(("tenant" = u64, Path)),
    responses((status = 200, body = Vec<DeviceView>)), security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Id(tenant): Id<TenantId>,
) -> Result<Json<Vec<DeviceView>>, Problem> {
    app.read_tenant(&caller, tenant, Area::Devices, |t| {
        Ok(Json(
            t.devices()
                .filter(|d| sees_device(&caller, t, d.spec.owner))
                .map(DeviceView::from)
                .collect(),
        ))
    })
    .await
}

/// Extension state (D7) of every registering device the caller may see,
/// with its current registrations on this node.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/extensions", tag = "devices", params(("tenant" = u64, Path)),
    responses((status = 200, body = Vec<Extension>)), security(("bearer" = [])))]
pub async fn extensions(
    State(app): State<AppState>,
    caller: Caller,
    Id(tenant): Id<TenantId>,
) -> Result<Json<Vec<Extension>>, Problem> {
    let mut registrations = app.presence.registrations(tenant);
    app.read_tenant(&caller, tenant, Area::Devices, |t| {
        Ok(Json(
            t.devices()
                .filter(|d| d.spec.kind.registers() && sees_device(&caller, t, d.spec.owner))
                .map(|d| {
                    let reg = registrations.remove(&d.id);
                    Extension {
                        device: d.id,
                        name: d.spec.name.clone(),
                        sip_username: d.spec.sip_username.clone(),
                        short_number: d.spec.short_number.clone(),
                        state: if reg.as_ref().is_some_and(|r| r.online) {
                            ExtensionState::Online
                        } else {
                            ExtensionState::Unavailable
                        },
                        bindings: reg.map(|r| r.bindings).unwrap_or_default(),
                    }
                })
                .collect(),
        ))
    })
    .await
}

/// Creates a device.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/devices", tag = "devices", params(("tenant" = u64, Path)),
    request_body = DeviceBody, responses((status = 201, body = Created)), security(("bearer" = [])))]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(body): Body<DeviceBody>,
) -> Result<(StatusCode, Json<Created>), Problem> {
    caller.require(tenant, Area::Devices, Mode::Write)?;
    body.spec.validate()?;
    let sip_secret = secret(&app, tenant, &body).await?;
    let command = Command::CreateDevice {
        tenant,
        spec: body.spec,
        sip_secret,
    };
    Ok(created(created_id(
        &app.execute(&caller, &headers, command).await?,
    )?))
}

async fn visible_device(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    id: DeviceId,
) -> Result<DeviceView, Problem> {
    app.with_tenant(tenant, |t| {
        t.devices()
            .find(|d| d.id == id && sees_device(caller, t, d.spec.owner))
            .map(DeviceView::from)
            .ok_or_else(|| Problem::not_found("device"))
    })
    .await
}

/// One device.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/devices/{device}", tag = "devices",
    params(("tenant" = u64, Path), ("device" = u64, Path)), responses((status = 200, body = DeviceView)),
    security(("bearer" = [])))]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Id((tenant, device)): Id<(TenantId, DeviceId)>,
) -> Result<Json<DeviceView>, Problem> {
    caller.require(tenant, Area::Devices, Mode::Read)?;
    visible_device(&app, &caller, tenant, device)
        .await
        .map(Json)
}

/// Replaces a device's settings (and SIP password, when given).
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/devices/{device}", tag = "devices", request_body = DeviceBody,
    params(("tenant" = u64, Path), ("device" = u64, Path)), responses((status = 200, body = DeviceView)),
    security(("bearer" = [])))]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id((tenant, device)): Id<(TenantId, DeviceId)>,
    Body(body): Body<DeviceBody>,
) -> Result<Json<DeviceView>, Problem> {
    caller.require(tenant, Area::Devices, Mode::Write)?;
    visible_device(&app, &caller, tenant, device).await?;
    body.spec.validate()?;
    let sip_secret = secret(&app, tenant, &body).await?;
    let command = Command::UpdateDevice {
        tenant,
        device,
        spec: body.spec,
        sip_secret,
    };
    app.execute(&caller, &headers, command).await?;
    visible_device(&app, &caller, tenant, device)
        .await
        .map(Json)
}

/// Deletes a device.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/devices/{device}", tag = "devices",
    params(("tenant" = u64, Path), ("device" = u64, Path)), responses((status = 204, description = "Deleted")),
    security(("bearer" = [])))]
pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id((tenant, device)): Id<(TenantId, DeviceId)>,
) -> Result<StatusCode, Problem> {
    caller.require(tenant, Area::Devices, Mode::Write)?;
    visible_device(&app, &caller, tenant, device).await?;
    app.execute(&caller, &headers, Command::DeleteDevice { tenant, device })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
