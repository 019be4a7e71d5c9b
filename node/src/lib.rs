//! carillon-node: the `carillon` binary's library (configuration, CLI,
//! process lifecycle, cluster bootstrap) and the SIP edge.
//!
//! Invariants:
//! - The SIP core is the crate carillon-sip (sans-IO: it never touches
//!   sockets, threads or the clock); this crate is its shell.
//! - This crate holds no domain rules: what a call, queue or agent does is
//!   decided in carillon-actors.
//! - A node stops cleanly on SIGTERM: it stops serving, then stops Raft.
//! - The SIP shell ([`sip_io`]) owns the edge in one task; transports reach
//!   it through bounded queues; registrations are not replicated (each node
//!   knows the phones registered to it) and reach the admin API through
//!   [`sip_ledger::EdgePresence`].
//! - Every node keeps its own history store ([`history`]), filled from its
//!   ledger replica: each activity record at most once.

pub mod calls;
pub mod cli;
pub mod config;
pub mod directory;
pub mod history;
pub mod logging;
pub mod mail;
pub mod running;
pub mod sip_io;
pub mod sip_ledger;
pub mod sip_metrics;
pub mod tls;
