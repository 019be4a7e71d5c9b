//! RFC 9457 problem details: every error the API returns is
//! `application/problem+json` with a stable machine-readable `code`.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An API error, served as an RFC 9457 problem+json body (see [`ProblemBody`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// HTTP status code.
    pub status: u16,
    /// A stable code, for example `PIN_SEQUENTIAL` or `MALFORMED_JSON`.
    pub code: String,
    /// A human sentence about this occurrence, naming the rule it broke.
    pub detail: String,
    /// The requirement id the rule comes from (for example `V1`), when there is one.
    pub rule: Option<&'static str>,
    /// Seconds before a retry may succeed (`Retry-After`), for 429 and 503.
    pub retry_after_s: Option<u64>,
}

/// The problem+json body as served.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemBody<'a> {
    /// A URI reference naming the problem type (`urn:carillon:problem:<code>`).
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the problem type.
    pub title: &'a str,
    /// HTTP status code.
    pub status: u16,
    /// A stable code, for example `PIN_SEQUENTIAL` or `MALFORMED_JSON`.
    pub code: &'a str,
    /// A human sentence about this occurrence, naming the rule it broke.
    pub detail: &'a str,
    /// The requirement id the rule comes from (for example `V1`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'a str>,
}

impl Problem {
    /// A problem with `status`, a stable `code` and a `detail` sentence.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            status: status.as_u16(),
            code: code.to_string(),
            detail: detail.into(),
            rule: None,
            retry_after_s: None,
        }
    }

    /// The same problem, with `Retry-After` (whole seconds, rounded up).
    pub fn retry_after_ms(mut self, ms: u64) -> Self {
        self.retry_after_s = Some(ms.div_ceil(1000).max(1));
        self
    }

    /// The same problem, naming the requirement id it enforces.
    pub fn with_rule(mut self, rule: &'static str) -> Self {
        self.rule = Some(rule);
        self
    }

    /// 404 `NOT_FOUND`: also what a caller gets for another tenant's object.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no such {what}"),
        )
    }

    /// 401 `UNAUTHENTICATED`.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", detail)
    }

    /// 403 `FORBIDDEN`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", detail)
    }

    /// 503 `CLUSTER_UNAVAILABLE`: no quorum or leader in time; safe to retry
    /// with the same `Idempotency-Key`.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "CLUSTER_UNAVAILABLE",
            detail,
        )
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.detail)
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ProblemBody {
            problem_type: format!("urn:carillon:problem:{}", self.code.to_ascii_lowercase()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: self.status,
            code: &self.code,
            detail: &self.detail,
            rule: self.rule,
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response();
        if let Some(seconds) = self.retry_after_s {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        response
    }
}

impl From<carillon_consensus::ConsensusError> for Problem {
    fn from(error: carillon_consensus::ConsensusError) -> Self {
        use carillon_consensus::ConsensusError as E;
        match error {
            E::Unavailable(m) => Self::unavailable(format!(
                "the cluster did not answer in time ({m}); retry with the same Idempotency-Key"
            )),
            E::Refused(m) => Self::new(StatusCode::CONFLICT, "CLUSTER_REFUSED", m),
            other => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                other.to_string(),
            ),
        }
    }
}
