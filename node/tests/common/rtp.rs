//! RTP endpoints for the callers and the agents' phones, whose payloads say
//! who sent them. A caller sends a PCMU packet every 20 ms whose payload
//! carries its call number; an agent's endpoint answers each such packet
//! with one carrying the agent's number and the call number it heard. Each
//! side counts what arrives by tag. The relay forwards G.711 payloads
//! unchanged between two PCMU legs, so a tag that arrives intact is proof of
//! where the audio went; a payload that is not exactly a tag block repeated
//! (music on hold, announcements, a damaged packet) counts as untagged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// RTP payload type of PCMU.
const PCMU: u8 = 0;
/// The telephone-event payload type the callers offer (`caller.xml`).
const TELEPHONE_EVENT: u8 = 101;
/// 20 ms of 8 kHz G.711.
pub const PAYLOAD_LEN: usize = 160;
const BLOCK: usize = 16;
const MAGIC: &[u8; 4] = b"CRLN";

/// Who sent a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tag {
    /// The caller of call `call`.
    Caller {
        /// The call's number.
        call: u32,
    },
    /// Agent `agent`, answering audio of call `call`.
    Agent {
        /// The agent's number.
        agent: u32,
        /// The call it heard.
        call: u32,
    },
}

fn block(tag: Tag) -> [u8; BLOCK] {
    let (kind, call, agent) = match tag {
        Tag::Caller { call } => (b'C', call, u32::MAX),
        Tag::Agent { agent, call } => (b'A', call, agent),
    };
    let mut b = [0xFFu8; BLOCK];
    b[..4].copy_from_slice(MAGIC);
    b[4] = kind;
    b[5..9].copy_from_slice(&call.to_be_bytes());
    b[9..13].copy_from_slice(&agent.to_be_bytes());
    b
}

/// An RTP packet (PCMU, 20 ms) carrying `tag` in every 16 bytes of its payload.
pub fn packet(tag: Tag, seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, PCMU];
    p.extend(seq.to_be_bytes());
    p.extend((u32::from(seq) * 160).to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    let b = block(tag);
    for _ in 0..PAYLOAD_LEN / BLOCK {
        p.extend(b);
    }
    p
}

/// The tag of an RTP packet whose payload is exactly a tag block repeated.
pub fn tag_of(packet: &[u8]) -> Option<Tag> {
    let payload = packet.get(12..)?;
    if packet[1] & 0x7F != PCMU || payload.len() != PAYLOAD_LEN || &payload[..4] != MAGIC {
        return None;
    }
    let b = &payload[..BLOCK];
    if payload.chunks(BLOCK).any(|c| c != b) {
        return None;
    }
    let call = u32::from_be_bytes(b[5..9].try_into().ok()?);
    let agent = u32::from_be_bytes(b[9..13].try_into().ok()?);
    match b[4] {
        b'C' => Some(Tag::Caller { call }),
        b'A' => Some(Tag::Agent { agent, call }),
        _ => None,
    }
}

/// What an endpoint received and sent.
#[derive(Debug, Clone, Default)]
pub struct Heard {
    /// Packets sent.
    pub sent: u64,
    /// Tagged packets received, by tag.
    pub tagged: BTreeMap<Tag, u64>,
    /// Other packets received (prompts, music, damaged payloads).
    pub untagged: u64,
}

/// A caller's RTP endpoint: once told the relay's address (from the SDP
/// answer), it sends its call's tag every 20 ms until stopped.
pub struct CallerMedia {
    /// Its port (the caller's SDP offer names it).
    pub port: u16,
    relay: watch::Sender<Option<SocketAddr>>,
    stop: watch::Sender<bool>,
    keys: mpsc::UnboundedSender<u8>,
    heard: Arc<Mutex<Heard>>,
    audio: Audio,
}

/// The payloads a caller received, in arrival order.
type Audio = Arc<Mutex<Vec<Vec<u8>>>>;

/// Payloads a caller keeps, in arrival order: a minute of 20 ms frames.
const AUDIO_KEPT: usize = 3_000;

/// The RFC 4733 packets of one key press (event `event`, 0-15): three
/// updates, the first with the marker bit, and the end sent three times, all
/// with the press's timestamp; `seq` is the first packet's sequence number.
pub fn key_press(event: u8, seq: u16, timestamp: u32, ssrc: u32) -> Vec<Vec<u8>> {
    (0..6u16)
        .map(|i| {
            let marker = if i == 0 { 0x80 } else { 0 };
            let mut p = vec![0x80, marker | TELEPHONE_EVENT];
            p.extend(seq.wrapping_add(i).to_be_bytes());
            p.extend(timestamp.to_be_bytes());
            p.extend(ssrc.to_be_bytes());
            let end = if i >= 3 { 0x80 } else { 0 };
            let duration: u16 = 160 * (i.min(3) + 1);
            p.extend([event, end | 10]);
            p.extend(duration.to_be_bytes());
            p
        })
        .collect()
}

impl CallerMedia {
    /// Binds an endpoint for call `call` that runs for at most `limit`.
    pub async fn bind(call: u32, limit: Duration) -> CallerMedia {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind rtp");
        let port = socket.local_addr().expect("addr").port();
        let (relay, relay_rx) = watch::channel(None);
        let (stop, stop_rx) = watch::channel(false);
        let (keys, keys_rx) = mpsc::unbounded_channel();
        let heard = Arc::new(Mutex::new(Heard::default()));
        let audio = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(caller_loop(
            socket,
            call,
            relay_rx,
            stop_rx,
            keys_rx,
            (heard.clone(), audio.clone()),
            limit,
        ));
        CallerMedia {
            port,
            relay,
            stop,
            keys,
            heard,
            audio,
        }
    }

    /// The PCMU payloads received so far (the first minute), in order.
    pub fn audio(&self) -> Vec<Vec<u8>> {
        self.audio.lock().expect("audio").clone()
    }

    /// Presses a key (`0`-`9`, `*`, `#`): sends it as RFC 4733 events in
    /// the caller's stream.
    pub fn press(&self, key: char) {
        let event = match key {
            '0'..='9' => key as u8 - b'0',
            '*' => 10,
            '#' => 11,
            other => panic!("{other:?} is not a phone key"),
        };
        let _ = self.keys.send(event);
    }

    /// Starts (or moves) sending to the relay's `address`.
    pub fn send_to(&self, address: SocketAddr) {
        self.relay.send_replace(Some(address));
    }

    /// Stops sending (the call ended); receiving stops too.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// What it received so far.
    pub fn heard(&self) -> Heard {
        self.heard.lock().expect("heard").clone()
    }
}

fn record(heard: &Mutex<Heard>, packet: &[u8]) -> Option<Tag> {
    let tag = tag_of(packet);
    let mut h = heard.lock().expect("heard");
    match tag {
        Some(t) => *h.tagged.entry(t).or_default() += 1,
        None => h.untagged += 1,
    }
    tag
}

async fn caller_loop(
    socket: UdpSocket,
    call: u32,
    relay: watch::Receiver<Option<SocketAddr>>,
    mut stop: watch::Receiver<bool>,
    mut keys: mpsc::UnboundedReceiver<u8>,
    (heard, audio): (Arc<Mutex<Heard>>, Audio),
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut buf = [0u8; 2048];
    let mut seq: u16 = 0;
    while Instant::now() < deadline && !*stop.borrow() {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                if let Ok((n, _)) = received {
                    record(&heard, &buf[..n]);
                    let mut kept = audio.lock().expect("audio");
                    if n > 12 && buf[1] & 0x7F == PCMU && kept.len() < AUDIO_KEPT {
                        kept.push(buf[12..n].to_vec());
                    }
                }
            }
            _ = tick.tick() => {
                let to = *relay.borrow();
                if let Some(to) = to {
                    let p = packet(Tag::Caller { call }, seq, 0x1000_0000 | call);
                    if socket.send_to(&p, to).await.is_ok() {
                        heard.lock().expect("heard").sent += 1;
                    }
                    seq = seq.wrapping_add(1);
                }
            }
            Some(event) = keys.recv() => {
                let to = *relay.borrow();
                if let Some(to) = to {
                    let ssrc = 0x1000_0000 | call;
                    for p in key_press(event, seq, u32::from(seq) * 160, ssrc) {
                        let _ = socket.send_to(&p, to).await;
                        seq = seq.wrapping_add(1);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            changed = stop.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// An agent's phone's RTP endpoint: answers every caller-tagged packet with
/// one tagged with the agent's number and the call it heard, to where the
/// packet came from (the relay's leg of the current call).
pub struct AgentMedia {
    /// Its port (the agent's SDP answer names it).
    pub port: u16,
    stop: watch::Sender<bool>,
    heard: Arc<Mutex<Heard>>,
}

impl AgentMedia {
    /// Binds the endpoint of agent `agent`, running for at most `limit`.
    pub async fn bind(agent: u32, limit: Duration) -> AgentMedia {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind rtp");
        let port = socket.local_addr().expect("addr").port();
        let (stop, stop_rx) = watch::channel(false);
        let heard = Arc::new(Mutex::new(Heard::default()));
        tokio::spawn(agent_loop(socket, agent, stop_rx, heard.clone(), limit));
        AgentMedia { port, stop, heard }
    }

    /// What it received so far.
    pub fn heard(&self) -> Heard {
        self.heard.lock().expect("heard").clone()
    }
}

impl Drop for AgentMedia {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

impl Drop for CallerMedia {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn agent_loop(
    socket: UdpSocket,
    agent: u32,
    mut stop: watch::Receiver<bool>,
    heard: Arc<Mutex<Heard>>,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 2048];
    let mut seq: u16 = 0;
    while Instant::now() < deadline && !*stop.borrow() {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = received else { continue };
                if let Some(Tag::Caller { call }) = record(&heard, &buf[..n]) {
                    let p = packet(Tag::Agent { agent, call }, seq, 0x2000_0000 | agent);
                    if socket.send_to(&p, from).await.is_ok() {
                        heard.lock().expect("heard").sent += 1;
                    }
                    seq = seq.wrapping_add(1);
                }
            }
            changed = stop.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Follows the callers' step log (`caller.xml`, keyed by the caller's RTP
/// port): an SDP answer (183 or 200) tells the call's endpoint where the
/// relay's leg is; the end of the call stops it. Returns once every endpoint
/// was stopped, or after `limit`.
pub async fn follow_callers(
    log: std::path::PathBuf,
    media: Arc<BTreeMap<u16, CallerMedia>>,
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    let mut seen = 0;
    let mut stopped = std::collections::BTreeSet::new();
    while Instant::now() < deadline && stopped.len() < media.len() {
        let events = super::sipp::read_events(&log);
        for e in events.iter().skip(seen) {
            let Some(endpoint) = e.key.parse().ok().and_then(|p: u16| media.get(&p)) else {
                continue;
            };
            match e.kind.as_str() {
                "early" | "answered" => {
                    let address = e
                        .rest
                        .first()
                        .zip(e.rest.get(1))
                        .and_then(|(ip, port)| format!("{ip}:{port}").parse().ok());
                    if let Some(address) = address {
                        endpoint.send_to(address);
                    }
                }
                "bye_in" | "bye_out" | "ended" => {
                    endpoint.stop();
                    stopped.insert(endpoint.port);
                }
                _ => {}
            }
        }
        seen = events.len();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
