//! HTTP metrics: requests by route template, method and status, and their
//! durations. Labels are low-cardinality: the route template, never the path.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use std::sync::Arc;

/// The HTTP metrics of the admin API.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    seconds: HistogramVec,
}

impl HttpMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "carillon_http_requests_total",
                "Admin API requests by route template, method and status.",
            ),
            &["route", "method", "status"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        let seconds = HistogramVec::new(
            HistogramOpts::new(
                "carillon_http_request_duration_seconds",
                "Admin API request duration by route template and method.",
            )
            .buckets(vec![
                0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
            ]),
            &["route", "method"],
        )?;
        registry.register(Box::new(seconds.clone()))?;
        Ok(Self { requests, seconds })
    }
}

/// Middleware that counts and times every request.
pub async fn track(
    State(metrics): State<Arc<HttpMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().as_str().to_string();
    // The HTTP shell measures real elapsed time.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics
        .requests
        .with_label_values(&[&route, &method, &status])
        .inc();
    metrics
        .seconds
        .with_label_values(&[&route, &method])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// The login throttle's metrics.
#[derive(Debug, Clone)]
pub struct ThrottleMetrics {
    /// Keys held in the throttle's tables (bounded by their capacity).
    pub entries: prometheus::IntGauge,
    refusals: IntCounterVec,
    /// Logins locked by this node.
    pub lockouts: prometheus::IntCounter,
}

impl ThrottleMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let entries = prometheus::IntGauge::new(
            "carillon_login_throttle_entries",
            "Keys held in the login throttle's tables (pairs, sources, logins).",
        )?;
        registry.register(Box::new(entries.clone()))?;
        let refusals = IntCounterVec::new(
            Opts::new(
                "carillon_login_refusals_total",
                "Login attempts and bearer tokens refused before a check, by reason (throttled, locked, token_throttled).",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(refusals.clone()))?;
        let lockouts = prometheus::IntCounter::new(
            "carillon_login_lockouts_total",
            "Logins this node locked after too many failures.",
        )?;
        registry.register(Box::new(lockouts.clone()))?;
        Ok(Self {
            entries,
            refusals,
            lockouts,
        })
    }

    /// One attempt refused for `reason` (`throttled`, `locked`).
    pub fn refused(&self, reason: &str) {
        self.refusals.with_label_values(&[reason]).inc();
    }
}
