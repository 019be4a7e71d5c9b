//! Calls on this node: the glue between the SIP edge's B2BUA and the call
//! actors ([`glue`]), what the actor shells get from the node
//! ([`services`]: clock, ledger, router, media), the node-to-node transport
//! of actor messages ([`transport`]), the media relays ([`media`]), the
//! failure detector behind placement ([`liveness`]), the publication of
//! registrations to device actors ([`registrations`]) and the time from a
//! queue entry to its first agent INVITE ([`offer_latency`]).

pub mod daily;
pub mod glue;
pub mod liveness;
pub mod media;
pub mod offer_latency;
pub mod registrations;
pub mod services;
pub mod transport;

use std::sync::Arc;

use carillon_actors::ledger::Ledger;
use carillon_actors::messages::Envelope;
use carillon_actors::shell::{Host, HostHandle, HostInput};
use carillon_consensus::{Consensus, Notice};
use tokio::sync::{broadcast, mpsc};

use services::NodeServices;

/// Starts the host (the node's actors) and the tasks that feed it: ledger
/// notices, messages from other nodes. Returns the services and the host's
/// handle.
pub fn start_actors(
    services: Arc<NodeServices>,
    consensus: Consensus<Ledger>,
    mut inbound: mpsc::Receiver<Envelope>,
) -> HostHandle {
    let (host, handle) = Host::new(services.clone());
    services.attach_host(handle.clone());
    let mut notices = consensus.subscribe();
    tokio::spawn(host.run());
    let h = handle.clone();
    tokio::spawn(async move {
        loop {
            match notices.recv().await {
                Ok(Notice::Applied { changes, .. }) => h.send(HostInput::Changes(changes)),
                Ok(Notice::Reset { .. }) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    h.send(HostInput::Resync)
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let router = services.clone();
    tokio::spawn(async move {
        while let Some(envelope) = inbound.recv().await {
            router.route(envelope);
        }
    });
    handle
}
