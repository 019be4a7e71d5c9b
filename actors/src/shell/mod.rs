//! The actors' ractor shells: each feeds its sans-IO machine, performs the
//! outputs in order (awaiting the ledger and the relay, sending messages,
//! arming timers as messages to itself) and feeds the answers back.
//!
//! What a shell needs of its node is the [`Services`] trait (the node
//! implements it: its clock, its ledger replica, the router to other actors
//! and nodes, its media relays). Shells may read the clock and draw command
//! ids; the machines may not.
//!
//! Bounds: an actor's work enters through messages that answer bounded
//! things (a call per SIP leg, `max_legs` per node; an offer per waiting
//! call; a report per agent change); a ledger write is retried at most
//! [`WRITE_ATTEMPTS`] times.

mod agent;
mod call;
mod device;
mod feature;
mod host;
mod queue;

pub use agent::{AgentActor, AgentActorMsg};
pub use call::{CallActor, CallActorMsg};
pub use device::{DeviceActor, DeviceActorMsg};
pub use feature::FeatureActor;
pub use host::{Host, HostHandle, HostInput, PlacementView};
pub use queue::{QueueActor, QueueActorMsg};

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use carillon_consensus::{CommandId, Consensus, ConsensusError};

use crate::call::{MediaReply, MediaRequest};
use crate::ledger::{Command, Ledger, Outcome, WriteError};
use crate::messages::Envelope;

/// A boxed future (the services are called through a trait object).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Ledger writes are tried this many times when the cluster does not
/// answer (the same command id each time: at most one effect).
pub const WRITE_ATTEMPTS: u32 = 3;

/// What the shells need from their node.
pub trait Services: Send + Sync + 'static {
    /// This node's id.
    fn node(&self) -> u64;
    /// Wall-clock time, ms since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// The ledger.
    fn consensus(&self) -> &Consensus<Ledger>;
    /// Delivers a message: to a local actor, another node, or a node's edge.
    fn send(&self, envelope: Envelope);
    /// Asks the relay `relay` about the media session `session`.
    fn media(
        &self,
        relay: &str,
        session: &str,
        request: MediaRequest,
    ) -> BoxFuture<'static, Result<MediaReply, String>>;
    /// A fresh random suffix for a command id.
    fn nonce(&self) -> u64;
}

/// Writes `command` with the id `{label}/{nonce}`, retrying when the
/// cluster does not answer.
pub async fn write(
    services: &dyn Services,
    label: &str,
    command: Command,
) -> Result<Outcome, WriteError> {
    let id = CommandId(format!("{label}/{:016x}", services.nonce()));
    let mut last = String::new();
    for attempt in 0..WRITE_ATTEMPTS {
        match services.consensus().write(id.clone(), &command).await {
            Ok(Ok(outcome)) => return Ok(outcome),
            Ok(Err(refusal)) => return Err(WriteError::Refused(refusal)),
            Err(ConsensusError::Unavailable(reason)) => {
                last = reason;
                tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
            }
            Err(other) => return Err(WriteError::Unavailable(other.to_string())),
        }
    }
    Err(WriteError::Unavailable(last))
}
