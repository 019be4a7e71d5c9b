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
mod snapshots;
mod state_machine;

pub use log_store::LogStore;
pub use state_machine::{MachineView, Notice, StateMachineStore, NOTICE_BACKLOG};

use crate::types::StorageError;
use openraft::{ErrorSubject, ErrorVerb, StorageIOError};
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;
use std::sync::Arc;

pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");
pub(crate) const SNAPSHOT_CHUNKS: TableDefinition<(u64, u32), &[u8]> =
    TableDefinition::new("snapshot_chunks");

/// Opens (or creates) the node's store file and makes sure every table exists.
pub fn open_database(path: &Path) -> Result<Arc<Database>, redb::Error> {
    let db = Database::create(path)?;
    let txn = db.begin_write()?;
    {
        txn.open_table(LOG)?;
        txn.open_table(META)?;
        txn.open_table(SNAPSHOT)?;
        txn.open_table(SNAPSHOT_CHUNKS)?;
    }
    txn.commit()?;
    Ok(Arc::new(db))
}

/// The layout of the records in the store file. 2: a log entry carries a
/// batch of commands (group commit), 2026-12-01. Files from before have no
/// marker (format 1: one command per entry). 3: the snapshot is stored in
/// chunks (see `snapshots`), 2026-12-01; a format 2 file is upgraded in
/// place when it opens.
pub const STORE_FORMAT: u32 = 3;
/// The format that opens by being upgraded to [`STORE_FORMAT`].
const UPGRADABLE_FORMAT: u32 = 2;
const FORMAT_KEY: &str = "store_format";

/// Checks the store file's format marker, or writes it into a new file.
/// A file written by another format is refused with a sentence that says so,
/// rather than failing later on the first entry that does not decode.
fn check_format(db: &Database, path: &Path) -> Result<(), String> {
    let refusal = |found: &str| {
        format!(
            "{} holds store format {found}, and this build reads format {STORE_FORMAT}; \
             move the node's data directory aside and let the node rejoin the cluster \
             (it receives a snapshot), or run the build that wrote it",
            path.display()
        )
    };
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    {
        let mut meta = txn.open_table(META).map_err(|e| e.to_string())?;
        let marker = meta
            .get(FORMAT_KEY)
            .map_err(|e| e.to_string())?
            .map(|v| v.value().to_vec());
        match marker {
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_slice())
                    .map(u32::from_le_bytes)
                    .map_err(|_| refusal("unknown"))?;
                if found == UPGRADABLE_FORMAT {
                    snapshots::upgrade_from_single_value(&txn).map_err(|e| {
                        format!("{}: upgrading store format 2 to 3: {e}", path.display())
                    })?;
                    meta.insert(FORMAT_KEY, STORE_FORMAT.to_le_bytes().as_slice())
                        .map_err(|e| e.to_string())?;
                } else if found != STORE_FORMAT {
                    return Err(refusal(&found.to_string()));
                }
            }
            None => {
                let log = txn.open_table(LOG).map_err(|e| e.to_string())?;
                let used = !log.is_empty().map_err(|e| e.to_string())?
                    || !meta.is_empty().map_err(|e| e.to_string())?;
                if used {
                    return Err(refusal("1 (no marker)"));
                }
                meta.insert(FORMAT_KEY, STORE_FORMAT.to_le_bytes().as_slice())
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    txn.commit().map_err(|e| e.to_string())
}

/// Opens the log store and the state machine store over one database file.
/// A file of another store format is refused (see [`STORE_FORMAT`]).
pub fn open<S: crate::ReplicatedState>(
    path: &Path,
) -> Result<(LogStore, StateMachineStore<S>), StorageError> {
    let db = open_database(path).map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Read, e))?;
    check_format(&db, path).map_err(|e| io_error(ErrorSubject::Store, ErrorVerb::Read, e))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Nothing;

    impl crate::ReplicatedState for Nothing {
        type Change = ();
        type Command = ();
        type Response = ();

        fn apply(&mut self, _command: (), _context: &crate::state::ApplyContext) {}

        fn snapshot(&self) -> Result<Vec<u8>, crate::state::SnapshotError> {
            Ok(Vec::new())
        }

        fn restore(_bytes: &[u8]) -> Result<Self, crate::state::SnapshotError> {
            Ok(Self)
        }
    }

    fn open_nothing(path: &Path) -> Result<(), String> {
        open::<Nothing>(path).map(|_| ()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_new_file_gets_the_marker_and_opens_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("raft.redb");
        open_nothing(&path).expect("a new file opens");
        open_nothing(&path).expect("and opens again");
    }

    #[test]
    fn a_file_of_another_format_is_refused_with_a_sentence_that_says_so() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Format 1: entries and a vote, no marker.
        let old = dir.path().join("old.redb");
        {
            let db = open_database(&old).expect("db");
            let txn = db.begin_write().expect("txn");
            txn.open_table(LOG)
                .expect("log")
                .insert(1, b"an entry of format 1".as_slice())
                .expect("insert");
            txn.commit().expect("commit");
        }
        let refusal = open_nothing(&old).expect_err("format 1 is refused");
        assert!(
            refusal.contains("store format 1") && refusal.contains("reads format 3"),
            "{refusal}"
        );
        // A marker from a later build.
        let later = dir.path().join("later.redb");
        open_nothing(&later).expect("a new file opens");
        {
            let db = open_database(&later).expect("db");
            let txn = db.begin_write().expect("txn");
            txn.open_table(META)
                .expect("meta")
                .insert(FORMAT_KEY, 4u32.to_le_bytes().as_slice())
                .expect("insert");
            txn.commit().expect("commit");
        }
        let refusal = open_nothing(&later).expect_err("format 4 is refused");
        assert!(refusal.contains("store format 4"), "{refusal}");
    }

    #[test]
    fn a_format_2_file_is_upgraded_in_place_and_keeps_its_snapshot() {
        use crate::types::{LogId, SnapshotMeta};
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("raft.redb");
        let meta = SnapshotMeta {
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(2, 1), 40)),
            last_membership: Default::default(),
            snapshot_id: "format-2".into(),
        };
        let data: Vec<u8> = (0..snapshots::CHUNK_BYTES + 100)
            .map(|i| (i % 13) as u8)
            .collect();
        {
            // What a format 2 build left: the marker, and the snapshot as one value.
            let db = open_database(&path).expect("db");
            let txn = db.begin_write().expect("txn");
            txn.open_table(META)
                .expect("meta")
                .insert(FORMAT_KEY, 2u32.to_le_bytes().as_slice())
                .expect("insert");
            let old = bincode::serialize(&snapshots::StoredSnapshot {
                meta: meta.clone(),
                data: data.clone(),
            })
            .expect("encode");
            txn.open_table(SNAPSHOT)
                .expect("snapshot")
                .insert(snapshots::CURRENT, old.as_slice())
                .expect("insert");
            txn.commit().expect("commit");
        }
        let db = open_database(&path).expect("db");
        check_format(&db, &path).expect("a format 2 file is accepted");
        let stored = snapshots::read(&db)
            .expect("read")
            .expect("the snapshot is kept");
        assert_eq!(stored.meta, meta);
        assert!(stored.data == data, "the snapshot's bytes are kept");
        let txn = db.begin_read().expect("read");
        let marker = txn
            .open_table(META)
            .expect("meta")
            .get(FORMAT_KEY)
            .expect("get")
            .map(|v| v.value().to_vec());
        assert_eq!(marker, Some(STORE_FORMAT.to_le_bytes().to_vec()));
        drop(txn);
        check_format(&db, &path).expect("and is accepted again as format 3");
        assert!(snapshots::read(&db).expect("read").expect("kept").data == data);
    }
}
