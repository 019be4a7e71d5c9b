//! One leg of a relay session: its local ports, what its SDP said, the symmetric-latching
//! state machine, its receive statistics and counters, its DTMF detector and whatever the
//! relay is generating towards it (a prompt, music on hold, DTMF).
//!
//! Latching (symmetric RTP, for phones behind NAT):
//! - Unlatched: media towards the leg goes to the address of its SDP. The first valid RTP
//!   packet from any source latches that source; from then on media goes there.
//! - Latched on A: packets from A are accepted. Packets from another source B are dropped
//!   and counted, except that the leg re-latches to B when B has sent
//!   [`LatchPolicy::relatch_packets`] consecutive packets (none from A in between) and A has
//!   been silent for at least [`LatchPolicy::relatch_quiet_ms`]. The packet that completes
//!   the re-latch is accepted. So a phone that changes network (A goes silent, B starts)
//!   recovers after a short pause, while a spoofer cannot take over a live stream.
//! - A new remote SDP (re-INVITE) resets the leg to unlatched.
//!
//! RTCP follows its own, simpler rule: with rtcp-mux it must come from the latched RTP
//! source; without, the first RTCP source with the RTP source's IP address is latched.

use crate::dtmf::DtmfDetector;
use crate::generated::Generated;
use crate::port_pool::PortPair;
use crate::sdp::RemoteAudio;
use crate::stats::ReceiveStatistics;
use std::net::SocketAddr;

/// The re-latch policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatchPolicy {
    /// Consecutive packets from a new source needed to move to it.
    pub relatch_packets: u32,
    /// Silence of the latched source needed before moving.
    pub relatch_quiet_ms: u64,
}

impl Default for LatchPolicy {
    fn default() -> Self {
        LatchPolicy {
            relatch_packets: 5,
            relatch_quiet_ms: 500,
        }
    }
}

/// The latching state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latch {
    /// No packet yet: media goes to the SDP address.
    Unlatched,
    /// Media comes from, and goes to, `addr`.
    Latched {
        /// The latched source.
        addr: SocketAddr,
        /// Last packet accepted from it.
        last_packet_ms: u64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    addr: SocketAddr,
    consecutive: u32,
}

/// What the latch made of a packet's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceVerdict {
    /// From the latched source.
    Accepted,
    /// First packet: the source is now latched.
    Latched,
    /// The leg moved to this new source.
    Relatched,
    /// From a source other than the latched one.
    Foreign,
}

/// Per-leg counters of what was dropped or done.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegCounters {
    /// Datagrams that were not valid RTP/RTCP.
    pub dropped_malformed: u64,
    /// Packets from a source other than the latched one.
    pub dropped_foreign_source: u64,
    /// Packets with a payload type the leg did not negotiate.
    pub dropped_unknown_payload_type: u64,
    /// Packets towards this leg not sent: no address known yet.
    pub not_sent_no_destination: u64,
    /// Packets towards this leg replaced by a prompt or DTMF being played to it.
    pub not_sent_generated_media: u64,
    /// Packets towards this leg not sent: its codecs cannot carry them.
    pub not_sent_codec: u64,
    /// Times the leg moved to a new source.
    pub relatches: u64,
    /// RTCP packets received and passed on.
    pub rtcp_packets: u64,
    /// DTMF digits detected.
    pub dtmf_digits: u64,
}

/// One leg.
#[derive(Debug, Clone)]
pub struct Leg {
    /// The caller's name for the leg.
    pub name: String,
    /// Local ports.
    pub ports: PortPair,
    /// The remote SDP's audio stream, once known.
    pub remote: Option<RemoteAudio>,
    /// `o=` version of the local SDP, bumped on each remote update.
    pub sdp_version: u64,
    latch: Latch,
    candidate: Option<Candidate>,
    rtcp_source: Option<SocketAddr>,
    /// Receive statistics.
    pub stats: ReceiveStatistics,
    /// Counters.
    pub counters: LegCounters,
    /// DTMF detector.
    pub dtmf: DtmfDetector,
    /// Media generated towards this leg, if any.
    pub generated: Option<Generated>,
}

impl Leg {
    /// A new leg with no remote description yet.
    pub fn new(name: String, ports: PortPair) -> Leg {
        Leg {
            name,
            ports,
            remote: None,
            sdp_version: 1,
            latch: Latch::Unlatched,
            candidate: None,
            rtcp_source: None,
            stats: ReceiveStatistics::default(),
            counters: LegCounters::default(),
            dtmf: DtmfDetector::default(),
            generated: None,
        }
    }

    /// Applies a (new) remote description: back to unlatched.
    pub fn set_remote(&mut self, remote: RemoteAudio) {
        if self.remote.is_some() {
            self.sdp_version += 1;
        }
        self.remote = Some(remote);
        self.latch = Latch::Unlatched;
        self.candidate = None;
        self.rtcp_source = None;
    }

    /// The latch state.
    pub fn latch(&self) -> Latch {
        self.latch
    }

    /// Runs the latching state machine for an RTP packet from `from`.
    pub fn admit_rtp(
        &mut self,
        now_ms: u64,
        from: SocketAddr,
        policy: LatchPolicy,
    ) -> SourceVerdict {
        match self.latch {
            Latch::Unlatched => {
                self.latch = Latch::Latched {
                    addr: from,
                    last_packet_ms: now_ms,
                };
                SourceVerdict::Latched
            }
            Latch::Latched { addr, .. } if addr == from => {
                self.latch = Latch::Latched {
                    addr,
                    last_packet_ms: now_ms,
                };
                self.candidate = None;
                SourceVerdict::Accepted
            }
            Latch::Latched { last_packet_ms, .. } => {
                let consecutive = match self.candidate {
                    Some(c) if c.addr == from => c.consecutive.saturating_add(1),
                    _ => 1,
                };
                let quiet = now_ms.saturating_sub(last_packet_ms) >= policy.relatch_quiet_ms;
                if consecutive >= policy.relatch_packets && quiet {
                    self.latch = Latch::Latched {
                        addr: from,
                        last_packet_ms: now_ms,
                    };
                    self.candidate = None;
                    self.rtcp_source = None;
                    self.counters.relatches += 1;
                    SourceVerdict::Relatched
                } else {
                    self.candidate = Some(Candidate {
                        addr: from,
                        consecutive,
                    });
                    self.counters.dropped_foreign_source += 1;
                    SourceVerdict::Foreign
                }
            }
        }
    }

    /// Decides whether an RTCP packet from `from` is accepted (and latches its source).
    pub fn admit_rtcp(&mut self, from: SocketAddr) -> bool {
        let muxed = self.remote.as_ref().is_some_and(|r| r.rtcp_mux);
        let accepted = match (self.latch, self.rtcp_source) {
            (Latch::Latched { addr, .. }, _) if muxed => addr == from,
            (_, Some(source)) => source == from,
            (Latch::Latched { addr, .. }, None) => addr.ip() == from.ip(),
            (Latch::Unlatched, None) => true,
        };
        if accepted {
            if !muxed {
                self.rtcp_source = Some(from);
            }
            self.counters.rtcp_packets += 1;
        } else {
            self.counters.dropped_foreign_source += 1;
        }
        accepted
    }

    /// Where RTP for this leg goes: the latched source, else the SDP address.
    pub fn rtp_destination(&self) -> Option<SocketAddr> {
        match self.latch {
            Latch::Latched { addr, .. } => Some(addr),
            Latch::Unlatched => self.remote.as_ref().map(|r| r.rtp_addr),
        }
    }

    /// Where RTCP for this leg goes.
    pub fn rtcp_destination(&self) -> Option<SocketAddr> {
        let remote = self.remote.as_ref()?;
        if remote.rtcp_mux {
            return self.rtp_destination();
        }
        if let Some(source) = self.rtcp_source {
            return Some(source);
        }
        match self.latch {
            Latch::Latched { addr, .. } => {
                Some(SocketAddr::new(addr.ip(), addr.port().wrapping_add(1)))
            }
            Latch::Unlatched => Some(remote.rtcp_addr),
        }
    }

    /// The local port RTCP for this leg is sent from.
    pub fn rtcp_send_port(&self) -> u16 {
        if self.remote.as_ref().is_some_and(|r| r.rtcp_mux) {
            self.ports.rtp
        } else {
            self.ports.rtcp
        }
    }

    /// Asserts the leg's invariants.
    pub fn check_invariants(&self) {
        assert_eq!(
            self.ports.rtcp,
            self.ports.rtp + 1,
            "RTCP port is RTP port + 1"
        );
        if let Some(candidate) = self.candidate {
            match self.latch {
                Latch::Latched { addr, .. } => assert_ne!(
                    addr, candidate.addr,
                    "a re-latch candidate differs from the latched source"
                ),
                Latch::Unlatched => panic!("a re-latch candidate exists only when latched"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("socket address")
    }

    #[test]
    fn latch_relatch_and_spoofing() {
        let mut leg = Leg::new(
            "a".into(),
            PortPair {
                rtp: 40000,
                rtcp: 40001,
            },
        );
        let policy = LatchPolicy {
            relatch_packets: 3,
            relatch_quiet_ms: 100,
        };
        let phone = addr("192.0.2.1:5000");
        let spoofer = addr("198.51.100.66:6666");
        let moved = addr("192.0.2.1:5002");
        let steps: &[(u64, SocketAddr, SourceVerdict)] = &[
            (0, phone, SourceVerdict::Latched),
            (20, phone, SourceVerdict::Accepted),
            (25, spoofer, SourceVerdict::Foreign),
            (26, spoofer, SourceVerdict::Foreign),
            (27, spoofer, SourceVerdict::Foreign), // 3 packets but the phone is not quiet
            (40, phone, SourceVerdict::Accepted),  // resets the candidate
            (300, moved, SourceVerdict::Foreign),
            (320, spoofer, SourceVerdict::Foreign), // interleaving resets the count
            (340, moved, SourceVerdict::Foreign),
            (360, moved, SourceVerdict::Foreign),
            (380, moved, SourceVerdict::Relatched),
            (400, phone, SourceVerdict::Foreign),
            (420, moved, SourceVerdict::Accepted),
        ];
        for (now, from, expected) in steps {
            assert_eq!(
                leg.admit_rtp(*now, *from, policy),
                *expected,
                "at {now} from {from}"
            );
            leg.check_invariants();
        }
        assert_eq!(leg.rtp_destination(), Some(moved));
        assert_eq!(leg.counters.relatches, 1);
        assert_eq!(leg.counters.dropped_foreign_source, 8);
    }

    #[test]
    fn rtcp_follows_the_rtp_source_ip() {
        let mut leg = Leg::new(
            "a".into(),
            PortPair {
                rtp: 40000,
                rtcp: 40001,
            },
        );
        let phone = addr("192.0.2.1:5000");
        leg.admit_rtp(0, phone, LatchPolicy::default());
        assert_eq!(leg.rtcp_destination(), None, "no SDP yet, nothing known");
        assert!(!leg.admit_rtcp(addr("198.51.100.1:5001")));
        assert!(leg.admit_rtcp(addr("192.0.2.1:7001")));
        assert!(!leg.admit_rtcp(addr("192.0.2.1:7003")));
        assert_eq!(leg.counters.rtcp_packets, 1);
    }
}
