//! A deterministic simulation of the routing actors: the ledger, the queue
//! machines and the agent machines of one node, connected by an in-memory
//! message bus under simulated time, with callers and phones played by the
//! test (a phone answers, refuses or lets it ring, per a seeded draw; a
//! caller may leave while it waits). Everything derives from the proptest
//! seed, printed when a case fails; `CARILLON_SIM_SEED=<seed>` replays one
//! (the `replay` test).
//!
//! Properties, checked after every step:
//! - the ledger's invariants hold (an agent never holds two voice offers;
//!   an entry is offered only while waiting and assigned at most once);
//! - every machine's `check_invariants()` holds (they assert it themselves
//!   after every input; the queue checks the agents each step touched, and
//!   the simulation checks its whole state);
//! - a queue offers in service order: when an offer goes out, no more
//!   deserving call of that queue (priority, then arrival) waits without
//!   an offer, unless the agent could not take it (its skills);
//! - when the bus is quiet, no call waits unoffered while an agent that
//!   could take it is available;
//! - every call ends with exactly one activity record.

mod checks;
#[path = "../common/mod.rs"]
mod common;
mod scenario;

use checks::check_outcome;
use scenario::{scenario, scenario_of, Phone, Scenario};

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use carillon_actors::agent::{agent_snapshot, AgentInput, AgentMachine, AgentOutput};
use carillon_actors::ledger::{CallCheckpoint, Command, Ledger, Outcome, Voice, WriteError};
use carillon_actors::messages::{
    Address, AgentMsg, CallMsg, DeviceMsg, EntryInfo, Envelope, Message, QueueMsg,
};
use carillon_actors::model::activity::{ActivityOutcome, ActivityRecord, Direction, OfferEnd};
use carillon_actors::model::{DeviceId, QueueId, SkillId, TenantId, UserId};
use carillon_actors::placement::ActorKey;
use carillon_actors::queue::{queue_snapshot, QueueInput, QueueMachine, QueueOutput};
use carillon_actors::routing::{self, WaitingCall};
use common::{agent_spec, patched, queue_spec, sip_phone, Fixture};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// A timed event.
#[derive(Debug, Clone)]
enum Event {
    Deliver(Envelope),
    Decide(UserId),
    Arrive(usize),
    Leave(String),
    Answer { entry: String, agent: UserId },
    Hangup { entry: String, agent: UserId },
}

struct Call {
    queue: QueueId,
    connected: Option<UserId>,
    ended: bool,
}

struct Sim {
    ledger: Ledger,
    tenant: TenantId,
    now: u64,
    rng: StdRng,
    scenario: Scenario,
    queues: BTreeMap<QueueId, QueueMachine>,
    agents: BTreeMap<UserId, AgentMachine>,
    devices: BTreeMap<DeviceId, UserId>,
    bus: VecDeque<Event>,
    timers: BTreeMap<(u64, u64), Event>,
    seq: u64,
    calls: BTreeMap<String, Call>,
    /// Entries a queue has an offer out for (its own view, for the order check).
    offered: BTreeMap<String, BTreeSet<UserId>>,
    queue_ids: Vec<QueueId>,
    skill: SkillId,
    start_ms: u64,
}

const WRAP_UP_S: u32 = 2;
const RING_TIMEOUT_S: u32 = 5;

impl Sim {
    fn new(s: &Scenario) -> Sim {
        let mut f = Fixture::new();
        let tenant = f.tenant;
        let skill = f.skill;
        f.ok(Command::SetPlacement {
            epoch: 1,
            members: [1].into(),
        });
        f.ok(Command::BuyDevicePackages { tenant, count: 2 });
        let strategy = if s.ring_all {
            "ring_all"
        } else {
            "longest_idle"
        };
        let spec = patched(
            &queue_spec("Sim"),
            json!({"strategy": {"kind": strategy}, "wrap_up_s": WRAP_UP_S, "ring_timeout_s": RING_TIMEOUT_S,
                   "retry_delay_s": 1, "reject_backoff_s": 3,
                   "required_skills": [{"skill": skill.0, "min_level": 3}], "relaxations": [{"after_s": 10, "min_level": 1}]}),
        );
        let queue = QueueId(f.create(Command::CreateQueue { tenant, spec }));
        let mut devices = BTreeMap::new();
        let mut rng = StdRng::seed_from_u64(s.seed);
        for i in 0..s.agents {
            let level = rng.gen_range(1..=5u8);
            let spec = patched(
                &agent_spec(&format!("sim{i}")),
                json!({"skills": [{"skill": skill.0, "level": level}]}),
            );
            let user = f.add_user(spec, None, None).expect("agent");
            let device = DeviceId(f.create(Command::CreateDevice {
                tenant,
                spec: carillon_actors::model::directory::DeviceSpec {
                    owner: Some(user),
                    ..sip_phone(&format!("simphone{i}"), &format!("{}", 600 + i))
                },
                sip_secret: Some(common::sip_secret(&format!("simphone{i}"))),
            }));
            devices.insert(device, user);
            f.ok(Command::Login {
                tenant,
                user,
                terminal: "panel".into(),
            });
            f.ok(Command::CheckIn {
                tenant,
                user,
                queue,
            });
        }
        Sim {
            ledger: f.ledger,
            tenant,
            now: 1_000_000,
            rng,
            scenario: s.clone(),
            queues: BTreeMap::from([(queue, QueueMachine::new(tenant, queue, s.seed))]),
            agents: BTreeMap::new(),
            devices,
            bus: VecDeque::new(),
            timers: BTreeMap::new(),
            seq: 0,
            calls: BTreeMap::new(),
            offered: BTreeMap::new(),
            queue_ids: vec![queue],
            skill,
            start_ms: 1_000_000,
        }
    }

    fn at(&mut self, after_ms: u64, event: Event) {
        self.seq += 1;
        self.timers.insert((self.now + after_ms, self.seq), event);
    }

    fn write(&mut self, command: Command) -> Result<Outcome, WriteError> {
        let r = self
            .ledger
            .execute(command, self.now)
            .map_err(WriteError::Refused);
        self.ledger.check_invariants();
        r
    }

    fn start(&mut self) {
        let users: Vec<UserId> = self.devices.values().copied().collect();
        for user in users {
            let mut m = AgentMachine::new(self.tenant, user);
            self.agents.insert(user, m.clone());
            let snap = agent_snapshot(&self.ledger, self.tenant, user).expect("an agent");
            let outs = m.handle(self.now, AgentInput::Snapshot(Box::new(snap)));
            self.agents.insert(user, m);
            self.agent_outputs(user, outs);
        }
        let queues: Vec<QueueId> = self.queues.keys().copied().collect();
        for q in queues {
            let snap = queue_snapshot(&self.ledger, self.tenant, q, |_| None).expect("queue");
            self.queue_input(q, QueueInput::Snapshot(Box::new(snap)));
        }
        // Every phone is registered and answers keepalives.
        let devices: Vec<(DeviceId, UserId)> = self.devices.iter().map(|(d, u)| (*d, *u)).collect();
        for (device, user) in devices {
            self.agent_input(
                user,
                AgentInput::Message(AgentMsg::Reachability {
                    device,
                    reachable: true,
                }),
            );
        }
        for i in 0..self.scenario.calls {
            let after = self.rng.gen_range(0..20_000);
            self.at(after, Event::Arrive(i));
        }
    }

    fn agent_input(&mut self, user: UserId, input: AgentInput) {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            let Some(m) = self.agents.get_mut(&user) else {
                return;
            };
            let outs = m.handle(self.now, input);
            for out in outs {
                match out {
                    AgentOutput::Ledger { op, command } => {
                        let result = self.write(*command);
                        inputs.push_back(AgentInput::Ledger { op, result });
                    }
                    AgentOutput::Refresh => {
                        if let Some(s) = agent_snapshot(&self.ledger, self.tenant, user) {
                            inputs.push_back(AgentInput::Snapshot(Box::new(s)));
                        }
                    }
                    other => self.agent_outputs(user, vec![other]),
                }
            }
        }
    }

    fn agent_outputs(&mut self, user: UserId, outs: Vec<AgentOutput>) {
        for out in outs {
            match out {
                AgentOutput::Send(e) => self.bus.push_back(Event::Deliver(e)),
                AgentOutput::Timer { after_ms, message } => self.at(
                    after_ms,
                    Event::Deliver(Envelope {
                        to: Address::agent(self.tenant, user),
                        message: Message::Agent(message),
                        hops: 0,
                    }),
                ),
                AgentOutput::DecideLater => self.bus.push_back(Event::Decide(user)),
                AgentOutput::Event(_) => {}
                AgentOutput::Ledger { .. } | AgentOutput::Refresh => {
                    self.agent_input(user, AgentInput::Message(AgentMsg::Refresh))
                }
            }
        }
    }

    fn queue_input(&mut self, queue: QueueId, input: QueueInput) {
        let Some(m) = self.queues.get_mut(&queue) else {
            return;
        };
        let outputs = m.handle(self.now, input);
        // The machine checks what each step touched; the whole state here.
        m.check_invariants();
        for out in outputs {
            match out {
                QueueOutput::Send(e) => {
                    if let Message::Agent(AgentMsg::Offer(info)) = &e.message {
                        if let Address::Actor {
                            key: ActorKey::Agent { user, .. },
                        } = &e.to
                        {
                            self.check_offer_order(queue, info, *user);
                            self.offered
                                .entry(info.entry.clone())
                                .or_default()
                                .insert(*user);
                        }
                    }
                    self.bus.push_back(Event::Deliver(e));
                }
                QueueOutput::Tick { after_ms } => self.at(
                    after_ms,
                    Event::Deliver(Envelope {
                        to: Address::queue(self.tenant, queue),
                        message: Message::Queue(QueueMsg::Tick),
                        hops: 0,
                    }),
                ),
                QueueOutput::CloseLost(_) => panic!("no node dies in this simulation"),
            }
        }
    }

    fn phone(&mut self) -> Phone {
        // After a minute every phone answers, so that every call drains.
        if self.now > self.start_ms + 60_000 {
            return Phone::Answer;
        }
        let draw = self.rng.gen_range(0..1000);
        if draw < self.scenario.answer {
            Phone::Answer
        } else if draw < self.scenario.answer + self.scenario.refuse {
            Phone::Refuse
        } else {
            Phone::Silent
        }
    }

    fn deliver(&mut self, e: Envelope) {
        match (e.to, e.message) {
            (
                Address::Actor {
                    key: ActorKey::Queue { queue, .. },
                },
                Message::Queue(m),
            ) => {
                match &m {
                    QueueMsg::OfferEnded { entry, agent, .. } => {
                        if let Some(a) = self.offered.get_mut(entry) {
                            a.remove(agent);
                        }
                    }
                    QueueMsg::Gone { entry } => {
                        self.offered.remove(entry);
                    }
                    // A busy agent keeps its offer until it ends it; a free
                    // one holds none.
                    QueueMsg::Agent(r) if r.available || !r.member => {
                        for a in self.offered.values_mut() {
                            a.remove(&r.agent);
                        }
                    }
                    _ => {}
                }
                let input = match m {
                    QueueMsg::Refresh => QueueInput::Snapshot(Box::new(
                        queue_snapshot(&self.ledger, self.tenant, queue, |_| None).expect("q"),
                    )),
                    other => QueueInput::Message(other),
                };
                self.queue_input(queue, input);
            }
            (
                Address::Actor {
                    key: ActorKey::Agent { user, .. },
                },
                Message::Agent(m),
            ) => self.agent_input(user, AgentInput::Message(m)),
            (
                Address::Actor {
                    key: ActorKey::Device { device, .. },
                },
                Message::Device(DeviceMsg::Ring(r)),
            ) => {
                let agent = self.devices[&device];
                match self.phone() {
                    Phone::Answer => {
                        let after = self
                            .rng
                            .gen_range(100..(RING_TIMEOUT_S as u64 * 1000 + 500));
                        self.at(
                            after,
                            Event::Answer {
                                entry: r.call.call.clone(),
                                agent,
                            },
                        );
                    }
                    Phone::Refuse => self.bus.push_back(Event::Deliver(Envelope {
                        to: Address::agent(self.tenant, agent),
                        message: Message::Agent(AgentMsg::ForkEnded {
                            entry: r.call.call.clone(),
                            device,
                            end: OfferEnd::Rejected,
                        }),
                        hops: 0,
                    })),
                    Phone::Silent => {}
                }
            }
            (Address::Call { call }, Message::Call(m)) => {
                if let CallMsg::StopRinging { .. } = m {
                    // The forks are hung up; a late answer is refused by the ledger.
                }
                let _ = call;
            }
            (to, m) => panic!("unexpected message {m:?} to {to:?}"),
        }
    }

    fn record(
        &self,
        entry: &str,
        agent: Option<UserId>,
        outcome: ActivityOutcome,
    ) -> ActivityRecord {
        ActivityRecord {
            interventions: Vec::new(),
            disposition: None,
            id: entry.into(),
            direction: Direction::Inbound,
            queue: Some(self.calls[entry].queue),
            agent,
            caller: "+1".into(),
            called: "+2".into(),
            started_at_ms: self.now - 1,
            connected_at_ms: agent.map(|_| self.now - 1),
            ended_at_ms: self.now,
            closed_at_ms: self.now,
            waiting_ms: 0,
            interaction_ms: 0,
            processing_ms: 0,
            outcome,
            segments: Vec::new(),
            node: 1,
        }
    }

    fn tell(&mut self, to: Address, message: Message) {
        self.bus.push_back(Event::Deliver(Envelope {
            to,
            message,
            hops: 0,
        }));
    }

    fn event(&mut self, event: Event) {
        match event {
            Event::Deliver(e) => self.deliver(e),
            Event::Decide(user) => self.agent_input(user, AgentInput::Decide),
            Event::Arrive(i) => {
                let entry = format!("call-{i}");
                let queue = self.queue_ids[0];
                let priority = if self.scenario.priorities {
                    Some(self.rng.gen_range(0..3) * 10)
                } else {
                    None
                };
                let checkpoint = CallCheckpoint {
                    node: 1,
                    leg: i as u64,
                    sip_call_id: entry.clone(),
                    caller: "+1".into(),
                    called: "+2".into(),
                    media_session: entry.clone(),
                    relay: "local".into(),
                    agent_offer_sdp: "v=0".into(),
                    arrived_at_ms: self.now,
                };
                self.write(Command::Enqueue {
                    tenant: self.tenant,
                    queue,
                    entry: entry.clone(),
                    priority,
                    call: Some(Box::new(checkpoint)),
                })
                .expect("enqueue");
                self.calls.insert(
                    entry.clone(),
                    Call {
                        queue,
                        connected: None,
                        ended: false,
                    },
                );
                let e = self
                    .ledger
                    .tenant(self.tenant)
                    .and_then(|t| t.entry(&entry))
                    .expect("entry")
                    .clone();
                let info = EntryInfo {
                    tenant: self.tenant,
                    queue,
                    entry: entry.clone(),
                    priority: e.priority,
                    sequence: e.sequence,
                    enqueued_at_ms: e.enqueued_at_ms,
                    call: *e.call.expect("checkpoint"),
                };
                self.tell(
                    Address::queue(self.tenant, queue),
                    Message::Queue(QueueMsg::Enqueued(Box::new(info))),
                );
                if self.rng.gen_range(0..1000) < self.scenario.leave {
                    let after = self.rng.gen_range(500..15_000);
                    self.at(after, Event::Leave(entry));
                }
            }
            Event::Leave(entry) => {
                let waiting = self
                    .ledger
                    .tenant(self.tenant)
                    .and_then(|t| t.entry(&entry))
                    .is_some_and(|e| e.state == carillon_actors::ledger::EntryState::Waiting);
                if !waiting || self.calls[&entry].ended {
                    return;
                }
                let offered: Vec<UserId> = self
                    .ledger
                    .tenant(self.tenant)
                    .and_then(|t| t.entry(&entry))
                    .map(|e| e.offered_to.iter().copied().collect())
                    .unwrap_or_default();
                let record = self.record(&entry, None, ActivityOutcome::Abandoned);
                self.write(Command::CloseActivity {
                    tenant: self.tenant,
                    record: Box::new(record),
                })
                .expect("close");
                self.calls.get_mut(&entry).expect("call").ended = true;
                let queue = self.calls[&entry].queue;
                self.tell(
                    Address::queue(self.tenant, queue),
                    Message::Queue(QueueMsg::Gone {
                        entry: entry.clone(),
                    }),
                );
                let mut told: BTreeSet<UserId> = offered.into_iter().collect();
                told.extend(self.offered.get(&entry).cloned().unwrap_or_default());
                for agent in told {
                    self.tell(
                        Address::agent(self.tenant, agent),
                        Message::Agent(AgentMsg::CallEnded {
                            entry: entry.clone(),
                            end: Some(OfferEnd::Cancelled),
                        }),
                    );
                }
            }
            Event::Answer { entry, agent } => {
                if self.calls[&entry].ended || self.calls[&entry].connected.is_some() {
                    return;
                }
                let others: Vec<UserId> = self
                    .ledger
                    .tenant(self.tenant)
                    .and_then(|t| t.entry(&entry))
                    .map(|e| {
                        e.offered_to
                            .iter()
                            .copied()
                            .filter(|u| *u != agent)
                            .collect()
                    })
                    .unwrap_or_default();
                if self
                    .write(Command::ConnectCall {
                        tenant: self.tenant,
                        entry: entry.clone(),
                        user: agent,
                    })
                    .is_err()
                {
                    return; // the offer ended first: the answer is hung up
                }
                self.calls.get_mut(&entry).expect("call").connected = Some(agent);
                self.tell(
                    Address::agent(self.tenant, agent),
                    Message::Agent(AgentMsg::Connected {
                        entry: entry.clone(),
                    }),
                );
                let queue = self.calls[&entry].queue;
                self.tell(
                    Address::queue(self.tenant, queue),
                    Message::Queue(QueueMsg::Gone {
                        entry: entry.clone(),
                    }),
                );
                for other in others {
                    self.tell(
                        Address::agent(self.tenant, other),
                        Message::Agent(AgentMsg::CallEnded {
                            entry: entry.clone(),
                            end: Some(OfferEnd::Cancelled),
                        }),
                    );
                }
                let talk = self.rng.gen_range(500..8_000);
                self.at(talk, Event::Hangup { entry, agent });
            }
            Event::Hangup { entry, agent } => {
                let record = self.record(&entry, Some(agent), ActivityOutcome::Answered);
                self.write(Command::EndCall {
                    tenant: self.tenant,
                    entry: entry.clone(),
                    user: agent,
                    record: Box::new(record),
                })
                .expect("end call");
                self.calls.get_mut(&entry).expect("call").ended = true;
                self.tell(
                    Address::agent(self.tenant, agent),
                    Message::Agent(AgentMsg::CallEnded { entry, end: None }),
                );
            }
        }
    }

    fn run(&mut self) {
        self.start();
        let limit = self.now + 600_000;
        loop {
            let mut steps = 0;
            while let Some(e) = self.bus.pop_front() {
                steps += 1;
                assert!(
                    steps < 100_000,
                    "seed {}: the bus never settles",
                    self.scenario.seed
                );
                self.event(e);
            }
            // Checked once every event of this instant has run (a queue's
            // tick due now may come after another event of the same instant).
            if self
                .timers
                .keys()
                .next()
                .is_none_or(|(at, _)| *at > self.now)
            {
                self.check_no_idle_agent_while_waiting();
            }
            let Some(entry) = self.timers.first_entry() else {
                break;
            };
            let ((at, _), event) = entry.remove_entry();
            assert!(
                at <= limit,
                "seed {}: the simulation runs past its bound",
                self.scenario.seed
            );
            self.now = self.now.max(at);
            self.event(event);
        }
    }
}

/// `CARILLON_SIM_SEED=<seed> cargo test -p carillon-actors --test simulation
/// replay -- --nocapture` runs that seed's scenario alone (a failure prints
/// its seed); without it, seed 1.
#[test]
fn replay() {
    let seed: u64 = std::env::var("CARILLON_SIM_SEED")
        .map(|s| s.parse().expect("CARILLON_SIM_SEED is a number"))
        .unwrap_or(1);
    let s = scenario_of(seed);
    println!("replaying seed {seed}: {s:?}");
    let mut sim = Sim::new(&s);
    sim.run();
    check_outcome(&sim, &s).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn routing_actors_keep_their_promises(s in scenario()) {
        let mut sim = Sim::new(&s);
        sim.run();
        // Every call ended with one record (every phone answers after a
        // minute at the latest).
        check_outcome(&sim, &s)?;
    }
}
