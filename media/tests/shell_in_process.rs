//! The shell driven in-process through `Control` (what a node with the media role uses):
//! prompt playout is paced at 20 ms with continuous numbering; shutdown finishes an active
//! recording and writes its audit trail; a port held by another process is passed over.

mod common;

use carillon_media::recording::read_wav;
use carillon_media::refusal::Refusal;
use carillon_media::rtp::{build_packet, parse_rtp, OutgoingHeader};
use carillon_media::shell::api::{PlayRequest, RecordingAction};
use carillon_media::shell::{serve, ControlError, RelayConfig};
use common::offer;
use std::time::Duration;
use tokio::net::UdpSocket;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::disallowed_methods)] // the test measures the playout's pacing
async fn prompts_are_paced_and_shutdown_closes_recordings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = RelayConfig::new(
        "127.0.0.61".parse().expect("ip"),
        30600,
        30699,
        dir.path().join("recordings"),
    );
    let relay = serve(config).await.expect("relay starts");
    assert_eq!(relay.control_addr(), None, "no HTTP API unless asked");
    let control = relay.control();
    let phone_a = UdpSocket::bind("127.0.0.62:31000").await.expect("phone a");
    let phone_b = UdpSocket::bind("127.0.0.63:31000").await.expect("phone b");
    control.create_session("s").await.expect("session");
    let leg_a = control
        .set_leg("s", "a", Some(offer(phone_a.local_addr().expect("addr"))))
        .await
        .expect("leg a");
    let leg_b = control
        .set_leg("s", "b", Some(offer(phone_b.local_addr().expect("addr"))))
        .await
        .expect("leg b");
    assert_eq!(
        control.create_session("s").await,
        Err(ControlError::Refused(Refusal::SessionExists))
    );

    // The synthesised "number-1" is 400 ms: 20 frames of 20 ms (a synthesised prompt, so
    // the count is exact; "beep" is a recording once the relay has loaded its sounds).
    let started = std::time::Instant::now();
    control
        .play("s", "a", PlayRequest::Prompt("number-1".into()))
        .await
        .expect("play");
    let mut buffer = [0u8; 2048];
    let mut frames = Vec::new();
    while frames.len() < 20 {
        let Ok(received) =
            tokio::time::timeout(Duration::from_secs(5), phone_a.recv_from(&mut buffer)).await
        else {
            let load = control.load().await.expect("load");
            let view = control.session("s").await.expect("view");
            panic!("frame {} not within 5 s: {load:?} {view:?}", frames.len());
        };
        let (len, from) = received.expect("recv");
        assert_eq!(
            from.port(),
            leg_a.rtp_port,
            "symmetric: sent from the leg's port"
        );
        let header = parse_rtp(&buffer[..len]).expect("RTP");
        assert_eq!(len, 12 + 160);
        frames.push((started.elapsed(), header.sequence, header.timestamp));
    }
    let counters = control.load().await.expect("load").counters;
    assert_eq!(counters.datagrams_sent, 20);
    assert_eq!(
        counters.send_failures, 0,
        "a fresh socket sends at once (no wait for the runtime to see it writable)"
    );
    let span = frames[19].0 - frames[0].0;
    assert!(
        span >= Duration::from_millis(360),
        "paced, not burst: {span:?}"
    );
    for pair in frames.windows(2) {
        assert_eq!(
            pair[1].1,
            pair[0].1.wrapping_add(1),
            "consecutive sequence numbers"
        );
        assert_eq!(
            pair[1].2,
            pair[0].2.wrapping_add(160),
            "timestamps 160 apart"
        );
    }
    let mut finished = false;
    for _ in 0..50 {
        let view = control.session("s").await.expect("view");
        if view
            .events
            .iter()
            .any(|e| e.kind == "generated_finished" && e.leg == "a")
        {
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(finished, "the end of the prompt is reported");

    // A recording left running is finished by the shutdown.
    let status = control
        .recording("s", RecordingAction::Start, "agent-1")
        .await
        .expect("start");
    let file = std::path::PathBuf::from(status.file.expect("file"));
    let packet = build_packet(
        OutgoingHeader {
            marker: false,
            payload_type: 0,
            sequence: 1,
            timestamp: 0,
            ssrc: 9,
        },
        &[0x10; 160],
    );
    phone_b
        .send_to(&packet, ("127.0.0.61", leg_b.rtp_port))
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.shutdown().await.expect("clean shutdown");
    assert_eq!(
        control.load().await.err(),
        Some(ControlError::RelayStopped),
        "a stopped relay says so"
    );
    let wav = read_wav(&std::fs::read(&file).expect("wav")).expect("wav parses");
    assert!(
        wav.per_channel[1].iter().any(|s| *s != 0),
        "B's packet is in channel 1"
    );
    let trail = std::fs::read_to_string(file.with_extension("audit.json")).expect("audit");
    assert!(trail.contains("relay: shutdown"), "{trail}");
}

/// A port of the range held by another process (a neighbour relay sharing the range, any
/// program) is passed over: the new leg gets the next free pair, and the held pair is tried
/// again after every other; a leg is refused only when every free pair is held, and then
/// nothing of it is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_held_by_another_process_is_passed_over() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ip = "127.0.0.65";
    let config = RelayConfig::new(
        ip.parse().expect("ip"),
        30700,
        30705,
        dir.path().join("recordings"),
    );
    let relay = serve(config).await.expect("relay starts");
    let control = relay.control();
    let neighbour = std::net::UdpSocket::bind((ip, 30701)).expect("the first pair's RTCP port");
    let phone = UdpSocket::bind("127.0.0.62:31002").await.expect("phone");
    let phone = offer(phone.local_addr().expect("addr"));
    control.create_session("s").await.expect("session");
    let mut ports = Vec::new();
    for leg in ["a", "b"] {
        let ready = control
            .set_leg("s", leg, Some(phone.clone()))
            .await
            .expect("a free pair");
        ports.push((ready.rtp_port, ready.rtcp_port));
    }
    assert_eq!(ports, [(30702, 30703), (30704, 30705)]);
    let refused = control.set_leg("s", "c", Some(phone.clone())).await;
    assert!(
        matches!(
            refused,
            Err(ControlError::PortUnavailable { port: 30701, .. })
        ),
        "{refused:?}"
    );
    let view = control.session("s").await.expect("view");
    assert_eq!(view.legs.len(), 2, "the refused leg was not made: {view:?}");
    drop(neighbour);
    let ready = control
        .set_leg("s", "c", Some(phone))
        .await
        .expect("the pair is free again");
    assert_eq!((ready.rtp_port, ready.rtcp_port), (30700, 30701));
    let load = control.load().await.expect("load");
    assert_eq!(
        (load.counters.ports_held_elsewhere, load.port_pairs_free),
        (2, 0),
        "{load:?}"
    );
    relay.shutdown().await.expect("clean shutdown");
}
