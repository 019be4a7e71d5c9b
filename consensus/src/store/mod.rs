//! Durable storage on redb: one file per node holding the Raft log, the vote,
//! the committed log id and the latest snapshot.
//!
//! Invariant: a call that reports success has reached the disk (redb commits
//! with immediate durability, one fsync per log append batch), so openraft's
//! promises about persisted votes and log entries hold across crashes. The one
//! exception is the committed log id, a hint that openraft allows to be stale:
//! it is kept in memory and written inside the next durable transaction
//! (append, vote, truncation or purge), never in one of its own.

mod log_store;
mod state_machine;

pub use log_store::LogStore;
pub use state_machine::{MachineView, StateMachineStore};

use crate::types::StorageError;
use openraft::{ErrorSubject, ErrorVerb, StorageIOError};
use redb::{Database, TableDefinition};
use std::path::Path;
use std::sync::Arc;

pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");

/// Opens (or creates) the node's store file and makes sure every table exists.
pub fn open_database(path: &Path) -> Result<Arc<Database>, redb::Error> {
    let db = Database::create(path)?;
    let txn = db.begin_write()?;
    {
        txn.open_table(LOG)?;
        txn.open_table(META)?;
        txn.open_table(SNAPSHOT)?;
    }
    txn.commit()?;
    Ok(Arc::new(db))
}

/// Opens the log store and the state machine store over one database file.
pub fn open<S: crate::ReplicatedState>(
    path: &Path,
) -> Result<(LogStore, StateMachineStore<S>), StorageError> {
    let db = open_database(path).map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Read, e))?;
    let log = LogStore::new(db.clone());
    let machine = StateMachineStore::open(db)?;
    Ok((log, machine))
}

/// Wraps any error as an openraft storage error on `subject`.
pub(crate) fn io_error(
    subject: ErrorSubject<crate::types::NodeId>,
    verb: ErrorVerb,
    error: impl std::fmt::Display,
) -> StorageError {
    StorageIOError::new(subject, verb, openraft::AnyError::error(error.to_string())).into()
}
