//! The writer's audit step: drains a tenant's (or the platform's) audit log
//! into the history store like the activity outbox (bounded batches, the
//! drained sequence in the same transaction, missed records counted), and
//! deletes the tenant's audit records older than its
//! `audit_retention_days`, at most once an hour per tenant and
//! [`EXPIRE_BATCH`] records per step.

use std::collections::BTreeMap;

use carillon_actors::history::{plan_drain, DrainStep, HistoryError, DRAIN_BATCH};
use carillon_actors::model::directory::DEFAULT_AUDIT_RETENTION_DAYS;
use carillon_actors::model::TenantId;
use prometheus::{IntCounterVec, Opts, Registry};

use super::{blocking, Writer};

/// Records one retention step deletes at most.
pub const EXPIRE_BATCH: usize = 1_000;

/// How often a tenant's retention is applied.
const EXPIRE_EVERY_MS: u64 = 60 * 60 * 1000;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// The audit drain's metrics.
#[derive(Debug, Clone)]
pub struct AuditMetrics {
    written: IntCounterVec,
    missed: IntCounterVec,
    expired: IntCounterVec,
}

impl AuditMetrics {
    /// Creates and registers the metrics.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str| -> Result<IntCounterVec, prometheus::Error> {
            let c = IntCounterVec::new(Opts::new(name, help), &["tenant"])?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        Ok(AuditMetrics {
            written: counter(
                "carillon_audit_records_written_total",
                "Audit records this node's history store took from the ledger's audit logs (tenant 0: the platform).",
            )?,
            missed: counter(
                "carillon_audit_records_missed_total",
                "Audit records a log dropped before this node's history store drained them.",
            )?,
            expired: counter(
                "carillon_audit_records_expired_total",
                "Audit records deleted after the tenant's retention period.",
            )?,
        })
    }
}

/// Per-log progress of the audit drain.
#[derive(Debug, Default)]
pub struct AuditState {
    stored: BTreeMap<TenantId, u64>,
    expired_at: BTreeMap<TenantId, u64>,
}

impl Writer {
    /// One bounded audit step for `tenant`; whether more records wait.
    pub(super) async fn step_audit(&mut self, tenant: TenantId) -> Result<bool, HistoryError> {
        let stored = match self.audit.stored.get(&tenant) {
            Some(seq) => *seq,
            None => {
                let store = self.store.clone();
                let seq = blocking(move || store.audit_drained_seq(tenant)).await?;
                self.audit.stored.insert(tenant, seq);
                seq
            }
        };
        let (step, retention_days) = self.consensus.read_local(|l| {
            let step = l.audit_log(tenant).map(|log| {
                let (first, after) = log.since(stored);
                plan_drain(stored, first, log.last_seq(), after, DRAIN_BATCH)
            });
            let days = l.tenant(tenant).map_or(DEFAULT_AUDIT_RETENTION_DAYS, |t| {
                t.info().audit_retention_days
            });
            (step, days)
        });
        self.expire_audit(tenant, retention_days).await?;
        let Some(DrainStep::Write {
            records,
            through,
            missed,
            more,
        }) = step
        else {
            return Ok(false);
        };
        let store = self.store.clone();
        let report = blocking(move || store.put_audit(tenant, &records, through)).await?;
        self.audit.stored.insert(tenant, through);
        let label = tenant.0.to_string();
        self.metrics
            .audit
            .written
            .with_label_values(&[&label])
            .inc_by(report.written as u64);
        if missed > 0 {
            self.metrics
                .audit
                .missed
                .with_label_values(&[&label])
                .inc_by(missed);
            tracing::warn!(
                tenant = tenant.0,
                missed,
                "audit records were dropped from the ledger's log before this node's history \
                 store drained them"
            );
        }
        Ok(more)
    }

    async fn expire_audit(&mut self, tenant: TenantId, days: u32) -> Result<(), HistoryError> {
        let now = self.clock.now_ms();
        let due = self
            .audit
            .expired_at
            .get(&tenant)
            .is_none_or(|at| now.saturating_sub(*at) >= EXPIRE_EVERY_MS);
        if !due {
            return Ok(());
        }
        let before_ms = now.saturating_sub(u64::from(days) * DAY_MS);
        let store = self.store.clone();
        let expired = blocking(move || store.expire_audit(tenant, before_ms, EXPIRE_BATCH)).await?;
        if expired < EXPIRE_BATCH {
            self.audit.expired_at.insert(tenant, now);
        }
        if expired > 0 {
            self.metrics
                .audit
                .expired
                .with_label_values(&[&tenant.0.to_string()])
                .inc_by(expired as u64);
        }
        Ok(())
    }
}
