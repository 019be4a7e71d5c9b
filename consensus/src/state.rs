//! The contract between the consensus service and the domain it replicates.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// Identifies one client command across retries. A retried command carries
/// the same id and receives the answer of its first application; it is never
/// applied twice (within the deduplication window, see `DEDUP_WINDOW`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct CommandId(pub String);

/// What the state machine learns about a command besides its payload.
/// Everything here is decided once, by the proposer, and replicated, so that
/// every replica applies the same command to the same effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyContext {
    /// Raft log index of the entry that carries the command (the commands
    /// batched into one entry share it; it orders commands but does not
    /// name one).
    pub log_index: u64,
    /// Wall-clock time at the proposer, in milliseconds since the Unix epoch.
    /// The only notion of "now" a state machine may use.
    pub proposed_at_ms: u64,
    /// The client-supplied id of the command.
    pub command_id: CommandId,
}

/// A deterministic state machine that the consensus service replicates.
///
/// Invariant: `apply` is a pure function of `(self, command, context)`;
/// it reads no clock, no randomness and no I/O. Domain refusals are part of
/// `Response`, never panics.
pub trait ReplicatedState: Default + Send + Sync + 'static {
    /// A request to change the state.
    type Command: Serialize + DeserializeOwned + Debug + Send + Sync + 'static;
    /// The answer to one command (domain refusals included).
    type Response: Serialize + DeserializeOwned + Debug + Clone + Send + Sync + 'static;
    /// What an applied command changed, for observers that keep views of the
    /// state (so that they need not read all of it, under its lock, after
    /// every command).
    type Change: Debug + Clone + Send + Sync + 'static;

    /// Applies one committed command.
    fn apply(&mut self, command: Self::Command, context: &ApplyContext) -> Self::Response;

    /// The changes made by the commands applied since the last call; the
    /// service takes them after each entry and publishes them
    /// ([`crate::Consensus::subscribe`]).
    fn take_changes(&mut self) -> Vec<Self::Change> {
        Vec::new()
    }

    /// Serialises the whole state for a snapshot.
    fn snapshot(&self) -> Result<Vec<u8>, SnapshotError>;

    /// Rebuilds a state from a snapshot made by `snapshot`.
    fn restore(bytes: &[u8]) -> Result<Self, SnapshotError>;
}

/// A snapshot could not be made or read.
#[derive(Debug, thiserror::Error)]
#[error("snapshot codec: {0}")]
pub struct SnapshotError(pub String);
