//! carillon-actors: the contact-centre domain.
//!
//! `model` holds the data and the validation rules (V1-V6) as pure
//! functions; `ledger` is the replicated state machine (directory, licence
//! ledger, agent sessions, queue entries) that consensus replicates;
//! `history` is the interface of the store of closed activity records.
//!
//! Invariants: nothing here reads a clock, draws randomness or does I/O; a
//! refusal is a value with a stable code naming its rule, never a panic; an
//! object belongs to exactly one tenant and no query or command crosses
//! tenants; plaintext secrets never enter the ledger and no type meant for
//! output (`UserView`, `DeviceView`, `TenantView`) carries a hash of one;
//! seats in use never exceed a licence pool (L6, asserted in production);
//! an entry is assigned at most once (Q3).

pub mod agent;
pub mod call;
pub mod device;
pub mod feature;
pub mod history;
pub mod ledger;
pub mod messages;
pub mod model;
pub mod placement;
pub mod queue;
pub mod routing;
pub mod shell;
