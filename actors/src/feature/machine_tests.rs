//! The feature-code machine by exact output sequences: a login with the PIN
//! in the dialled string, a PIN keyed after the prompt, a wrong PIN, and a
//! logout of every terminal; each ledger write on behalf of the phone (A4).

use super::machine::*;
use super::FeatureRequest;
use crate::call::{MediaEvent, MediaReply, MediaRequest};
use crate::ledger::{Command, Outcome};
use crate::messages::{EdgeRequest, LegRequest};
use crate::model::{DeviceId, TenantId, UserId};

const T: TenantId = TenantId(2);
const AGENT: UserId = UserId(15);
const PHONE: DeviceId = DeviceId(20);

fn machine(request: FeatureRequest) -> FeatureMachine {
    FeatureMachine::new(FeatureSetup {
        tenant: T,
        call: "f1".into(),
        node: 1,
        leg: 7,
        device: PHONE,
        dialled: "*100".into(),
        request,
        offer_sdp: "offer".into(),
        relay: "local".into(),
        arrived_at_ms: 0,
    })
}

fn names(outputs: &[FeatureOutput]) -> Vec<String> {
    outputs
        .iter()
        .map(|o| match o {
            FeatureOutput::Media { step, request } => match request {
                MediaRequest::Prompt { prompt, .. } => format!("{step:?}: prompt {prompt}"),
                other => format!("{step:?}: {other:?}"),
            },
            FeatureOutput::CheckPin { agent, pin } => format!("check pin {pin} of {agent}"),
            FeatureOutput::Ledger(command) => match &**command {
                Command::By { by, inner, .. } => {
                    let what = match &**inner {
                        Command::Login { terminal, .. } => format!("login {terminal}"),
                        Command::Logout { terminal, .. } => format!("logout {terminal}"),
                        other => format!("{other:?}"),
                    };
                    format!("ledger {what} by {}", by.describe())
                }
                other => format!("ledger {other:?} (no author)"),
            },
            FeatureOutput::Edge(EdgeRequest::Leg(l)) => match &**l {
                LegRequest::Answer { sdp, .. } => format!("answer {sdp}"),
                other => format!("{other:?}"),
            },
            FeatureOutput::Edge(EdgeRequest::Hangup { leg }) => format!("hang up {leg}"),
            FeatureOutput::Edge(other) => format!("{other:?}"),
            FeatureOutput::Timer { after_ms } => format!("timer {after_ms}"),
            FeatureOutput::Stop => "stop".into(),
        })
        .collect()
}

fn snapshot(terminals: &[&str]) -> FeatureSnapshot {
    FeatureSnapshot {
        agent: Some(AGENT),
        terminals: terminals.iter().map(|t| t.to_string()).collect(),
        pause_types: Vec::new(),
    }
}

/// Start, session, the phone's leg answered: what the machine asks next.
fn answered(m: &mut FeatureMachine, snap: FeatureSnapshot) -> Vec<String> {
    assert_eq!(
        names(&m.handle(0, FeatureInput::Start(snap))),
        ["Create: Create"]
    );
    let created = FeatureInput::Media {
        step: FeatureStep::Create,
        result: Ok(MediaReply::Done),
    };
    assert_eq!(
        names(&m.handle(1, created)),
        ["Leg: SetLeg { leg: \"caller\", remote_sdp: Some(\"offer\") }"]
    );
    let leg = FeatureInput::Media {
        step: FeatureStep::Leg,
        result: Ok(MediaReply::Sdp("answer-sdp".into())),
    };
    names(&m.handle(2, leg))
}

/// The closing prompt plays to its end, then the machine hangs up.
fn closes(m: &mut FeatureMachine, at: u64) {
    let played = FeatureInput::Media {
        step: FeatureStep::Final,
        result: Ok(MediaReply::Done),
    };
    assert_eq!(
        names(&m.handle(at, played)),
        [format!("timer {DTMF_POLL_MS}")]
    );
    assert_eq!(
        names(&m.handle(at + 200, FeatureInput::Tick)),
        ["FinalWait: Events"]
    );
    let finished = FeatureInput::Media {
        step: FeatureStep::FinalWait,
        result: Ok(MediaReply::Events(vec![MediaEvent {
            kind: "generated_finished".into(),
            leg: "caller".into(),
            digit: None,
        }])),
    };
    assert_eq!(
        names(&m.handle(at + 300, finished)),
        ["hang up 7", "Remove: Remove", "stop"]
    );
}

#[test]
fn a_login_with_the_pin_dialled_is_written_on_behalf_of_the_phone() {
    let mut m = machine(FeatureRequest::Login {
        pin: Some("40718".into()),
    });
    assert_eq!(
        answered(&mut m, snapshot(&[])),
        ["answer answer-sdp", "check pin 40718 of 15"]
    );
    assert_eq!(
        names(&m.handle(3, FeatureInput::PinChecked { matches: true })),
        ["ledger login phone-20 by phone 20"]
    );
    let written = FeatureInput::Ledger {
        result: Ok(Outcome::Session { deferred: false }),
    };
    assert_eq!(
        names(&m.handle(4, written)),
        ["Final: prompt agent-loginok"]
    );
    closes(&mut m, 5);
    assert_eq!(m.result(), "A1: logged in");
    assert_eq!(
        m.record(600).outcome,
        crate::model::activity::ActivityOutcome::FeatureCode {
            result: "A1: logged in".into()
        }
    );
}

#[test]
fn a_pin_keyed_after_the_prompt_and_a_wrong_one() {
    let mut m = machine(FeatureRequest::Login { pin: None });
    assert_eq!(
        answered(&mut m, snapshot(&[])),
        ["answer answer-sdp", "AskPin: prompt agent-pass"]
    );
    let asked = FeatureInput::Media {
        step: FeatureStep::AskPin,
        result: Ok(MediaReply::Done),
    };
    assert_eq!(
        names(&m.handle(3, asked)),
        [format!("timer {DTMF_POLL_MS}")]
    );
    assert_eq!(names(&m.handle(203, FeatureInput::Tick)), ["Dtmf: Events"]);
    let digit = |d: &str| MediaEvent {
        kind: "dtmf".into(),
        leg: "caller".into(),
        digit: Some(d.into()),
    };
    let keyed = FeatureInput::Media {
        step: FeatureStep::Dtmf,
        result: Ok(MediaReply::Events(vec![digit("4"), digit("2")])),
    };
    assert_eq!(
        names(&m.handle(204, keyed)),
        [format!("timer {DTMF_POLL_MS}")]
    );
    assert_eq!(names(&m.handle(404, FeatureInput::Tick)), ["Dtmf: Events"]);
    // The relay reports every event again; only new digits count, `#` ends.
    let ended = FeatureInput::Media {
        step: FeatureStep::Dtmf,
        result: Ok(MediaReply::Events(vec![digit("4"), digit("2"), digit("#")])),
    };
    assert_eq!(names(&m.handle(405, ended)), ["check pin 42 of 15"]);
    assert_eq!(
        names(&m.handle(406, FeatureInput::PinChecked { matches: false })),
        ["Final: prompt agent-incorrect"]
    );
    closes(&mut m, 407);
    assert_eq!(m.result(), "A3: the PIN is wrong");
}

#[test]
fn a_logout_ends_every_terminal_one_write_at_a_time() {
    let mut m = machine(FeatureRequest::Logout);
    assert_eq!(
        answered(&mut m, snapshot(&["panel", "phone-20"])),
        ["answer answer-sdp", "ledger logout phone-20 by phone 20"]
    );
    let written = || FeatureInput::Ledger {
        result: Ok(Outcome::Session { deferred: false }),
    };
    assert_eq!(
        names(&m.handle(3, written())),
        ["ledger logout panel by phone 20"]
    );
    assert_eq!(
        names(&m.handle(4, written())),
        ["Final: prompt agent-loggedoff"]
    );
    // The phone hangs up before the prompt's end: no hang-up of ours.
    assert_eq!(
        names(&m.handle(5, FeatureInput::Ended)),
        ["Remove: Remove", "stop"]
    );
    assert_eq!(m.result(), "A1: logged out");
    assert!(
        m.handle(6, FeatureInput::Tick).is_empty(),
        "nothing after the end"
    );
}
