//! The server side of node-to-node RPC: Raft messages from peers, and the
//! requests that followers forward to the leader (writes, read index,
//! membership changes, status).

use crate::types::{Applied, Envelope, NodeAddr, NodeId, Raft};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

/// A request a follower forwards to the leader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardRequest {
    /// Replicate client commands (a follower's batch of them). The leader
    /// may carry them in one Raft entry with other commands.
    Write(Vec<Envelope>),
    /// Return a read index for a linearizable read.
    ReadIndex,
    /// Add a learner (blocking until it has caught up).
    AddLearner {
        /// The new node.
        id: NodeId,
        /// Its addresses.
        addr: NodeAddr,
    },
    /// Make exactly these nodes voters.
    ChangeVoters {
        /// The voter set after the change.
        voters: BTreeSet<NodeId>,
    },
    /// Remove nodes (voters or learners) from the cluster.
    RemoveNodes {
        /// The nodes to remove.
        ids: BTreeSet<NodeId>,
    },
}

/// The leader's answer to a forwarded request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardResponse {
    /// The commands were applied; their answers, in order.
    Written(Vec<Applied>),
    /// Apply up to this index, then read.
    ReadIndex(u64),
    /// The membership change is committed.
    MembershipChanged,
}

/// Why a forwarded request was not carried out.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardError {
    /// The receiver is not the leader (it may know who is).
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader the receiver knows of.
        leader: Option<NodeId>,
    },
    /// The request failed for a reason a retry will not fix.
    #[error("{0}")]
    Refused(String),
    /// The outcome is unknown (for example leadership changed mid-way); a
    /// retry with the same command id is safe.
    #[error("outcome unknown: {0}")]
    Unknown(String),
}

/// Handles forwarded requests on the leader. Implemented by the service.
pub trait ForwardHandler: Send + Sync + 'static {
    /// Carries out `request` if this node is the leader.
    fn handle(
        &self,
        request: ForwardRequest,
    ) -> impl Future<Output = Result<ForwardResponse, ForwardError>> + Send;

    /// This node's view of the cluster.
    fn status(&self) -> crate::status::ClusterStatus;
}

struct Rpc<H> {
    raft: Raft,
    handler: Arc<H>,
}

/// The largest node-to-node request body accepted.
const MAX_RPC_BODY: usize = 64 * 1024 * 1024;

/// The node-to-node router, mounted under `/raft`.
pub fn router<H: ForwardHandler>(raft: Raft, handler: Arc<H>) -> Router {
    let state = Arc::new(Rpc { raft, handler });
    Router::new()
        .route("/raft/append", post(append::<H>))
        .route("/raft/vote", post(vote::<H>))
        .route("/raft/snapshot", post(snapshot::<H>))
        .route("/raft/forward", post(forward::<H>))
        .route("/raft/status", post(status::<H>))
        // axum refuses bodies over 2 MB by default, and a refused
        // AppendEntries is retried forever: a follower that has to catch up
        // on a run of batched entries, or receive a snapshot chunk (openraft
        // sends up to 3 MB), would never get them.
        .layer(DefaultBodyLimit::max(MAX_RPC_BODY))
        .with_state(state)
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    bincode::deserialize(body).map_err(|e| {
        (
            StatusCode::BAD_REQUEST,
            format!("undecodable RPC body: {e}"),
        )
            .into_response()
    })
}

fn encode<T: Serialize>(value: &T) -> Response {
    match bincode::serialize(value) {
        Ok(bytes) => bytes.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn append<H: ForwardHandler>(State(rpc): State<Arc<Rpc<H>>>, body: Bytes) -> Response {
    match decode(&body) {
        Ok(request) => encode(&rpc.raft.append_entries(request).await),
        Err(response) => response,
    }
}

async fn vote<H: ForwardHandler>(State(rpc): State<Arc<Rpc<H>>>, body: Bytes) -> Response {
    match decode(&body) {
        Ok(request) => encode(&rpc.raft.vote(request).await),
        Err(response) => response,
    }
}

async fn snapshot<H: ForwardHandler>(State(rpc): State<Arc<Rpc<H>>>, body: Bytes) -> Response {
    match decode(&body) {
        Ok(request) => encode(&rpc.raft.install_snapshot(request).await),
        Err(response) => response,
    }
}

async fn forward<H: ForwardHandler>(State(rpc): State<Arc<Rpc<H>>>, body: Bytes) -> Response {
    match decode::<ForwardRequest>(&body) {
        Ok(request) => encode(&rpc.handler.handle(request).await),
        Err(response) => response,
    }
}

async fn status<H: ForwardHandler>(State(rpc): State<Arc<Rpc<H>>>) -> Response {
    encode(&rpc.handler.status())
}
