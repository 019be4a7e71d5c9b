//! The queue exits of the call machine (Q5) by exact output sequences: the
//! maximum wait moving a ringing caller to the overflow queue, the exit key
//! with a parting prompt, a full queue sending the caller on, the queue's
//! empty policy, and an exit that comes due while an answer is connected.

use super::io::*;
use super::machine::*;
use super::tests::{feed, fork, media, names, setup, Q};
use crate::ledger::{Command, Outcome, WriteError};
use crate::messages::{CallMsg, LegNotice};
use crate::model::activity::{ActivityOutcome, ActivityRecord, OfferEnd, Segment};
use crate::model::queue::{ExitReason, QueueSpec};
use crate::model::{DeviceId, QueueId, Refusal, RefusalCode, UserId};

const OVERFLOW: QueueId = QueueId(25);

pub(super) fn spec(json: serde_json::Value) -> QueueSpec {
    serde_json::from_value(json).expect("a valid queue spec")
}

fn placed(queue: QueueId, sequence: u64, spec: &QueueSpec) -> Outcome {
    Outcome::Enqueued {
        queue,
        sequence,
        priority: spec.default_priority,
        enqueued_at_ms: 0,
        spec: Box::new(spec.clone()),
    }
}

/// A call of a queue with `queue_spec` that asked the ledger, at 1_003, to
/// enter it.
fn asking_to_enqueue(queue_spec: &QueueSpec) -> CallMachine {
    let mut m = CallMachine::new(CallSetup {
        spec: queue_spec.clone(),
        ..setup()
    });
    m.handle(1_000, CallInput::Start);
    m.handle(1_001, media(MediaStep::Create, MediaReply::Done));
    m.handle(
        1_002,
        media(MediaStep::CallerLeg, MediaReply::Sdp("answer".into())),
    );
    m.handle(
        1_003,
        media(MediaStep::AgentOffer, MediaReply::Sdp("agent-offer".into())),
    );
    m
}

/// A call of a queue with `queue_spec` up to its enqueue, answered by the
/// ledger at 1_010 with what the machine then did.
pub(super) fn waiting(queue_spec: &QueueSpec) -> (CallMachine, Vec<String>) {
    let mut m = asking_to_enqueue(queue_spec);
    let out = feed(
        &mut m,
        1_010,
        CallInput::Ledger {
            op: CallOp::Enqueue,
            result: Ok(placed(Q, 1, queue_spec)),
        },
    );
    (m, out)
}

/// The caller's leg (leg 7 on node 1) ended: the caller hung up.
fn caller_hangs_up() -> CallInput {
    CallInput::Message(CallMsg::Leg {
        leg: crate::messages::LegRef { node: 1, leg: 7 },
        event: LegNotice::Ended {
            reason: "remote_hangup".into(),
            status: None,
        },
    })
}

/// Agent 10 accepts the offer (at `at`) and its phone's fork 100 rings.
fn offer_and_fork(m: &mut CallMachine, at: u64) {
    m.handle(
        at,
        CallInput::Message(CallMsg::Offered { agent: UserId(10) }),
    );
    m.handle(
        at + 1,
        CallInput::Message(CallMsg::Forked {
            leg: fork(100),
            agent: UserId(10),
            device: DeviceId(110),
        }),
    );
}

/// Agent 10's fork 100 answers.
fn answered(m: &mut CallMachine, at: u64) {
    m.handle(
        at,
        CallInput::Message(CallMsg::Leg {
            leg: fork(100),
            event: LegNotice::Answered {
                sdp: Some("a".into()),
            },
        }),
    );
}

/// The ledger refuses to connect agent 10's answer; what the machine does.
fn connection_refused(m: &mut CallMachine, at: u64) -> Vec<String> {
    feed(
        m,
        at,
        CallInput::Ledger {
            op: CallOp::Connect {
                agent: UserId(10),
                leg: fork(100),
            },
            result: Err(WriteError::Refused(Refusal::new(
                RefusalCode::EntryNotWaiting,
                "gone",
            ))),
        },
    )
}

pub(super) fn timer(generation: u64, kind: u64) -> CallInput {
    CallInput::Message(CallMsg::Timer {
        timer: (generation << 4) | kind,
    })
}

fn events(list: &[(&str, Option<&str>)]) -> CallInput {
    media(
        MediaStep::Events,
        MediaReply::Events(
            list.iter()
                .map(|(kind, digit)| MediaEvent {
                    kind: kind.to_string(),
                    leg: CALLER_LEG.into(),
                    digit: digit.map(str::to_string),
                })
                .collect(),
        ),
    )
}

/// The record the last output of `out` closes the activity with.
pub(super) fn closed(out: &[CallOutput]) -> ActivityRecord {
    match out.last() {
        Some(CallOutput::Ledger { command, .. }) => match &**command {
            Command::CloseActivity { record, .. } => (**record).clone(),
            other => panic!("not a closing: {other:?}"),
        },
        other => panic!("not a ledger write: {other:?}"),
    }
}

fn queue_segments(record: &ActivityRecord) -> Vec<(u64, u64, u64, String)> {
    record
        .segments
        .iter()
        .filter_map(|s| match s {
            Segment::Queue {
                queue,
                from_ms,
                to_ms,
                reason,
            } => Some((queue.0, *from_ms, *to_ms, reason.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn the_maximum_wait_moves_a_ringing_caller_to_the_overflow_queue() {
    let support = spec(serde_json::json!({
        "name": "Support", "max_wait_s": 60,
        "overflow": {"after_s": 120, "destination": {"kind": "queue", "queue": 25}}
    }));
    let (mut m, out) = waiting(&support);
    assert_eq!(
        out,
        [
            "send queue/2/24 enqueued",
            "timer 60000 1",
            "timer 120000 2"
        ]
    );
    offer_and_fork(&mut m, 30_000);
    assert_eq!(
        feed(&mut m, 61_010, timer(1, 1)),
        [
            "edge 3 hangup 100",
            "send agent/2/10 call ended Some(Cancelled)",
            "send queue/2/24 gone",
            "ledger move 25"
        ]
    );
    // The fork's end after the exit is nobody's business.
    assert!(feed(
        &mut m,
        61_020,
        CallInput::Message(CallMsg::Leg {
            leg: fork(100),
            event: LegNotice::Ended {
                reason: "local_hangup".into(),
                status: None
            }
        })
    )
    .is_empty());
    let sales = spec(serde_json::json!({"name": "Sales", "music_on_hold": "jazz"}));
    let out = m.handle(
        61_030,
        CallInput::Ledger {
            op: CallOp::Move {
                reason: ExitReason::MaxWait,
            },
            result: Ok(placed(OVERFLOW, 9, &sales)),
        },
    );
    assert_eq!(
        names(&out),
        ["send queue/2/25 enqueued", "media music moh-jazz"]
    );
    // The queue learns the place the ledger gave (Q3: arrival order).
    let CallOutput::Send(crate::messages::Envelope {
        message: crate::messages::Message::Queue(crate::messages::QueueMsg::Enqueued(info)),
        ..
    }) = &out[0]
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        (info.queue, info.sequence, info.enqueued_at_ms),
        (OVERFLOW, 9, 61_030)
    );
    assert!(
        feed(&mut m, 121_010, timer(1, 2)).is_empty(),
        "the first queue's overflow timer is stale"
    );
    let out = m.handle(130_000, caller_hangs_up());
    assert_eq!(
        names(&out),
        ["send queue/2/25 gone", "ledger close Abandoned"]
    );
    let record = closed(&out);
    assert_eq!(record.queue, Some(OVERFLOW));
    assert_eq!(
        queue_segments(&record),
        [
            (24, 1_003, 61_030, "max_wait".to_string()),
            (25, 61_030, 130_000, "abandoned".to_string())
        ]
    );
    assert!(record.segments.contains(&Segment::Offer {
        agent: UserId(10),
        from_ms: 30_000,
        to_ms: 61_010,
        result: OfferEnd::Cancelled
    }));
    assert_eq!(
        record.waiting_ms,
        130_000 - 1_003,
        "waiting counts from the first queue"
    );
}

#[test]
fn the_exit_key_plays_the_parting_prompt_then_refuses_an_unanswered_caller() {
    let support = spec(serde_json::json!({
        "name": "Support", "answer": "early_media", "exit_dtmf_key": "0",
        "exit_destination": {"kind": "hangup", "prompt": "vm-goodbye"}
    }));
    let (mut m, out) = waiting(&support);
    assert_eq!(out, ["send queue/2/24 enqueued", "timer 250 3"]);
    assert_eq!(feed(&mut m, 1_260, timer(1, 3)), ["media events"]);
    assert_eq!(
        feed(&mut m, 1_261, events(&[("dtmf", Some("5"))])),
        ["timer 250 3"],
        "another key does nothing"
    );
    m.handle(1_511, timer(1, 3));
    assert_eq!(
        feed(
            &mut m,
            1_512,
            events(&[("dtmf", Some("5")), ("dtmf", Some("0"))])
        ),
        ["send queue/2/24 gone", "media events"]
    );
    assert_eq!(
        feed(
            &mut m,
            1_513,
            media(
                MediaStep::PromptBaseline,
                MediaReply::Events(vec![MediaEvent {
                    kind: "generated_finished".into(),
                    leg: CALLER_LEG.into(),
                    digit: None
                }])
            )
        ),
        [
            "media stop caller",
            "media prompt vm-goodbye",
            "timer 250 3"
        ]
    );
    m.handle(1_763, timer(1, 3));
    let one_finished = [("generated_finished", None)];
    assert_eq!(
        feed(&mut m, 1_764, events(&one_finished)),
        ["timer 250 3"],
        "the prompt finished before is not the parting one"
    );
    m.handle(2_014, timer(1, 3));
    let out = m.handle(
        2_015,
        events(&[("generated_finished", None), ("generated_finished", None)]),
    );
    assert_eq!(names(&out)[0], "edge 1 reject 7 480");
    let CallOutput::Edge { request, .. } = &out[0] else {
        panic!()
    };
    let crate::messages::EdgeRequest::Leg(leg) = request else {
        panic!()
    };
    let crate::messages::LegRequest::Reject { reason, .. } = &**leg else {
        panic!()
    };
    assert_eq!(
        reason,
        "Temporarily Unavailable - Q5: the caller pressed the queue's exit key \
         (hung up after the prompt vm-goodbye)"
    );
    let record = closed(&out);
    assert_eq!(
        record.outcome,
        ActivityOutcome::Exited {
            reason: "exit_key: hung up after the prompt vm-goodbye".into()
        }
    );
    assert_eq!(
        queue_segments(&record),
        [(24, 1_003, 1_512, "exit_key".to_string())]
    );
}

#[test]
fn a_full_queue_sends_the_caller_to_its_overflow_queue() {
    let support = spec(serde_json::json!({
        "name": "Support", "max_length": 1,
        "overflow": {"after_s": 30, "destination": {"kind": "queue", "queue": 25}}
    }));
    let mut m = asking_to_enqueue(&support);
    let full = WriteError::Refused(Refusal::new(
        RefusalCode::QueueFull,
        "the queue holds at most 1 callers",
    ));
    assert_eq!(
        feed(
            &mut m,
            1_004,
            CallInput::Ledger {
                op: CallOp::Enqueue,
                result: Err(full.clone())
            }
        ),
        ["ledger enqueue 25"]
    );
    let sales = spec(serde_json::json!({"name": "Sales", "max_length": 1}));
    assert_eq!(
        feed(
            &mut m,
            1_006,
            CallInput::Ledger {
                op: CallOp::Enqueue,
                result: Ok(placed(OVERFLOW, 2, &sales))
            }
        ),
        ["send queue/2/25 enqueued"]
    );
    let out = m.handle(9_000, caller_hangs_up());
    assert_eq!(
        queue_segments(&closed(&out)),
        [
            (24, 1_004, 1_004, "queue_full".to_string()),
            (25, 1_004, 9_000, "abandoned".to_string())
        ]
    );

    // The overflow queue full as well: hung up, the record says why.
    let mut m = asking_to_enqueue(&spec(serde_json::json!({
        "name": "Support", "max_length": 1,
        "overflow": {"after_s": 30, "destination": {"kind": "queue", "queue": 25}}
    })));
    m.handle(
        1_004,
        CallInput::Ledger {
            op: CallOp::Enqueue,
            result: Err(full.clone()),
        },
    );
    let out = m.handle(
        1_006,
        CallInput::Ledger {
            op: CallOp::Enqueue,
            result: Err(full),
        },
    );
    assert_eq!(
        names(&out),
        [
            "edge 1 hangup 7",
            "ledger close Exited { reason: \"queue_full: sent to queue 25, which refused it \
             (Q5: the queue holds at most 1 callers); hung up\" }"
        ]
    );
}

#[test]
fn the_queue_turns_a_caller_away_and_an_exit_of_another_queue_is_ignored() {
    let (mut m, _) = waiting(&spec(serde_json::json!({"name": "Support"})));
    assert!(feed(
        &mut m,
        2_000,
        CallInput::Message(CallMsg::Exit {
            queue: OVERFLOW,
            reason: ExitReason::Emptied
        })
    )
    .is_empty());
    let out = m.handle(
        2_100,
        CallInput::Message(CallMsg::Exit {
            queue: Q,
            reason: ExitReason::NoAgents,
        }),
    );
    assert_eq!(
        names(&out),
        [
            "send queue/2/24 gone",
            "edge 1 hangup 7",
            "ledger close Exited { reason: \"no_agents: hung up\" }"
        ]
    );
    assert_eq!(
        queue_segments(&closed(&out)),
        [(24, 1_003, 2_100, "no_agents".to_string())]
    );
}

#[test]
fn an_exit_due_while_an_answer_is_connected_waits_for_the_ledger() {
    let (mut m, _) = waiting(&spec(
        serde_json::json!({"name": "Support", "max_wait_s": 10}),
    ));
    offer_and_fork(&mut m, 5_000);
    answered(&mut m, 11_000);
    assert!(
        feed(&mut m, 11_010, timer(1, 1)).is_empty(),
        "an answer is being connected: the caller stays"
    );
    // The ledger refuses the connection: the exit that came due is taken.
    let out = connection_refused(&mut m, 11_020);
    assert_eq!(out[0], "edge 3 hangup 100");
    assert!(out.contains(&"send queue/2/24 gone".to_string()), "{out:?}");
    assert!(
        out.last().is_some_and(|l| l.contains("max_wait: hung up")),
        "{out:?}"
    );
}

#[test]
fn a_withdrawal_by_a_user_moves_the_caller_or_hangs_it_up() {
    use crate::model::queue::Destination;
    let (mut m, _) = waiting(&spec(serde_json::json!({"name": "Support"})));
    assert_eq!(
        feed(
            &mut m,
            2_000,
            CallInput::Message(CallMsg::Withdraw {
                destination: Destination::Queue { queue: OVERFLOW }
            })
        ),
        ["send queue/2/24 gone", "ledger move 25"]
    );
    let (mut m, _) = waiting(&spec(serde_json::json!({"name": "Support"})));
    let out = m.handle(
        2_000,
        CallInput::Message(CallMsg::Withdraw {
            destination: Destination::Hangup { prompt: None },
        }),
    );
    assert_eq!(
        names(&out),
        [
            "send queue/2/24 gone",
            "edge 1 hangup 7",
            "ledger close Exited { reason: \"withdrawn: hung up\" }"
        ]
    );
    assert_eq!(
        queue_segments(&closed(&out)),
        [(24, 1_003, 2_000, "withdrawn".to_string())]
    );
}

#[test]
fn an_exit_asked_while_an_answer_is_connected_is_taken_if_the_connection_fails() {
    let (mut m, _) = waiting(&spec(serde_json::json!({"name": "Support"})));
    offer_and_fork(&mut m, 5_000);
    answered(&mut m, 6_000);
    assert!(
        feed(
            &mut m,
            6_010,
            CallInput::Message(CallMsg::Exit {
                queue: Q,
                reason: ExitReason::Emptied
            })
        )
        .is_empty(),
        "kept while the answer is connected"
    );
    let out = connection_refused(&mut m, 6_020);
    assert!(
        out.last().is_some_and(|l| l.contains("emptied: hung up")),
        "taken when the connection failed: {out:?}"
    );
}
