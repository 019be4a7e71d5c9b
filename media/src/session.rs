//! The sans-IO relay session: two or more legs; packets in, actions out.
//!
//! [`Session::on_packet`] takes one datagram received on a leg's ports and returns what to
//! do: forward it (rewritten for continuity, re-typed or transcoded to the receiving leg's
//! codec) to every other leg, drop it with a reason, record it, report a DTMF digit.
//! [`Session::on_tick`] drives what the relay generates itself (prompts, music on hold,
//! DTMF) and the DTMF timeout; [`Session::next_timer_ms`] says when to call it next.
//!
//! Forwarding: RTP from leg `i` goes to every other leg `j` that has a remote SDP and an
//! address, unless the relay is generating media towards `j`; each (j, i) pair has its own
//! [`OutgoingStream`]. Generated media towards `j` uses the stream of `j`'s first peer, so
//! a prompt and the peer's voice share one SSRC with continuous numbers. RTCP passes through
//! unchanged to each other leg's RTCP address. With more than two legs there is no mixing:
//! each leg receives one stream per other leg.
//!
//! Recording: while active (not paused), audio from legs 0 and 1 is emitted as
//! [`Action::Record`] for the shell's [`crate::recording::WavRecorder`] (channel = leg).

use crate::dtmf::{self, DetectedDigit, Digit, TelephoneEvent};
use crate::g711::G711Law;
use crate::generated::{DtmfSchedule, Generated};
use crate::leg::{LatchPolicy, Leg, SourceVerdict};
use crate::playout::{Playout, PromptAudio};
use crate::port_pool::PortPair;
use crate::recording::{AuditAction, AuditRecord};
use crate::refusal::Refusal;
use crate::rtp::{self, OutgoingHeader, Packet, PacketError};
use crate::sdp::RemoteAudio;
use crate::stream::OutgoingStream;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Most legs per session (a call, a consultation, a supervisor, a recorder tap...).
pub const MAX_LEGS: usize = 8;
/// Clock rate of everything the relay carries.
const CLOCK_RATE_HZ: u32 = 8000;
/// Prefix of SSRCs of generated streams (prompts, DTMF), followed by a counter.
const GENERATED_SSRC_BASE: u32 = 0x4341_0000;

/// Index of a leg in its session (stable: legs are never removed from a session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegIndex(pub usize);

/// Why a datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not valid RTP/RTCP.
    Malformed(PacketError),
    /// From a source other than the latched one.
    ForeignSource,
    /// A payload type the leg did not negotiate.
    UnknownPayloadType(u8),
    /// The leg has no remote SDP yet.
    NoRemoteDescription,
    /// A telephone-event packet too short to read.
    BadTelephoneEvent,
    /// No such leg (a bug in the caller; never from the relay itself).
    UnknownLeg,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `bytes` from local port `from_port` to `to_addr`.
    Forward {
        /// Receiving leg.
        to_leg: LegIndex,
        /// Local port to send from (symmetric RTP).
        from_port: u16,
        /// Destination.
        to_addr: SocketAddr,
        /// The datagram.
        bytes: Vec<u8>,
    },
    /// The datagram was dropped (already counted).
    Drop {
        /// Leg it arrived on.
        leg: LegIndex,
        /// Why.
        reason: DropReason,
    },
    /// Audio to record (channel = leg index).
    Record {
        /// Leg the audio came from.
        leg: LegIndex,
        /// Arrival time.
        arrival_ms: u64,
        /// Source SSRC.
        ssrc: u32,
        /// RTP timestamp.
        timestamp: u32,
        /// Law of the payload.
        law: G711Law,
        /// G.711 payload.
        payload: Vec<u8>,
    },
    /// A DTMF digit was received on a leg.
    DtmfDetected {
        /// Leg.
        leg: LegIndex,
        /// Digit and timing.
        digit: DetectedDigit,
    },
    /// A leg latched (or moved to) a source.
    SourceLatched {
        /// Leg.
        leg: LegIndex,
        /// Source address.
        addr: SocketAddr,
        /// True for a move from an earlier source.
        relatched: bool,
    },
    /// A prompt or DTMF towards a leg has finished.
    GeneratedFinished {
        /// Leg.
        leg: LegIndex,
    },
}

/// Recording state of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingState {
    /// Not recording.
    Off,
    /// Recording.
    Recording,
    /// Recording, paused (silence).
    Paused,
}

/// What kind of media a packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MediaKind {
    Audio(G711Law),
    Event,
}

/// A relay session.
#[derive(Debug, Clone)]
pub struct Session {
    legs: Vec<Leg>,
    streams: BTreeMap<(usize, usize), OutgoingStream>,
    policy: LatchPolicy,
    recording: RecordingState,
    audit: Vec<AuditRecord>,
    generated_streams: u32,
}

impl Session {
    /// An empty session.
    pub fn new(policy: LatchPolicy) -> Session {
        Session {
            legs: Vec::new(),
            streams: BTreeMap::new(),
            policy,
            recording: RecordingState::Off,
            audit: Vec::new(),
            generated_streams: 0,
        }
    }

    /// Adds a leg on `ports`.
    pub fn add_leg(&mut self, name: &str, ports: PortPair) -> Result<LegIndex, Refusal> {
        if self.leg_index(name).is_some() {
            return Err(Refusal::BadRequest("leg name already used"));
        }
        if self.legs.len() >= MAX_LEGS {
            return Err(Refusal::TooManyLegs);
        }
        self.legs.push(Leg::new(name.to_string(), ports));
        Ok(LegIndex(self.legs.len() - 1))
    }

    /// The index of the leg called `name`.
    pub fn leg_index(&self, name: &str) -> Option<LegIndex> {
        self.legs.iter().position(|l| l.name == name).map(LegIndex)
    }

    /// A leg.
    pub fn leg(&self, index: LegIndex) -> Option<&Leg> {
        self.legs.get(index.0)
    }

    /// All legs, by index.
    pub fn legs(&self) -> &[Leg] {
        &self.legs
    }

    /// Applies a remote description to a leg (the leg goes back to unlatched).
    pub fn set_remote(&mut self, index: LegIndex, remote: RemoteAudio) -> Result<(), Refusal> {
        let leg = self.legs.get_mut(index.0).ok_or(Refusal::UnknownLeg)?;
        leg.set_remote(remote);
        Ok(())
    }

    /// The recording state.
    pub fn recording(&self) -> RecordingState {
        self.recording
    }

    /// The recording audit trail.
    pub fn audit(&self) -> &[AuditRecord] {
        &self.audit
    }

    /// One datagram received on a leg's ports from `from`.
    pub fn on_packet(
        &mut self,
        now_ms: u64,
        index: LegIndex,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Vec<Action> {
        let drop = |reason| vec![Action::Drop { leg: index, reason }];
        let policy = self.policy;
        let Some(source) = self.legs.get_mut(index.0) else {
            return drop(DropReason::UnknownLeg);
        };
        let header = match rtp::classify(bytes) {
            Err(error) => {
                source.counters.dropped_malformed += 1;
                return drop(DropReason::Malformed(error));
            }
            Ok(Packet::Rtcp(_)) => {
                if !source.admit_rtcp(from) {
                    return drop(DropReason::ForeignSource);
                }
                return self.forward_rtcp(index, bytes);
            }
            Ok(Packet::Rtp(header)) => header,
        };
        let Some(remote) = source.remote.as_ref() else {
            return drop(DropReason::NoRemoteDescription);
        };
        let kind = if remote.telephone_event == Some(header.payload_type) {
            MediaKind::Event
        } else if let Some(law) = remote.law_of(header.payload_type) {
            MediaKind::Audio(law)
        } else {
            source.counters.dropped_unknown_payload_type += 1;
            return drop(DropReason::UnknownPayloadType(header.payload_type));
        };
        let mut actions = Vec::new();
        match source.admit_rtp(now_ms, from, policy) {
            SourceVerdict::Foreign => return drop(DropReason::ForeignSource),
            SourceVerdict::Accepted => {}
            verdict @ (SourceVerdict::Latched | SourceVerdict::Relatched) => {
                let relatched = verdict == SourceVerdict::Relatched;
                if relatched {
                    source.stats.restart_stream();
                }
                actions.push(Action::SourceLatched {
                    leg: index,
                    addr: from,
                    relatched,
                });
            }
        }
        let payload = header.payload(bytes);
        source.stats.record(
            now_ms,
            CLOCK_RATE_HZ,
            header.sequence,
            header.timestamp,
            bytes.len(),
            payload.len(),
        );
        match kind {
            MediaKind::Event => match TelephoneEvent::decode(payload) {
                Ok(event) => {
                    for digit in source.dtmf.on_packet(now_ms, header.timestamp, event) {
                        source.counters.dtmf_digits += 1;
                        actions.push(Action::DtmfDetected { leg: index, digit });
                    }
                }
                Err(_) => {
                    actions.push(Action::Drop {
                        leg: index,
                        reason: DropReason::BadTelephoneEvent,
                    });
                    return actions;
                }
            },
            MediaKind::Audio(law) => {
                if self.recording == RecordingState::Recording && index.0 < 2 {
                    actions.push(Action::Record {
                        leg: index,
                        arrival_ms: now_ms,
                        ssrc: header.ssrc,
                        timestamp: header.timestamp,
                        law,
                        payload: payload.to_vec(),
                    });
                }
            }
        }
        for target in 0..self.legs.len() {
            if target != index.0 {
                if let Some(action) =
                    self.forward_rtp(now_ms, index, LegIndex(target), kind, &header, bytes)
                {
                    actions.push(action);
                }
            }
        }
        actions
    }

    fn forward_rtp(
        &mut self,
        now_ms: u64,
        from_leg: LegIndex,
        to_leg: LegIndex,
        kind: MediaKind,
        header: &rtp::RtpHeader,
        bytes: &[u8],
    ) -> Option<Action> {
        let target = self.legs.get_mut(to_leg.0)?;
        if target.generated.is_some() {
            target.counters.not_sent_generated_media += 1;
            return None;
        }
        let (Some(remote), Some(to_addr)) = (target.remote.as_ref(), target.rtp_destination())
        else {
            target.counters.not_sent_no_destination += 1;
            return None;
        };
        // Payload type on the target side, and a transcoding if its laws differ.
        let (payload_type, transcode) = match kind {
            MediaKind::Event => match remote.telephone_event {
                Some(pt) => (pt, None),
                None => {
                    target.counters.not_sent_codec += 1;
                    return None;
                }
            },
            MediaKind::Audio(law) => match remote.payload_type_of(law) {
                Some(pt) => (pt, None),
                None => match remote.preferred_codec() {
                    Some((target_law, pt)) => (pt, Some((law, target_law))),
                    None => {
                        target.counters.not_sent_codec += 1;
                        return None;
                    }
                },
            },
        };
        let from_port = target.ports.rtp;
        let mapped = self.streams.entry((to_leg.0, from_leg.0)).or_default().map(
            now_ms,
            header.ssrc,
            header.sequence,
            header.timestamp,
        );
        let marker = header.marker || (mapped.source_changed && kind != MediaKind::Event);
        let out = match transcode {
            Some((from_law, to_law)) => {
                let payload = from_law.transcode(header.payload(bytes), to_law);
                rtp::build_packet(
                    OutgoingHeader {
                        marker,
                        payload_type,
                        sequence: mapped.sequence,
                        timestamp: mapped.timestamp,
                        ssrc: mapped.ssrc,
                    },
                    &payload,
                )
            }
            None => {
                let mut out = bytes.to_vec();
                if mapped.rewritten {
                    rtp::rewrite_header(&mut out, mapped.ssrc, mapped.sequence, mapped.timestamp);
                }
                if payload_type != header.payload_type {
                    rtp::rewrite_payload_type(&mut out, payload_type);
                }
                if marker && !header.marker {
                    out[1] |= 0x80;
                }
                out
            }
        };
        Some(Action::Forward {
            to_leg,
            from_port,
            to_addr,
            bytes: out,
        })
    }

    fn forward_rtcp(&mut self, from_leg: LegIndex, bytes: &[u8]) -> Vec<Action> {
        let mut actions = Vec::new();
        for (index, target) in self.legs.iter_mut().enumerate() {
            if index == from_leg.0 {
                continue;
            }
            match target.rtcp_destination() {
                Some(to_addr) => actions.push(Action::Forward {
                    to_leg: LegIndex(index),
                    from_port: target.rtcp_send_port(),
                    to_addr,
                    bytes: bytes.to_vec(),
                }),
                None => target.counters.not_sent_no_destination += 1,
            }
        }
        actions
    }

    fn next_generated_ssrc(&mut self) -> u32 {
        self.generated_streams = self.generated_streams.wrapping_add(1);
        GENERATED_SSRC_BASE | (self.generated_streams & 0xFFFF)
    }

    /// Starts playing `fragments` (PCM) to a leg, in the leg's preferred law.
    pub fn play(
        &mut self,
        now_ms: u64,
        index: LegIndex,
        fragments: &[PromptAudio],
        looping: bool,
    ) -> Result<(), Refusal> {
        let ssrc = self.next_generated_ssrc();
        let leg = self.legs.get_mut(index.0).ok_or(Refusal::UnknownLeg)?;
        let (law, _) = leg
            .remote
            .as_ref()
            .and_then(RemoteAudio::preferred_codec)
            .ok_or(Refusal::LegNotNegotiated)?;
        if matches!(leg.generated, Some(Generated::Dtmf(_))) {
            return Err(Refusal::LegBusy);
        }
        let playout = Playout::new(now_ms, law, fragments.to_vec(), looping, 0, 0)
            .map_err(Refusal::PromptUnplayable)?;
        // A new prompt replaces a prompt or music on hold in progress.
        leg.generated = Some(Generated::Playout { playout, ssrc });
        Ok(())
    }

    /// Sends a DTMF digit to a leg as RFC 4733 events.
    pub fn send_dtmf(
        &mut self,
        now_ms: u64,
        index: LegIndex,
        digit: Digit,
        duration_ms: u32,
    ) -> Result<(), Refusal> {
        let ssrc = self.next_generated_ssrc();
        let leg = self.legs.get_mut(index.0).ok_or(Refusal::UnknownLeg)?;
        let remote = leg.remote.as_ref().ok_or(Refusal::LegNotNegotiated)?;
        if remote.telephone_event.is_none() {
            return Err(Refusal::NoTelephoneEvent);
        }
        if leg.generated.is_some() {
            return Err(Refusal::LegBusy);
        }
        leg.generated = Some(Generated::Dtmf(DtmfSchedule {
            packets: dtmf::generate(digit, duration_ms, 20, 10),
            start_ms: now_ms,
            next: 0,
            ssrc,
            timestamp: 0,
        }));
        Ok(())
    }

    /// Stops a prompt, music on hold or DTMF towards a leg; true if one was running.
    pub fn stop_generated(&mut self, index: LegIndex) -> Result<bool, Refusal> {
        let leg = self.legs.get_mut(index.0).ok_or(Refusal::UnknownLeg)?;
        Ok(leg.generated.take().is_some())
    }

    /// When [`Session::on_tick`] should next run.
    pub fn next_timer_ms(&self) -> Option<u64> {
        self.legs
            .iter()
            .flat_map(|leg| {
                let generated = leg.generated.as_ref().and_then(Generated::next_due_ms);
                [generated, leg.dtmf.deadline_ms()]
            })
            .flatten()
            .min()
    }

    /// Lets time pass: sends due generated packets, reports timed-out DTMF.
    pub fn on_tick(&mut self, now_ms: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        for index in 0..self.legs.len() {
            let leg_index = LegIndex(index);
            let peer = (0..self.legs.len()).find(|i| *i != index).unwrap_or(index);
            let leg = &mut self.legs[index];
            if let Some(digit) = leg.dtmf.on_tick(now_ms) {
                leg.counters.dtmf_digits += 1;
                actions.push(Action::DtmfDetected {
                    leg: leg_index,
                    digit,
                });
            }
            let packets = match (leg.generated.as_mut(), leg.remote.as_ref()) {
                (Some(generated), Some(remote)) => generated.due_packets(remote, now_ms),
                _ => Vec::new(),
            };
            let finished = leg.generated.as_ref().is_some_and(Generated::is_finished);
            if finished {
                leg.generated = None;
            }
            let destination = leg.rtp_destination();
            let from_port = leg.ports.rtp;
            if destination.is_none() && !packets.is_empty() {
                leg.counters.not_sent_no_destination += packets.len() as u64;
            }
            let stream = self.streams.entry((index, peer)).or_default();
            for packet in packets {
                let Some(to_addr) = destination else { break };
                let mapped = stream.map(now_ms, packet.ssrc, packet.sequence, packet.timestamp);
                let header = OutgoingHeader {
                    marker: packet.marker || (mapped.source_changed && !packet.is_event),
                    payload_type: packet.payload_type,
                    sequence: mapped.sequence,
                    timestamp: mapped.timestamp,
                    ssrc: mapped.ssrc,
                };
                actions.push(Action::Forward {
                    to_leg: leg_index,
                    from_port,
                    to_addr,
                    bytes: rtp::build_packet(header, &packet.payload),
                });
            }
            if finished {
                actions.push(Action::GeneratedFinished { leg: leg_index });
            }
        }
        actions
    }

    /// Starts recording.
    pub fn start_recording(&mut self, now_ms: u64, by: &str) -> Result<(), Refusal> {
        self.recording_transition(now_ms, by, AuditAction::Started)
    }

    /// Pauses recording (the span is silence in the file).
    pub fn pause_recording(&mut self, now_ms: u64, by: &str) -> Result<(), Refusal> {
        self.recording_transition(now_ms, by, AuditAction::Paused)
    }

    /// Resumes recording.
    pub fn resume_recording(&mut self, now_ms: u64, by: &str) -> Result<(), Refusal> {
        self.recording_transition(now_ms, by, AuditAction::Resumed)
    }

    /// Stops recording.
    pub fn stop_recording(&mut self, now_ms: u64, by: &str) -> Result<(), Refusal> {
        self.recording_transition(now_ms, by, AuditAction::Stopped)
    }

    fn recording_transition(
        &mut self,
        now_ms: u64,
        by: &str,
        action: AuditAction,
    ) -> Result<(), Refusal> {
        use RecordingState::{Off, Paused, Recording};
        let next = match (self.recording, action) {
            (Off, AuditAction::Started) => Recording,
            (_, AuditAction::Started) => return Err(Refusal::RecordingActive),
            (Off, _) => return Err(Refusal::RecordingNotActive),
            (Recording, AuditAction::Paused) => Paused,
            (Paused, AuditAction::Paused) => return Err(Refusal::RecordingAlreadyPaused),
            (Paused, AuditAction::Resumed) => Recording,
            (Recording, AuditAction::Resumed) => return Err(Refusal::RecordingNotPaused),
            (_, AuditAction::Stopped) => Off,
        };
        self.recording = next;
        self.audit.push(AuditRecord {
            action,
            by: by.to_string(),
            at_ms: now_ms,
        });
        Ok(())
    }

    /// Asserts the session's invariants (a bug if one fails).
    pub fn check_invariants(&self) {
        assert!(self.legs.len() <= MAX_LEGS, "at most MAX_LEGS legs");
        for (i, leg) in self.legs.iter().enumerate() {
            leg.check_invariants();
            for other in &self.legs[i + 1..] {
                assert_ne!(leg.ports.rtp, other.ports.rtp, "legs never share ports");
                assert_ne!(leg.name, other.name, "leg names are unique");
            }
        }
        for (to, from) in self.streams.keys() {
            assert!(
                *to < self.legs.len() && *from < self.legs.len(),
                "streams join existing legs"
            );
        }
        let expected = match self.audit.last().map(|record| record.action) {
            None | Some(AuditAction::Stopped) => RecordingState::Off,
            Some(AuditAction::Started | AuditAction::Resumed) => RecordingState::Recording,
            Some(AuditAction::Paused) => RecordingState::Paused,
        };
        assert_eq!(
            self.recording, expected,
            "the recording state follows its audit trail"
        );
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
