//! `/api/v1/cluster`: the cluster as this node sees it, and membership changes.

use crate::access::Caller;
use crate::extract::{Body, Id};
use crate::problem::Problem;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use carillon_actors::ledger::Command;
use carillon_consensus::{ClusterStatus, MemberRole, NodeAddr};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use utoipa::ToSchema;

/// One member of the cluster.
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    /// Raft node id.
    pub id: u64,
    /// Node-to-node address.
    pub raft_addr: String,
    /// Admin API address.
    pub admin_addr: String,
    /// `voter` or `learner`.
    pub role: String,
    /// Whether this member is the leader.
    pub leader: bool,
    /// Highest log index known replicated to it (leader's view).
    pub matched_index: Option<u64>,
    /// Milliseconds since it last answered the leader.
    pub last_answer_ms_ago: Option<u64>,
    /// It answers and is not far behind.
    pub healthy: bool,
}

/// The cluster as the answering node sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cluster {
    /// The node that answered.
    pub node_id: u64,
    /// The leader, if one is known.
    pub leader: Option<u64>,
    /// Current Raft term.
    pub term: u64,
    /// Highest committed log index known to the answering node.
    pub commit_index: u64,
    /// Highest log index applied on the answering node.
    pub applied_index: u64,
    /// Highest log index in the answering node's log.
    pub last_log_index: u64,
    /// Index covered by the answering node's latest snapshot.
    pub snapshot_index: Option<u64>,
    /// Snapshots the answering node installed from a leader since it started.
    pub snapshots_installed: u64,
    /// Every member.
    pub members: Vec<Member>,
}

impl From<ClusterStatus> for Cluster {
    fn from(s: ClusterStatus) -> Self {
        let members = s
            .members
            .into_iter()
            .map(|m| Member {
                leader: Some(m.id) == s.leader,
                id: m.id,
                raft_addr: m.raft_addr,
                admin_addr: m.admin_addr,
                role: match m.role {
                    MemberRole::Voter => "voter".into(),
                    MemberRole::Learner => "learner".into(),
                },
                matched_index: m.matched_index,
                last_answer_ms_ago: m.last_answer_ms_ago,
                healthy: m.healthy,
            })
            .collect();
        Self {
            node_id: s.node_id,
            leader: s.leader,
            term: s.term,
            commit_index: s.commit_index,
            applied_index: s.applied_index,
            last_log_index: s.last_log_index,
            snapshot_index: s.snapshot_index,
            snapshots_installed: s.snapshots_installed,
            members,
        }
    }
}

/// Where one actor runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlacedActor {
    /// `queue/{tenant}/{id}`, `agent/{tenant}/{id}` or `device/{tenant}/{id}`.
    pub actor: String,
    /// `queue`, `agent` or `device`.
    pub kind: String,
    /// The tenant.
    pub tenant: u64,
    /// The queue, user or device id.
    pub id: u64,
    /// The node that owns it (rendezvous hash over the members).
    pub owner: Option<u64>,
}

/// The placement of actors on nodes.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlacementView {
    /// Grows with every change of members.
    pub epoch: u64,
    /// The live members actors are placed on.
    pub members: Vec<u64>,
    /// Every queue, agent and device actor and its owner.
    pub actors: Vec<PlacedActor>,
}

/// Where the queue, agent and device actors run: the ledger's placement
/// (live members and epoch) and each actor's owner. Every node answers the
/// same (a linearizable read).
#[utoipa::path(get, path = "/api/v1/cluster/placement", tag = "cluster",
    responses((status = 200, body = PlacementView), (status = 401, body = crate::problem::ProblemBody), (status = 403, body = crate::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn placement(
    State(app): State<AppState>,
    caller: Caller,
) -> Result<Json<PlacementView>, Problem> {
    use carillon_actors::placement::{actor_keys, owner, ActorKey};
    caller.require_cluster_read()?;
    let view = app
        .consensus
        .read(|l| {
            let p = l.placement();
            let actors = actor_keys(l)
                .into_iter()
                .map(|key| {
                    let (kind, tenant, id) = match key {
                        ActorKey::Queue { tenant, queue } => ("queue", tenant.0, queue.0),
                        ActorKey::Agent { tenant, user } => ("agent", tenant.0, user.0),
                        ActorKey::Device { tenant, device } => ("device", tenant.0, device.0),
                    };
                    PlacedActor {
                        actor: key.to_string(),
                        kind: kind.into(),
                        tenant,
                        id,
                        owner: owner(&key, &p.members),
                    }
                })
                .collect();
            PlacementView {
                epoch: p.epoch,
                members: p.members.iter().copied().collect(),
                actors,
            }
        })
        .await?;
    Ok(Json(view))
}

/// Body of `POST /api/v1/cluster/members`: a node joins as a learner.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// Raft node id of the new node.
    pub id: u64,
    /// Its node-to-node address (`ip:port`).
    pub raft_addr: String,
    /// Its admin API address (`ip:port`).
    pub admin_addr: String,
    /// Promote it to voter once it has caught up.
    #[serde(default)]
    pub voter: bool,
}

/// The cluster: members, roles, leader, term, commit index, health.
#[utoipa::path(get, path = "/api/v1/cluster", tag = "cluster",
    responses((status = 200, body = Cluster), (status = 401, body = crate::problem::ProblemBody), (status = 403, body = crate::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn get(State(app): State<AppState>, caller: Caller) -> Result<Json<Cluster>, Problem> {
    caller.require_cluster_read()?;
    Ok(Json(app.consensus.status().await.into()))
}

fn valid_addr(field: &str, addr: &str) -> Result<(), Problem> {
    addr.parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|_| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "INVALID_ADDRESS",
                format!("{field} {addr:?} is not an ip:port address"),
            )
        })
}

/// Adds a node as a learner (and, with `voter`, promotes it once caught up).
#[utoipa::path(post, path = "/api/v1/cluster/members", tag = "cluster", request_body = AddMember,
    responses((status = 200, body = Cluster), (status = 401, body = crate::problem::ProblemBody), (status = 403, body = crate::problem::ProblemBody),
        (status = 409, body = crate::problem::ProblemBody), (status = 422, body = crate::problem::ProblemBody), (status = 503, body = crate::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn add_member(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(body): Body<AddMember>,
) -> Result<Json<Cluster>, Problem> {
    caller.require_operator()?;
    valid_addr("raft_addr", &body.raft_addr)?;
    valid_addr("admin_addr", &body.admin_addr)?;
    if body.id == 0 {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_NODE_ID",
            "a node id must be greater than 0",
        ));
    }
    let addr_text = (body.raft_addr.clone(), body.admin_addr.clone());
    let addr = NodeAddr {
        raft_addr: body.raft_addr,
        admin_addr: body.admin_addr,
    };
    app.consensus.add_learner(body.id, addr).await?;
    if body.voter {
        let status = app.consensus.status().await;
        let mut voters: BTreeSet<u64> = status
            .members
            .iter()
            .filter(|m| m.role == MemberRole::Voter)
            .map(|m| m.id)
            .collect();
        voters.insert(body.id);
        app.consensus.change_voters(voters).await?;
    }
    let after = serde_json::json!({
        "id": body.id, "raft_addr": addr_text.0, "admin_addr": addr_text.1, "voter": body.voter,
    });
    audit_membership(&app, &caller, &headers, body.id, None, Some(after)).await;
    Ok(Json(app.consensus.status().await.into()))
}

/// Audits a membership change in the platform's log. The change is made
/// already: a failed audit write is logged, not answered as a failure.
async fn audit_membership(
    app: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    id: u64,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) {
    let command = Command::RecordAudit {
        tenant: None,
        object: Some(id.to_string()),
        before,
        after,
    };
    if let Err(p) = app.execute(caller, headers, command).await {
        tracing::warn!(member = id, problem = %p, "the membership change was made; its audit record was not written");
    }
}

/// Removes a member (voter or learner) from the cluster.
#[utoipa::path(delete, path = "/api/v1/cluster/members/{id}", tag = "cluster",
    params(("id" = u64, Path, description = "Raft node id")),
    responses((status = 200, body = Cluster), (status = 401, body = crate::problem::ProblemBody), (status = 403, body = crate::problem::ProblemBody),
        (status = 404, body = crate::problem::ProblemBody), (status = 409, body = crate::problem::ProblemBody), (status = 503, body = crate::problem::ProblemBody)),
    security(("bearer" = [])))]
pub async fn remove_member(
    State(app): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Id(id): Id<u64>,
) -> Result<Json<Cluster>, Problem> {
    caller.require_operator()?;
    let status = app.consensus.status().await;
    let Some(member) = status.members.iter().find(|m| m.id == id) else {
        return Err(Problem::not_found("cluster member"));
    };
    let before = serde_json::json!({
        "id": id, "raft_addr": member.raft_addr, "admin_addr": member.admin_addr,
        "voter": member.role == MemberRole::Voter,
    });
    app.consensus.remove_nodes(BTreeSet::from([id])).await?;
    audit_membership(&app, &caller, &headers, id, Some(before), None).await;
    Ok(Json(app.consensus.status().await.into()))
}
