//! Activity records (H1, C4) from this node's history store: a time range
//! with filters, newest first, in pages joined by an opaque cursor; and one
//! record by id. The store is filled from the ledger's outbox by every
//! node's writer, so a record appears shortly after its activity closes
//! (not in the same instant: reads here are not linearizable).

use crate::access::{Area, Caller, Mode};
use crate::extract::{Id, Params};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use carillon_actors::history::{
    parse_direction, ActivityQuery, Cursor, HistoryError, HistoryStore, OutcomeKind, Visibility,
    DEFAULT_LIMIT, MAX_LIMIT,
};
use carillon_actors::model::activity::ActivityRecord;
use carillon_actors::model::{QueueId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// The query of `GET .../activities`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityParams {
    /// Earliest start (`started_at_ms`), ms since the epoch, inclusive.
    /// Default: the beginning.
    pub from_ms: Option<u64>,
    /// Latest start, ms since the epoch, exclusive. Default: no end.
    pub to_ms: Option<u64>,
    /// Only this queue's records.
    pub queue: Option<u64>,
    /// Only the records this agent took.
    pub agent: Option<u64>,
    /// `inbound`, `outbound` or `internal`.
    pub direction: Option<String>,
    /// `answered`, `abandoned`, `refused`, `lost`, `feature_code` or `exited`.
    pub outcome: Option<String>,
    /// Records per page, 1 to 500. Default: 50.
    pub limit: Option<u64>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

/// One page of activity records, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityPageBody {
    /// The records, by start time descending (then id descending).
    pub items: Vec<ActivityRecord>,
    /// Pass as `cursor` for the next (older) page; `null` when there is
    /// nothing more. A page may hold fewer than `limit` records while
    /// `next` is not `null` (a page examines at most 5,000 records).
    pub next: Option<String>,
}

fn bad(code: &str, detail: String) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, code, format!("H1: {detail}")).with_rule("H1")
}

impl ActivityParams {
    /// The store's query (visibility aside), or the rule a parameter breaks.
    fn query(self) -> Result<ActivityQuery, Problem> {
        let (from_ms, to_ms, limit, cursor) = page_window(
            self.from_ms,
            self.to_ms,
            self.limit,
            self.cursor.as_deref(),
            bad,
        )?;
        let direction = match self.direction.as_deref() {
            None => None,
            Some(name) => Some(parse_direction(name).ok_or_else(|| {
                bad(
                    "DIRECTION_UNKNOWN",
                    format!("direction is inbound, outbound or internal, not {name:?}"),
                )
            })?),
        };
        let outcome = match self.outcome.as_deref() {
            None => None,
            Some(name) => Some(OutcomeKind::parse(name).ok_or_else(|| {
                let names: Vec<&str> = OutcomeKind::ALL.iter().map(|(_, n)| *n).collect();
                bad(
                    "OUTCOME_UNKNOWN",
                    format!("outcome is one of {}, not {name:?}", names.join(", ")),
                )
            })?),
        };
        Ok(ActivityQuery {
            from_ms,
            to_ms,
            queue: self.queue.map(QueueId),
            agent: self.agent.map(UserId),
            direction,
            outcome,
            visibility: Visibility::all(),
            limit,
            cursor,
        })
    }
}

/// The time range, page size and cursor of a history or audit read, or
/// the rule a parameter breaks (as `bad` words it).
pub(crate) fn page_window(
    from_ms: Option<u64>,
    to_ms: Option<u64>,
    limit: Option<u64>,
    cursor: Option<&str>,
    bad: impl Fn(&str, String) -> Problem,
) -> Result<(u64, u64, usize, Option<Cursor>), Problem> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT as u64);
    if limit == 0 || limit > MAX_LIMIT as u64 {
        return Err(bad(
            "LIMIT_OUT_OF_RANGE",
            format!("limit is 1 to {MAX_LIMIT}, not {limit}"),
        ));
    }
    let (from_ms, to_ms) = (from_ms.unwrap_or(0), to_ms.unwrap_or(u64::MAX));
    if from_ms > to_ms {
        return Err(bad(
            "TIME_RANGE_INVALID",
            format!("from_ms ({from_ms}) is after to_ms ({to_ms})"),
        ));
    }
    let cursor = match cursor {
        None => None,
        Some(text) => Some(Cursor::parse(text).ok_or_else(|| {
            bad(
                "CURSOR_INVALID",
                "cursor is not the `next` of a page this API served".into(),
            )
        })?),
    };
    let limit = usize::try_from(limit).unwrap_or(MAX_LIMIT);
    Ok((from_ms, to_ms, limit, cursor))
}

impl From<HistoryError> for Problem {
    fn from(error: HistoryError) -> Self {
        match error {
            HistoryError::Storage(m) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "HISTORY_UNAVAILABLE",
                format!("this node's history store did not answer: {m}"),
            ),
            codec @ HistoryError::Codec { .. } => Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                codec.to_string(),
            ),
        }
    }
}

impl AppState {
    /// Checks that the caller may read `tenant`'s history and says what it
    /// sees there; with this node's store.
    async fn history_for(
        &self,
        caller: &Caller,
        tenant: TenantId,
    ) -> Result<(Arc<dyn HistoryStore>, Visibility), Problem> {
        caller.require(tenant, Area::History, Mode::Read)?;
        let store = self.history.clone().ok_or_else(|| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "HISTORY_UNAVAILABLE",
                "this node keeps no history store",
            )
        })?;
        let visibility = self
            .with_tenant(tenant, |t| Ok(caller.history_visibility(t)))
            .await?;
        Ok((store, visibility))
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HistoryError> + Send + 'static,
) -> Result<T, Problem> {
    let result = tokio::task::spawn_blocking(f).await.map_err(|e| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            format!("the history read failed: {e}"),
        )
    })?;
    Ok(result?)
}

/// Activity records whose start lies in `[from_ms, to_ms)`, newest first,
/// filtered, in pages (H1). Agents see the records they took; supervisors
/// and team administrators those of their queues and agents.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/activities", tag = "history",
    params(("tenant" = u64, Path), ActivityParams),
    responses((status = 200, body = ActivityPageBody)), security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    caller: Caller,
    Id(tenant): Id<TenantId>,
    Params(params): Params<ActivityParams>,
) -> Result<Json<ActivityPageBody>, Problem> {
    let mut query = params.query()?;
    let (store, visibility) = app.history_for(&caller, tenant).await?;
    query.visibility = visibility;
    let page = blocking(move || store.activities(tenant, &query)).await?;
    Ok(Json(ActivityPageBody {
        items: page.items,
        next: page.next.map(|c| c.encode()),
    }))
}

/// One activity record (404 `ACTIVITY_NOT_FOUND` when this node's store
/// has none by that id that the caller may see).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/activities/{activity}", tag = "history",
    params(("tenant" = u64, Path), ("activity" = String, Path)),
    responses((status = 200, body = ActivityRecord)), security(("bearer" = [])))]
pub async fn get(
    State(app): State<AppState>,
    caller: Caller,
    Id((tenant, activity)): Id<(TenantId, String)>,
) -> Result<Json<ActivityRecord>, Problem> {
    let (store, visibility) = app.history_for(&caller, tenant).await?;
    let id = activity.clone();
    let record = blocking(move || store.activity(tenant, &id)).await?;
    match record {
        Some(record) if visibility.allows(&record) => Ok(Json(record)),
        _ => Err(Problem::new(
            StatusCode::NOT_FOUND,
            "ACTIVITY_NOT_FOUND",
            format!("H1: no activity record {activity:?} in this tenant's history"),
        )
        .with_rule("H1")),
    }
}
