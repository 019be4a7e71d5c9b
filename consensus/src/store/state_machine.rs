//! The applied state: the domain state machine, the idempotence window, the
//! last applied log id and membership, and the latest snapshot in redb.

use super::io_error;
use super::snapshots::{self, StoredSnapshot, Written};
use crate::dedup::Dedup;
use crate::state::{ApplyContext, ReplicatedState};
use crate::types::{
    Answers, Applied, Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{EntryPayload, ErrorSubject, ErrorVerb, OptionalSend, RaftSnapshotBuilder};
use redb::Database;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

/// What `apply` says for an entry that is not a client command, or for a
/// command that no replica can decode (a bug in the proposer: every replica
/// answers it the same way and nothing changes).
pub(crate) const UNDECODABLE: &[u8] = b"\"undecodable command\"";

/// The applied state shared between openraft (the only writer) and readers.
#[derive(Debug)]
pub(crate) struct Machine<S> {
    pub(crate) state: S,
    pub(crate) dedup: Dedup,
    pub(crate) last_applied: Option<LogId>,
    pub(crate) membership: StoredMembership,
}

impl<S: Default> Default for Machine<S> {
    fn default() -> Self {
        Self {
            state: S::default(),
            dedup: Dedup::default(),
            last_applied: None,
            membership: StoredMembership::default(),
        }
    }
}

/// The serialised form of a `Machine` inside a snapshot. Encoding borrows
/// the membership and the idempotence window (up to 200,000 answers) rather
/// than copying them while apply waits; decoding owns them.
#[derive(Serialize, Deserialize)]
struct MachineImage<'a> {
    last_applied: Option<LogId>,
    membership: Cow<'a, StoredMembership>,
    dedup: Cow<'a, Dedup>,
    state: Vec<u8>,
}

/// Read access to the applied domain state.
#[derive(Debug)]
pub struct MachineView<S> {
    machine: Arc<RwLock<Machine<S>>>,
}

impl<S> Clone for MachineView<S> {
    fn clone(&self) -> Self {
        Self {
            machine: self.machine.clone(),
        }
    }
}

impl<S> MachineView<S> {
    /// Runs `f` on the current applied state. Keep `f` short: `apply` waits.
    pub fn read<T>(&self, f: impl FnOnce(&S) -> T) -> T {
        let guard = self.lock();
        f(&guard.state)
    }

    /// The index of the last applied entry (0 before any).
    pub fn applied_index(&self) -> u64 {
        self.lock().last_applied.map_or(0, |id| id.index)
    }

    fn lock(&self) -> RwLockReadGuard<'_, Machine<S>> {
        // A poisoned lock means `apply` panicked on an invariant: the process
        // must not go on serving a state that broke one.
        self.machine
            .read()
            .unwrap_or_else(|_| panic!("state machine lock poisoned: an invariant failed in apply"))
    }
}

/// What observers of the applied state hear ([`crate::Consensus::subscribe`]).
#[derive(Debug, Clone)]
pub enum Notice<C> {
    /// The commands of the entry at `index` were applied and made these
    /// changes (none for an entry whose commands changed nothing).
    Applied {
        /// The entry's log index.
        index: u64,
        /// What changed, in order.
        changes: Arc<Vec<C>>,
    },
    /// The state was replaced by a snapshot up to `index`: a view must be
    /// rebuilt from the state.
    Reset {
        /// The snapshot's last index.
        index: u64,
    },
}

/// Notices kept for slow observers; one that falls further behind is told
/// it lagged (and rebuilds its view).
pub const NOTICE_BACKLOG: usize = 16_384;

/// openraft's state machine over a [`ReplicatedState`].
#[derive(Debug)]
pub struct StateMachineStore<S: ReplicatedState> {
    db: Arc<Database>,
    machine: Arc<RwLock<Machine<S>>>,
    notices: tokio::sync::broadcast::Sender<Notice<S::Change>>,
    snapshot_counter: Arc<AtomicU64>,
    snapshots_installed: Arc<AtomicU64>,
    /// Held while a snapshot is being stored (its chunks must not interleave
    /// with another's).
    snapshot_writer: Arc<Mutex<()>>,
}

impl<S: ReplicatedState> Clone for StateMachineStore<S> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            machine: self.machine.clone(),
            notices: self.notices.clone(),
            snapshot_counter: self.snapshot_counter.clone(),
            snapshots_installed: self.snapshots_installed.clone(),
            snapshot_writer: self.snapshot_writer.clone(),
        }
    }
}

impl<S: ReplicatedState> StateMachineStore<S> {
    /// Opens the state machine; restores it from the stored snapshot if any.
    pub(crate) fn open(db: Arc<Database>) -> Result<Self, StorageError> {
        let store = Self {
            db,
            machine: Arc::new(RwLock::new(Machine::default())),
            notices: tokio::sync::broadcast::channel(NOTICE_BACKLOG).0,
            snapshot_counter: Arc::new(AtomicU64::new(0)),
            snapshots_installed: Arc::new(AtomicU64::new(0)),
            snapshot_writer: Arc::new(Mutex::new(())),
        };
        if let Some(stored) = store.read_stored()? {
            let machine = decode_image::<S>(&stored.data)?;
            *store.write_lock() = machine;
        }
        Ok(store)
    }

    /// A read handle on the applied state.
    pub fn view(&self) -> MachineView<S> {
        MachineView {
            machine: self.machine.clone(),
        }
    }

    /// A sender of notices (subscribe to it to observe the applied state).
    pub fn notices(&self) -> tokio::sync::broadcast::Sender<Notice<S::Change>> {
        self.notices.clone()
    }

    /// How many snapshots this node has installed from a leader since start.
    pub fn snapshots_installed(&self) -> Arc<AtomicU64> {
        self.snapshots_installed.clone()
    }

    fn write_lock(&self) -> std::sync::RwLockWriteGuard<'_, Machine<S>> {
        self.machine
            .write()
            .unwrap_or_else(|_| panic!("state machine lock poisoned: an invariant failed in apply"))
    }

    fn read_stored(&self) -> Result<Option<StoredSnapshot>, StorageError> {
        snapshots::read(&self.db)
    }

    /// Stores a snapshot unless the stored one is at least as recent
    /// (blocking: call it off the async workers). One snapshot writer at a
    /// time.
    fn write_stored(&self, meta: &SnapshotMeta, data: &[u8]) -> Result<Written, StorageError> {
        let _writer = self
            .snapshot_writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        snapshots::write(&self.db, meta, data)
    }
}

/// Runs `work` (tens of milliseconds of encoding or disk per 10 MB of
/// snapshot) on a blocking thread, not on an async worker; `verb` names what
/// failed if the thread does not return.
async fn off_the_workers<T: Send + 'static>(
    verb: ErrorVerb,
    work: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| io_error(ErrorSubject::Snapshot(None), verb, e))?
}

fn decode_image<S: ReplicatedState>(data: &[u8]) -> Result<Machine<S>, StorageError> {
    let subject = ErrorSubject::Snapshot(None);
    let image: MachineImage<'static> =
        bincode::deserialize(data).map_err(|e| io_error(subject.clone(), ErrorVerb::Read, e))?;
    let state = S::restore(&image.state).map_err(|e| io_error(subject, ErrorVerb::Read, e))?;
    Ok(Machine {
        state,
        dedup: image.dedup.into_owned(),
        last_applied: image.last_applied,
        membership: image.membership.into_owned(),
    })
}

/// Applies one client command to `machine`, at most once per command id
/// (also when the same id comes twice in one batch: the second gets the
/// first's answer).
fn apply_command<S: ReplicatedState>(
    machine: &mut Machine<S>,
    log_id: LogId,
    envelope: crate::types::Envelope,
) -> Applied {
    if let Some(first) = machine.dedup.answer(&envelope.command_id) {
        return Applied(first.to_vec());
    }
    let answer = match serde_json::from_slice::<S::Command>(&envelope.payload) {
        Ok(command) => {
            let context = ApplyContext {
                log_index: log_id.index,
                proposed_at_ms: envelope.proposed_at_ms,
                command_id: envelope.command_id.clone(),
            };
            let response = machine.state.apply(command, &context);
            // Responses are plain data; failing to encode one is a bug in the domain types.
            serde_json::to_vec(&response)
                .unwrap_or_else(|e| panic!("a domain response must always encode to JSON: {e}"))
        }
        Err(_) => UNDECODABLE.to_vec(),
    };
    machine.dedup.remember(envelope.command_id, answer.clone());
    Applied(answer)
}

impl<S: ReplicatedState> RaftSnapshotBuilder<TypeConfig> for StateMachineStore<S> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        // Encoding (apply waits meanwhile) and storing take tens of
        // milliseconds per 10 MB of state: a blocking thread does both,
        // rather than an async worker that other requests are waiting for.
        let store = self.clone();
        let (meta, data) = off_the_workers(ErrorVerb::Write, move || {
            // The durations are logged: this shell reads the clock.
            #[allow(clippy::disallowed_methods)]
            let started = std::time::Instant::now();
            let (meta, data) = store.encode_current()?;
            let encoded = started.elapsed();
            let written = store.write_stored(&meta, &data)?;
            let (bytes, encode_ms) = (data.len(), encoded.as_millis() as u64);
            let store_ms = (started.elapsed() - encoded).as_millis() as u64;
            let id = &meta.snapshot_id;
            match written {
                Written::Current => tracing::info!(
                    %id, bytes, encode_ms, store_ms,
                    "snapshot built (apply waited while it was encoded)"
                ),
                Written::Superseded => tracing::info!(
                    %id, bytes, encode_ms,
                    "snapshot built but not stored: a newer one was installed meanwhile"
                ),
            }
            Ok((meta, data))
        })
        .await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl<S: ReplicatedState> StateMachineStore<S> {
    /// The applied state's snapshot metadata and bytes. Apply waits while
    /// the state is encoded (a copy to encode outside the lock measured as
    /// slow as the encoding itself).
    fn encode_current(&self) -> Result<(SnapshotMeta, Vec<u8>), StorageError> {
        let machine = self.view();
        let guard = machine.lock();
        let subject = ErrorSubject::Snapshot(None);
        let state = guard
            .state
            .snapshot()
            .map_err(|e| io_error(subject.clone(), ErrorVerb::Write, e))?;
        let image = MachineImage {
            last_applied: guard.last_applied,
            membership: Cow::Borrowed(&guard.membership),
            dedup: Cow::Borrowed(&guard.dedup),
            state,
        };
        let data =
            bincode::serialize(&image).map_err(|e| io_error(subject, ErrorVerb::Write, e))?;
        let counter = self.snapshot_counter.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match guard.last_applied {
            Some(id) => format!("{}-{}-{counter}", id.leader_id, id.index),
            None => format!("none-{counter}"),
        };
        let meta = SnapshotMeta {
            last_log_id: guard.last_applied,
            last_membership: guard.membership.clone(),
            snapshot_id,
        };
        Ok((meta, data))
    }
}

impl<S: ReplicatedState> RaftStateMachine<TypeConfig> for StateMachineStore<S> {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let machine = self.view();
        let guard = machine.lock();
        Ok((guard.last_applied, guard.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Answers>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut answers = Vec::new();
        for entry in entries {
            // The lock is taken per entry so that readers (every API request
            // authenticates against the local state) wait for one entry at
            // most, never for a whole run of entries.
            let mut guard = self.write_lock();
            guard.last_applied = Some(entry.log_id);
            let answer = match entry.payload {
                EntryPayload::Blank => Answers::default(),
                EntryPayload::Normal(batch) => Answers(
                    batch
                        .0
                        .into_iter()
                        .map(|envelope| apply_command(&mut guard, entry.log_id, envelope))
                        .collect(),
                ),
                EntryPayload::Membership(membership) => {
                    guard.membership = StoredMembership::new(Some(entry.log_id), membership);
                    Answers::default()
                }
            };
            let changes = guard.state.take_changes();
            drop(guard);
            if !changes.is_empty() {
                // No receiver is fine: nobody observes yet.
                let _ = self.notices.send(Notice::Applied {
                    index: entry.log_id.index,
                    changes: Arc::new(changes),
                });
            }
            answers.push(answer);
        }
        Ok(answers)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let store = self.clone();
        let index = meta.last_log_id.map_or(0, |id| id.index);
        let meta = meta.clone();
        // Decoding and storing tens of megabytes: off the async workers.
        let machine = off_the_workers(ErrorVerb::Write, move || {
            let machine = decode_image::<S>(&data)?;
            if store.write_stored(&meta, &data)? == Written::Superseded {
                // openraft installs only snapshots newer than what is applied,
                // and a stored one is never newer than that: not expected.
                tracing::warn!(
                    id = %meta.snapshot_id,
                    "an installed snapshot was not stored: the stored one is as recent"
                );
            }
            Ok(machine)
        })
        .await?;
        *self.write_lock() = machine;
        self.snapshots_installed.fetch_add(1, Ordering::Relaxed);
        let _ = self.notices.send(Notice::Reset { index });
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let store = self.clone();
        let stored = off_the_workers(ErrorVerb::Read, move || store.read_stored()).await?;
        Ok(stored.map(|stored| Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{CommandId, SnapshotError};
    use crate::types::{Batch, Envelope};
    use openraft::{CommittedLeaderId, Entry as RaftEntry};

    /// Counts the commands it applies; answers the running count; each
    /// non-zero command is a change.
    #[derive(Debug, Default)]
    struct Tally(u64, Vec<u64>);

    impl ReplicatedState for Tally {
        type Change = u64;
        type Command = u64;
        type Response = u64;

        fn apply(&mut self, command: u64, _context: &ApplyContext) -> u64 {
            self.0 += command;
            if command != 0 {
                self.1.push(command);
            }
            self.0
        }

        fn take_changes(&mut self) -> Vec<u64> {
            std::mem::take(&mut self.1)
        }

        fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
            Ok(self.0.to_be_bytes().to_vec())
        }

        fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
            let bytes: [u8; 8] = bytes
                .try_into()
                .map_err(|_| SnapshotError("eight bytes".into()))?;
            Ok(Self(u64::from_be_bytes(bytes), Vec::new()))
        }
    }

    fn envelope(id: &str, amount: u64) -> Envelope {
        Envelope {
            command_id: CommandId(id.into()),
            proposed_at_ms: 7,
            payload: serde_json::to_vec(&amount).unwrap_or_default(),
        }
    }

    fn entry(index: u64, commands: Vec<Envelope>) -> Entry {
        RaftEntry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(Batch(commands)),
        }
    }

    fn answer(bytes: &Applied) -> u64 {
        serde_json::from_slice(&bytes.0).unwrap_or(u64::MAX)
    }

    #[tokio::test]
    async fn observers_hear_each_entrys_changes_once_and_a_reset_for_a_snapshot() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let db = super::super::open_database(&dir.path().join("raft.redb"))
            .unwrap_or_else(|e| panic!("open: {e}"));
        let mut store = StateMachineStore::<Tally>::open(db).unwrap_or_else(|e| panic!("{e}"));
        let mut notices = store.notices().subscribe();
        store
            .apply(vec![
                entry(
                    1,
                    vec![envelope("a", 5), envelope("b", 0), envelope("c", 2)],
                ),
                entry(2, vec![envelope("d", 0)]),
                // A retry of "a" changes nothing (answered from the window).
                entry(3, vec![envelope("a", 5), envelope("e", 1)]),
            ])
            .await
            .unwrap_or_else(|e| panic!("apply: {e}"));
        let mut heard = Vec::new();
        while let Ok(notice) = notices.try_recv() {
            match notice {
                Notice::Applied { index, changes } => heard.push((index, (*changes).clone())),
                Notice::Reset { .. } => panic!("no snapshot was installed"),
            }
        }
        assert_eq!(
            heard,
            [(1, vec![5, 2]), (3, vec![1])],
            "entry 2 changed nothing"
        );
        let snapshot = store
            .build_snapshot()
            .await
            .unwrap_or_else(|e| panic!("snapshot: {e}"));
        store
            .install_snapshot(&snapshot.meta, snapshot.snapshot)
            .await
            .unwrap_or_else(|e| panic!("install: {e}"));
        assert!(matches!(notices.try_recv(), Ok(Notice::Reset { index: 3 })));
    }

    #[tokio::test]
    async fn a_batch_answers_each_command_in_order_and_applies_each_id_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let db = super::super::open_database(&dir.path().join("raft.redb"))
            .unwrap_or_else(|e| panic!("open: {e}"));
        let mut store = StateMachineStore::<Tally>::open(db).unwrap_or_else(|e| panic!("{e}"));
        let answers = store
            .apply(vec![
                entry(
                    1,
                    vec![envelope("a", 1), envelope("b", 10), envelope("a", 1)],
                ),
                // A retry of "b" in a later entry, and a new command.
                entry(2, vec![envelope("b", 10), envelope("c", 100)]),
            ])
            .await
            .unwrap_or_else(|e| panic!("apply: {e}"));
        let answers: Vec<Vec<u64>> = answers
            .iter()
            .map(|a| a.0.iter().map(answer).collect())
            .collect();
        // "a" twice in one batch: one effect, the second copy gets the first
        // answer; "b" retried in the next entry: its first answer again.
        assert_eq!(answers, vec![vec![1, 11, 1], vec![11, 111]]);
        assert_eq!(store.view().read(|t| t.0), 111);
        assert_eq!(store.view().applied_index(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_snapshot_keeps_the_state_and_the_first_answers_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let db = super::super::open_database(&dir.path().join("raft.redb"))
            .unwrap_or_else(|e| panic!("open: {e}"));
        let mut store =
            StateMachineStore::<Tally>::open(db.clone()).unwrap_or_else(|e| panic!("{e}"));
        store
            .apply(vec![entry(1, vec![envelope("a", 5), envelope("b", 7)])])
            .await
            .unwrap_or_else(|e| panic!("apply: {e}"));
        let mut builder = store.get_snapshot_builder().await;
        let built = builder
            .build_snapshot()
            .await
            .unwrap_or_else(|e| panic!("build: {e}"));
        assert_eq!(built.meta.last_log_id.map(|id| id.index), Some(1));
        drop(store);
        // A node restarting from the file: the state, the last applied id and
        // the idempotence window all come back from the stored snapshot.
        let mut reopened = StateMachineStore::<Tally>::open(db).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reopened.view().read(|t| t.0), 12);
        assert_eq!(reopened.view().applied_index(), 1);
        let answers = reopened
            .apply(vec![entry(2, vec![envelope("a", 5), envelope("c", 1)])])
            .await
            .unwrap_or_else(|e| panic!("apply: {e}"));
        let answers: Vec<u64> = answers[0].0.iter().map(answer).collect();
        assert_eq!(
            answers,
            vec![5, 13],
            "a retried \"a\" gets its first answer"
        );
        let current = reopened
            .get_current_snapshot()
            .await
            .unwrap_or_else(|e| panic!("current: {e}"))
            .unwrap_or_else(|| panic!("a snapshot is stored"));
        assert_eq!(current.meta, built.meta);
    }
}
