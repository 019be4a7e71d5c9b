//! End to end: a recording of a relayed session holds both directions (decoded and compared
//! with what the peers sent); a paused span is silent and audited.

mod common;

use carillon_media::g711::G711Law;
use carillon_media::peer::{pattern_frame, FRAME_BYTES};
use carillon_media::recording::read_wav;
use common::{addr, plan, start_peer, start_relay, stream};
use std::collections::HashMap;
use std::time::Duration;

/// Where each frame of `seed`'s pattern appears in `samples`: (sample position, frame).
fn find_frames(samples: &[i16], seed: u32, frames: u32) -> Vec<(usize, u32)> {
    let decoded: Vec<Vec<i16>> = (0..frames)
        .map(|k| G711Law::MuLaw.decode(&pattern_frame(seed, k)))
        .collect();
    let by_start: HashMap<&[i16], u32> = decoded
        .iter()
        .enumerate()
        .map(|(k, f)| (&f[..8], k as u32))
        .collect();
    let mut found = Vec::new();
    let mut position = 0;
    while position + FRAME_BYTES <= samples.len() {
        let window = &samples[position..position + FRAME_BYTES];
        match by_start.get(&window[..8]) {
            Some(k) if decoded[*k as usize] == window => {
                found.push((position, *k));
                position += FRAME_BYTES;
            }
            _ => position += 1,
        }
    }
    found
}

/// Splits found frames into runs of consecutive frames at consecutive positions.
fn runs(found: &[(usize, u32)]) -> Vec<Vec<(usize, u32)>> {
    let mut runs: Vec<Vec<(usize, u32)>> = Vec::new();
    for pair in found {
        match runs.last_mut() {
            Some(run)
                if run
                    .last()
                    .is_some_and(|last| pair.1 == last.1 + 1 && pair.0 == last.0 + FRAME_BYTES) =>
            {
                run.push(*pair)
            }
            _ => runs.push(vec![*pair]),
        }
    }
    runs
}

#[tokio::test]
async fn recording_holds_both_directions_and_pauses_are_silent_and_audited() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = start_relay(
        "127.0.0.33",
        "30300-30399",
        "127.0.0.33:19133",
        dir.path(),
        &[],
    );
    let (phone_a, phone_b) = (addr("127.0.0.34:31000"), addr("127.0.0.35:31000"));
    relay.create_session("call:4").await;
    let relay_a = relay.add_leg("call:4", "a", phone_a).await;
    let relay_b = relay.add_leg("call:4", "b", phone_b).await;
    let (seed_a, seed_b) = (51, 52);
    let a = start_peer(
        dir.path(),
        "a",
        &plan(vec![stream(phone_a, relay_a, seed_a, seed_b)], 5000, 800),
    );
    let b = start_peer(
        dir.path(),
        "b",
        &plan(vec![stream(phone_b, relay_b, seed_b, seed_a)], 5000, 800),
    );

    let action = |action: &str, by: &str| serde_json::json!({ "action": action, "by": by });
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let started = relay
        .post("/sessions/call:4/recording", action("start", "agent-7"))
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    assert_eq!(started.json["state"], "recording");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let paused = relay
        .post("/sessions/call:4/recording", action("pause", "agent-7"))
        .await;
    assert_eq!(paused.json["state"], "paused", "{}", paused.text);
    let again = relay
        .post("/sessions/call:4/recording", action("pause", "agent-7"))
        .await;
    assert_eq!(again.status, 409);
    assert_eq!(again.json["code"], "RECORDING_ALREADY_PAUSED");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let resumed = relay
        .post(
            "/sessions/call:4/recording",
            action("resume", "supervisor-2"),
        )
        .await;
    assert_eq!(resumed.json["state"], "recording", "{}", resumed.text);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let stopped = relay
        .post("/sessions/call:4/recording", action("stop", "agent-7"))
        .await;
    assert_eq!(stopped.json["state"], "off", "{}", stopped.text);
    let a = a.finish(Duration::from_secs(20)).streams.remove(0);
    let b = b.finish(Duration::from_secs(20)).streams.remove(0);
    assert_eq!(a.frames_matched, 250);
    assert_eq!(b.frames_matched, 250);

    let audit: Vec<(String, String)> = stopped.json["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().expect("action").into(),
                e["by"].as_str().expect("by").into(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("started", "agent-7"),
        ("paused", "agent-7"),
        ("resumed", "supervisor-2"),
        ("stopped", "agent-7"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(audit, expected);

    let file = std::path::PathBuf::from(stopped.json["file"].as_str().expect("file"));
    assert!(file.starts_with(&relay.recordings), "{}", file.display());
    let trail: serde_json::Value = serde_json::from_slice(
        &std::fs::read(file.with_extension("audit.json")).expect("audit file"),
    )
    .expect("audit json");
    assert_eq!(trail["audit"].as_array().expect("trail").len(), 4);
    assert_eq!(trail["audit"][1]["action"], "paused");

    let wav = read_wav(&std::fs::read(&file).expect("wav")).expect("wav parses");
    assert_eq!((wav.channels, wav.sample_rate_hz), (2, 8000));
    let seconds = wav.per_channel[0].len() as f64 / 8000.0;
    assert!(
        (2.8..3.4).contains(&seconds),
        "about 3 s from start to stop: {seconds}"
    );
    for (channel, seed, other) in [(0, seed_a, seed_b), (1, seed_b, seed_a)] {
        let samples = &wav.per_channel[channel];
        assert!(
            find_frames(samples, other, 260).is_empty(),
            "channel {channel} holds one direction"
        );
        let found = find_frames(samples, seed, 260);
        let runs = runs(&found);
        assert_eq!(
            runs.len(),
            2,
            "channel {channel}: before and after the pause: {runs:?}"
        );
        let (before, after) = (&runs[0], &runs[1]);
        assert!(
            before.len() >= 45 && after.len() >= 45,
            "{} {}",
            before.len(),
            after.len()
        );
        // The pause lasted ~1 s: ~50 frames sent meanwhile are not in the file...
        let skipped = after[0].1 - before.last().expect("frame").1 - 1;
        assert!((35..=65).contains(&skipped), "skipped {skipped} frames");
        // ... and the span between is silence.
        let gap = &samples[before.last().expect("frame").0 + FRAME_BYTES..after[0].0];
        assert!(gap.len() >= 6400, "pause is ~1 s of samples: {}", gap.len());
        assert!(gap.iter().all(|s| *s == 0), "paused span is silent");
    }
}
