//! The node's history (H1, C4): the embedded store of closed activity
//! records ([`store`], `history.redb` in the data directory, one per node)
//! and the writer that fills it from the ledger replica's outboxes
//! ([`writer`]). Every node keeps every tenant's records, so the admin API
//! answers history reads from any node, from its own file.

pub mod store;
pub mod writer;

pub use store::{RedbHistory, HISTORY_FILE};
pub use writer::{spawn as spawn_writer, HistoryMetrics};
