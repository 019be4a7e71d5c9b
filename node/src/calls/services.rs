//! What the actor shells get from this node ([`NodeServices`]): its clock,
//! its ledger replica, its media relay, and the router that takes each
//! message where its addressee lives: a local actor (through the host), a
//! node's SIP edge (this one through the edge task's command queue), or
//! another node over the node-to-node transport ([`super::transport`]).

use std::sync::{Arc, OnceLock};

use carillon_actors::call::{MediaReply, MediaRequest};
use carillon_actors::ledger::Ledger;
use carillon_actors::messages::{Address, EdgeRequest, Envelope, Message, QueueMsg};
use carillon_actors::shell::{BoxFuture, HostHandle, HostInput, Services};
use carillon_consensus::{Clock, Consensus};
use tokio::sync::mpsc;

use super::media::MediaRelays;
use super::offer_latency::OfferLatency;
use super::transport::Peers;

/// The shells' view of this node.
pub struct NodeServices {
    node: u64,
    clock: Arc<dyn Clock>,
    consensus: Consensus<Ledger>,
    host: OnceLock<HostHandle>,
    edge: OnceLock<mpsc::Sender<EdgeRequest>>,
    peers: Peers,
    media: MediaRelays,
    offer_latency: OfferLatency,
}

impl std::fmt::Debug for NodeServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeServices")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl NodeServices {
    /// Services for node `node`; the host and the edge are attached once
    /// they run ([`NodeServices::attach_host`], [`NodeServices::attach_edge`]).
    pub fn new(
        node: u64,
        clock: Arc<dyn Clock>,
        consensus: Consensus<Ledger>,
        peers: Peers,
        media: MediaRelays,
    ) -> Self {
        NodeServices {
            node,
            clock,
            consensus,
            host: OnceLock::new(),
            edge: OnceLock::new(),
            peers,
            media,
            offer_latency: OfferLatency::new(),
        }
    }

    /// The time from queue entries to their first agent INVITE (the router
    /// sees the entries come and go, the glue the INVITEs).
    pub fn offer_latency(&self) -> &OfferLatency {
        &self.offer_latency
    }

    /// Attaches the host (once).
    pub fn attach_host(&self, host: HostHandle) {
        let _ = self.host.set(host);
    }

    /// Attaches the SIP edge's command queue (once).
    pub fn attach_edge(&self, edge: mpsc::Sender<EdgeRequest>) {
        let _ = self.edge.set(edge);
    }

    /// The host, once attached.
    pub fn host(&self) -> Option<&HostHandle> {
        self.host.get()
    }

    /// Routes one envelope (also what arrives from other nodes). A call
    /// actor's word to its queue that it entered (its `Enqueue` committed)
    /// or left starts or ends the entry's offer timing.
    pub fn route(&self, envelope: Envelope) {
        match &envelope.message {
            Message::Queue(QueueMsg::Enqueued(info)) => self.offer_latency.entered(&info.entry),
            Message::Queue(QueueMsg::Gone { entry }) => self.offer_latency.left(entry),
            _ => {}
        }
        let target = match &envelope.to {
            Address::Edge { node } => *node,
            Address::Call { call } => call.node,
            Address::Actor { key } => match self.host.get().and_then(|h| h.owner(key)) {
                Some(owner) => owner,
                None => {
                    tracing::debug!(%key, "no placement yet: a message is dropped");
                    return;
                }
            },
        };
        if target != self.node {
            self.peers.send(target, envelope);
            return;
        }
        match (envelope.to, envelope.message) {
            (Address::Edge { .. }, Message::Edge(request)) => match self.edge.get() {
                Some(edge) => {
                    if edge.try_send(request).is_err() {
                        tracing::warn!(
                            "the SIP edge's command queue is full: a request is dropped"
                        );
                    }
                }
                None => tracing::debug!("a request for the SIP edge of a node without one"),
            },
            (to, message) => {
                if let Some(host) = self.host.get() {
                    host.send(HostInput::Deliver(Envelope {
                        to,
                        message,
                        hops: envelope.hops,
                    }));
                }
            }
        }
    }
}

impl Services for NodeServices {
    fn node(&self) -> u64 {
        self.node
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn consensus(&self) -> &Consensus<Ledger> {
        &self.consensus
    }

    fn send(&self, envelope: Envelope) {
        self.route(envelope);
    }

    fn media(
        &self,
        relay: &str,
        session: &str,
        request: MediaRequest,
    ) -> BoxFuture<'static, Result<MediaReply, String>> {
        self.media.call(relay, session, request)
    }

    #[allow(clippy::disallowed_methods)] // the shell draws command ids
    fn nonce(&self) -> u64 {
        rand::random()
    }
}

impl super::glue::Outlet for NodeServices {
    fn send(&self, envelope: Envelope) {
        self.route(envelope);
    }

    fn agent_dialled(&self, entry: &str) {
        self.offer_latency.dialled(entry);
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}
