//! Agent sessions (A1, A4, A5): login/logout per terminal, check-in/out,
//! pause/unpause, activities. Agents act on their own session; supervisors
//! force states of agents in their scope (S2).

use crate::access::{Area, Caller, Mode};
use crate::extract::{Body, Id};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use carillon_actors::ledger::{AgentSession, AgentStatus, Command, Outcome};
use carillon_actors::model::user::Binding;
use carillon_actors::model::{DeviceId, PauseTypeId, QueueId, TenantId, UserId};
use serde::Deserialize;
use std::net::IpAddr;
use utoipa::ToSchema;

/// A terminal (panel tab, phone, app).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Terminal {
    /// Terminal id, 1..=128 characters.
    pub terminal: String,
}

/// A queue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueRef {
    /// The queue.
    pub queue: QueueId,
}

/// A pause type.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseRef {
    /// The pause type.
    pub pause_type: PauseTypeId,
}

/// An activity.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityRef {
    /// Activity id.
    pub activity: String,
}

/// A disposition code (C4).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Disposition {
    /// One of the queue's `disposition_codes`.
    pub code: String,
}

/// The end of after-call work (A4).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndWrapUp {
    /// A disposition code to record with it.
    #[serde(default)]
    pub disposition: Option<String>,
}

/// Sessions of the agents the caller sees.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/sessions", tag = "sessions", params(("tenant" = u64, Path)),
    responses((status = 200, body = Vec<AgentSession>)), security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Id(tenant): Id<TenantId>,
) -> Result<Json<Vec<AgentSession>>, Problem> {
    app.read_tenant(&caller, tenant, Area::Sessions, |t| {
        Ok(Json(
            t.sessions()
                .filter(|s| t.find_user(s.user).is_some_and(|u| caller.sees_user(u)))
                .cloned()
                .collect(),
        ))
    })
    .await
}

async fn check(
    app: &AppState,
    caller: &Caller,
    tenant: TenantId,
    user: UserId,
    mode: Mode,
) -> Result<(), Problem> {
    caller.require_for_user(tenant, Area::Sessions, mode, user)?;
    app.with_tenant(tenant, |t| match t.find_user(user) {
        Some(u) if caller.sees_user(u) => Ok(()),
        _ => Err(Problem::not_found("user")),
    })
    .await
}

/// One agent's session (404 when logged out).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users/{user}/session", tag = "sessions",
    params(("tenant" = u64, Path), ("user" = u64, Path)), responses((status = 200, body = AgentSession)),
    security(("bearer" = [])))]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Id((tenant, user)): Id<(TenantId, UserId)>,
) -> Result<Json<AgentSession>, Problem> {
    check(&app, &caller, tenant, user, Mode::Read).await?;
    app.with_tenant(tenant, |t| {
        t.session(user)
            .cloned()
            .map(Json)
            .ok_or_else(|| Problem::not_found("session"))
    })
    .await
}

/// One agent's A4 state as the ledger knows it, the same on every node:
/// disconnected (A8) as its actor recorded it, and the last change of its
/// session with who caused it (the agent, a supervisor, its phone, a rule).
/// Also for a logged-out agent; 404 for a user who is not an agent.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users/{user}/state", tag = "sessions",
    params(("tenant" = u64, Path), ("user" = u64, Path)), responses((status = 200, body = AgentStatus)),
    security(("bearer" = [])))]
pub async fn state(
    State(app): State<AppState>,
    caller: Caller,
    Id((tenant, user)): Id<(TenantId, UserId)>,
) -> Result<Json<AgentStatus>, Problem> {
    check(&app, &caller, tenant, user, Mode::Read).await?;
    app.with_tenant(tenant, |t| {
        t.agent_status(user)
            .map(Json)
            .ok_or_else(|| Problem::not_found("agent"))
    })
    .await
}

macro_rules! session_action {
    ($name:ident, $path:literal, $body:ty, $doc:literal, |$tenant:ident, $user:ident, $b:ident| $command:expr) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "sessions", request_body = $body,
            params(("tenant" = u64, Path), ("user" = u64, Path)), responses((status = 200, body = Outcome)),
            security(("bearer" = [])))]
        pub async fn $name(
            State(app): State<AppState>,
            caller: Caller,
            headers: HeaderMap,
            Id(($tenant, $user)): Id<(TenantId, UserId)>,
            Body($b): Body<$body>,
        ) -> Result<Json<Outcome>, Problem> {
            check(&app, &caller, $tenant, $user, Mode::Write).await?;
            Ok(Json(app.execute(&caller, &headers, $command).await?))
        }
    };
}

/// Logs an agent in from a terminal (A1). An agent whose binding is
/// self-adapting (D4) and holds no line is bound to the tenant's free phone
/// registered (on this node) from the address the request came from.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/users/{user}/session/login", tag = "sessions",
    request_body = Terminal, params(("tenant" = u64, Path), ("user" = u64, Path)),
    responses((status = 200, body = Outcome)), security(("bearer" = [])))]
pub async fn login(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ClientIp(client): ClientIp,
    Id((tenant, user)): Id<(TenantId, UserId)>,
    Body(b): Body<Terminal>,
) -> Result<Json<Outcome>, Problem> {
    check(&app, &caller, tenant, user, Mode::Write).await?;
    let command = Command::Login {
        tenant,
        user,
        terminal: b.terminal,
    };
    let outcome = app.execute(&caller, &headers, command).await?;
    if let Some(ip) = client {
        self_adapt(&app, &caller, tenant, user, ip).await;
    }
    Ok(Json(outcome))
}

/// D4 self-adapting: binds `user` to a free registering device of the
/// tenant whose registration came from `ip`. Nothing to find, or a line
/// taken meanwhile, leaves the agent unbound (its own phones ring).
async fn self_adapt(app: &AppState, caller: &Caller, tenant: TenantId, user: UserId, ip: IpAddr) {
    let free = app
        .with_tenant(tenant, |t| {
            let adapting = t
                .find_user(user)
                .is_some_and(|u| u.spec.binding == Binding::SelfAdapting);
            if !adapting || t.bound_device(user).is_some() {
                return Ok(Vec::new());
            }
            Ok(t.devices()
                .filter(|d| d.bound_to.is_none() && d.spec.kind.registers())
                .map(|d| d.id)
                .collect::<Vec<_>>())
        })
        .await
        .unwrap_or_default();
    if free.is_empty() {
        return;
    }
    let registrations = app.presence.registrations(tenant);
    let from_ip = |device: &DeviceId| {
        registrations.get(device).is_some_and(|r| {
            r.bindings.iter().any(|b| {
                b.source
                    .parse::<std::net::SocketAddr>()
                    .is_ok_and(|s| s.ip() == ip)
            })
        })
    };
    let Some(device) = free.into_iter().find(from_ip) else {
        tracing::info!(tenant = tenant.0, user = user.0, %ip, "D4: no free phone registered from the agent's address");
        return;
    };
    let bind = Command::BindDevice {
        tenant,
        user,
        device,
    };
    if let Err(p) = app.execute(caller, &HeaderMap::new(), bind).await {
        tracing::info!(tenant = tenant.0, user = user.0, device = device.0, problem = ?p, "D4: the self-adapting binding was refused");
    }
}

/// The address a request came from, when the server knows it.
#[derive(Debug)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}
session_action!(
    logout,
    "/api/v1/tenants/{tenant}/users/{user}/session/logout",
    Terminal,
    "Logs a terminal out; the last one checks the agent out (after the current activity, A5).",
    |tenant, user, b| Command::Logout {
        tenant,
        user,
        terminal: b.terminal
    }
);
session_action!(
    check_in,
    "/api/v1/tenants/{tenant}/users/{user}/session/check-in",
    QueueRef,
    "Checks the agent in to a queue (A1).",
    |tenant, user, b| Command::CheckIn {
        tenant,
        user,
        queue: b.queue
    }
);
session_action!(
    check_out,
    "/api/v1/tenants/{tenant}/users/{user}/session/check-out",
    QueueRef,
    "Checks the agent out of a queue (A1).",
    |tenant, user, b| Command::CheckOut {
        tenant,
        user,
        queue: b.queue
    }
);
session_action!(
    pause,
    "/api/v1/tenants/{tenant}/users/{user}/session/pause",
    PauseRef,
    "Pauses the agent with a type; during an activity, after it (A5).",
    |tenant, user, b| Command::Pause {
        tenant,
        user,
        pause_type: b.pause_type
    }
);
session_action!(
    begin_activity,
    "/api/v1/tenants/{tenant}/users/{user}/session/activities",
    ActivityRef,
    "Records that an activity began (A4).",
    |tenant, user, b| Command::BeginActivity {
        tenant,
        user,
        activity: b.activity
    }
);
session_action!(
    end_activity,
    "/api/v1/tenants/{tenant}/users/{user}/session/activities/end",
    ActivityRef,
    "Records that an activity ended; pending pause or logout takes effect (A5).",
    |tenant, user, b| Command::EndActivity {
        tenant,
        user,
        activity: b.activity
    }
);

session_action!(
    set_disposition,
    "/api/v1/tenants/{tenant}/users/{user}/session/disposition",
    Disposition,
    "Chooses the disposition of the call the agent is wrapping up (C4): one of the call's queue's codes.",
    |tenant, user, b| Command::SetDisposition {
        tenant,
        user,
        code: b.code
    }
);
session_action!(
    end_wrap_up,
    "/api/v1/tenants/{tenant}/users/{user}/session/wrap-up/end",
    EndWrapUp,
    "Ends the agent's after-call work now (A4), with a disposition if given; the activity's record is written.",
    |tenant, user, b| Command::EndWrapUp {
        tenant,
        user,
        disposition: b.disposition
    }
);

/// Ends the agent's pause (or cancels a pending one).
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/users/{user}/session/unpause", tag = "sessions",
    params(("tenant" = u64, Path), ("user" = u64, Path)), responses((status = 200, body = Outcome)),
    security(("bearer" = [])))]
pub async fn unpause(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id((tenant, user)): Id<(TenantId, UserId)>,
) -> Result<Json<Outcome>, Problem> {
    check(&app, &caller, tenant, user, Mode::Write).await?;
    Ok(Json(
        app.execute(&caller, &headers, Command::Unpause { tenant, user })
            .await?,
    ))
}
