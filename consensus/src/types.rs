//! The openraft type configuration and the replicated entry format.
//!
//! Raft carries opaque bytes: the domain command is encoded once by the
//! proposer (JSON) inside an [`Envelope`] and decoded by every replica's
//! state machine. This keeps the Raft types concrete and the domain generic.
//!
//! One Raft entry carries a [`Batch`] of envelopes (group commit: the
//! commands that arrived together share one fsync and one replication round
//! trip); applying it yields one answer per envelope, in order, each command
//! deduplicated by its own id.

use crate::state::CommandId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Cursor;

/// A node's identity in the cluster (Raft node id).
pub type NodeId = u64;

/// One replicated client command.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Client-supplied id; the state machine applies a given id once.
    pub command_id: CommandId,
    /// Proposer's wall clock, milliseconds since the Unix epoch.
    pub proposed_at_ms: u64,
    /// The domain command, JSON-encoded by the proposer.
    pub payload: Vec<u8>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Payloads can carry password hashes: never print them.
        f.debug_struct("Envelope")
            .field("command_id", &self.command_id)
            .field("proposed_at_ms", &self.proposed_at_ms)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// The client commands of one Raft entry, applied in order.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Batch(pub Vec<Envelope>);

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Payloads can carry password hashes: never print them.
        write!(f, "Batch({} commands)", self.0.len())
    }
}

/// The answers to one entry's [`Batch`], one per envelope and in its order
/// (empty for blank and membership entries).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Answers(pub Vec<Applied>);

impl fmt::Debug for Answers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Answers({})", self.0.len())
    }
}

/// The state machine's answer to one envelope: the domain response, JSON-encoded.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Applied(pub Vec<u8>);

impl fmt::Debug for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Applied({} bytes)", self.0.len())
    }
}

/// Where a member can be reached: its Raft (node-to-node) address and its
/// admin API address, both `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NodeAddr {
    /// Node-to-node Raft transport address.
    pub raft_addr: String,
    /// Admin HTTP API address.
    pub admin_addr: String,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raft={} admin={}", self.raft_addr, self.admin_addr)
    }
}

openraft::declare_raft_types!(
    /// Carillon's Raft type configuration.
    pub TypeConfig:
        D = Batch,
        R = Answers,
        NodeId = NodeId,
        Node = NodeAddr,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A Raft log entry of this configuration.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id of this configuration.
pub type LogId = openraft::LogId<NodeId>;
/// The Raft handle of this configuration.
pub type Raft = openraft::Raft<TypeConfig>;
/// A storage error of this configuration.
pub type StorageError = openraft::StorageError<NodeId>;
/// Stored membership of this configuration.
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeAddr>;
/// Snapshot metadata of this configuration.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeAddr>;
