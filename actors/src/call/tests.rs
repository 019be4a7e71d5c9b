//! The call machine by exact output sequences: set-up, an answer among
//! several forks, a second answer, the caller leaving while agents ring, a
//! connection the ledger refuses.

use super::io::*;
use super::machine::*;
use crate::ledger::{Command, Outcome, WriteError};
use crate::messages::{
    Address, AgentMsg, CallMsg, EdgeRequest, LegNotice, LegRef, LegRequest, Message, QueueMsg,
};
use crate::model::activity::{ActivityOutcome, OfferEnd};
use crate::model::queue::QueueSpec;
use crate::model::{DeviceId, QueueId, Refusal, RefusalCode, TenantId, UserId};

pub(super) const T: TenantId = TenantId(2);
pub(super) const Q: QueueId = QueueId(24);

pub(super) fn setup() -> CallSetup {
    CallSetup {
        tenant: T,
        call: "c1".into(),
        node: 1,
        leg: 7,
        sip_call_id: "sip-1".into(),
        caller: "+420777000001".into(),
        called: "+420225000100".into(),
        offer_sdp: "offer".into(),
        queue: Q,
        spec: serde_json::from_value::<QueueSpec>(serde_json::json!({"name": "Support"}))
            .expect("spec"),
        arrived_at_ms: 1_000,
        relay: "local".into(),
    }
}

/// A compact name for each output, to compare sequences.
pub(super) fn names(outputs: &[CallOutput]) -> Vec<String> {
    outputs
        .iter()
        .map(|o| match o {
            CallOutput::Media { request, .. } => match request {
                MediaRequest::Create => "media create".into(),
                MediaRequest::SetLeg { leg, remote_sdp } => {
                    format!("media leg {leg} {}", remote_sdp.as_deref().unwrap_or("-"))
                }
                MediaRequest::Music { prompt, .. } => format!("media music {prompt}"),
                MediaRequest::Prompt { prompt, .. } => format!("media prompt {prompt}"),
                MediaRequest::Events => "media events".into(),
                MediaRequest::StopPlay { leg } => format!("media stop {leg}"),
                MediaRequest::Remove => "media remove".into(),
            },
            CallOutput::Ledger { command, .. } => match &**command {
                Command::Enqueue { queue, .. } => format!("ledger enqueue {queue}"),
                Command::MoveEntry { queue, .. } => format!("ledger move {queue}"),
                Command::ConnectCall { user, .. } => format!("ledger connect {user}"),
                Command::EndCall { user, .. } => format!("ledger end {user}"),
                Command::CloseActivity { record, .. } => {
                    format!("ledger close {:?}", record.outcome)
                }
                other => format!("ledger {other:?}"),
            },
            CallOutput::Edge { node, request } => match request {
                EdgeRequest::Hangup { leg } => format!("edge {node} hangup {leg}"),
                EdgeRequest::Leg(r) => match &**r {
                    LegRequest::Answer { leg, sdp } => format!("edge {node} answer {leg} {sdp}"),
                    LegRequest::Progress { leg, status, .. } => {
                        format!("edge {node} progress {leg} {status}")
                    }
                    LegRequest::Reject { leg, status, .. } => {
                        format!("edge {node} reject {leg} {status}")
                    }
                },
                EdgeRequest::Dial(_) => "edge dial".into(),
            },
            CallOutput::Send(e) => {
                let to = match &e.to {
                    Address::Actor { key } => key.to_string(),
                    Address::Call { call } => call.to_string(),
                    Address::Edge { node } => format!("edge/{node}"),
                };
                let what = match &e.message {
                    Message::Queue(QueueMsg::Enqueued(_)) => "enqueued".to_string(),
                    Message::Queue(QueueMsg::Gone { .. }) => "gone".into(),
                    Message::Agent(AgentMsg::Connected { .. }) => "connected".into(),
                    Message::Agent(AgentMsg::CallEnded { end, .. }) => {
                        format!("call ended {end:?}")
                    }
                    Message::Agent(AgentMsg::ForkEnded { end, .. }) => {
                        format!("fork ended {end:?}")
                    }
                    other => format!("{other:?}"),
                };
                format!("send {to} {what}")
            }
            CallOutput::Timer { after_ms, timer } => {
                format!("timer {after_ms} {}", timer & 0xf)
            }
            CallOutput::Stop => "stop".into(),
        })
        .collect()
}

pub(super) fn feed(m: &mut CallMachine, now: u64, input: CallInput) -> Vec<String> {
    names(&m.handle(now, input))
}

pub(super) fn media(step: MediaStep, reply: MediaReply) -> CallInput {
    CallInput::Media {
        step,
        result: Ok(reply),
    }
}

/// The ledger's answer to an enqueue into `queue`.
fn placed(queue: QueueId, sequence: u64) -> Outcome {
    Outcome::Enqueued {
        queue,
        sequence,
        priority: 0,
        enqueued_at_ms: 1_005,
        spec: Box::new(setup().spec),
    }
}

pub(super) fn fork(leg: u64) -> LegRef {
    LegRef { node: 3, leg }
}

/// A call set up, waiting in the queue, offered to agents 10 and 11 with one
/// fork each (legs 100 and 101 on node 3).
fn waiting_with_two_forks() -> CallMachine {
    let mut m = CallMachine::new(setup());
    assert_eq!(feed(&mut m, 1_000, CallInput::Start), ["media create"]);
    assert_eq!(
        feed(&mut m, 1_001, media(MediaStep::Create, MediaReply::Done)),
        ["media leg caller offer"]
    );
    assert_eq!(
        feed(
            &mut m,
            1_002,
            media(MediaStep::CallerLeg, MediaReply::Sdp("answer".into()))
        ),
        ["media leg agent -"]
    );
    assert_eq!(
        feed(
            &mut m,
            1_003,
            media(MediaStep::AgentOffer, MediaReply::Sdp("agent-offer".into()))
        ),
        [
            "edge 1 answer 7 answer",
            "media music moh-default",
            "ledger enqueue 24"
        ]
    );
    assert_eq!(
        feed(
            &mut m,
            1_010,
            CallInput::Ledger {
                op: CallOp::Enqueue,
                result: Ok(placed(Q, 1))
            }
        ),
        ["send queue/2/24 enqueued"]
    );
    for (agent, leg) in [(10, 100), (11, 101)] {
        assert!(feed(
            &mut m,
            1_020,
            CallInput::Message(CallMsg::Offered {
                agent: UserId(agent)
            })
        )
        .is_empty());
        assert!(feed(
            &mut m,
            1_021,
            CallInput::Message(CallMsg::Forked {
                leg: fork(leg),
                agent: UserId(agent),
                device: DeviceId(agent + 100)
            })
        )
        .is_empty());
    }
    m
}

fn leg_event(leg: LegRef, event: LegNotice) -> CallInput {
    CallInput::Message(CallMsg::Leg { leg, event })
}

#[test]
fn the_first_answer_wins_the_others_are_hung_up_and_the_call_ends_once() {
    let mut m = waiting_with_two_forks();
    assert_eq!(
        feed(
            &mut m,
            5_000,
            leg_event(
                fork(101),
                LegNotice::Answered {
                    sdp: Some("agent-answer".into())
                }
            )
        ),
        [
            "edge 3 hangup 100",
            "media leg agent agent-answer",
            "media stop caller",
            "ledger connect 11"
        ]
    );
    // A second answer crossing ours: BYE.
    assert_eq!(
        feed(
            &mut m,
            5_001,
            leg_event(fork(100), LegNotice::Answered { sdp: None })
        ),
        ["edge 3 hangup 100"]
    );
    assert_eq!(
        feed(
            &mut m,
            5_010,
            CallInput::Ledger {
                op: CallOp::Connect {
                    agent: UserId(11),
                    leg: fork(101)
                },
                result: Ok(Outcome::Done)
            }
        ),
        [
            "send agent/2/10 call ended Some(Cancelled)",
            "send agent/2/11 connected",
            "send queue/2/24 gone"
        ]
    );
    assert_eq!(m.connected_agent(), Some(UserId(11)));
    // The caller hangs up: the agent's leg goes, after-call work starts.
    let out = m.handle(
        65_000,
        leg_event(
            LegRef { node: 1, leg: 7 },
            LegNotice::Ended {
                reason: "remote_hangup".into(),
                status: None,
            },
        ),
    );
    assert_eq!(
        names(&out),
        [
            "edge 3 hangup 101",
            "ledger end 11",
            "send agent/2/11 call ended None"
        ]
    );
    let CallOutput::Ledger { command, .. } = &out[1] else {
        panic!("a ledger write")
    };
    let Command::EndCall { record, .. } = &**command else {
        panic!("EndCall")
    };
    assert_eq!(
        (record.waiting_ms, record.interaction_ms),
        (5_000 - 1_003, 60_000)
    );
    assert_eq!(
        feed(
            &mut m,
            65_010,
            CallInput::Ledger {
                op: CallOp::EndCall { agent: UserId(11) },
                result: Ok(Outcome::Done)
            }
        ),
        ["media remove", "stop"]
    );
    assert!(m
        .handle(
            70_000,
            leg_event(
                fork(101),
                LegNotice::Ended {
                    reason: "local_hangup".into(),
                    status: None
                }
            )
        )
        .is_empty());
}

#[test]
fn a_caller_who_leaves_while_agents_ring_cancels_every_fork() {
    let mut m = waiting_with_two_forks();
    let out = feed(
        &mut m,
        9_000,
        leg_event(
            LegRef { node: 1, leg: 7 },
            LegNotice::Ended {
                reason: "remote_hangup".into(),
                status: None,
            },
        ),
    );
    assert_eq!(
        out,
        [
            "edge 3 hangup 100",
            "edge 3 hangup 101",
            "send agent/2/10 call ended Some(Cancelled)",
            "send agent/2/11 call ended Some(Cancelled)",
            "send queue/2/24 gone",
            "ledger close Abandoned",
        ]
    );
}

#[test]
fn a_refused_fork_is_reported_and_a_refused_connection_hangs_up_its_leg() {
    let mut m = waiting_with_two_forks();
    assert_eq!(
        feed(
            &mut m,
            2_000,
            leg_event(
                fork(100),
                LegNotice::Ended {
                    reason: "rejected".into(),
                    status: Some(486)
                }
            )
        ),
        ["send agent/2/10 fork ended Busy"]
    );
    feed(
        &mut m,
        3_000,
        leg_event(
            fork(101),
            LegNotice::Answered {
                sdp: Some("s".into()),
            },
        ),
    );
    let refused = WriteError::Refused(Refusal::new(
        RefusalCode::ActivityUnknown,
        "the offer ended",
    ));
    assert_eq!(
        feed(
            &mut m,
            3_010,
            CallInput::Ledger {
                op: CallOp::Connect {
                    agent: UserId(11),
                    leg: fork(101)
                },
                result: Err(refused)
            }
        ),
        ["edge 3 hangup 101"],
        "BYE to the agent whose offer ended; the caller waits on"
    );
    // A fork placed too late (no offer any more) is hung up at once.
    assert_eq!(
        feed(
            &mut m,
            3_020,
            CallInput::Message(CallMsg::Forked {
                leg: fork(102),
                agent: UserId(12),
                device: DeviceId(9)
            })
        ),
        ["edge 3 hangup 102"]
    );
}

#[test]
fn a_full_queue_refuses_the_caller_and_writes_a_refused_record() {
    let mut m = CallMachine::new(setup());
    m.handle(1_000, CallInput::Start);
    m.handle(1_001, media(MediaStep::Create, MediaReply::Done));
    m.handle(
        1_002,
        media(MediaStep::CallerLeg, MediaReply::Sdp("a".into())),
    );
    m.handle(
        1_003,
        media(MediaStep::AgentOffer, MediaReply::Sdp("o".into())),
    );
    let full = WriteError::Refused(Refusal::new(
        RefusalCode::QueueFull,
        "the queue holds at most 20 callers",
    ));
    let out = m.handle(
        1_004,
        CallInput::Ledger {
            op: CallOp::Enqueue,
            result: Err(full),
        },
    );
    // Answered already (the queue answers at once): BYE, then the record.
    assert_eq!(names(&out), ["edge 1 hangup 7", "ledger close Refused { status: 486, reason: \"Busy Here - Q5: the queue holds at most 20 callers\" }"]);
    let CallOutput::Ledger { command, .. } = &out[1] else {
        panic!()
    };
    let Command::CloseActivity { record, .. } = &**command else {
        panic!()
    };
    assert!(matches!(
        &record.outcome,
        ActivityOutcome::Refused { status: 486, .. }
    ));
    let _ = OfferEnd::Answered;
}

#[test]
fn music_the_relay_cannot_play_falls_back_to_the_default_then_the_built_in_melody() {
    let mut m = waiting_with_two_forks();
    let failed = |reason: &str| CallInput::Media {
        step: MediaStep::Music,
        result: Err(reason.into()),
    };
    assert_eq!(
        feed(&mut m, 1_030, failed("UNKNOWN_PROMPT moh-default")),
        ["media music hold-music"]
    );
    assert!(
        feed(&mut m, 1_031, failed("UNKNOWN_PROMPT hold-music")).is_empty(),
        "nothing is left to try: no loop"
    );
}
