//! An RTP endpoint for tests and benchmarks (the `carillon-rtp-peer` binary): it sends
//! G.711 at 50 packets/s per stream from given local addresses to given targets, optionally
//! RFC 4733 digits and a move to a second local port, receives what comes back and reports
//! it (packets, payload checksums, frames matched against the far side's pattern, loss,
//! detected digits) and, when asked, the received audio payloads themselves
//! ([`StreamPlan::payloads_file`], read back with [`read_payloads`]).
//!
//! Payloads follow a deterministic pattern ([`pattern_frame`]) from a seed, so the receiver
//! and the tests can check, frame by frame, that what arrived is what the far side sent.

use crate::dtmf::{self, Digit, DtmfDetector, TelephoneEvent};
use crate::g711::G711Law;
use crate::rtp::{self, OutgoingHeader, Packet};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;

/// Samples (and G.711 bytes) per 20 ms frame.
pub const FRAME_BYTES: usize = 160;
/// Packet interval.
pub const FRAME_MS: u64 = 20;
/// Most frames a stream sends (10 minutes), so pattern tables stay bounded.
pub const MAX_FRAMES: u32 = 30_000;
/// Most streams one peer runs.
pub const MAX_STREAMS: usize = 2000;
/// Gap between two digits sent by a peer.
pub const DIGIT_GAP_MS: u64 = 100;
/// Duration of each digit sent by a peer.
pub const DIGIT_MS: u32 = 100;

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Frame `frame` of the pattern of `seed`: 160 G.711 codes, none of them a code that
/// decodes to zero (so recorded audio is never mistaken for silence).
pub fn pattern_frame(seed: u32, frame: u32) -> Vec<u8> {
    let mut state = (u64::from(seed) << 32) | u64::from(frame);
    let mut out = Vec::with_capacity(FRAME_BYTES);
    while out.len() < FRAME_BYTES {
        for byte in splitmix64(&mut state).to_le_bytes() {
            // 0x7F and 0xFF are mu-law zero; A-law has no zero code.
            out.push(if byte & 0x7F == 0x7F {
                byte ^ 0x01
            } else {
                byte
            });
        }
    }
    out.truncate(FRAME_BYTES);
    out
}

/// FNV-1a, 64 bits.
pub fn fnv1a(state: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(state, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// Start value of [`fnv1a`].
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// One stream of a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPlan {
    /// Local address to send from and receive on.
    pub local: SocketAddr,
    /// Where to send.
    pub remote: SocketAddr,
    /// Seed of the sent pattern (also the SSRC).
    pub seed: u32,
    /// Seed of the pattern the far side sends, to match received frames.
    #[serde(default)]
    pub expect_seed: Option<u32>,
    /// A second local address to move to (a phone changing network).
    #[serde(default)]
    pub switch_to: Option<SocketAddr>,
    /// When to move, in ms after the start.
    #[serde(default)]
    pub switch_after_ms: u64,
    /// Digits to send as RFC 4733 events.
    #[serde(default)]
    pub dtmf: String,
    /// When to send the first digit, in ms after the start.
    #[serde(default)]
    pub dtmf_at_ms: u64,
    /// A file to write the received audio payloads to, in sequence order (duplicates
    /// once), each as a 2-byte big-endian length and the bytes; see [`read_payloads`].
    #[serde(default)]
    pub payloads_file: Option<PathBuf>,
}

/// What a peer does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerPlan {
    /// Streams.
    pub streams: Vec<StreamPlan>,
    /// How long to send, in ms.
    pub duration_ms: u64,
    /// After the last send, receiving stops once no datagram came for this long (ms); a
    /// slow relay delays packets but does not lose them.
    pub linger_ms: u64,
    /// `PCMU` or `PCMA`.
    #[serde(default = "default_law")]
    pub law: String,
    /// Payload type of the audio.
    #[serde(default)]
    pub payload_type: u8,
    /// Payload type of telephone-event.
    #[serde(default = "default_event_pt")]
    pub event_payload_type: u8,
    /// Wall-clock start (ms since the Unix epoch), so that several peers start together;
    /// none: start at once.
    #[serde(default)]
    pub start_at_unix_ms: Option<u64>,
}

fn default_law() -> String {
    "PCMU".to_string()
}

fn default_event_pt() -> u8 {
    101
}

/// What one stream saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamReport {
    /// The stream's first local address.
    pub local: String,
    /// Audio packets sent.
    pub sent_audio_packets: u64,
    /// Telephone-event packets sent.
    pub sent_event_packets: u64,
    /// Audio packets sent from the second local address (after the move).
    pub sent_after_switch: u64,
    /// FNV-1a over the sent audio payloads, in order.
    pub sent_checksum: u64,
    /// Datagrams received (all sockets, valid RTP or not).
    pub received_packets: u64,
    /// Datagrams received per local address.
    pub received_by_socket: BTreeMap<String, u64>,
    /// Audio packets received.
    pub received_audio_packets: u64,
    /// Telephone-event packets received.
    pub received_event_packets: u64,
    /// Datagrams that were not valid RTP.
    pub received_invalid: u64,
    /// FNV-1a over the received audio payloads, in sequence order.
    pub received_checksum: u64,
    /// Distinct SSRCs received.
    pub received_ssrcs: Vec<u32>,
    /// Sequence numbers missing between the first and last received (any payload type).
    pub lost: u64,
    /// Packets received twice.
    pub duplicates: u64,
    /// Received audio frames equal to a frame of `expect_seed`'s pattern.
    pub frames_matched: u64,
    /// Received audio frames not equal to any frame of that pattern.
    pub frames_unmatched: u64,
    /// Frame indices matched (sorted).
    pub matched_frame_indices: Vec<u32>,
    /// Digits detected from received telephone-events, in order.
    pub dtmf_detected: String,
}

/// The report of a peer run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerReport {
    /// One per stream, in plan order.
    pub streams: Vec<StreamReport>,
}

/// Why a peer could not run.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The plan is not usable.
    #[error("bad plan: {0}")]
    BadPlan(String),
    /// A socket failed.
    #[error("socket {addr}: {source}")]
    Socket {
        /// Local address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The payloads file could not be written.
    #[error("payloads file {}: {source}", .path.display())]
    PayloadsFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The payloads of a [`StreamPlan::payloads_file`], in order; `None` when the bytes are not
/// such a file (a length runs past the end).
pub fn read_payloads(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    // Bound: each record consumes at least its 2-byte length.
    while !rest.is_empty() {
        let length = usize::from(u16::from_be_bytes([*rest.first()?, *rest.get(1)?]));
        out.push(rest.get(2..2 + length)?.to_vec());
        rest = &rest[2 + length..];
    }
    Some(out)
}

fn write_payloads(path: &Path, payloads: &[&[u8]]) -> Result<(), PeerError> {
    let mut bytes = Vec::new();
    for payload in payloads {
        // An RTP payload in a 2048-byte datagram always fits the 2-byte length.
        let length = u16::try_from(payload.len()).unwrap_or(u16::MAX);
        bytes.extend(length.to_be_bytes());
        bytes.extend(&payload[..usize::from(length)]);
    }
    std::fs::write(path, bytes).map_err(|source| PeerError::PayloadsFile {
        path: path.to_path_buf(),
        source,
    })
}

#[derive(Debug, Clone)]
struct Received {
    sequence: u16,
    payload_type: u8,
    ssrc: u32,
    timestamp: u32,
    payload: Vec<u8>,
}

#[derive(Debug, Default)]
struct SocketLog {
    datagrams: u64,
    invalid: u64,
    packets: Vec<Received>,
}

fn law_of(name: &str) -> Result<G711Law, PeerError> {
    match name.to_ascii_uppercase().as_str() {
        "PCMU" => Ok(G711Law::MuLaw),
        "PCMA" => Ok(G711Law::ALaw),
        other => Err(PeerError::BadPlan(format!("unknown law {other}"))),
    }
}

async fn bind(addr: SocketAddr) -> Result<Arc<UdpSocket>, PeerError> {
    UdpSocket::bind(addr)
        .await
        .map(Arc::new)
        .map_err(|source| PeerError::Socket { addr, source })
}

/// The event packets of a stream: (frame slot, event, marker, digit index).
fn event_schedule(plan: &StreamPlan) -> Result<Vec<(u64, TelephoneEvent, bool, usize)>, PeerError> {
    let mut out = Vec::new();
    let mut start_ms = plan.dtmf_at_ms;
    for (index, c) in plan.dtmf.chars().enumerate() {
        let digit =
            Digit::from_char(c).ok_or_else(|| PeerError::BadPlan(format!("bad digit {c}")))?;
        let packets = dtmf::generate(digit, DIGIT_MS, FRAME_MS as u32, 10);
        let mut last_ms = start_ms;
        for packet in packets {
            last_ms = start_ms + packet.send_offset_ms;
            out.push((last_ms / FRAME_MS, packet.event, packet.marker, index));
        }
        start_ms = last_ms + FRAME_MS + DIGIT_GAP_MS;
    }
    Ok(out)
}

#[allow(clippy::disallowed_methods)]
fn unix_now_ms() -> u64 {
    // A test tool: the shared wall clock lines up several peer processes.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Runs a plan to the end and reports.
pub async fn run(plan: PeerPlan) -> Result<PeerReport, PeerError> {
    if plan.streams.is_empty() || plan.streams.len() > MAX_STREAMS {
        return Err(PeerError::BadPlan(format!("1..={MAX_STREAMS} streams")));
    }
    let frames = plan.duration_ms / FRAME_MS;
    if frames > u64::from(MAX_FRAMES) {
        return Err(PeerError::BadPlan("duration above 10 minutes".into()));
    }
    // The pattern's codes are valid in both laws; the law only has to be a G.711 one.
    law_of(&plan.law)?;
    let mut sockets = Vec::new();
    let mut schedules = Vec::new();
    for stream in &plan.streams {
        let first = bind(stream.local).await?;
        let second = match stream.switch_to {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        sockets.push((first, second));
        schedules.push(event_schedule(stream)?);
    }
    if let Some(start) = plan.start_at_unix_ms {
        let wait = start.saturating_sub(unix_now_ms());
        tokio::time::sleep(Duration::from_millis(wait.min(60_000))).await;
    }
    // A test tool reads the clock itself (receive deadlines); the relay core never does.
    let clock = tokio::time::Instant::now();
    let activity = Arc::new(Activity::default());
    let mut readers = Vec::new();
    for (index, (first, second)) in sockets.iter().enumerate() {
        for socket in std::iter::once(first).chain(second.iter()) {
            let socket = Arc::clone(socket);
            let reader = read_until_idle(socket, clock, Arc::clone(&activity), plan.linger_ms);
            readers.push((index, tokio::spawn(reader)));
        }
    }
    let mut reports: Vec<StreamReport> = plan
        .streams
        .iter()
        .map(|s| StreamReport {
            local: s.local.to_string(),
            sent_checksum: FNV_OFFSET,
            ..StreamReport::default()
        })
        .collect();
    send_all(&plan, &sockets, &schedules, &mut reports).await;
    activity.sending_done.store(true, Ordering::Relaxed);
    let mut logs: Vec<Vec<(String, SocketLog)>> = plan.streams.iter().map(|_| Vec::new()).collect();
    for (index, reader) in readers {
        let (addr, log) = reader
            .await
            .map_err(|e| PeerError::BadPlan(format!("reader failed: {e}")))?;
        logs[index].push((addr, log));
    }
    for ((report, stream), stream_logs) in reports.iter_mut().zip(&plan.streams).zip(logs) {
        summarise(report, stream, &plan, stream_logs)?;
    }
    Ok(PeerReport { streams: reports })
}

async fn send_all(
    plan: &PeerPlan,
    sockets: &[(Arc<UdpSocket>, Option<Arc<UdpSocket>>)],
    schedules: &[Vec<(u64, TelephoneEvent, bool, usize)>],
    reports: &mut [StreamReport],
) {
    let frames = plan.duration_ms / FRAME_MS;
    let mut sequences: Vec<u16> = plan.streams.iter().map(|s| s.seed as u16).collect();
    let mut event_cursor = vec![0usize; plan.streams.len()];
    let mut digit_timestamps: Vec<HashMap<usize, u32>> =
        plan.streams.iter().map(|_| HashMap::new()).collect();
    let mut interval = tokio::time::interval(Duration::from_millis(FRAME_MS));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for frame in 0..frames {
        interval.tick().await;
        let audio_timestamp = (frame as u32).wrapping_mul(FRAME_BYTES as u32);
        for (index, stream) in plan.streams.iter().enumerate() {
            let switched = stream.switch_to.is_some() && frame * FRAME_MS >= stream.switch_after_ms;
            let socket = match (&sockets[index].1, switched) {
                (Some(second), true) => second,
                _ => &sockets[index].0,
            };
            let report = &mut reports[index];
            let payload = pattern_frame(stream.seed, frame as u32);
            let header = OutgoingHeader {
                marker: frame == 0,
                payload_type: plan.payload_type,
                sequence: sequences[index],
                timestamp: audio_timestamp,
                ssrc: stream.seed,
            };
            sequences[index] = sequences[index].wrapping_add(1);
            let bytes = rtp::build_packet(header, &payload);
            if socket.send_to(&bytes, stream.remote).await.is_ok() {
                report.sent_audio_packets += 1;
                report.sent_checksum = fnv1a(report.sent_checksum, &payload);
                if switched {
                    report.sent_after_switch += 1;
                }
            }
            let schedule = &schedules[index];
            while let Some((slot, event, marker, digit)) = schedule.get(event_cursor[index]) {
                if *slot > frame {
                    break;
                }
                event_cursor[index] += 1;
                let timestamp = *digit_timestamps[index]
                    .entry(*digit)
                    .or_insert(audio_timestamp);
                let header = OutgoingHeader {
                    marker: *marker,
                    payload_type: plan.event_payload_type,
                    sequence: sequences[index],
                    timestamp,
                    ssrc: stream.seed,
                };
                sequences[index] = sequences[index].wrapping_add(1);
                let bytes = rtp::build_packet(header, &event.encode());
                if socket.send_to(&bytes, stream.remote).await.is_ok() {
                    report.sent_event_packets += 1;
                }
            }
        }
    }
}

/// What the readers of a peer share: when any of them last received, and whether the
/// sending is over.
#[derive(Debug, Default)]
struct Activity {
    last_received_ms: AtomicU64,
    sending_done: AtomicBool,
}

/// Longest a peer keeps receiving after it stopped sending, whatever comes in.
const MAX_LINGER_MS: u64 = 30_000;

async fn read_until_idle(
    socket: Arc<UdpSocket>,
    clock: tokio::time::Instant,
    activity: Arc<Activity>,
    linger_ms: u64,
) -> (String, SocketLog) {
    let addr = socket
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut log = SocketLog::default();
    let mut buffer = vec![0u8; 2048];
    let mut done_at_ms: Option<u64> = None;
    let elapsed_ms = || u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    // Bound: ends at most MAX_LINGER_MS after the sending.
    loop {
        match tokio::time::timeout(Duration::from_millis(50), socket.recv_from(&mut buffer)).await {
            Ok(Ok((len, _from))) => {
                activity
                    .last_received_ms
                    .store(elapsed_ms(), Ordering::Relaxed);
                log.datagrams += 1;
                let bytes = &buffer[..len];
                match rtp::classify(bytes) {
                    Ok(Packet::Rtp(header)) => log.packets.push(Received {
                        sequence: header.sequence,
                        payload_type: header.payload_type,
                        ssrc: header.ssrc,
                        timestamp: header.timestamp,
                        payload: header.payload(bytes).to_vec(),
                    }),
                    _ => log.invalid += 1,
                }
            }
            Ok(Err(_)) | Err(_) => {
                if !activity.sending_done.load(Ordering::Relaxed) {
                    continue;
                }
                let now_ms = elapsed_ms();
                let done_at = *done_at_ms.get_or_insert(now_ms);
                let last = activity.last_received_ms.load(Ordering::Relaxed);
                let idle = now_ms.saturating_sub(last.max(done_at)) >= linger_ms;
                if idle || now_ms.saturating_sub(done_at) >= MAX_LINGER_MS {
                    return (addr, log);
                }
            }
        }
    }
}

fn summarise(
    report: &mut StreamReport,
    stream: &StreamPlan,
    plan: &PeerPlan,
    logs: Vec<(String, SocketLog)>,
) -> Result<(), PeerError> {
    let mut packets = Vec::new();
    for (addr, log) in logs {
        report.received_packets += log.datagrams;
        report.received_invalid += log.invalid;
        report.received_by_socket.insert(addr, log.datagrams);
        packets.extend(log.packets);
    }
    // Extend sequence numbers relative to the first packet (runs are short).
    let base = packets.first().map_or(0, |p| p.sequence);
    let extended = |s: u16| i64::from(s.wrapping_sub(base) as i16);
    let mut seen = BTreeSet::new();
    let mut audio: Vec<(i64, &Received)> = Vec::new();
    let mut detector = DtmfDetector::default();
    let mut ssrcs = BTreeSet::new();
    for (arrival, packet) in packets.iter().enumerate() {
        let key = extended(packet.sequence);
        ssrcs.insert(packet.ssrc);
        if !seen.insert(key) {
            report.duplicates += 1;
            continue;
        }
        if packet.payload_type == plan.event_payload_type {
            report.received_event_packets += 1;
            if let Ok(event) = TelephoneEvent::decode(&packet.payload) {
                for digit in detector.on_packet(arrival as u64, packet.timestamp, event) {
                    report.dtmf_detected.push(digit.digit.as_char());
                }
            }
        } else {
            report.received_audio_packets += 1;
            audio.push((key, packet));
        }
    }
    if let Some(digit) = detector.on_tick(u64::MAX) {
        report.dtmf_detected.push(digit.digit.as_char());
    }
    if let (Some(first), Some(last)) = (seen.first(), seen.last()) {
        report.lost = u64::try_from(last - first + 1).unwrap_or(0) - seen.len() as u64;
    }
    report.received_ssrcs = ssrcs.into_iter().collect();
    audio.sort_by_key(|(key, _)| *key);
    report.received_checksum = audio
        .iter()
        .fold(FNV_OFFSET, |h, (_, p)| fnv1a(h, &p.payload));
    if let Some(path) = &stream.payloads_file {
        let payloads: Vec<&[u8]> = audio.iter().map(|(_, p)| p.payload.as_slice()).collect();
        write_payloads(path, &payloads)?;
    }
    if let Some(seed) = stream.expect_seed {
        let frames = (plan.duration_ms / FRAME_MS + 50).min(u64::from(MAX_FRAMES)) as u32;
        let table: HashMap<Vec<u8>, u32> =
            (0..frames).map(|k| (pattern_frame(seed, k), k)).collect();
        let mut matched = BTreeSet::new();
        for (_, packet) in &audio {
            match table.get(&packet.payload) {
                Some(k) => {
                    matched.insert(*k);
                }
                None => report.frames_unmatched += 1,
            }
        }
        report.frames_matched = matched.len() as u64;
        report.matched_frame_indices = matched.into_iter().collect();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_differ_by_frame_and_seed_and_avoid_zero_codes() {
        let a = pattern_frame(1, 0);
        assert_eq!(a.len(), FRAME_BYTES);
        assert_ne!(a, pattern_frame(1, 1));
        assert_ne!(a, pattern_frame(2, 0));
        assert_eq!(a, pattern_frame(1, 0));
        for k in 0..200 {
            let frame = pattern_frame(7, k);
            assert!(frame.iter().all(|b| b & 0x7F != 0x7F));
            assert!(G711Law::MuLaw.decode(&frame).iter().all(|s| *s != 0));
        }
    }

    #[test]
    fn digits_are_scheduled_one_after_the_other() {
        let plan = StreamPlan {
            local: "127.0.0.1:1".parse().expect("addr"),
            remote: "127.0.0.1:2".parse().expect("addr"),
            seed: 1,
            expect_seed: None,
            switch_to: None,
            switch_after_ms: 0,
            dtmf: "12".into(),
            dtmf_at_ms: 200,
            payloads_file: None,
        };
        let schedule = event_schedule(&plan).expect("schedule");
        let first: Vec<_> = schedule.iter().filter(|e| e.3 == 0).collect();
        let second: Vec<_> = schedule.iter().filter(|e| e.3 == 1).collect();
        assert_eq!(first[0].0, 10, "first digit at 200 ms");
        assert!(first[0].2, "marker on the first packet");
        assert_eq!(first.iter().filter(|e| e.1.end).count(), 3);
        assert!(second[0].0 > first.last().expect("packets").0);
        let mut bad = plan.clone();
        bad.dtmf = "x".into();
        assert!(event_schedule(&bad).is_err());
    }

    #[test]
    fn payloads_files_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("payloads");
        let frames: [&[u8]; 3] = [&[1; 160], &[], &[2, 3]];
        write_payloads(&path, &frames).expect("write");
        let bytes = std::fs::read(&path).expect("read");
        assert_eq!(bytes.len(), 3 * 2 + 162);
        let read = read_payloads(&bytes).expect("parses");
        assert_eq!(read, frames.map(<[u8]>::to_vec).to_vec());
        assert_eq!(read_payloads(&bytes[..bytes.len() - 1]), None, "a cut file");
        assert_eq!(read_payloads(&[0]), None, "half a length");
    }
}
