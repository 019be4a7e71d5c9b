//! The engine: the one thread that owns the sans-IO [`Relay`], its sockets and recording
//! files. It reads the clock, feeds datagrams, commands and timer ticks to the relay, and
//! performs the actions that come out (send, record, report). It waits on one `mio` poller
//! for every leg's socket and for a waker that the [`super::Control`] handles ring after
//! putting a request in their bounded queue.
//!
//! A turn: wait for readiness (or the next timer), read each ready port (at most
//! [`MAX_READS_PER_TURN`] datagrams from one port per turn; a port with more is read again
//! first next turn and counted in `reads_deferred`), handle at most
//! [`MAX_REQUESTS_PER_TURN`] control requests, fire the timer when due. A turn that relayed
//! fewer than [`COALESCE_BELOW`] datagrams is followed by a nap of the configured
//! `wake_coalesce_us`, so that under load one wake-up serves many ports instead of one:
//! each port carries only 50 packets/s, and a wake-up per packet is what a relay's CPU
//! goes to (benches/MEDIA_RESULTS.md). The nap adds at most that much latency to a packet.
//!
//! Bounds: each session keeps its last [`super::MAX_SESSION_EVENTS`] events and at most
//! [`super::MAX_QUEUED_DIGITS`] queued digits per leg; the sockets' kernel buffers hold a
//! burst, and overflow there, per port.

use super::api::{RelayCountersView, SessionEvent};
use super::clock::Clock;
use super::control::Request;
use super::files::RecordingFile;
use super::load::RateWindow;
use super::{MAX_SESSION_EVENTS, PLAYOUT_TICK_MS};
use crate::control::{Command, Relay, SessionId};
use crate::session::{Action, DropReason, LegIndex};
use mio::net::UdpSocket;
use mio::{Events, Poll, Token};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

mod requests;

/// Datagrams read from one port per turn before the other ready ports get theirs.
pub const MAX_READS_PER_TURN: usize = 32;
/// Control requests handled per turn.
pub const MAX_REQUESTS_PER_TURN: usize = 64;
/// A turn that relayed fewer datagrams than this is followed by the coalescing nap.
pub const COALESCE_BELOW: usize = 64;
/// Readiness events taken from the poller per turn.
const EVENTS_PER_POLL: usize = 1024;
/// Receive buffer (larger than any datagram the relay forwards, so that an oversized one is
/// seen as such).
const RECEIVE_BUFFER_LEN: usize = 2048;
/// The poller's token of the control waker (ports use their number).
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

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
    /// Nap after a turn that relayed few datagrams (zero: none).
    pub wake_coalesce: Duration,
}

/// A leg's bound port.
#[derive(Debug)]
struct Port {
    socket: UdpSocket,
    /// The turn in which the port was last read: a port is read at most once per turn,
    /// even when it is both left over from the last turn and reported ready again.
    read_in_turn: u64,
    /// In `pending_reads` (at most once).
    pending: bool,
}

/// Whether the engine goes on after handling control requests.
enum Flow {
    Continue,
    Stop,
}

/// The engine.
#[derive(Debug)]
pub(crate) struct Engine {
    relay: Relay,
    clock: Clock,
    settings: EngineSettings,
    poll: Poll,
    sockets: HashMap<u16, Port>,
    /// Ports that still had datagrams after their share of a turn, each at most once.
    /// Readiness is reported on edges, so these are read again first in the next turn,
    /// which then does not wait.
    pending_reads: VecDeque<u16>,
    /// The current turn (see [`Port::read_in_turn`]).
    turn: u64,
    commands: mpsc::Receiver<Request>,
    /// Requests may be waiting: the waker rang, the last turn stopped at its limit, or a
    /// tick passed (which covers a lost wake-up).
    commands_pending: bool,
    extras: HashMap<SessionId, Extras>,
    counters: RelayCountersView,
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
    /// An engine and its poller; the waker for control handles is made from
    /// [`Engine::poll`]'s registry by the caller.
    pub(crate) fn new(
        relay: Relay,
        clock: Clock,
        settings: EngineSettings,
        poll: Poll,
        commands: mpsc::Receiver<Request>,
    ) -> Engine {
        Engine {
            relay,
            clock,
            settings,
            poll,
            sockets: HashMap::new(),
            pending_reads: VecDeque::new(),
            turn: 0,
            commands,
            commands_pending: true,
            extras: HashMap::new(),
            counters: RelayCountersView::default(),
            received_rate: RateWindow::default(),
            recordings_made: 0,
        }
    }

    /// Runs until shut down (or every control handle is gone, or the poller fails).
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        let mut buffer = vec![0u8; RECEIVE_BUFFER_LEN];
        let mut next_tick_ms = self.clock.now_ms() + PLAYOUT_TICK_MS;
        // The core's next due time scans every session; it is computed again only after a
        // control request (playout, DTMF to send) and a tick. A timer that datagrams arm
        // (a DTMF event's 500 ms end timeout) comes from `take_armed_ms`, which looks only
        // at the sessions that received them. (Scanning on every wake cost ~13 % of the
        // relay's CPU at 350 calls.)
        let mut core_due_ms: Option<u64> = None;
        let mut core_due_stale = true;
        loop {
            if core_due_stale {
                core_due_ms = self.relay.next_timer_ms();
                core_due_stale = false;
            }
            let due_ms = core_due_ms.map_or(next_tick_ms, |t| t.min(next_tick_ms));
            let timeout = if self.pending_reads.is_empty() && !self.commands_pending {
                self.clock.duration_until(due_ms)
            } else {
                Duration::ZERO
            };
            if let Err(error) = self.poll.poll(&mut events, Some(timeout)) {
                if error.kind() != std::io::ErrorKind::Interrupted {
                    tracing::error!(%error, "relay: poller failed; stopping");
                    self.close_all("relay: poller failed");
                    return;
                }
            }
            let now_ms = self.clock.now_ms();
            let mut relayed = 0;
            self.turn += 1;
            for port in std::mem::take(&mut self.pending_reads) {
                if let Some(state) = self.sockets.get_mut(&port) {
                    state.pending = false;
                }
                relayed += self.read_port(now_ms, port, &mut buffer);
            }
            for event in events.iter() {
                if event.token() == WAKER_TOKEN {
                    self.commands_pending = true;
                } else if let Ok(port) = u16::try_from(event.token().0) {
                    relayed += self.read_port(now_ms, port, &mut buffer);
                }
            }
            if let Some(armed) = self.relay.take_armed_ms() {
                core_due_ms = Some(core_due_ms.map_or(armed, |due| due.min(armed)));
            }
            if self.commands_pending {
                match self.take_requests() {
                    Flow::Stop => return,
                    Flow::Continue => core_due_stale = true,
                }
            }
            let now_ms = self.clock.now_ms();
            if now_ms >= due_ms {
                self.on_tick(now_ms);
                core_due_stale = true;
                // A request whose wake-up was lost is still seen within a tick.
                self.commands_pending = true;
                if now_ms >= next_tick_ms {
                    next_tick_ms = now_ms + PLAYOUT_TICK_MS;
                }
            }
            if relayed > 0
                && relayed < COALESCE_BELOW
                && !self.settings.wake_coalesce.is_zero()
                && self.pending_reads.is_empty()
                && !self.commands_pending
            {
                std::thread::sleep(self.settings.wake_coalesce);
            }
        }
    }

    /// Handles the waiting control requests, at most [`MAX_REQUESTS_PER_TURN`].
    fn take_requests(&mut self) -> Flow {
        for _ in 0..MAX_REQUESTS_PER_TURN {
            match self.commands.try_recv() {
                Ok(Request::Shutdown(done)) => {
                    self.close_all("relay: shutdown");
                    // The requester may have gone; the engine stops either way.
                    let _ = done.send(());
                    return Flow::Stop;
                }
                Ok(request) => self.on_request(request),
                Err(mpsc::error::TryRecvError::Empty) => {
                    self.commands_pending = false;
                    return Flow::Continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.close_all("relay: control handles dropped");
                    return Flow::Stop;
                }
            }
        }
        Flow::Continue
    }

    /// Reads a ready port, once per turn: at most [`MAX_READS_PER_TURN`] datagrams, until
    /// it has no more. Returns how many were read.
    fn read_port(&mut self, now_ms: u64, port: u16, buffer: &mut [u8]) -> usize {
        match self.sockets.get_mut(&port) {
            Some(state) if state.read_in_turn != self.turn => state.read_in_turn = self.turn,
            // Gone, or read already in this turn (it is then pending if it has more).
            _ => return 0,
        }
        let mut read = 0;
        loop {
            let Some(state) = self.sockets.get_mut(&port) else {
                return read;
            };
            if read == MAX_READS_PER_TURN {
                if !state.pending {
                    state.pending = true;
                    self.pending_reads.push_back(port);
                }
                self.counters.reads_deferred += 1;
                return read;
            }
            match state.socket.recv_from(buffer) {
                Ok((len, from)) => {
                    read += 1;
                    self.on_datagram(now_ms, port, from, &buffer[..len]);
                }
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => return read,
                // Other errors (an ICMP report on Linux) concern one earlier datagram; the
                // port may hold more, so it is read on (within the same bound).
                Err(_) => read += 1,
            }
        }
    }

    fn on_datagram(&mut self, now_ms: u64, local_port: u16, from: SocketAddr, bytes: &[u8]) {
        self.counters.datagrams_received += 1;
        self.received_rate.add(now_ms, 1);
        let actions = self.relay.on_datagram(now_ms, local_port, from, bytes);
        let mut owner: Option<SessionId> = None;
        for action in actions {
            // Forwards and drops need no session: the owner is looked up only for the rest.
            let Some(other) = self.forward_or_drop(action) else {
                continue;
            };
            if owner.is_none() {
                owner = self
                    .relay
                    .owner_of_port(local_port)
                    .map(|(id, _)| id.clone());
            }
            if let Some(id) = &owner {
                self.perform(now_ms, id, other);
            }
        }
    }

    /// Sends a forward or counts a drop; any other action is handed back.
    fn forward_or_drop(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::Forward {
                from_port,
                to_addr,
                bytes,
                ..
            } => self.send(from_port, to_addr, &bytes),
            Action::Drop { reason, .. } => self.count_drop(reason),
            other => return Some(other),
        }
        None
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
            .is_some_and(|s| s.socket.send_to(bytes, to_addr).is_ok());
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
            self.perform(now_ms, &id, action);
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

    /// Performs an action of session `id`.
    fn perform(&mut self, now_ms: u64, id: &SessionId, action: Action) {
        let Some(action) = self.forward_or_drop(action) else {
            return;
        };
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
            // Done by `forward_or_drop` above.
            Action::Forward { .. } | Action::Drop { .. } => {}
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
        for (_, mut port) in self.sockets.drain() {
            // Closing the socket removes it from the poller in any case.
            let _ = self.poll.registry().deregister(&mut port.socket);
        }
        self.pending_reads.clear();
    }

    /// Stops reading a port and closes its socket (the port is free again at once).
    fn close_port(&mut self, port: u16) {
        if let Some(mut closed) = self.sockets.remove(&port) {
            // Closing the socket removes it from the poller in any case.
            let _ = self.poll.registry().deregister(&mut closed.socket);
            if closed.pending {
                self.pending_reads.retain(|p| *p != port);
            }
        }
    }
}
