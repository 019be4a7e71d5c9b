//! The host: the one owner of a node's actor table. It starts the queue,
//! agent and device actors this node owns under the ledger's placement,
//! stops those it no longer owns, starts call actors for the calls the
//! node's SIP edge accepts, delivers messages to local actors, and pokes
//! actors when the ledger changes what they read.
//!
//! Invariants: an actor key has at most one local actor; a placed actor
//! runs here only while the placement makes this node its owner (checked
//! at every placement change and before every start); the input queue is
//! bounded ([`HOST_QUEUE`]; a full queue drops the message, counted, and
//! the actors' periodic reconciliation with the ledger recovers).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ractor::{Actor, ActorRef};
use tokio::sync::{mpsc, watch};

use super::{
    AgentActor, AgentActorMsg, CallActor, CallActorMsg, DeviceActor, DeviceActorMsg, QueueActor,
    QueueActorMsg, Services,
};
use crate::call::CallSetup;
use crate::ledger::{Change, Ledger, Placement};
use crate::messages::{Address, AgentMsg, CallMsg, CallRef, Envelope, Message, QueueMsg};
use crate::model::queue::Destination;
use crate::model::{QueueId, TenantId};
use crate::placement::{actor_keys as all_keys, owner, ActorKey};

/// Inputs queued to the host at most.
pub const HOST_QUEUE: usize = 65_536;

/// What the host is asked to do.
#[derive(Debug)]
pub enum HostInput {
    /// Deliver to a local actor (or pass on to its owner).
    Deliver(Envelope),
    /// Start the call actor of an accepted call.
    StartCall(Box<CallSetup>),
    /// Start the actor of a feature-code call.
    StartFeature(Box<crate::feature::FeatureSetup>),
    /// A call actor stopped.
    CallStopped(String),
    /// The ledger changed these things.
    Changes(Arc<Vec<Change>>),
    /// The ledger was replaced or its notices lagged: re-read everything.
    Resync,
}

/// The placement as last seen, for routers that must not take the ledger's
/// lock for every message.
pub type PlacementView = watch::Receiver<Arc<Placement>>;

/// A handle on the host's queue.
#[derive(Debug, Clone)]
pub struct HostHandle {
    tx: mpsc::Sender<HostInput>,
    dropped: Arc<AtomicU64>,
    placement: PlacementView,
}

impl HostHandle {
    /// Queues an input; a full queue drops it (counted).
    pub fn send(&self, input: HostInput) {
        if self.tx.try_send(input).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Inputs dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The placement as last seen.
    pub fn placement(&self) -> Arc<Placement> {
        self.placement.borrow().clone()
    }

    /// The owner of `key` under the placement as last seen.
    pub fn owner(&self, key: &ActorKey) -> Option<u64> {
        owner(key, &self.placement.borrow().members)
    }
}

#[derive(Debug)]
enum Local {
    Queue(ActorRef<QueueActorMsg>),
    Agent(ActorRef<AgentActorMsg>),
    Device(ActorRef<DeviceActorMsg>),
}

impl Local {
    fn stop(&self) {
        match self {
            Local::Queue(a) => a.stop(None),
            Local::Agent(a) => a.stop(None),
            Local::Device(a) => a.stop(None),
        }
    }
}

/// The host task's state.
pub struct Host<S: Services> {
    services: Arc<S>,
    rx: mpsc::Receiver<HostInput>,
    tx: mpsc::Sender<HostInput>,
    placement_tx: watch::Sender<Arc<Placement>>,
    actors: HashMap<ActorKey, Local>,
    calls: HashMap<String, ActorRef<CallActorMsg>>,
}

impl<S: Services> std::fmt::Debug for Host<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("actors", &self.actors.len())
            .field("calls", &self.calls.len())
            .finish_non_exhaustive()
    }
}

impl<S: Services> Host<S> {
    /// A host for `services`; run it with [`Host::run`].
    pub fn new(services: Arc<S>) -> (Host<S>, HostHandle) {
        let (tx, rx) = mpsc::channel(HOST_QUEUE);
        let placement = services
            .consensus()
            .read_local(|l| Arc::new(l.placement().clone()));
        let (placement_tx, placement_rx) = watch::channel(placement);
        let handle = HostHandle {
            tx: tx.clone(),
            dropped: Arc::new(AtomicU64::new(0)),
            placement: placement_rx,
        };
        (
            Host {
                services,
                rx,
                tx,
                placement_tx,
                actors: HashMap::new(),
                calls: HashMap::new(),
            },
            handle,
        )
    }

    /// Runs until every handle is gone.
    pub async fn run(mut self) {
        self.rebalance().await;
        while let Some(input) = self.rx.recv().await {
            match input {
                HostInput::Deliver(envelope) => self.deliver(envelope).await,
                HostInput::StartCall(setup) => self.start_call(*setup).await,
                HostInput::StartFeature(setup) => self.start_feature(*setup).await,
                HostInput::CallStopped(id) => {
                    self.calls.remove(&id);
                }
                HostInput::Changes(changes) => self.on_changes(&changes).await,
                HostInput::Resync => {
                    self.rebalance().await;
                    self.poke_all();
                }
            }
        }
        for actor in self.actors.values() {
            actor.stop();
        }
        for call in self.calls.values() {
            call.stop(None);
        }
    }

    fn me(&self) -> u64 {
        self.services.node()
    }

    fn owns(&self, key: &ActorKey) -> bool {
        owner(key, &self.placement_tx.borrow().members) == Some(self.me())
    }

    /// Starts what this node owns and stops what it does not.
    async fn rebalance(&mut self) {
        let (placement, keys) = self
            .services
            .consensus()
            .read_local(|l| (Arc::new(l.placement().clone()), all_keys(l)));
        let _ = self.placement_tx.send(placement);
        let stale: Vec<ActorKey> = self
            .actors
            .keys()
            .filter(|k| !keys.contains(k) || !self.owns(k))
            .copied()
            .collect();
        for key in stale {
            if let Some(actor) = self.actors.remove(&key) {
                actor.stop();
            }
        }
        for key in keys {
            if self.owns(&key) && !self.actors.contains_key(&key) {
                self.spawn(key).await;
            }
        }
    }

    async fn spawn(&mut self, key: ActorKey) {
        let name = key.to_string();
        // A stopped actor's name may linger a moment in the registry.
        if let Some(cell) = ractor::registry::where_is(name.clone()) {
            cell.stop(None);
        }
        let started = match key {
            ActorKey::Queue { tenant, queue } => Actor::spawn(
                None,
                QueueActor::new(self.services.clone()),
                (tenant, queue),
            )
            .await
            .map(|(a, _)| Local::Queue(a)),
            ActorKey::Agent { tenant, user } => {
                Actor::spawn(None, AgentActor::new(self.services.clone()), (tenant, user))
                    .await
                    .map(|(a, _)| Local::Agent(a))
            }
            ActorKey::Device { tenant, device } => Actor::spawn(
                None,
                DeviceActor::new(self.services.clone()),
                (tenant, device),
            )
            .await
            .map(|(a, _)| Local::Device(a)),
        };
        match started {
            Ok(local) => {
                tracing::debug!(actor = %name, "actor started");
                self.actors.insert(key, local);
            }
            Err(e) => tracing::warn!(actor = %name, error = %e, "an actor did not start"),
        }
    }

    async fn start_call(&mut self, setup: CallSetup) {
        let id = setup.call.clone();
        match Actor::spawn(None, CallActor::new(self.services.clone()), setup).await {
            Ok((actor, join)) => {
                self.calls.insert(id.clone(), actor);
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let _ = join.await;
                    let _ = tx.send(HostInput::CallStopped(id)).await;
                });
            }
            Err(e) => tracing::warn!(call = %id, error = %e, "a call actor did not start"),
        }
    }

    async fn start_feature(&mut self, setup: crate::feature::FeatureSetup) {
        let id = setup.call.clone();
        match Actor::spawn(None, super::FeatureActor::new(self.services.clone()), setup).await {
            Ok((actor, join)) => {
                self.calls.insert(id.clone(), actor);
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let _ = join.await;
                    let _ = tx.send(HostInput::CallStopped(id)).await;
                });
            }
            Err(e) => tracing::warn!(call = %id, error = %e, "a feature call actor did not start"),
        }
    }

    async fn deliver(&mut self, mut envelope: Envelope) {
        match (&envelope.to, envelope.message.clone()) {
            (Address::Call { call }, Message::Call(m)) => {
                if let Some(actor) = self.calls.get(&call.call) {
                    let _ = actor.cast(CallActorMsg::Message(m));
                } else {
                    tracing::debug!(%call, "a message for a call that has ended");
                }
            }
            (Address::Actor { key }, message) => {
                let key = *key;
                if !self.actors.contains_key(&key) {
                    if !self.owns(&key) {
                        // Not ours (any more): pass it on, once.
                        if envelope.hops < 2 {
                            envelope.hops += 1;
                            self.services.send(envelope);
                        }
                        return;
                    }
                    let exists = self
                        .services
                        .consensus()
                        .read_local(|l| all_keys_of_tenant(l, key.tenant()).contains(&key));
                    if !exists {
                        return;
                    }
                    self.spawn(key).await;
                }
                match (self.actors.get(&key), message) {
                    (Some(Local::Queue(a)), Message::Queue(m)) => {
                        let _ = a.cast(QueueActorMsg::Message(m));
                    }
                    (Some(Local::Agent(a)), Message::Agent(m)) => {
                        let _ = a.cast(AgentActorMsg::Message(m));
                    }
                    (Some(Local::Device(a)), Message::Device(m)) => {
                        let _ = a.cast(DeviceActorMsg::Message(m));
                    }
                    _ => tracing::debug!(%key, "a message of the wrong kind for its actor"),
                }
            }
            _ => tracing::debug!(to = ?envelope.to, "a message the host does not deliver"),
        }
    }

    fn poke(&self, key: &ActorKey) {
        match self.actors.get(key) {
            Some(Local::Queue(a)) => {
                let _ = a.cast(QueueActorMsg::Message(QueueMsg::Refresh));
            }
            Some(Local::Agent(a)) => {
                let _ = a.cast(AgentActorMsg::Message(AgentMsg::Refresh));
            }
            Some(Local::Device(a)) => {
                let _ = a.cast(DeviceActorMsg::Refresh);
            }
            None => {}
        }
    }

    fn poke_all(&self) {
        for key in self.actors.keys() {
            self.poke(key);
        }
    }

    fn poke_tenant(&self, tenant: TenantId, kind: fn(&ActorKey) -> bool) {
        for key in self.actors.keys() {
            if key.tenant() == tenant && kind(key) {
                self.poke(key);
            }
        }
    }

    async fn on_changes(&mut self, changes: &[Change]) {
        let mut rebalance = false;
        let mut entries: BTreeMap<TenantId, BTreeSet<String>> = BTreeMap::new();
        let mut by_user: Vec<(TenantId, String)> = Vec::new();
        for change in changes {
            match change {
                Change::EntryByUser { tenant, entry } => by_user.push((*tenant, entry.clone())),
                Change::Placement | Change::Tenants => rebalance = true,
                Change::Queues(t) => {
                    rebalance = true;
                    self.poke_tenant(*t, |k| {
                        matches!(k, ActorKey::Queue { .. } | ActorKey::Agent { .. })
                    });
                }
                Change::Users(t) | Change::Voice(t) => {
                    rebalance = true;
                    self.poke_tenant(*t, |k| matches!(k, ActorKey::Agent { .. }));
                }
                Change::Devices(t) => {
                    rebalance = true;
                    self.poke_tenant(*t, |k| {
                        matches!(k, ActorKey::Device { .. } | ActorKey::Agent { .. })
                    });
                }
                Change::Session { tenant, user } => {
                    // The agent reports its queues (check-ins) itself.
                    self.poke(&ActorKey::Agent {
                        tenant: *tenant,
                        user: *user,
                    });
                }
                Change::Entry { tenant, entry } => {
                    entries.entry(*tenant).or_default().insert(entry.clone());
                }
                Change::Numbers(_)
                | Change::Directory(_)
                | Change::Licences(_)
                | Change::Cluster
                | Change::ActivityClosed { .. }
                | Change::Audited { .. } => {}
            }
        }
        if rebalance {
            self.rebalance().await;
            self.poke_all();
        }
        // Entries changed through the API (no call actor tells their queue):
        // their queue re-reads.
        for (tenant, ids) in entries {
            let queues: BTreeSet<_> = self.services.consensus().read_local(|l| {
                ids.iter()
                    .filter_map(|e| l.tenant(tenant)?.entry(e))
                    .filter(|e| e.call.is_none())
                    .map(|e| e.queue)
                    .collect()
            });
            for queue in queues {
                self.poke(&ActorKey::Queue { tenant, queue });
            }
        }
        self.on_entries_by_user(&by_user);
    }

    /// S2: a user changed waiting entries. Their queues re-read (a new
    /// priority reorders them); a withdrawal goes to the call actor, by the
    /// node that holds its dialog (every node sees the change; one acts).
    fn on_entries_by_user(&self, changed: &[(TenantId, String)]) {
        let node = self.services.node();
        let found: Vec<ChangedEntry> = self.services.consensus().read_local(|l| {
            changed
                .iter()
                .filter_map(|(tenant, id)| {
                    let e = l.tenant(*tenant)?.entry(id)?;
                    let call = e.call.as_deref().zip(e.withdrawal.clone()).map(|(c, d)| {
                        (
                            CallRef {
                                node: c.node,
                                call: id.clone(),
                            },
                            d,
                        )
                    });
                    Some((*tenant, e.queue, call))
                })
                .collect()
        });
        for (tenant, queue, call) in found {
            self.poke(&ActorKey::Queue { tenant, queue });
            if let Some((call, destination)) = call.filter(|(c, _)| c.node == node) {
                self.services.send(Envelope {
                    to: Address::Call { call },
                    message: Message::Call(CallMsg::Withdraw { destination }),
                    hops: 0,
                });
            }
        }
    }
}

/// An entry a user changed: its tenant and queue, and its call with where a
/// withdrawal sends it.
type ChangedEntry = (TenantId, QueueId, Option<(CallRef, Destination)>);

fn all_keys_of_tenant(ledger: &Ledger, tenant: TenantId) -> BTreeSet<ActorKey> {
    all_keys(ledger)
        .into_iter()
        .filter(|k| k.tenant() == tenant)
        .collect()
}
