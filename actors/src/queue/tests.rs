//! The queue machine by exact output sequences.

use super::*;
use crate::ledger::CallCheckpoint;
use crate::model::activity::OfferEnd;
use crate::model::agent_status::AgentState;

const T: TenantId = TenantId(2);
const Q: QueueId = QueueId(24);
const A: UserId = UserId(15);
const B: UserId = UserId(16);

fn spec(strategy: serde_json::Value) -> QueueSpec {
    serde_json::from_value(serde_json::json!({
        "name": "Sales", "strategy": strategy, "ring_timeout_s": 20
    }))
    .expect("a valid queue spec")
}

fn entry(id: &str, sequence: u64) -> EntryInfo {
    EntryInfo {
        tenant: T,
        queue: Q,
        entry: id.into(),
        priority: 0,
        sequence,
        enqueued_at_ms: sequence,
        call: CallCheckpoint {
            node: 1,
            leg: 7,
            sip_call_id: id.into(),
            caller: "+1".into(),
            called: "+2".into(),
            media_session: id.into(),
            relay: "local".into(),
            agent_offer_sdp: "offer".into(),
            arrived_at_ms: 0,
        },
    }
}

fn report(agent: UserId, available: bool, idle_since_ms: u64) -> QueueInput {
    QueueInput::Message(QueueMsg::Agent(Box::new(AgentReport {
        agent,
        member: true,
        available,
        skills: BTreeMap::new(),
        idle_since_ms,
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

fn names(outputs: &[QueueOutput]) -> Vec<String> {
    outputs
        .iter()
        .map(|o| match o {
            QueueOutput::Send(Envelope {
                to,
                message: Message::Agent(m),
                ..
            }) => {
                let to = match to {
                    Address::Actor {
                        key: crate::placement::ActorKey::Agent { user, .. },
                    } => user.0,
                    other => panic!("an agent message to {other:?}"),
                };
                match m {
                    AgentMsg::Offer(e) => format!("offer {} to {to}", e.entry),
                    AgentMsg::NothingWaiting { .. } => format!("nothing for {to}"),
                    AgentMsg::Report { .. } => format!("ask {to} to report"),
                    other => format!("{other:?} to {to}"),
                }
            }
            QueueOutput::Send(Envelope {
                to: Address::Call { call },
                message: Message::Call(CallMsg::Exit { reason, .. }),
                ..
            }) => format!("exit {} {}", call.call, reason.as_str()),
            QueueOutput::Send(other) => format!("send {other:?}"),
            QueueOutput::Tick { after_ms } => format!("tick in {after_ms}"),
            QueueOutput::CloseLost(r) => format!("close {} as lost", r.id),
        })
        .collect()
}

/// A machine with two idle agents (A idle longer) and one waiting call.
fn two_agents_one_call(strategy: serde_json::Value) -> QueueMachine {
    let mut m = QueueMachine::new(T, Q, 7);
    let out = m.handle(
        0,
        QueueInput::Snapshot(Box::new(QueueSnapshot {
            spec: spec(strategy),
            waiting: vec![],
            members: [A, B].into(),
            nodes: [1].into(),
            timezone: jiff::tz::TimeZone::UTC,
        })),
    );
    assert_eq!(names(&out), ["ask 15 to report", "ask 16 to report"]);
    assert!(m.handle(10, report(A, true, 1)).is_empty());
    assert!(m.handle(10, report(B, true, 5)).is_empty());
    m
}

#[test]
fn a_busy_report_from_the_ringing_agent_keeps_the_call_from_the_next_agent() {
    let mut m = two_agents_one_call(serde_json::json!({"kind": "longest_idle"}));
    let out = m.handle(
        100,
        QueueInput::Message(QueueMsg::Enqueued(Box::new(entry("c1", 1)))),
    );
    assert_eq!(names(&out), ["offer c1 to 15", "tick in 30000"]);
    // The ledger granted A the offer: A reports itself busy while it rings.
    assert!(
        m.handle(110, report(A, false, 1)).is_empty(),
        "B is not offered the call A is ringing for"
    );
    // A does not answer: the call goes to B.
    let out = m.handle(
        20_200,
        QueueInput::Message(QueueMsg::OfferEnded {
            entry: "c1".into(),
            agent: A,
            end: OfferEnd::NoAnswer,
        }),
    );
    // The tick armed for A's offer is still due first.
    assert_eq!(names(&out), ["offer c1 to 16"]);
}

#[test]
fn ring_all_offers_every_available_agent_once() {
    let mut m = two_agents_one_call(serde_json::json!({"kind": "ring_all"}));
    let out = m.handle(
        100,
        QueueInput::Message(QueueMsg::Enqueued(Box::new(entry("c1", 1)))),
    );
    assert_eq!(
        names(&out),
        ["offer c1 to 15", "offer c1 to 16", "tick in 30000"]
    );
    assert!(m.handle(110, report(A, false, 1)).is_empty());
    assert!(m.handle(111, report(B, false, 5)).is_empty());
}

#[test]
fn an_offer_nobody_ends_is_dropped_after_the_ring_timeout_and_a_margin() {
    let mut m = two_agents_one_call(serde_json::json!({"kind": "longest_idle"}));
    let out = m.handle(
        100,
        QueueInput::Message(QueueMsg::Enqueued(Box::new(entry("c1", 1)))),
    );
    assert_eq!(names(&out), ["offer c1 to 15", "tick in 30000"]);
    assert!(m.handle(110, report(A, false, 1)).is_empty());
    // A's actor moved with the offer in flight and never answers for it.
    let out = m.handle(30_100, QueueInput::Message(QueueMsg::Tick));
    assert_eq!(names(&out), ["offer c1 to 16", "tick in 30000"]);
}

#[test]
fn an_agent_free_again_holds_no_offer_and_is_offered_the_next_call() {
    let mut m = two_agents_one_call(serde_json::json!({"kind": "longest_idle"}));
    let out = m.handle(
        100,
        QueueInput::Message(QueueMsg::Enqueued(Box::new(entry("c1", 1)))),
    );
    assert_eq!(names(&out), ["offer c1 to 15", "tick in 30000"]);
    // A answered: the caller left the queue, then A is free again.
    assert!(m
        .handle(
            200,
            QueueInput::Message(QueueMsg::Gone { entry: "c1".into() })
        )
        .is_empty());
    assert!(m.handle(210, report(A, false, 1)).is_empty());
    let out = m.handle(
        300,
        QueueInput::Message(QueueMsg::Enqueued(Box::new(entry("c2", 2)))),
    );
    assert_eq!(
        names(&out),
        ["offer c2 to 16"],
        "the first tick is still due"
    );
    assert!(m.handle(9_000, report(A, true, 9_000)).is_empty());
    let out = m.handle(
        9_100,
        QueueInput::Message(QueueMsg::Enqueued(Box::new(entry("c3", 3)))),
    );
    assert_eq!(names(&out), ["offer c3 to 15"]);
}

#[test]
fn a_back_off_reported_while_nobody_waits_still_wakes_the_queue() {
    let mut m = QueueMachine::new(T, Q, 7);
    m.handle(
        0,
        QueueInput::Snapshot(Box::new(QueueSnapshot {
            spec: spec(serde_json::json!({"kind": "longest_idle"})),
            waiting: vec![entry("c0", 1)],
            members: [A].into(),
            nodes: [1].into(),
            timezone: jiff::tz::TimeZone::UTC,
        })),
    );
    // A tick is armed for c0's offer to A, then c0 leaves: nobody waits.
    assert_eq!(
        names(&m.handle(10, report(A, true, 1))),
        ["offer c0 to 15", "tick in 30000"]
    );
    assert!(m
        .handle(
            20,
            QueueInput::Message(QueueMsg::Gone { entry: "c0".into() })
        )
        .is_empty());
    // A is free again but backed off until 5,000 (it declined).
    let backed_off = QueueInput::Message(QueueMsg::Agent(Box::new(AgentReport {
        agent: A,
        member: true,
        available: true,
        skills: BTreeMap::new(),
        idle_since_ms: 1,
        last_offered_ms: Some(10),
        calls_taken: 0,
        talk_time_ms: 0,
        not_before_ms: 5_000,
        state: AgentState::Idle,
    })));
    assert!(m.handle(30, backed_off).is_empty());
    // A call arrives: nobody can take it now; the queue wakes when the
    // back-off ends, not only at the old offer's deadline.
    let out = m.handle(
        100,
        QueueInput::Message(QueueMsg::Enqueued(Box::new(entry("c1", 2)))),
    );
    assert_eq!(names(&out), ["tick in 4900"]);
    let out = m.handle(5_000, QueueInput::Message(QueueMsg::Tick));
    assert_eq!(names(&out), ["offer c1 to 15", "tick in 30000"]);
}

fn in_state(agent: UserId, member: bool, state: AgentState) -> QueueInput {
    let QueueInput::Message(QueueMsg::Agent(mut r)) = report(agent, state == AgentState::Idle, 1)
    else {
        unreachable!()
    };
    r.member = member;
    r.state = state;
    QueueInput::Message(QueueMsg::Agent(r))
}

/// A machine whose spec is Sales with `policy` applied, members A and B
/// (not reported yet).
fn with_policy(policy: serde_json::Value) -> QueueMachine {
    let mut spec = serde_json::json!({"name": "Sales", "ring_timeout_s": 20});
    for (k, v) in policy.as_object().expect("an object") {
        spec[k] = v.clone();
    }
    let mut m = QueueMachine::new(T, Q, 7);
    m.handle(
        0,
        QueueInput::Snapshot(Box::new(QueueSnapshot {
            spec: serde_json::from_value(spec).expect("a valid spec"),
            waiting: vec![],
            members: [A, B].into(),
            nodes: [1].into(),
            timezone: jiff::tz::TimeZone::UTC,
        })),
    );
    m
}

#[test]
fn a_caller_does_not_join_a_queue_without_an_available_agent_by_its_factors() {
    let mut m = with_policy(serde_json::json!({"join_when_empty": "when_no_agent_available"}));
    // Not reported yet: counted, the caller joins.
    let out = m.handle(
        5,
        QueueInput::Message(QueueMsg::Enqueued(Box::new(entry("c0", 1)))),
    );
    assert!(names(&out).is_empty(), "{out:?}");
    m.handle(
        6,
        QueueInput::Message(QueueMsg::Gone { entry: "c0".into() }),
    );
    assert!(m
        .handle(10, in_state(A, true, AgentState::Paused))
        .is_empty());
    assert!(m
        .handle(10, in_state(B, true, AgentState::Disconnected))
        .is_empty());
    let out = m.handle(
        100,
        QueueInput::Message(QueueMsg::Enqueued(Box::new(entry("c1", 2)))),
    );
    assert_eq!(names(&out), ["exit c1 no_agents"]);
    // A paused agent counts when the queue says so.
    let mut m = with_policy(serde_json::json!({
        "join_when_empty": "when_no_agent_available",
        "empty_counts": {"paused": true}
    }));
    m.handle(10, in_state(A, true, AgentState::Paused));
    m.handle(10, in_state(B, false, AgentState::LoggedOut));
    let out = m.handle(
        100,
        QueueInput::Message(QueueMsg::Enqueued(Box::new(entry("c1", 2)))),
    );
    assert!(names(&out).is_empty(), "{out:?}");
}

#[test]
fn waiting_callers_leave_once_when_the_last_agent_logs_out() {
    let mut m = with_policy(serde_json::json!({"leave_when_empty": "when_no_agent_logged_in"}));
    m.handle(10, in_state(A, true, AgentState::Talking));
    m.handle(10, in_state(B, false, AgentState::LoggedOut));
    for (i, id) in ["c1", "c2"].into_iter().enumerate() {
        let out = m.handle(
            100,
            QueueInput::Message(QueueMsg::Enqueued(Box::new(entry(id, i as u64 + 1)))),
        );
        assert!(names(&out).is_empty(), "A is on a call: the callers wait");
    }
    let out = m.handle(200, in_state(A, false, AgentState::LoggedOut));
    assert_eq!(names(&out), ["exit c1 emptied", "exit c2 emptied"]);
    assert!(
        m.handle(300, QueueInput::Message(QueueMsg::Tick))
            .is_empty(),
        "told once"
    );
    // A caller arriving now is turned away at once, and nobody is offered
    // the calls told to leave when an agent comes back.
    let out = m.handle(
        400,
        QueueInput::Message(QueueMsg::Enqueued(Box::new(entry("c3", 3)))),
    );
    assert_eq!(names(&out), ["exit c3 no_agents"]);
    let out = m.handle(500, in_state(B, true, AgentState::Idle));
    assert!(
        !names(&out).iter().any(|n| n.starts_with("offer")),
        "{out:?}"
    );
    m.check_invariants();
}

#[test]
fn a_snapshot_carries_a_priority_changed_in_the_ledger_into_the_service_order() {
    let mut m = QueueMachine::new(T, Q, 7);
    let snapshot = |waiting: Vec<EntryInfo>| {
        QueueInput::Snapshot(Box::new(QueueSnapshot {
            spec: spec(serde_json::json!({"kind": "longest_idle"})),
            waiting,
            members: [A].into(),
            nodes: [1].into(),
            timezone: jiff::tz::TimeZone::UTC,
        }))
    };
    m.handle(0, snapshot(vec![entry("c1", 1), entry("c2", 2)]));
    m.handle(10, report(A, false, 1));
    let mut urgent = entry("c2", 2);
    urgent.priority = 90;
    m.handle(20, snapshot(vec![entry("c1", 1), urgent]));
    // A is free: it is offered c2 first (higher priority), not c1.
    let out = m.handle(30, report(A, true, 1));
    assert_eq!(names(&out)[0], "offer c2 to 15");
}

/// 2026-12-23 (a Wednesday) at `hour`:00 UTC, in ms.
fn wednesday(hour: u64) -> u64 {
    1_797_984_000_000 + hour * 3_600_000
}

#[test]
fn a_closed_queue_turns_callers_away_and_callers_waiting_at_closing_leave_by_its_rule() {
    let mut m = with_policy(serde_json::json!({
        "opening_hours": [{"day": "wednesday", "open_minute": 480, "close_minute": 1080}],
        "holidays": ["2026-12-24"],
        "closed_destination": {"kind": "hangup", "prompt": "vm-goodbye"},
        "at_closing": "leave"
    }));
    let out = m.handle(
        wednesday(7),
        QueueInput::Message(QueueMsg::Enqueued(Box::new(entry("early", 1)))),
    );
    assert_eq!(names(&out), ["exit early closed"], "before 08:00");
    m.handle(
        wednesday(7),
        QueueInput::Message(QueueMsg::Gone {
            entry: "early".into(),
        }),
    );
    let out = m.handle(
        wednesday(17),
        QueueInput::Message(QueueMsg::Enqueued(Box::new(entry("c1", 2)))),
    );
    assert_eq!(
        names(&out),
        ["tick in 3600000"],
        "open: it waits, and the queue wakes at 18:00"
    );
    let out = m.handle(wednesday(18), QueueInput::Message(QueueMsg::Tick));
    assert_eq!(names(&out), ["exit c1 closed"]);
    let out = m.handle(
        wednesday(34),
        QueueInput::Message(QueueMsg::Enqueued(Box::new(entry("holiday", 3)))),
    );
    assert_eq!(names(&out), ["exit holiday closed"], "10:00 on a holiday");
}

#[test]
fn callers_waiting_at_closing_stay_by_default() {
    let mut m = with_policy(serde_json::json!({
        "opening_hours": [{"day": "wednesday", "open_minute": 480, "close_minute": 1080}],
        "closed_destination": {"kind": "hangup", "prompt": null}
    }));
    m.handle(
        wednesday(17),
        QueueInput::Message(QueueMsg::Enqueued(Box::new(entry("c1", 1)))),
    );
    let out = m.handle(wednesday(19), QueueInput::Message(QueueMsg::Tick));
    assert!(names(&out).is_empty(), "{out:?}");
}

#[test]
fn a_caller_asking_its_place_gets_its_position_and_the_estimated_wait() {
    let mut m = with_policy(serde_json::json!({}));
    let talking = |agent: UserId, calls: u64, talk_s: u64| {
        let QueueInput::Message(QueueMsg::Agent(mut r)) =
            in_state(agent, true, AgentState::Talking)
        else {
            unreachable!()
        };
        r.calls_taken = calls;
        r.talk_time_ms = talk_s * 1000;
        QueueInput::Message(QueueMsg::Agent(r))
    };
    m.handle(10, talking(A, 0, 0));
    m.handle(10, talking(B, 0, 0));
    m.handle(20, talking(A, 1, 90));
    m.handle(30, talking(B, 1, 150));
    for (i, id) in ["c1", "c2", "c3"].into_iter().enumerate() {
        m.handle(
            100,
            QueueInput::Message(QueueMsg::Enqueued(Box::new(entry(id, i as u64 + 1)))),
        );
    }
    let out = m.handle(
        200,
        QueueInput::Message(QueueMsg::Where { entry: "c3".into() }),
    );
    let [QueueOutput::Send(Envelope {
        message:
            Message::Call(CallMsg::Place {
                position,
                estimated_wait_s,
            }),
        ..
    })] = out.as_slice()
    else {
        panic!("{out:?}")
    };
    // Handle time 90 s, then 90 + 0.05 x (150 - 90) = 93 s, regular; both
    // agents busy since 10 ms, none free: the third caller waits for the
    // first call's end (93 s less 0.19 s) and one more call (93 s).
    assert_eq!((*position, *estimated_wait_s), (Some(3), Some(186)));
}
