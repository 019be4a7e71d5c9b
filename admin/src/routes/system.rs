//! `/healthz`, `/readyz`, `/metrics` and the OpenAPI document.

use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// Liveness and readiness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// This node's id.
    pub node_id: u64,
    /// The leader this node knows of.
    pub leader: Option<u64>,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
pub async fn healthz(State(app): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        node_id: app.consensus.node_id(),
        leader: None,
    })
}

/// The node can serve: it knows a leader, the cluster is bootstrapped, and
/// it has applied everything the leader had committed when asked.
#[utoipa::path(get, path = "/readyz", tag = "system", responses((status = 200, body = Health), (status = 503, body = crate::problem::ProblemBody)))]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<Health>, Problem> {
    let status = app.consensus.status().await;
    let Some(leader) = status.leader else {
        return Err(Problem::unavailable("no leader is known"));
    };
    if app.consensus.read_local(|l| l.signing_key_hex().is_none()) {
        return Err(Problem::unavailable("the cluster is not bootstrapped yet"));
    }
    // A read barrier through the leader: ready means caught up with what
    // the cluster has committed, not just with what this node last knew.
    app.consensus
        .read(|_| ())
        .await
        .map_err(|e| Problem::unavailable(format!("not caught up with the leader: {e}")))?;
    if status.applied_index < status.commit_index {
        return Err(Problem::unavailable(format!(
            "catching up: applied {} of {} committed",
            status.applied_index, status.commit_index
        )));
    }
    Ok(Json(Health {
        status: "ok".into(),
        node_id: status.node_id,
        leader: Some(leader),
    }))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    app.consensus.refresh_metrics();
    let families = app.registry.gather();
    let mut text = String::new();
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&families, &mut text) {
        tracing::error!(error = %e, "encoding metrics");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}
