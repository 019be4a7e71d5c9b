//! Recording tests: known G.711 audio on two legs, through the relay and the WAV writer,
//! decoded back and compared sample by sample.

use crate::control::{Command, Relay, RelayConfig, Reply, SessionId};
use crate::g711::G711Law;
use crate::leg::LatchPolicy;
use crate::recording::{read_wav, AuditAction, WavRecorder, CHANNELS, JITTER_WINDOW_MS};
use crate::rtp::{build_packet, OutgoingHeader};
use crate::session::Action;
use std::io::Cursor;
use std::net::SocketAddr;

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("socket address")
}

/// A recognisable level per (leg, packet): leg 0 positive, leg 1 negative.
fn level(leg: usize, packet: u32) -> i16 {
    let magnitude = 1000 + 100 * packet as i16;
    if leg == 0 {
        magnitude
    } else {
        -magnitude
    }
}

#[test]
fn two_legs_recorded_to_stereo_wav_with_a_silent_audited_pause() {
    let mut relay = Relay::new(RelayConfig {
        advertised_ip: "203.0.113.1".parse().expect("ip"),
        first_port: 30000,
        last_port: 30099,
        latch: LatchPolicy::default(),
    })
    .expect("relay");
    let id = SessionId("rec".into());
    relay
        .handle(
            0,
            Command::CreateSession {
                session: id.clone(),
            },
        )
        .expect("create");
    let phones = [addr("192.0.2.1:4000"), addr("192.0.2.2:4000")];
    let laws = [G711Law::MuLaw, G711Law::ALaw];
    let mut ports = Vec::new();
    for (i, name) in ["caller", "agent"].iter().enumerate() {
        let pt = laws[i].static_payload_type();
        let sdp = format!(
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nc=IN IP4 {}\r\nm=audio 4000 RTP/AVP {pt}\r\n",
            phones[i].ip()
        );
        let reply = relay.handle(
            0,
            Command::SetLeg {
                session: id.clone(),
                leg: name.to_string(),
                remote_sdp: Some(sdp),
            },
        );
        let Ok(Reply::LegReady { ports: pair, .. }) = reply else {
            panic!("leg {name}: {reply:?}")
        };
        ports.push(pair.rtp);
    }
    let by = |who: &str| who.to_string();
    relay
        .handle(
            1000,
            Command::StartRecording {
                session: id.clone(),
                by: by("agent-7"),
            },
        )
        .expect("start");
    let mut recorder =
        Some(WavRecorder::start(Cursor::new(Vec::new()), 1000, "agent-7").expect("recorder"));

    // 50 packets (1 s) per leg from t=1000, pause at 1400, resume at 1600.
    // Leg 1's packets arrive 7 ms late with jitter: placement uses the RTP timestamps.
    for packet in 0..50u32 {
        let now = 1000 + 20 * u64::from(packet);
        if now == 1400 {
            relay
                .handle(
                    now,
                    Command::PauseRecording {
                        session: id.clone(),
                        by: by("supervisor-3"),
                    },
                )
                .expect("pause");
            if let Some(r) = recorder.as_mut() {
                r.pause(now, "supervisor-3");
            }
        }
        if now == 1600 {
            relay
                .handle(
                    now,
                    Command::ResumeRecording {
                        session: id.clone(),
                        by: by("supervisor-3"),
                    },
                )
                .expect("resume");
            if let Some(r) = recorder.as_mut() {
                r.resume(now, "supervisor-3");
            }
        }
        for leg in 0..2 {
            let pcm = vec![level(leg, packet); 160];
            let bytes = build_packet(
                OutgoingHeader {
                    marker: packet == 0,
                    payload_type: laws[leg].static_payload_type(),
                    sequence: 100 + packet as u16,
                    timestamp: 5000 + 160 * packet,
                    ssrc: 0x1000 + leg as u32,
                },
                &laws[leg].encode(&pcm),
            );
            let arrival = now
                + if leg == 1 {
                    7 + u64::from(packet % 3)
                } else {
                    0
                };
            for action in relay.on_datagram(arrival, ports[leg], phones[leg], &bytes) {
                if let Action::Record {
                    leg,
                    arrival_ms,
                    ssrc,
                    timestamp,
                    law,
                    payload,
                } = action
                {
                    if let Some(r) = recorder.as_mut() {
                        r.push(arrival_ms, leg.0, ssrc, timestamp, law, &payload)
                            .expect("push");
                    }
                }
            }
            relay.check_invariants();
        }
    }
    relay
        .handle(
            2000,
            Command::StopRecording {
                session: id.clone(),
                by: by("agent-7"),
            },
        )
        .expect("stop");
    let (cursor, audit, counters) = recorder
        .take()
        .expect("recorder")
        .finish(2000, "agent-7")
        .expect("finish");
    assert_eq!(counters.late_samples_dropped, 0);

    let wav = read_wav(cursor.get_ref()).expect("wav parses");
    assert_eq!(
        (usize::from(wav.channels), wav.sample_rate_hz),
        (CHANNELS, 8000)
    );
    // leg 1's first packet arrived at 1007: its anchor is 7 ms later than leg 0's.
    let offsets = [0usize, 7 * 8];
    for (leg, samples) in wav.per_channel.iter().enumerate() {
        // One second from start to stop, plus leg 1's last packet, placed 7 ms later.
        assert_eq!(
            samples.len(),
            8000 + 56,
            "both channels have the same length"
        );
        for packet in 0..50u32 {
            let paused = (20..30).contains(&packet); // 1400..1600 ms
            let expected = if paused {
                0
            } else {
                laws[leg].decode_sample(laws[leg].encode_sample(level(leg, packet)))
            };
            let start = offsets[leg] + packet as usize * 160;
            let end = (start + 160).min(samples.len());
            // Leg 1 resumes by arrival (anchors reset on resume): allow its first resumed
            // packet to land within its jitter, and skip the frame edges there.
            let (start, end) = if leg == 1 && packet >= 30 {
                (start + 24, end.saturating_sub(24))
            } else {
                (start, end)
            };
            for (i, sample) in samples[start..end].iter().enumerate() {
                assert_eq!(*sample, expected, "leg {leg} packet {packet} sample {i}");
            }
        }
        assert!(samples[offsets[leg]..offsets[leg] + 160]
            .iter()
            .all(|s| *s != 0));
    }
    // The paused span (1400..1600 ms) is silent on both channels.
    for samples in &wav.per_channel {
        assert!(samples[400 * 8 + 8 * 8..600 * 8].iter().all(|s| *s == 0));
    }
    let trail: Vec<(AuditAction, &str, u64)> = audit
        .iter()
        .map(|r| (r.action, r.by.as_str(), r.at_ms))
        .collect();
    let expected = vec![
        (AuditAction::Started, "agent-7", 1000),
        (AuditAction::Paused, "supervisor-3", 1400),
        (AuditAction::Resumed, "supervisor-3", 1600),
        (AuditAction::Stopped, "agent-7", 2000),
    ];
    assert_eq!(trail, expected);
    let session_trail: Vec<(AuditAction, &str, u64)> = relay
        .session(&id)
        .expect("session")
        .audit()
        .iter()
        .map(|r| (r.action, r.by.as_str(), r.at_ms))
        .collect();
    assert_eq!(
        session_trail, expected,
        "the relay's audit agrees with the file's"
    );
}

#[test]
fn late_packets_are_dropped_and_gaps_are_silence() {
    let mut recorder = WavRecorder::start(Cursor::new(Vec::new()), 0, "x").expect("recorder");
    let tone = G711Law::MuLaw.encode(&[5000; 160]);
    recorder
        .push(0, 0, 1, 0, G711Law::MuLaw, &tone)
        .expect("push");
    // 100 ms of nothing, then a packet at 120 ms (timestamp 960).
    recorder
        .push(120, 0, 1, 960, G711Law::MuLaw, &tone)
        .expect("push");
    recorder.tick(120 + JITTER_WINDOW_MS + 200).expect("tick");
    // A packet for 20..40 ms arriving now is too late: dropped and counted.
    recorder
        .push(520, 0, 1, 160, G711Law::MuLaw, &tone)
        .expect("push");
    assert_eq!(recorder.counters().late_samples_dropped, 160);
    assert_eq!(
        recorder
            .push(520, 2, 1, 0, G711Law::MuLaw, &tone)
            .err()
            .map(|e| e.to_string()),
        Some("channel 2 does not exist (stereo recording)".to_string())
    );
    let (cursor, _, _) = recorder.finish(600, "x").expect("finish");
    let wav = read_wav(cursor.get_ref()).expect("wav");
    let left = &wav.per_channel[0];
    assert_eq!(left.len(), 600 * 8);
    let value = G711Law::MuLaw.decode_sample(G711Law::MuLaw.encode_sample(5000));
    assert!(left[..160].iter().all(|s| *s == value));
    assert!(left[160..960].iter().all(|s| *s == 0));
    assert!(left[960..1120].iter().all(|s| *s == value));
    assert!(wav.per_channel[1].iter().all(|s| *s == 0));
}

#[test]
fn read_wav_refuses_garbage() {
    assert!(read_wav(b"").is_err());
    assert!(read_wav(b"RIFF\0\0\0\0WAVEdata\xff\xff\xff\xff").is_err());
}
