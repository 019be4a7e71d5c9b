//! The agent actor: [`machine`] (sans-IO), [`snapshot`] (what it reads of
//! the ledger) and its ractor shell in `crate::shell`.

mod io;
pub mod machine;
pub mod snapshot;

pub use machine::{
    AgentEvent, AgentInput, AgentMachine, AgentOp, AgentOutput, AgentSnapshot, AgentState,
};
pub use snapshot::agent_snapshot;

#[cfg(test)]
mod tests;
