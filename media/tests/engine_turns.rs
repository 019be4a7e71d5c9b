//! The engine's turns seen from outside, in-process: after a turn that relayed a datagram
//! the engine naps for `wake_coalesce_us` before it polls again (a packet arriving meanwhile
//! waits for the nap's end), and a burst on one port is read over several turns (at most
//! 32 datagrams per port per turn, counted as `reads_deferred`) without losing a datagram.
//! A nap beyond the bound is refused at start.

mod common;

use carillon_media::rtp::{build_packet, parse_rtp, OutgoingHeader};
use carillon_media::shell::{serve, RelayConfig, MAX_WAKE_COALESCE_US};
use common::offer;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// The nap of this test (the longest a relay accepts): long enough that no scheduling
/// delay on a loaded machine can pass for it, short enough for a quick test.
const NAP_MS: u64 = 50;
/// Datagrams sent to one port while the engine naps (more than the 32 read per turn; few
/// enough for the kernel's default receive buffer).
const BURST: u16 = 80;

/// A relay on 127.0.0.64 with 50 port pairs from `first_port` and the nap `nap_us`.
fn relay_config(dir: &tempfile::TempDir, first_port: u16, nap_us: u64) -> RelayConfig {
    let mut config = RelayConfig::new(
        "127.0.0.64".parse().expect("ip"),
        first_port,
        first_port + 99,
        dir.path().join("recordings"),
    );
    config.wake_coalesce_us = nap_us;
    config
}

fn rtp(sequence: u16) -> Vec<u8> {
    let header = OutgoingHeader {
        marker: false,
        payload_type: 0,
        sequence,
        timestamp: u32::from(sequence) * 160,
        ssrc: 0x00c0_ffee,
    };
    build_packet(header, &[0xd5; 160])
}

async fn receive(socket: &UdpSocket, what: &str) -> (Instant, u16) {
    let mut buffer = [0u8; 2048];
    let (len, _) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buffer))
        .await
        .unwrap_or_else(|_| panic!("{what} not relayed within 5 s"))
        .expect("receive");
    // The test measures when the relayed datagram arrives.
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let packet = parse_rtp(&buffer[..len]).expect("the relay sends RTP");
    (now, packet.sequence)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::disallowed_methods)] // the test measures the nap
async fn a_packet_waits_for_the_nap_and_a_burst_is_read_over_several_turns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = relay_config(&dir, 30700, NAP_MS * 1000);
    let relay = serve(config).await.expect("relay starts");
    let control = relay.control();
    let phone_a = UdpSocket::bind("127.0.0.65:31000").await.expect("phone a");
    let phone_b = UdpSocket::bind("127.0.0.66:31000").await.expect("phone b");
    control.create_session("s").await.expect("session");
    let leg_a = control
        .set_leg("s", "a", Some(offer(phone_a.local_addr().expect("addr"))))
        .await
        .expect("leg a");
    control
        .set_leg("s", "b", Some(offer(phone_b.local_addr().expect("addr"))))
        .await
        .expect("leg b");
    let to_relay = format!("127.0.0.64:{}", leg_a.rtp_port);

    // The first datagram wakes the engine, which relays it and then naps; a burst sent
    // now arrives during the nap and waits for its end. A turn that also ran the 20 ms
    // tick skips its nap (it looks at the control queue at once), so a probe whose first
    // datagram met the tick is tried again, three times at most.
    let mut waits = Vec::new();
    for attempt in 0..3u16 {
        let base = attempt * (BURST + 1);
        phone_a.send_to(&rtp(base), &to_relay).await.expect("send");
        let (first_at, _) = receive(&phone_b, "the first datagram").await;
        for sequence in base + 1..=base + BURST {
            phone_a
                .send_to(&rtp(sequence), &to_relay)
                .await
                .expect("send");
        }
        let mut sequences = BTreeSet::new();
        let (burst_first_at, sequence) = receive(&phone_b, "the burst").await;
        sequences.insert(sequence);
        while sequences.len() < usize::from(BURST) {
            let (_, sequence) = receive(&phone_b, "the rest of the burst").await;
            sequences.insert(sequence);
        }
        waits.push(burst_first_at - first_at);
        if waits
            .last()
            .is_some_and(|w| *w >= Duration::from_millis(NAP_MS / 5))
        {
            break;
        }
    }
    let waited = waits.iter().max().copied().unwrap_or_default();
    assert!(
        waited >= Duration::from_millis(NAP_MS / 5),
        "the burst waited {waits:?} after the first datagram; the engine's nap is {NAP_MS} ms"
    );
    let sent = waits.len() as u64 * (u64::from(BURST) + 1);

    let load = control.load().await.expect("load");
    let counters = load.counters;
    assert_eq!(counters.datagrams_received, sent, "{counters:?}");
    assert_eq!(counters.datagrams_sent, sent, "{counters:?}");
    assert_eq!(counters.send_failures, 0, "{counters:?}");
    assert!(
        counters.reads_deferred >= 2,
        "{BURST} datagrams waiting on one port take at least three turns of 32: {counters:?}"
    );
    relay.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_nap_beyond_the_bound_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = relay_config(&dir, 30800, MAX_WAKE_COALESCE_US + 1);
    match serve(config).await {
        Err(error) => assert_eq!(
            error.to_string(),
            "wake_coalesce_us is 50001: at most 50000 (50 ms) is allowed"
        ),
        Ok(_) => panic!("a relay with a 50.001 ms nap started"),
    }
}
