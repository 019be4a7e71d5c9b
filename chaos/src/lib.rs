//! carillon-chaos: drives Carillon node processes from outside and checks
//! invariants the way an operator would see them, over the admin API.
//!
//! Invariants: every process this harness starts is stopped by it, by pid,
//! when the supervisor is dropped (a panicking test leaves no orphan); every
//! wait and load loop is bounded in count and time; nothing here is a
//! dependency of a production crate.

pub mod client;
pub mod cluster;
pub mod report;

pub use client::{AdminClient, ApiReply};
pub use cluster::{carillon_binary, free_port, ClusterSupervisor, NodeSpec};
pub use report::ChaosReport;
