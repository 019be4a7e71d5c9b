//! carillon-consensus: a generic Raft-replicated state machine service.
//!
//! A domain implements [`ReplicatedState`]; [`Consensus`] replicates it on
//! openraft with a redb store (one file per node), serves peers over HTTP,
//! forwards client requests to the leader with retries, and answers
//! linearizable reads.
//!
//! Invariants: a write acknowledged to a client is durable on a quorum;
//! every replica applies the same commands in the same order with the same
//! [`ApplyContext`]; a command id is applied at most once within the
//! deduplication window, and a retry gets the first answer; a [`Consensus::read`]
//! observes every write acknowledged before it began. This crate knows
//! nothing about calls, agents or tenants.

// openraft's StorageError is large by design and every storage function
// returns it; boxing it at each call would only add allocations.
#![allow(clippy::result_large_err)]

mod batch;
mod clock;
mod dedup;
mod error;
mod metrics;
mod network;
mod rpc;
mod service;
mod state;
mod status;
pub mod store;
mod types;

pub use clock::{Clock, SystemClock};
pub use dedup::DEDUP_WINDOW;
pub use error::ConsensusError;
pub use service::{Consensus, ConsensusConfig, RaftTiming};
pub use state::{ApplyContext, CommandId, ReplicatedState, SnapshotError};
pub use status::{ClusterStatus, MemberRole, MemberStatus};
pub use store::Notice;
pub use types::{NodeAddr, NodeId, TypeConfig};
