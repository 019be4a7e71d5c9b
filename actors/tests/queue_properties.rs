//! Queue entries (Q3, Q5) against a model: random enqueues (priorities
//! 0..=100 or the queue's default), priority changes, moves to the other
//! queue (Q5 overflow: at its default priority, behind those waiting there),
//! assignments and abandons over two queues, one of them with a maximum
//! length.
//!
//! The model keeps every entry's state and, for waiting ones, (priority,
//! arrival); after every step `waiting(queue)` must equal the model sorted by
//! priority descending, then arrival ascending, each command's result must be
//! the one the model predicts (an entry is assigned at most once, a caller
//! who left is never assigned, a full queue refuses), and a refused command
//! leaves the ledger equal to before.

mod common;

use carillon_actors::ledger::{Command, EntryState, Outcome};
use carillon_actors::model::{QueueId, RefusalCode, UserId};
use common::{patched, queue_spec, Fixture};
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;

/// The short queue's maximum length.
const MAX_LENGTH: usize = 4;
/// The long queue's default priority.
const DEFAULT_PRIORITY: u32 = 50;

#[derive(Debug, Clone)]
enum Op {
    Enqueue {
        entry: usize,
        queue: usize,
        priority: Option<u32>,
    },
    ChangePriority {
        entry: usize,
        priority: u32,
    },
    Assign {
        entry: usize,
        agent: usize,
    },
    Abandon {
        entry: usize,
    },
    Move {
        entry: usize,
        queue: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let entry = 0..14usize;
    let priority = 0..=100u32;
    prop_oneof![
        4 => (entry.clone(), 0..2usize, prop::option::weighted(0.8, priority.clone()))
            .prop_map(|(entry, queue, priority)| Op::Enqueue { entry, queue, priority }),
        2 => (entry.clone(), priority).prop_map(|(entry, priority)| Op::ChangePriority { entry, priority }),
        2 => (entry.clone(), 0..3usize).prop_map(|(entry, agent)| Op::Assign { entry, agent }),
        1 => entry.clone().prop_map(|entry| Op::Abandon { entry }),
        2 => (entry, 0..2usize).prop_map(|(entry, queue)| Op::Move { entry, queue }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Model {
    Waiting {
        queue: usize,
        priority: u32,
        arrival: u64,
    },
    Assigned(UserId),
    Abandoned,
}

/// The fixture's queue limited to `MAX_LENGTH`, and a second, unlimited
/// queue with a default priority.
fn setup() -> (Fixture, [QueueId; 2]) {
    let mut f = Fixture::new();
    let tenant = f.tenant;
    let limited = patched(&queue_spec("Support"), json!({ "max_length": MAX_LENGTH }));
    f.ok(Command::UpdateQueue {
        tenant,
        queue: f.queue,
        spec: limited,
    });
    let spec = patched(
        &queue_spec("Overflow"),
        json!({ "default_priority": DEFAULT_PRIORITY }),
    );
    let long = QueueId(f.create(Command::CreateQueue { tenant, spec }));
    let queues = [f.queue, long];
    (f, queues)
}

/// The result the model predicts for a command on an existing entry.
fn on_existing(model: Option<&Model>) -> Result<(), RefusalCode> {
    match model {
        None => Err(RefusalCode::NotFound),
        Some(Model::Waiting { .. }) => Ok(()),
        Some(Model::Assigned(_)) => Err(RefusalCode::EntryAlreadyAssigned),
        Some(Model::Abandoned) => Err(RefusalCode::EntryNotWaiting),
    }
}

fn waiting_in(model: &BTreeMap<String, Model>, queue: usize) -> Vec<String> {
    let mut waiting: Vec<(u32, u64, &String)> = model
        .iter()
        .filter_map(|(id, m)| match *m {
            Model::Waiting {
                queue: q,
                priority,
                arrival,
            } if q == queue => Some((priority, arrival, id)),
            _ => None,
        })
        .collect();
    waiting.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    waiting.into_iter().map(|(_, _, id)| id.clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn waiting_callers_follow_the_model(ops in prop::collection::vec(op(), 1..80)) {
        let (mut f, queues) = setup();
        let tenant = f.tenant;
        let mut model: BTreeMap<String, Model> = BTreeMap::new();
        let mut last_sequence = 0;
        let mut arrivals = 0u64;
        for op in &ops {
            let before = f.ledger.clone();
            let (result, expected) = match *op {
                Op::Enqueue { entry, queue, priority } => {
                    let id = format!("call-{entry}");
                    let expected = if model.contains_key(&id) {
                        Err(RefusalCode::EntryNotUnique)
                    } else if queue == 0 && waiting_in(&model, 0).len() >= MAX_LENGTH {
                        Err(RefusalCode::QueueFull)
                    } else {
                        arrivals += 1;
                        let priority = priority.unwrap_or(if queue == 0 { 0 } else { DEFAULT_PRIORITY });
                        model.insert(id.clone(), Model::Waiting { queue, priority, arrival: arrivals });
                        Ok(())
                    };
                    let command = Command::Enqueue { call: None, tenant, queue: queues[queue], entry: id, priority };
                    (f.run(command), expected)
                }
                Op::ChangePriority { entry, priority } => {
                    let id = format!("call-{entry}");
                    let expected = on_existing(model.get(&id));
                    if let Some(Model::Waiting { priority: p, .. }) = model.get_mut(&id) {
                        *p = priority;
                    }
                    (f.run(Command::ChangePriority { tenant, entry: id, priority }), expected)
                }
                Op::Assign { entry, agent } => {
                    let (id, user) = (format!("call-{entry}"), f.agents[agent]);
                    let expected = on_existing(model.get(&id));
                    if expected.is_ok() {
                        model.insert(id.clone(), Model::Assigned(user));
                    }
                    (f.run(Command::AssignEntry { tenant, entry: id, user }), expected)
                }
                Op::Abandon { entry } => {
                    let id = format!("call-{entry}");
                    let expected = on_existing(model.get(&id));
                    if expected.is_ok() {
                        model.insert(id.clone(), Model::Abandoned);
                    }
                    (f.run(Command::AbandonEntry { tenant, entry: id }), expected)
                }
                Op::Move { entry, queue } => {
                    let id = format!("call-{entry}");
                    let expected = match on_existing(model.get(&id)) {
                        Ok(()) => match model[&id] {
                            Model::Waiting { queue: q, .. } if q == queue => {
                                Err(RefusalCode::QueueConfigInvalid)
                            }
                            _ if queue == 0 && waiting_in(&model, 0).len() >= MAX_LENGTH => {
                                Err(RefusalCode::QueueFull)
                            }
                            _ => Ok(()),
                        },
                        Err(e) => Err(e),
                    };
                    if expected.is_ok() {
                        arrivals += 1;
                        let priority = if queue == 1 { DEFAULT_PRIORITY } else { 0 };
                        model.insert(id.clone(), Model::Waiting { queue, priority, arrival: arrivals });
                    }
                    (f.run(Command::MoveEntry { tenant, entry: id, queue: queues[queue] }), expected)
                }
            };
            if let Ok(outcome) = &result {
                // An enqueue answers the caller's place; the rest is done.
                match (&op, outcome) {
                    (Op::Enqueue { .. } | Op::Move { .. }, Outcome::Enqueued { sequence, .. }) => {
                        prop_assert!(*sequence > last_sequence, "sequences grow");
                        last_sequence = *sequence;
                    }
                    (_, outcome) => prop_assert_eq!(outcome, &Outcome::Done),
                }
            }
            prop_assert_eq!(result.map(|_| ()), expected, "{:?}", op);
            if expected.is_err() {
                prop_assert_eq!(&f.ledger, &before, "refused {:?} changed the ledger", op);
            }
            f.ledger.check_invariants();
            let state = f.state();
            for (index, queue) in queues.iter().enumerate() {
                let actual: Vec<String> = state.waiting(*queue).iter().map(|e| e.entry.clone()).collect();
                prop_assert_eq!(actual, waiting_in(&model, index), "order of queue {} after {:?}", index, op);
            }
            prop_assert!(state.waiting(queues[0]).len() <= MAX_LENGTH, "Q5: max_length");
            for (id, m) in &model {
                let entry = state.entry(id).expect("entries are remembered");
                let expected_state = match *m {
                    Model::Waiting { .. } => EntryState::Waiting,
                    Model::Assigned(user) => EntryState::Assigned { user },
                    Model::Abandoned => EntryState::Abandoned,
                };
                prop_assert_eq!(entry.state, expected_state, "{}", id);
            }
        }
    }
}

#[test]
fn an_entry_is_assigned_once_and_a_full_queue_refuses_until_one_leaves() {
    let (mut f, [short, _]) = setup();
    let tenant = f.tenant;
    for i in 0..MAX_LENGTH {
        let entry = format!("c{i}");
        let priority = Some(u32::try_from(i).expect("small"));
        f.ok(Command::Enqueue {
            call: None,
            tenant,
            queue: short,
            entry,
            priority,
        });
    }
    let full = Command::Enqueue {
        call: None,
        tenant,
        queue: short,
        entry: "late".into(),
        priority: Some(100),
    };
    assert_eq!(f.run(full.clone()), Err(RefusalCode::QueueFull));
    let order: Vec<String> = f
        .state()
        .waiting(short)
        .iter()
        .map(|e| e.entry.clone())
        .collect();
    assert_eq!(order, ["c3", "c2", "c1", "c0"], "higher priority first");
    let assign = |entry: &str, user| Command::AssignEntry {
        tenant,
        entry: entry.into(),
        user,
    };
    f.ok(assign("c3", f.agents[0]));
    assert_eq!(
        f.run(assign("c3", f.agents[1])),
        Err(RefusalCode::EntryAlreadyAssigned)
    );
    let entry = f.state().entry("c3").expect("remembered");
    assert_eq!(entry.state, EntryState::Assigned { user: f.agents[0] });
    f.ok(Command::AbandonEntry {
        tenant,
        entry: "c0".into(),
    });
    assert_eq!(
        f.run(assign("c0", f.agents[1])),
        Err(RefusalCode::EntryNotWaiting)
    );
    // Two places are free again; the late caller with priority 100 goes first.
    f.ok(full);
    let order: Vec<String> = f
        .state()
        .waiting(short)
        .iter()
        .map(|e| e.entry.clone())
        .collect();
    assert_eq!(order, ["late", "c2", "c1"]);
}

#[test]
fn a_changed_priority_keeps_the_original_arrival() {
    let (mut f, [_, long]) = setup();
    let tenant = f.tenant;
    for entry in ["a", "b", "c"] {
        f.ok(Command::Enqueue {
            call: None,
            tenant,
            queue: long,
            entry: entry.into(),
            priority: None,
        });
    }
    let change = |entry: &str, priority| Command::ChangePriority {
        tenant,
        entry: entry.into(),
        priority,
    };
    f.ok(change("a", 90));
    f.ok(change("c", 90));
    let order = |f: &Fixture| -> Vec<String> {
        f.state()
            .waiting(long)
            .iter()
            .map(|e| e.entry.clone())
            .collect()
    };
    assert_eq!(order(&f), ["a", "c", "b"]);
    f.ok(change("a", DEFAULT_PRIORITY));
    assert_eq!(
        order(&f),
        ["c", "a", "b"],
        "back among equals, in arrival order"
    );
}
