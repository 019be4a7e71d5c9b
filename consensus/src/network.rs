//! The client side of node-to-node Raft RPC: HTTP/1.1 with keep-alive, bodies
//! in bincode. The server side is in `rpc.rs`.

use crate::types::{NodeAddr, NodeId, TypeConfig};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When each peer last answered a Raft RPC from this node. Written by the
/// network shell, read by the cluster status to judge a member's health.
#[derive(Debug, Clone, Default)]
pub struct PeerContacts {
    last_answer: Arc<Mutex<HashMap<NodeId, Instant>>>,
}

impl PeerContacts {
    fn answered(&self, peer: NodeId, at: Instant) {
        if let Ok(mut map) = self.last_answer.lock() {
            map.insert(peer, at);
        }
    }

    /// How long ago `peer` last answered, as seen at `now`.
    pub fn since_last_answer(&self, peer: NodeId, now: Instant) -> Option<Duration> {
        let map = self.last_answer.lock().ok()?;
        map.get(&peer).map(|at| now.saturating_duration_since(*at))
    }
}

/// Failure of a node-to-node call, before any Raft-level meaning is given to it.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The peer could not be reached (connection refused, reset, timed out).
    #[error("peer unreachable: {0}")]
    Unreachable(String),
    /// The peer answered something that is not a valid reply.
    #[error("bad reply from peer: {0}")]
    BadReply(String),
}

/// Posts `body` (bincode) to `url` and decodes the bincode reply.
pub(crate) async fn post<Req: Serialize, Resp: DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
    body: &Req,
    timeout: Duration,
) -> Result<Resp, TransportError> {
    let bytes = bincode::serialize(body).map_err(|e| TransportError::BadReply(e.to_string()))?;
    let response = client
        .post(url)
        .timeout(timeout)
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .map_err(|e| TransportError::Unreachable(e.to_string()))?;
    if !response.status().is_success() {
        return Err(TransportError::BadReply(format!(
            "HTTP {} from {url}",
            response.status()
        )));
    }
    let reply = response
        .bytes()
        .await
        .map_err(|e| TransportError::Unreachable(e.to_string()))?;
    bincode::deserialize(&reply).map_err(|e| TransportError::BadReply(e.to_string()))
}

/// Makes connections to peers. One shared HTTP client (connection pool).
#[derive(Debug, Clone)]
pub struct Network {
    client: reqwest::Client,
    contacts: PeerContacts,
}

impl Network {
    /// A network whose answers are recorded in `contacts`.
    pub fn new(client: reqwest::Client, contacts: PeerContacts) -> Self {
        Self { client, contacts }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &NodeAddr) -> Self::Network {
        Connection {
            client: self.client.clone(),
            contacts: self.contacts.clone(),
            target,
            base_url: format!("http://{}/raft", node.raft_addr),
        }
    }
}

/// A connection to one peer.
#[derive(Debug)]
pub struct Connection {
    client: reqwest::Client,
    contacts: PeerContacts,
    target: NodeId,
    base_url: String,
}

impl Connection {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        request: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, NodeAddr, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
        RaftError<NodeId, E>: DeserializeOwned,
    {
        let url = format!("{}/{path}", self.base_url);
        let reply: Result<Resp, RaftError<NodeId, E>> =
            post(&self.client, &url, request, option.hard_ttl())
                .await
                .map_err(|e| match e {
                    TransportError::Unreachable(m) => {
                        RPCError::Unreachable(Unreachable::new(&std::io::Error::other(m)))
                    }
                    TransportError::BadReply(m) => {
                        RPCError::Network(NetworkError::new(&std::io::Error::other(m)))
                    }
                })?;
        // This shell is where time is read for the health view.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        self.contacts.answered(self.target, now);
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>> {
        self.call("append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, NodeAddr, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call("snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, NodeAddr, RaftError<NodeId>>> {
        self.call("vote", &rpc, &option).await
    }
}
