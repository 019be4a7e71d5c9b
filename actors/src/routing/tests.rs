//! One table of routing cases through one `check()`; `properties` holds the
//! property test of `choose` against a model.

mod properties;

use super::*;
use crate::model::queue::{AgentWeight, Relaxation, Strategy};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Milliseconds in a second.
const S: u64 = 1_000;

/// An available agent: `order` = its id, idle since 0, never offered, no
/// calls, no talk time, no back-off, no skills.
fn agent(id: u64) -> AgentInfo {
    AgentInfo {
        user: UserId(id),
        skills: BTreeMap::new(),
        order: u32::try_from(id).expect("small test ids"),
        available: true,
        idle_since_ms: 0,
        last_offered_ms: None,
        calls_taken: 0,
        talk_time_ms: 0,
        not_before_ms: 0,
    }
}

/// Field setters for table rows.
trait With: Sized {
    fn order(self, order: u32) -> Self;
    fn idle(self, since_ms: u64) -> Self;
    fn offered(self, at_ms: u64) -> Self;
    fn calls(self, calls: u64) -> Self;
    fn talk(self, talk_ms: u64) -> Self;
    fn skill(self, skill: u64, level: u8) -> Self;
    fn away(self) -> Self;
    fn not_before(self, at_ms: u64) -> Self;
}

impl With for AgentInfo {
    fn order(self, order: u32) -> Self {
        Self { order, ..self }
    }
    fn idle(self, idle_since_ms: u64) -> Self {
        Self {
            idle_since_ms,
            ..self
        }
    }
    fn offered(self, at_ms: u64) -> Self {
        Self {
            last_offered_ms: Some(at_ms),
            ..self
        }
    }
    fn calls(self, calls_taken: u64) -> Self {
        Self {
            calls_taken,
            ..self
        }
    }
    fn talk(self, talk_time_ms: u64) -> Self {
        Self {
            talk_time_ms,
            ..self
        }
    }
    fn skill(mut self, skill: u64, level: u8) -> Self {
        self.skills.insert(SkillId(skill), level);
        self
    }
    fn away(self) -> Self {
        Self {
            available: false,
            ..self
        }
    }
    fn not_before(self, not_before_ms: u64) -> Self {
        Self {
            not_before_ms,
            ..self
        }
    }
}

/// A queue with defaults and `strategy`.
fn spec(strategy: Strategy) -> QueueSpec {
    let mut spec: QueueSpec =
        serde_json::from_value(serde_json::json!({ "name": "q" })).expect("a valid queue spec");
    spec.strategy = strategy;
    spec
}

/// `spec` requiring `(skill, min_level)`s, relaxing by `(after_s, level)`s.
fn skills(mut spec: QueueSpec, required: &[(u64, u8)], steps: &[(u32, Option<u8>)]) -> QueueSpec {
    spec.required_skills = required
        .iter()
        .map(|(skill, min_level)| SkillRequirement {
            skill: SkillId(*skill),
            min_level: *min_level,
        })
        .collect();
    spec.relaxations = steps
        .iter()
        .map(|(after_s, min_level)| Relaxation {
            after_s: *after_s,
            min_level: *min_level,
        })
        .collect();
    spec
}

fn weighted(weights: &[(u64, u32)]) -> Strategy {
    Strategy::WeightedRandom {
        weights: weights
            .iter()
            .map(|(user, weight)| AgentWeight {
                user: UserId(*user),
                weight: *weight,
            })
            .collect(),
    }
}

fn call(priority: u32, sequence: u64, enqueued_at_ms: u64) -> WaitingCall {
    WaitingCall {
        entry: format!("e{sequence}"),
        priority,
        sequence,
        enqueued_at_ms,
    }
}

/// One step of a `Choose` row.
enum Step {
    /// Expect exactly these agents; a single agent is then recorded with
    /// `QueueIndex::chosen` (the round-robin memory moves).
    Offer(&'static [u64]),
    /// Expect exactly these agents, recording nothing.
    Peek(&'static [u64]),
    /// Expect `Choice::NoneEligible`.
    Nobody,
    /// Upsert an agent.
    Set(AgentInfo),
    /// Remove an agent.
    Remove(u64),
    /// Move the clock to this instant.
    At(u64),
}

/// One row of the table.
enum Case {
    /// `choose` for one call, step by step, starting at `now_ms`.
    Choose {
        spec: QueueSpec,
        agents: Vec<AgentInfo>,
        call: WaitingCall,
        now_ms: u64,
        steps: Vec<Step>,
    },
    /// Over 10,000 choices with a seeded `StdRng`, each agent's share is
    /// within 4 standard deviations of its expected share (exactly 0 when
    /// the expected share is 0).
    Shares {
        spec: QueueSpec,
        agents: Vec<AgentInfo>,
        expected: &'static [(u64, f64)],
    },
    /// `required_level` of a requirement with `min_level` after `waited_ms`.
    Level {
        spec: QueueSpec,
        min_level: u8,
        waited_ms: u64,
        expected: Option<u8>,
    },
    /// `most_deserving` over `(queue, weight, call)`s.
    Deserving {
        candidates: Vec<(u64, u32, WaitingCall)>,
        now_ms: u64,
        expected: Option<usize>,
    },
    /// `service_order(a, b)`.
    Serves {
        a: WaitingCall,
        b: WaitingCall,
        expected: Ordering,
    },
    /// `should_auto_pause` with threshold `after` and `missed` offers in a row.
    AutoPause {
        after: Option<u32>,
        missed: u32,
        expected: bool,
    },
}

const DRAWS: u32 = 10_000;

fn check(name: &str, case: Case) {
    match case {
        Case::Choose {
            spec,
            agents,
            call,
            mut now_ms,
            steps,
        } => {
            let mut index = QueueIndex::new();
            for agent in agents {
                index.upsert(agent);
            }
            index.check_invariants();
            let mut rng = StdRng::seed_from_u64(7);
            for (number, step) in steps.into_iter().enumerate() {
                let at = format!("{name}, step {number} at {now_ms} ms");
                let expect =
                    |users: &[u64]| Choice::Offer(users.iter().map(|user| UserId(*user)).collect());
                match step {
                    Step::Offer(users) => {
                        let choice = choose(&spec, &index, &call, now_ms, &mut rng);
                        assert_eq!(choice, expect(users), "{at}");
                        if let [user] = users {
                            assert!(index.chosen(UserId(*user)), "{at}: chosen is indexed");
                        }
                    }
                    Step::Peek(users) => {
                        let choice = choose(&spec, &index, &call, now_ms, &mut rng);
                        assert_eq!(choice, expect(users), "{at}");
                    }
                    Step::Nobody => {
                        let choice = choose(&spec, &index, &call, now_ms, &mut rng);
                        assert_eq!(choice, Choice::NoneEligible, "{at}");
                    }
                    Step::Set(agent) => {
                        index.upsert(agent);
                    }
                    Step::Remove(user) => {
                        assert!(
                            index.remove(UserId(user)).is_some(),
                            "{at}: removes a member"
                        );
                    }
                    Step::At(instant_ms) => now_ms = instant_ms,
                }
                index.check_invariants();
            }
        }
        Case::Shares {
            spec,
            agents,
            expected,
        } => {
            let mut index = QueueIndex::new();
            for agent in agents {
                index.upsert(agent);
            }
            let draw_all = |seed: u64| -> Vec<UserId> {
                let mut rng = StdRng::seed_from_u64(seed);
                (0..DRAWS)
                    .map(
                        |_| match choose(&spec, &index, &call(0, 1, 0), 0, &mut rng) {
                            Choice::Offer(users) if users.len() == 1 => users[0],
                            other => panic!("{name}: one agent per draw, not {other:?}"),
                        },
                    )
                    .collect()
            };
            let draws = draw_all(42);
            assert_eq!(
                draws,
                draw_all(42),
                "{name}: the same seed gives the same draws"
            );
            for (user, share) in expected {
                let hits = draws
                    .iter()
                    .filter(|drawn| **drawn == UserId(*user))
                    .count();
                let observed = hits as f64 / f64::from(DRAWS);
                let tolerance = 4.0 * (share * (1.0 - share) / f64::from(DRAWS)).sqrt();
                assert!(
                    (observed - share).abs() <= tolerance,
                    "{name}: agent {user} drew {observed:.4} of the calls, expected {share:.4} ± {tolerance:.4}"
                );
            }
        }
        Case::Level {
            spec,
            min_level,
            waited_ms,
            expected,
        } => {
            let requirement = SkillRequirement {
                skill: SkillId(1),
                min_level,
            };
            assert_eq!(
                required_level(&spec, &requirement, waited_ms),
                expected,
                "{name}"
            );
        }
        Case::Deserving {
            candidates,
            now_ms,
            expected,
        } => {
            let borrowed: Vec<(QueueId, u32, &WaitingCall)> = candidates
                .iter()
                .map(|(queue, weight, call)| (QueueId(*queue), *weight, call))
                .collect();
            assert_eq!(most_deserving(&borrowed, now_ms), expected, "{name}");
        }
        Case::Serves { a, b, expected } => {
            assert_eq!(service_order(&a, &b), expected, "{name}");
            assert_eq!(
                service_order(&b, &a),
                expected.reverse(),
                "{name}, reversed"
            );
        }
        Case::AutoPause {
            after,
            missed,
            expected,
        } => {
            let mut spec = spec(Strategy::default());
            spec.auto_pause_after_missed = after;
            assert_eq!(should_auto_pause(&spec, missed), expected, "{name}");
        }
    }
}

type Row = (&'static str, Case);

fn choosing(name: &'static str, spec: QueueSpec, agents: Vec<AgentInfo>, steps: Vec<Step>) -> Row {
    let call = call(0, 1, 0);
    (
        name,
        Case::Choose {
            spec,
            agents,
            call,
            now_ms: 5 * S,
            steps,
        },
    )
}

fn shares(
    name: &'static str,
    spec: QueueSpec,
    agents: Vec<AgentInfo>,
    expected: &'static [(u64, f64)],
) -> Row {
    (
        name,
        Case::Shares {
            spec,
            agents,
            expected,
        },
    )
}

fn level(
    name: &'static str,
    spec: QueueSpec,
    min_level: u8,
    waited_ms: u64,
    expected: Option<u8>,
) -> Row {
    (
        name,
        Case::Level {
            spec,
            min_level,
            waited_ms,
            expected,
        },
    )
}

fn deserving(
    name: &'static str,
    now_ms: u64,
    candidates: Vec<(u64, u32, WaitingCall)>,
    expected: Option<usize>,
) -> Row {
    (
        name,
        Case::Deserving {
            candidates,
            now_ms,
            expected,
        },
    )
}

fn serves(name: &'static str, a: WaitingCall, b: WaitingCall, expected: Ordering) -> Row {
    (name, Case::Serves { a, b, expected })
}

fn pause(name: &'static str, after: Option<u32>, missed: u32, expected: bool) -> Row {
    (
        name,
        Case::AutoPause {
            after,
            missed,
            expected,
        },
    )
}

#[test]
fn routing_table() {
    use Step::{At, Nobody, Offer, Peek, Remove, Set};
    // Q2's example: level 4 at first, level 2 after 30 s, any agent after 60 s.
    let relaxing = |strategy| skills(spec(strategy), &[(7, 4)], &[(30, Some(2)), (60, None)]);
    // A table: one row a case, formatted by hand.
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        // Q1 ring-all, and what makes an agent ineligible.
        choosing("ring-all offers every eligible agent, in id order", spec(Strategy::RingAll),
            vec![agent(3), agent(1), agent(2), agent(4).away(), agent(5).not_before(10 * S)],
            vec![Offer(&[1, 2, 3]), At(10 * S), Offer(&[1, 2, 3, 5])]),
        choosing("ring-all with nobody available", spec(Strategy::RingAll),
            vec![agent(1).away()],
            vec![Nobody]),
        choosing("an empty queue has nobody", spec(Strategy::LongestIdle),
            vec![],
            vec![Nobody]),
        choosing("an agent that stops being available is not offered", spec(Strategy::Linear),
            vec![agent(1), agent(2)],
            vec![Peek(&[1]), Set(agent(1).away()), Peek(&[2]), Set(agent(2).away()), Nobody,
                Set(agent(1)), Peek(&[1])]),
        // Q1 ordered strategies.
        choosing("longest-idle: earliest idle_since, ties by id", spec(Strategy::LongestIdle),
            vec![agent(1).idle(500), agent(3).idle(100), agent(2).idle(100), agent(4).away()],
            vec![Offer(&[2]), Set(agent(2).idle(900)), Offer(&[3])]),
        choosing("longest-idle skips an agent backed off until its not_before (Q4)",
            spec(Strategy::LongestIdle),
            vec![agent(1).not_before(20 * S), agent(2).idle(50)],
            vec![At(20 * S - 1), Offer(&[2]), At(20 * S), Offer(&[1])]),
        choosing("least-recent: never offered first, then the oldest offer", spec(Strategy::LeastRecent),
            vec![agent(1).offered(300), agent(2), agent(3).offered(100)],
            vec![Offer(&[2]), Set(agent(2).offered(5 * S)), Offer(&[3])]),
        choosing("fewest-calls, ties by id", spec(Strategy::FewestCalls),
            vec![agent(1).calls(5), agent(3).calls(2), agent(2).calls(2)],
            vec![Offer(&[2]), Set(agent(2).away()), Offer(&[3])]),
        choosing("least-talk-time", spec(Strategy::LeastTalkTime),
            vec![agent(1).talk(90 * S), agent(2).talk(30 * S), agent(3).talk(60 * S)],
            vec![Offer(&[2]), Set(agent(2).talk(120 * S)), Offer(&[3])]),
        choosing("linear: lowest order, whatever was chosen before", spec(Strategy::Linear),
            vec![agent(1).order(30), agent(2).order(10), agent(3).order(20).away()],
            vec![Offer(&[2]), Offer(&[2]), Set(agent(3).order(5)), Offer(&[3])]),
        choosing("round-robin continues after the last chosen, wrapping, skipping the unavailable",
            spec(Strategy::RoundRobinMemory),
            vec![agent(1).order(10), agent(2).order(20), agent(3).order(30).away(), agent(4).order(40)],
            vec![Offer(&[1]), Offer(&[2]), Offer(&[4]), Offer(&[1]),
                Set(agent(3).order(30)), Offer(&[2]), Offer(&[3]),
                Remove(3), Offer(&[4]),
                Set(agent(2).order(20).not_before(60 * S)), Offer(&[1]), Offer(&[4])]),
        choosing("round-robin memory is a position: it survives the last chosen leaving",
            spec(Strategy::RoundRobinMemory),
            vec![agent(1), agent(2), agent(3)],
            vec![Offer(&[1]), Offer(&[2]), Remove(2), Offer(&[3]), Offer(&[1])]),
        choosing("round-robin memory moves only when chosen is recorded", spec(Strategy::RoundRobinMemory),
            vec![agent(1), agent(2)],
            vec![Peek(&[1]), Peek(&[1]), Offer(&[1]), Peek(&[2]), Offer(&[2]), Offer(&[1])]),
        choosing("round-robin offers the only eligible agent again", spec(Strategy::RoundRobinMemory),
            vec![agent(1), agent(2).away()],
            vec![Offer(&[1]), Offer(&[1])]),
        // Q2 required skills filter every strategy; missing skills are level 0.
        choosing("linear takes the first agent meeting the required level",
            skills(spec(Strategy::Linear), &[(7, 3)], &[]),
            vec![agent(2).order(10).skill(7, 2), agent(3).order(20), agent(1).order(30).skill(7, 3)],
            vec![Offer(&[1])]),
        choosing("ring-all rings only agents meeting every required skill",
            skills(spec(Strategy::RingAll), &[(7, 3), (8, 1)], &[]),
            vec![agent(1).skill(7, 3).skill(8, 1), agent(2).skill(7, 9), agent(3).skill(7, 10).skill(8, 10)],
            vec![Offer(&[1, 3])]),
        choosing("random picks among agents meeting the required level only",
            skills(spec(Strategy::Random), &[(7, 5)], &[]),
            vec![agent(1).skill(7, 4), agent(2).skill(7, 5), agent(3)],
            vec![Offer(&[2]), Offer(&[2]), Offer(&[2])]),
        choosing("longest-idle requirement relaxes to any agent after 30 s",
            skills(spec(Strategy::LongestIdle), &[(7, 4)], &[(30, None)]),
            vec![agent(1), agent(2).idle(100).skill(7, 5)],
            vec![At(30 * S - 1), Offer(&[2]), At(30 * S), Offer(&[1])]),
        choosing("skills-based: highest level sum, then longest idle",
            skills(spec(Strategy::SkillsBased), &[(7, 2), (8, 1)], &[]),
            vec![agent(1).idle(100).skill(7, 5).skill(8, 1), agent(2).idle(50).skill(7, 3).skill(8, 3),
                agent(3).skill(7, 9), agent(4).skill(7, 10).skill(8, 10).away(),
                agent(5).idle(10).skill(7, 2).skill(8, 1).skill(9, 10)],
            vec![Offer(&[2]), Set(agent(2).idle(200).skill(7, 3).skill(8, 3)), Offer(&[1])]),
        choosing("skills-based: level 4 at first, level 2 after 30 s, any agent after 60 s",
            relaxing(Strategy::SkillsBased),
            vec![agent(1).skill(7, 2), agent(2).skill(7, 1), agent(3)],
            vec![At(30 * S - 1), Nobody,
                At(30 * S), Offer(&[1]), Set(agent(1).skill(7, 2).away()), Nobody,
                At(60 * S), Offer(&[2]), Set(agent(2).skill(7, 1).away()), Offer(&[3])]),
        ("the wait counts from the call's enqueue time", Case::Choose {
            spec: relaxing(Strategy::SkillsBased),
            agents: vec![agent(1).skill(7, 2)],
            call: call(0, 1, 100 * S),
            now_ms: 129 * S,
            steps: vec![Nobody, At(130 * S), Offer(&[1])],
        }),
        // Q1 random strategies, over many draws.
        shares("random is uniform over eligible agents", spec(Strategy::Random),
            vec![agent(1), agent(2), agent(3), agent(4), agent(5).away(), agent(6).not_before(S)],
            &[(1, 0.25), (2, 0.25), (3, 0.25), (4, 0.25), (5, 0.0), (6, 0.0)]),
        shares("weighted-random follows the weights; unlisted agents weigh 1",
            spec(weighted(&[(1, 10), (2, 30), (4, 100), (5, 100)])),
            vec![agent(1), agent(2), agent(3), agent(4).away(), agent(5).not_before(S)],
            &[(1, 10.0 / 41.0), (2, 30.0 / 41.0), (3, 1.0 / 41.0), (4, 0.0), (5, 0.0)]),
        shares("weighted-random: weight 1 against weight 100", spec(weighted(&[(1, 1), (2, 100)])),
            vec![agent(1), agent(2)],
            &[(1, 1.0 / 101.0), (2, 100.0 / 101.0)]),
        shares("weighted-random among skilled agents only",
            skills(spec(weighted(&[(1, 100), (2, 1), (3, 1)])), &[(7, 1)], &[]),
            vec![agent(1), agent(2).skill(7, 1), agent(3).skill(7, 1)],
            &[(1, 0.0), (2, 0.5), (3, 0.5)]),
        // Q2 relaxation steps: (spec, min_level, waited_ms, level in force).
        level("level in force at first", relaxing(Strategy::SkillsBased), 4, 0, Some(4)),
        level("level just before 30 s", relaxing(Strategy::SkillsBased), 4, 30 * S - 1, Some(4)),
        level("level 2 at 30 s", relaxing(Strategy::SkillsBased), 4, 30 * S, Some(2)),
        level("level 2 just before 60 s", relaxing(Strategy::SkillsBased), 4, 60 * S - 1, Some(2)),
        level("any agent at 60 s", relaxing(Strategy::SkillsBased), 4, 60 * S, None),
        level("a step never raises a requirement", relaxing(Strategy::SkillsBased), 1, 45 * S, Some(1)),
        level("once any agent, always any agent",
            skills(spec(Strategy::SkillsBased), &[], &[(30, None), (60, Some(3))]), 4, 90 * S, None),
        level("no steps: the minimum holds forever", spec(Strategy::SkillsBased), 4, u64::MAX, Some(4)),
        // Q3 one queue's service order: call(priority, sequence, enqueued_at_ms).
        serves("higher priority is served first", call(5, 9, 0), call(1, 1, 0), Ordering::Less),
        serves("equal priority: earlier sequence first", call(2, 3, 0), call(2, 7, 0), Ordering::Less),
        serves("the same call", call(2, 3, 0), call(2, 3, 0), Ordering::Equal),
        // Q3 an agent in several queues: (queue, weight, call) at now_ms.
        deserving("no candidates", 0, vec![], None),
        deserving("priority beats age", 100 * S,
            vec![(1, 1, call(1, 1, 0)), (2, 1, call(5, 2, 90 * S))], Some(1)),
        deserving("raw age at equal weights", 100 * S,
            vec![(1, 1, call(0, 1, 10 * S)), (2, 1, call(0, 2, 0))], Some(1)),
        deserving("weighted age beats raw age: 40 s × 3 over 100 s × 1", 100 * S,
            vec![(1, 1, call(0, 1, 0)), (2, 3, call(0, 2, 60 * S))], Some(1)),
        deserving("equal weighted age: lower queue id", 100 * S,
            vec![(5, 2, call(0, 1, 50 * S)), (2, 1, call(0, 2, 0))], Some(1)),
        deserving("same queue and wait: lower sequence", 100 * S,
            vec![(3, 1, call(0, 9, 0)), (3, 1, call(0, 4, 0))], Some(1)),
        deserving("a call enqueued after now has waited 0", 100 * S,
            vec![(2, 1, call(0, 1, 100 * S)), (1, 1, call(0, 2, 150 * S))], Some(1)),
        // Q4 auto-pause: (threshold, missed offers in a row).
        pause("no threshold, no auto-pause", None, 1_000, false),
        pause("below the threshold", Some(3), 2, false),
        pause("at the threshold", Some(3), 3, true),
        pause("beyond the threshold", Some(3), 4, true),
    ];
    for (name, case) in rows {
        check(name, case);
    }
}
