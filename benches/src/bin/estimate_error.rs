//! The estimated wait's error (issue 11, Q6): one queue's real machine
//! under simulated time, with callers arriving at random (Poisson) and
//! agents that answer at once and talk for a random handle time; each
//! caller asks its place on arrival (as a caller's announcement does) and
//! its estimate is compared with the wait it then had. Seeded (`--seed`);
//! the clock is simulated, nothing is timed.
//!
//! `cargo run --release -p carillon-benches --bin estimate_error` prints,
//! per handle-time distribution and load, the median and the 90th
//! percentile of |estimate - wait| / wait over callers who waited at least
//! 10 s, after a warm-up of the first tenth of the calls.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use carillon_actors::messages::{AgentReport, CallMsg, Message, QueueMsg};
use carillon_actors::model::agent_status::AgentState;
use carillon_actors::model::{QueueId, TenantId, UserId};
use carillon_actors::queue::{QueueInput, QueueMachine, QueueOutput, QueueSnapshot};
use carillon_benches::queue_sim::{offer_in, waiting_call};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TENANT: TenantId = TenantId(2);
const QUEUE: QueueId = QueueId(1);
const START_MS: u64 = 1_800_000_000_000;

#[derive(Parser)]
struct Args {
    /// Agents serving the queue.
    #[arg(long, default_value_t = 20)]
    agents: u64,
    /// Mean handle time, seconds.
    #[arg(long, default_value_t = 180)]
    handle_s: u64,
    /// Calls per run.
    #[arg(long, default_value_t = 20_000)]
    calls: u64,
    /// Seed.
    #[arg(long, default_value_t = 6)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// A caller arrives (its number).
    Arrival(u64),
    /// An agent hangs up (the agent).
    HangUp(u64),
}

#[derive(Clone, Copy)]
enum Handle {
    Exponential,
    /// Uniform within +-20 % of the mean.
    Steady,
}

struct Agent {
    calls: u64,
    talk_ms: u64,
    busy: bool,
}

fn report(user: u64, a: &Agent, now: u64) -> QueueInput {
    QueueInput::Message(QueueMsg::Agent(Box::new(AgentReport {
        agent: UserId(user),
        member: true,
        available: !a.busy,
        skills: BTreeMap::new(),
        idle_since_ms: now,
        last_offered_ms: None,
        calls_taken: a.calls,
        talk_time_ms: a.talk_ms,
        not_before_ms: 0,
        state: if a.busy {
            AgentState::Talking
        } else {
            AgentState::Idle
        },
    })))
}

/// Runs one simulation; the relative errors of callers who waited 10 s or more,
/// and the share of callers who waited that long.
fn simulate(args: &Args, load: f64, handle: Handle, seed: u64) -> (Vec<f64>, f64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mean_handle_ms = args.handle_s as f64 * 1000.0;
    let arrival_ms = mean_handle_ms / (load * args.agents as f64);
    let mut m = QueueMachine::new(TENANT, QUEUE, seed);
    let spec = serde_json::from_value(serde_json::json!({"name": "Sim", "ring_timeout_s": 300}))
        .expect("spec");
    m.handle(
        START_MS,
        QueueInput::Snapshot(Box::new(QueueSnapshot {
            spec,
            waiting: Vec::new(),
            members: (0..args.agents).map(UserId).collect(),
            nodes: [1].into(),
            timezone: jiff::tz::TimeZone::UTC,
        })),
    );
    let mut agents: Vec<Agent> = (0..args.agents)
        .map(|_| Agent {
            calls: 0,
            talk_ms: 0,
            busy: false,
        })
        .collect();
    for (i, a) in agents.iter().enumerate() {
        m.handle(START_MS, report(i as u64, a, START_MS));
    }
    let mut events: BinaryHeap<Reverse<(u64, Event)>> = BinaryHeap::new();
    events.push(Reverse((START_MS, Event::Arrival(0))));
    let mut arrived: BTreeMap<String, (u64, Option<u32>)> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut long_waits = 0u64;
    let mut counted = 0u64;
    let draw_handle = |rng: &mut StdRng| -> u64 {
        let ms = match handle {
            Handle::Exponential => -mean_handle_ms * (1.0 - rng.gen::<f64>()).ln(),
            Handle::Steady => mean_handle_ms * rng.gen_range(0.8..1.2),
        };
        ms.max(1000.0) as u64
    };
    while let Some(Reverse((now, event))) = events.pop() {
        let mut out = Vec::new();
        match event {
            Event::Arrival(n) => {
                if n + 1 < args.calls {
                    let gap = -arrival_ms * (1.0 - rng.gen::<f64>()).ln();
                    events.push(Reverse((now + gap as u64, Event::Arrival(n + 1))));
                }
                let e = waiting_call(TENANT, QUEUE, n, n + 1, now);
                let id = e.entry.clone();
                out.extend(m.handle(now, QueueInput::Message(QueueMsg::Enqueued(Box::new(e)))));
                // The caller's first announcement asks its place.
                let asked = m.handle(
                    now,
                    QueueInput::Message(QueueMsg::Where { entry: id.clone() }),
                );
                let estimate = asked.iter().find_map(|o| match o {
                    QueueOutput::Send(env) => match &env.message {
                        Message::Call(CallMsg::Place {
                            estimated_wait_s, ..
                        }) => Some(*estimated_wait_s),
                        _ => None,
                    },
                    _ => None,
                });
                // A caller offered at once has no place to ask.
                arrived.insert(id, (now, estimate.flatten()));
            }
            Event::HangUp(agent) => {
                let a = &mut agents[agent as usize];
                a.busy = false;
                out.extend(m.handle(now, report(agent, a, now)));
            }
        }
        // Offers: the agent answers at once and talks.
        let mut pending: Vec<QueueOutput> = out;
        while let Some(o) = pending.pop() {
            let Some((agent, entry)) = offer_in(std::slice::from_ref(&o)) else {
                continue;
            };
            let (since, estimate) = arrived.remove(&entry).unwrap_or((now, None));
            let waited_ms = now - since;
            let n: u64 = entry.trim_start_matches("call-").parse().unwrap_or(0);
            if n >= args.calls / 10 {
                counted += 1;
                if waited_ms >= 10_000 {
                    long_waits += 1;
                    if let Some(est) = estimate {
                        let real = waited_ms as f64 / 1000.0;
                        errors.push((f64::from(est) - real).abs() / real);
                    }
                }
            }
            let talk = draw_handle(&mut rng);
            let a = &mut agents[agent as usize];
            a.busy = true;
            a.calls += 1;
            a.talk_ms += talk;
            m.handle(now, QueueInput::Message(QueueMsg::Gone { entry }));
            pending.extend(m.handle(now, report(agent, &agents[agent as usize], now)));
            events.push(Reverse((now + talk, Event::HangUp(agent))));
        }
    }
    (errors, long_waits as f64 / counted.max(1) as f64)
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let args = Args::parse();
    println!("handle_time,load,agents,mean_handle_s,calls,waited_10s_share,estimates,median_rel_error,p90_rel_error");
    for (name, handle) in [
        ("exponential", Handle::Exponential),
        ("steady_20pct", Handle::Steady),
    ] {
        for load in [0.85, 0.95] {
            let (errors, share) = simulate(&args, load, handle, args.seed);
            let n = errors.len();
            println!(
                "{name},{load},{},{},{},{share:.3},{n},{:.3},{:.3}",
                args.agents,
                args.handle_s,
                args.calls,
                quantile(errors.clone(), 0.5),
                quantile(errors, 0.9)
            );
        }
    }
}
