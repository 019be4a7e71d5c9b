//! What every handler shares: the consensus handle over the ledger, the
//! clock, the metrics registry, the late-bound views of the node (its SIP
//! edge's registrations, its history store).

use crate::http_metrics::HttpMetrics;
use carillon_actors::ledger::Ledger;
use carillon_consensus::{Clock, Consensus};
use std::sync::Arc;

/// Shared handler state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The replicated ledger.
    pub consensus: Consensus<Ledger>,
    /// Wall-clock time for token expiry.
    pub clock: Arc<dyn Clock>,
    /// The registry `/metrics` exposes.
    pub registry: prometheus::Registry,
    /// HTTP request metrics.
    pub http_metrics: Arc<HttpMetrics>,
    /// Registrations from this node's SIP edge (D7).
    pub presence: Arc<dyn crate::presence::Presence>,
    /// The login throttle of this node (`crate::throttle`).
    pub throttle: Arc<std::sync::Mutex<crate::throttle::Throttle>>,
    /// The throttle of bad bearer tokens per source (`crate::access`).
    pub bearer_throttle: Arc<std::sync::Mutex<crate::throttle::Throttle>>,
    /// The throttle of password reset requests per (login, source).
    pub reset_throttle: Arc<std::sync::Mutex<crate::throttle::Throttle>>,
    /// Where outgoing e-mail goes.
    pub mailer: Arc<dyn crate::mailer::Mailer>,
    /// Reset links: lifetime and base URL.
    pub reset: crate::mailer::ResetSettings,
    /// Its metrics.
    pub throttle_metrics: Arc<crate::http_metrics::ThrottleMetrics>,
    /// This node's history store (H1), once the node has opened it.
    pub history: Option<Arc<dyn carillon_actors::history::HistoryStore>>,
}
