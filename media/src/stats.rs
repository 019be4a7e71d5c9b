//! Per-leg receive statistics after RFC 3550: packet and byte counts, extended highest
//! sequence number (appendix A.1), cumulative loss (section 6.4.1) and interarrival jitter
//! (appendix A.8), computed from (arrival time, RTP timestamp) pairs.
//!
//! Invariant: `packets` counts every packet given to [`ReceiveStatistics::record`] whose
//! sequence was accepted; `cumulative_lost() == expected() - packets_counted` (negative with
//! duplicates, as the RFC allows).

/// Largest forward jump still taken as the same sequence (RFC 3550 A.1).
const MAX_DROPOUT: u16 = 3000;
/// Largest backward jump still taken as reordering (RFC 3550 A.1).
const MAX_MISORDER: u16 = 100;
/// Sequence numbers per cycle.
const SEQUENCE_MOD: u64 = 1 << 16;

/// Statistics of one received RTP stream (one leg).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReceiveStatistics {
    packets: u64,
    bytes: u64,
    payload_bytes: u64,
    /// Packets counted for loss (inside the sequence tracking).
    packets_counted: u64,
    sequence: Option<SequenceState>,
    jitter: Option<JitterState>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct SequenceState {
    base_extended: u64,
    max_sequence: u16,
    cycles: u64,
    /// After a big jump, the sequence number that would confirm a restart.
    bad_sequence: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct JitterState {
    last_transit: i64,
    jitter: f64,
}

/// A copy of the numbers, for the control API and metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatisticsSnapshot {
    /// Packets received.
    pub packets: u64,
    /// Datagram bytes received (headers included).
    pub bytes: u64,
    /// Payload bytes received (the RFC 3550 octet count).
    pub payload_bytes: u64,
    /// Extended highest sequence number received (cycles << 16 | highest).
    pub extended_highest_sequence: u64,
    /// Packets expected minus packets received (RFC 3550 6.4.1).
    pub cumulative_lost: i64,
    /// Interarrival jitter in timestamp units.
    pub jitter_timestamp_units: f64,
}

impl ReceiveStatistics {
    /// Counts one valid RTP packet received at `arrival_ms`.
    pub fn record(
        &mut self,
        arrival_ms: u64,
        clock_rate_hz: u32,
        sequence: u16,
        timestamp: u32,
        datagram_len: usize,
        payload_len: usize,
    ) {
        self.packets += 1;
        self.bytes += datagram_len as u64;
        self.payload_bytes += payload_len as u64;
        if self.update_sequence(sequence) {
            self.packets_counted += 1;
        }
        self.update_jitter(arrival_ms, clock_rate_hz, timestamp);
    }

    /// RFC 3550 A.1 `update_seq`, without the probation of new sources (the relay latches
    /// sources itself). Returns false when the packet is left out of the loss count.
    fn update_sequence(&mut self, sequence: u16) -> bool {
        let Some(state) = self.sequence.as_mut() else {
            self.sequence = Some(SequenceState {
                base_extended: u64::from(sequence),
                max_sequence: sequence,
                cycles: 0,
                bad_sequence: None,
            });
            return true;
        };
        let delta = sequence.wrapping_sub(state.max_sequence);
        if delta < MAX_DROPOUT {
            if sequence < state.max_sequence {
                state.cycles += SEQUENCE_MOD;
            }
            state.max_sequence = sequence;
            state.bad_sequence = None;
            true
        } else if delta <= u16::MAX - MAX_MISORDER {
            // A very large jump: take it as a restart only if the next packet follows it.
            if state.bad_sequence == Some(sequence) {
                self.sequence = None;
                self.packets_counted = 0;
                self.update_sequence(sequence)
            } else {
                state.bad_sequence = Some(sequence.wrapping_add(1));
                false
            }
        } else {
            // Duplicate or reordered packet: counted, max unchanged.
            true
        }
    }

    fn update_jitter(&mut self, arrival_ms: u64, clock_rate_hz: u32, timestamp: u32) {
        // Arrival in timestamp units; the wrapping difference with the RTP timestamp is
        // the relative transit time (A.8).
        let arrival_units = arrival_ms.wrapping_mul(u64::from(clock_rate_hz)) / 1000;
        let transit = i64::from((arrival_units as u32).wrapping_sub(timestamp) as i32);
        match self.jitter.as_mut() {
            None => {
                self.jitter = Some(JitterState {
                    last_transit: transit,
                    jitter: 0.0,
                })
            }
            Some(state) => {
                let d = (i64::from((transit - state.last_transit) as i32)).abs() as f64;
                state.last_transit = transit;
                state.jitter += (d - state.jitter) / 16.0;
            }
        }
    }

    /// Extended highest sequence number received.
    pub fn extended_highest_sequence(&self) -> u64 {
        self.sequence
            .map(|s| s.cycles + u64::from(s.max_sequence))
            .unwrap_or(0)
    }

    /// Packets expected since the first (RFC 3550 6.4.1).
    pub fn expected(&self) -> u64 {
        self.sequence
            .map(|s| s.cycles + u64::from(s.max_sequence) - s.base_extended + 1)
            .unwrap_or(0)
    }

    /// Cumulative number of packets lost (negative with duplicates).
    pub fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.packets_counted as i64
    }

    /// Interarrival jitter, in timestamp units.
    pub fn jitter(&self) -> f64 {
        self.jitter.map(|j| j.jitter).unwrap_or(0.0)
    }

    /// Packets received.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// A copy of every number.
    pub fn snapshot(&self) -> StatisticsSnapshot {
        StatisticsSnapshot {
            packets: self.packets,
            bytes: self.bytes,
            payload_bytes: self.payload_bytes,
            extended_highest_sequence: self.extended_highest_sequence(),
            cumulative_lost: self.cumulative_lost(),
            jitter_timestamp_units: self.jitter(),
        }
    }

    /// Forgets the sequence and jitter history (a new source was latched), keeping counts.
    pub fn restart_stream(&mut self) {
        self.sequence = None;
        self.jitter = None;
        self.packets_counted = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn feed(stats: &mut ReceiveStatistics, packets: &[(u64, u16, u32)]) {
        for (arrival_ms, sequence, timestamp) in packets {
            stats.record(*arrival_ms, 8000, *sequence, *timestamp, 172, 160);
        }
    }

    #[test]
    fn perfect_stream_has_no_loss_and_no_jitter() {
        let mut stats = ReceiveStatistics::default();
        let packets: Vec<_> = (0..50u16)
            .map(|i| {
                (
                    1000 + 20 * u64::from(i),
                    65500u16.wrapping_add(i),
                    160 * u32::from(i),
                )
            })
            .collect();
        feed(&mut stats, &packets);
        let snap = stats.snapshot();
        assert_eq!(snap.packets, 50);
        assert_eq!(snap.bytes, 50 * 172);
        assert_eq!(snap.payload_bytes, 50 * 160);
        assert_eq!(snap.cumulative_lost, 0);
        assert_eq!(snap.extended_highest_sequence, 65536 + 13);
        assert_eq!(snap.jitter_timestamp_units, 0.0);
    }

    #[test]
    fn loss_duplicates_and_reordering() {
        let mut stats = ReceiveStatistics::default();
        // 10, 11, 13 (12 lost), 15, 14 (reordered), 15 (duplicate)
        feed(
            &mut stats,
            &[
                (0, 10, 0),
                (20, 11, 160),
                (60, 13, 480),
                (100, 15, 800),
                (101, 14, 640),
                (102, 15, 800),
            ],
        );
        assert_eq!(stats.expected(), 6);
        assert_eq!(
            stats.cumulative_lost(),
            0,
            "one lost and one duplicate cancel out"
        );
        assert_eq!(stats.extended_highest_sequence(), 15);
    }

    #[test]
    fn jitter_follows_a8_on_a_known_sequence() {
        let mut stats = ReceiveStatistics::default();
        // Packets 20 ms apart in media time, arriving with 0, +5, 0 ms delay.
        feed(&mut stats, &[(0, 1, 0), (25, 2, 160), (40, 3, 320)]);
        // |D| = 40 then 40 timestamp units: J = 40/16 = 2.5, then 2.5 + (40-2.5)/16.
        let expected = 2.5 + (40.0 - 2.5) / 16.0;
        assert!(
            (stats.jitter() - expected).abs() < 1e-9,
            "{}",
            stats.jitter()
        );
    }

    #[test]
    fn big_jump_needs_confirmation() {
        let mut stats = ReceiveStatistics::default();
        feed(&mut stats, &[(0, 100, 0), (20, 101, 160), (40, 30000, 320)]);
        assert_eq!(
            stats.extended_highest_sequence(),
            101,
            "single stray packet ignored"
        );
        feed(&mut stats, &[(60, 30001, 480), (80, 30002, 640)]);
        assert_eq!(
            stats.extended_highest_sequence(),
            30002,
            "restart confirmed"
        );
        assert_eq!(stats.cumulative_lost(), 0);
        assert_eq!(stats.packets(), 5);
    }

    proptest! {
        /// Model: a stream with gaps of up to 50 and no reordering; the loss is the sum of
        /// the gaps and the highest sequence is the unwrapped last one.
        #[test]
        fn loss_matches_a_simple_model(start in any::<u16>(),
                                       gaps in proptest::collection::vec(0u64..50, 1..300)) {
            let mut stats = ReceiveStatistics::default();
            let mut unwrapped = u64::from(start);
            let mut model_lost = 0u64;
            stats.record(0, 8000, start, 0, 12, 0);
            for (i, gap) in gaps.iter().enumerate() {
                unwrapped += gap + 1;
                model_lost += gap;
                stats.record(20 * (i as u64 + 1), 8000, unwrapped as u16, 0, 12, 0);
            }
            prop_assert_eq!(stats.cumulative_lost(), model_lost as i64);
            prop_assert_eq!(stats.extended_highest_sequence(), unwrapped);
            prop_assert_eq!(stats.packets(), gaps.len() as u64 + 1);
        }

        /// Model: jitter computed directly from A.8 with floating point on the same pairs.
        #[test]
        fn jitter_matches_a8_model(delays in proptest::collection::vec(0u64..200, 2..100)) {
            let mut stats = ReceiveStatistics::default();
            let mut model = 0.0f64;
            let mut last_transit: Option<i64> = None;
            for (i, delay) in delays.iter().enumerate() {
                let media_ms = 20 * i as u64;
                let arrival_ms = 1_000 + media_ms + delay;
                let timestamp = (media_ms * 8) as u32;
                stats.record(arrival_ms, 8000, i as u16, timestamp, 172, 160);
                let transit = (arrival_ms * 8) as i64 - i64::from(timestamp);
                if let Some(last) = last_transit {
                    model += ((transit - last).abs() as f64 - model) / 16.0;
                }
                last_transit = Some(transit);
            }
            prop_assert!((stats.jitter() - model).abs() < 1e-6);
        }
    }
}
