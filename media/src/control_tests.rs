//! Tests of the control API: replies and refusals with their codes, port accounting.

use super::*;
use crate::rtp::{build_packet, OutgoingHeader};

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp-mux\r\n";

fn relay(first: u16, last: u16) -> Relay {
    Relay::new(RelayConfig {
        advertised_ip: "203.0.113.1".parse().expect("ip"),
        first_port: first,
        last_port: last,
        latch: LatchPolicy::default(),
    })
    .expect("relay")
}

fn sid(text: &str) -> SessionId {
    SessionId(text.to_string())
}

fn set_leg(session: &str, leg: &str, sdp: Option<&str>) -> Command {
    Command::SetLeg {
        session: sid(session),
        leg: leg.to_string(),
        remote_sdp: sdp.map(str::to_string),
    }
}

/// One step: a command and the expected outcome (Ok(()) for any success, or a code).
fn check(
    relay: &mut Relay,
    now_ms: u64,
    command: Command,
    expected: Result<(), &str>,
) -> Option<Reply> {
    let described = format!("{command:?}");
    let result = relay.handle(now_ms, command);
    relay.check_invariants();
    match (&result, expected) {
        (Ok(_), Ok(())) => {}
        (Err(refusal), Err(code)) => assert_eq!(refusal.code(), code, "{described}"),
        (got, want) => panic!("{described}: got {got:?}, want {want:?}"),
    }
    result.ok()
}

/// A relay with session "s" and its leg a at 192.0.2.1:4000 (ports 30000/30001).
fn one_leg_session() -> Relay {
    let mut relay = relay(30000, 30009);
    check(
        &mut relay,
        0,
        Command::CreateSession { session: sid("s") },
        Ok(()),
    );
    check(&mut relay, 0, set_leg("s", "a", Some(OFFER)), Ok(()));
    relay
}

/// [`one_leg_session`] with leg b at 192.0.2.2:4000 (30002/30003).
fn two_leg_session() -> Relay {
    let mut relay = one_leg_session();
    let b_offer = OFFER.replace("192.0.2.1", "192.0.2.2");
    check(&mut relay, 0, set_leg("s", "b", Some(&b_offer)), Ok(()));
    relay
}

/// One A-law audio packet.
fn audio_packet() -> Vec<u8> {
    build_packet(
        OutgoingHeader {
            marker: false,
            payload_type: 8,
            sequence: 1,
            timestamp: 0,
            ssrc: 9,
        },
        &[0xD5; 160],
    )
}

#[test]
fn refusals_have_stable_codes_and_change_nothing() {
    let mut relay = relay(30000, 30003); // two pairs
    let steps: Vec<(Command, Result<(), &str>)> = vec![
        (set_leg("nope", "a", Some(OFFER)), Err("UNKNOWN_SESSION")),
        (
            Command::CreateSession { session: sid("") },
            Err("BAD_REQUEST"),
        ),
        (Command::CreateSession { session: sid("s1") }, Ok(())),
        (
            Command::CreateSession { session: sid("s1") },
            Err("SESSION_EXISTS"),
        ),
        (set_leg("s1", "a", Some("garbage")), Err("BAD_SDP")),
        (
            set_leg(
                "s1",
                "a",
                Some("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 18\r\n"),
            ),
            Err("NO_COMMON_CODEC"),
        ),
        (set_leg("s1", "a", Some(OFFER)), Ok(())),
        (set_leg("s1", "b", None), Ok(())),
        (set_leg("s1", "c", Some(OFFER)), Err("PORT_POOL_EXHAUSTED")),
        (set_leg("s1", "a", Some(OFFER)), Ok(())), // update: no new ports
        (
            Command::LocalSdp {
                session: sid("s1"),
                leg: "zz".into(),
            },
            Err("UNKNOWN_LEG"),
        ),
        (
            Command::Play {
                session: sid("s1"),
                leg: "a".into(),
                request: PlayRequest::Prompt("nope".into()),
            },
            Err("UNKNOWN_PROMPT"),
        ),
        (
            Command::Play {
                session: sid("s1"),
                leg: "a".into(),
                request: PlayRequest::Announcement(vec![]),
            },
            Err("BAD_REQUEST"),
        ),
        (
            Command::Play {
                session: sid("s1"),
                leg: "b".into(),
                request: PlayRequest::Prompt("beep".into()),
            },
            Err("LEG_NOT_NEGOTIATED"),
        ),
        (
            Command::SendDtmf {
                session: sid("s1"),
                leg: "a".into(),
                digit: 'x',
                duration_ms: 100,
            },
            Err("BAD_REQUEST"),
        ),
        (
            Command::SendDtmf {
                session: sid("s1"),
                leg: "a".into(),
                digit: '1',
                duration_ms: 5,
            },
            Err("BAD_REQUEST"),
        ),
        (
            Command::PauseRecording {
                session: sid("s1"),
                by: "x".into(),
            },
            Err("RECORDING_NOT_ACTIVE"),
        ),
        (
            Command::StartRecording {
                session: sid("s1"),
                by: "x".into(),
            },
            Ok(()),
        ),
        (
            Command::StartRecording {
                session: sid("s1"),
                by: "x".into(),
            },
            Err("RECORDING_ACTIVE"),
        ),
        (
            Command::ResumeRecording {
                session: sid("s1"),
                by: "x".into(),
            },
            Err("RECORDING_NOT_PAUSED"),
        ),
        (
            Command::Statistics { session: sid("s2") },
            Err("UNKNOWN_SESSION"),
        ),
        (Command::RemoveSession { session: sid("s1") }, Ok(())),
        (
            Command::RemoveSession { session: sid("s1") },
            Err("UNKNOWN_SESSION"),
        ),
        (Command::CreateSession { session: sid("s3") }, Ok(())),
        (set_leg("s3", "c", Some(OFFER)), Ok(())), // ports came back
    ];
    for (command, expected) in steps {
        check(&mut relay, 0, command, expected);
    }
    let counters = relay.counters();
    assert_eq!(counters.refused_unknown_session, 3);
    assert_eq!(counters.refused_pool_exhausted, 1);
    assert_eq!(counters.refused_bad_sdp, 2);
    assert_eq!(relay.pool().allocated_count(), 1);
}

#[test]
fn answer_and_offer_sdp() {
    let mut relay = relay(30000, 30009);
    check(
        &mut relay,
        0,
        Command::CreateSession { session: sid("s") },
        Ok(()),
    );
    let Some(Reply::LegReady { local_sdp, ports }) =
        check(&mut relay, 0, set_leg("s", "caller", Some(OFFER)), Ok(()))
    else {
        panic!("no leg")
    };
    assert_eq!(
        ports,
        PortPair {
            rtp: 30000,
            rtcp: 30001
        }
    );
    assert!(
        local_sdp.contains("c=IN IP4 203.0.113.1\r\n"),
        "{local_sdp}"
    );
    assert!(
        local_sdp.contains("m=audio 30000 RTP/AVP 8 0 101\r\n"),
        "{local_sdp}"
    );
    assert!(local_sdp.contains("a=rtcp-mux\r\n"));
    // A leg without remote SDP gets the relay's offer.
    let Some(Reply::LegReady { local_sdp, .. }) =
        check(&mut relay, 0, set_leg("s", "agent", None), Ok(()))
    else {
        panic!("no leg")
    };
    assert!(
        local_sdp.contains("m=audio 30002 RTP/AVP 0 8 101\r\n"),
        "{local_sdp}"
    );
    assert!(local_sdp.contains("a=rtcp:30003\r\n"));
    // The version goes up when the remote SDP changes.
    check(&mut relay, 0, set_leg("s", "caller", Some(OFFER)), Ok(()));
    let Some(Reply::LocalSdp(text)) = check(
        &mut relay,
        0,
        Command::LocalSdp {
            session: sid("s"),
            leg: "caller".into(),
        },
        Ok(()),
    ) else {
        panic!("no sdp")
    };
    assert!(
        text.contains("o=carillon 1 2 IN IP4 203.0.113.1\r\n"),
        "{text}"
    );
}

#[test]
fn datagrams_are_routed_by_port_and_unknown_ports_counted() {
    let mut relay = two_leg_session();
    let bytes = audio_packet();
    let from: SocketAddr = "192.0.2.1:4000".parse().expect("addr");
    let actions = relay.on_datagram(0, 30000, from, &bytes);
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Forward {
                to_leg: LegIndex(1),
                from_port: 30002,
                ..
            }
        )),
        "{actions:?}"
    );
    assert!(relay.on_datagram(0, 31000, from, &bytes).is_empty());
    assert_eq!(relay.counters().datagrams_unknown_port, 1);
    assert_eq!(relay.owner_of_port(30003), Some((&sid("s"), LegIndex(1))));
    let Some(Reply::Statistics(reports)) = check(
        &mut relay,
        0,
        Command::Statistics { session: sid("s") },
        Ok(()),
    ) else {
        panic!("no statistics")
    };
    assert_eq!(reports[0].statistics.packets, 1);
    assert_eq!(reports[0].latched, Some(from));
    assert_eq!(reports[1].latched, None);
}

#[test]
fn announcement_and_music_on_hold_through_the_api() {
    let mut relay = one_leg_session();
    relay
        .register_prompt("welcome", vec![1000; 800])
        .expect("register"); // 100 ms
    let request = PlayRequest::Announcement(vec!["welcome".into(), "number-2".into()]);
    check(
        &mut relay,
        1000,
        Command::Play {
            session: sid("s"),
            leg: "a".into(),
            request,
        },
        Ok(()),
    );
    assert_eq!(relay.next_timer_ms(), Some(1000));
    let mut packets = 0;
    let mut finished = false;
    let mut now = 1000;
    while let Some(due) = relay.next_timer_ms() {
        now = due;
        relay.on_tick(now, |id, action| {
            assert_eq!(id, &sid("s"));
            match action {
                Action::Forward { .. } => packets += 1,
                Action::GeneratedFinished { .. } => finished = true,
                _ => {}
            }
        });
        assert!(now < 10_000, "the announcement ends");
    }
    // 100 ms + number-2 (2 x 160 ms + 240 ms) = 660 ms -> 33 packets of 20 ms.
    assert!(finished);
    assert_eq!(packets, 33);
    assert_eq!(now, 1000 + 32 * 20);
    let moh = PlayRequest::MusicOnHold("hold-music".into());
    check(
        &mut relay,
        now,
        Command::Play {
            session: sid("s"),
            leg: "a".into(),
            request: moh,
        },
        Ok(()),
    );
    check(
        &mut relay,
        now,
        Command::SendDtmf {
            session: sid("s"),
            leg: "a".into(),
            digit: '1',
            duration_ms: 100,
        },
        Err("LEG_BUSY"),
    );
    let stopped = check(
        &mut relay,
        now,
        Command::StopPlay {
            session: sid("s"),
            leg: "a".into(),
        },
        Ok(()),
    );
    assert_eq!(stopped, Some(Reply::Stopped(true)));
    check(
        &mut relay,
        now,
        Command::SendDtmf {
            session: sid("s"),
            leg: "a".into(),
            digit: '1',
            duration_ms: 100,
        },
        Ok(()),
    );
}

proptest::proptest! {
    /// Random command sequences over a tiny pool keep every invariant.
    #[test]
    fn random_commands_keep_invariants(steps in proptest::collection::vec((0u8..6, 0u8..3, 0u8..3), 1..80)) {
        let mut relay = relay(30000, 30007); // four pairs
        for (kind, session, leg) in steps {
            let id = format!("s{session}");
            let name = format!("l{leg}");
            let command = match kind {
                0 => Command::CreateSession { session: sid(&id) },
                1 => set_leg(&id, &name, Some(OFFER)),
                2 => set_leg(&id, &name, None),
                3 => Command::RemoveSession { session: sid(&id) },
                4 => Command::Play { session: sid(&id), leg: name, request: PlayRequest::Prompt("beep".into()) },
                _ => Command::StartRecording { session: sid(&id), by: "p".into() },
            };
            let _ = relay.handle(0, command);
            relay.check_invariants();
        }
    }
}

#[test]
fn a_datagram_that_arms_a_timer_is_reported_without_a_scan() {
    let mut relay = two_leg_session();
    let from: SocketAddr = "192.0.2.1:4000".parse().expect("addr");
    let audio = audio_packet();
    relay.on_datagram(1000, 30000, from, &audio);
    assert_eq!(relay.take_armed_ms(), None, "audio arms no timer");
    // The first packet of a DTMF event, whose end never comes.
    let digit = crate::dtmf::Digit::from_char('5').expect("digit");
    let first = &crate::dtmf::generate(digit, 200, 20, 10)[0];
    let event = build_packet(
        OutgoingHeader {
            marker: true,
            payload_type: 101,
            sequence: 2,
            timestamp: 160,
            ssrc: 9,
        },
        &first.event.encode(),
    );
    relay.on_datagram(1020, 30000, from, &event);
    let armed = relay.take_armed_ms();
    assert_eq!(
        armed,
        relay.next_timer_ms(),
        "the armed timer is the relay's next one"
    );
    assert!(
        armed.is_some_and(|t| t > 1020),
        "the event's end timeout is armed: {armed:?}"
    );
    assert_eq!(relay.take_armed_ms(), None, "taken once");
}
