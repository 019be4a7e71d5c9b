//! Prometheus metrics of the SIP edge, read at scrape time from what the
//! edge task publishes (the edge itself never touches the registry).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};
use tokio::sync::watch;

use crate::sip_io::{EdgeSnapshot, ShellCounters};

/// The collector registered for the SIP edge.
#[derive(Debug)]
pub struct SipCollector {
    snapshot: watch::Receiver<EdgeSnapshot>,
    counters: Arc<ShellCounters>,
    descs: Vec<Desc>,
}

const COUNTERS: [(&str, &str); 12] = [
    (
        "carillon_sip_requests_total",
        "SIP requests received, retransmissions included.",
    ),
    (
        "carillon_sip_responses_received_total",
        "SIP responses received.",
    ),
    (
        "carillon_sip_parse_errors_total",
        "SIP messages that did not parse.",
    ),
    (
        "carillon_sip_registrations_total",
        "REGISTER requests with contacts that were accepted.",
    ),
    (
        "carillon_sip_auth_failures_total",
        "Digest verifications that failed and counted towards a ban.",
    ),
    (
        "carillon_sip_retransmissions_total",
        "Requests absorbed as retransmissions by a server transaction.",
    ),
    (
        "carillon_sip_keepalives_sent_total",
        "OPTIONS keepalives sent to registered contacts.",
    ),
    (
        "carillon_sip_keepalives_failed_total",
        "OPTIONS keepalives that got no answer.",
    ),
    (
        "carillon_sip_rate_limited_total",
        "Requests refused by the per-source rate limit.",
    ),
    (
        "carillon_sip_connections_accepted_total",
        "TCP and WebSocket connections accepted.",
    ),
    (
        "carillon_sip_connections_refused_total",
        "Stream connections refused at the connection limit.",
    ),
    (
        "carillon_sip_connections_cut_total",
        "Stream connections closed for idleness, slowness, size or framing.",
    ),
];

const GAUGES: [(&str, &str); 5] = [
    (
        "carillon_sip_bindings",
        "Registered contacts held by this node.",
    ),
    (
        "carillon_sip_banned_sources",
        "Source addresses banned now after authentication failures.",
    ),
    (
        "carillon_sip_server_transactions",
        "Server transactions alive.",
    ),
    (
        "carillon_sip_client_transactions",
        "Client transactions alive.",
    ),
    (
        "carillon_sip_connections_open",
        "TCP and WebSocket connections open.",
    ),
];

const SENT: (&str, &str) = (
    "carillon_sip_responses_sent_total",
    "Final SIP responses sent, by class.",
);

impl SipCollector {
    /// A collector over the edge's published counters.
    pub fn new(snapshot: watch::Receiver<EdgeSnapshot>, counters: Arc<ShellCounters>) -> Self {
        let mut descs = Vec::new();
        for (name, help) in COUNTERS.iter().chain(GAUGES.iter()) {
            if let Ok(c) = IntGauge::new(*name, *help) {
                descs.extend(c.desc().into_iter().cloned());
            }
        }
        if let Ok(v) = IntCounterVec::new(Opts::new(SENT.0, SENT.1), &["class"]) {
            descs.extend(v.desc().into_iter().cloned());
        }
        SipCollector {
            snapshot,
            counters,
            descs,
        }
    }
}

impl Collector for SipCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let s = self.snapshot.borrow().clone();
        let c = &self.counters;
        let counter_values = [
            s.stats.requests,
            s.stats.responses,
            s.stats.parse_errors,
            s.stats.registrations,
            s.stats.auth_failures,
            s.stats.retransmissions,
            s.stats.keepalives_sent,
            s.stats.keepalives_failed,
            s.rate_limited,
            c.connections_accepted.load(Ordering::Relaxed),
            c.connections_refused.load(Ordering::Relaxed),
            c.connections_cut.load(Ordering::Relaxed),
        ];
        let gauge_values = [
            s.bindings as u64,
            s.banned_sources as u64,
            s.transactions.0 as u64,
            s.transactions.1 as u64,
            c.connections_open.load(Ordering::Relaxed),
        ];
        let mut families = Vec::new();
        for ((name, help), value) in COUNTERS.iter().zip(counter_values) {
            if let Ok(m) = IntCounter::new(*name, *help) {
                m.inc_by(value);
                families.extend(m.collect());
            }
        }
        for ((name, help), value) in GAUGES.iter().zip(gauge_values) {
            if let Ok(m) = IntGauge::new(*name, *help) {
                m.set(i64::try_from(value).unwrap_or(i64::MAX));
                families.extend(m.collect());
            }
        }
        if let Ok(v) = IntCounterVec::new(Opts::new(SENT.0, SENT.1), &["class"]) {
            for (class, n) in s.stats.responses_sent.iter().enumerate().skip(1) {
                if let Ok(m) = v.get_metric_with_label_values(&[&format!("{class}xx")]) {
                    m.inc_by(*n);
                }
            }
            families.extend(v.collect());
        }
        families
    }
}
