//! What the cluster looks like from one node: members, roles, leader, term,
//! indexes and the health of each member.

use crate::types::NodeId;
use serde::{Deserialize, Serialize};

/// A member's role in the Raft group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    /// Votes and counts towards the quorum.
    Voter,
    /// Receives the log but does not vote.
    Learner,
}

/// One member as seen from the node that reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Raft node id.
    pub id: NodeId,
    /// Node-to-node address.
    pub raft_addr: String,
    /// Admin API address.
    pub admin_addr: String,
    /// Voter or learner.
    pub role: MemberRole,
    /// Highest log index known to be replicated to it (leader's view).
    pub matched_index: Option<u64>,
    /// Milliseconds since it last answered the reporting node, if ever.
    pub last_answer_ms_ago: Option<u64>,
    /// It answers and is not far behind.
    pub healthy: bool,
}

/// The cluster as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The node that reports.
    pub node_id: NodeId,
    /// The leader this node knows of.
    pub leader: Option<NodeId>,
    /// This node's current term.
    pub term: u64,
    /// Highest committed log index this node knows of.
    pub commit_index: u64,
    /// Highest log index applied to this node's state machine.
    pub applied_index: u64,
    /// Highest log index in this node's log.
    pub last_log_index: u64,
    /// Index covered by this node's latest snapshot.
    pub snapshot_index: Option<u64>,
    /// Snapshots this node installed from a leader since it started.
    pub snapshots_installed: u64,
    /// Every member of the current membership.
    pub members: Vec<MemberStatus>,
}
