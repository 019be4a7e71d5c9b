//! Media the relay generates towards a leg instead of relaying the other legs: a prompt,
//! music on hold or an announcement ([`Playout`]), or a DTMF digit as RFC 4733 events.
//! Packets come out in the generated stream's own numbering; the session maps them onto the
//! leg's outgoing stream ([`crate::stream`]) so the far side sees continuity.

use crate::dtmf::EventPacket;
use crate::playout::Playout;
use crate::sdp::RemoteAudio;

/// DTMF being sent to a leg.
#[derive(Debug, Clone)]
pub struct DtmfSchedule {
    /// Packets with their send offsets.
    pub packets: Vec<EventPacket>,
    /// When the first packet is due.
    pub start_ms: u64,
    /// Next packet to send.
    pub next: usize,
    /// Source SSRC of the generated stream.
    pub ssrc: u32,
    /// Event timestamp in the generated stream.
    pub timestamp: u32,
}

/// What the relay generates towards a leg instead of relaying the other legs.
#[derive(Debug, Clone)]
pub enum Generated {
    /// A prompt or music on hold.
    Playout {
        /// The playout.
        playout: Playout,
        /// Source SSRC of the generated stream.
        ssrc: u32,
    },
    /// A DTMF digit.
    Dtmf(DtmfSchedule),
}

impl Generated {
    /// When the next packet is due, if any.
    pub fn next_due_ms(&self) -> Option<u64> {
        match self {
            Generated::Playout { playout, .. } => playout.next_due_ms(),
            Generated::Dtmf(s) => s.packets.get(s.next).map(|p| s.start_ms + p.send_offset_ms),
        }
    }

    /// True when everything was sent.
    pub fn is_finished(&self) -> bool {
        match self {
            Generated::Playout { playout, .. } => playout.is_finished(),
            Generated::Dtmf(s) => s.next >= s.packets.len(),
        }
    }
}

/// A generated packet before stream mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedPacket {
    /// Source SSRC of the generated stream.
    pub ssrc: u32,
    /// Sequence number in the generated stream.
    pub sequence: u16,
    /// Timestamp in the generated stream.
    pub timestamp: u32,
    /// Marker bit.
    pub marker: bool,
    /// True for telephone-events (no marker on a source change).
    pub is_event: bool,
    /// Payload type for the receiving leg.
    pub payload_type: u8,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Generated {
    /// The packets due at `now_ms`, typed for a leg whose SDP is `remote`.
    pub fn due_packets(&mut self, remote: &RemoteAudio, now_ms: u64) -> Vec<GeneratedPacket> {
        match self {
            Generated::Playout { playout, ssrc } => {
                let law = playout.law();
                // The law was the leg's preferred one when the prompt started; after a re-offer
                // that dropped it, transcode to the new preferred law.
                let (payload_type, target_law) = match remote.payload_type_of(law) {
                    Some(pt) => (pt, law),
                    None => match remote.preferred_codec() {
                        Some((other, pt)) => (pt, other),
                        None => return Vec::new(),
                    },
                };
                playout
                    .poll(now_ms)
                    .into_iter()
                    .map(|frame| GeneratedPacket {
                        ssrc: *ssrc,
                        sequence: frame.sequence,
                        timestamp: frame.timestamp,
                        marker: frame.marker,
                        is_event: false,
                        payload_type,
                        payload: law.transcode(&frame.payload, target_law),
                    })
                    .collect()
            }
            Generated::Dtmf(schedule) => {
                let Some(payload_type) = remote.telephone_event else {
                    schedule.next = schedule.packets.len();
                    return Vec::new();
                };
                let mut out = Vec::new();
                // Bound: at most the schedule's packets.
                while let Some(packet) = schedule.packets.get(schedule.next) {
                    if schedule.start_ms + packet.send_offset_ms > now_ms {
                        break;
                    }
                    out.push(GeneratedPacket {
                        ssrc: schedule.ssrc,
                        sequence: schedule.next as u16,
                        timestamp: schedule.timestamp,
                        marker: packet.marker,
                        is_event: true,
                        payload_type,
                        payload: packet.event.encode().to_vec(),
                    });
                    schedule.next += 1;
                }
                out
            }
        }
    }
}
