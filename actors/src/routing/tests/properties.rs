//! Property test: `choose` against a model of eligibility and of every
//! strategy, over random agent changes and random specs.

use super::*;
use proptest::prelude::{any, prop, prop_oneof, proptest, Just, ProptestConfig};
use proptest::strategy::Strategy as Generator;

/// A change to the index.
#[derive(Debug, Clone)]
enum Change {
    Upsert(AgentInfo),
    Remove(u64),
    Chosen(u64),
}

fn arb_agent() -> impl Generator<Value = AgentInfo> {
    (
        (
            1..=8u64,
            prop::collection::btree_map(1..=3u64, 1..=10u8, 0..=3),
            0..4u32,
            prop::bool::weighted(0.75),
        ),
        (
            0..5u64,
            prop::option::of(0..5u64),
            0..4u64,
            0..4u64,
            prop_oneof![Just(0u64), 0..=120u64],
        ),
    )
        .prop_map(
            |((user, skills, order, available), (idle, offered, calls, talk, not_before))| {
                AgentInfo {
                    user: UserId(user),
                    skills: skills
                        .into_iter()
                        .map(|(skill, level)| (SkillId(skill), level))
                        .collect(),
                    order,
                    available,
                    idle_since_ms: idle * S,
                    last_offered_ms: offered.map(|at| at * S),
                    calls_taken: calls,
                    talk_time_ms: talk * S,
                    not_before_ms: not_before * S,
                }
            },
        )
}

fn arb_change() -> impl Generator<Value = Change> {
    prop_oneof![
        6 => arb_agent().prop_map(Change::Upsert),
        1 => (1..=8u64).prop_map(Change::Remove),
        2 => (1..=8u64).prop_map(Change::Chosen),
    ]
}

fn arb_strategy() -> impl Generator<Value = Strategy> {
    prop_oneof![
        Just(Strategy::RingAll),
        Just(Strategy::LongestIdle),
        Just(Strategy::LeastRecent),
        Just(Strategy::FewestCalls),
        Just(Strategy::LeastTalkTime),
        Just(Strategy::RoundRobinMemory),
        Just(Strategy::Linear),
        Just(Strategy::Random),
        prop::collection::vec((1..=8u64, 1..=100u32), 0..=8).prop_map(|weights| weighted(&weights)),
        Just(Strategy::SkillsBased),
    ]
}

fn arb_spec() -> impl Generator<Value = QueueSpec> {
    (
        arb_strategy(),
        prop::collection::vec((1..=3u64, 1..=10u8), 0..=2),
        prop::collection::vec((1..=40u32, prop::option::of(1..=10u8)), 0..=2),
    )
        .prop_map(|(strategy, required, steps)| {
            let mut after_s = 0;
            let steps: Vec<(u32, Option<u8>)> = steps
                .into_iter()
                .map(|(gap_s, level)| {
                    after_s += gap_s;
                    (after_s, level)
                })
                .collect();
            skills(spec(strategy), &required, &steps)
        })
}

/// The level in force, by the letter of Q2: each step reached lowers every
/// requirement to its level, or drops it.
fn model_level(spec: &QueueSpec, min_level: u8, waited_ms: u64) -> Option<u8> {
    let mut level = Some(min_level);
    for step in &spec.relaxations {
        if u64::from(step.after_s) * S <= waited_ms {
            level = match (level, step.min_level) {
                (Some(current), Some(relaxed)) => Some(current.min(relaxed)),
                _ => None,
            };
        }
    }
    level
}

fn model_eligible(spec: &QueueSpec, agent: &AgentInfo, call: &WaitingCall, now_ms: u64) -> bool {
    let waited_ms = now_ms.saturating_sub(call.enqueued_at_ms);
    agent.available
        && agent.not_before_ms <= now_ms
        && spec.required_skills.iter().all(|requirement| {
            model_level(spec, requirement.min_level, waited_ms).is_none_or(|level| {
                agent.skills.get(&requirement.skill).copied().unwrap_or(0) >= level
            })
        })
}

/// The eligible agent least by `key`, then by `UserId`.
fn least_by<K: Ord>(eligible: &[&AgentInfo], key: impl Fn(&AgentInfo) -> K) -> Vec<UserId> {
    let least = eligible.iter().min_by_key(|agent| (key(agent), agent.user));
    least.map(|agent| agent.user).into_iter().collect()
}

/// What the strategy offers by the letter of Q1, `None` for the random ones.
fn model_choice(
    spec: &QueueSpec,
    eligible: &[&AgentInfo],
    cursor: Option<(u32, UserId)>,
) -> Option<Vec<UserId>> {
    let level_sum = |agent: &AgentInfo| -> u32 {
        let level = |skill| u32::from(agent.skills.get(&skill).copied().unwrap_or(0));
        spec.required_skills.iter().map(|r| level(r.skill)).sum()
    };
    Some(match &spec.strategy {
        Strategy::RingAll => eligible.iter().map(|agent| agent.user).collect(),
        Strategy::LongestIdle => least_by(eligible, |a| a.idle_since_ms),
        // Never offered (None) sorts first.
        Strategy::LeastRecent => least_by(eligible, |a| a.last_offered_ms),
        Strategy::FewestCalls => least_by(eligible, |a| a.calls_taken),
        Strategy::LeastTalkTime => least_by(eligible, |a| a.talk_time_ms),
        Strategy::Linear => least_by(eligible, |a| a.order),
        Strategy::RoundRobinMemory => {
            let mut ring: Vec<(u32, UserId)> = eligible.iter().map(|a| (a.order, a.user)).collect();
            ring.sort();
            let next = ring
                .iter()
                .find(|position| cursor.is_none_or(|last| **position > last))
                .or(ring.first());
            next.map(|(_, user)| *user).into_iter().collect()
        }
        Strategy::SkillsBased => least_by(eligible, |a| (Reverse(level_sum(a)), a.idle_since_ms)),
        Strategy::Random | Strategy::WeightedRandom { .. } => return None,
    })
}

/// Applies `changes` to an index and to a plain map, then compares `choose`
/// with the model.
fn check_choose(
    changes: Vec<Change>,
    spec: &QueueSpec,
    call: &WaitingCall,
    now_ms: u64,
    seed: u64,
) {
    let mut index = QueueIndex::new();
    // The skill ranking set before the changes, after them (a rebuild), or
    // never (skills-based routing scans): all three agree with the model.
    let required: Vec<SkillId> = spec.required_skills.iter().map(|r| r.skill).collect();
    if seed.is_multiple_of(3) {
        index.set_required_skills(required.clone(), skill_steps(spec));
    }
    let mut agents: BTreeMap<u64, AgentInfo> = BTreeMap::new();
    let mut cursor: Option<(u32, UserId)> = None;
    for change in changes {
        match change {
            Change::Upsert(agent) => {
                index.upsert(agent.clone());
                agents.insert(agent.user.0, agent);
            }
            Change::Remove(user) => {
                let removed = index.remove(UserId(user));
                assert_eq!(removed, agents.remove(&user), "remove {user}");
            }
            Change::Chosen(user) => {
                let known = agents.get(&user).map(|agent| (agent.order, agent.user));
                assert_eq!(index.chosen(UserId(user)), known.is_some(), "chosen {user}");
                cursor = known.or(cursor);
            }
        }
        index.check_invariants();
    }
    if seed % 3 == 1 {
        index.set_required_skills(required, skill_steps(spec));
        index.check_invariants();
    }
    assert_eq!(index.len(), agents.len());
    let available: Vec<UserId> = index.available().map(|agent| agent.user).collect();
    let expected: Vec<UserId> = agents
        .values()
        .filter(|a| a.available)
        .map(|a| a.user)
        .collect();
    assert_eq!(available, expected, "available agents");

    let eligible: Vec<&AgentInfo> = agents
        .values()
        .filter(|agent| model_eligible(spec, agent, call, now_ms))
        .collect();
    for agent in agents.values() {
        let model = model_eligible(spec, agent, call, now_ms);
        assert_eq!(
            is_eligible(spec, agent, call, now_ms),
            model,
            "is_eligible({agent:?})"
        );
    }
    let choice = choose(spec, &index, call, now_ms, &mut StdRng::seed_from_u64(seed));
    let again = choose(spec, &index, call, now_ms, &mut StdRng::seed_from_u64(seed));
    assert_eq!(
        choice, again,
        "the same inputs and rng state give the same answer"
    );
    let offered = match choice {
        Choice::NoneEligible => {
            assert!(
                eligible.is_empty(),
                "nobody offered while {eligible:?} are eligible"
            );
            return;
        }
        Choice::Offer(users) => users,
    };
    assert!(
        !eligible.is_empty(),
        "offered {offered:?} though nobody is eligible"
    );
    for user in &offered {
        assert!(
            eligible.iter().any(|a| a.user == *user),
            "{user} is not eligible"
        );
    }
    match model_choice(spec, &eligible, cursor) {
        Some(model) => assert_eq!(offered, model, "by {:?}", spec.strategy),
        None => assert_eq!(offered.len(), 1, "one agent by {:?}", spec.strategy),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// `choose` offers only eligible agents, nobody exactly when nobody is
    /// eligible, every eligible agent for ring-all, and what the model of
    /// each ordered strategy picks.
    #[test]
    fn choose_offers_exactly_what_the_model_allows(
        changes in prop::collection::vec(arb_change(), 0..24),
        spec in arb_spec(),
        enqueued_s in 0..=60u64,
        now_s in 0..=120u64,
        seed in any::<u64>(),
    ) {
        check_choose(changes, &spec, &call(0, 1, enqueued_s * S), now_s * S, seed);
    }
}
