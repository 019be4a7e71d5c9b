//! The life of a queue call in the ledger (A4-A6, Q3, Q4, C1, C4): an offer
//! reserves an agent, a connection assigns the entry once and ends the
//! other offers (ring-all), the hang-up starts after-call work, closing
//! writes one record with the three times of C1; missed offers pause the
//! agent after N (Q4), refusals back it off, a pause asked for during a
//! call waits for its end (A5); a stale owner is fenced.

mod common;

use carillon_actors::ledger::{Change, Command, Outcome, Voice};
use carillon_actors::model::activity::{
    ActivityOutcome, ActivityRecord, Direction, OfferEnd, Segment,
};
use carillon_actors::model::agent_status::{Author, SessionAction, SystemRule};
use carillon_actors::model::{QueueId, RefusalCode, UserId};
use carillon_consensus::ReplicatedState as _;
use common::{agent_spec, patched, queue_spec, Fixture};
use serde_json::json;

const T0: u64 = 1_000_000;

struct Calls {
    f: Fixture,
    queue: QueueId,
    agents: Vec<UserId>,
}

fn setup(spec: serde_json::Value, agents: usize) -> Calls {
    let mut f = Fixture::new();
    let tenant = f.tenant;
    f.ok(Command::SetPlacement {
        epoch: 1,
        members: [1].into(),
    });
    let queue = QueueId(f.create(Command::CreateQueue {
        tenant,
        spec: patched(&queue_spec("Calls"), spec),
    }));
    let mut ids = Vec::new();
    for i in 0..agents {
        let user = f
            .add_user(agent_spec(&format!("c{i}")), None, None)
            .expect("agent");
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
        ids.push(user);
    }
    Calls {
        f,
        queue,
        agents: ids,
    }
}

fn record(
    id: &str,
    agent: Option<UserId>,
    started: u64,
    connected: Option<u64>,
    ended: u64,
) -> Box<ActivityRecord> {
    Box::new(ActivityRecord {
        interventions: Vec::new(),
        disposition: None,
        id: id.into(),
        direction: Direction::Inbound,
        queue: None,
        agent,
        caller: "+420777000001".into(),
        called: "+420225000100".into(),
        started_at_ms: started,
        connected_at_ms: connected,
        ended_at_ms: ended,
        closed_at_ms: ended,
        waiting_ms: 0,
        interaction_ms: 0,
        processing_ms: 0,
        outcome: if agent.is_some() {
            ActivityOutcome::Answered
        } else {
            ActivityOutcome::Abandoned
        },
        segments: Vec::new(),
        node: 1,
    })
}

impl Calls {
    fn at(&mut self, now: u64, command: Command) -> Result<Outcome, RefusalCode> {
        let r = self.f.run_at(now, command);
        self.f.ledger.check_invariants();
        r
    }

    fn enqueue(&mut self, now: u64, entry: &str) {
        let (tenant, queue) = (self.f.tenant, self.queue);
        self.at(
            now,
            Command::Enqueue {
                tenant,
                queue,
                entry: entry.into(),
                priority: None,
                call: None,
            },
        )
        .expect("enqueue");
    }

    fn offer(&mut self, now: u64, entry: &str, user: UserId) -> Result<Outcome, RefusalCode> {
        let tenant = self.f.tenant;
        self.at(
            now,
            Command::OfferCall {
                tenant,
                entry: entry.into(),
                user,
                epoch: 1,
            },
        )
    }

    fn voice(&self, user: UserId) -> Voice {
        self.f.state().agent_voice(user).voice
    }
}

#[test]
fn a_call_reserves_connects_wraps_up_and_closes_with_one_record() {
    let mut c = setup(json!({"wrap_up_s": 30}), 1);
    let (tenant, a) = (c.f.tenant, c.agents[0]);
    c.enqueue(T0, "e1");
    c.offer(T0 + 1_000, "e1", a).expect("offer");
    assert!(matches!(c.voice(a), Voice::Offered { .. }));
    // A6: one voice offer at a time.
    c.enqueue(T0 + 1_100, "e2");
    assert_eq!(c.offer(T0 + 1_200, "e2", a), Err(RefusalCode::AgentBusy));
    c.at(
        T0 + 3_000,
        Command::ConnectCall {
            tenant,
            entry: "e1".into(),
            user: a,
        },
    )
    .expect("connect");
    assert!(matches!(c.voice(a), Voice::Talking { .. }));
    assert!(c
        .f
        .state()
        .session(a)
        .expect("session")
        .activities
        .contains("e1"));
    let r = record("e1", Some(a), T0 - 500, Some(T0 + 3_000), T0 + 63_000);
    let out = c
        .at(
            T0 + 63_000,
            Command::EndCall {
                tenant,
                entry: "e1".into(),
                user: a,
                record: r,
            },
        )
        .expect("end");
    assert_eq!(
        out,
        Outcome::WrapUp {
            until_ms: T0 + 93_000
        }
    );
    assert_eq!(
        c.offer(T0 + 70_000, "e2", a),
        Err(RefusalCode::AgentBusy),
        "no offer during after-call work"
    );
    // The owner of an older placement is fenced.
    assert_eq!(
        c.at(
            T0 + 93_000,
            Command::FinishWrapUp {
                tenant,
                entry: "e1".into(),
                user: a,
                epoch: 0
            }
        ),
        Err(RefusalCode::PlacementStale)
    );
    let out = c
        .at(
            T0 + 93_000,
            Command::FinishWrapUp {
                tenant,
                entry: "e1".into(),
                user: a,
                epoch: 1,
            },
        )
        .expect("finish");
    assert_eq!(out, Outcome::ActivityClosed { seq: 1 });
    assert_eq!(c.voice(a), Voice::Idle);
    let all: Vec<ActivityRecord> =
        c.f.state()
            .activities()
            .since(0)
            .1
            .map(|(_, r)| r.clone())
            .collect();
    assert_eq!(all.len(), 1, "one record");
    let rec = &all[0];
    // C1: waiting from entering the queue to the connection, interaction
    // to the hang-up, processing to the end of after-call work.
    assert_eq!(
        (rec.waiting_ms, rec.interaction_ms, rec.processing_ms),
        (3_000, 60_000, 90_000)
    );
    assert!(
        matches!(rec.segments.last(), Some(Segment::WrapUp { from_ms, to_ms, .. }) if *to_ms - *from_ms == 30_000)
    );
    rec.check_invariants();
    // C4: never twice.
    assert_eq!(
        c.at(
            T0 + 94_000,
            Command::FinishWrapUp {
                tenant,
                entry: "e1".into(),
                user: a,
                epoch: 1
            }
        ),
        Err(RefusalCode::ActivityUnknown)
    );
    assert_eq!(
        c.at(
            T0 + 94_000,
            Command::CloseActivity {
                tenant,
                record: record("e1", None, T0, None, T0)
            }
        ),
        Err(RefusalCode::ActivityClosed)
    );
}

#[test]
fn a_call_is_offered_to_one_agent_at_a_time_unless_the_queue_rings_all() {
    let mut c = setup(json!({}), 2);
    let (tenant, a, b) = (c.f.tenant, c.agents[0], c.agents[1]);
    c.enqueue(T0, "e");
    c.offer(T0 + 10, "e", a).expect("a");
    assert_eq!(
        c.offer(T0 + 11, "e", b),
        Err(RefusalCode::EntryAlreadyAssigned),
        "a second agent is refused while the first rings"
    );
    assert_eq!(c.voice(b), Voice::Idle, "the refused agent is untouched");
    c.at(
        T0 + 20,
        Command::ReleaseOffer {
            tenant,
            entry: "e".into(),
            user: a,
            end: OfferEnd::NoAnswer,
        },
    )
    .expect("a does not answer");
    c.offer(T0 + 30, "e", b)
        .expect("once the first offer ended, the next agent gets it");
}

#[test]
fn ring_all_connects_one_and_frees_the_others() {
    let mut c = setup(json!({"strategy": {"kind": "ring_all"}}), 2);
    let (tenant, a, b) = (c.f.tenant, c.agents[0], c.agents[1]);
    c.enqueue(T0, "e");
    c.offer(T0 + 10, "e", a).expect("a");
    c.offer(T0 + 10, "e", b).expect("b");
    c.at(
        T0 + 500,
        Command::ConnectCall {
            tenant,
            entry: "e".into(),
            user: b,
        },
    )
    .expect("b answers");
    assert_eq!(c.voice(a), Voice::Idle, "the other agent is free at once");
    assert_eq!(
        c.at(
            T0 + 501,
            Command::ConnectCall {
                tenant,
                entry: "e".into(),
                user: a
            }
        ),
        Err(RefusalCode::ActivityUnknown),
        "a second answer is refused: its leg gets BYE"
    );
    assert_eq!(
        c.at(
            T0 + 502,
            Command::ReleaseOffer {
                tenant,
                entry: "e".into(),
                user: a,
                end: OfferEnd::Cancelled
            }
        ),
        Err(RefusalCode::ActivityUnknown),
        "a late release changes nothing"
    );
}

#[test]
fn missed_offers_pause_the_agent_and_refusals_back_it_off() {
    let pause = Fixture::new().pause;
    let mut c = setup(
        json!({"auto_pause_after_missed": 2, "auto_pause_type": pause.0, "retry_delay_s": 5, "reject_backoff_s": 60}),
        1,
    );
    let (tenant, a) = (c.f.tenant, c.agents[0]);
    c.enqueue(T0, "e");
    // Refused (603): back-off of reject_backoff_s.
    c.offer(T0, "e", a).expect("offer");
    c.at(
        T0 + 1_000,
        Command::ReleaseOffer {
            tenant,
            entry: "e".into(),
            user: a,
            end: OfferEnd::Rejected,
        },
    )
    .expect("release");
    assert_eq!(c.f.state().agent_voice(a).not_before_ms, T0 + 61_000);
    // Missed once: retry delay; missed twice: paused with the queue's type (Q4).
    c.offer(T0 + 61_000, "e", a).expect("offer");
    let out = c
        .at(
            T0 + 81_000,
            Command::ReleaseOffer {
                tenant,
                entry: "e".into(),
                user: a,
                end: OfferEnd::NoAnswer,
            },
        )
        .expect("release");
    assert_eq!(out, Outcome::OfferReleased { auto_paused: false });
    assert_eq!(c.f.state().agent_voice(a).not_before_ms, T0 + 86_000);
    c.offer(T0 + 86_000, "e", a).expect("offer");
    let out = c
        .at(
            T0 + 106_000,
            Command::ReleaseOffer {
                tenant,
                entry: "e".into(),
                user: a,
                end: OfferEnd::NoAnswer,
            },
        )
        .expect("release");
    assert_eq!(out, Outcome::OfferReleased { auto_paused: true });
    let paused =
        c.f.state()
            .session(a)
            .and_then(|s| s.pause)
            .map(|p| p.pause_type);
    assert_eq!(paused, Some(pause));
    let change = c.f.state().last_change(a).cloned().expect("a change");
    assert_eq!(
        (change.at_ms, change.by, change.what),
        (
            T0 + 106_000,
            Author::System {
                rule: SystemRule::MissedOffers
            },
            SessionAction::Paused {
                pause_type: pause,
                deferred: false
            }
        ),
        "A4: the auto-pause names the rule that caused it"
    );
    assert_eq!(
        c.offer(T0 + 107_000, "e", a),
        Err(RefusalCode::AgentUnavailable),
        "a paused agent is not offered"
    );
}

#[test]
fn a_pause_asked_for_during_a_call_starts_when_it_closes() {
    let mut c = setup(json!({"wrap_up_s": 0}), 1);
    let (tenant, a) = (c.f.tenant, c.agents[0]);
    let pause = c.f.pause;
    c.enqueue(T0, "e");
    c.offer(T0, "e", a).expect("offer");
    c.at(
        T0 + 100,
        Command::ConnectCall {
            tenant,
            entry: "e".into(),
            user: a,
        },
    )
    .expect("connect");
    let out = c
        .at(
            T0 + 200,
            Command::Pause {
                tenant,
                user: a,
                pause_type: pause,
            },
        )
        .expect("pause");
    assert_eq!(out, Outcome::Session { deferred: true });
    // No after-call work: the hang-up closes the activity at once.
    let r = record("e", Some(a), T0, Some(T0 + 100), T0 + 5_000);
    let out = c
        .at(
            T0 + 5_000,
            Command::EndCall {
                tenant,
                entry: "e".into(),
                user: a,
                record: r,
            },
        )
        .expect("end");
    assert!(matches!(out, Outcome::ActivityClosed { .. }));
    assert!(
        c.f.state().session(a).and_then(|s| s.pause).is_some(),
        "A5: paused after this call"
    );
}

#[test]
fn a_caller_who_leaves_frees_its_offers_and_a_lost_call_is_closed_once() {
    let mut c = setup(json!({"strategy": {"kind": "ring_all"}}), 2);
    let (tenant, a, b) = (c.f.tenant, c.agents[0], c.agents[1]);
    c.enqueue(T0, "left");
    c.offer(T0, "left", a).expect("a");
    c.offer(T0, "left", b).expect("b");
    c.at(
        T0 + 2_000,
        Command::CloseActivity {
            tenant,
            record: record("left", None, T0, None, T0 + 2_000),
        },
    )
    .expect("close");
    assert_eq!((c.voice(a), c.voice(b)), (Voice::Idle, Voice::Idle));
    // A call an agent holds is closed through the agent, except a lost one.
    c.enqueue(T0 + 3_000, "talk");
    c.offer(T0 + 3_000, "talk", a).expect("offer");
    c.at(
        T0 + 3_500,
        Command::ConnectCall {
            tenant,
            entry: "talk".into(),
            user: a,
        },
    )
    .expect("connect");
    assert_eq!(
        c.at(
            T0 + 4_000,
            Command::CloseActivity {
                tenant,
                record: record("talk", None, T0, None, T0 + 4_000)
            }
        ),
        Err(RefusalCode::AgentBusy)
    );
    let mut lost = record("talk", Some(a), T0 + 3_000, Some(T0 + 3_500), T0 + 9_000);
    lost.outcome = ActivityOutcome::Lost {
        reason: "node 2 died".into(),
    };
    c.at(
        T0 + 9_000,
        Command::CloseActivity {
            tenant,
            record: lost.clone(),
        },
    )
    .expect("lost");
    assert_eq!(c.voice(a), Voice::Idle);
    assert!(c
        .f
        .state()
        .session(a)
        .expect("session")
        .activities
        .is_empty());
    assert_eq!(
        c.at(
            T0 + 9_001,
            Command::CloseActivity {
                tenant,
                record: lost
            }
        ),
        Err(RefusalCode::ActivityClosed)
    );
    assert_eq!(c.f.state().activities().last_seq(), 2);
}

#[test]
fn a_hang_up_that_closes_the_activity_announces_it_to_the_history_writers() {
    // No after-call work: the hang-up closes the activity at once, and the
    // history writers, who wake on this change, must hear of it.
    let mut c = setup(json!({ "wrap_up_s": 0 }), 1);
    let (tenant, a) = (c.f.tenant, c.agents[0]);
    c.enqueue(T0, "e");
    c.offer(T0, "e", a).expect("offer");
    c.at(
        T0 + 100,
        Command::ConnectCall {
            tenant,
            entry: "e".into(),
            user: a,
        },
    )
    .expect("connect");
    c.f.ledger.take_changes();
    let out = c
        .at(
            T0 + 5_000,
            Command::EndCall {
                tenant,
                entry: "e".into(),
                user: a,
                record: record("e", Some(a), T0, Some(T0 + 100), T0 + 5_000),
            },
        )
        .expect("end");
    assert!(matches!(out, Outcome::ActivityClosed { .. }), "{out:?}");
    assert!(
        c.f.ledger
            .take_changes()
            .contains(&Change::ActivityClosed { tenant }),
        "the closing hang-up announces the closed activity"
    );
}

#[test]
fn after_call_work_takes_the_agents_own_limit_a_disposition_and_may_end_early() {
    let mut c = setup(
        json!({"wrap_up_s": 30, "disposition_codes": ["sale", "no_sale"]}),
        1,
    );
    let (tenant, queue) = (c.f.tenant, c.queue);
    let own =
        c.f.add_user(
            patched(&agent_spec("own"), json!({"wrap_up_s": 5})),
            None,
            None,
        )
        .expect("an agent with its own limit");
    c.f.ok(Command::Login {
        tenant,
        user: own,
        terminal: "panel".into(),
    });
    c.f.ok(Command::CheckIn {
        tenant,
        user: own,
        queue,
    });
    let talk = |c: &mut Calls, entry: &str, user: UserId, at: u64| {
        c.enqueue(at, entry);
        c.offer(at, entry, user).expect("offer");
        c.at(
            at + 1_000,
            Command::ConnectCall {
                tenant,
                entry: entry.into(),
                user,
            },
        )
        .expect("connect");
        c.at(
            at + 10_000,
            Command::EndCall {
                tenant,
                entry: entry.into(),
                user,
                record: record(entry, Some(user), at, Some(at + 1_000), at + 10_000),
            },
        )
        .expect("end")
    };
    // A4: the agent's 5 s win over the queue's 30 s.
    assert_eq!(
        talk(&mut c, "own", own, T0),
        Outcome::WrapUp {
            until_ms: T0 + 15_000
        }
    );
    let a = c.agents[0];
    assert_eq!(
        talk(&mut c, "q", a, T0),
        Outcome::WrapUp {
            until_ms: T0 + 40_000
        }
    );
    let set = |code: &str| Command::SetDisposition {
        tenant,
        user: a,
        code: code.into(),
    };
    assert_eq!(
        c.at(T0 + 11_000, set("won")),
        Err(RefusalCode::DispositionUnknown),
        "C4: only the queue's codes"
    );
    c.at(T0 + 11_000, set("no_sale"))
        .expect("a code of the queue");
    // Ended early with another code: the record has it, after-call work
    // lasted 2 s, and the agent is idle at once.
    let before = c.f.state().activities().last_seq();
    c.at(
        T0 + 12_000,
        Command::EndWrapUp {
            tenant,
            user: a,
            disposition: Some("sale".into()),
        },
    )
    .expect("end early");
    assert_eq!(c.voice(a), Voice::Idle);
    let (_, closed) = c.f.state().activities().since(before);
    let r = &closed.last().expect("the record").1;
    assert_eq!(r.disposition.as_deref(), Some("sale"));
    assert_eq!(
        r.processing_ms, 11_000,
        "connected at +1 s, closed at +12 s"
    );
    assert!(r.segments.contains(&Segment::WrapUp {
        agent: a,
        from_ms: T0 + 10_000,
        to_ms: T0 + 12_000
    }));
    assert_eq!(
        c.at(T0 + 13_000, set("sale")),
        Err(RefusalCode::ActivityUnknown),
        "no after-call work any more"
    );
    assert_eq!(
        c.at(
            T0 + 13_000,
            Command::EndWrapUp {
                tenant,
                user: a,
                disposition: None
            }
        ),
        Err(RefusalCode::ActivityUnknown)
    );
}
