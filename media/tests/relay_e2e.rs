//! End to end, from outside: a relay process, two RTP peer processes, the HTTP control API.
//! Audio both ways, latching after a source-port change, DTMF both ways.

mod common;

use common::{addr, plan, start_peer, start_relay, stream};
use std::time::Duration;

#[tokio::test]
async fn audio_is_relayed_both_ways_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = start_relay(
        "127.0.0.21",
        "30000-30099",
        "127.0.0.21:19121",
        dir.path(),
        &[],
    );
    let (phone_a, phone_b) = (addr("127.0.0.22:31000"), addr("127.0.0.23:31000"));
    relay.create_session("call-1").await;
    let relay_a = relay.add_leg("call-1", "a", phone_a).await;
    let relay_b = relay.add_leg("call-1", "b", phone_b).await;
    assert_ne!(relay_a, relay_b);

    let a = start_peer(
        dir.path(),
        "a",
        &plan(vec![stream(phone_a, relay_a, 11, 22)], 2000, 800),
    );
    let b = start_peer(
        dir.path(),
        "b",
        &plan(vec![stream(phone_b, relay_b, 22, 11)], 2000, 800),
    );
    let a = a.finish(Duration::from_secs(20)).streams.remove(0);
    let b = b.finish(Duration::from_secs(20)).streams.remove(0);

    for (from, to) in [(&a, &b), (&b, &a)] {
        assert_eq!(from.sent_audio_packets, 100);
        assert_eq!(to.received_audio_packets, 100, "{to:?}");
        assert_eq!(to.frames_matched, 100, "every frame arrived intact");
        assert_eq!(to.frames_unmatched, 0);
        assert_eq!(to.lost, 0);
        assert_eq!(to.duplicates, 0);
        assert_eq!(
            to.received_checksum, from.sent_checksum,
            "payloads unchanged"
        );
    }
    let view = relay.session("call-1").await;
    for (leg, phone) in [(0, phone_a), (1, phone_b)] {
        assert_eq!(view["legs"][leg]["packets"], 100);
        assert_eq!(view["legs"][leg]["cumulative_lost"], 0);
        assert_eq!(view["legs"][leg]["latched"], phone.to_string());
    }
    let load = relay.load().await;
    assert_eq!(load["sessions"], 1);
    assert_eq!(load["counters"]["datagrams_received"], 200);
    assert_eq!(load["counters"]["datagrams_sent"], 200);
    assert_eq!(load["counters"]["datagrams_dropped"], 0);
    // CPU time comes from /proc in clock ticks (10 ms): a relay that did
    // this little may still read 0 (seen on a quiet machine).
    let cpu = load["cpu_seconds"]
        .as_f64()
        .expect("cpu_seconds in the load report");
    assert!(cpu.is_finite() && cpu >= 0.0, "cpu_seconds {cpu}");

    let removed = relay
        .request(reqwest::Method::DELETE, "/sessions/call-1", None)
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(relay.load().await["port_pairs_free"], 50);
}

#[tokio::test]
async fn latching_follows_a_source_port_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = start_relay(
        "127.0.0.25",
        "30100-30199",
        "127.0.0.25:19125",
        dir.path(),
        &[],
    );
    let (phone_a, phone_b) = (addr("127.0.0.26:31000"), addr("127.0.0.27:31000"));
    let moved_a = addr("127.0.0.26:31002");
    relay.create_session("call-2").await;
    let relay_a = relay.add_leg("call-2", "a", phone_a).await;
    let relay_b = relay.add_leg("call-2", "b", phone_b).await;

    let mut moving = stream(phone_a, relay_a, 31, 32);
    moving.switch_to = Some(moved_a);
    moving.switch_after_ms = 1000;
    let a = start_peer(dir.path(), "a", &plan(vec![moving], 3000, 800));
    let b = start_peer(
        dir.path(),
        "b",
        &plan(vec![stream(phone_b, relay_b, 32, 31)], 3000, 800),
    );
    let a = a.finish(Duration::from_secs(20)).streams.remove(0);
    let b = b.finish(Duration::from_secs(20)).streams.remove(0);

    let view = relay.session("call-2").await;
    let leg_a = &view["legs"][0];
    assert_eq!(leg_a["latched"], moved_a.to_string(), "{view}");
    assert_eq!(leg_a["counters"]["relatches"], 1);
    let dropped = leg_a["counters"]["dropped_foreign_source"]
        .as_u64()
        .expect("counter");
    // The old source must be quiet 500 ms and the new one send 5 packets: about 25 dropped
    // (more when a busy machine delays the relay; the accounting below is exact).
    assert!((20..=45).contains(&dropped), "dropped {dropped}");
    assert_eq!(a.sent_after_switch, 100);
    assert_eq!(b.frames_unmatched, 0);
    assert_eq!(
        b.frames_matched + dropped,
        a.sent_audio_packets,
        "everything not dropped as foreign during the move reached B"
    );
    assert_eq!(
        b.matched_frame_indices.last(),
        Some(&149),
        "the end came through"
    );
    // B -> A: the relay sends to the old port until the move, then to the new one.
    let on_new = a.received_by_socket[&moved_a.to_string()];
    let on_old = a.received_by_socket[&phone_a.to_string()];
    assert!(on_new >= 70 && on_old >= 70, "old {on_old} new {on_new}");
    assert_eq!(
        a.frames_matched, 150,
        "nothing lost towards the moving phone"
    );
    let events = view["events"].as_array().expect("events");
    assert!(events
        .iter()
        .any(|e| e["kind"] == "relatched" && e["detail"] == moved_a.to_string()));
}

#[tokio::test]
async fn dtmf_is_detected_and_generated_digits_are_received() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = start_relay(
        "127.0.0.29",
        "30200-30299",
        "127.0.0.29:19129",
        dir.path(),
        &[],
    );
    let (phone_a, phone_b) = (addr("127.0.0.30:31000"), addr("127.0.0.31:31000"));
    relay.create_session("call-3").await;
    let relay_a = relay.add_leg("call-3", "a", phone_a).await;
    let relay_b = relay.add_leg("call-3", "b", phone_b).await;

    let mut dialling = stream(phone_a, relay_a, 41, 42);
    dialling.dtmf = "159#".into();
    dialling.dtmf_at_ms = 400;
    let a = start_peer(dir.path(), "a", &plan(vec![dialling], 3000, 800));
    let b = start_peer(
        dir.path(),
        "b",
        &plan(vec![stream(phone_b, relay_b, 42, 41)], 3000, 800),
    );
    // Well after the peers' start, while A's digits are done: the relay sends digits to A.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let sent = relay
        .post(
            "/sessions/call-3/legs/a/dtmf",
            serde_json::json!({ "digits": "42*", "duration_ms": 80 }),
        )
        .await;
    assert_eq!(sent.status, 204, "{}", sent.text);
    let a = a.finish(Duration::from_secs(20)).streams.remove(0);
    let b = b.finish(Duration::from_secs(20)).streams.remove(0);

    assert_eq!(
        a.sent_event_packets,
        4 * 7,
        "4 digits of 100 ms: 4 updates and 3 ends each"
    );
    assert_eq!(b.dtmf_detected, "159#", "A's digits reached B");
    assert_eq!(a.dtmf_detected, "42*", "the relay's digits reached A");
    let view = relay.session("call-3").await;
    let detected: String = view["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "dtmf" && e["leg"] == "a")
        .map(|e| e["digit"].as_str().expect("digit").to_string())
        .collect();
    assert_eq!(detected, "159#");
    assert_eq!(view["legs"][0]["counters"]["dtmf_digits"], 4);
    // While the relay sent digits to A, B's audio towards A was held back, and counted.
    let held = view["legs"][0]["counters"]["not_sent_generated_media"]
        .as_u64()
        .expect("counter");
    assert!(held > 0);
    assert_eq!(a.frames_matched + held, b.sent_audio_packets);
}
