//! The network control API (HTTP + JSON, axum) for relay-only nodes. Every route is a thin
//! translation to the in-process [`Control`] handle. Refusals are RFC 9457 problem documents
//! (`application/problem+json`) carrying the stable refusal code; malformed bodies are
//! refused the same way with `BAD_REQUEST`.
//!
//! Routes (all under `/media/v1`):
//! - `POST /sessions` `{session_id}` -> 201 `{session_id}`
//! - `GET /sessions/{id}` -> legs, statistics, counters, recording, events
//! - `DELETE /sessions/{id}` -> released ports
//! - `PUT /sessions/{id}/legs/{leg}` `{remote_sdp?}` -> `{local_sdp, rtp_port, rtcp_port}`;
//!   with `Content-Type: application/sdp`, the bare remote SDP in and the local SDP out
//! - `GET /sessions/{id}/legs/{leg}/local-sdp` -> `application/sdp`
//! - `POST /sessions/{id}/legs/{leg}/play` `{prompt|music_on_hold|announcement}`; `DELETE` stops
//! - `POST /sessions/{id}/legs/{leg}/dtmf` `{digits, duration_ms?}`
//! - `POST /sessions/{id}/recording` `{action: start|pause|resume|stop, by}`
//! - `GET /load` -> sessions, packets/s, CPU seconds, pool, counters

use super::api::{
    CreateSessionRequest, DtmfRequest, PlayRequest, Problem, RecordingRequest, SetLegRequest,
};
use super::control::{Control, ControlError};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;

/// Largest request body accepted (an SDP is a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Media type of a bare SDP body.
const SDP_CONTENT_TYPE: &str = "application/sdp";

/// A refusal or failure, sent as a problem document.
#[derive(Debug)]
pub struct ApiError(pub Problem);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.0).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> Self {
        let problem = match &error {
            ControlError::Refused(refusal) => Problem::from_refusal(refusal),
            ControlError::RelayStopped => Problem::new(503, "RELAY_STOPPED", error.to_string()),
            ControlError::PortUnavailable { .. } => {
                Problem::new(503, "PORT_UNAVAILABLE", error.to_string())
            }
            ControlError::RecordingFailed(_) => {
                Problem::new(500, "RECORDING_FAILED", error.to_string())
            }
        };
        ApiError(problem)
    }
}

type ApiResult<T> = Result<T, ApiError>;

fn parse<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError(Problem::new(400, "BAD_REQUEST", error.to_string())))
}

/// The router, serving `control`.
pub fn router(control: Control) -> Router {
    Router::new()
        .route("/media/v1/sessions", post(create_session))
        .route(
            "/media/v1/sessions/{id}",
            get(session_view).delete(remove_session),
        )
        .route("/media/v1/sessions/{id}/legs/{leg}", put(set_leg))
        .route(
            "/media/v1/sessions/{id}/legs/{leg}/local-sdp",
            get(local_sdp),
        )
        .route(
            "/media/v1/sessions/{id}/legs/{leg}/play",
            post(play).delete(stop_play),
        )
        .route("/media/v1/sessions/{id}/legs/{leg}/dtmf", post(send_dtmf))
        .route("/media/v1/sessions/{id}/recording", post(recording))
        .route("/media/v1/load", get(load))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(control)
}

async fn not_found() -> ApiError {
    ApiError(Problem::new(404, "NOT_FOUND", "no such route".to_string()))
}

async fn create_session(State(control): State<Control>, body: Bytes) -> ApiResult<Response> {
    let request: CreateSessionRequest = parse(&body)?;
    let created = control.create_session(&request.session_id).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn session_view(
    State(control): State<Control>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(control.session(&id).await?).into_response())
}

async fn remove_session(
    State(control): State<Control>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(Json(control.remove_session(&id).await?).into_response())
}

async fn set_leg(
    State(control): State<Control>,
    Path((id, leg)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    // `application/sdp` in, `application/sdp` out (the ports are in the SDP); otherwise JSON.
    let raw_sdp = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(SDP_CONTENT_TYPE));
    if raw_sdp {
        let sdp = String::from_utf8(body.to_vec()).map_err(|_| {
            ApiError(Problem::new(
                400,
                "BAD_REQUEST",
                "SDP is not UTF-8".to_string(),
            ))
        })?;
        let ready = control.set_leg(&id, &leg, Some(sdp)).await?;
        return Ok(([(header::CONTENT_TYPE, SDP_CONTENT_TYPE)], ready.local_sdp).into_response());
    }
    let request: SetLegRequest = if body.is_empty() {
        SetLegRequest::default()
    } else {
        parse(&body)?
    };
    Ok(Json(control.set_leg(&id, &leg, request.remote_sdp).await?).into_response())
}

async fn local_sdp(
    State(control): State<Control>,
    Path((id, leg)): Path<(String, String)>,
) -> ApiResult<Response> {
    let sdp = control.local_sdp(&id, &leg).await?;
    Ok(([(header::CONTENT_TYPE, SDP_CONTENT_TYPE)], sdp).into_response())
}

async fn play(
    State(control): State<Control>,
    Path((id, leg)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let request: PlayRequest = parse(&body)?;
    control.play(&id, &leg, request).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn stop_play(
    State(control): State<Control>,
    Path((id, leg)): Path<(String, String)>,
) -> ApiResult<Response> {
    let was_playing = control.stop_play(&id, &leg).await?;
    Ok(Json(serde_json::json!({ "was_playing": was_playing })).into_response())
}

async fn send_dtmf(
    State(control): State<Control>,
    Path((id, leg)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let request: DtmfRequest = parse(&body)?;
    control.send_dtmf(&id, &leg, request).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn recording(
    State(control): State<Control>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let request: RecordingRequest = parse(&body)?;
    let status = control.recording(&id, request.action, &request.by).await?;
    Ok(Json(status).into_response())
}

async fn load(State(control): State<Control>) -> ApiResult<Response> {
    Ok(Json(control.load().await?).into_response())
}
