//! Recorded sounds end to end. A relay process plays a recorded announcement and then
//! music on hold to two legs (one PCMU, one PCMA); what the phones receive is, frame by
//! frame, the G.711 encoding in the leg's law of the WAV files' samples, in order. A relay
//! whose sounds are missing does not start and says which Debian package to install.
//!
//! Needs Debian's asterisk-core-sounds-en-wav and asterisk-moh-opsound-wav
//! (scripts/install-deps.sh), like every relay.

mod common;

use carillon_media::g711::G711Law;
use carillon_media::peer::{read_payloads, StreamPlan};
use carillon_media::shell::{serve, RelayConfig, SoundsConfig};
use carillon_media::sounds::parse_wav;
use common::{addr, plan, start_peer, start_relay, RelayProcess};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const LOGIN_OK: &str = "/usr/share/asterisk/sounds/en_US_f_Allison/agent-loginok.wav";
const COLD_DAY: &str = "/usr/share/asterisk/moh/macroform-cold_day.wav";
/// How long the music plays before it is stopped.
const MUSIC_MS: u64 = 2000;

/// The samples of a Debian sound file, checked against a decoding of our own: these files
/// have the canonical 44-byte header, then the samples.
fn samples_of(path: &str) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let samples = parse_wav(&bytes).expect("a usable WAV");
    let direct: Vec<i16> = bytes[44..]
        .chunks_exact(2)
        .map(|p| i16::from_le_bytes([p[0], p[1]]))
        .collect();
    assert_eq!(samples, direct, "{path}: the parser reads the samples");
    samples
}

/// The 20 ms frames a playout of `samples` sends in `law`: 160 codes each, the last one
/// completed with silence.
fn frames(samples: &[i16], law: G711Law) -> Vec<Vec<u8>> {
    law.frames(samples)
}

/// An SDP offer preferring `law` (the other law second, so the peer's PCMU is valid on
/// every leg; the relay plays in the preferred one), receiving on `addr`.
fn offer(addr: SocketAddr, law: G711Law) -> String {
    let other = match law {
        G711Law::MuLaw => G711Law::ALaw,
        G711Law::ALaw => G711Law::MuLaw,
    };
    let (pt, other_pt) = (law.static_payload_type(), other.static_payload_type());
    format!(
        "v=0\r\no=peer 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {pt} {other_pt} 101\r\na=rtpmap:{pt} {name}/8000\r\n\
         a=rtpmap:{other_pt} {other_name}/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        ip = addr.ip(),
        port = addr.port(),
        name = law.encoding_name(),
        other_name = other.encoding_name(),
    )
}

/// A one-leg session whose leg "a" receives on `phone` in `law`; the relay's RTP address.
async fn one_leg(relay: &RelayProcess, id: &str, phone: SocketAddr, law: G711Law) -> SocketAddr {
    relay.create_session(id).await;
    let body = serde_json::json!({ "remote_sdp": offer(phone, law) });
    let answer = relay
        .request(
            reqwest::Method::PUT,
            &format!("/sessions/{id}/legs/a"),
            Some(body.to_string()),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let port = answer.json["rtp_port"].as_u64().expect("rtp_port") as u16;
    addr(&format!("127.0.0.91:{port}"))
}

/// Polls the session until `done` holds for its view, at most 10 s.
async fn wait_for(
    relay: &RelayProcess,
    id: &str,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) {
    for _ in 0..500 {
        if done(&relay.session(id).await) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{id}: {what} not within 10 s: {}", relay.session(id).await);
}

fn has_event(view: &serde_json::Value, kind: &str) -> bool {
    view["events"]
        .as_array()
        .is_some_and(|events| events.iter().any(|e| e["kind"] == kind))
}

/// The index of the first frame where `received` and `expected` differ, if any.
fn first_difference(received: &[Vec<u8>], expected: &[Vec<u8>]) -> Option<usize> {
    received
        .iter()
        .zip(expected)
        .position(|(r, e)| r != e)
        .or_else(|| (received.len() > expected.len()).then_some(expected.len()))
}

#[tokio::test]
async fn a_recorded_prompt_then_music_on_hold_arrive_sample_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = start_relay(
        "127.0.0.91",
        "30900-30999",
        "127.0.0.91:19161",
        dir.path(),
        &[],
    );
    let laws = [("mu", G711Law::MuLaw), ("a", G711Law::ALaw)];
    let phones = [addr("127.0.0.92:31000"), addr("127.0.0.92:31002")];
    let mut streams = Vec::new();
    for ((id, law), phone) in laws.iter().zip(phones) {
        let relay_addr = one_leg(&relay, id, phone, *law).await;
        streams.push(StreamPlan {
            local: phone,
            remote: relay_addr,
            seed: 7,
            expect_seed: None,
            switch_to: None,
            switch_after_ms: 0,
            dtmf: String::new(),
            dtmf_at_ms: 0,
            payloads_file: Some(dir.path().join(format!("{id}.payloads"))),
        });
    }
    // The peer sends (so the relay latches and we know it is up) and records what comes
    // back; with one leg per session nothing is relayed to it, it hears only the relay.
    let peer = start_peer(dir.path(), "phones", &plan(streams, 6000, 300));
    for (id, _) in laws {
        wait_for(&relay, id, "latching", |v| {
            v["legs"][0]["latched"].is_string()
        })
        .await;
    }
    for (id, _) in laws {
        let played = relay
            .post(
                &format!("/sessions/{id}/legs/a/play"),
                serde_json::json!({ "prompt": "agent-loginok" }),
            )
            .await;
        assert_eq!(played.status, 204, "{}", played.text);
    }
    for (id, _) in laws {
        wait_for(&relay, id, "the end of the prompt", |v| {
            has_event(v, "generated_finished")
        })
        .await;
        let played = relay
            .post(
                &format!("/sessions/{id}/legs/a/play"),
                serde_json::json!({ "music_on_hold": "moh-default" }),
            )
            .await;
        assert_eq!(played.status, 204, "{}", played.text);
    }
    tokio::time::sleep(Duration::from_millis(MUSIC_MS)).await;
    for (id, _) in laws {
        let stopped = relay
            .request(
                reqwest::Method::DELETE,
                &format!("/sessions/{id}/legs/a/play"),
                None,
            )
            .await;
        assert_eq!(stopped.status, 200, "{}", stopped.text);
        assert_eq!(
            stopped.json["was_playing"], true,
            "{id}: the music was playing"
        );
    }
    let report = peer.finish(Duration::from_secs(40));

    let login = samples_of(LOGIN_OK);
    let music = samples_of(COLD_DAY);
    assert!(login.len() > 8000, "agent-loginok is over a second");
    for ((id, law), stream) in laws.iter().zip(&report.streams) {
        let bytes = std::fs::read(dir.path().join(format!("{id}.payloads"))).expect("payloads");
        let received = read_payloads(&bytes).expect("a payloads file");
        assert_eq!(stream.lost, 0, "{id}: {stream:?}");
        assert_eq!(stream.duplicates, 0, "{id}");
        assert_eq!(received.len() as u64, stream.received_audio_packets, "{id}");
        assert_eq!(
            stream.received_ssrcs.len(),
            1,
            "{id}: one stream towards the leg"
        );

        let prompt = frames(&login, *law);
        assert!(
            received.len() > prompt.len(),
            "{id}: prompt and music arrived"
        );
        let (head, tail) = received.split_at(prompt.len());
        assert_eq!(
            first_difference(head, &prompt),
            None,
            "{id}: agent-loginok arrives as its {} frames, in order",
            prompt.len()
        );
        // The music starts at its beginning; it is minutes long, so what played is a
        // prefix of it (its looping is checked by the playout's unit tests).
        let hold = frames(&music[..tail.len() * 160], *law);
        assert_eq!(
            first_difference(tail, &hold),
            None,
            "{id}: moh-default arrives as macroform-cold_day, frame by frame"
        );
        let music_frames = tail.len() as u64;
        assert!(
            (MUSIC_MS / 20 * 3 / 4..=MUSIC_MS / 20 * 3).contains(&music_frames),
            "{id}: about {MUSIC_MS} ms of music: {music_frames} frames"
        );
        assert!(
            tail.iter()
                .any(|f| f.iter().any(|c| *c != law.silence_code())),
            "{id}: the music is not silence"
        );
    }
}

#[tokio::test]
async fn a_relay_without_its_sounds_does_not_start_and_names_the_package() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let mut config = RelayConfig::new(
        "127.0.0.93".parse().expect("ip"),
        30900,
        30909,
        dir.path().join("recordings"),
    );
    config.sounds.sounds_dir = empty.clone();
    let error = serve(config.clone())
        .await
        .expect_err("no announcements: no relay");
    assert_eq!(
        error.to_string(),
        format!(
            "announcement {}/queue-thankyou.wav is missing: install Debian's \
             asterisk-core-sounds-en-wav (apt-get install asterisk-core-sounds-en-wav; \
             scripts/install-deps.sh does)",
            empty.display()
        )
    );
    config.sounds = SoundsConfig {
        moh_dir: empty.clone(),
        ..SoundsConfig::default()
    };
    let error = serve(config).await.expect_err("no music: no relay");
    assert_eq!(
        error.to_string(),
        format!(
            "music on hold {}/macroform-cold_day.wav is missing: install Debian's \
             asterisk-moh-opsound-wav (apt-get install asterisk-moh-opsound-wav; \
             scripts/install-deps.sh does)",
            empty.display()
        )
    );
}

#[test]
fn carillon_relay_exits_naming_the_package() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_carillon-relay"))
        .args(["--bind-ip", "127.0.0.93", "--ports", "30910-30919"])
        .args(["--control", "127.0.0.93:19163"])
        .arg("--recordings-dir")
        .arg(dir.path().join("recordings"))
        .arg("--moh-dir")
        .arg(&empty)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("carillon-relay runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it must not start: {stderr}");
    assert!(output.stdout.is_empty(), "never ready");
    let missing = Path::new(&empty).join("macroform-cold_day.wav");
    assert!(
        stderr.contains(&format!(
            "music on hold {} is missing: install Debian's asterisk-moh-opsound-wav",
            missing.display()
        )),
        "{stderr}"
    );
}
