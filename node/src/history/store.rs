//! The embedded history store: a redb file (`history.redb` in the node's
//! data directory) whose record keys are the tuples `(tenant, kind, time,
//! id)` of [`HistoryKey`], with an index by id and the drained outbox
//! sequence of each tenant.
//!
//! Invariants: the index and the records hold the same ids (both are
//! written in one transaction); a tenant's drained sequence only grows and
//! is written with the records it covers.

use std::path::Path;

use carillon_actors::history::{
    audit_key_id, ActivityPage, ActivityQuery, AuditPage, AuditQuery, Cursor, HistoryError,
    HistoryKey, HistoryStore, PutReport, RecordKind, SCAN_BUDGET,
};
use carillon_actors::ledger::AuditRecord;
use carillon_actors::model::activity::ActivityRecord;
use carillon_actors::model::TenantId;
use redb::{Database, ReadableTable, TableDefinition};

/// Records by `(tenant, kind, time, id)`: the record as JSON.
const RECORDS: TableDefinition<(u64, u8, u64, &str), &[u8]> =
    TableDefinition::new("history_records");
/// The time of each record by `(tenant, kind, id)`.
const IDS: TableDefinition<(u64, u8, &str), u64> = TableDefinition::new("history_ids");
/// The last drained outbox sequence by tenant.
const DRAINED: TableDefinition<u64, u64> = TableDefinition::new("history_drained");
/// The last drained audit log sequence by tenant (0: the platform's log).
const AUDIT_DRAINED: TableDefinition<u64, u64> = TableDefinition::new("history_audit_drained");
const META: TableDefinition<&str, u32> = TableDefinition::new("history_meta");

/// The layout of the file. 1: the tables above, records as JSON, 2026-12
/// (audit records, kind 2, and their drained table were added to format 1:
/// an older file opens and gains them).
pub const HISTORY_FORMAT: u32 = 1;
const FORMAT_KEY: &str = "history_format";

/// The file name in the node's data directory.
pub const HISTORY_FILE: &str = "history.redb";

fn storage(error: impl std::fmt::Display) -> HistoryError {
    HistoryError::Storage(error.to_string())
}

/// The history store on redb.
#[derive(Debug)]
pub struct RedbHistory {
    db: Database,
}

impl RedbHistory {
    /// Opens (or creates) the store file at `path`. A file of another
    /// format is refused with a sentence that says so.
    pub fn open(path: &Path) -> Result<Self, HistoryError> {
        let db = Database::create(path)
            .map_err(|e| HistoryError::Storage(format!("open {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(storage)?;
        {
            txn.open_table(RECORDS).map_err(storage)?;
            txn.open_table(IDS).map_err(storage)?;
            txn.open_table(DRAINED).map_err(storage)?;
            txn.open_table(AUDIT_DRAINED).map_err(storage)?;
            let mut meta = txn.open_table(META).map_err(storage)?;
            let found = meta.get(FORMAT_KEY).map_err(storage)?.map(|v| v.value());
            match found {
                None => {
                    meta.insert(FORMAT_KEY, HISTORY_FORMAT).map_err(storage)?;
                }
                Some(HISTORY_FORMAT) => {}
                Some(other) => {
                    return Err(HistoryError::Storage(format!(
                        "{} holds history format {other}, and this build reads format \
                         {HISTORY_FORMAT}; run the build that wrote it, or move the file aside \
                         (the node then keeps the records its ledger's outbox still holds)",
                        path.display()
                    )))
                }
            }
        }
        txn.commit().map_err(storage)?;
        Ok(RedbHistory { db })
    }

    /// Opens the store of the node whose data directory is `dir`.
    pub fn open_in(dir: &Path) -> Result<Self, HistoryError> {
        Self::open(&dir.join(HISTORY_FILE))
    }
}

const ACTIVITY: u8 = RecordKind::Activity as u8;
const AUDIT: u8 = RecordKind::Audit as u8;

fn decode_as<T: serde::de::DeserializeOwned>(id: &str, bytes: &[u8]) -> Result<T, HistoryError> {
    serde_json::from_slice(bytes).map_err(|e| HistoryError::Codec {
        id: id.to_string(),
        reason: e.to_string(),
    })
}

/// A record's place in the store: its key's time and id.
type Placed = (u64, String);

impl RedbHistory {
    /// Stores `records` of one kind, each at most once, and the drained
    /// sequence in `drained_table`, in one transaction.
    fn put<R: serde::Serialize>(
        &self,
        tenant: TenantId,
        kind: u8,
        records: &[R],
        place: impl Fn(&R) -> Placed,
        drained_table: TableDefinition<u64, u64>,
        drained_seq: u64,
    ) -> Result<PutReport, HistoryError> {
        let mut report = PutReport::default();
        let txn = self.db.begin_write().map_err(storage)?;
        {
            let mut table = txn.open_table(RECORDS).map_err(storage)?;
            let mut ids = txn.open_table(IDS).map_err(storage)?;
            let mut drained = txn.open_table(drained_table).map_err(storage)?;
            for record in records {
                let (time_ms, key_id) = place(record);
                let id = (tenant.0, kind, key_id.as_str());
                if ids.get(id).map_err(storage)?.is_some() {
                    report.duplicates += 1;
                    continue;
                }
                let bytes = serde_json::to_vec(record).map_err(|e| HistoryError::Codec {
                    id: key_id.clone(),
                    reason: e.to_string(),
                })?;
                table
                    .insert((tenant.0, kind, time_ms, key_id.as_str()), bytes.as_slice())
                    .map_err(storage)?;
                ids.insert(id, time_ms).map_err(storage)?;
                report.written += 1;
            }
            let current = drained.get(tenant.0).map_err(storage)?.map(|v| v.value());
            if current.is_none_or(|c| drained_seq > c) {
                drained.insert(tenant.0, drained_seq).map_err(storage)?;
            }
        }
        txn.commit().map_err(storage)?;
        Ok(report)
    }

    /// One page of records of one kind in `[from_ms, upper)`, newest first,
    /// those `matches` takes, at most `limit`, examining at most
    /// [`SCAN_BUDGET`]; and where the next page starts.
    fn page<R: serde::de::DeserializeOwned>(
        &self,
        tenant: TenantId,
        kind: u8,
        from_ms: u64,
        (upper_ms, upper_id): (u64, Option<&str>),
        limit: usize,
        matches: impl Fn(&R) -> bool,
    ) -> Result<(Vec<R>, Option<Cursor>), HistoryError> {
        assert!(limit > 0, "a page holds at least one record");
        if upper_ms < from_ms || (upper_ms == from_ms && upper_id.is_none()) {
            return Ok((Vec::new(), None));
        }
        let txn = self.db.begin_read().map_err(storage)?;
        let table = txn.open_table(RECORDS).map_err(storage)?;
        // "" sorts before every id: (t, k, time, "") bounds whole instants.
        let lower = (tenant.0, kind, from_ms, "");
        let upper = (tenant.0, kind, upper_ms, upper_id.unwrap_or(""));
        let mut range = table.range(lower..upper).map_err(storage)?.rev();
        let mut items = Vec::new();
        let mut last = None;
        let mut scanned = 0;
        for item in range.by_ref() {
            let (key, value) = item.map_err(storage)?;
            let (_, _, time_ms, id) = key.value();
            let record: R = decode_as(id, value.value())?;
            scanned += 1;
            if matches(&record) {
                items.push(record);
            }
            last = Some(Cursor {
                time_ms,
                id: id.to_string(),
            });
            if items.len() == limit || scanned == SCAN_BUDGET {
                break;
            }
        }
        let more = range.next().transpose().map_err(storage)?.is_some();
        Ok((items, last.filter(|_| more)))
    }
}

impl HistoryStore for RedbHistory {
    fn put_activities(
        &self,
        tenant: TenantId,
        records: &[ActivityRecord],
        drained_seq: u64,
    ) -> Result<PutReport, HistoryError> {
        let place = |r: &ActivityRecord| {
            let key = HistoryKey::activity(tenant, r);
            (key.time_ms, key.id)
        };
        self.put(tenant, ACTIVITY, records, place, DRAINED, drained_seq)
    }

    fn activity(&self, tenant: TenantId, id: &str) -> Result<Option<ActivityRecord>, HistoryError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let ids = txn.open_table(IDS).map_err(storage)?;
        let Some(time_ms) = ids
            .get((tenant.0, ACTIVITY, id))
            .map_err(storage)?
            .map(|v| v.value())
        else {
            return Ok(None);
        };
        let table = txn.open_table(RECORDS).map_err(storage)?;
        let bytes = table
            .get((tenant.0, ACTIVITY, time_ms, id))
            .map_err(storage)?
            .ok_or_else(|| {
                HistoryError::Storage(format!("the id index names {id:?}, the records do not"))
            })?;
        decode_as(id, bytes.value()).map(Some)
    }

    fn activities(
        &self,
        tenant: TenantId,
        query: &ActivityQuery,
    ) -> Result<ActivityPage, HistoryError> {
        let (items, next) = self.page(
            tenant,
            ACTIVITY,
            query.from_ms,
            query.upper_bound(),
            query.limit,
            |r| query.matches(r),
        )?;
        Ok(ActivityPage { items, next })
    }

    fn drained_seq(&self, tenant: TenantId) -> Result<u64, HistoryError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let drained = txn.open_table(DRAINED).map_err(storage)?;
        Ok(drained
            .get(tenant.0)
            .map_err(storage)?
            .map_or(0, |v| v.value()))
    }

    fn put_audit(
        &self,
        tenant: TenantId,
        records: &[AuditRecord],
        drained_seq: u64,
    ) -> Result<PutReport, HistoryError> {
        let place = |r: &AuditRecord| (r.at_ms, audit_key_id(r));
        self.put(tenant, AUDIT, records, place, AUDIT_DRAINED, drained_seq)
    }

    fn audit(&self, tenant: TenantId, query: &AuditQuery) -> Result<AuditPage, HistoryError> {
        let (items, next) = self.page(
            tenant,
            AUDIT,
            query.from_ms,
            query.upper_bound(),
            query.limit,
            |r| query.matches(r),
        )?;
        Ok(AuditPage { items, next })
    }

    fn audit_drained_seq(&self, tenant: TenantId) -> Result<u64, HistoryError> {
        let txn = self.db.begin_read().map_err(storage)?;
        let drained = txn.open_table(AUDIT_DRAINED).map_err(storage)?;
        Ok(drained
            .get(tenant.0)
            .map_err(storage)?
            .map_or(0, |v| v.value()))
    }

    fn expire_audit(
        &self,
        tenant: TenantId,
        before_ms: u64,
        limit: usize,
    ) -> Result<usize, HistoryError> {
        let txn = self.db.begin_write().map_err(storage)?;
        let expired = {
            let mut table = txn.open_table(RECORDS).map_err(storage)?;
            let mut ids = txn.open_table(IDS).map_err(storage)?;
            let old: Vec<(u64, String)> = table
                .range((tenant.0, AUDIT, 0, "")..(tenant.0, AUDIT, before_ms, ""))
                .map_err(storage)?
                .take(limit)
                .map(|item| {
                    item.map(|(key, _)| {
                        let (_, _, time_ms, id) = key.value();
                        (time_ms, id.to_string())
                    })
                    .map_err(storage)
                })
                .collect::<Result<_, _>>()?;
            for (time_ms, id) in &old {
                table
                    .remove((tenant.0, AUDIT, *time_ms, id.as_str()))
                    .map_err(storage)?;
                ids.remove((tenant.0, AUDIT, id.as_str()))
                    .map_err(storage)?;
            }
            old.len()
        };
        txn.commit().map_err(storage)?;
        Ok(expired)
    }
}
