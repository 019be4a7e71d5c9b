//! The queue actor (Q1-Q6, Q9): the waiting list of one queue (mirrored from
//! the ledger), the view of the agents in it (their reports), routing, the
//! callers it turns away (empty policies, closed hours: `policies`), their
//! place and estimated wait (`estimate`), and its wake-ups (`ticks`).
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
//! available, no waiting call is left without an offer; a caller told to
//! leave is offered no more; the back-off index follows the reports.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::ledger::{CallCheckpoint, Ledger};
use crate::messages::{
    Address, AgentMsg, AgentReport, CallMsg, EntryInfo, Envelope, Message, QueueMsg,
};
use crate::model::activity::{ActivityOutcome, ActivityRecord, Direction, Segment};
use crate::model::hours;
use crate::model::queue::{ClosingRule, EmptyPolicy, ExitReason, QueueSpec, Strategy};
use crate::model::{QueueId, TenantId, UserId};
use crate::routing::{self, AgentInfo, Choice, QueueIndex, WaitingCall};

mod estimate;
mod policies;
mod pool;
mod tables;
mod ticks;
use pool::{Known, Pool};
use tables::{Offers, Waiting};

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
    /// The queue's time zone, resolved (its opening hours are local, Q9).
    pub timezone: jiff::tz::TimeZone,
}

/// The snapshot of `queue`, or `None` when it does not exist; `zone`
/// resolves the queue's IANA time zone (an unknown one reads as UTC).
pub fn queue_snapshot(
    ledger: &Ledger,
    tenant: TenantId,
    queue: QueueId,
    zone: impl Fn(&str) -> Option<jiff::tz::TimeZone>,
) -> Option<QueueSnapshot> {
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
    let name = q.spec.timezone.as_str();
    let resolved = if name == "UTC" {
        Some(jiff::tz::TimeZone::UTC)
    } else {
        zone(name)
    };
    let timezone = resolved.unwrap_or_else(|| {
        tracing::warn!(queue = queue.0, timezone = %q.spec.timezone, "unknown time zone; its hours read as UTC");
        jiff::tz::TimeZone::UTC
    });
    Some(QueueSnapshot {
        spec: q.spec.clone(),
        waiting,
        members,
        nodes: ledger.placement().members.clone(),
        timezone,
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
    waiting: Waiting,
    /// Offers sent and not yet ended: entry -> agent -> when it was sent.
    offers: Offers,
    /// Agents that were sent an offer and have not reported since.
    pending: BTreeSet<UserId>,
    reports: BTreeMap<UserId, AgentReport>,
    index: QueueIndex,
    members: BTreeSet<UserId>,
    closing: BTreeSet<String>,
    next_tick_ms: Option<u64>,
    /// Steps passed without arming (nobody waited): the next arming
    /// considers everything.
    tick_stale: bool,
    rng: StdRng,
    /// Agents whose index entry or offers the current step changed, and
    /// entries whose offers it changed (checked after it).
    touched: Vec<UserId>,
    touched_entries: Vec<String>,
    /// The back-offs of the agents reported available, by when they end
    /// (Q4): the tick finds the next one without reading every report.
    backoffs: BTreeSet<(u64, UserId)>,
    /// Who the empty policies count (Q5).
    pool: Pool,
    /// The estimated wait's recent handle time (Q6).
    estimator: estimate::Estimator,
    /// The current input's time.
    now_ms: u64,
    /// Members that reported they are not in the queue.
    absent: BTreeSet<UserId>,
    /// Waiting calls told to leave (Q5); no longer offered.
    turned_away: BTreeSet<String>,
    /// Whether the leave policy found the queue empty after the last step.
    was_empty: bool,
    timezone: jiff::tz::TimeZone,
    /// When the queue's opening state next flips (Q9), as last computed.
    hours_change_ms: Option<u64>,
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
            waiting: Waiting::default(),
            offers: Offers::default(),
            pending: BTreeSet::new(),
            reports: BTreeMap::new(),
            index: QueueIndex::new(),
            members: BTreeSet::new(),
            closing: BTreeSet::new(),
            next_tick_ms: None,
            tick_stale: false,
            rng: StdRng::seed_from_u64(seed),
            touched: Vec::new(),
            touched_entries: Vec::new(),
            backoffs: BTreeSet::new(),
            pool: Pool::default(),
            estimator: estimate::Estimator::default(),
            now_ms: 0,
            absent: BTreeSet::new(),
            turned_away: BTreeSet::new(),
            was_empty: false,
            timezone: jiff::tz::TimeZone::UTC,
            hours_change_ms: None,
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

    /// Files (or forgets) `user`'s report, and its back-off. O(log n).
    fn set_report(&mut self, user: UserId, report: Option<AgentReport>) {
        if let Some(old) = self.reports.remove(&user) {
            self.backoffs.remove(&(old.not_before_ms, user));
        }
        match &report {
            Some(r) => self.estimator.observe(r, self.now_ms),
            None => self.estimator.forget(user),
        }
        if let Some(r) = report {
            if r.member && r.available {
                self.backoffs.insert((r.not_before_ms, user));
            }
            self.reports.insert(user, r);
        }
    }

    /// What the empty policies know of `user` now.
    fn recount(&mut self, user: UserId) {
        let known = match self.reports.get(&user) {
            Some(r) => Known::State(r.state),
            None if self.members.contains(&user) && !self.absent.contains(&user) => Known::Unknown,
            None => Known::Absent,
        };
        let rule = self
            .spec
            .as_ref()
            .map(|s| s.empty_counts)
            .unwrap_or_default();
        self.pool.update(user, known, &rule);
    }

    fn reindex(&mut self, user: UserId) {
        self.touched.push(user);
        self.recount(user);
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
        self.now_ms = now_ms;
        let mut out = Vec::new();
        let full_check = matches!(input, QueueInput::Snapshot(_));
        match input {
            QueueInput::Snapshot(s) => self.on_snapshot(now_ms, *s, &mut out),
            QueueInput::Message(m) => self.on_message(now_ms, m, &mut out),
        }
        self.follow_hours(now_ms, &mut out);
        self.turn_away_when_emptied(&mut out);
        self.route(now_ms, &mut out);
        // A snapshot (periodic, O(agents) anyway) checks everything; any
        // other step checks the agents and entries it changed, in O(log n)
        // each.
        if full_check {
            self.check_invariants();
        } else {
            for user in &self.touched {
                self.index.check_agent(*user);
                self.check_agent_offers(*user);
            }
            for entry in &self.touched_entries {
                self.check_entry_offers(entry);
            }
        }
        self.touched.clear();
        self.touched_entries.clear();
        out
    }

    fn on_snapshot(&mut self, now_ms: u64, s: QueueSnapshot, out: &mut Vec<QueueOutput>) {
        self.index.set_required_skills(
            s.spec.required_skills.iter().map(|r| r.skill).collect(),
            routing::skill_steps(&s.spec),
        );
        self.spec = Some(s.spec);
        self.timezone = s.timezone;
        // The hours may have changed: looked at again in this step.
        self.hours_change_ms = Some(now_ms);
        let ledger: BTreeMap<String, EntryInfo> = s
            .waiting
            .into_iter()
            .map(|e| (e.entry.clone(), e))
            .collect();
        self.waiting.retain(|id| ledger.contains_key(id));
        self.offers.retain_entries(|id| ledger.contains_key(id));
        self.closing.retain(|id| ledger.contains_key(id));
        self.turned_away.retain(|id| ledger.contains_key(id));
        for (id, info) in ledger {
            if !s.nodes.is_empty() && !s.nodes.contains(&info.call.node) {
                self.waiting.remove(&id);
                self.offers.remove_entry(&id);
                self.turned_away.remove(&id);
                if self.closing.insert(id) {
                    out.push(QueueOutput::CloseLost(Box::new(lost(&info, now_ms))));
                }
                continue;
            }
            // New, or its place changed in the ledger (a priority changed
            // through the API, S2): the ledger's copy wins.
            let stale = self
                .waiting
                .get(&id)
                .is_none_or(|w| (w.priority, w.sequence) != (info.priority, info.sequence));
            if stale {
                self.touched_entries.push(id);
                self.waiting.insert(info);
            }
        }
        for gone in self
            .members
            .difference(&s.members)
            .copied()
            .collect::<Vec<_>>()
        {
            self.set_report(gone, None);
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
        let changed: Vec<UserId> = self
            .members
            .symmetric_difference(&s.members)
            .copied()
            .collect();
        self.members = s.members;
        let members = &self.members;
        self.absent.retain(|u| members.contains(u));
        let users: Vec<UserId> = self.reports.keys().copied().collect();
        for user in users {
            self.reindex(user);
        }
        // The rule may have changed too: every member is counted again.
        for user in changed.into_iter().chain(self.members.clone()) {
            self.recount(user);
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
                    self.touched_entries.push(info.entry.clone());
                    let closed = self
                        .spec
                        .as_ref()
                        .is_some_and(|s| !hours::is_open(s, now_ms, &self.timezone));
                    let empty = self.spec.as_ref().is_some_and(|s| {
                        self.pool.empty(s.join_when_empty) || self.pool.empty(s.leave_when_empty)
                    });
                    if closed {
                        self.turn_away(&info, ExitReason::Closed, out);
                    } else if empty {
                        self.turn_away(&info, ExitReason::NoAgents, out);
                    }
                    self.waiting.insert(*info);
                }
            }
            QueueMsg::Gone { entry } => {
                self.waiting.remove(&entry);
                self.offers.remove_entry(&entry);
                self.turned_away.remove(&entry);
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
                } else if !self.offers.holds(user) {
                    self.pending.remove(&user);
                }
                if report.member {
                    self.members.insert(user);
                    self.absent.remove(&user);
                    self.set_report(user, Some(*report));
                } else {
                    self.absent.insert(user);
                    self.set_report(user, None);
                }
                self.reindex(user);
            }
            QueueMsg::OfferEnded { entry, agent, .. } => {
                self.offers.remove(&entry, agent);
                self.touched_entries.push(entry);
                self.pending.remove(&agent);
                self.reindex(agent);
            }
            QueueMsg::Pull { agent } => self.on_pull(now_ms, agent, out),
            QueueMsg::Where { entry } => self.on_where(&entry, out),
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
            self.waiting
                .in_service_order()
                .filter(|e| ring_all || !self.offers.has_entry(&e.entry))
                .filter(|e| !self.closing.contains(&e.entry))
                .filter(|e| !self.turned_away.contains(&e.entry))
                .find(|e| routing::is_eligible(&spec, &a, &waiting_call(e), now_ms))
                .cloned()
        });
        match best {
            Some(entry) => self.offer(now_ms, entry, agent, out),
            None => out.push(self.to_agent(agent, AgentMsg::NothingWaiting { queue: self.queue })),
        }
    }

    fn offer(&mut self, now_ms: u64, entry: EntryInfo, agent: UserId, out: &mut Vec<QueueOutput>) {
        self.offers.insert(&entry.entry, agent, now_ms);
        self.touched_entries.push(entry.entry.clone());
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
        // The ids of the calls routing may place, in service order (no
        // copies of the calls themselves: one is copied when offered).
        let calls: Vec<String> = if self.index.available().next().is_none() {
            Vec::new()
        } else {
            self.waiting
                .in_service_order()
                .filter(|e| !self.closing.contains(&e.entry))
                .filter(|e| !self.turned_away.contains(&e.entry))
                .filter(|e| ring_all || !self.offers.has_entry(&e.entry))
                .map(|e| e.entry.clone())
                .collect()
        };
        for id in calls {
            if self.index.available().next().is_none() {
                break;
            }
            let Some(entry) = self.waiting.get(&id).cloned() else {
                continue;
            };
            match routing::choose(
                &spec,
                &self.index,
                &waiting_call(&entry),
                now_ms,
                &mut self.rng,
            ) {
                Choice::Offer(agents) => {
                    for agent in agents {
                        if self.offers.contains(&entry.entry, agent) {
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
        self.offers.remove_agent(agent);
        self.touched.push(agent);
    }

    /// Panics if the machine's state is inconsistent (a bug here). O(agents).
    pub fn check_invariants(&self) {
        self.waiting.check_invariants();
        self.offers.check_invariants();
        for entry in self.offers.entries() {
            self.check_entry_offers(entry);
        }
        for agent in self.offers.agents() {
            self.check_agent_offers(agent);
        }
        self.index.check_invariants();
        self.pool.check_invariants();
        let backoffs: BTreeSet<(u64, UserId)> = self
            .reports
            .iter()
            .filter(|(_, r)| r.member && r.available)
            .map(|(u, r)| (r.not_before_ms, *u))
            .collect();
        assert_eq!(
            backoffs, self.backoffs,
            "the back-off index follows the reports"
        );
        for id in &self.turned_away {
            assert!(self.waiting.contains(id), "a turned-away call still waits");
        }
    }

    /// The offer invariants of one entry. O(log n) per agent offered.
    fn check_entry_offers(&self, entry: &str) {
        self.offers.check_entry(entry);
        let Some(agents) = self.offers.agents_of(entry) else {
            return;
        };
        let ring_all = self
            .spec
            .as_ref()
            .is_some_and(|s| s.strategy == Strategy::RingAll);
        assert!(self.waiting.contains(entry), "offers name waiting entries");
        assert!(
            ring_all || agents.len() == 1,
            "one offer at a time per entry"
        );
        for a in agents.keys() {
            self.check_agent_offers(*a);
        }
    }

    /// The offer invariants of one agent: one that holds an offer is
    /// pending and not available. O(log n).
    fn check_agent_offers(&self, agent: UserId) {
        self.offers.check_agent(agent);
        if self.offers.holds(agent) {
            assert!(self.pending.contains(&agent), "an offered agent is pending");
            assert!(
                !self.index.get(agent).is_some_and(|i| i.available),
                "an offered agent is not available"
            );
        }
    }
}

/// The record of a waiting call whose node is gone.
fn lost(info: &EntryInfo, now_ms: u64) -> ActivityRecord {
    let ended = now_ms.max(info.enqueued_at_ms);
    ActivityRecord {
        disposition: None,
        interventions: Vec::new(),
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
