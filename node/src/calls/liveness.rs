//! The failure detector behind placement: the Raft leader sees which
//! members answer its heartbeats, and when the set of answering members
//! differs from the ledger's placement for two checks in a row, it proposes
//! the next placement epoch with the members that answer. Every node then
//! moves actors by the same rendezvous hash (`carillon_actors::placement`).
//!
//! Liveness: a member counts as live while it answered within
//! [`ANSWER_WITHIN`]; the leader always counts itself.

use std::collections::BTreeSet;
use std::time::Duration;

use carillon_actors::ledger::{Command, Ledger};
use carillon_consensus::{CommandId, Consensus};

/// How often the leader checks.
pub const CHECK_EVERY: Duration = Duration::from_millis(250);
/// A member that answered within this is live.
pub const ANSWER_WITHIN: Duration = Duration::from_millis(1_000);

/// Runs the check on this node (it acts only while it leads) until the
/// process stops.
pub fn spawn(consensus: Consensus<Ledger>) {
    tokio::spawn(async move {
        let mut differing = 0u32;
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let status = consensus.status().await;
            if status.leader != Some(status.node_id) {
                differing = 0;
                continue;
            }
            let live: BTreeSet<u64> = status
                .members
                .iter()
                .filter(|m| {
                    m.id == status.node_id
                        || m.last_answer_ms_ago
                            .is_some_and(|ms| u128::from(ms) <= ANSWER_WITHIN.as_millis())
                })
                .map(|m| m.id)
                .collect();
            let placement = consensus.read_local(|l| l.placement().clone());
            if placement.members == live {
                differing = 0;
                continue;
            }
            differing += 1;
            // The first placement goes at once; later ones after two checks
            // (a member that misses one heartbeat is not moved away).
            if placement.epoch > 0 && differing < 2 {
                continue;
            }
            let epoch = placement.epoch + 1;
            let command = Command::SetPlacement {
                epoch,
                members: live.clone(),
            };
            match consensus
                .write(CommandId(format!("placement/{epoch}")), &command)
                .await
            {
                Ok(Ok(_)) => {
                    tracing::info!(epoch, members = ?live, "placement changed");
                    differing = 0;
                }
                Ok(Err(refusal)) => tracing::debug!(%refusal.message, "placement not changed"),
                Err(e) => tracing::debug!(error = %e, "placement not written"),
            }
        }
    });
}
