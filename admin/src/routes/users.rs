//! `/api/v1/tenants/{tenant}/users`: users (U2-U5), their panel password
//! (V2) and agent PIN (V1). Passwords and PINs are never returned or logged.

use super::{created, Created};
use crate::access::{Area, Caller, Mode};
use crate::extract::{Body, Id};
use crate::problem::Problem;
use crate::state::AppState;
use crate::write::{created_id, random_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use carillon_actors::ledger::Command;
use carillon_actors::model::credentials::{
    hash_panel_password, pin_fingerprint, validate_panel_password, validate_pin, PasswordHash,
};
use carillon_actors::model::user::{Role, UserSpec, UserView};
use carillon_actors::model::{TenantId, UserId};
use serde::Deserialize;
use std::collections::BTreeSet;
use utoipa::ToSchema;

/// Body of `POST /users`: the settings, and optionally the first password and PIN.
#[derive(ToSchema)]
pub struct NewUser {
    /// Settings.
    #[serde(flatten)]
    pub spec: UserSpec,
    /// Panel password (V2); contact-centre users only.
    #[serde(default)]
    pub password: Option<String>,
    /// Agent PIN (V1).
    #[serde(default)]
    pub pin: Option<String>,
}

impl<'de> Deserialize<'de> for NewUser {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // serde cannot deny unknown fields through `flatten`: take the
        // secrets out, then read the rest as a strict `UserSpec`.
        let (spec, mut secrets) =
            crate::extract::split_secrets(deserializer, &["password", "pin"])?;
        Ok(Self {
            spec,
            password: secrets.remove("password"),
            pin: secrets.remove("pin"),
        })
    }
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// Body of `PUT .../password`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    /// The new panel password (V2).
    pub password: String,
}

/// Body of `PUT .../pin`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPin {
    /// The new agent PIN (V1).
    pub pin: String,
}

pub(crate) async fn tenant_salt(app: &AppState, tenant: TenantId) -> Result<Vec<u8>, Problem> {
    app.with_tenant(tenant, |t| {
        crate::access::hex_decode(&t.info().fingerprint_salt_hex).ok_or_else(|| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "tenant salt is not hex",
            )
        })
    })
    .await
}

/// Validates (V2) and hashes a password off the async workers.
pub(crate) async fn hash_password(
    password: String,
    roles: BTreeSet<Role>,
    salt: Vec<u8>,
) -> Result<PasswordHash, Problem> {
    validate_panel_password(&password, &roles)?;
    let user_salt = random_bytes::<16>();
    tokio::task::spawn_blocking(move || hash_panel_password(&password, &user_salt, &salt))
        .await
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()))
}

async fn hash_pin(pin: String, salt: Vec<u8>) -> Result<String, Problem> {
    validate_pin(&pin)?;
    tokio::task::spawn_blocking(move || pin_fingerprint(&pin, &salt))
        .await
        .map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()))
}

/// Users the caller may see (scoped supervisors see their branches/groups;
/// agents and PBX users see only themselves).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users", tag = "users", params(("tenant" = u64, Path)),
    responses((status = 200, body = Vec<UserView>)), security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Id(tenant): Id<TenantId>,
) -> Result<Json<Vec<UserView>>, Problem> {
    let everyone = caller.may_list(tenant, Area::Users);
    if !everyone && caller.tenant() != Some(tenant) {
        return Err(Problem::not_found("tenant"));
    }
    app.with_tenant(tenant, |t| {
        Ok(Json(
            t.users()
                .filter(|u| {
                    if everyone {
                        caller.sees_user(u)
                    } else {
                        caller.user_id() == Some(u.id)
                    }
                })
                .map(UserView::from)
                .collect(),
        ))
    })
    .await
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/users", tag = "users", params(("tenant" = u64, Path)),
    request_body = NewUser, responses((status = 201, body = Created)), security(("bearer" = [])))]
pub async fn create(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(body): Body<NewUser>,
) -> Result<(StatusCode, Json<Created>), Problem> {
    caller.require(tenant, Area::Users, Mode::Write)?;
    body.spec.validate()?;
    let salt = tenant_salt(&app, tenant).await?;
    let password = match body.password {
        Some(p) => Some(hash_password(p, body.spec.roles.clone(), salt.clone()).await?),
        None => None,
    };
    let pin_fingerprint = match body.pin {
        Some(pin) => Some(hash_pin(pin, salt).await?),
        None => None,
    };
    let command = Command::CreateUser {
        tenant,
        spec: body.spec,
        password,
        pin_fingerprint,
    };
    Ok(created(created_id(
        &app.execute(&caller, &headers, command).await?,
    )?))
}

async fn visible_user(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    user: UserId,
) -> Result<UserView, Problem> {
    app.with_tenant(tenant, |t| {
        t.find_user(user)
            .filter(|u| caller.sees_user(u))
            .map(UserView::from)
            .ok_or_else(|| Problem::not_found("user"))
    })
    .await
}

/// One user.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users/{user}", tag = "users",
    params(("tenant" = u64, Path), ("user" = u64, Path)), responses((status = 200, body = UserView)),
    security(("bearer" = [])))]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Id((tenant, user)): Id<(TenantId, UserId)>,
) -> Result<Json<UserView>, Problem> {
    caller.require_for_user(tenant, Area::Users, Mode::Read, user)?;
    visible_user(&app, &caller, tenant, user).await.map(Json)
}

/// Replaces a user's settings.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/users/{user}", tag = "users", request_body = UserSpec,
    params(("tenant" = u64, Path), ("user" = u64, Path)), responses((status = 200, body = UserView)),
    security(("bearer" = [])))]
pub async fn update(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id((tenant, user)): Id<(TenantId, UserId)>,
    Body(spec): Body<UserSpec>,
) -> Result<Json<UserView>, Problem> {
    caller.require(tenant, Area::Users, Mode::Write)?;
    visible_user(&app, &caller, tenant, user).await?;
    app.execute(
        &caller,
        &headers,
        Command::UpdateUser { tenant, user, spec },
    )
    .await?;
    visible_user(&app, &caller, tenant, user).await.map(Json)
}

/// Deletes a user: its seats return to the pool, its session ends.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/users/{user}", tag = "users",
    params(("tenant" = u64, Path), ("user" = u64, Path)), responses((status = 204, description = "Deleted")),
    security(("bearer" = [])))]
pub async fn delete(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id((tenant, user)): Id<(TenantId, UserId)>,
) -> Result<StatusCode, Problem> {
    caller.require(tenant, Area::Users, Mode::Write)?;
    visible_user(&app, &caller, tenant, user).await?;
    app.execute(&caller, &headers, Command::DeleteUser { tenant, user })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a user's panel password (V2). A user may set its own.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/users/{user}/password", tag = "users",
    request_body = SetPassword, params(("tenant" = u64, Path), ("user" = u64, Path)),
    responses((status = 204, description = "Set")), security(("bearer" = [])))]
pub async fn set_password(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id((tenant, user)): Id<(TenantId, UserId)>,
    Body(body): Body<SetPassword>,
) -> Result<StatusCode, Problem> {
    if caller.user_id() != Some(user) || caller.tenant() != Some(tenant) {
        caller.require(tenant, Area::Users, Mode::Write)?;
    }
    let roles = visible_user(&app, &caller, tenant, user).await?.spec.roles;
    let password = hash_password(body.password, roles, tenant_salt(&app, tenant).await?).await?;
    app.execute(
        &caller,
        &headers,
        Command::SetUserPassword {
            tenant,
            user,
            password,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a user's agent PIN (V1). A user may set its own.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/users/{user}/pin", tag = "users",
    request_body = SetPin, params(("tenant" = u64, Path), ("user" = u64, Path)),
    responses((status = 204, description = "Set")), security(("bearer" = [])))]
pub async fn set_pin(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id((tenant, user)): Id<(TenantId, UserId)>,
    Body(body): Body<SetPin>,
) -> Result<StatusCode, Problem> {
    if caller.user_id() != Some(user) || caller.tenant() != Some(tenant) {
        caller.require(tenant, Area::Users, Mode::Write)?;
    }
    visible_user(&app, &caller, tenant, user).await?;
    let pin_fingerprint = hash_pin(body.pin, tenant_salt(&app, tenant).await?).await?;
    app.execute(
        &caller,
        &headers,
        Command::SetUserPin {
            tenant,
            user,
            pin_fingerprint,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

impl std::fmt::Debug for SetPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetPassword(..)")
    }
}

impl std::fmt::Debug for SetPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetPin(..)")
    }
}
