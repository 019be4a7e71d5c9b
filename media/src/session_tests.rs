//! Tests of the relay session: exact actions for given packets.

use super::*;
use crate::rtp::parse_rtp;
use crate::sdp::parse_remote;
use proptest::prelude::*;

const PHONE_A: &str = "192.0.2.10:5000";
const PHONE_B: &str = "198.51.100.20:6000";

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("socket address")
}

fn remote(rtp: &str, formats: &str, extra: &str) -> RemoteAudio {
    let rtp = addr(rtp);
    let text = format!(
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nc=IN IP4 {}\r\nm=audio {} RTP/AVP {formats}\r\na=rtpmap:101 telephone-event/8000\r\n{extra}",
        rtp.ip(),
        rtp.port()
    );
    parse_remote(&text).expect("test SDP parses")
}

/// Two legs: "a" (PCMU, te 101) on 40000, "b" (PCMU+PCMA, te 101) on 40002.
fn two_legs() -> (Session, LegIndex, LegIndex) {
    let mut session = Session::new(LatchPolicy {
        relatch_packets: 3,
        relatch_quiet_ms: 100,
    });
    let a = session
        .add_leg(
            "a",
            PortPair {
                rtp: 40000,
                rtcp: 40001,
            },
        )
        .expect("leg a");
    let b = session
        .add_leg(
            "b",
            PortPair {
                rtp: 40002,
                rtcp: 40003,
            },
        )
        .expect("leg b");
    session
        .set_remote(a, remote(PHONE_A, "0 101", ""))
        .expect("sdp a");
    session
        .set_remote(b, remote(PHONE_B, "0 8 101", ""))
        .expect("sdp b");
    (session, a, b)
}

fn packet(payload_type: u8, sequence: u16, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    rtp::build_packet(
        OutgoingHeader {
            marker: false,
            payload_type,
            sequence,
            timestamp,
            ssrc,
        },
        payload,
    )
}

fn forwards(actions: &[Action]) -> Vec<(LegIndex, u16, SocketAddr, rtp::RtpHeader, Vec<u8>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Forward {
                to_leg,
                from_port,
                to_addr,
                bytes,
            } => {
                let header = parse_rtp(bytes).ok()?;
                Some((
                    *to_leg,
                    *from_port,
                    *to_addr,
                    header,
                    header.payload(bytes).to_vec(),
                ))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn relays_both_ways_with_latching() {
    let (mut session, a, b) = two_legs();
    let nat_a = addr("203.0.113.7:31000"); // A's real address behind NAT
    let actions = session.on_packet(0, a, nat_a, &packet(0, 1, 160, 0xA, &[1; 160]));
    assert_eq!(
        actions[0],
        Action::SourceLatched {
            leg: a,
            addr: nat_a,
            relatched: false
        }
    );
    let sent = forwards(&actions);
    assert_eq!(sent.len(), 1);
    // B is not latched yet: to its SDP address, from B's local port, bytes unchanged.
    assert_eq!((sent[0].0, sent[0].1, sent[0].2), (b, 40002, addr(PHONE_B)));
    assert_eq!(
        (sent[0].3.ssrc, sent[0].3.sequence, sent[0].3.timestamp),
        (0xA, 1, 160)
    );
    // B answers; media to A goes to the latched NAT address, not A's SDP address.
    let actions = session.on_packet(10, b, addr(PHONE_B), &packet(0, 7, 0, 0xB, &[2; 160]));
    let sent = forwards(&actions);
    assert_eq!((sent[0].0, sent[0].1, sent[0].2), (a, 40000, nat_a));
    session.check_invariants();
    assert_eq!(session.leg(a).map(|l| l.stats.packets()), Some(1));
}

#[test]
fn spoofed_and_malformed_packets_are_dropped_and_counted() {
    let (mut session, a, _b) = two_legs();
    let spoofer = addr("233.252.0.1:9999");
    session.on_packet(0, a, addr(PHONE_A), &packet(0, 1, 0, 0xA, &[0; 160]));
    let cases: Vec<(Vec<u8>, SocketAddr, DropReason)> = vec![
        (
            packet(0, 2, 160, 0xA, &[0; 160]),
            spoofer,
            DropReason::ForeignSource,
        ),
        (
            vec![0x80, 0, 1],
            addr(PHONE_A),
            DropReason::Malformed(PacketError::TooShort(3)),
        ),
        (
            vec![0x40; 20],
            addr(PHONE_A),
            DropReason::Malformed(PacketError::BadVersion(1)),
        ),
        (
            packet(18, 3, 320, 0xA, &[0; 20]),
            addr(PHONE_A),
            DropReason::UnknownPayloadType(18),
        ),
        (
            packet(101, 4, 320, 0xA, &[1]),
            addr(PHONE_A),
            DropReason::BadTelephoneEvent,
        ),
    ];
    for (bytes, from, reason) in cases {
        let actions = session.on_packet(20, a, from, &bytes);
        assert!(
            actions.contains(&Action::Drop { leg: a, reason }),
            "{reason:?}: {actions:?}"
        );
        assert!(forwards(&actions).is_empty());
        session.check_invariants();
    }
    let counters = session.leg(a).map(|l| l.counters).expect("leg");
    assert_eq!(counters.dropped_foreign_source, 1);
    assert_eq!(counters.dropped_malformed, 2);
    assert_eq!(counters.dropped_unknown_payload_type, 1);
    assert_eq!(
        session.on_packet(20, LegIndex(9), spoofer, &[]),
        vec![Action::Drop {
            leg: LegIndex(9),
            reason: DropReason::UnknownLeg
        }]
    );
}

#[test]
fn source_change_keeps_ssrc_sequence_and_timestamp_continuous() {
    let (mut session, a, b) = two_legs();
    let mut seen = Vec::new();
    for i in 0..3u16 {
        let bytes = packet(0, 100 + i, 1000 + 160 * u32::from(i), 0xAAAA, &[0; 160]);
        seen.extend(forwards(&session.on_packet(
            u64::from(i) * 20,
            a,
            addr(PHONE_A),
            &bytes,
        )));
    }
    // The phone moves network and restarts its stream: new address, SSRC and numbers.
    let moved = addr("192.0.2.99:7000");
    for i in 0..5u16 {
        let now = 300 + u64::from(i) * 20;
        let bytes = packet(0, 9000 + i, 77_000 + 160 * u32::from(i), 0xBBBB, &[0; 160]);
        seen.extend(forwards(&session.on_packet(now, a, moved, &bytes)));
    }
    assert!(
        seen.iter().all(|s| s.0 == b && s.3.ssrc == 0xAAAA),
        "one SSRC towards B"
    );
    let sequences: Vec<u16> = seen.iter().map(|s| s.3.sequence).collect();
    assert_eq!(
        sequences,
        vec![100, 101, 102, 103, 104, 105],
        "two dropped before re-latch"
    );
    let timestamps: Vec<u32> = seen.iter().map(|s| s.3.timestamp).collect();
    // Last before the move: 1320 at 40 ms; re-latch at 340 ms: 300 ms later = +2400.
    assert_eq!(timestamps[3], 1320 + 2400);
    assert_eq!(timestamps[4], timestamps[3] + 160);
    assert!(
        seen[3].3.marker,
        "marker on the first packet after the change"
    );
    assert_eq!(session.leg(a).map(|l| l.counters.relatches), Some(1));
    session.check_invariants();
}

#[test]
fn payload_types_are_mapped_and_laws_transcoded() {
    let mut session = Session::new(LatchPolicy::default());
    let a = session
        .add_leg(
            "a",
            PortPair {
                rtp: 40000,
                rtcp: 40001,
            },
        )
        .expect("leg a");
    let b = session
        .add_leg(
            "b",
            PortPair {
                rtp: 40002,
                rtcp: 40003,
            },
        )
        .expect("leg b");
    // A: PCMU as dynamic type 96 and events as 101; B: only PCMA, events as 100.
    session
        .set_remote(a, remote(PHONE_A, "96 101", "a=rtpmap:96 PCMU/8000\r\n"))
        .expect("sdp a");
    let text = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nc=IN IP4 198.51.100.20\r\nm=audio 6000 RTP/AVP 8 100\r\na=rtpmap:100 telephone-event/8000\r\n";
    session
        .set_remote(b, parse_remote(text).expect("sdp b"))
        .expect("sdp b");
    let pcm: Vec<i16> = (0..160).map(|i| (i * 150) as i16 - 12000).collect();
    let ulaw = G711Law::MuLaw.encode(&pcm);
    let sent = forwards(&session.on_packet(0, a, addr(PHONE_A), &packet(96, 1, 0, 5, &ulaw)));
    assert_eq!(sent[0].3.payload_type, 8);
    assert_eq!(sent[0].4, G711Law::MuLaw.transcode(&ulaw, G711Law::ALaw));
    let event = TelephoneEvent {
        event: 7,
        end: false,
        volume: 10,
        duration: 160,
    };
    let sent = forwards(&session.on_packet(
        20,
        a,
        addr(PHONE_A),
        &packet(101, 2, 160, 5, &event.encode()),
    ));
    assert_eq!(sent[0].3.payload_type, 100);
    assert_eq!(sent[0].4, event.encode().to_vec());
}

#[test]
fn dtmf_is_detected_once_and_forwarded() {
    let (mut session, a, _b) = two_legs();
    let digit = Digit::from_char('7').expect("digit");
    let mut detected = Vec::new();
    let mut forwarded = 0;
    for (i, generated) in dtmf::generate(digit, 100, 20, 10).iter().enumerate() {
        let bytes = packet(101, i as u16, 8000, 0xA, &generated.event.encode());
        for action in session.on_packet(generated.send_offset_ms, a, addr(PHONE_A), &bytes) {
            match action {
                Action::DtmfDetected { digit, .. } => detected.push(digit.digit.as_char()),
                Action::Forward { .. } => forwarded += 1,
                _ => {}
            }
        }
    }
    assert_eq!(detected, vec!['7']);
    assert_eq!(
        forwarded, 7,
        "every event packet is relayed, end copies included"
    );
}

#[test]
fn prompt_replaces_relayed_audio_and_keeps_continuity() {
    let (mut session, a, b) = two_legs();
    let mut to_b = Vec::new();
    for i in 0..2u16 {
        let bytes = packet(0, 50 + i, 320 * u32::from(i), 0xA, &[0x11; 160]);
        to_b.extend(forwards(&session.on_packet(
            u64::from(i) * 20,
            a,
            addr(PHONE_A),
            &bytes,
        )));
    }
    let tone = crate::tones::beep(); // 200 ms: 10 frames
    session
        .play(40, b, &[tone.clone().into()], false)
        .expect("play");
    assert_eq!(session.next_timer_ms(), Some(40));
    assert!(forwards(&session.on_packet(
        45,
        a,
        addr(PHONE_A),
        &packet(0, 52, 640, 0xA, &[0; 160])
    ))
    .is_empty());
    let mut finished = false;
    for now in (40..=300).step_by(20) {
        for action in session.on_tick(now) {
            match action {
                Action::GeneratedFinished { leg } => finished = leg == b,
                Action::Forward { .. } => to_b.extend(forwards(&[action])),
                _ => {}
            }
        }
    }
    assert!(finished);
    assert_eq!(to_b.len(), 12);
    assert!(to_b
        .iter()
        .all(|s| s.0 == b && s.3.ssrc == 0xA && s.3.payload_type == 0));
    let sequences: Vec<u16> = to_b.iter().map(|s| s.3.sequence).collect();
    assert_eq!(sequences, (50..62).collect::<Vec<u16>>());
    assert!(to_b[2].3.marker);
    assert_eq!(to_b[2].4, G711Law::MuLaw.encode(&tone[..160]));
    assert_eq!(to_b[3].3.timestamp, to_b[2].3.timestamp + 160);
    assert_eq!(
        session.leg(b).map(|l| l.counters.not_sent_generated_media),
        Some(1)
    );
    // After the prompt, relayed audio flows again.
    assert_eq!(
        forwards(&session.on_packet(400, a, addr(PHONE_A), &packet(0, 60, 6400, 0xA, &[0; 160])))
            .len(),
        1
    );
    session.check_invariants();
}

#[test]
fn music_on_hold_loops_until_stopped() {
    let (mut session, _a, b) = two_legs();
    let melody = crate::tones::hold_melody();
    session.play(0, b, &[melody.into()], true).expect("play");
    let mut frames = 0;
    for now in (0..10_000).step_by(20) {
        frames += forwards(&session.on_tick(now)).len();
    }
    assert_eq!(
        frames, 500,
        "10 s of music at 50 packets/s, across several loops"
    );
    assert_eq!(session.stop_generated(b), Ok(true));
    assert!(session.on_tick(10_020).is_empty());
}

#[test]
fn dtmf_generation_follows_the_schedule() {
    let (mut session, a, _b) = two_legs();
    let digit = Digit::from_char('#').expect("digit");
    session.send_dtmf(1000, a, digit, 60).expect("dtmf");
    assert_eq!(session.send_dtmf(1000, a, digit, 60), Err(Refusal::LegBusy));
    let mut sent = Vec::new();
    for now in (1000..1200).step_by(10) {
        for (_, _, to, header, payload) in forwards(&session.on_tick(now)) {
            assert_eq!(to, addr(PHONE_A));
            let event = TelephoneEvent::decode(&payload).expect("event");
            sent.push((
                now,
                header.payload_type,
                header.marker,
                event.end,
                event.event,
            ));
        }
    }
    let expected: Vec<(u64, u8, bool, bool, u8)> = vec![
        (1000, 101, true, false, 11),
        (1020, 101, false, false, 11),
        (1040, 101, false, true, 11),
        (1060, 101, false, true, 11),
        (1080, 101, false, true, 11),
    ];
    assert_eq!(sent, expected);
    assert_eq!(session.leg(a).map(|l| l.generated.is_none()), Some(true));
}

#[test]
fn recording_actions_follow_the_recording_state() {
    let (mut session, a, b) = two_legs();
    let records = |actions: &[Action]| {
        actions
            .iter()
            .filter(|a| matches!(a, Action::Record { .. }))
            .count()
    };
    let bytes = packet(0, 1, 0, 0xA, &[0x22; 160]);
    assert_eq!(records(&session.on_packet(0, a, addr(PHONE_A), &bytes)), 0);
    assert_eq!(
        session.pause_recording(5, "supervisor"),
        Err(Refusal::RecordingNotActive)
    );
    session.start_recording(10, "agent-7").expect("start");
    assert_eq!(
        session.start_recording(11, "x"),
        Err(Refusal::RecordingActive)
    );
    assert_eq!(
        records(&session.on_packet(20, b, addr(PHONE_B), &packet(0, 1, 0, 0xB, &[0; 160]))),
        1
    );
    session.pause_recording(30, "agent-7").expect("pause");
    assert_eq!(
        session.pause_recording(31, "agent-7"),
        Err(Refusal::RecordingAlreadyPaused)
    );
    assert_eq!(
        records(&session.on_packet(40, a, addr(PHONE_A), &packet(0, 2, 160, 0xA, &[0; 160]))),
        0
    );
    session.check_invariants();
    session.resume_recording(50, "supervisor").expect("resume");
    assert_eq!(
        session.resume_recording(51, "x"),
        Err(Refusal::RecordingNotPaused)
    );
    session.stop_recording(60, "agent-7").expect("stop");
    let trail: Vec<(AuditAction, &str, u64)> = session
        .audit()
        .iter()
        .map(|r| (r.action, r.by.as_str(), r.at_ms))
        .collect();
    assert_eq!(
        trail,
        vec![
            (AuditAction::Started, "agent-7", 10),
            (AuditAction::Paused, "agent-7", 30),
            (AuditAction::Resumed, "supervisor", 50),
            (AuditAction::Stopped, "agent-7", 60),
        ]
    );
    session.check_invariants();
}

#[test]
fn rtcp_passes_through_to_the_other_legs_rtcp_address() {
    let (mut session, a, b) = two_legs();
    let report = [0x80, 201, 0, 1, 0, 0, 0, 0xA];
    let actions = session.on_packet(0, a, addr("192.0.2.10:5001"), &report);
    assert_eq!(
        actions,
        vec![Action::Forward {
            to_leg: b,
            from_port: 40003,
            to_addr: addr("198.51.100.20:6001"),
            bytes: report.to_vec()
        }]
    );
    // rtcp-mux on B: from B's RTP port, to its RTP address.
    session
        .set_remote(b, remote(PHONE_B, "0 101", "a=rtcp-mux\r\n"))
        .expect("sdp");
    let actions = session.on_packet(20, a, addr("192.0.2.10:5001"), &report);
    assert!(
        matches!(&actions[..], [Action::Forward { from_port: 40002, to_addr, .. }] if *to_addr == addr(PHONE_B))
    );
    assert_eq!(session.leg(a).map(|l| l.counters.rtcp_packets), Some(2));
}

#[test]
fn refusals_of_the_session() {
    let (mut session, a, _b) = two_legs();
    assert_eq!(
        session.add_leg(
            "a",
            PortPair {
                rtp: 40004,
                rtcp: 40005
            }
        ),
        Err(Refusal::BadRequest("leg name already used"))
    );
    let c = session
        .add_leg(
            "c",
            PortPair {
                rtp: 40006,
                rtcp: 40007,
            },
        )
        .expect("third leg");
    assert_eq!(
        session.play(0, c, &[vec![1, 2, 3].into()], false),
        Err(Refusal::LegNotNegotiated)
    );
    assert_eq!(
        session.play(0, a, &[], false),
        Err(Refusal::PromptUnplayable(
            crate::playout::PlayoutError::Empty
        ))
    );
    assert_eq!(
        session.play(0, LegIndex(42), &[vec![1].into()], false),
        Err(Refusal::UnknownLeg)
    );
    session
        .set_remote(c, remote("192.0.2.50:5000", "0", ""))
        .expect("sdp c");
    let no_events = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nc=IN IP4 192.0.2.50\r\nm=audio 5000 RTP/AVP 0\r\n";
    session
        .set_remote(c, parse_remote(no_events).expect("sdp"))
        .expect("sdp c");
    let digit = Digit::from_char('1').expect("digit");
    assert_eq!(
        session.send_dtmf(0, c, digit, 100),
        Err(Refusal::NoTelephoneEvent)
    );
    for i in 3..MAX_LEGS {
        session
            .add_leg(
                &format!("x{i}"),
                PortPair {
                    rtp: 41000 + 2 * i as u16,
                    rtcp: 41001 + 2 * i as u16,
                },
            )
            .expect("leg");
    }
    assert_eq!(
        session.add_leg(
            "full",
            PortPair {
                rtp: 42000,
                rtcp: 42001
            }
        ),
        Err(Refusal::TooManyLegs)
    );
    session.check_invariants();
}

proptest! {
    /// Arbitrary datagrams from arbitrary sources never panic and keep the invariants.
    #[test]
    fn arbitrary_datagrams_keep_invariants(datagrams in proptest::collection::vec(
        (proptest::collection::vec(any::<u8>(), 0..80), 0usize..3, any::<bool>(), 0u8..3), 1..60)) {
        let (mut session, _a, _b) = two_legs();
        let sources = [addr(PHONE_A), addr(PHONE_B), addr("233.252.0.1:1")];
        for (i, (mut bytes, source, make_valid, pt)) in datagrams.into_iter().enumerate() {
            if make_valid && bytes.len() >= 12 {
                bytes[0] = 0x80;
                bytes[1] = [0, 8, 101][usize::from(pt)];
            }
            let leg = LegIndex(i % 2);
            for action in session.on_packet(i as u64 * 20, leg, sources[source], &bytes) {
                if let Action::Forward { bytes, .. } = action {
                    prop_assert!(rtp::classify(&bytes).is_ok(), "forwards only valid packets");
                }
            }
            session.on_tick(i as u64 * 20);
            session.check_invariants();
        }
    }
}
