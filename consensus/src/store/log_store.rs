//! The Raft log, vote and committed log id in redb.

use super::{io_error, LOG, META};
use crate::types::{Entry, LogId, NodeId, StorageError, TypeConfig};
use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{ErrorSubject, ErrorVerb, LogState, OptionalSend, RaftLogReader, Vote};
use redb::{Database, ReadableTable};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::ops::RangeBounds;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// The committed log id openraft last reported, and whether it still has to
/// be written to the file.
#[derive(Debug, Default)]
struct Committed {
    latest: Option<LogId>,
    unsaved: bool,
}

/// The log store. Cloning shares the database (readers and the writer see the
/// same file); openraft owns the only writer.
#[derive(Debug, Clone)]
pub struct LogStore {
    db: Arc<Database>,
    committed_index: Arc<AtomicU64>,
    committed: Arc<Mutex<Committed>>,
}

impl LogStore {
    pub(crate) fn new(db: Arc<Database>) -> Self {
        Self {
            db,
            committed_index: Arc::new(AtomicU64::new(0)),
            committed: Arc::new(Mutex::new(Committed::default())),
        }
    }

    fn committed(&self) -> std::sync::MutexGuard<'_, Committed> {
        // The guarded value is plain data, always consistent: a panic
        // elsewhere while it was held cannot have broken it.
        self.committed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes the committed log id into `txn` if it changed since it was
    /// last written; it becomes durable when `txn` does.
    fn write_unsaved_committed(
        &self,
        txn: &redb::WriteTransaction,
        verb: ErrorVerb,
    ) -> Result<(), StorageError> {
        let subject = ErrorSubject::Store;
        let mut committed = self.committed();
        if !committed.unsaved {
            return Ok(());
        }
        let bytes = bincode::serialize(&committed.latest)
            .map_err(|e| io_error(subject.clone(), verb, e))?;
        let mut meta = txn
            .open_table(META)
            .map_err(|e| io_error(subject.clone(), verb, e))?;
        meta.insert(COMMITTED, bytes.as_slice())
            .map_err(|e| io_error(subject, verb, e))?;
        committed.unsaved = false;
        Ok(())
    }

    /// The most recent committed index this node has persisted (0 before any).
    pub fn committed_index(&self) -> Arc<AtomicU64> {
        self.committed_index.clone()
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StorageError> {
        let subject = ErrorSubject::Store;
        let txn = self
            .db
            .begin_read()
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Read, e))?;
        let table = txn
            .open_table(META)
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Read, e))?;
        let Some(bytes) = table
            .get(key)
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Read, e))?
        else {
            return Ok(None);
        };
        bincode::deserialize(bytes.value())
            .map(Some)
            .map_err(|e| io_error(subject, ErrorVerb::Read, e))
    }

    /// Writes one metadata value (and any unsaved committed id) durably.
    fn write_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StorageError> {
        let subject = ErrorSubject::Store;
        let bytes = bincode::serialize(value)
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Write, e))?;
        let txn = self
            .db
            .begin_write()
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Write, e))?;
        self.write_unsaved_committed(&txn, ErrorVerb::Write)?;
        {
            let mut table = txn
                .open_table(META)
                .map_err(|e| io_error(subject.clone(), ErrorVerb::Write, e))?;
            table
                .insert(key, bytes.as_slice())
                .map_err(|e| io_error(subject.clone(), ErrorVerb::Write, e))?;
        }
        txn.commit()
            .map_err(|e| io_error(subject, ErrorVerb::Write, e))
    }

    fn last_entry_id(&self) -> Result<Option<LogId>, StorageError> {
        let subject = ErrorSubject::Logs;
        let txn = self
            .db
            .begin_read()
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Read, e))?;
        let table = txn
            .open_table(LOG)
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Read, e))?;
        let Some((_, value)) = table
            .last()
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Read, e))?
        else {
            return Ok(None);
        };
        let entry: Entry = bincode::deserialize(value.value())
            .map_err(|e| io_error(subject, ErrorVerb::Read, e))?;
        Ok(Some(entry.log_id))
    }

    /// Removes every log entry whose index lies in `range` and, if given,
    /// records the purge mark, in one durable transaction.
    fn remove_range(
        &self,
        range: impl RangeBounds<u64>,
        purged: Option<&LogId>,
    ) -> Result<(), StorageError> {
        let subject = ErrorSubject::Logs;
        let txn = self
            .db
            .begin_write()
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Delete, e))?;
        {
            let mut table = txn
                .open_table(LOG)
                .map_err(|e| io_error(subject.clone(), ErrorVerb::Delete, e))?;
            table
                .retain_in(range, |_, _| false)
                .map_err(|e| io_error(subject.clone(), ErrorVerb::Delete, e))?;
        }
        self.write_unsaved_committed(&txn, ErrorVerb::Delete)?;
        if let Some(log_id) = purged {
            let bytes = bincode::serialize(log_id)
                .map_err(|e| io_error(subject.clone(), ErrorVerb::Delete, e))?;
            let mut meta = txn
                .open_table(META)
                .map_err(|e| io_error(subject.clone(), ErrorVerb::Delete, e))?;
            meta.insert(LAST_PURGED, bytes.as_slice())
                .map_err(|e| io_error(subject.clone(), ErrorVerb::Delete, e))?;
        }
        txn.commit()
            .map_err(|e| io_error(subject, ErrorVerb::Delete, e))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let subject = ErrorSubject::Logs;
        let txn = self
            .db
            .begin_read()
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Read, e))?;
        let table = txn
            .open_table(LOG)
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Read, e))?;
        let mut entries = Vec::new();
        for item in table
            .range(range)
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Read, e))?
        {
            let (_, value) = item.map_err(|e| io_error(subject.clone(), ErrorVerb::Read, e))?;
            let entry: Entry = bincode::deserialize(value.value())
                .map_err(|e| io_error(subject.clone(), ErrorVerb::Read, e))?;
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId> = self.read_meta(LAST_PURGED)?;
        let last_log_id = self.last_entry_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        // openraft requires the vote on disk before this returns.
        self.write_meta(VOTE, vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        if let Some(log_id) = committed {
            self.committed_index.store(log_id.index, Ordering::Release);
        }
        // openraft calls this before every apply, on the critical path of
        // each write. The committed id is a hint (openraft: "optional"): it
        // only lets a restarted node re-apply its log before hearing from a
        // leader, and a stale one is safe (fewer entries re-applied, the rest
        // arrive with the next commit). So it is kept in memory and written
        // in the next durable transaction of this store (log append, vote,
        // truncation or purge), never in a transaction (and fsync) of its
        // own: that measured as one extra disk flush, then one extra redb
        // transaction, per write on every node.
        let mut saved = self.committed();
        saved.latest = committed;
        saved.unsaved = true;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let known = {
            let saved = self.committed();
            saved.unsaved.then_some(saved.latest)
        };
        let committed = match known {
            Some(latest) => latest,
            None => {
                let stored: Option<Option<LogId>> = self.read_meta(COMMITTED)?;
                stored.flatten()
            }
        };
        if let Some(log_id) = committed {
            self.committed_index.store(log_id.index, Ordering::Release);
        }
        Ok(committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let subject = ErrorSubject::Logs;
        let txn = self
            .db
            .begin_write()
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Write, e))?;
        self.write_unsaved_committed(&txn, ErrorVerb::Write)?;
        {
            let mut table = txn
                .open_table(LOG)
                .map_err(|e| io_error(subject.clone(), ErrorVerb::Write, e))?;
            for entry in entries {
                let bytes = bincode::serialize(&entry)
                    .map_err(|e| io_error(subject.clone(), ErrorVerb::Write, e))?;
                table
                    .insert(entry.log_id.index, bytes.as_slice())
                    .map_err(|e| io_error(subject.clone(), ErrorVerb::Write, e))?;
            }
        }
        // The commit is durable (fsync) before openraft hears about it.
        let result = txn
            .commit()
            .map_err(|e| std::io::Error::other(e.to_string()));
        let failed = result.as_ref().err().map(|e| e.to_string());
        callback.log_io_completed(result);
        match failed {
            Some(e) => Err(io_error(subject, ErrorVerb::Write, e)),
            None => Ok(()),
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.remove_range(log_id.index.., None)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The purge mark and the removal are one transaction: both or neither.
        self.remove_range(..=log_id.index, Some(&log_id))
    }
}
