//! carillon-node: the `carillon` binary's library (configuration, CLI,
//! process lifecycle, cluster bootstrap) and the SIP edge.
//!
//! Invariants:
//! - The SIP core in [`sip`] is sans-IO: it never touches sockets, threads
//!   or the clock; time is passed in (`sip::transaction::Millis`) and effects
//!   come out as values that a shell performs.
//! - Malformed input from the network is an error value (a 400 to answer, or
//!   a message to drop), never a panic; every parser enforces documented
//!   size limits (`sip::message::MAX_MESSAGE_BYTES` and friends).
//! - This crate holds no domain rules: what a call, queue or agent does is
//!   decided in carillon-actors.
//! - A node stops cleanly on SIGTERM: it stops serving, then stops Raft.
//! - The SIP shell ([`sip_io`]) owns the edge in one task; transports reach
//!   it through bounded queues; registrations are not replicated (each node
//!   knows the phones registered to it) and reach the admin API through
//!   [`sip_ledger::EdgePresence`].

pub mod cli;
pub mod config;
pub mod logging;
pub mod running;
pub mod sip;
pub mod sip_io;
pub mod sip_ledger;
pub mod sip_metrics;
