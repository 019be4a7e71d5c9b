//! The consensus service: a thin shell around openraft that starts the node,
//! serves peers, forwards client requests to the leader with retries, and
//! answers linearizable reads.

use crate::batch::{Batcher, Limits};
use crate::clock::Clock;
use crate::error::ConsensusError;
use crate::metrics::ConsensusMetrics;
use crate::network::{post, Network, PeerContacts, TransportError};
use crate::rpc::{self, ForwardError, ForwardHandler, ForwardRequest, ForwardResponse};
use crate::state::{CommandId, ReplicatedState};
use crate::status::{ClusterStatus, MemberRole, MemberStatus};
use crate::store::{self, MachineView};
use crate::types::{Applied, Batch, Envelope, NodeAddr, NodeId, Raft};
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{ChangeMembers, SnapshotPolicy};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Raft timing and log compaction settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftTiming {
    /// Leader heartbeat period.
    pub heartbeat_interval_ms: u64,
    /// Lower bound of the randomised election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomised election timeout.
    pub election_timeout_max_ms: u64,
    /// A snapshot is taken after this many entries since the last one.
    pub snapshot_every_entries: u64,
    /// Entries kept in the log behind a snapshot (a follower further behind
    /// catches up by snapshot).
    pub keep_entries_after_snapshot: u64,
    /// How long a client request may take, forwarding and retries included.
    pub request_timeout_ms: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 600,
            election_timeout_max_ms: 1200,
            snapshot_every_entries: 5_000,
            keep_entries_after_snapshot: 1_000,
            request_timeout_ms: 10_000,
        }
    }
}

/// What a node needs to start its consensus service.
#[derive(Debug, Clone)]
pub struct ConsensusConfig {
    /// This node's Raft id.
    pub node_id: NodeId,
    /// This node's addresses (the Raft one is also where it listens).
    pub addr: NodeAddr,
    /// The store file (`raft.redb`) lives here.
    pub data_dir: PathBuf,
    /// Timing and compaction.
    pub timing: RaftTiming,
    /// More routes served on the node-to-node listener (the node's own
    /// messages between its actors ride beside Raft's).
    pub extra_routes: Option<axum::Router>,
}

/// Group commit of client writes on every node: the writes that arrive
/// while earlier batches are in flight go to the leader (locally, or in one
/// forwarded request) together.
const WRITE_BATCHES: Limits = Limits {
    depth: 2,
    max_items: 1024,
    max_weight: 64 * 1024,
    queue: 4096,
};

/// Group commit on the leader: the batches (local and forwarded) that arrive
/// while earlier Raft entries are being written and replicated become one
/// Raft entry. openraft 0.9 appends (and fsyncs) each proposal separately and
/// waits for the flush, so one entry per client write meant one fsync per
/// write on the leader's critical path.
const PROPOSALS: Limits = Limits {
    depth: 1,
    max_items: 64,
    max_weight: 128 * 1024,
    queue: 1024,
};

/// What a batch weighs: roughly its encoded size.
fn weight_of(envelope: &Envelope) -> usize {
    envelope.payload.len() + envelope.command_id.0.len() + 16
}

/// One forwarded or local batch of writes, and its answers.
type Proposal = Vec<Envelope>;
type ProposalAnswer = Result<Vec<Applied>, ForwardError>;

struct Inner<S: ReplicatedState> {
    id: NodeId,
    raft: Raft,
    /// The leader's proposer: merges batches into Raft entries.
    proposer: Batcher<Proposal, ProposalAnswer>,
    view: MachineView<S>,
    notices: tokio::sync::broadcast::Sender<crate::store::Notice<S::Change>>,
    client: reqwest::Client,
    contacts: PeerContacts,
    committed_index: Arc<AtomicU64>,
    snapshots_installed: Arc<AtomicU64>,
    clock: Arc<dyn Clock>,
    timing: RaftTiming,
    metrics: ConsensusMetrics,
    stop: watch::Sender<bool>,
}

/// A running consensus node replicating `S`. Cheap to clone.
pub struct Consensus<S: ReplicatedState> {
    inner: Arc<Inner<S>>,
    /// This node's write batcher (it owns a handle on `inner`; it stops when
    /// the last clone of this service is dropped).
    writes: Batcher<Envelope, Result<Applied, ConsensusError>>,
}

impl<S: ReplicatedState> Clone for Consensus<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            writes: self.writes.clone(),
        }
    }
}

impl<S: ReplicatedState> std::fmt::Debug for Consensus<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consensus")
            .field("node_id", &self.inner.id)
            .finish()
    }
}

/// How long to wait before retry number `attempt` (0-based): 20 ms doubling to 500 ms.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((20u64 << attempt.min(5)).min(500))
}

#[allow(clippy::disallowed_methods)] // the service is a shell: it measures real time
fn monotonic_now() -> Instant {
    Instant::now()
}

impl<S: ReplicatedState> Consensus<S> {
    /// Opens the store, starts Raft and serves peers on `config.addr.raft_addr`.
    pub async fn start(
        config: ConsensusConfig,
        clock: Arc<dyn Clock>,
        registry: &prometheus::Registry,
    ) -> Result<Self, ConsensusError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| ConsensusError::Storage(format!("{}: {e}", config.data_dir.display())))?;
        let (log_store, machine) = store::open::<S>(&config.data_dir.join("raft.redb"))
            .map_err(|e| ConsensusError::Storage(e.to_string()))?;
        let committed_index = log_store.committed_index();
        let snapshots_installed = machine.snapshots_installed();
        let view = machine.view();
        let notices = machine.notices();
        let timing = config.timing.clone();
        let raft_config = openraft::Config {
            cluster_name: "carillon".to_string(),
            heartbeat_interval: timing.heartbeat_interval_ms,
            election_timeout_min: timing.election_timeout_min_ms,
            election_timeout_max: timing.election_timeout_max_ms,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(timing.snapshot_every_entries),
            max_in_snapshot_log_to_keep: timing.keep_entries_after_snapshot,
            install_snapshot_timeout: 2_000,
            // Entries carry batches (up to about 128 KiB of commands), and
            // openraft gives one AppendEntries a heartbeat interval to
            // answer: bound a catch-up request to about 2 MiB.
            max_payload_entries: 16,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ConsensusError::Config(e.to_string()))?;
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| ConsensusError::Config(e.to_string()))?;
        let contacts = PeerContacts::default();
        let network = Network::new(client.clone(), contacts.clone());
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            network,
            log_store,
            machine,
        )
        .await
        .map_err(|e| ConsensusError::Storage(e.to_string()))?;
        let metrics = ConsensusMetrics::register(registry)
            .map_err(|e| ConsensusError::Config(format!("metrics: {e}")))?;
        let (stop, mut stopped) = watch::channel(false);
        let proposer = {
            let raft = raft.clone();
            let wait = Duration::from_millis(timing.request_timeout_ms);
            Batcher::spawn(PROPOSALS, move |proposals: Vec<Proposal>| {
                let raft = raft.clone();
                async move { propose(&raft, proposals, wait).await }
            })
        };
        let inner = Arc::new(Inner {
            id: config.node_id,
            raft: raft.clone(),
            proposer,
            view,
            notices,
            client,
            contacts,
            committed_index,
            snapshots_installed,
            clock,
            timing,
            metrics,
            stop,
        });
        let listener = tokio::net::TcpListener::bind(&config.addr.raft_addr)
            .await
            .map_err(|e| ConsensusError::Listen {
                addr: config.addr.raft_addr.clone(),
                reason: e.to_string(),
            })?;
        let app = rpc::router(raft, inner.clone());
        let app = match config.extra_routes {
            Some(extra) => app.merge(extra),
            None => app,
        };
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "raft listener failed");
            }
        });
        let writes = {
            let inner = inner.clone();
            Batcher::spawn(WRITE_BATCHES, move |envelopes: Vec<Envelope>| {
                let inner = inner.clone();
                async move { inner.write_batch(envelopes).await }
            })
        };
        Ok(Self { inner, writes })
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.inner.id
    }

    /// Makes these nodes the first voters of a new cluster. Harmless when the
    /// cluster was already initialised (for example after a restart).
    pub async fn initialize(
        &self,
        members: BTreeMap<NodeId, NodeAddr>,
    ) -> Result<(), ConsensusError> {
        match self.inner.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(ConsensusError::Refused(e.to_string())),
        }
    }

    /// Replicates `command` and returns the state machine's answer. Safe to
    /// call again with the same `command_id` after any error: the command is
    /// applied at most once and a retry gets the first answer.
    pub async fn write(
        &self,
        command_id: CommandId,
        command: &S::Command,
    ) -> Result<S::Response, ConsensusError> {
        let payload =
            serde_json::to_vec(command).map_err(|e| ConsensusError::Codec(e.to_string()))?;
        let envelope = Envelope {
            command_id,
            proposed_at_ms: self.inner.clock.now_ms(),
            payload,
        };
        let started = monotonic_now();
        let weight = weight_of(&envelope);
        let result = match self.writes.call(envelope, weight).await {
            Some(result) => result,
            None => Err(ConsensusError::Unavailable(
                "the write was dropped before an answer (the node is stopping); \
                 a retry with the same command id is safe"
                    .into(),
            )),
        };
        self.observe("write", started, &result);
        let applied = result?;
        serde_json::from_slice(&applied.0).map_err(|e| {
            ConsensusError::Codec(format!(
                "the state machine's answer does not decode ({e}): {}",
                String::from_utf8_lossy(&applied.0)
            ))
        })
    }

    /// Runs `f` on a state that reflects every write acknowledged before this
    /// call began (read index from the leader, then wait for local apply).
    pub async fn read<T>(&self, f: impl FnOnce(&S) -> T) -> Result<T, ConsensusError> {
        let index = match self.submit("read", ForwardRequest::ReadIndex).await? {
            ForwardResponse::ReadIndex(index) => index,
            other => {
                return Err(ConsensusError::Codec(format!(
                    "unexpected answer to a read: {other:?}"
                )))
            }
        };
        let timeout = Duration::from_millis(self.inner.timing.request_timeout_ms);
        self.inner
            .raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map_err(|e| {
                ConsensusError::Unavailable(format!("waiting to apply index {index}: {e}"))
            })?;
        Ok(self.inner.view.read(f))
    }

    /// Runs `f` on this node's applied state without contacting the leader.
    /// The state is a consistent prefix of the log, possibly stale.
    pub fn read_local<T>(&self, f: impl FnOnce(&S) -> T) -> T {
        self.inner.view.read(f)
    }

    /// Notices of every entry applied on this node from now on (and of
    /// snapshots installed), with the changes its commands made. A receiver
    /// that falls more than [`crate::store::NOTICE_BACKLOG`] notices behind
    /// gets `Lagged` and must rebuild its view from [`Consensus::read_local`].
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<crate::store::Notice<S::Change>> {
        self.inner.notices.subscribe()
    }

    /// Every member of the current membership and its addresses, as this
    /// node knows them (no request to the leader).
    pub fn members(&self) -> BTreeMap<NodeId, NodeAddr> {
        let metrics = self.inner.raft.metrics().borrow().clone();
        metrics
            .membership_config
            .membership()
            .nodes()
            .map(|(id, addr)| (*id, addr.clone()))
            .collect()
    }

    /// Adds a learner and waits until it has caught up.
    pub async fn add_learner(&self, id: NodeId, addr: NodeAddr) -> Result<(), ConsensusError> {
        self.submit("membership", ForwardRequest::AddLearner { id, addr })
            .await
            .map(|_| ())
    }

    /// Makes exactly `voters` the voting members.
    pub async fn change_voters(&self, voters: BTreeSet<NodeId>) -> Result<(), ConsensusError> {
        self.submit("membership", ForwardRequest::ChangeVoters { voters })
            .await
            .map(|_| ())
    }

    /// Removes members (voters or learners).
    pub async fn remove_nodes(&self, ids: BTreeSet<NodeId>) -> Result<(), ConsensusError> {
        self.submit("membership", ForwardRequest::RemoveNodes { ids })
            .await
            .map(|_| ())
    }

    /// The cluster as this node sees it; member health comes from the
    /// leader's view when the leader can be asked.
    pub async fn status(&self) -> ClusterStatus {
        let local = self.inner.local_status();
        match local.leader {
            Some(leader) if leader != self.inner.id => {
                match self.inner.leader_members(leader).await {
                    Some(members) => ClusterStatus { members, ..local },
                    None => local,
                }
            }
            _ => local,
        }
    }

    /// Refreshes the gauges from the current Raft metrics.
    pub fn refresh_metrics(&self) {
        let status = self.inner.local_status();
        let m = &self.inner.metrics;
        m.term.set(i64::try_from(status.term).unwrap_or(i64::MAX));
        m.commit_index
            .set(i64::try_from(status.commit_index).unwrap_or(i64::MAX));
        m.applied_index
            .set(i64::try_from(status.applied_index).unwrap_or(i64::MAX));
        m.last_log_index
            .set(i64::try_from(status.last_log_index).unwrap_or(i64::MAX));
        m.is_leader
            .set(i64::from(status.leader == Some(self.inner.id)));
        m.members
            .set(i64::try_from(status.members.len()).unwrap_or(i64::MAX));
        m.snapshots_installed
            .set(i64::try_from(status.snapshots_installed).unwrap_or(i64::MAX));
    }

    /// Stops Raft and the node-to-node listener.
    pub async fn shutdown(&self) {
        if let Err(e) = self.inner.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        let _ = self.inner.stop.send(true);
    }

    async fn submit(
        &self,
        kind: &str,
        request: ForwardRequest,
    ) -> Result<ForwardResponse, ConsensusError> {
        let started = monotonic_now();
        let result = self.inner.submit(request).await;
        self.observe(kind, started, &result);
        result
    }

    /// Records one client request in the metrics.
    fn observe<T>(&self, kind: &str, started: Instant, result: &Result<T, ConsensusError>) {
        let m = &self.inner.metrics;
        m.request_seconds
            .with_label_values(&[kind])
            .observe(started.elapsed().as_secs_f64());
        let outcome = match result {
            Ok(_) => "ok",
            Err(ConsensusError::Unavailable(_)) => "unavailable",
            Err(_) => "refused",
        };
        m.requests.with_label_values(&[kind, outcome]).inc();
    }
}

impl<S: ReplicatedState> Inner<S> {
    fn leader_hint(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    fn addr_of(&self, id: NodeId) -> Option<NodeAddr> {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        metrics
            .membership_config
            .membership()
            .get_node(&id)
            .cloned()
    }

    /// Replicates one batch of this node's client writes (through the leader,
    /// with retries) and answers each write.
    async fn write_batch(
        self: &Arc<Self>,
        envelopes: Vec<Envelope>,
    ) -> Vec<Result<Applied, ConsensusError>> {
        let count = envelopes.len();
        let failed = |e: ConsensusError| (0..count).map(|_| Err(e.clone())).collect();
        match self.submit(ForwardRequest::Write(envelopes)).await {
            Ok(ForwardResponse::Written(answers)) if answers.len() == count => {
                answers.into_iter().map(Ok).collect()
            }
            Ok(other) => failed(ConsensusError::Codec(format!(
                "unexpected answer to {count} writes: {other:?}"
            ))),
            Err(e) => failed(e),
        }
    }

    /// Sends `request` to the leader until it is carried out, refused, or the
    /// deadline passes.
    async fn submit(
        self: &Arc<Self>,
        request: ForwardRequest,
    ) -> Result<ForwardResponse, ConsensusError> {
        let deadline = monotonic_now() + Duration::from_millis(self.timing.request_timeout_ms);
        let mut hint = self.leader_hint();
        let mut attempt: u32 = 0;
        loop {
            let outcome = match hint {
                Some(leader) if leader == self.id => self.handle(request.clone()).await,
                Some(leader) => self.forward(leader, &request, deadline).await,
                None => Err(ForwardError::NotLeader { leader: None }),
            };
            let last_error = match outcome {
                Ok(response) => return Ok(response),
                Err(ForwardError::Refused(reason)) => return Err(ConsensusError::Refused(reason)),
                Err(ForwardError::NotLeader { leader: Some(next) }) if Some(next) != hint => {
                    // Told who leads: try it at once.
                    hint = Some(next);
                    continue;
                }
                Err(e) => e,
            };
            if monotonic_now() + backoff(attempt) >= deadline {
                return Err(ConsensusError::Unavailable(last_error.to_string()));
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt = attempt.saturating_add(1);
            hint = self.leader_hint();
        }
    }

    async fn forward(
        &self,
        leader: NodeId,
        request: &ForwardRequest,
        deadline: Instant,
    ) -> Result<ForwardResponse, ForwardError> {
        let Some(addr) = self.addr_of(leader) else {
            return Err(ForwardError::NotLeader { leader: None });
        };
        let url = format!("http://{}/raft/forward", addr.raft_addr);
        let timeout = deadline.saturating_duration_since(monotonic_now());
        let reply: Result<Result<ForwardResponse, ForwardError>, TransportError> = post(
            &self.client,
            &url,
            request,
            timeout.max(Duration::from_millis(10)),
        )
        .await;
        match reply {
            Ok(answer) => answer,
            Err(e) => Err(ForwardError::Unknown(format!(
                "forwarding to node {leader}: {e}"
            ))),
        }
    }

    fn local_status(&self) -> ClusterStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let is_leader = metrics.current_leader == Some(self.id);
        let now = monotonic_now();
        let healthy_within = Duration::from_millis(self.timing.election_timeout_max_ms * 2);
        let last_log_index = metrics.last_log_index.unwrap_or(0);
        let members = membership
            .nodes()
            .map(|(id, addr)| {
                let matched_index = match (&metrics.replication, *id == self.id) {
                    (_, true) => metrics.last_log_index,
                    (Some(replication), false) => replication
                        .get(id)
                        .and_then(|m| m.as_ref().map(|l| l.index)),
                    (None, false) => None,
                };
                let since = self.contacts.since_last_answer(*id, now);
                let healthy = if *id == self.id {
                    metrics.running_state.is_ok()
                } else if is_leader {
                    let answering = since.is_some_and(|d| d <= healthy_within);
                    let caught_up =
                        matched_index.is_some_and(|m| last_log_index.saturating_sub(m) <= 1_000);
                    answering && caught_up
                } else {
                    false
                };
                MemberStatus {
                    id: *id,
                    raft_addr: addr.raft_addr.clone(),
                    admin_addr: addr.admin_addr.clone(),
                    role: if voters.contains(id) {
                        MemberRole::Voter
                    } else {
                        MemberRole::Learner
                    },
                    matched_index,
                    last_answer_ms_ago: since
                        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
                    healthy,
                }
            })
            .collect();
        ClusterStatus {
            node_id: self.id,
            leader: metrics.current_leader,
            term: metrics.current_term,
            commit_index: self.committed_index.load(Ordering::Acquire),
            applied_index: metrics.last_applied.map_or(0, |l| l.index),
            last_log_index,
            snapshot_index: metrics.snapshot.map(|l| l.index),
            snapshots_installed: self.snapshots_installed.load(Ordering::Relaxed),
            members,
        }
    }

    /// The leader's view of the members, if the leader answers in time.
    async fn leader_members(&self, leader: NodeId) -> Option<Vec<MemberStatus>> {
        let addr = self.addr_of(leader)?;
        let url = format!("http://{}/raft/status", addr.raft_addr);
        let reply: Result<ClusterStatus, TransportError> =
            post(&self.client, &url, &(), Duration::from_millis(500)).await;
        reply.ok().map(|status| status.members)
    }
}

impl<S: ReplicatedState> ForwardHandler for Inner<S> {
    async fn handle(&self, request: ForwardRequest) -> Result<ForwardResponse, ForwardError> {
        let raft = &self.raft;
        match request {
            ForwardRequest::Write(envelopes) => {
                let weight = envelopes.iter().map(weight_of).sum();
                match self.proposer.call(envelopes, weight).await {
                    Some(answers) => answers.map(ForwardResponse::Written),
                    None => Err(ForwardError::Unknown(
                        "the proposal was dropped before an answer".into(),
                    )),
                }
            }
            ForwardRequest::ReadIndex => match raft.ensure_linearizable().await {
                Ok(log_id) => Ok(ForwardResponse::ReadIndex(log_id.map_or(0, |l| l.index))),
                Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(
                    f,
                ))) => Err(ForwardError::NotLeader {
                    leader: f.leader_id,
                }),
                Err(e) => Err(ForwardError::Unknown(e.to_string())),
            },
            ForwardRequest::AddLearner { id, addr } => {
                // Bounded: a learner that never answers must not hold the
                // request forever (it stays a learner and can be removed).
                let wait = Duration::from_millis(self.timing.request_timeout_ms);
                match tokio::time::timeout(wait, raft.add_learner(id, addr, true)).await {
                    Ok(result) => membership_outcome(result.map(|_| ())),
                    Err(_) => Err(ForwardError::Refused(format!(
                        "node {id} was added as a learner but did not catch up within {wait:?}; remove it if it is wrong"
                    ))),
                }
            }
            ForwardRequest::ChangeVoters { voters } => {
                membership_outcome(raft.change_membership(voters, false).await.map(|_| ()))
            }
            ForwardRequest::RemoveNodes { ids } => {
                let metrics = raft.metrics().borrow().clone();
                let voters: BTreeSet<NodeId> = metrics
                    .membership_config
                    .membership()
                    .voter_ids()
                    .filter(|id| ids.contains(id))
                    .collect();
                if !voters.is_empty() {
                    membership_outcome(
                        raft.change_membership(ChangeMembers::RemoveVoters(voters), false)
                            .await
                            .map(|_| ()),
                    )?;
                }
                let remaining: BTreeSet<NodeId> = {
                    let metrics = raft.metrics().borrow().clone();
                    let membership = metrics.membership_config.membership();
                    ids.into_iter()
                        .filter(|id| membership.get_node(id).is_some())
                        .collect()
                };
                if remaining.is_empty() {
                    return Ok(ForwardResponse::MembershipChanged);
                }
                membership_outcome(
                    raft.change_membership(ChangeMembers::RemoveNodes(remaining), false)
                        .await
                        .map(|_| ()),
                )
            }
        }
    }

    fn status(&self) -> ClusterStatus {
        self.local_status()
    }
}

/// Proposes `proposals` as one Raft entry and splits its answers back. Gives
/// up after `wait` (a leader cut off from its followers may never commit; the
/// proposer must not stay blocked behind it): the outcome is then unknown, and
/// a retry with the same command ids is safe.
async fn propose(raft: &Raft, proposals: Vec<Proposal>, wait: Duration) -> Vec<ProposalAnswer> {
    let sizes: Vec<usize> = proposals.iter().map(Vec::len).collect();
    let batch = Batch(proposals.into_iter().flatten().collect());
    let total = batch.0.len();
    let failed = |e: ForwardError| sizes.iter().map(|_| Err(e.clone())).collect();
    let Ok(written) = tokio::time::timeout(wait, raft.client_write(batch)).await else {
        return failed(ForwardError::Unknown(format!(
            "{total} commands were not committed within {wait:?}"
        )));
    };
    match written {
        Ok(response) if response.data.0.len() == total => {
            let mut answers = response.data.0.into_iter();
            sizes
                .iter()
                .map(|&n| Ok(answers.by_ref().take(n).collect()))
                .collect()
        }
        Ok(response) => failed(ForwardError::Unknown(format!(
            "the state machine gave {} answers to {total} commands",
            response.data.0.len()
        ))),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            failed(ForwardError::NotLeader {
                leader: f.leader_id,
            })
        }
        Err(e) => failed(ForwardError::Unknown(e.to_string())),
    }
}

fn membership_outcome(
    result: Result<(), RaftError<NodeId, ClientWriteError<NodeId, NodeAddr>>>,
) -> Result<ForwardResponse, ForwardError> {
    match result {
        Ok(()) => Ok(ForwardResponse::MembershipChanged),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            Err(ForwardError::NotLeader {
                leader: f.leader_id,
            })
        }
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
            Err(ForwardError::Refused(e.to_string()))
        }
        Err(e) => Err(ForwardError::Unknown(e.to_string())),
    }
}
