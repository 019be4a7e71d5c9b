//! Waiting calls changed by users (S2) in the ledger: a withdrawal is
//! checked (another queue with room, no external number, not twice) and
//! left to the call's actor, or carried out at once for an entry without a
//! call; each change names who made it and when, and the record of the
//! call carries them.

mod common;

use carillon_actors::ledger::{CallCheckpoint, Command, Outcome};
use carillon_actors::model::activity::{ActivityOutcome, ActivityRecord, Direction, Intervention};
use carillon_actors::model::agent_status::Author;
use carillon_actors::model::queue::Destination;
use carillon_actors::model::RefusalCode;
use common::{patched, queue_spec, Fixture, NOW_MS};
use serde_json::json;

fn checkpoint(entry: &str) -> Box<CallCheckpoint> {
    Box::new(CallCheckpoint {
        node: 1,
        leg: 1,
        sip_call_id: entry.into(),
        caller: "+420777000001".into(),
        called: "+420225000100".into(),
        media_session: entry.into(),
        relay: "local".into(),
        agent_offer_sdp: "v=0".into(),
        arrived_at_ms: NOW_MS,
    })
}

#[test]
fn a_withdrawal_is_checked_noted_with_its_author_and_carried_into_the_record() {
    let mut f = Fixture::new();
    let tenant = f.tenant;
    let (queue, admin) = (f.queue, f.admin);
    let full = carillon_actors::model::QueueId(f.create(Command::CreateQueue {
        tenant,
        spec: patched(&queue_spec("Full"), json!({"max_length": 1})),
    }));
    let other = carillon_actors::model::QueueId(f.create(Command::CreateQueue {
        tenant,
        spec: queue_spec("Other"),
    }));
    for (entry, q, call) in [
        ("c1", queue, true),
        ("blocker", full, false),
        ("api", queue, false),
    ] {
        f.ok(Command::Enqueue {
            tenant,
            queue: q,
            entry: entry.into(),
            priority: None,
            call: call.then(|| checkpoint(entry)),
        });
    }
    let by = |inner: Command| Command::By {
        from: None,
        by: Author::User { user: admin },
        inner: Box::new(inner),
    };
    let withdraw = |entry: &str, destination: Destination| {
        by(Command::WithdrawEntry {
            tenant,
            entry: entry.into(),
            destination,
        })
    };
    for (destination, refusal) in [
        (
            Destination::Queue { queue },
            RefusalCode::QueueConfigInvalid,
        ),
        (Destination::Queue { queue: full }, RefusalCode::QueueFull),
        (
            Destination::Number {
                number: "+420225000999".into(),
            },
            RefusalCode::QueueConfigInvalid,
        ),
    ] {
        let before = f.ledger.clone();
        assert_eq!(
            f.run(withdraw("c1", destination.clone())),
            Err(refusal),
            "{destination:?}"
        );
        assert_eq!(f.ledger, before, "a refused withdrawal changes nothing");
    }
    assert_eq!(
        f.run(withdraw("nobody", Destination::Queue { queue: other })),
        Err(RefusalCode::NotFound)
    );
    f.run_at(
        NOW_MS + 1_000,
        by(Command::ChangePriority {
            tenant,
            entry: "c1".into(),
            priority: 80,
        }),
    )
    .expect("a new priority");
    // A call's withdrawal waits for its actor: the entry still waits.
    f.run_at(
        NOW_MS + 2_000,
        withdraw("c1", Destination::Queue { queue: other }),
    )
    .expect("withdrawn");
    let e = f.state().entry("c1").expect("c1").clone();
    assert_eq!(e.queue, queue);
    assert_eq!(e.withdrawal, Some(Destination::Queue { queue: other }));
    assert_eq!(
        f.run(withdraw("c1", Destination::Hangup { prompt: None })),
        Err(RefusalCode::EntryNotWaiting),
        "not twice"
    );
    // An entry without a call moves at once.
    f.ok(withdraw("api", Destination::Queue { queue: other }));
    assert_eq!(f.state().entry("api").expect("api").queue, other);

    // The call's actor moves it and the caller hangs up there: the record
    // names both changes, who made them and when.
    f.ok(Command::MoveEntry {
        tenant,
        entry: "c1".into(),
        queue: other,
    });
    let before = f.state().activities().last_seq();
    assert!(matches!(
        f.run_at(
            NOW_MS + 9_000,
            Command::CloseActivity {
                tenant,
                record: unanswered("c1", NOW_MS + 9_000, ActivityOutcome::Abandoned),
            }
        ),
        Ok(Outcome::ActivityClosed { .. })
    ));
    let (_, closed) = f.state().activities().since(before);
    let closed = &closed.last().expect("the record").1;
    assert_eq!(
        closed.interventions,
        [
            Intervention {
                at_ms: NOW_MS + 1_000,
                by: Author::User { user: admin },
                what: "priority 80".into()
            },
            Intervention {
                at_ms: NOW_MS + 2_000,
                by: Author::User { user: admin },
                what: format!("withdrawn to queue {}", other.0)
            }
        ]
    );
}

/// A record of call `id` that no agent took, closed at `at`.
fn unanswered(id: &str, at: u64, outcome: ActivityOutcome) -> Box<ActivityRecord> {
    Box::new(ActivityRecord {
        id: id.into(),
        direction: Direction::Inbound,
        queue: None,
        agent: None,
        caller: "+420777000001".into(),
        called: "+420225000100".into(),
        started_at_ms: NOW_MS,
        connected_at_ms: None,
        ended_at_ms: at,
        closed_at_ms: at,
        waiting_ms: 0,
        interaction_ms: 0,
        processing_ms: 0,
        outcome,
        segments: Vec::new(),
        node: 1,
        disposition: None,
        interventions: Vec::new(),
    })
}

#[test]
fn a_caller_back_within_the_window_takes_its_old_place_once() {
    let mut f = Fixture::new();
    let (tenant, queue) = (f.tenant, f.queue);
    f.ok(Command::UpdateQueue {
        tenant,
        queue,
        spec: patched(&queue_spec("Support"), json!({"rejoin_window_s": 60})),
    });
    let enqueue = |f: &mut Fixture, entry: &str, caller: &str, at: u64| {
        let mut call = checkpoint(entry);
        call.caller = caller.into();
        f.run_at(
            at,
            Command::Enqueue {
                tenant,
                queue,
                entry: entry.into(),
                priority: None,
                call: Some(call),
            },
        )
        .expect("enqueue")
    };
    let order = |f: &Fixture| -> Vec<String> {
        f.state()
            .waiting(queue)
            .iter()
            .map(|e| e.entry.clone())
            .collect()
    };
    let back = "+420777000001";
    enqueue(&mut f, "first", back, NOW_MS);
    enqueue(&mut f, "later", "+420777000002", NOW_MS + 1_000);
    enqueue(&mut f, "other", "anonymous", NOW_MS + 1_500);
    f.run_at(
        NOW_MS + 5_000,
        Command::CloseActivity {
            tenant,
            record: unanswered("first", NOW_MS + 5_000, ActivityOutcome::Abandoned),
        },
    )
    .expect("the caller hung up");
    f.run_at(
        NOW_MS + 5_000,
        Command::CloseActivity {
            tenant,
            record: unanswered("other", NOW_MS + 5_000, ActivityOutcome::Abandoned),
        },
    )
    .expect("anonymous hung up");
    enqueue(&mut f, "again", back, NOW_MS + 30_000);
    enqueue(&mut f, "nobody", "anonymous", NOW_MS + 30_000);
    assert_eq!(order(&f), ["again", "later", "nobody"], "Q8: its old place");
    assert_eq!(
        f.state()
            .entry("again")
            .and_then(|e| e.resumed_from.clone())
            .as_deref(),
        Some("first")
    );
    // Once: leaving again keeps the resumed place; after the window, none.
    f.run_at(
        NOW_MS + 31_000,
        Command::CloseActivity {
            tenant,
            record: unanswered(
                "again",
                NOW_MS + 31_000,
                ActivityOutcome::Lost {
                    reason: "node 2 died".into(),
                },
            ),
        },
    )
    .expect("lost");
    enqueue(&mut f, "late", back, NOW_MS + 31_000 + 60_000);
    assert_eq!(order(&f), ["later", "nobody", "late"], "the window is over");
}

#[test]
fn a_users_abandon_of_a_calls_entry_hangs_the_caller_up_through_its_call() {
    let mut f = Fixture::new();
    let (tenant, queue) = (f.tenant, f.queue);
    for (entry, call) in [("on-a-call", true), ("api", false)] {
        f.ok(Command::Enqueue {
            tenant,
            queue,
            entry: entry.into(),
            priority: None,
            call: call.then(|| checkpoint(entry)),
        });
        f.ok(Command::AbandonEntry {
            tenant,
            entry: entry.into(),
        });
    }
    let e = f.state().entry("on-a-call").expect("kept").clone();
    assert_eq!(
        (e.state, e.withdrawal),
        (
            carillon_actors::ledger::EntryState::Waiting,
            Some(Destination::Hangup { prompt: None })
        ),
        "the call actor hangs up; its record closes the entry"
    );
    assert_eq!(
        f.state().entry("api").map(|e| e.state),
        Some(carillon_actors::ledger::EntryState::Abandoned)
    );
}
