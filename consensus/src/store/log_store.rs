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
use std::sync::Arc;

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const LAST_PURGED: &str = "last_purged";

/// The log store. Cloning shares the database (readers and the writer see the
/// same file); openraft owns the only writer.
#[derive(Debug, Clone)]
pub struct LogStore {
    db: Arc<Database>,
    committed_index: Arc<AtomicU64>,
}

impl LogStore {
    pub(crate) fn new(db: Arc<Database>) -> Self {
        Self {
            db,
            committed_index: Arc::new(AtomicU64::new(0)),
        }
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

    fn write_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StorageError> {
        let subject = ErrorSubject::Store;
        let bytes = bincode::serialize(value)
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Write, e))?;
        let txn = self
            .db
            .begin_write()
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Write, e))?;
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

    /// Removes every log entry whose index lies in `range`, in one transaction.
    fn remove_range(&self, range: impl RangeBounds<u64>) -> Result<(), StorageError> {
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
        self.write_meta(VOTE, vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_meta(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        if let Some(log_id) = committed {
            self.committed_index.store(log_id.index, Ordering::Release);
        }
        self.write_meta(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let committed: Option<Option<LogId>> = self.read_meta(COMMITTED)?;
        let committed = committed.flatten();
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
        self.remove_range(log_id.index..)
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        // The purge mark is written first: if the process dies between the
        // two steps, entries at or below it are simply never read again.
        self.write_meta(LAST_PURGED, &log_id)?;
        self.remove_range(..=log_id.index)
    }
}
