//! The engine's control requests: each [`Request`] is one step of the relay core plus
//! what the shell owns around it (sockets of new legs, recording files, session events,
//! queued digits).

use super::{Engine, Extras};
use crate::control::{self, Command, Reply, SessionId};
use crate::port_pool::PortPair;
use crate::refusal::Refusal;
use crate::shell::api::{
    self, DtmfRequest, LegReady, LegView, Load, PlayRequest, RecordingAction, RecordingStatus,
    SessionCreated, SessionRemoved, SessionView,
};
use crate::shell::control::{ControlError, ControlResult, Request};
use crate::shell::files::{self, RecordingFile};
use crate::shell::load;
use crate::shell::MAX_QUEUED_DIGITS;
use mio::{Interest, Token};
use std::collections::VecDeque;

/// Free pairs tried for one new leg before it is refused: enough to pass over the ports of a
/// neighbour sharing the range, few enough that a host without free ports answers at once.
const MAX_PAIRS_TRIED: usize = 64;

impl Engine {
    pub(super) fn on_request(&mut self, request: Request) {
        let now_ms = self.clock.now_ms();
        // A requester that gave up no longer wants the answer: sends are allowed to fail.
        match request {
            Request::CreateSession(body, reply) => {
                let id = SessionId(body.session_id.clone());
                let result = self
                    .relay
                    .handle(
                        now_ms,
                        Command::CreateSession {
                            session: id.clone(),
                        },
                    )
                    .map(|_| {
                        self.extras.insert(id, Extras::default());
                        tracing::info!(session = %body.session_id, "session created");
                        SessionCreated {
                            session_id: body.session_id,
                        }
                    })
                    .map_err(ControlError::from);
                let _ = reply.send(result);
            }
            Request::SetLeg(session, leg, body, reply) => {
                let result = self.set_leg(now_ms, session, leg, body.remote_sdp);
                let _ = reply.send(result);
            }
            Request::LocalSdp(session, leg, reply) => {
                let command = Command::LocalSdp {
                    session: SessionId(session),
                    leg,
                };
                let result = match self.relay.handle(now_ms, command) {
                    Ok(Reply::LocalSdp(sdp)) => Ok(sdp),
                    Ok(other) => {
                        panic!("Relay::handle answers LocalSdp with LocalSdp, not {other:?}")
                    }
                    Err(refusal) => Err(refusal.into()),
                };
                let _ = reply.send(result);
            }
            Request::Play(session, leg, what, reply) => {
                let request = match what {
                    PlayRequest::Prompt(name) => control::PlayRequest::Prompt(name),
                    PlayRequest::MusicOnHold(name) => control::PlayRequest::MusicOnHold(name),
                    PlayRequest::Announcement(names) => control::PlayRequest::Announcement(names),
                };
                let command = Command::Play {
                    session: SessionId(session),
                    leg,
                    request,
                };
                let result = self.relay.handle(now_ms, command).map(|_| ());
                let _ = reply.send(result.map_err(ControlError::from));
            }
            Request::StopPlay(session, leg, reply) => {
                let id = SessionId(session);
                let index = self.relay.session(&id).and_then(|s| s.leg_index(&leg));
                if let (Some(extras), Some(index)) = (self.extras.get_mut(&id), index) {
                    extras.digits.remove(&index.0);
                }
                let command = Command::StopPlay { session: id, leg };
                let result = match self.relay.handle(now_ms, command) {
                    Ok(Reply::Stopped(was)) => Ok(was),
                    Ok(other) => {
                        panic!("Relay::handle answers StopPlay with Stopped, not {other:?}")
                    }
                    Err(refusal) => Err(refusal.into()),
                };
                let _ = reply.send(result);
            }
            Request::SendDtmf(session, leg, body, reply) => {
                let _ = reply.send(self.send_dtmf(now_ms, SessionId(session), leg, body));
            }
            Request::Recording(session, action, by, reply) => {
                let _ = reply.send(self.recording(now_ms, SessionId(session), action, &by));
            }
            Request::Session(session, reply) => {
                let _ = reply.send(self.session_view(now_ms, SessionId(session)));
            }
            Request::RemoveSession(session, reply) => {
                let _ = reply.send(self.remove_session(now_ms, SessionId(session)));
            }
            Request::Load(reply) => {
                let _ = reply.send(Ok(self.load(now_ms)));
            }
            Request::Shutdown(done) => {
                // Handled in `take_requests`; kept total for the match.
                let _ = done.send(());
            }
        }
    }

    fn set_leg(
        &mut self,
        now_ms: u64,
        session: String,
        leg: String,
        remote_sdp: Option<String>,
    ) -> ControlResult<LegReady> {
        let id = SessionId(session);
        let new_leg = self
            .relay
            .session(&id)
            .is_some_and(|s| s.leg_index(&leg).is_none());
        let bound = if new_leg {
            self.bind_next_pair()?
        } else {
            None
        };
        let command = Command::SetLeg {
            session: id,
            leg,
            remote_sdp,
        };
        let (local_sdp, ports) = match self.relay.handle(now_ms, command) {
            Ok(Reply::LegReady { local_sdp, ports }) => (local_sdp, ports),
            Ok(other) => panic!("Relay::handle answers SetLeg with LegReady, not {other:?}"),
            Err(refusal) => {
                // The leg was not made: the pair bound for it is free again.
                if let Some(pair) = bound {
                    self.close_port(pair.rtp);
                    self.close_port(pair.rtcp);
                }
                return Err(refusal.into());
            }
        };
        assert!(
            bound.is_none_or(|pair| pair == ports),
            "a new leg gets the pair bound for it ({bound:?}, got {ports:?})"
        );
        for port in [ports.rtp, ports.rtcp] {
            if !self.sockets.contains_key(&port) {
                self.bind(port)?;
            }
        }
        Ok(LegReady {
            local_sdp,
            rtp_port: ports.rtp,
            rtcp_port: ports.rtcp,
        })
    }

    /// Binds the pair the next new leg gets. A pair with a port held by another process
    /// (another relay or program on the host) is passed over, up to `MAX_PAIRS_TRIED` of
    /// them; `None` when the pool is empty (the relay then refuses the leg).
    fn bind_next_pair(&mut self) -> ControlResult<Option<PortPair>> {
        let tries = self.relay.pool().free_count().min(MAX_PAIRS_TRIED);
        let mut last_error = None;
        for _ in 0..tries {
            let Some(pair) = self.relay.next_free_pair() else {
                break;
            };
            let mut bound = self.bind(pair.rtp);
            if bound.is_ok() {
                bound = self.bind(pair.rtcp);
                if bound.is_err() {
                    self.close_port(pair.rtp);
                }
            }
            match bound {
                Ok(()) => return Ok(Some(pair)),
                Err(error) => {
                    tracing::warn!(rtp = pair.rtp, %error, "port pair held elsewhere, passed over");
                    self.counters.ports_held_elsewhere += 1;
                    self.relay.defer_next_pair();
                    last_error = Some(error);
                }
            }
        }
        match last_error {
            Some(error) => Err(error),
            None => Ok(None),
        }
    }

    fn bind(&mut self, port: u16) -> ControlResult<()> {
        let unavailable = |error: std::io::Error| ControlError::PortUnavailable {
            port,
            reason: error.to_string(),
        };
        let std_socket =
            std::net::UdpSocket::bind((self.settings.bind_ip, port)).map_err(unavailable)?;
        std_socket.set_nonblocking(true).map_err(unavailable)?;
        let mut socket = mio::net::UdpSocket::from_std(std_socket);
        self.poll
            .registry()
            .register(&mut socket, Token(usize::from(port)), Interest::READABLE)
            .map_err(unavailable)?;
        self.sockets.insert(
            port,
            super::Port {
                socket,
                read_in_turn: 0,
                pending: false,
            },
        );
        Ok(())
    }

    fn send_dtmf(
        &mut self,
        now_ms: u64,
        id: SessionId,
        leg: String,
        body: DtmfRequest,
    ) -> ControlResult<()> {
        let digits: Vec<char> = body.digits.chars().collect();
        if digits.is_empty() || digits.len() > MAX_QUEUED_DIGITS {
            return Err(self.refuse(Refusal::BadRequest("1..=64 digits")));
        }
        if digits
            .iter()
            .any(|d| crate::dtmf::Digit::from_char(*d).is_none())
        {
            return Err(self.refuse(Refusal::BadRequest("digit must be 0-9 * # A-D")));
        }
        let index = match self.relay.session(&id) {
            None => return Err(self.refuse(Refusal::UnknownSession)),
            Some(session) => match session.leg_index(&leg) {
                Some(index) => index,
                None => return Err(self.refuse(Refusal::UnknownLeg)),
            },
        };
        let queued = self
            .extras
            .get(&id)
            .and_then(|e| e.digits.get(&index.0))
            .map_or(0, |(queue, _)| queue.len());
        if queued + digits.len() > MAX_QUEUED_DIGITS {
            return Err(self.refuse(Refusal::LegBusy));
        }
        let mut rest = digits.into_iter();
        if queued == 0 {
            // Nothing queued: the first digit starts now (or is refused, changing nothing).
            let first = rest.next().ok_or(Refusal::BadRequest("1..=64 digits"))?;
            let command = Command::SendDtmf {
                session: id.clone(),
                leg,
                digit: first,
                duration_ms: body.duration_ms,
            };
            self.relay.handle(now_ms, command)?;
        }
        let extras = self.extras.entry(id).or_default();
        let (queue, duration_ms) = extras
            .digits
            .entry(index.0)
            .or_insert_with(|| (VecDeque::new(), body.duration_ms));
        *duration_ms = body.duration_ms;
        queue.extend(rest);
        Ok(())
    }

    /// A refusal decided by the shell itself (not by the relay core), counted like the
    /// core's own.
    fn refuse(&mut self, refusal: Refusal) -> ControlError {
        match refusal {
            Refusal::UnknownSession => self.counters.refused_unknown_session += 1,
            Refusal::PortPoolExhausted => self.counters.refused_pool_exhausted += 1,
            Refusal::BadSdp(_) => self.counters.refused_bad_sdp += 1,
            _ => self.counters.refused_other += 1,
        }
        ControlError::Refused(refusal)
    }

    fn recording(
        &mut self,
        now_ms: u64,
        id: SessionId,
        action: RecordingAction,
        by: &str,
    ) -> ControlResult<RecordingStatus> {
        let by_owned = by.to_string();
        if by.is_empty() || by.len() > control::MAX_ID_LEN {
            return Err(self.refuse(Refusal::BadRequest("by must be 1..=128 bytes")));
        }
        let command = match action {
            RecordingAction::Start => Command::StartRecording {
                session: id.clone(),
                by: by_owned,
            },
            RecordingAction::Pause => Command::PauseRecording {
                session: id.clone(),
                by: by_owned,
            },
            RecordingAction::Resume => Command::ResumeRecording {
                session: id.clone(),
                by: by_owned,
            },
            RecordingAction::Stop => Command::StopRecording {
                session: id.clone(),
                by: by_owned,
            },
        };
        self.relay.handle(now_ms, command)?;
        let extras = self.extras.entry(id.clone()).or_default();
        let mut failure = None;
        match action {
            RecordingAction::Start => {
                self.recordings_made += 1;
                let name = files::file_name(&id.0, self.recordings_made);
                let path = self.settings.recordings_dir.join(name);
                match RecordingFile::create(path.clone(), now_ms, by) {
                    Ok(file) => {
                        extras.recording = Some(file);
                        extras.last_file = Some(path);
                    }
                    Err(error) => failure = Some(error.to_string()),
                }
            }
            RecordingAction::Pause => {
                if let Some(file) = extras.recording.as_mut() {
                    file.pause(now_ms, by);
                }
            }
            RecordingAction::Resume => {
                if let Some(file) = extras.recording.as_mut() {
                    file.resume(now_ms, by);
                }
            }
            RecordingAction::Stop => {
                if let Some(file) = extras.recording.take() {
                    if let Err(error) = file.finish(now_ms, by) {
                        failure = Some(error.to_string());
                    }
                }
            }
        }
        if let Some(reason) = failure {
            // The file could not be written: the session's recording is stopped so that its
            // state says what is true, and the stop is in the audit trail.
            let stop = Command::StopRecording {
                session: id.clone(),
                by: "relay: recording file failed".to_string(),
            };
            let _ = self.relay.handle(now_ms, stop);
            return Err(ControlError::RecordingFailed(reason));
        }
        tracing::info!(session = %id.0, ?action, by, "recording");
        self.recording_status(&id)
    }

    fn recording_status(&self, id: &SessionId) -> ControlResult<RecordingStatus> {
        let session = self.relay.session(id).ok_or(Refusal::UnknownSession)?;
        let file = self
            .extras
            .get(id)
            .and_then(|e| e.last_file.as_ref())
            .map(|p| p.to_string_lossy().into_owned());
        Ok(RecordingStatus {
            state: api::recording_state_name(session.recording()).to_string(),
            file,
            audit: session.audit().iter().map(api::AuditEntry::from).collect(),
        })
    }

    fn session_view(&mut self, now_ms: u64, id: SessionId) -> ControlResult<SessionView> {
        let reports = match self.relay.handle(
            now_ms,
            Command::Statistics {
                session: id.clone(),
            },
        )? {
            Reply::Statistics(reports) => reports,
            other => panic!("Relay::handle answers Statistics with Statistics, not {other:?}"),
        };
        let recording = self.recording_status(&id)?;
        let events = self
            .extras
            .get(&id)
            .map(|e| e.events.iter().cloned().collect())
            .unwrap_or_default();
        Ok(SessionView {
            session_id: id.0,
            legs: reports.iter().map(LegView::from).collect(),
            recording,
            events,
        })
    }

    fn remove_session(&mut self, now_ms: u64, id: SessionId) -> ControlResult<SessionRemoved> {
        let released = match self.relay.handle(
            now_ms,
            Command::RemoveSession {
                session: id.clone(),
            },
        )? {
            Reply::Removed(released) => released,
            other => panic!("Relay::handle answers RemoveSession with Removed, not {other:?}"),
        };
        for pair in &released {
            self.close_port(pair.rtp);
            self.close_port(pair.rtcp);
        }
        let mut recording_file = None;
        if let Some(extras) = self.extras.remove(&id) {
            if let Some(file) = extras.recording {
                match file.finish(now_ms, "relay: session removed") {
                    Ok(path) => recording_file = Some(path.to_string_lossy().into_owned()),
                    Err(error) => tracing::warn!(%error, "recording not finished"),
                }
            }
        }
        tracing::info!(session = %id.0, "session removed");
        Ok(SessionRemoved {
            released_rtp_ports: released.iter().map(|p| p.rtp).collect(),
            recording_file,
        })
    }

    fn load(&mut self, now_ms: u64) -> Load {
        let relay = self.relay.counters();
        let mut counters = self.counters;
        counters.datagrams_unknown_port = relay.datagrams_unknown_port;
        // The shell's own refusals plus the core's.
        counters.refused_unknown_session += relay.refused_unknown_session;
        counters.refused_pool_exhausted += relay.refused_pool_exhausted;
        counters.refused_bad_sdp += relay.refused_bad_sdp;
        counters.refused_other += relay.refused_other;
        let pool = self.relay.pool();
        Load {
            sessions: self.relay.session_count(),
            legs: pool.allocated_count(),
            packets_per_second: self.received_rate.rate(now_ms),
            cpu_seconds: load::cpu_seconds(),
            port_pairs_free: pool.free_count(),
            port_pairs_capacity: pool.capacity(),
            counters,
        }
    }
}
