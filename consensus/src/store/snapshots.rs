//! The latest snapshot in the store file, written in bounded pieces.
//!
//! redb has one writer at a time, and the Raft log's appends are writes. A
//! snapshot written as one value held that writer for as long as it took to
//! copy and flush the whole state (about 100 ms per 15 MB here), and every
//! client write waited behind it. So a snapshot is stored as chunks of at
//! most [`CHUNK_BYTES`], one durable transaction each, with a pause after
//! each so that a waiting log append can take redb's writer lock (the lock
//! is not fair: the pause makes the hand-over likely, not certain).
//!
//! Layout: `snapshot_chunks` maps (generation, chunk number) to bytes; the
//! `snapshot` table's "current" key holds a [`Manifest`]: the snapshot's
//! metadata, its generation, chunk count and length.
//!
//! Invariant: the manifest names a generation whose chunks are all on disk.
//! The chunks of a new generation are written first; the transaction that
//! switches the manifest to it also deletes the previous generation's. A
//! crash mid-way leaves the old manifest and its chunks intact, plus orphan
//! chunks of a later generation, which the next write removes first. One writer at a time
//! (the caller holds a lock), so generations never interleave. A snapshot
//! never replaces one that covers as much of the log or more: a snapshot
//! installed from the leader while an older one was being built stays.

use super::{io_error, SNAPSHOT, SNAPSHOT_CHUNKS};
use crate::types::{SnapshotMeta, StorageError};
use openraft::{ErrorSubject, ErrorVerb};
use redb::{Database, ReadableTable};
use serde::{Deserialize, Serialize};

/// The key of the manifest in the `snapshot` table.
pub(crate) const CURRENT: &str = "current";

/// The most bytes of snapshot one transaction writes.
pub(crate) const CHUNK_BYTES: usize = 512 * 1024;

/// The most a read reserves up front from what the manifest says (the vector
/// grows past it as chunks arrive).
const FIRST_ALLOCATION_BOUND: u64 = 64 * 1024 * 1024;

/// How long the snapshot writer steps aside after each chunk. redb's writer
/// lock is not fair: a thread that commits and at once begins again usually
/// gets it back before a waiting log append has even been scheduled, and
/// would keep it until the last chunk. Stepping aside hands it over (50 ms
/// in all for a 25 MB snapshot, which is taken once per thousands of entries).
const PAUSE_BETWEEN_CHUNKS: std::time::Duration = std::time::Duration::from_millis(1);

/// Where the current snapshot's bytes are.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    meta: SnapshotMeta,
    generation: u64,
    chunks: u32,
    len: u64,
}

/// A stored snapshot: its metadata and data.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredSnapshot {
    pub(crate) meta: SnapshotMeta,
    pub(crate) data: Vec<u8>,
}

fn failure(verb: ErrorVerb) -> impl Fn(String) -> StorageError {
    move |e| io_error(ErrorSubject::Snapshot(None), verb, e)
}

fn read_manifest(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Option<Manifest>, String> {
    let Some(bytes) = table.get(CURRENT).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    bincode::deserialize(bytes.value())
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The current snapshot, if any.
pub(crate) fn read(db: &Database) -> Result<Option<StoredSnapshot>, StorageError> {
    let fail = failure(ErrorVerb::Read);
    let txn = db.begin_read().map_err(|e| fail(e.to_string()))?;
    let manifests = txn.open_table(SNAPSHOT).map_err(|e| fail(e.to_string()))?;
    let Some(manifest) = read_manifest(&manifests).map_err(&fail)? else {
        return Ok(None);
    };
    let chunks = txn
        .open_table(SNAPSHOT_CHUNKS)
        .map_err(|e| fail(e.to_string()))?;
    // The manifest's length is checked after reading; it sizes the first
    // allocation only up to a bound, so that a corrupt one cannot abort.
    let most = (manifest.chunks as u64 * CHUNK_BYTES as u64).min(FIRST_ALLOCATION_BOUND);
    let mut data = Vec::with_capacity(usize::try_from(manifest.len.min(most)).unwrap_or(0));
    for number in 0..manifest.chunks {
        let chunk = chunks
            .get((manifest.generation, number))
            .map_err(|e| fail(e.to_string()))?
            .ok_or_else(|| {
                fail(format!(
                    "snapshot generation {} lacks chunk {number} of {}",
                    manifest.generation, manifest.chunks
                ))
            })?;
        data.extend_from_slice(chunk.value());
    }
    if data.len() as u64 != manifest.len {
        return Err(fail(format!(
            "snapshot generation {} has {} bytes, its manifest says {}",
            manifest.generation,
            data.len(),
            manifest.len
        )));
    }
    Ok(Some(StoredSnapshot {
        meta: manifest.meta,
        data,
    }))
}

/// `data` in chunks of at most [`CHUNK_BYTES`], and how many there are.
fn split(data: &[u8]) -> Result<(Vec<&[u8]>, u32), String> {
    let pieces: Vec<&[u8]> = data.chunks(CHUNK_BYTES).collect();
    let count = u32::try_from(pieces.len()).map_err(|e| e.to_string())?;
    Ok((pieces, count))
}

/// What [`write`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// `meta` and `data` are now the current snapshot.
    Current,
    /// The current snapshot already covers `meta`'s last log id (a snapshot
    /// installed from the leader while this one was being built): kept.
    Superseded,
}

/// Whether a snapshot up to `new` may replace one up to `current`: only if
/// it covers more of the log. Storing an older one would leave the file's
/// snapshot behind a log already purged up to the newer one.
fn replaces(new: &SnapshotMeta, current: Option<&SnapshotMeta>) -> bool {
    current.is_none_or(|current| new.last_log_id > current.last_log_id)
}

/// Makes `meta` and `data` the current snapshot, durably, in transactions of
/// at most [`CHUNK_BYTES`] of data each, unless the current one is at least
/// as recent. The caller must be the only writer of snapshots.
pub(crate) fn write(
    db: &Database,
    meta: &SnapshotMeta,
    data: &[u8],
) -> Result<Written, StorageError> {
    let fail = failure(ErrorVerb::Write);
    let (pieces, count) = split(data).map_err(&fail)?;
    // First: read the manifest, and look for orphans of an interrupted write
    // without taking the writer lock. Only a later generation than the
    // manifest's can have them (the manifest switch drops the earlier one).
    let (previous, generation, orphans) = {
        let txn = db.begin_read().map_err(|e| fail(e.to_string()))?;
        let manifests = txn.open_table(SNAPSHOT).map_err(|e| fail(e.to_string()))?;
        let previous = read_manifest(&manifests).map_err(&fail)?;
        let generation = previous.as_ref().map_or(1, |m| m.generation + 1);
        let chunks = txn
            .open_table(SNAPSHOT_CHUNKS)
            .map_err(|e| fail(e.to_string()))?;
        let orphans = chunks
            .range((generation, 0)..)
            .map_err(|e| fail(e.to_string()))?
            .next()
            .is_some();
        (previous, generation, orphans)
    };
    if orphans {
        // Only the orphans' key range is visited: the current snapshot's
        // chunks are not read under the writer lock.
        let txn = db.begin_write().map_err(|e| fail(e.to_string()))?;
        txn.open_table(SNAPSHOT_CHUNKS)
            .map_err(|e| fail(e.to_string()))?
            .retain_in((generation, 0).., |_, _| false)
            .map_err(|e| fail(e.to_string()))?;
        txn.commit().map_err(|e| fail(e.to_string()))?;
    }
    if !replaces(meta, previous.as_ref().map(|m| &m.meta)) {
        return Ok(Written::Superseded);
    }
    for (number, piece) in (0..count).zip(&pieces) {
        let txn = db.begin_write().map_err(|e| fail(e.to_string()))?;
        {
            let mut chunks = txn
                .open_table(SNAPSHOT_CHUNKS)
                .map_err(|e| fail(e.to_string()))?;
            chunks
                .insert((generation, number), *piece)
                .map_err(|e| fail(e.to_string()))?;
        }
        txn.commit().map_err(|e| fail(e.to_string()))?;
        std::thread::sleep(PAUSE_BETWEEN_CHUNKS);
    }
    // Last: switch the manifest and drop the previous generation, together.
    let manifest = Manifest {
        meta: meta.clone(),
        generation,
        chunks: count,
        len: data.len() as u64,
    };
    let bytes = bincode::serialize(&manifest).map_err(|e| fail(e.to_string()))?;
    let txn = db.begin_write().map_err(|e| fail(e.to_string()))?;
    {
        let mut manifests = txn.open_table(SNAPSHOT).map_err(|e| fail(e.to_string()))?;
        manifests
            .insert(CURRENT, bytes.as_slice())
            .map_err(|e| fail(e.to_string()))?;
        if let Some(previous) = previous {
            let mut chunks = txn
                .open_table(SNAPSHOT_CHUNKS)
                .map_err(|e| fail(e.to_string()))?;
            for number in 0..previous.chunks {
                chunks
                    .remove((previous.generation, number))
                    .map_err(|e| fail(e.to_string()))?;
            }
        }
    }
    txn.commit().map_err(|e| fail(e.to_string()))?;
    Ok(Written::Current)
}

/// Rewrites a snapshot of store format 2 (one value under "current") in
/// this layout, inside `txn` (the format upgrade).
pub(crate) fn upgrade_from_single_value(txn: &redb::WriteTransaction) -> Result<(), String> {
    let mut manifests = txn.open_table(SNAPSHOT).map_err(|e| e.to_string())?;
    let old = match manifests.get(CURRENT).map_err(|e| e.to_string())? {
        Some(bytes) => bincode::deserialize::<StoredSnapshot>(bytes.value()),
        None => return Ok(()),
    };
    let old = old.map_err(|e| e.to_string())?;
    let mut chunks = txn.open_table(SNAPSHOT_CHUNKS).map_err(|e| e.to_string())?;
    let (pieces, count) = split(&old.data)?;
    for (number, piece) in (0..count).zip(&pieces) {
        chunks
            .insert((1, number), *piece)
            .map_err(|e| e.to_string())?;
    }
    let manifest = Manifest {
        meta: old.meta,
        generation: 1,
        chunks: count,
        len: old.data.len() as u64,
    };
    let bytes = bincode::serialize(&manifest).map_err(|e| e.to_string())?;
    manifests
        .insert(CURRENT, bytes.as_slice())
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::LogId;
    use openraft::CommittedLeaderId;
    use redb::ReadableTableMetadata;

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
            last_membership: Default::default(),
            snapshot_id: format!("s{index}"),
        }
    }

    /// Distinct bytes, so that a chunk out of place would show.
    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    /// Puts one chunk straight into the table, as an interrupted write would
    /// have left it.
    fn put_chunk(db: &Database, key: (u64, u32), bytes: &[u8]) {
        let txn = db.begin_write().expect("txn");
        txn.open_table(SNAPSHOT_CHUNKS)
            .expect("chunks")
            .insert(key, bytes)
            .expect("insert");
        txn.commit().expect("commit");
    }

    fn chunk_keys(db: &Database) -> Vec<(u64, u32)> {
        let txn = db.begin_read().expect("read");
        let chunks = txn.open_table(SNAPSHOT_CHUNKS).expect("chunks");
        chunks
            .iter()
            .expect("iter")
            .map(|item| item.expect("item").0.value())
            .collect()
    }

    #[test]
    fn a_snapshot_of_many_chunks_reads_back_whole_and_replaces_the_previous_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = super::super::open_database(&dir.path().join("raft.redb")).expect("open");
        assert!(read(&db).expect("read").is_none());
        let first = data(2 * CHUNK_BYTES + 17, 1);
        write(&db, &meta(10), &first).expect("write");
        let back = read(&db).expect("read").expect("a snapshot");
        assert_eq!(back.meta, meta(10));
        assert!(back.data == first, "the bytes come back in order");
        assert_eq!(chunk_keys(&db), vec![(1, 0), (1, 1), (1, 2)]);
        let second = data(CHUNK_BYTES / 2, 2);
        write(&db, &meta(20), &second).expect("write again");
        let back = read(&db).expect("read").expect("a snapshot");
        assert_eq!(back.meta, meta(20));
        assert!(back.data == second);
        assert_eq!(
            chunk_keys(&db),
            vec![(2, 0)],
            "the previous generation's chunks are gone"
        );
        // An empty snapshot has no chunks and still reads back.
        write(&db, &meta(30), &[]).expect("write empty");
        let back = read(&db).expect("read").expect("a snapshot");
        assert!(back.data.is_empty());
        assert!(chunk_keys(&db).is_empty());
    }

    #[test]
    fn a_snapshot_never_replaces_one_that_covers_as_much_of_the_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = super::super::open_database(&dir.path().join("raft.redb")).expect("open");
        let installed = data(CHUNK_BYTES + 1, 7);
        assert_eq!(
            write(&db, &meta(20), &installed).expect("write"),
            Written::Current
        );
        // An interrupted write left an orphan chunk behind.
        put_chunk(&db, (2, 0), b"orphan");
        // A snapshot built up to entry 10 finishes after one up to entry 20
        // was installed from the leader: the newer one stays (and the orphan
        // goes all the same).
        assert_eq!(
            write(&db, &meta(10), &data(10, 8)).expect("write"),
            Written::Superseded
        );
        assert_eq!(
            write(&db, &meta(20), &data(10, 9)).expect("write"),
            Written::Superseded
        );
        let back = read(&db).expect("read").expect("a snapshot");
        assert_eq!(back.meta, meta(20));
        assert!(back.data == installed);
        assert_eq!(chunk_keys(&db), vec![(1, 0), (1, 1)]);
        assert_eq!(
            write(&db, &meta(30), &data(10, 10)).expect("write"),
            Written::Current
        );
    }

    #[test]
    fn chunks_left_by_an_interrupted_write_are_never_read_and_are_removed_by_the_next() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = super::super::open_database(&dir.path().join("raft.redb")).expect("open");
        let kept = data(CHUNK_BYTES + 5, 3);
        write(&db, &meta(10), &kept).expect("write");
        // A write of generation 2 that stopped after its second chunk (more
        // chunks than the next snapshot has, so that overwriting alone would
        // not remove them).
        put_chunk(&db, (2, 0), b"half a");
        put_chunk(&db, (2, 1), b"snapshot");
        let back = read(&db).expect("read").expect("a snapshot");
        assert_eq!(back.meta, meta(10));
        assert!(
            back.data == kept,
            "the manifest still names the whole snapshot"
        );
        let next = data(10, 4);
        write(&db, &meta(20), &next).expect("write");
        assert!(read(&db).expect("read").expect("a snapshot").data == next);
        assert_eq!(chunk_keys(&db), vec![(2, 0)]);
    }

    #[test]
    fn a_write_to_the_file_commits_while_a_large_snapshot_is_still_being_stored() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let dir = tempfile::tempdir().expect("temp dir");
        let db = super::super::open_database(&dir.path().join("raft.redb")).expect("open");
        let chunks = 64;
        let big = data(chunks * CHUNK_BYTES, 6);
        let finished = Arc::new(AtomicBool::new(false));
        let writer = {
            let (db, finished) = (db.clone(), finished.clone());
            std::thread::spawn(move || {
                write(&db, &meta(10), &big).expect("write");
                finished.store(true, Ordering::SeqCst);
            })
        };
        // Once the first chunk is on disk, a log append (any other write
        // transaction) must get its turn before the remaining chunks are done.
        loop {
            let txn = db.begin_read().expect("read");
            let table = txn.open_table(SNAPSHOT_CHUNKS).expect("chunks");
            if table.get((1, 0)).expect("get").is_some() {
                break;
            }
            std::thread::yield_now();
        }
        let txn = db.begin_write().expect("an append's transaction");
        txn.open_table(super::super::LOG)
            .expect("log")
            .insert(1, b"an entry".as_slice())
            .expect("insert");
        txn.commit().expect("commit");
        let snapshot_done_first = finished.load(Ordering::SeqCst);
        writer.join().expect("writer");
        assert!(
            !snapshot_done_first,
            "the append waited for the whole {chunks}-chunk snapshot"
        );
        assert_eq!(
            read(&db).expect("read").expect("snapshot").data.len(),
            chunks * CHUNK_BYTES
        );
    }

    #[test]
    fn a_manifest_whose_chunks_are_missing_is_an_error_not_a_short_snapshot() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = super::super::open_database(&dir.path().join("raft.redb")).expect("open");
        write(&db, &meta(10), &data(CHUNK_BYTES + 1, 5)).expect("write");
        let txn = db.begin_write().expect("txn");
        txn.open_table(SNAPSHOT_CHUNKS)
            .expect("chunks")
            .remove((1, 1))
            .expect("remove");
        txn.commit().expect("commit");
        let error = read(&db).expect_err("a chunk is missing").to_string();
        assert!(error.contains("lacks chunk 1 of 2"), "{error}");
        let txn = db.begin_read().expect("read");
        assert_eq!(
            txn.open_table(SNAPSHOT_CHUNKS)
                .expect("chunks")
                .len()
                .expect("len"),
            1
        );
    }
}
