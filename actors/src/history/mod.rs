//! History (H1, C4): the store of closed activity records that every node
//! keeps beside its ledger replica, and what reading it means.
//!
//! [`HistoryStore`] is the interface of a store whose keys are ordered
//! tuples `(tenant, kind, time, id)` ([`HistoryKey`]), the shape
//! FoundationDB uses: a tenant's records of one kind lie together, in time
//! order, so a time range is one range read. The embedded default is the
//! node's `history.redb`; the interface is what the admin API reads.
//!
//! Invariants: a record is stored at most once per `(tenant, kind, id)`,
//! whoever writes it and however often (C4: the outbox drained twice, by a
//! restarted writer or by two writers, adds nothing); the drained outbox
//! sequence of a tenant is stored in the same transaction as the records it
//! covers, and never goes back; a query examines at most [`SCAN_BUDGET`]
//! records per page. Nothing here does I/O: the store is the node's.
//!
//! Code map: `query` (filters, visibility, cursors, pages), `drain` (what
//! a writer takes from a tenant's outbox next).

mod audit;
mod drain;
mod query;

pub use audit::{audit_key_id, AuditPage, AuditQuery};

pub use drain::{plan_drain, DrainStep, DRAIN_BATCH};
pub use query::{
    parse_direction, ActivityPage, ActivityQuery, Cursor, OutcomeKind, Visibility, DEFAULT_LIMIT,
    MAX_LIMIT, SCAN_BUDGET,
};

use crate::model::activity::ActivityRecord;
use crate::model::TenantId;

/// What a history record is (the second element of its key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKind {
    /// A closed activity (C1, C4).
    Activity = 1,
    /// An audit record (the front door's trail).
    Audit = 2,
}

/// The key of a history record: ordered by tenant, kind, time, then id.
/// For activities the time is `started_at_ms` (the customer's first
/// contact): an interval holds the calls that began in it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HistoryKey {
    /// The tenant.
    pub tenant: TenantId,
    /// The kind of record.
    pub kind: RecordKind,
    /// The record's time, ms since the epoch.
    pub time_ms: u64,
    /// The record's id, unique per tenant and kind.
    pub id: String,
}

impl HistoryKey {
    /// The key of an activity record.
    pub fn activity(tenant: TenantId, record: &ActivityRecord) -> Self {
        HistoryKey {
            tenant,
            kind: RecordKind::Activity,
            time_ms: record.started_at_ms,
            id: record.id.clone(),
        }
    }
}

/// What one [`HistoryStore::put_activities`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PutReport {
    /// Records stored now.
    pub written: usize,
    /// Records whose id was stored already (skipped).
    pub duplicates: usize,
}

/// Why a history store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The storage failed (a disk, a transaction, a lock).
    #[error("history storage: {0}")]
    Storage(String),
    /// A stored record does not decode.
    #[error("history record {id:?} does not decode: {reason}")]
    Codec {
        /// The record.
        id: String,
        /// Why.
        reason: String,
    },
}

/// A store of history records keyed by [`HistoryKey`].
///
/// Calls may block on storage: async callers run them on a blocking
/// thread. Every implementation keeps the invariants of this module.
pub trait HistoryStore: Send + Sync + std::fmt::Debug {
    /// Stores `records` of `tenant`, each at most once (an id stored
    /// already is skipped, whatever its content: the first write wins), and
    /// that the tenant's outbox is drained through `drained_seq` (kept when
    /// it is not beyond the stored one), in one transaction.
    fn put_activities(
        &self,
        tenant: TenantId,
        records: &[ActivityRecord],
        drained_seq: u64,
    ) -> Result<PutReport, HistoryError>;

    /// The activity record `id` of `tenant`.
    fn activity(&self, tenant: TenantId, id: &str) -> Result<Option<ActivityRecord>, HistoryError>;

    /// One page of `tenant`'s activity records that match `query`, newest
    /// first (by key: time, then id, both descending).
    fn activities(
        &self,
        tenant: TenantId,
        query: &ActivityQuery,
    ) -> Result<ActivityPage, HistoryError>;

    /// The last outbox sequence of `tenant` whose record is stored (0 before
    /// any).
    fn drained_seq(&self, tenant: TenantId) -> Result<u64, HistoryError>;

    /// Stores audit records of `tenant`'s log (`ledger::PLATFORM` for the
    /// platform's), each at most once, and the log's drained sequence, in
    /// one transaction (as [`HistoryStore::put_activities`]).
    fn put_audit(
        &self,
        tenant: TenantId,
        records: &[crate::ledger::AuditRecord],
        drained_seq: u64,
    ) -> Result<PutReport, HistoryError>;

    /// One page of `tenant`'s audit records that match `query`, newest first.
    fn audit(&self, tenant: TenantId, query: &AuditQuery) -> Result<AuditPage, HistoryError>;

    /// The last sequence of `tenant`'s audit log that is stored (0 before any).
    fn audit_drained_seq(&self, tenant: TenantId) -> Result<u64, HistoryError>;

    /// Deletes `tenant`'s audit records made before `before_ms` (retention);
    /// how many it deleted, at most `limit` in one call.
    fn expire_audit(
        &self,
        tenant: TenantId,
        before_ms: u64,
        limit: usize,
    ) -> Result<usize, HistoryError>;
}
