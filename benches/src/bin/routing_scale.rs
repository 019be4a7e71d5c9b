//! Routing at scale (issue 11): the real queue machines' routing decision
//! (a caller enters a queue and is offered to an agent) and an agent's state
//! change (its report to each of its queues), at 1,000, 10,000 and 100,000
//! agents over 1,000 queues and 50 skills, with the machines' production
//! invariant checks on. Each agent has 3 skills (levels 1-10) and is a
//! member of 5 queues; a third of the queues route by skills (two required
//! skills at level 1 or more), the others by longest idle and least recent.
//! Everything is seeded (`--seed`); only the clock is read, around each
//! measured `handle` call.
//!
//! `cargo build --release -p carillon-benches --bin routing_scale &&
//! taskset -c 1 target/release/routing_scale` prints, per size, the
//! decision's and the change's p50, p99 and max in microseconds over
//! `--samples` draws each, the medians of `--runs` runs.

use std::collections::{BTreeMap, BTreeSet};

use carillon_actors::messages::{AgentReport, QueueMsg};
use carillon_actors::model::agent_status::AgentState;
use carillon_actors::model::queue::QueueSpec;
use carillon_actors::model::{QueueId, SkillId, TenantId, UserId};
use carillon_actors::queue::{QueueInput, QueueMachine, QueueSnapshot};
use carillon_benches::queue_sim::{offer_in, waiting_call};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TENANT: TenantId = TenantId(2);
const QUEUES: u64 = 1_000;
const SKILLS: u64 = 50;
const QUEUES_PER_AGENT: usize = 5;
const SKILLS_PER_AGENT: usize = 3;
const NOW_MS: u64 = 1_800_000_000_000;

#[derive(Parser)]
struct Args {
    /// Agent counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    agents: Vec<u64>,
    /// Draws per measurement.
    #[arg(long, default_value_t = 20_000)]
    samples: usize,
    /// Seed of the population and the draws.
    #[arg(long, default_value_t = 11)]
    seed: u64,
    /// Runs per size (each with its own population); the medians are printed.
    #[arg(long, default_value_t = 3)]
    runs: u64,
}

/// One run's figures: decision p50, p99, max; change p50, p99, max; offers.
type Figures = [f64; 7];

fn run(agents: u64, samples: usize, seed: u64) -> Figures {
    let mut rng = StdRng::seed_from_u64(seed ^ agents);
    let mut p = populate(agents, &mut rng);
    let mut decisions = Vec::with_capacity(samples);
    let mut changes = Vec::with_capacity(samples);
    let mut offered = 0usize;
    for n in 0..samples as u64 {
        let now = NOW_MS + 1 + n;
        // A routing decision: a caller enters a random queue.
        let queue = QueueId(rng.gen_range(1..=QUEUES));
        let m = p.machines.get_mut(&queue).expect("machine");
        let input = QueueInput::Message(QueueMsg::Enqueued(Box::new(waiting_call(
            TENANT, queue, n, n, NOW_MS,
        ))));
        let (out, us) = timed(|| m.handle(now, input));
        decisions.push(us);
        // Back to where it was: the caller leaves, the agent is free.
        m.handle(
            now,
            QueueInput::Message(QueueMsg::Gone {
                entry: format!("call-{n}"),
            }),
        );
        if let Some((agent, _)) = offer_in(&out) {
            offered += 1;
            let skills = p.skills_of[agent as usize].clone();
            m.handle(now, report(agent, &skills, true, now));
        }
        // An agent's state change: its report reaches each of its queues.
        let agent = rng.gen_range(0..agents);
        let skills = p.skills_of[agent as usize].clone();
        let queues = p.queues_of[agent as usize].clone();
        for available in [false, true] {
            for q in &queues {
                let m = p.machines.get_mut(q).expect("machine");
                let (_, us) = timed(|| m.handle(now, report(agent, &skills, available, now)));
                changes.push(us);
            }
        }
    }
    let (d50, d99, dmax) = percentiles(decisions);
    let (c50, c99, cmax) = percentiles(changes);
    [d50, d99, dmax, c50, c99, cmax, offered as f64]
}

struct Population {
    machines: BTreeMap<QueueId, QueueMachine>,
    queues_of: Vec<Vec<QueueId>>,
    skills_of: Vec<BTreeMap<SkillId, u8>>,
}

fn spec(queue: u64, rng: &mut StdRng) -> QueueSpec {
    let strategy = match queue % 3 {
        0 => serde_json::json!({"kind": "skills_based"}),
        1 => serde_json::json!({"kind": "longest_idle"}),
        _ => serde_json::json!({"kind": "least_recent"}),
    };
    let required: Vec<serde_json::Value> = if queue.is_multiple_of(3) {
        let a = rng.gen_range(1..=SKILLS);
        let b = (a % SKILLS) + 1;
        vec![
            serde_json::json!({"skill": a, "min_level": 1}),
            serde_json::json!({"skill": b, "min_level": 1}),
        ]
    } else {
        Vec::new()
    };
    serde_json::from_value(serde_json::json!({
        "name": format!("q{queue}"), "strategy": strategy, "required_skills": required,
        "relaxations": if queue.is_multiple_of(3) { serde_json::json!([{"after_s": 30, "min_level": null}]) } else { serde_json::json!([]) }
    }))
    .expect("a valid spec")
}

fn report(agent: u64, skills: &BTreeMap<SkillId, u8>, available: bool, at_ms: u64) -> QueueInput {
    QueueInput::Message(QueueMsg::Agent(Box::new(AgentReport {
        agent: UserId(agent),
        member: true,
        available,
        skills: skills.clone(),
        idle_since_ms: at_ms,
        last_offered_ms: None,
        calls_taken: 0,
        talk_time_ms: 0,
        not_before_ms: 0,
        state: if available {
            AgentState::Idle
        } else {
            AgentState::Talking
        },
    })))
}

fn populate(agents: u64, rng: &mut StdRng) -> Population {
    let mut members: BTreeMap<QueueId, BTreeSet<UserId>> = BTreeMap::new();
    let mut queues_of = Vec::new();
    let mut skills_of = Vec::new();
    for agent in 0..agents {
        let mut queues = BTreeSet::new();
        while queues.len() < QUEUES_PER_AGENT {
            queues.insert(QueueId(rng.gen_range(1..=QUEUES)));
        }
        let mut skills = BTreeMap::new();
        while skills.len() < SKILLS_PER_AGENT {
            skills.insert(SkillId(rng.gen_range(1..=SKILLS)), rng.gen_range(1..=10u8));
        }
        for q in &queues {
            members.entry(*q).or_default().insert(UserId(agent));
        }
        queues_of.push(queues.into_iter().collect());
        skills_of.push(skills);
    }
    let mut machines = BTreeMap::new();
    for q in 1..=QUEUES {
        let queue = QueueId(q);
        let mut m = QueueMachine::new(TENANT, queue, q);
        m.handle(
            NOW_MS,
            QueueInput::Snapshot(Box::new(QueueSnapshot {
                spec: spec(q, rng),
                waiting: Vec::new(),
                members: members.get(&queue).cloned().unwrap_or_default(),
                nodes: [1].into(),
                timezone: jiff::tz::TimeZone::UTC,
            })),
        );
        machines.insert(queue, m);
    }
    for (agent, queues) in queues_of.iter().enumerate() {
        for q in queues {
            let m = machines.get_mut(q).expect("a machine per queue");
            m.handle(
                NOW_MS,
                report(agent as u64, &skills_of[agent], true, NOW_MS - agent as u64),
            );
        }
    }
    Population {
        machines,
        queues_of,
        skills_of,
    }
}

/// Microseconds of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    // The one clock this program reads: around each measured call.
    #[allow(clippy::disallowed_methods)]
    let start = std::time::Instant::now();
    let value = f();
    (value, start.elapsed().as_secs_f64() * 1e6)
}

fn percentiles(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    (at(0.5), at(0.99), at(1.0))
}

fn main() {
    let args = Args::parse();
    println!("agents,queues,skills,members_per_queue,decision_p50_us,decision_p99_us,decision_max_us,change_p50_us,change_p99_us,change_max_us,offered");
    for &agents in &args.agents {
        let mut runs: Vec<Figures> = (0..args.runs)
            .map(|r| run(agents, args.samples, args.seed.wrapping_add(r)))
            .collect();
        let median = |k: usize, runs: &mut Vec<Figures>| {
            runs.sort_by(|a, b| a[k].total_cmp(&b[k]));
            runs[runs.len() / 2][k]
        };
        let f: Vec<f64> = (0..7).map(|k| median(k, &mut runs)).collect();
        let members = agents * QUEUES_PER_AGENT as u64 / QUEUES;
        println!(
            "{agents},{QUEUES},{SKILLS},{members},{:.2},{:.2},{:.1},{:.2},{:.2},{:.1},{}",
            f[0], f[1], f[2], f[3], f[4], f[5], f[6]
        );
    }
}
