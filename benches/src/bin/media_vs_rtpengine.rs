//! Relayed G.711 calls per core: Carillon's media relay (`carillon-relay`, whose
//! engine is one thread) beside rtpengine 10.5 (userspace
//! forwarding, `--num-threads=1`), both pinned to core 0, driven by this one
//! generator (pinned to core 1 by `benches/media_vs_rtpengine.sh`, which also
//! starts and stops both relays).
//!
//! For each level of concurrent calls, each run sets up the calls (Carillon over
//! its HTTP control API, rtpengine with ng `offer`/`answer` over UDP), sends
//! PCMU at 50 packets/s on both legs of every call, from two generator sockets
//! (side A and side B, many flows each), then removes the calls. Every packet
//! carries its send time (monotonic, ns) and its flow and number in the payload,
//! so the receiver measures latency (receive time minus send time) and loss
//! exactly. The same traffic sent directly from side A to side B, with no relay,
//! is the generator's own loopback baseline; it runs at every level in every run
//! and the added latency is the relayed latency minus that baseline.
//!
//! CPU time per forwarded packet: utime+stime of the relay process (all its
//! threads, `/proc/<pid>/stat`) over the measured window, divided by the
//! packets the generator received in that window.
//!
//! A level is sustained when the median loss of the runs is at most
//! `--max-loss` (default 0.01 %), a packet more than 60 ms late counting as
//! lost (a phone's jitter buffer would discard it; without this a relay that
//! falls behind loses nothing for seconds, its ports' kernel buffers holding the
//! backlog). The first `--warmup-ms` of each run are not measured. A system that fails a level is not driven at
//! higher levels. A run where the generator could not keep its own schedule is
//! flagged (`gen-limited`) and says nothing about the relay.
//!
//! Options: `--calls 100,250,...` `--runs 3` `--seconds 8` `--warmup-ms 1000`
//! `--max-loss 0.01` (percent) `--carillon-pid P` `--carillon-control ADDR`
//! `--rtpengine-pid P` `--rtpengine-ng ADDR` `--systems carillon,rtpengine`.

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most calls one level may have (each call holds 4 relay ports and, in Carillon,
/// 8 descriptors).
const MAX_CALLS: usize = 2400;
/// Longest run.
const MAX_SECONDS: u64 = 60;
/// Most runs per level.
const MAX_RUNS: usize = 9;
/// Packets per second per stream (G.711, 20 ms).
const PACKETS_PER_SECOND: u64 = 50;
/// RTP header + 160 bytes of PCMU.
const PACKET_LEN: usize = 12 + 160;
/// Histogram: 1 us buckets up to this many us; later arrivals go to the last.
const HISTOGRAM_US: usize = 200_000;
/// A packet later than this (a jitter buffer's depth) is as good as lost to a
/// phone: it counts as lost. It is what tells a relay that keeps up from one
/// that queues without bound (the kernel buffers of its ports hold seconds of
/// 50 packets/s, so true drops come late).
const LATE_US: u64 = 60_000;
/// After the last send, receivers stop once nothing came for this long.
const LINGER_QUIET: Duration = Duration::from_millis(300);
/// ... and in any case after this long.
const LINGER_MAX: Duration = Duration::from_secs(3);
/// How long a receiver naps when its socket is empty (the kernel adds its
/// timer slack, ~50 us); it bounds the error of a receive timestamp, the same
/// for the relays and the baseline.
const RECEIVE_NAP: Duration = Duration::from_micros(20);
/// Receive buffer asked for the generator's two sockets (the kernel caps it at
/// 2 x net.core.rmem_max).
const GENERATOR_RCVBUF: usize = 8 << 20;
/// A run is generator-limited if the sender ended further behind its schedule
/// than this.
const MAX_SEND_LAG: Duration = Duration::from_millis(20);

const SIDE_A: &str = "127.0.0.73";
const SIDE_B: &str = "127.0.0.74";

#[allow(clippy::disallowed_methods)] // a benchmark measures real time
fn now() -> Instant {
    Instant::now()
}

/// What to run: from the command line (`benches/media_vs_rtpengine.sh` passes the relays'
/// pids and addresses).
#[derive(Debug, Clone, clap::Parser)]
struct Options {
    /// Call levels, stepped up in this order.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 250, 350, 450, 550, 700, 900, 1200])]
    calls: Vec<usize>,
    /// Runs per level and system (medians are reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Length of one run, in seconds.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Start of each run left out of the figures.
    #[arg(long, default_value_t = 1000)]
    warmup_ms: u64,
    /// Most loss (percent, lost or late) at which a level counts as sustained.
    #[arg(long = "max-loss", default_value_t = 0.01)]
    max_loss_percent: f64,
    /// Systems to drive: carillon, rtpengine.
    #[arg(long, value_delimiter = ',', default_values_t = [String::from("carillon"), String::from("rtpengine")])]
    systems: Vec<String>,
    /// Carillon relay's pid (for its CPU time).
    #[arg(long)]
    carillon_pid: Option<u32>,
    /// Carillon relay's HTTP control API.
    #[arg(long, default_value = "http://127.0.0.71:19171")]
    carillon_control: String,
    /// rtpengine's pid (for its CPU time).
    #[arg(long)]
    rtpengine_pid: Option<u32>,
    /// rtpengine's ng control address.
    #[arg(long, default_value = "127.0.0.72:22222")]
    rtpengine_ng: SocketAddr,
}

fn options() -> Result<Options> {
    let o = <Options as clap::Parser>::parse();
    if o.calls.is_empty() || o.calls.iter().any(|&c| c == 0 || c > MAX_CALLS) {
        bail!("--calls values must be 1..={MAX_CALLS}");
    }
    if o.runs == 0 || o.runs > MAX_RUNS {
        bail!("--runs must be 1..={MAX_RUNS}");
    }
    if o.seconds == 0 || o.seconds > MAX_SECONDS || o.warmup_ms >= o.seconds * 1000 {
        bail!("--seconds must be 1..={MAX_SECONDS} and longer than --warmup-ms");
    }
    for s in &o.systems {
        if s != "carillon" && s != "rtpengine" {
            bail!("unknown system {s} (carillon, rtpengine)");
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------- traffic

/// One direction of one call: sent from side `from` (0 = A, 1 = B) to `to`.
#[derive(Debug, Clone, Copy)]
struct Flow {
    from: usize,
    to: SocketAddr,
}

/// What one traffic run measured.
#[derive(Debug, Clone, Default)]
struct Traffic {
    /// Packets sent in the measured window.
    sent: u64,
    /// Of those, packets received.
    received: u64,
    /// Of those, packets received later than [`LATE_US`].
    late: u64,
    /// Packets received that were sent before the window (warm-up) or twice.
    other_received: u64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
    /// CPU seconds of the relay process over the window (None: no pid).
    relay_cpu_s: Option<f64>,
    /// Seconds the relay's threads waited for the CPU (runnable) over the window.
    relay_wait_s: Option<f64>,
    /// CPU seconds of the generator over the window.
    generator_cpu_s: f64,
    /// The window's length.
    window_s: f64,
    /// Sends that failed in the generator (its socket buffer full).
    send_errors: u64,
    /// How far behind schedule the sender was at the end.
    end_lag: Duration,
}

impl Traffic {
    fn loss_percent(&self) -> f64 {
        if self.sent == 0 {
            return 100.0;
        }
        (self.sent.saturating_sub(self.received) + self.late) as f64 * 100.0 / self.sent as f64
    }
    fn generator_limited(&self) -> bool {
        self.end_lag > MAX_SEND_LAG || self.send_errors > 0
    }
    fn cpu_us_per_packet(&self) -> Option<f64> {
        self.relay_cpu_s
            .map(|cpu| cpu * 1e6 / (self.received.max(1)) as f64)
    }
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').context("stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime 15.
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    Ok((utime + stime) / clock_ticks())
}

/// Time the threads of a process spent runnable but waiting for a CPU, in
/// seconds (sum of the second field of `/proc/<pid>/task/*/schedstat`): what the
/// other programs on the relay's core took from it.
fn run_queue_wait_seconds(pid: &str) -> Result<f64> {
    let mut total = 0.0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = task?.path().join("schedstat");
        // A thread may end meanwhile.
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Some(wait) = text.split_whitespace().nth(1) {
                total += wait.parse::<f64>().unwrap_or(0.0) / 1e9;
            }
        }
    }
    Ok(total)
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

struct ReceiverResult {
    histogram: Vec<u32>,
    received: u64,
    late: u64,
    other: u64,
}

fn receive(
    socket: UdpSocket,
    start: Instant,
    warmup_ns: u64,
    end_ns: u64,
    stop: Arc<AtomicBool>,
) -> ReceiverResult {
    let mut histogram = vec![0u32; HISTOGRAM_US + 1];
    let (mut received, mut late, mut other) = (0u64, 0u64, 0u64);
    let mut buffer = [0u8; 2048];
    let mut last_packet = now();
    loop {
        match socket.recv_from(&mut buffer) {
            Ok((len, _)) => {
                let at = now();
                last_packet = at;
                if len < 12 + 16 {
                    other += 1;
                    continue;
                }
                let mut sent = [0u8; 8];
                sent.copy_from_slice(&buffer[12..20]);
                let sent_ns = u64::from_le_bytes(sent);
                let at_ns = at.duration_since(start).as_nanos() as u64;
                if sent_ns < warmup_ns || sent_ns >= end_ns {
                    other += 1;
                    continue;
                }
                received += 1;
                let us = at_ns.saturating_sub(sent_ns) / 1000;
                if us > LATE_US {
                    late += 1;
                }
                let us = us as usize;
                histogram[us.min(HISTOGRAM_US)] += 1;
            }
            // Nothing queued: nap briefly instead of blocking in recv. A blocked
            // receiver would make every relayed packet's sendto wake it (a
            // cross-core wake-up, charged to the relay's CPU time by the
            // loopback device); phones on other hosts cost a relay no such thing.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(RECEIVE_NAP);
            }
            Err(_) => {}
        }
        if stop.load(Ordering::Relaxed)
            && (last_packet.elapsed() >= LINGER_QUIET
                || start.elapsed().as_nanos() as u64 > end_ns + LINGER_MAX.as_nanos() as u64)
        {
            break;
        }
    }
    ReceiverResult {
        histogram,
        received,
        late,
        other,
    }
}

fn percentile(histogram: &[u64], total: u64, q: f64) -> f64 {
    if total == 0 {
        return f64::NAN;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (us, &count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return us as f64;
        }
    }
    histogram.len() as f64
}

/// Sends every flow at 50 packets/s for `seconds`, spread evenly in time,
/// from the two side sockets, and measures what comes back.
fn run_traffic(
    sockets: &[UdpSocket; 2],
    flows: &[Flow],
    seconds: u64,
    warmup_ms: u64,
    relay_pid: Option<u32>,
) -> Result<Traffic> {
    // Drain what an earlier run left behind.
    for s in sockets {
        s.set_nonblocking(true)?;
        let mut buffer = [0u8; 2048];
        for _ in 0..1_000_000 {
            if s.recv_from(&mut buffer).is_err() {
                break;
            }
        }
    }
    let start = now();
    let warmup_ns = warmup_ms * 1_000_000;
    let end_ns = seconds * 1_000_000_000;
    let stop = Arc::new(AtomicBool::new(false));
    let mut receivers = Vec::new();
    for s in sockets {
        let socket = s.try_clone()?;
        let stop = stop.clone();
        receivers.push(std::thread::spawn(move || {
            receive(socket, start, warmup_ns, end_ns, stop)
        }));
    }
    // A monitor samples CPU times at the window's edges.
    let pid = relay_pid.map(|p| p.to_string());
    type Sample = (Option<f64>, Option<f64>, f64, f64);
    let monitor = std::thread::spawn(move || -> Result<Sample> {
        let at = |ns: u64| {
            let target = start + Duration::from_nanos(ns);
            let wait = target.saturating_duration_since(now());
            std::thread::sleep(wait);
        };
        at(warmup_ns);
        let t0 = now();
        let relay0 = pid.as_deref().map(cpu_seconds).transpose()?;
        let wait0 = pid.as_deref().map(run_queue_wait_seconds).transpose()?;
        let self0 = cpu_seconds("self")?;
        at(end_ns);
        let relay1 = pid.as_deref().map(cpu_seconds).transpose()?;
        let wait1 = pid.as_deref().map(run_queue_wait_seconds).transpose()?;
        let self1 = cpu_seconds("self")?;
        let window = t0.elapsed().as_secs_f64();
        Ok((
            relay1.zip(relay0).map(|(b, a)| b - a),
            wait1.zip(wait0).map(|(b, a)| b - a),
            self1 - self0,
            window,
        ))
    });

    let interval_ns = 1_000_000_000 / PACKETS_PER_SECOND;
    let per_flow_gap_ns = interval_ns as f64 / flows.len() as f64;
    let total_packets = (end_ns / interval_ns) * flows.len() as u64;
    let mut packet = [0xFFu8; PACKET_LEN];
    packet[0] = 0x80; // V=2, no padding, no extension, no CSRC
    packet[1] = 0; // PCMU, no marker
    let mut sent_in_window = 0u64;
    let mut send_errors = 0u64;
    let mut next = 0u64;
    let mut end_lag = Duration::ZERO;
    while next < total_packets {
        let elapsed_ns = start.elapsed().as_nanos() as u64;
        let due = ((elapsed_ns as f64 / per_flow_gap_ns) as u64 + 1).min(total_packets);
        if next >= due {
            let due_at = ((next as f64) * per_flow_gap_ns) as u64;
            let wait = due_at.saturating_sub(elapsed_ns);
            std::thread::sleep(Duration::from_nanos(wait.max(20_000)));
            continue;
        }
        while next < due {
            let flow_index = (next % flows.len() as u64) as usize;
            let number = next / flows.len() as u64;
            let flow = flows[flow_index];
            let seq = number as u16;
            packet[2..4].copy_from_slice(&seq.to_be_bytes());
            packet[4..8].copy_from_slice(&((number as u32).wrapping_mul(160)).to_be_bytes());
            packet[8..12].copy_from_slice(&(flow_index as u32 + 1).to_be_bytes());
            let sent_ns = start.elapsed().as_nanos() as u64;
            packet[12..20].copy_from_slice(&sent_ns.to_le_bytes());
            packet[20..24].copy_from_slice(&(flow_index as u32).to_le_bytes());
            packet[24..28].copy_from_slice(&(number as u32).to_le_bytes());
            // A failed send (the generator's own buffer full) is the generator's
            // fault, not the relay's: counted apart, not as sent.
            let ok = sockets[flow.from].send_to(&packet, flow.to).is_ok();
            if sent_ns >= warmup_ns && sent_ns < end_ns {
                if ok {
                    sent_in_window += 1;
                } else {
                    send_errors += 1;
                }
            }
            next += 1;
        }
    }
    let finished_ns = start.elapsed().as_nanos() as u64;
    end_lag = end_lag.max(Duration::from_nanos(finished_ns.saturating_sub(end_ns)));
    stop.store(true, Ordering::Relaxed);
    let mut histogram = vec![0u64; HISTOGRAM_US + 1];
    let (mut received, mut late, mut other) = (0, 0, 0);
    for r in receivers {
        let r = r.join().map_err(|_| anyhow::anyhow!("receiver panicked"))?;
        for (h, c) in histogram.iter_mut().zip(&r.histogram) {
            *h += u64::from(*c);
        }
        received += r.received;
        late += r.late;
        other += r.other;
    }
    let (relay_cpu_s, relay_wait_s, generator_cpu_s, window_s) = monitor
        .join()
        .map_err(|_| anyhow::anyhow!("monitor panicked"))??;
    let max_us = histogram
        .iter()
        .rposition(|&c| c > 0)
        .map_or(f64::NAN, |i| i as f64);
    Ok(Traffic {
        sent: sent_in_window,
        received,
        late,
        other_received: other,
        p50_us: percentile(&histogram, received, 0.50),
        p99_us: percentile(&histogram, received, 0.99),
        max_us,
        relay_cpu_s,
        relay_wait_s,
        generator_cpu_s,
        window_s,
        send_errors,
        end_lag,
    })
}

fn side_sockets() -> Result<[UdpSocket; 2]> {
    let make = |ip: &str| -> Result<UdpSocket> {
        let socket = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        socket.set_recv_buffer_size(GENERATOR_RCVBUF)?;
        socket.set_send_buffer_size(GENERATOR_RCVBUF)?;
        let addr: SocketAddr = format!("{ip}:0").parse()?;
        socket.bind(&addr.into())?;
        Ok(socket.into())
    };
    Ok([make(SIDE_A)?, make(SIDE_B)?])
}

fn sdp(addr: SocketAddr) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=bench\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n",
        ip = addr.ip(),
        port = addr.port()
    )
}

/// The media address of an SDP (first `c=` line, first `m=audio` port).
fn sdp_address(sdp: &str) -> Result<SocketAddr> {
    let ip: IpAddr = sdp
        .lines()
        .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))
        .context("no c= line")?
        .trim()
        .parse()?;
    let port: u16 = sdp
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))
        .and_then(|rest| rest.split_whitespace().next())
        .context("no m=audio line")?
        .parse()?;
    Ok(SocketAddr::new(ip, port))
}

// ---------------------------------------------------------------- Carillon

/// Sets up `calls` sessions; returns (A -> relay leg a, B -> relay leg b) per call.
async fn carillon_setup(
    http: &reqwest::Client,
    base: &str,
    tag: &str,
    calls: usize,
    sides: [SocketAddr; 2],
) -> Result<Vec<[SocketAddr; 2]>> {
    let mut out = vec![[sides[0]; 2]; calls];
    for chunk_start in (0..calls).step_by(32) {
        let mut set = tokio::task::JoinSet::new();
        for i in chunk_start..(chunk_start + 32).min(calls) {
            let (http, base, id) = (http.clone(), base.to_string(), format!("{tag}-{i}"));
            set.spawn(async move {
                let r = http
                    .post(format!("{base}/media/v1/sessions"))
                    .json(&json!({"session_id": id}))
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("create session {id}: {} {}", r.status(), r.text().await?);
                }
                let mut legs = [sides[0]; 2];
                for (n, leg) in ["a", "b"].into_iter().enumerate() {
                    let r = http
                        .put(format!("{base}/media/v1/sessions/{id}/legs/{leg}"))
                        .json(&json!({"remote_sdp": sdp(sides[n])}))
                        .send()
                        .await?;
                    if !r.status().is_success() {
                        bail!("leg {leg} of {id}: {} {}", r.status(), r.text().await?);
                    }
                    let body: serde_json::Value = r.json().await?;
                    legs[n] = sdp_address(body["local_sdp"].as_str().context("local_sdp")?)?;
                }
                Ok((i, legs))
            });
        }
        while let Some(done) = set.join_next().await {
            let (i, legs) = done??;
            out[i] = legs;
        }
    }
    Ok(out)
}

async fn carillon_teardown(
    http: &reqwest::Client,
    base: &str,
    tag: &str,
    calls: usize,
) -> Result<()> {
    for chunk_start in (0..calls).step_by(32) {
        let mut set = tokio::task::JoinSet::new();
        for i in chunk_start..(chunk_start + 32).min(calls) {
            let (http, url) = (http.clone(), format!("{base}/media/v1/sessions/{tag}-{i}"));
            set.spawn(async move { http.delete(url).send().await.map(|r| r.status()) });
        }
        while let Some(done) = set.join_next().await {
            let status = done??;
            if !status.is_success() {
                bail!("delete session: {status}");
            }
        }
    }
    let load: serde_json::Value = http
        .get(format!("{base}/media/v1/load"))
        .send()
        .await?
        .json()
        .await?;
    if load["sessions"].as_u64() != Some(0) {
        bail!("sessions left on the Carillon relay: {load}");
    }
    Ok(())
}

// ---------------------------------------------------------------- rtpengine (ng)

#[derive(Debug, Clone, PartialEq)]
enum Bencode {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Bencode>),
    Dict(BTreeMap<Vec<u8>, Bencode>),
}

impl Bencode {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Bencode::Int(i) => out.extend_from_slice(format!("i{i}e").as_bytes()),
            Bencode::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Bencode::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode(out);
                }
                out.push(b'e');
            }
            Bencode::Dict(map) => {
                out.push(b'd');
                for (k, v) in map {
                    Bencode::Bytes(k.clone()).encode(out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    fn decode(input: &[u8]) -> Result<(Bencode, &[u8])> {
        let first = *input.first().context("bencode: empty")?;
        match first {
            b'i' => {
                let end = input
                    .iter()
                    .position(|&c| c == b'e')
                    .context("bencode int")?;
                let value = std::str::from_utf8(&input[1..end])?.parse()?;
                Ok((Bencode::Int(value), &input[end + 1..]))
            }
            b'l' => {
                let mut rest = &input[1..];
                let mut items = Vec::new();
                while rest.first() != Some(&b'e') {
                    let (item, r) = Bencode::decode(rest)?;
                    items.push(item);
                    rest = r;
                }
                Ok((Bencode::List(items), &rest[1..]))
            }
            b'd' => {
                let mut rest = &input[1..];
                let mut map = BTreeMap::new();
                while rest.first() != Some(&b'e') {
                    let (key, r) = Bencode::decode(rest)?;
                    let (value, r) = Bencode::decode(r)?;
                    let Bencode::Bytes(key) = key else {
                        bail!("bencode: non-string key");
                    };
                    map.insert(key, value);
                    rest = r;
                }
                Ok((Bencode::Dict(map), &rest[1..]))
            }
            b'0'..=b'9' => {
                let colon = input
                    .iter()
                    .position(|&c| c == b':')
                    .context("bencode str")?;
                let len: usize = std::str::from_utf8(&input[..colon])?.parse()?;
                let body = input
                    .get(colon + 1..colon + 1 + len)
                    .context("bencode: short string")?;
                Ok((Bencode::Bytes(body.to_vec()), &input[colon + 1 + len..]))
            }
            other => bail!("bencode: unexpected byte {other}"),
        }
    }

    fn get(&self, key: &str) -> Option<&Bencode> {
        match self {
            Bencode::Dict(map) => map.get(key.as_bytes()),
            _ => None,
        }
    }

    fn text(&self) -> Option<String> {
        match self {
            Bencode::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

fn dict(pairs: &[(&str, &str)]) -> Bencode {
    Bencode::Dict(
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), Bencode::Bytes(v.as_bytes().to_vec())))
            .collect(),
    )
}

/// An ng client: one UDP socket, one request at a time, retried on timeout.
struct Ng {
    socket: UdpSocket,
    server: SocketAddr,
    cookie: u64,
}

impl Ng {
    fn new(server: SocketAddr) -> Result<Ng> {
        let socket = UdpSocket::bind("127.0.0.73:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(500)))?;
        Ok(Ng {
            socket,
            server,
            cookie: 0,
        })
    }

    fn request(&mut self, message: &Bencode) -> Result<Bencode> {
        self.cookie += 1;
        let cookie = format!("c{}", self.cookie);
        let mut datagram = format!("{cookie} ").into_bytes();
        message.encode(&mut datagram);
        let mut buffer = vec![0u8; 65536];
        for _attempt in 0..5 {
            self.socket.send_to(&datagram, self.server)?;
            loop {
                match self.socket.recv_from(&mut buffer) {
                    Ok((len, _)) => {
                        let reply = &buffer[..len];
                        let Some(space) = reply.iter().position(|&c| c == b' ') else {
                            continue;
                        };
                        if &reply[..space] != cookie.as_bytes() {
                            continue; // a late answer to an earlier attempt
                        }
                        let (value, _) = Bencode::decode(&reply[space + 1..])?;
                        match value.get("result").and_then(Bencode::text).as_deref() {
                            Some("ok") | Some("pong") => return Ok(value),
                            _ => bail!("rtpengine refused: {value:?}"),
                        }
                    }
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        break
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        bail!("rtpengine did not answer at {}", self.server)
    }

    fn ping(&mut self) -> Result<()> {
        self.request(&dict(&[("command", "ping")])).map(|_| ())
    }
}

fn rtpengine_setup(
    ng: &mut Ng,
    tag: &str,
    calls: usize,
    sides: [SocketAddr; 2],
) -> Result<Vec<[SocketAddr; 2]>> {
    let mut out = Vec::with_capacity(calls);
    for i in 0..calls {
        let call_id = format!("{tag}-{i}");
        let offer = ng.request(&dict(&[
            ("command", "offer"),
            ("call-id", &call_id),
            ("from-tag", "a"),
            ("sdp", &sdp(sides[0])),
        ]))?;
        // The offer's SDP goes to B: where B sends.
        let b_target = sdp_address(
            &offer
                .get("sdp")
                .and_then(Bencode::text)
                .context("offer sdp")?,
        )?;
        let answer = ng.request(&dict(&[
            ("command", "answer"),
            ("call-id", &call_id),
            ("from-tag", "a"),
            ("to-tag", "b"),
            ("sdp", &sdp(sides[1])),
        ]))?;
        let a_target = sdp_address(
            &answer
                .get("sdp")
                .and_then(Bencode::text)
                .context("answer sdp")?,
        )?;
        out.push([a_target, b_target]);
    }
    Ok(out)
}

fn rtpengine_teardown(ng: &mut Ng, tag: &str, calls: usize) -> Result<()> {
    for i in 0..calls {
        ng.request(&dict(&[
            ("command", "delete"),
            ("call-id", &format!("{tag}-{i}")),
            ("from-tag", "a"),
        ]))?;
    }
    Ok(())
}

// ---------------------------------------------------------------- driver

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum System {
    Baseline,
    Carillon,
    Rtpengine,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Baseline => "loopback baseline (no relay)",
            System::Carillon => "carillon",
            System::Rtpengine => "rtpengine 10.5",
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

fn flows_for(targets: &[[SocketAddr; 2]]) -> Vec<Flow> {
    // Call i: A sends to the relay's leg a, B to leg b.
    targets
        .iter()
        .flat_map(|t| [Flow { from: 0, to: t[0] }, Flow { from: 1, to: t[1] }])
        .collect()
}

fn main() -> Result<()> {
    let o = options()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let http = reqwest::Client::builder().no_proxy().build()?;
    let sockets = side_sockets()?;
    let sides = [sockets[0].local_addr()?, sockets[1].local_addr()?];
    let mut systems = vec![System::Baseline];
    let mut ng = None;
    if o.systems.iter().any(|s| s == "carillon") {
        runtime.block_on(async {
            for _ in 0..100 {
                if let Ok(r) = http
                    .get(format!("{}/media/v1/load", o.carillon_control))
                    .send()
                    .await
                {
                    if r.status().is_success() {
                        return Ok(());
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            bail!(
                "the Carillon relay does not answer at {}",
                o.carillon_control
            )
        })?;
        systems.push(System::Carillon);
    }
    if o.systems.iter().any(|s| s == "rtpengine") {
        let mut client = Ng::new(o.rtpengine_ng)?;
        let mut ok = false;
        for _ in 0..20 {
            if client.ping().is_ok() {
                ok = true;
                break;
            }
        }
        if !ok {
            bail!("rtpengine does not answer ng pings at {}", o.rtpengine_ng);
        }
        ng = Some(client);
        systems.push(System::Rtpengine);
    }
    eprintln!(
        "generator sides {} and {}; {} s runs ({} ms warm-up excluded), {} runs per level",
        sides[0], sides[1], o.seconds, o.warmup_ms, o.runs
    );

    let mut results: BTreeMap<(usize, System), Vec<Traffic>> = BTreeMap::new();
    let mut active: Vec<System> = systems.clone();
    let mut best: BTreeMap<System, usize> = BTreeMap::new();
    let mut log = Vec::new();
    let mut serial = 0;
    for &calls in &o.calls {
        if !active.iter().any(|&s| s != System::Baseline) {
            break;
        }
        for run in 0..o.runs {
            // Rotate the order so that no system always runs first.
            let mut order = active.clone();
            let len = order.len();
            order.rotate_left(run % len);
            for system in order {
                serial += 1;
                let tag = format!("bench{serial}");
                let setup_start = now();
                let (targets, pid) = match system {
                    System::Baseline => (
                        (0..calls).map(|_| [sides[1], sides[0]]).collect::<Vec<_>>(),
                        None,
                    ),
                    System::Carillon => (
                        runtime.block_on(carillon_setup(
                            &http,
                            &o.carillon_control,
                            &tag,
                            calls,
                            sides,
                        ))?,
                        o.carillon_pid,
                    ),
                    System::Rtpengine => (
                        rtpengine_setup(ng.as_mut().context("ng")?, &tag, calls, sides)?,
                        o.rtpengine_pid,
                    ),
                };
                let setup_s = setup_start.elapsed().as_secs_f64();
                let traffic =
                    run_traffic(&sockets, &flows_for(&targets), o.seconds, o.warmup_ms, pid)?;
                match system {
                    System::Baseline => {}
                    System::Carillon => runtime.block_on(carillon_teardown(
                        &http,
                        &o.carillon_control,
                        &tag,
                        calls,
                    ))?,
                    System::Rtpengine => {
                        rtpengine_teardown(ng.as_mut().context("ng")?, &tag, calls)?
                    }
                }
                let line = format!(
                    "{calls:>5} calls run {} {:<28} sent {:>8} lost {:>6} late {:>6} ({:.4} %) p50 {:>6.0} us p99 {:>6.0} us max {:>7.0} us \
                     relay cpu {} gen cpu {:.0} % setup {:.1} s, {} outside the window{}",
                    run + 1,
                    system.name(),
                    traffic.sent,
                    traffic.sent.saturating_sub(traffic.received),
                    traffic.late,
                    traffic.loss_percent(),
                    traffic.p50_us,
                    traffic.p99_us,
                    traffic.max_us,
                    traffic
                        .relay_cpu_s
                        .map(|c| format!(
                            "{:.0} % ({:.2} us/pkt, waited for the CPU {:.0} %)",
                            c * 100.0 / traffic.window_s,
                            traffic.cpu_us_per_packet().unwrap_or(f64::NAN),
                            traffic.relay_wait_s.unwrap_or(f64::NAN) * 100.0 / traffic.window_s
                        ))
                        .unwrap_or_else(|| "-".into()),
                    traffic.generator_cpu_s * 100.0 / traffic.window_s,
                    setup_s,
                    traffic.other_received,
                    if traffic.generator_limited() {
                        format!(" GEN-LIMITED (ended {} ms late, {} send errors)",
                            traffic.end_lag.as_millis(),
                            traffic.send_errors
                        )
                    } else {
                        String::new()
                    }
                );
                eprintln!("{line}");
                log.push(line);
                results.entry((calls, system)).or_default().push(traffic);
            }
        }
        for system in active.clone() {
            if system == System::Baseline {
                continue;
            }
            let runs = &results[&(calls, system)];
            let loss = median(&runs.iter().map(Traffic::loss_percent).collect::<Vec<_>>());
            if loss <= o.max_loss_percent {
                best.insert(system, calls);
            } else {
                active.retain(|&s| s != system);
            }
        }
    }

    // The table: medians per level and system.
    let mut table = vec![
        "| calls | system | runs | loss % (median; lost or > 60 ms late) | p50 us | p99 us | added p50 us | added p99 us | relay CPU % of core | CPU us / forwarded pkt | sustained |".to_string(),
        "|---|---|---|---|---|---|---|---|---|---|---|".to_string(),
    ];
    for (&(calls, system), runs) in &results {
        let m = |f: &dyn Fn(&Traffic) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
        let loss = m(&|t| t.loss_percent());
        let p50 = m(&|t| t.p50_us);
        let p99 = m(&|t| t.p99_us);
        let base = results.get(&(calls, System::Baseline));
        let base_m = |f: &dyn Fn(&Traffic) -> f64| {
            base.map_or(f64::NAN, |b| median(&b.iter().map(f).collect::<Vec<_>>()))
        };
        let (added50, added99) = if system == System::Baseline {
            ("-".to_string(), "-".to_string())
        } else {
            (
                format!("{:.0}", p50 - base_m(&|t| t.p50_us)),
                format!("{:.0}", p99 - base_m(&|t| t.p99_us)),
            )
        };
        let cpu_pct = m(&|t| t.relay_cpu_s.map_or(f64::NAN, |c| c * 100.0 / t.window_s));
        let cpu_pkt = m(&|t| t.cpu_us_per_packet().unwrap_or(f64::NAN));
        let limited = runs.iter().filter(|t| t.generator_limited()).count();
        table.push(format!(
            "| {calls} | {} | {} | {loss:.4} | {p50:.0} | {p99:.0} | {added50} | {added99} | {} | {} | {}{} |",
            system.name(),
            runs.len(),
            if cpu_pct.is_nan() { "-".into() } else { format!("{cpu_pct:.0}") },
            if cpu_pkt.is_nan() { "-".into() } else { format!("{cpu_pkt:.2}") },
            if system == System::Baseline {
                "-"
            } else if loss <= o.max_loss_percent {
                "yes"
            } else {
                "no"
            },
            if limited > 0 { format!(" ({limited} gen-limited)") } else { String::new() }
        ));
    }
    println!("{}", table.join("\n"));
    println!("\nevery run:");
    for line in &log {
        println!("{line}");
    }
    let top = |s: System| best.get(&s).copied().unwrap_or(0);
    let tested_max = o.calls.iter().copied().max().unwrap_or(0);
    let (c, r) = (top(System::Carillon), top(System::Rtpengine));
    println!(
        "\nmost calls sustained at <= {} % loss (median of {} runs of {} s; levels {:?}):",
        o.max_loss_percent, o.runs, o.seconds, o.calls
    );
    for (system, n) in [(System::Carillon, c), (System::Rtpengine, r)] {
        if systems.contains(&system) {
            println!(
                "  {}: {n}{}",
                system.name(),
                if n == tested_max {
                    " (the highest level tried: a lower bound)"
                } else {
                    ""
                }
            );
        }
    }
    if c > 0 && r > 0 {
        if c == tested_max && r == tested_max {
            println!(
                "  ratio carillon / rtpengine: not measured (both sustained the highest level \
                 tried; see calls per core below)"
            );
        } else {
            println!("  ratio carillon / rtpengine: {:.2}x", c as f64 / r as f64);
        }
        // Calls per core from CPU time: the relay's CPU per forwarded packet (median of the
        // runs) at the highest level both sustained, and 100 forwarded packets/s per call
        // (two legs at 50 packets/s). The cost per packet falls as load rises (more packets
        // per wake-up), so a level near saturation gives the figure closest to a full core.
        let level = c.min(r);
        let per_call = 2 * PACKETS_PER_SECOND;
        let per_core = |system: System| {
            results.get(&(level, system)).map(|runs| {
                let cost = median(
                    &runs
                        .iter()
                        .map(|t| t.cpu_us_per_packet().unwrap_or(f64::NAN))
                        .collect::<Vec<_>>(),
                );
                1e6 / (cost * per_call as f64)
            })
        };
        if let (Some(cc), Some(rc)) = (per_core(System::Carillon), per_core(System::Rtpengine)) {
            println!(
                "calls per core from CPU time at {level} calls (1 core / (CPU us per forwarded \
                 packet x {per_call} packets/s per call)):"
            );
            println!("  carillon: {cc:.0}");
            println!("  rtpengine 10.5: {rc:.0}");
            println!("  ratio carillon / rtpengine: {:.2}x", cc / rc);
        }
    }
    Ok(())
}
