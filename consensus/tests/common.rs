//! A small replicated state for the consensus tests: named counters.

use carillon_consensus::{ApplyContext, ReplicatedState, SnapshotError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub values: BTreeMap<String, u64>,
    pub applied: u64,
    pub last_proposed_at_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum CounterCommand {
    Add { key: String, amount: u64 },
}

impl ReplicatedState for Counters {
    type Change = ();
    type Command = CounterCommand;
    type Response = u64;

    fn apply(&mut self, command: CounterCommand, context: &ApplyContext) -> u64 {
        self.applied += 1;
        self.last_proposed_at_ms = context.proposed_at_ms;
        match command {
            CounterCommand::Add { key, amount } => {
                let value = self.values.entry(key).or_default();
                *value += amount;
                *value
            }
        }
    }

    fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        serde_json::to_vec(self).map_err(|e| SnapshotError(e.to_string()))
    }

    fn restore(bytes: &[u8]) -> Result<Self, SnapshotError> {
        serde_json::from_slice(bytes).map_err(|e| SnapshotError(e.to_string()))
    }
}
