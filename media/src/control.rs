//! The control API and the pure `Relay` that serves it: sessions keyed by an opaque
//! [`SessionId`], the port pool, the prompt library, and the routing of datagrams (by local
//! port) to their session and leg.
//!
//! Every command either succeeds with a [`Reply`] or is refused with a [`Refusal`] that
//! carries a stable code; a refused command changes nothing (ports taken for a new leg are
//! given back when the leg cannot be added). Refusals and datagrams for unknown ports are
//! counted in [`RelayCounters`].
//!
//! Boundary: the relay knows sessions, legs, prompts and recordings, never calls or agents.

use crate::dtmf::Digit;
use crate::g711::G711Law;
use crate::leg::{Latch, LatchPolicy, LegCounters};
use crate::playout::PromptAudio;
use crate::port_pool::{EmptyPortRange, PortPair, PortPool};
use crate::refusal::Refusal;
use crate::sdp::{self, Direction, LocalAnswer};
use crate::session::{Action, LegIndex, RecordingState, Session};
use crate::stats::StatisticsSnapshot;
use crate::tones;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

/// Longest session id or leg name accepted.
pub const MAX_ID_LEN: usize = 128;
/// Most fragments in one announcement.
pub const MAX_FRAGMENTS: usize = 32;
/// Payload type the relay offers for telephone-event when it makes the offer.
pub const OFFERED_TELEPHONE_EVENT: u8 = 101;

/// An opaque session id chosen by the caller (the call actor).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub String);

/// What to play to a leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayRequest {
    /// One prompt, once.
    Prompt(String),
    /// A prompt looped until stopped (music on hold).
    MusicOnHold(String),
    /// Several prompts back to back, once (an announcement assembled from fragments).
    Announcement(Vec<String>),
}

/// A control command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Create an empty session.
    CreateSession {
        /// Id.
        session: SessionId,
    },
    /// Add a leg (taking a port pair) or update it; with a remote SDP the reply is the
    /// relay's answer, without it the relay's offer.
    SetLeg {
        /// Session.
        session: SessionId,
        /// Leg name, unique in the session.
        leg: String,
        /// The remote side's SDP, when known.
        remote_sdp: Option<String>,
    },
    /// The relay's current SDP for a leg.
    LocalSdp {
        /// Session.
        session: SessionId,
        /// Leg.
        leg: String,
    },
    /// Play a prompt, music on hold or an announcement to a leg.
    Play {
        /// Session.
        session: SessionId,
        /// Leg.
        leg: String,
        /// What.
        request: PlayRequest,
    },
    /// Stop what is played or sent to a leg.
    StopPlay {
        /// Session.
        session: SessionId,
        /// Leg.
        leg: String,
    },
    /// Send a DTMF digit to a leg (RFC 4733).
    SendDtmf {
        /// Session.
        session: SessionId,
        /// Leg.
        leg: String,
        /// `0-9 * # A-D`.
        digit: char,
        /// Duration, 40..=2000 ms.
        duration_ms: u32,
    },
    /// Start recording (legs 0 and 1, one channel each).
    StartRecording {
        /// Session.
        session: SessionId,
        /// Who asked (for the audit trail).
        by: String,
    },
    /// Pause recording.
    PauseRecording {
        /// Session.
        session: SessionId,
        /// Who asked.
        by: String,
    },
    /// Resume recording.
    ResumeRecording {
        /// Session.
        session: SessionId,
        /// Who asked.
        by: String,
    },
    /// Stop recording.
    StopRecording {
        /// Session.
        session: SessionId,
        /// Who asked.
        by: String,
    },
    /// Per-leg statistics.
    Statistics {
        /// Session.
        session: SessionId,
    },
    /// Remove a session and give its ports back.
    RemoveSession {
        /// Session.
        session: SessionId,
    },
}

/// Per-leg report.
#[derive(Debug, Clone, PartialEq)]
pub struct LegReport {
    /// Leg name.
    pub leg: String,
    /// Local ports.
    pub ports: PortPair,
    /// Latched source, if any.
    pub latched: Option<SocketAddr>,
    /// RFC 3550 receive statistics.
    pub statistics: StatisticsSnapshot,
    /// Drop and event counters.
    pub counters: LegCounters,
}

/// A successful command's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Session created.
    SessionCreated,
    /// Leg added or updated; the relay's SDP for it.
    LegReady {
        /// The relay's SDP (answer or offer).
        local_sdp: String,
        /// The leg's local ports.
        ports: PortPair,
    },
    /// The relay's SDP for a leg.
    LocalSdp(String),
    /// Playout or DTMF started.
    Started,
    /// Playout stopped; false when nothing was playing.
    Stopped(bool),
    /// New recording state.
    Recording(RecordingState),
    /// Statistics, by leg index.
    Statistics(Vec<LegReport>),
    /// Session removed; the ports given back.
    Removed(Vec<PortPair>),
}

/// Counters of the relay as a whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounters {
    /// Commands refused for an unknown session.
    pub refused_unknown_session: u64,
    /// Commands refused for an exhausted port pool.
    pub refused_pool_exhausted: u64,
    /// Commands refused for a bad SDP.
    pub refused_bad_sdp: u64,
    /// Other refusals.
    pub refused_other: u64,
    /// Datagrams received on a port no leg owns.
    pub datagrams_unknown_port: u64,
}

/// Configuration of a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Address put in SDP.
    pub advertised_ip: IpAddr,
    /// First port of the pool.
    pub first_port: u16,
    /// Last port of the pool.
    pub last_port: u16,
    /// Latching policy of every leg.
    pub latch: LatchPolicy,
}

#[derive(Debug, Clone)]
struct Entry {
    session: Session,
    sdp_session_id: u64,
}

/// The relay: sessions, ports, prompts. Pure: time comes in, actions go out.
#[derive(Debug, Clone)]
pub struct Relay {
    config: RelayConfig,
    pool: PortPool,
    sessions: BTreeMap<SessionId, Entry>,
    ports: HashMap<u16, (SessionId, LegIndex)>,
    prompts: BTreeMap<String, PromptAudio>,
    counters: RelayCounters,
    sdp_sessions_made: u64,
    /// The earliest timer of the sessions that received datagrams since the last
    /// [`Relay::take_armed_ms`]: a datagram can arm a timer (a DTMF event's end timeout),
    /// and a shell that keeps [`Relay::next_timer_ms`] between ticks learns of it here
    /// without scanning every session.
    armed_ms: Option<u64>,
}

fn check_name(name: &str, what: &'static str) -> Result<(), Refusal> {
    if name.is_empty() || name.len() > MAX_ID_LEN {
        return Err(Refusal::BadRequest(what));
    }
    Ok(())
}

impl Relay {
    /// A relay with the built-in prompts of [`tones::builtin_prompts`].
    pub fn new(config: RelayConfig) -> Result<Relay, EmptyPortRange> {
        let pool = PortPool::new(config.first_port, config.last_port)?;
        Ok(Relay {
            config,
            pool,
            sessions: BTreeMap::new(),
            ports: HashMap::new(),
            prompts: tones::builtin_prompts()
                .into_iter()
                .map(|(name, pcm)| (name, PromptAudio::from(pcm)))
                .collect(),
            counters: RelayCounters::default(),
            sdp_sessions_made: 0,
            armed_ms: None,
        })
    }

    /// Adds or replaces a prompt (8 kHz PCM); every playout of it shares these samples.
    pub fn register_prompt(&mut self, name: &str, pcm: Vec<i16>) -> Result<(), Refusal> {
        check_name(name, "prompt name must be 1..=128 bytes")?;
        if pcm.is_empty() || pcm.len() > crate::playout::MAX_CONTENT_SAMPLES {
            return Err(Refusal::BadRequest(
                "prompt must hold 1 sample to 10 minutes",
            ));
        }
        self.prompts
            .insert(name.to_string(), PromptAudio::from(pcm));
        Ok(())
    }

    /// The samples of a prompt, if there is one of that name.
    pub fn prompt(&self, name: &str) -> Option<&[i16]> {
        self.prompts.get(name).map(PromptAudio::samples)
    }

    /// Number of prompts (built-in and registered).
    pub fn prompt_count(&self) -> usize {
        self.prompts.len()
    }

    /// Counters.
    pub fn counters(&self) -> RelayCounters {
        self.counters
    }

    /// Number of sessions.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The port pool (for metrics: free and allocated pairs).
    pub fn pool(&self) -> &PortPool {
        &self.pool
    }

    /// The pair the next new leg gets, so that the shell can bind it before the leg exists.
    pub fn next_free_pair(&self) -> Option<PortPair> {
        self.pool.next_free()
    }

    /// The next free pair cannot be bound (another process holds a port of it): the next new
    /// leg gets another pair, this one is tried again after every other free pair.
    pub fn defer_next_pair(&mut self) {
        self.pool.defer_next();
    }

    /// A session, for inspection.
    pub fn session(&self, id: &SessionId) -> Option<&Session> {
        self.sessions.get(id).map(|e| &e.session)
    }

    /// The session and leg owning a local port.
    pub fn owner_of_port(&self, port: u16) -> Option<(&SessionId, LegIndex)> {
        self.ports.get(&port).map(|(id, leg)| (id, *leg))
    }

    /// Handles one command.
    pub fn handle(&mut self, now_ms: u64, command: Command) -> Result<Reply, Refusal> {
        let result = self.dispatch(now_ms, command);
        if let Err(refusal) = &result {
            match refusal {
                Refusal::UnknownSession => self.counters.refused_unknown_session += 1,
                Refusal::PortPoolExhausted => self.counters.refused_pool_exhausted += 1,
                Refusal::BadSdp(_) => self.counters.refused_bad_sdp += 1,
                _ => self.counters.refused_other += 1,
            }
        }
        result
    }

    fn entry(&mut self, id: &SessionId) -> Result<&mut Entry, Refusal> {
        self.sessions.get_mut(id).ok_or(Refusal::UnknownSession)
    }

    fn leg_of(&mut self, id: &SessionId, leg: &str) -> Result<(&mut Session, LegIndex), Refusal> {
        let entry = self.entry(id)?;
        let index = entry.session.leg_index(leg).ok_or(Refusal::UnknownLeg)?;
        Ok((&mut entry.session, index))
    }

    fn dispatch(&mut self, now_ms: u64, command: Command) -> Result<Reply, Refusal> {
        match command {
            Command::CreateSession { session } => {
                check_name(&session.0, "session id must be 1..=128 bytes")?;
                if self.sessions.contains_key(&session) {
                    return Err(Refusal::SessionExists);
                }
                self.sdp_sessions_made += 1;
                let entry = Entry {
                    session: Session::new(self.config.latch),
                    sdp_session_id: self.sdp_sessions_made,
                };
                self.sessions.insert(session, entry);
                Ok(Reply::SessionCreated)
            }
            Command::SetLeg {
                session,
                leg,
                remote_sdp,
            } => self.set_leg(&session, &leg, remote_sdp.as_deref()),
            Command::LocalSdp { session, leg } => {
                let entry = self.sessions.get(&session).ok_or(Refusal::UnknownSession)?;
                let index = entry.session.leg_index(&leg).ok_or(Refusal::UnknownLeg)?;
                let sdp = self.local_description(&entry.session, index, entry.sdp_session_id);
                Ok(Reply::LocalSdp(sdp))
            }
            Command::Play {
                session,
                leg,
                request,
            } => {
                let (fragments, looping) = self.resolve(&request)?;
                let prompts = &self.prompts;
                let pcm: Vec<PromptAudio> = fragments
                    .iter()
                    .filter_map(|name| prompts.get(name).cloned())
                    .collect();
                let entry = self
                    .sessions
                    .get_mut(&session)
                    .ok_or(Refusal::UnknownSession)?;
                let index = entry.session.leg_index(&leg).ok_or(Refusal::UnknownLeg)?;
                entry.session.play(now_ms, index, &pcm, looping)?;
                Ok(Reply::Started)
            }
            Command::StopPlay { session, leg } => {
                let (state, index) = self.leg_of(&session, &leg)?;
                state.stop_generated(index).map(Reply::Stopped)
            }
            Command::SendDtmf {
                session,
                leg,
                digit,
                duration_ms,
            } => {
                let digit = Digit::from_char(digit)
                    .ok_or(Refusal::BadRequest("digit must be 0-9 * # A-D"))?;
                if !(40..=2000).contains(&duration_ms) {
                    return Err(Refusal::BadRequest("DTMF duration must be 40..=2000 ms"));
                }
                let (state, index) = self.leg_of(&session, &leg)?;
                state.send_dtmf(now_ms, index, digit, duration_ms)?;
                Ok(Reply::Started)
            }
            Command::StartRecording { session, by } => {
                self.recording(&session, |s| s.start_recording(now_ms, &by))
            }
            Command::PauseRecording { session, by } => {
                self.recording(&session, |s| s.pause_recording(now_ms, &by))
            }
            Command::ResumeRecording { session, by } => {
                self.recording(&session, |s| s.resume_recording(now_ms, &by))
            }
            Command::StopRecording { session, by } => {
                self.recording(&session, |s| s.stop_recording(now_ms, &by))
            }
            Command::Statistics { session } => {
                let entry = self.entry(&session)?;
                let reports = entry
                    .session
                    .legs()
                    .iter()
                    .map(|leg| LegReport {
                        leg: leg.name.clone(),
                        ports: leg.ports,
                        latched: match leg.latch() {
                            Latch::Latched { addr, .. } => Some(addr),
                            Latch::Unlatched => None,
                        },
                        statistics: leg.stats.snapshot(),
                        counters: leg.counters,
                    })
                    .collect();
                Ok(Reply::Statistics(reports))
            }
            Command::RemoveSession { session } => {
                let entry = self
                    .sessions
                    .remove(&session)
                    .ok_or(Refusal::UnknownSession)?;
                let mut released = Vec::new();
                for leg in entry.session.legs() {
                    self.ports.remove(&leg.ports.rtp);
                    self.ports.remove(&leg.ports.rtcp);
                    let given_back = self.pool.release(leg.ports.rtp);
                    assert!(
                        given_back.is_ok(),
                        "a leg's ports are allocated from the pool"
                    );
                    released.push(leg.ports);
                }
                Ok(Reply::Removed(released))
            }
        }
    }

    fn recording(
        &mut self,
        session: &SessionId,
        change: impl FnOnce(&mut Session) -> Result<(), Refusal>,
    ) -> Result<Reply, Refusal> {
        let entry = self.entry(session)?;
        change(&mut entry.session)?;
        Ok(Reply::Recording(entry.session.recording()))
    }

    fn resolve(&self, request: &PlayRequest) -> Result<(Vec<String>, bool), Refusal> {
        let (names, looping) = match request {
            PlayRequest::Prompt(name) => (vec![name.clone()], false),
            PlayRequest::MusicOnHold(name) => (vec![name.clone()], true),
            PlayRequest::Announcement(names) => (names.clone(), false),
        };
        if names.is_empty() || names.len() > MAX_FRAGMENTS {
            return Err(Refusal::BadRequest("an announcement has 1..=32 fragments"));
        }
        if let Some(missing) = names.iter().find(|n| !self.prompts.contains_key(*n)) {
            return Err(Refusal::UnknownPrompt(missing.clone()));
        }
        Ok((names, looping))
    }

    fn set_leg(
        &mut self,
        id: &SessionId,
        name: &str,
        remote_sdp: Option<&str>,
    ) -> Result<Reply, Refusal> {
        check_name(name, "leg name must be 1..=128 bytes")?;
        // Parse first: a bad SDP changes nothing.
        let remote = remote_sdp
            .map(sdp::parse_remote)
            .transpose()
            .map_err(Refusal::BadSdp)?;
        let entry = self.sessions.get_mut(id).ok_or(Refusal::UnknownSession)?;
        let index = match entry.session.leg_index(name) {
            Some(index) => index,
            None => {
                let ports = self
                    .pool
                    .allocate()
                    .map_err(|_| Refusal::PortPoolExhausted)?;
                match entry.session.add_leg(name, ports) {
                    Ok(index) => {
                        self.ports.insert(ports.rtp, (id.clone(), index));
                        self.ports.insert(ports.rtcp, (id.clone(), index));
                        index
                    }
                    Err(refusal) => {
                        let given_back = self.pool.release(ports.rtp);
                        assert!(given_back.is_ok(), "ports just allocated are released");
                        return Err(refusal);
                    }
                }
            }
        };
        if let Some(remote) = remote {
            entry.session.set_remote(index, remote)?;
        }
        let sdp_id = entry.sdp_session_id;
        let ports = entry
            .session
            .leg(index)
            .map(|l| l.ports)
            .ok_or(Refusal::UnknownLeg)?;
        let entry = self.sessions.get(id).ok_or(Refusal::UnknownSession)?;
        Ok(Reply::LegReady {
            local_sdp: self.local_description(&entry.session, index, sdp_id),
            ports,
        })
    }

    /// The answer to the leg's remote SDP, or the relay's offer when there is none.
    fn local_description(&self, session: &Session, index: LegIndex, sdp_id: u64) -> String {
        let Some(leg) = session.leg(index) else {
            return String::new();
        };
        let answer = match &leg.remote {
            Some(remote) => sdp::answer_for(
                remote,
                self.config.advertised_ip,
                leg.ports.rtp,
                sdp_id,
                leg.sdp_version,
            ),
            None => LocalAnswer {
                ip: self.config.advertised_ip,
                rtp_port: leg.ports.rtp,
                session_id: sdp_id,
                version: leg.sdp_version,
                codecs: vec![(G711Law::MuLaw, 0), (G711Law::ALaw, 8)],
                telephone_event: Some(OFFERED_TELEPHONE_EVENT),
                rtcp_mux: false,
                direction: Direction::SendRecv,
            },
        };
        answer.render()
    }

    /// A datagram received on local port `local_port`.
    pub fn on_datagram(
        &mut self,
        now_ms: u64,
        local_port: u16,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Vec<Action> {
        let Some((id, leg)) = self.ports.get(&local_port) else {
            self.counters.datagrams_unknown_port += 1;
            return Vec::new();
        };
        match self.sessions.get_mut(id) {
            Some(entry) => {
                let actions = entry.session.on_packet(now_ms, *leg, from, bytes);
                // One session's legs: a few comparisons, not a scan of the relay.
                if let Some(due) = entry.session.next_timer_ms() {
                    self.armed_ms = Some(self.armed_ms.map_or(due, |armed| armed.min(due)));
                }
                actions
            }
            None => {
                self.counters.datagrams_unknown_port += 1;
                Vec::new()
            }
        }
    }

    /// The earliest timer due in a session that received a datagram since the last call
    /// (and forgets it). With [`Relay::next_timer_ms`] taken after each command and tick,
    /// the minimum of the two is when [`Relay::on_tick`] should next run.
    pub fn take_armed_ms(&mut self) -> Option<u64> {
        self.armed_ms.take()
    }

    /// Lets time pass in every session; actions are handed to `emit` with their session.
    pub fn on_tick(&mut self, now_ms: u64, mut emit: impl FnMut(&SessionId, Action)) {
        for (id, entry) in self.sessions.iter_mut() {
            for action in entry.session.on_tick(now_ms) {
                emit(id, action);
            }
        }
    }

    /// When [`Relay::on_tick`] should next run.
    pub fn next_timer_ms(&self) -> Option<u64> {
        self.sessions
            .values()
            .filter_map(|e| e.session.next_timer_ms())
            .min()
    }

    /// Asserts the relay's invariants (a bug if one fails).
    pub fn check_invariants(&self) {
        self.pool.check_invariants();
        let legs: usize = self.sessions.values().map(|e| e.session.legs().len()).sum();
        assert_eq!(
            legs,
            self.pool.allocated_count(),
            "every allocated pair belongs to one leg"
        );
        assert_eq!(
            self.ports.len(),
            2 * legs,
            "both ports of every leg are routed"
        );
        for (port, (id, index)) in &self.ports {
            let leg = self
                .sessions
                .get(id)
                .and_then(|e| e.session.leg(*index))
                .map(|l| l.ports);
            assert!(
                leg.is_some_and(|p| p.rtp == *port || p.rtcp == *port),
                "port {port} routes to a leg that owns it"
            );
        }
        for entry in self.sessions.values() {
            entry.session.check_invariants();
        }
    }
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
