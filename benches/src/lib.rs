//! carillon-benches: benchmarks that run Carillon beside a peer on the same
//! machine and report ratios. Benchmarks measure; tests check behaviour.
//!
//! Invariant: every load loop is bounded in time and count, and every
//! process a benchmark starts is stopped by it.

pub mod cluster;
pub mod load;
pub mod queue_sim;
