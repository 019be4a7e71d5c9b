//! The history writer of a node: drains every tenant's outbox of closed
//! activities (C4) from this node's ledger replica into the node's history
//! store. It wakes on `Change::ActivityClosed`, on a snapshot install or a
//! lag of the notices (then every tenant), and at start-up (every tenant,
//! to catch up with what closed while the node was down).
//!
//! Invariants: one step writes at most [`DRAIN_BATCH`] records of one
//! tenant, with the sequence they drain, in one transaction, so a restart
//! resumes exactly after the last record stored; records the outbox
//! dropped before this store drained them are logged once and counted in
//! `carillon_history_records_missed_total`; a failed write is retried after
//! [`RETRY_AFTER`] and never skips a record.

mod audit;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use carillon_actors::history::{plan_drain, DrainStep, HistoryError, HistoryStore, DRAIN_BATCH};
use carillon_actors::ledger::{Change, Ledger};
use carillon_actors::model::TenantId;
use carillon_consensus::{Clock, Consensus, Notice};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::task::JoinHandle;

/// How long a failed write waits before the next attempt.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The writer's metrics.
#[derive(Debug, Clone)]
pub struct HistoryMetrics {
    written: IntCounterVec,
    duplicates: IntCounterVec,
    missed: IntCounterVec,
    failures: IntCounter,
    audit: audit::AuditMetrics,
}

impl HistoryMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let written = IntCounterVec::new(
            Opts::new(
                "carillon_history_records_written_total",
                "Activity records this node's history store took from the outbox.",
            ),
            &["tenant"],
        )?;
        registry.register(Box::new(written.clone()))?;
        let duplicates = IntCounterVec::new(
            Opts::new(
                "carillon_history_records_duplicate_total",
                "Activity records the writer found stored already (a replay of the outbox).",
            ),
            &["tenant"],
        )?;
        registry.register(Box::new(duplicates.clone()))?;
        let missed = IntCounterVec::new(
            Opts::new(
                "carillon_history_records_missed_total",
                "Activity records the outbox dropped before this node's history store drained them.",
            ),
            &["tenant"],
        )?;
        registry.register(Box::new(missed.clone()))?;
        let failures = IntCounter::new(
            "carillon_history_write_failures_total",
            "History store writes that failed (and were retried).",
        )?;
        registry.register(Box::new(failures.clone()))?;
        let audit = audit::AuditMetrics::register(registry)?;
        Ok(HistoryMetrics {
            written,
            duplicates,
            missed,
            failures,
            audit,
        })
    }
}

/// Starts the writer of this node.
pub fn spawn(
    consensus: Consensus<Ledger>,
    store: Arc<dyn HistoryStore>,
    metrics: HistoryMetrics,
    clock: Arc<dyn Clock>,
) -> JoinHandle<()> {
    // Subscribed before the first read: nothing closed after it is unheard.
    let notices = consensus.subscribe();
    let writer = Writer {
        consensus,
        store,
        metrics,
        stored: BTreeMap::new(),
        behind: BTreeSet::new(),
        audit: audit::AuditState::default(),
        clock,
    };
    tokio::spawn(writer.run(notices))
}

struct Writer {
    consensus: Consensus<Ledger>,
    store: Arc<dyn HistoryStore>,
    metrics: HistoryMetrics,
    /// The drained sequence of each tenant, as stored.
    stored: BTreeMap<TenantId, u64>,
    /// Tenants whose replica was found behind the store (logged once).
    behind: BTreeSet<TenantId>,
    /// The audit logs' drained sequences and retention sweeps.
    audit: audit::AuditState,
    /// For the audit retention.
    clock: Arc<dyn Clock>,
}

/// What a notice asks for beyond the tenants it marks dirty.
enum Heard {
    Everything,
    Nothing,
    Stop,
}

fn heard(notice: Result<Notice<Change>, RecvError>, dirty: &mut BTreeSet<TenantId>) -> Heard {
    match notice {
        Ok(Notice::Applied { changes, .. }) => {
            for change in changes.iter() {
                if let Change::ActivityClosed { tenant } | Change::Audited { tenant } = change {
                    dirty.insert(*tenant);
                }
            }
            Heard::Nothing
        }
        Ok(Notice::Reset { .. }) | Err(RecvError::Lagged(_)) => Heard::Everything,
        Err(RecvError::Closed) => Heard::Stop,
    }
}

impl Writer {
    /// Every tenant, and the platform's audit log.
    fn tenants(&self) -> BTreeSet<TenantId> {
        let mut all: BTreeSet<TenantId> = self
            .consensus
            .read_local(|l| l.tenants().map(|t| t.id).collect());
        all.insert(carillon_actors::ledger::PLATFORM);
        all
    }

    async fn run(mut self, mut notices: tokio::sync::broadcast::Receiver<Notice<Change>>) {
        let mut dirty = self.tenants();
        loop {
            let mut again = BTreeSet::new();
            let mut failed = false;
            for tenant in std::mem::take(&mut dirty) {
                let stepped = match self.step(tenant).await {
                    Ok(more) => self.step_audit(tenant).await.map(|audit| more || audit),
                    Err(e) => Err(e),
                };
                match stepped {
                    Ok(more) => {
                        if more {
                            again.insert(tenant);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(tenant = tenant.0, error = %e, "history write failed; retrying");
                        self.metrics.failures.inc();
                        again.insert(tenant);
                        failed = true;
                    }
                }
            }
            dirty = again;
            if failed {
                tokio::time::sleep(RETRY_AFTER).await;
            }
            // Take what the notices say; wait for them only with nothing to do.
            loop {
                let notice = if dirty.is_empty() {
                    notices.recv().await
                } else {
                    match notices.try_recv() {
                        Ok(n) => Ok(n),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                        Err(TryRecvError::Closed) => Err(RecvError::Closed),
                    }
                };
                match heard(notice, &mut dirty) {
                    Heard::Everything => dirty.extend(self.tenants()),
                    Heard::Nothing => {}
                    Heard::Stop => return,
                }
            }
        }
    }

    /// One bounded step for `tenant`; whether more records wait.
    async fn step(&mut self, tenant: TenantId) -> Result<bool, HistoryError> {
        let stored = match self.stored.get(&tenant) {
            Some(seq) => *seq,
            None => {
                let store = self.store.clone();
                let seq = blocking(move || store.drained_seq(tenant)).await?;
                self.stored.insert(tenant, seq);
                seq
            }
        };
        let step = self.consensus.read_local(|l| {
            l.tenant(tenant).map(|t| {
                let activities = t.activities();
                let (first, after) = activities.since(stored);
                plan_drain(stored, first, activities.last_seq(), after, DRAIN_BATCH)
            })
        });
        let Some(step) = step else {
            return Ok(false);
        };
        match step {
            DrainStep::UpToDate => {
                self.behind.remove(&tenant);
                Ok(false)
            }
            DrainStep::LedgerBehind { stored, last_seq } => {
                // Normal while a restarted node replays its log after the
                // last snapshot; lasting only when the ledger was replaced.
                if self.behind.insert(tenant) {
                    tracing::info!(
                        tenant = tenant.0,
                        stored,
                        last_seq,
                        "the history store has drained further than this node's ledger \
                         replica's outbox reaches; waiting for the replica to catch up"
                    );
                }
                Ok(false)
            }
            DrainStep::Write {
                records,
                through,
                missed,
                more,
            } => {
                self.behind.remove(&tenant);
                let store = self.store.clone();
                let count = records.len();
                let report =
                    blocking(move || store.put_activities(tenant, &records, through)).await?;
                self.stored.insert(tenant, through);
                let label = tenant.0.to_string();
                self.metrics
                    .written
                    .with_label_values(&[&label])
                    .inc_by(report.written as u64);
                if report.duplicates > 0 {
                    self.metrics
                        .duplicates
                        .with_label_values(&[&label])
                        .inc_by(report.duplicates as u64);
                }
                if missed > 0 {
                    self.metrics
                        .missed
                        .with_label_values(&[&label])
                        .inc_by(missed);
                    tracing::warn!(
                        tenant = tenant.0,
                        missed,
                        drained_before = stored,
                        "activity records were dropped from the outbox before this node's \
                         history store drained them"
                    );
                }
                tracing::debug!(
                    tenant = tenant.0,
                    records = count,
                    written = report.written,
                    duplicates = report.duplicates,
                    through,
                    "history drained"
                );
                Ok(more)
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HistoryError> + Send + 'static,
) -> Result<T, HistoryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HistoryError::Storage(format!("the store's thread failed: {e}")))?
}
