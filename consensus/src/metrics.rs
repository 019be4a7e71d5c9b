//! Prometheus metrics of the consensus service.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// The consensus metrics, registered once per node.
#[derive(Debug, Clone)]
pub struct ConsensusMetrics {
    pub(crate) term: IntGauge,
    pub(crate) commit_index: IntGauge,
    pub(crate) applied_index: IntGauge,
    pub(crate) last_log_index: IntGauge,
    pub(crate) is_leader: IntGauge,
    pub(crate) members: IntGauge,
    pub(crate) snapshots_installed: IntGauge,
    pub(crate) requests: IntCounterVec,
    pub(crate) request_seconds: HistogramVec,
}

fn gauge(registry: &Registry, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
    let gauge = IntGauge::new(name, help)?;
    registry.register(Box::new(gauge.clone()))?;
    Ok(gauge)
}

impl ConsensusMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "carillon_raft_requests_total",
                "Client requests to the replicated state machine, by kind and outcome.",
            ),
            &["kind", "outcome"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "carillon_raft_request_duration_seconds",
                "Time from submitting a client request to its answer, forwarding and retries included.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
            ]),
            &["kind"],
        )?;
        registry.register(Box::new(request_seconds.clone()))?;
        Ok(Self {
            term: gauge(registry, "carillon_raft_term", "Current Raft term.")?,
            commit_index: gauge(
                registry,
                "carillon_raft_commit_index",
                "Highest committed log index known.",
            )?,
            applied_index: gauge(
                registry,
                "carillon_raft_applied_index",
                "Highest applied log index.",
            )?,
            last_log_index: gauge(
                registry,
                "carillon_raft_last_log_index",
                "Highest log index in the local log.",
            )?,
            is_leader: gauge(
                registry,
                "carillon_raft_is_leader",
                "1 if this node is the leader.",
            )?,
            members: gauge(
                registry,
                "carillon_raft_members",
                "Members (voters and learners) in the membership.",
            )?,
            snapshots_installed: gauge(
                registry,
                "carillon_raft_snapshots_installed",
                "Snapshots installed from a leader since the process started.",
            )?,
            requests,
            request_seconds,
        })
    }
}
