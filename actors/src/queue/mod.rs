//! The queue actor (Q1-Q4): the waiting list of one queue (mirrored from the
//! ledger), the view of the agents in it (their reports), and routing.
//! Sans-IO [`QueueMachine`]; its ractor shell is in `crate::shell`.
//!
//! Every change (a caller in or out, an agent's report, an offer's end, a
//! relaxation step or back-off that ends) runs the pure routing of
//! `crate::routing` over the waiting calls in service order (priority, then
//! arrival): an entry is offered to one agent at a time (to every eligible
//! agent for ring-all); an agent that was sent an offer counts as busy until
//! it reports again. An agent that becomes available pulls (Q3): the queue
//! answers with its most deserving call for it.
//!
//! The ledger is the truth: on every snapshot (at start, on changes, and
//! periodically) the waiting list is reconciled with the ledger's; a
//! waiting call whose node left the placement has lost its dialog, and the
//! queue closes it as lost (the ledger writes its record once).
//!
//! Invariants: every offer in flight names a waiting entry and an agent of
//! the index that is not available; an entry has at most one offer in
//! flight unless the strategy rings all; while an eligible agent is
//! available, no waiting call is left without an offer.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::ledger::{CallCheckpoint, Ledger};
use crate::messages::{Address, AgentMsg, AgentReport, EntryInfo, Envelope, Message, QueueMsg};
use crate::model::activity::{ActivityOutcome, ActivityRecord, Direction, Segment};
use crate::model::queue::{QueueSpec, Strategy};
use crate::model::{QueueId, TenantId, UserId};
use crate::routing::{self, AgentInfo, Choice, QueueIndex, WaitingCall};

/// Margin over the ring timeout before an offer nobody ended is dropped.
const OFFER_GRACE_MS: u64 = 10_000;

/// What the queue machine reads of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSnapshot {
    /// The queue's settings.
    pub spec: QueueSpec,
    /// Waiting entries that carry a call, in service order.
    pub waiting: Vec<EntryInfo>,
    /// Agents checked in or static members (they report themselves).
    pub members: BTreeSet<UserId>,
    /// Live placement members (a call on another node is lost).
    pub nodes: BTreeSet<u64>,
}

/// The snapshot of `queue`, or `None` when it does not exist.
pub fn queue_snapshot(ledger: &Ledger, tenant: TenantId, queue: QueueId) -> Option<QueueSnapshot> {
    let t = ledger.tenant(tenant)?;
    let q = t.queues().find(|q| q.id == queue)?;
    let waiting = t
        .waiting(queue)
        .into_iter()
        .filter_map(|e| {
            let call: CallCheckpoint = e.call.as_deref()?.clone();
            Some(EntryInfo {
                tenant,
                queue,
                entry: e.entry.clone(),
                priority: e.priority,
                sequence: e.sequence,
                enqueued_at_ms: e.enqueued_at_ms,
                call,
            })
        })
        .collect();
    let mut members: BTreeSet<UserId> = t
        .sessions()
        .filter(|s| s.checked_in.contains(&queue))
        .map(|s| s.user)
        .collect();
    members.extend(q.spec.static_members.iter().copied());
    Some(QueueSnapshot {
        spec: q.spec.clone(),
        waiting,
        members,
        nodes: ledger.placement().members.clone(),
    })
}

/// An input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueInput {
    /// The ledger's view.
    Snapshot(Box<QueueSnapshot>),
    /// A message.
    Message(QueueMsg),
}

/// An output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueOutput {
    /// Send a message.
    Send(Envelope),
    /// Feed [`QueueMsg::Tick`] after this long.
    Tick {
        /// Delay.
        after_ms: u64,
    },
    /// Close a waiting call whose node is gone (write its record as lost).
    CloseLost(Box<ActivityRecord>),
}

/// The queue machine.
#[derive(Debug, Clone)]
pub struct QueueMachine {
    tenant: TenantId,
    queue: QueueId,
    spec: Option<QueueSpec>,
    waiting: BTreeMap<String, EntryInfo>,
    /// Offers sent and not yet ended: entry -> agent -> when it was sent.
    offers: BTreeMap<String, BTreeMap<UserId, u64>>,
    /// Agents that were sent an offer and have not reported since.
    pending: BTreeSet<UserId>,
    reports: BTreeMap<UserId, AgentReport>,
    index: QueueIndex,
    members: BTreeSet<UserId>,
    closing: BTreeSet<String>,
    next_tick_ms: Option<u64>,
    rng: StdRng,
    /// Agents whose index entry the current step changed (checked after it).
    touched: Vec<UserId>,
}

fn waiting_call(e: &EntryInfo) -> WaitingCall {
    WaitingCall {
        entry: e.entry.clone(),
        priority: e.priority,
        sequence: e.sequence,
        enqueued_at_ms: e.enqueued_at_ms,
    }
}

impl QueueMachine {
    /// A machine for `queue`; it routes once it has a snapshot. `seed` feeds
    /// random and weighted-random routing.
    pub fn new(tenant: TenantId, queue: QueueId, seed: u64) -> Self {
        QueueMachine {
            tenant,
            queue,
            spec: None,
            waiting: BTreeMap::new(),
            offers: BTreeMap::new(),
            pending: BTreeSet::new(),
            reports: BTreeMap::new(),
            index: QueueIndex::new(),
            members: BTreeSet::new(),
            closing: BTreeSet::new(),
            next_tick_ms: None,
            rng: StdRng::seed_from_u64(seed),
            touched: Vec::new(),
        }
    }

    /// Callers waiting.
    pub fn waiting_count(&self) -> usize {
        self.waiting.len()
    }

    fn order_of(&self, user: UserId) -> u32 {
        // Member order: static members first in id order, then the others
        // by id (a stable, declared order for linear and round-robin).
        let statics = self
            .spec
            .as_ref()
            .map(|s| s.static_members.clone())
            .unwrap_or_default();
        let rank = if statics.contains(&user) { 0 } else { 1u64 };
        u32::try_from((rank << 31) | (user.0 & 0x7fff_ffff)).unwrap_or(u32::MAX)
    }

    fn reindex(&mut self, user: UserId) {
        self.touched.push(user);
        match self.reports.get(&user) {
            Some(r) if r.member => {
                let info = AgentInfo {
                    user,
                    skills: r.skills.clone(),
                    order: self.order_of(user),
                    available: r.available && !self.pending.contains(&user),
                    idle_since_ms: r.idle_since_ms,
                    last_offered_ms: r.last_offered_ms,
                    calls_taken: r.calls_taken,
                    talk_time_ms: r.talk_time_ms,
                    not_before_ms: r.not_before_ms,
                };
                self.index.upsert(info);
            }
            _ => {
                self.index.remove(user);
            }
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, now_ms: u64, input: QueueInput) -> Vec<QueueOutput> {
        let mut out = Vec::new();
        let full_check = matches!(input, QueueInput::Snapshot(_));
        match input {
            QueueInput::Snapshot(s) => self.on_snapshot(now_ms, *s, &mut out),
            QueueInput::Message(m) => self.on_message(now_ms, m, &mut out),
        }
        self.route(now_ms, &mut out);
        // A snapshot (periodic, O(agents) anyway) checks the whole index;
        // any other step checks the agents it changed, in O(log n) each.
        if full_check {
            self.check_invariants();
        } else {
            self.check_offers();
            for user in &self.touched {
                self.index.check_agent(*user);
            }
        }
        self.touched.clear();
        out
    }

    fn on_snapshot(&mut self, now_ms: u64, s: QueueSnapshot, out: &mut Vec<QueueOutput>) {
        self.spec = Some(s.spec);
        let ledger: BTreeMap<String, EntryInfo> = s
            .waiting
            .into_iter()
            .map(|e| (e.entry.clone(), e))
            .collect();
        self.waiting.retain(|id, _| ledger.contains_key(id));
        self.offers.retain(|id, _| ledger.contains_key(id));
        self.closing.retain(|id| ledger.contains_key(id));
        for (id, info) in ledger {
            if !s.nodes.is_empty() && !s.nodes.contains(&info.call.node) {
                self.waiting.remove(&id);
                self.offers.remove(&id);
                if self.closing.insert(id) {
                    out.push(QueueOutput::CloseLost(Box::new(lost(&info, now_ms))));
                }
                continue;
            }
            self.waiting.entry(id).or_insert(info);
        }
        for gone in self
            .members
            .difference(&s.members)
            .copied()
            .collect::<Vec<_>>()
        {
            self.reports.remove(&gone);
            self.drop_offers_of(gone);
            self.index.remove(gone);
            self.touched.push(gone);
        }
        for new in s
            .members
            .difference(&self.members)
            .copied()
            .collect::<Vec<_>>()
        {
            if !self.reports.contains_key(&new) {
                out.push(self.to_agent(new, AgentMsg::Report { queue: self.queue }));
            }
        }
        self.members = s.members;
        let users: Vec<UserId> = self.reports.keys().copied().collect();
        for user in users {
            self.reindex(user);
        }
    }

    fn to_agent(&self, agent: UserId, message: AgentMsg) -> QueueOutput {
        QueueOutput::Send(Envelope {
            to: Address::agent(self.tenant, agent),
            message: Message::Agent(message),
            hops: 0,
        })
    }

    fn on_message(&mut self, now_ms: u64, message: QueueMsg, out: &mut Vec<QueueOutput>) {
        match message {
            QueueMsg::Enqueued(info) => {
                if info.queue == self.queue {
                    self.waiting.insert(info.entry.clone(), *info);
                }
            }
            QueueMsg::Gone { entry } => {
                self.waiting.remove(&entry);
                self.offers.remove(&entry);
            }
            QueueMsg::Agent(report) => {
                let user = report.agent;
                // An agent that is free again (or left the queue) holds none
                // of this queue's offers. One that reports busy keeps them:
                // it is ringing for one (the ledger granted it), and ends
                // each with `OfferEnded`; clearing them here would offer the
                // same caller to the next agent while the first one rings.
                if report.available || !report.member {
                    self.drop_offers_of(user);
                } else if !self.offers.values().any(|a| a.contains_key(&user)) {
                    self.pending.remove(&user);
                }
                if report.member {
                    self.members.insert(user);
                    self.reports.insert(user, *report);
                } else {
                    self.reports.remove(&user);
                }
                self.reindex(user);
            }
            QueueMsg::OfferEnded { entry, agent, .. } => {
                if let Some(agents) = self.offers.get_mut(&entry) {
                    agents.remove(&agent);
                    if agents.is_empty() {
                        self.offers.remove(&entry);
                    }
                }
                self.pending.remove(&agent);
                self.reindex(agent);
            }
            QueueMsg::Pull { agent } => self.on_pull(now_ms, agent, out),
            QueueMsg::Tick => {
                self.next_tick_ms = None;
                self.expire_offers(now_ms);
            }
            QueueMsg::Refresh => {}
        }
    }

    /// An available agent asks for the most deserving call it can take.
    fn on_pull(&mut self, now_ms: u64, agent: UserId, out: &mut Vec<QueueOutput>) {
        let Some(spec) = self.spec.clone() else {
            return;
        };
        let ring_all = spec.strategy == Strategy::RingAll;
        let info = self.index.get(agent).cloned();
        let best = info.filter(|a| a.available).and_then(|a| {
            let mut calls: Vec<&EntryInfo> = self
                .waiting
                .values()
                .filter(|e| ring_all || !self.offers.contains_key(&e.entry))
                .collect();
            calls.sort_by(|x, y| routing::service_order(&waiting_call(x), &waiting_call(y)));
            calls
                .into_iter()
                .find(|e| routing::is_eligible(&spec, &a, &waiting_call(e), now_ms))
                .cloned()
        });
        match best {
            Some(entry) => self.offer(now_ms, entry, agent, out),
            None => out.push(self.to_agent(agent, AgentMsg::NothingWaiting { queue: self.queue })),
        }
    }

    fn offer(&mut self, now_ms: u64, entry: EntryInfo, agent: UserId, out: &mut Vec<QueueOutput>) {
        self.offers
            .entry(entry.entry.clone())
            .or_default()
            .insert(agent, now_ms);
        self.pending.insert(agent);
        self.index.chosen(agent);
        self.reindex(agent);
        out.push(self.to_agent(agent, AgentMsg::Offer(Box::new(entry))));
    }

    /// Offers waiting calls in service order to the agents routing picks.
    fn route(&mut self, now_ms: u64, out: &mut Vec<QueueOutput>) {
        let Some(spec) = self.spec.clone() else {
            return;
        };
        let ring_all = spec.strategy == Strategy::RingAll;
        let mut calls: Vec<EntryInfo> = self
            .waiting
            .values()
            .filter(|e| !self.closing.contains(&e.entry))
            .cloned()
            .collect();
        calls.sort_by(|x, y| routing::service_order(&waiting_call(x), &waiting_call(y)));
        for entry in calls {
            if self.index.available().next().is_none() {
                break;
            }
            if !ring_all && self.offers.contains_key(&entry.entry) {
                continue;
            }
            match routing::choose(
                &spec,
                &self.index,
                &waiting_call(&entry),
                now_ms,
                &mut self.rng,
            ) {
                Choice::Offer(agents) => {
                    for agent in agents {
                        if self
                            .offers
                            .get(&entry.entry)
                            .is_some_and(|a| a.contains_key(&agent))
                        {
                            continue;
                        }
                        self.offer(now_ms, entry.clone(), agent, out);
                    }
                }
                Choice::NoneEligible => {}
            }
        }
        self.arm_tick(now_ms, &spec, out);
    }

    /// Forgets every offer `agent` holds from this queue.
    fn drop_offers_of(&mut self, agent: UserId) {
        self.pending.remove(&agent);
        for agents in self.offers.values_mut() {
            agents.remove(&agent);
        }
        self.offers.retain(|_, a| !a.is_empty());
    }

    /// How long an offer may stay unanswered by its agent actor before the
    /// queue stops waiting for its `OfferEnded` (an agent actor that moved
    /// to another node with the offer in flight): the ring timeout and a
    /// margin for the ledger round trips.
    fn offer_deadline_ms(&self) -> u64 {
        let ring_s = self
            .spec
            .as_ref()
            .map_or(60, |s| u64::from(s.ring_timeout_s));
        ring_s * 1000 + OFFER_GRACE_MS
    }

    fn expire_offers(&mut self, now_ms: u64) {
        let deadline = self.offer_deadline_ms();
        let stale: Vec<UserId> = self
            .offers
            .values()
            .flat_map(|a| a.iter())
            .filter(|(_, sent)| now_ms >= **sent + deadline)
            .map(|(u, _)| *u)
            .collect();
        for agent in stale {
            tracing::warn!(
                queue = self.queue.0,
                agent = agent.0,
                "an offer was never ended by its agent; the caller is offered again"
            );
            self.drop_offers_of(agent);
            self.reindex(agent);
        }
    }

    /// Wakes the machine when a relaxation step or a back-off ends while
    /// calls wait (routing may then find an agent it could not before), and
    /// when an offer outlives its deadline.
    fn arm_tick(&mut self, now_ms: u64, spec: &QueueSpec, out: &mut Vec<QueueOutput>) {
        if self.waiting.is_empty() {
            return;
        }
        let mut next: Option<u64> = None;
        let mut consider = |at: u64| {
            if at > now_ms {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        };
        for e in self.waiting.values() {
            for step in &spec.relaxations {
                consider(e.enqueued_at_ms + u64::from(step.after_s) * 1000);
            }
        }
        for r in self.reports.values() {
            if r.member && r.available {
                consider(r.not_before_ms);
            }
        }
        let deadline = self.offer_deadline_ms();
        for sent in self.offers.values().flat_map(|a| a.values()) {
            consider(sent + deadline);
        }
        if let Some(at) = next {
            if self.next_tick_ms.is_none_or(|t| at < t) {
                self.next_tick_ms = Some(at);
                out.push(QueueOutput::Tick {
                    after_ms: at - now_ms,
                });
            }
        }
    }

    /// Panics if the machine's state is inconsistent (a bug here). O(agents).
    pub fn check_invariants(&self) {
        self.check_offers();
        self.index.check_invariants();
    }

    /// The offer part of the invariants. O(offers in flight).
    fn check_offers(&self) {
        let ring_all = self
            .spec
            .as_ref()
            .is_some_and(|s| s.strategy == Strategy::RingAll);
        for (entry, agents) in &self.offers {
            assert!(
                self.waiting.contains_key(entry),
                "offers name waiting entries"
            );
            assert!(!agents.is_empty(), "no empty offer sets");
            assert!(
                ring_all || agents.len() == 1,
                "one offer at a time per entry"
            );
            for a in agents.keys() {
                assert!(self.pending.contains(a), "an offered agent is pending");
                assert!(
                    !self.index.get(*a).is_some_and(|i| i.available),
                    "an offered agent is not available"
                );
            }
        }
    }
}

/// The record of a waiting call whose node is gone.
fn lost(info: &EntryInfo, now_ms: u64) -> ActivityRecord {
    let ended = now_ms.max(info.enqueued_at_ms);
    ActivityRecord {
        id: info.entry.clone(),
        direction: Direction::Inbound,
        queue: Some(info.queue),
        agent: None,
        caller: info.call.caller.clone(),
        called: info.call.called.clone(),
        started_at_ms: info.call.arrived_at_ms.min(info.enqueued_at_ms),
        connected_at_ms: None,
        ended_at_ms: ended,
        closed_at_ms: ended,
        waiting_ms: 0,
        interaction_ms: 0,
        processing_ms: 0,
        outcome: ActivityOutcome::Lost {
            reason: format!(
                "node {} that held the caller's dialog stopped answering while the call waited",
                info.call.node
            ),
        },
        segments: vec![Segment::Queue {
            queue: info.queue,
            from_ms: info.enqueued_at_ms,
            to_ms: ended,
            reason: "lost".into(),
        }],
        node: info.call.node,
    }
}

#[cfg(test)]
mod tests;
