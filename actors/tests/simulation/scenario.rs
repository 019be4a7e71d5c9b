//! The scenario of one simulation run, all from its seed.

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What a phone does when it rings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phone {
    Answer,
    Refuse,
    Silent,
}

#[derive(Debug, Clone)]
pub(crate) struct Scenario {
    pub(crate) seed: u64,
    pub(crate) ring_all: bool,
    pub(crate) agents: usize,
    pub(crate) calls: usize,
    /// Per mille: phones that answer, refuse; the rest stay silent.
    pub(crate) answer: u32,
    pub(crate) refuse: u32,
    /// Per mille of callers that leave while they wait.
    pub(crate) leave: u32,
    pub(crate) priorities: bool,
}

/// The scenario of `seed`: everything about a run derives from its one
/// seed, so `CARILLON_SIM_SEED=<seed>` replays it (see the test below).
pub(crate) fn scenario_of(seed: u64) -> Scenario {
    let mut rng = StdRng::seed_from_u64(seed);
    let answer = rng.gen_range(500..1000u32);
    Scenario {
        seed,
        ring_all: rng.gen(),
        agents: rng.gen_range(1..6usize),
        calls: rng.gen_range(1..25usize),
        answer,
        refuse: rng.gen_range(0..300u32).min(1000 - answer),
        leave: rng.gen_range(0..300u32),
        priorities: rng.gen(),
    }
}

pub(crate) fn scenario() -> impl Strategy<Value = Scenario> {
    any::<u64>().prop_map(scenario_of)
}
