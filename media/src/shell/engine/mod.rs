//! The engine: the one task that owns the sans-IO [`Relay`], its sockets and recording
//! files. It reads the clock, feeds datagrams, commands and timer ticks to the relay, and
//! performs the actions that come out (send, record, report). Everything else talks to it
//! through bounded queues: the socket reader tasks (datagrams), the [`super::Control`]
//! handles (commands).
//!
//! Bounds: the ingress queue holds [`INGRESS_QUEUE_BATCHES`] batches of at most
//! [`MAX_BATCH`] datagrams (when it is full the readers wait, so the sockets' kernel buffers
//! absorb a burst and overflow there, per port); the engine handles at most
//! [`MAX_BATCHES_PER_WAKE`] batches before it looks at commands and timers again; each session
//! keeps its last [`super::MAX_SESSION_EVENTS`] events and at most
//! [`super::MAX_QUEUED_DIGITS`] queued digits per leg.

use super::api::{RelayCountersView, SessionEvent};
use super::clock::Clock;
use super::control::Request;
use super::files::RecordingFile;
use super::load::RateWindow;
use super::{MAX_SESSION_EVENTS, PLAYOUT_TICK_MS};
use crate::control::{Command, Relay, SessionId};
use crate::session::{Action, DropReason, LegIndex};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

mod requests;

/// Datagrams a reader takes from its socket before handing them over.
pub const MAX_BATCH: usize = 32;
/// Batches the ingress queue holds.
pub const INGRESS_QUEUE_BATCHES: usize = 8192;
/// Batches handled per wake-up before commands and timers get a turn.
pub const MAX_BATCHES_PER_WAKE: usize = 256;
/// Receive buffer of a reader (larger than any datagram the relay forwards, so that an
/// oversized one is seen as such).
const RECEIVE_BUFFER_LEN: usize = 2048;

/// Datagrams read from one local port.
#[derive(Debug)]
pub(crate) struct Batch {
    local_port: u16,
    datagrams: Vec<(SocketAddr, Vec<u8>)>,
}

/// A bound port: the engine sends through a plain non-blocking socket (a duplicate of the
/// reader's descriptor), so a send never depends on the runtime having seen the socket
/// writable yet; it fails only when the kernel's buffer is full.
#[derive(Debug)]
struct PortSocket {
    sender: std::net::UdpSocket,
    reader: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct Extras {
    events: VecDeque<SessionEvent>,
    digits: HashMap<usize, (VecDeque<char>, u32)>,
    recording: Option<RecordingFile>,
    last_file: Option<PathBuf>,
}

impl Extras {
    fn event(&mut self, event: SessionEvent) {
        if self.events.len() == MAX_SESSION_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

/// Settings of an engine.
#[derive(Debug)]
pub(crate) struct EngineSettings {
    pub bind_ip: IpAddr,
    pub recordings_dir: PathBuf,
}

/// The engine.
#[derive(Debug)]
pub(crate) struct Engine {
    relay: Relay,
    clock: Clock,
    settings: EngineSettings,
    sockets: HashMap<u16, PortSocket>,
    /// Readers of closed ports, aborted; the port is free once the reader is gone (it holds
    /// the socket), so a new bind of that port waits for it first. At most one per port.
    closing: HashMap<u16, JoinHandle<()>>,
    ingress_sender: mpsc::Sender<Batch>,
    ingress: mpsc::Receiver<Batch>,
    commands: mpsc::Receiver<Request>,
    extras: HashMap<SessionId, Extras>,
    counters: RelayCountersView,
    ingress_waits: Arc<AtomicU64>,
    received_rate: RateWindow,
    recordings_made: u64,
}

fn leg_name(relay: &Relay, id: &SessionId, leg: LegIndex) -> String {
    relay
        .session(id)
        .and_then(|s| s.leg(leg))
        .map(|l| l.name.clone())
        .unwrap_or_default()
}

impl Engine {
    pub(crate) fn new(
        relay: Relay,
        clock: Clock,
        settings: EngineSettings,
        commands: mpsc::Receiver<Request>,
    ) -> Engine {
        let (ingress_sender, ingress) = mpsc::channel(INGRESS_QUEUE_BATCHES);
        Engine {
            relay,
            clock,
            settings,
            sockets: HashMap::new(),
            closing: HashMap::new(),
            ingress_sender,
            ingress,
            commands,
            extras: HashMap::new(),
            counters: RelayCountersView::default(),
            ingress_waits: Arc::new(AtomicU64::new(0)),
            received_rate: RateWindow::default(),
            recordings_made: 0,
        }
    }

    /// Runs until shut down (or every control handle is gone).
    pub(crate) async fn run(mut self) {
        let mut next_tick_ms = self.clock.now_ms() + PLAYOUT_TICK_MS;
        // The core's next due time scans every session; it is computed again only after
        // what can move it earlier than the periodic tick in practice: a control request
        // (playout, DTMF to send) and a tick. Datagrams are not waited for: the one timer
        // they arm (a DTMF event's 500 ms end timeout) is then seen at the next periodic
        // tick, at most PLAYOUT_TICK_MS late. (Scanning on every wake cost ~13 % of the
        // relay's CPU at 350 calls.)
        let mut core_due_ms: Option<u64> = None;
        let mut core_due_stale = true;
        loop {
            if core_due_stale {
                core_due_ms = self.relay.next_timer_ms();
                core_due_stale = false;
            }
            let due_ms = core_due_ms.map_or(next_tick_ms, |t| t.min(next_tick_ms));
            let deadline = self.clock.instant_at(due_ms);
            tokio::select! {
                biased;
                request = self.commands.recv() => match request {
                    Some(Request::Shutdown(done)) => {
                        self.close_all("relay: shutdown");
                        // The requester may have gone; the engine stops either way.
                        let _ = done.send(());
                        return;
                    }
                    Some(request) => {
                        self.on_request(request).await;
                        core_due_stale = true;
                    }
                    None => {
                        self.close_all("relay: control handles dropped");
                        return;
                    }
                },
                batch = self.ingress.recv() => {
                    // The engine holds a sender itself, so the queue never closes.
                    if let Some(batch) = batch {
                        self.on_batches(batch);
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    let now_ms = self.clock.now_ms();
                    self.on_tick(now_ms);
                    core_due_stale = true;
                    if now_ms >= next_tick_ms {
                        next_tick_ms = now_ms + PLAYOUT_TICK_MS;
                    }
                }
            }
        }
    }

    fn on_batches(&mut self, first: Batch) {
        let now_ms = self.clock.now_ms();
        let mut batch = Some(first);
        let mut handled = 0;
        while let Some(current) = batch.take() {
            self.on_batch(now_ms, current);
            handled += 1;
            if handled < MAX_BATCHES_PER_WAKE {
                batch = self.ingress.try_recv().ok();
            }
        }
    }

    fn on_batch(&mut self, now_ms: u64, batch: Batch) {
        let count = batch.datagrams.len() as u64;
        self.counters.datagrams_received += count;
        self.received_rate.add(now_ms, count);
        for (from, bytes) in batch.datagrams {
            let actions = self
                .relay
                .on_datagram(now_ms, batch.local_port, from, &bytes);
            let mut owner: Option<SessionId> = None;
            for action in actions {
                match action {
                    Action::Forward {
                        from_port,
                        to_addr,
                        bytes,
                        ..
                    } => self.send(from_port, to_addr, &bytes),
                    Action::Drop { reason, .. } => self.count_drop(reason),
                    other => {
                        if owner.is_none() {
                            owner = self
                                .relay
                                .owner_of_port(batch.local_port)
                                .map(|(id, _)| id.clone());
                        }
                        if let Some(id) = &owner {
                            self.perform(now_ms, id, other);
                        }
                    }
                }
            }
        }
    }

    fn count_drop(&mut self, reason: DropReason) {
        self.counters.datagrams_dropped += 1;
        match reason {
            DropReason::Malformed(_) => self.counters.dropped_malformed += 1,
            DropReason::ForeignSource => self.counters.dropped_foreign_source += 1,
            _ => self.counters.dropped_other += 1,
        }
    }

    fn send(&mut self, from_port: u16, to_addr: SocketAddr, bytes: &[u8]) {
        let sent = self
            .sockets
            .get(&from_port)
            .is_some_and(|s| s.sender.send_to(bytes, to_addr).is_ok());
        if sent {
            self.counters.datagrams_sent += 1;
        } else {
            self.counters.send_failures += 1;
        }
    }

    fn on_tick(&mut self, now_ms: u64) {
        let mut actions = Vec::new();
        self.relay
            .on_tick(now_ms, |id, action| actions.push((id.clone(), action)));
        for (id, action) in actions {
            match action {
                Action::Forward {
                    from_port,
                    to_addr,
                    bytes,
                    ..
                } => self.send(from_port, to_addr, &bytes),
                other => self.perform(now_ms, &id, other),
            }
        }
        for extras in self.extras.values_mut() {
            if let Some(file) = extras.recording.as_mut() {
                if let Err(error) = file.tick(now_ms) {
                    tracing::warn!(%error, "recording failed");
                    extras.recording = None;
                }
            }
        }
    }

    /// Performs an action other than a forward or a drop.
    fn perform(&mut self, now_ms: u64, id: &SessionId, action: Action) {
        let name = |leg| leg_name(&self.relay, id, leg);
        let event =
            |leg: String, kind: &str, digit: Option<String>, detail: Option<String>| SessionEvent {
                at_ms: now_ms,
                leg,
                kind: kind.to_string(),
                digit,
                detail,
            };
        match action {
            Action::Record {
                leg,
                arrival_ms,
                ssrc,
                timestamp,
                law,
                payload,
            } => {
                let Some(extras) = self.extras.get_mut(id) else {
                    return;
                };
                if let Some(file) = extras.recording.as_mut() {
                    if let Err(error) = file.push(arrival_ms, leg.0, ssrc, timestamp, law, &payload)
                    {
                        tracing::warn!(%error, "recording failed");
                        extras.recording = None;
                        let leg = name(leg);
                        let failure = event(leg, "recording_failed", None, Some(error.to_string()));
                        if let Some(extras) = self.extras.get_mut(id) {
                            extras.event(failure);
                        }
                    }
                }
            }
            Action::DtmfDetected { leg, digit } => {
                let e = event(
                    name(leg),
                    "dtmf",
                    Some(digit.digit.as_char().to_string()),
                    None,
                );
                self.extras.entry(id.clone()).or_default().event(e);
            }
            Action::SourceLatched {
                leg,
                addr,
                relatched,
            } => {
                let kind = if relatched { "relatched" } else { "latched" };
                tracing::debug!(session = %id.0, %addr, kind, "source latched");
                let e = event(name(leg), kind, None, Some(addr.to_string()));
                self.extras.entry(id.clone()).or_default().event(e);
            }
            Action::GeneratedFinished { leg } => {
                let e = event(name(leg), "generated_finished", None, None);
                let extras = self.extras.entry(id.clone()).or_default();
                extras.event(e);
                let next = extras
                    .digits
                    .get_mut(&leg.0)
                    .and_then(|(queue, duration_ms)| queue.pop_front().map(|d| (d, *duration_ms)));
                if let Some((digit, duration_ms)) = next {
                    let leg_name = name(leg);
                    let command = Command::SendDtmf {
                        session: id.clone(),
                        leg: leg_name,
                        digit,
                        duration_ms,
                    };
                    if let Err(refusal) = self.relay.handle(now_ms, command) {
                        tracing::warn!(%refusal, "queued digit not sent");
                    }
                }
            }
            Action::Forward {
                from_port,
                to_addr,
                bytes,
                ..
            } => self.send(from_port, to_addr, &bytes),
            Action::Drop { reason, .. } => self.count_drop(reason),
        }
    }

    fn close_all(&mut self, by: &str) {
        let now_ms = self.clock.now_ms();
        for (id, extras) in self.extras.iter_mut() {
            if let Some(file) = extras.recording.take() {
                if let Err(error) = file.finish(now_ms, by) {
                    tracing::warn!(session = %id.0, %error, "recording not finished");
                }
            }
        }
        for (_, port) in self.sockets.drain() {
            port.reader.abort();
        }
    }

    /// Stops reading a port; its socket closes when the aborted reader is dropped.
    fn close_port(&mut self, port: u16) {
        if let Some(closed) = self.sockets.remove(&port) {
            closed.reader.abort();
            self.closing.retain(|_, reader| !reader.is_finished());
            self.closing.insert(port, closed.reader);
        }
    }
}

/// Reads one socket: waits until it is readable, takes up to [`MAX_BATCH`] datagrams and
/// hands them to the engine; waits (and counts the wait) when the engine's queue is full.
async fn read_socket(
    socket: UdpSocket,
    local_port: u16,
    ingress: mpsc::Sender<Batch>,
    ingress_waits: Arc<AtomicU64>,
) {
    let mut buffer = vec![0u8; RECEIVE_BUFFER_LEN];
    loop {
        if socket.readable().await.is_err() {
            return;
        }
        let mut datagrams = Vec::new();
        while datagrams.len() < MAX_BATCH {
            match socket.try_recv_from(&mut buffer) {
                Ok((len, from)) => datagrams.push((from, buffer[..len].to_vec())),
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                // Other errors (an ICMP report on Linux) concern one datagram: go on later.
                Err(_) => break,
            }
        }
        if datagrams.is_empty() {
            tokio::task::yield_now().await;
            continue;
        }
        let batch = Batch {
            local_port,
            datagrams,
        };
        match ingress.try_send(batch) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(batch)) => {
                // Back-pressure: this reader waits, and its socket's kernel buffer (bounded
                // by the OS) holds what comes meanwhile.
                ingress_waits.fetch_add(1, Ordering::Relaxed);
                if ingress.send(batch).await.is_err() {
                    return;
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}
