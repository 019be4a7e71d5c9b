//! The node-to-node transport of actor messages: our own, beside Raft's on
//! the node-to-node listener (ractor_cluster has no failure detector and
//! calls itself not production ready).
//!
//! Each peer has a bounded queue and one sender task that posts what has
//! queued as one JSON batch (`POST /internal/v1/envelopes`). Messages are
//! best effort: a full queue or a peer that does not answer drops them
//! (counted and logged); the actors' reconciliation with the ledger
//! recovers what mattered. Peers' addresses come from the Raft membership.
//!
//! Invariants: at most [`PEER_QUEUE`] messages wait per peer and at most
//! [`BATCH`] go in one request; a request gives up after [`REQUEST_TIMEOUT`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use carillon_actors::ledger::Ledger;
use carillon_actors::messages::Envelope;
use carillon_consensus::Consensus;
use tokio::sync::mpsc;

/// Messages waiting for one peer at most.
pub const PEER_QUEUE: usize = 16_384;
/// Messages in one request at most.
pub const BATCH: usize = 512;
/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// The route inbound batches arrive on.
pub const ROUTE: &str = "/internal/v1/envelopes";

/// Senders to the other members.
#[derive(Clone)]
pub struct Peers {
    inner: Arc<PeersInner>,
}

struct PeersInner {
    node: u64,
    consensus: Mutex<Option<Consensus<Ledger>>>,
    queues: Mutex<HashMap<u64, mpsc::Sender<Envelope>>>,
    client: reqwest::Client,
    dropped: AtomicU64,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("node", &self.inner.node)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Peers {
    /// Peers of node `node`; they learn addresses once [`Peers::attach`] gives them the ledger.
    pub fn new(node: u64) -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(8)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Peers {
            inner: Arc::new(PeersInner {
                node,
                consensus: Mutex::new(None),
                queues: Mutex::new(HashMap::new()),
                client,
                dropped: AtomicU64::new(0),
            }),
        }
    }

    /// Gives the peers the consensus handle (for members' addresses).
    pub fn attach(&self, consensus: Consensus<Ledger>) {
        if let Ok(mut c) = self.inner.consensus.lock() {
            *c = Some(consensus);
        }
    }

    /// Messages dropped (full queue, no address, failed request).
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    fn drop_one(&self) {
        self.inner.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Queues `envelope` for node `node`.
    pub fn send(&self, node: u64, envelope: Envelope) {
        let sender = {
            let Ok(mut queues) = self.inner.queues.lock() else {
                return;
            };
            queues
                .entry(node)
                .or_insert_with(|| self.spawn_sender(node))
                .clone()
        };
        if sender.try_send(envelope).is_err() {
            self.drop_one();
            tracing::debug!(node, "a message for a peer is dropped: its queue is full");
        }
    }

    fn address(&self, node: u64) -> Option<String> {
        let consensus = self.inner.consensus.lock().ok()?.clone()?;
        consensus.members().get(&node).map(|a| a.raft_addr.clone())
    }

    fn spawn_sender(&self, node: u64) -> mpsc::Sender<Envelope> {
        let (tx, mut rx) = mpsc::channel::<Envelope>(PEER_QUEUE);
        let peers = self.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
                let Some(addr) = peers.address(node) else {
                    for _ in batch.drain(..) {
                        peers.drop_one();
                    }
                    tracing::debug!(node, "no address for a peer: messages dropped");
                    continue;
                };
                let url = format!("http://{addr}{ROUTE}");
                let sent = peers.inner.client.post(&url).json(&batch).send().await;
                match sent {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => {
                        tracing::debug!(node, status = %r.status(), n = batch.len(), "a peer refused messages");
                        peers.add_dropped(batch.len());
                    }
                    Err(e) => {
                        tracing::debug!(node, error = %e, n = batch.len(), "messages to a peer failed");
                        peers.add_dropped(batch.len());
                    }
                }
                batch.clear();
            }
        });
        tx
    }

    fn add_dropped(&self, n: usize) {
        self.inner.dropped.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The router of inbound batches: each envelope goes to `inbound`.
pub fn inbound_routes(inbound: mpsc::Sender<Envelope>) -> Router {
    Router::new()
        .route(ROUTE, post(receive))
        .with_state(inbound)
}

async fn receive(
    State(inbound): State<mpsc::Sender<Envelope>>,
    Json(batch): Json<Vec<Envelope>>,
) -> axum::http::StatusCode {
    if batch.len() > BATCH {
        return axum::http::StatusCode::PAYLOAD_TOO_LARGE;
    }
    for envelope in batch {
        if inbound.try_send(envelope).is_err() {
            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
        }
    }
    axum::http::StatusCode::NO_CONTENT
}
