//! The audit trail from this node's history store: `GET
//! /api/v1/tenants/{tenant}/audit` for the tenant's system administrators
//! (and operators), `GET /api/v1/audit` for the platform's log (operators),
//! and the tenant's retention period. Records reach the store shortly after
//! the change they describe (the history writer drains the ledger's logs).

use crate::access::{Area, Caller, Mode};
use crate::extract::{Body, Id, Params};
use crate::problem::Problem;
use crate::routes::history::{blocking, page_window};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use carillon_actors::history::{AuditQuery, HistoryStore};
use carillon_actors::ledger::{AuditRecord, Command, PLATFORM};
use carillon_actors::model::agent_status::Author;
use carillon_actors::model::{DeviceId, OperatorId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// The query of `GET .../audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Earliest, ms since the epoch, inclusive.
    pub from_ms: Option<u64>,
    /// Latest, ms since the epoch, exclusive.
    pub to_ms: Option<u64>,
    /// Only this action (`create_user`, `set_user_password`, `open_login_session`, ...).
    pub action: Option<String>,
    /// Only this actor: `user:ID`, `operator:ID`, `phone:ID` or `system`.
    pub actor: Option<String>,
    /// Only objects of this kind (`user`, `queue`, `session`, `lockout`, ...).
    pub object_kind: Option<String>,
    /// Only this object id (with `object_kind`).
    pub object_id: Option<String>,
    /// Records per page, 1 to 500. Default: 50.
    pub limit: Option<u64>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// One page of audit records, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPageBody {
    /// The records.
    pub items: Vec<AuditRecord>,
    /// Pass as `cursor` for the next (older) page; `null` at the end.
    pub next: Option<String>,
}

/// Body of `PUT .../audit/retention`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Days the tenant's audit records are kept, 1 to 3650.
    pub days: u32,
}

fn bad(code: &str, detail: String) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, code, detail)
}

fn actor(text: &str) -> Option<Author> {
    if text == "system" {
        return None;
    }
    let (kind, id) = text.split_once(':')?;
    let id: u64 = id.parse().ok()?;
    Some(match kind {
        "user" => Author::User { user: UserId(id) },
        "operator" => Author::Operator {
            operator: OperatorId(id),
        },
        "phone" => Author::Phone {
            device: DeviceId(id),
        },
        _ => return None,
    })
}

impl AuditParams {
    /// The store's query, or the rule a parameter breaks; and whether only
    /// the system's own records are asked for.
    fn query(self) -> Result<(AuditQuery, bool), Problem> {
        let (from_ms, to_ms, limit, cursor) = page_window(
            self.from_ms,
            self.to_ms,
            self.limit,
            self.cursor.as_deref(),
            bad,
        )?;
        let system = self.actor.as_deref() == Some("system");
        let actor = match self.actor.as_deref() {
            None | Some("system") => None,
            Some(text) => Some(actor(text).ok_or_else(|| {
                bad(
                    "ACTOR_INVALID",
                    format!("actor is user:ID, operator:ID, phone:ID or system, not {text:?}"),
                )
            })?),
        };
        if self.object_id.is_some() && self.object_kind.is_none() {
            return Err(bad(
                "OBJECT_KIND_REQUIRED",
                "object_id needs object_kind".into(),
            ));
        }
        Ok((
            AuditQuery {
                from_ms,
                to_ms,
                action: self.action,
                actor,
                object_kind: self.object_kind,
                object_id: self.object_id,
                limit,
                cursor,
            },
            system,
        ))
    }
}

async fn page(
    app: &AppState,
    log: TenantId,
    params: AuditParams,
) -> Result<AuditPageBody, Problem> {
    let (query, system_only) = params.query()?;
    let store: Arc<dyn HistoryStore> = app.history.clone().ok_or_else(|| {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "HISTORY_UNAVAILABLE",
            "this node keeps no history store",
        )
    })?;
    let page = blocking(move || store.audit(log, &query)).await?;
    let items = page
        .items
        .into_iter()
        .filter(|r| !system_only || matches!(r.actor, Author::System { .. }))
        .collect();
    Ok(AuditPageBody {
        items,
        next: page.next.map(|c| c.encode()),
    })
}

/// The tenant's audit trail, newest first, in pages: every administrative
/// change, login, logout and lockout (who, from where, when, what, before
/// and after; never a secret). System administrators and operators.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/audit", tag = "audit",
    params(("tenant" = u64, Path), AuditParams),
    responses((status = 200, body = AuditPageBody)), security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Id(tenant): Id<TenantId>,
    Params(params): Params<AuditParams>,
) -> Result<Json<AuditPageBody>, Problem> {
    caller.require(tenant, Area::Audit, Mode::Read)?;
    app.with_tenant(tenant, |_| Ok(())).await?;
    Ok(Json(page(&app, tenant, params).await?))
}

/// The platform's audit trail (operators, API tokens and sessions of
/// operators, cluster membership). Operators only.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    responses((status = 200, body = AuditPageBody)), security(("bearer" = [])))]
pub async fn list_platform(
    State(app): State<AppState>,
    caller: Caller,
    Params(params): Params<AuditParams>,
) -> Result<Json<AuditPageBody>, Problem> {
    caller.require_operator()?;
    Ok(Json(page(&app, PLATFORM, params).await?))
}

/// How long the tenant's audit records are kept.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/audit/retention", tag = "audit",
    params(("tenant" = u64, Path)), responses((status = 200, body = Retention)),
    security(("bearer" = [])))]
pub async fn retention(
    State(app): State<AppState>,
    caller: Caller,
    Id(tenant): Id<TenantId>,
) -> Result<Json<Retention>, Problem> {
    caller.require(tenant, Area::Audit, Mode::Read)?;
    app.with_tenant(tenant, |t| {
        Ok(Json(Retention {
            days: t.info().audit_retention_days,
        }))
    })
    .await
}

/// Sets how long the tenant's audit records are kept (1 to 3650 days);
/// older records are deleted from every node's store within the hour.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/audit/retention", tag = "audit",
    params(("tenant" = u64, Path)), request_body = Retention,
    responses((status = 200, body = Retention)), security(("bearer" = [])))]
pub async fn set_retention(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(tenant): Id<TenantId>,
    Body(body): Body<Retention>,
) -> Result<Json<Retention>, Problem> {
    caller.require(tenant, Area::Audit, Mode::Write)?;
    app.execute(
        &caller,
        &headers,
        Command::SetAuditRetention {
            tenant,
            days: body.days,
        },
    )
    .await?;
    Ok(Json(body))
}
