//! Continuity of an outgoing RTP stream when its source changes.
//!
//! Towards each leg, the relay sends one stream per source leg. Its SSRC is fixed by the first
//! source seen; while the source keeps its SSRC, packets pass with unchanged numbers (the
//! common case rewrites nothing). When the source SSRC changes (the phone restarted its
//! stream, a prompt starts or ends, DTMF is injected), new offsets are chosen so that the far
//! side sees the same SSRC, the next sequence number, and a timestamp advanced by the time
//! that passed since the last timestamp change (at least one 20 ms frame), and the first
//! packet after the change carries the marker bit.
//!
//! Invariant: outgoing sequence numbers never repeat across a source change (each change
//! continues from the highest sequence number sent).

/// Timestamp units per ms for every codec the relay carries (G.711, telephone-event/8000).
const UNITS_PER_MS: u64 = 8;
/// Minimum timestamp advance on a source change: one 20 ms frame.
const MIN_ADVANCE: u32 = 160;

/// The numbers to put in an outgoing packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapped {
    /// Outgoing SSRC.
    pub ssrc: u32,
    /// Outgoing sequence number.
    pub sequence: u16,
    /// Outgoing timestamp.
    pub timestamp: u32,
    /// True on the first packet after a source change (set the marker bit).
    pub source_changed: bool,
    /// True when anything differs from the input (the header must be rewritten).
    pub rewritten: bool,
}

/// One outgoing stream.
#[derive(Debug, Clone, Default)]
pub struct OutgoingStream {
    state: Option<StreamState>,
}

#[derive(Debug, Clone, Copy)]
struct StreamState {
    out_ssrc: u32,
    in_ssrc: u32,
    sequence_offset: u16,
    timestamp_offset: u32,
    highest_sequence: u16,
    highest_timestamp: u32,
    /// When `highest_timestamp` last moved forward.
    timestamp_moved_ms: u64,
    packets: u64,
}

impl OutgoingStream {
    /// Maps one packet's input numbers to the outgoing stream.
    pub fn map(&mut self, now_ms: u64, ssrc: u32, sequence: u16, timestamp: u32) -> Mapped {
        let mut source_changed = false;
        let state = match self.state.as_mut() {
            None => self.state.insert(StreamState {
                out_ssrc: ssrc,
                in_ssrc: ssrc,
                sequence_offset: 0,
                timestamp_offset: 0,
                highest_sequence: sequence.wrapping_sub(1),
                highest_timestamp: timestamp,
                timestamp_moved_ms: now_ms,
                packets: 0,
            }),
            Some(state) => {
                if state.in_ssrc != ssrc {
                    source_changed = true;
                    let elapsed_ms = now_ms.saturating_sub(state.timestamp_moved_ms);
                    let advance = u32::try_from(elapsed_ms.saturating_mul(UNITS_PER_MS))
                        .unwrap_or(u32::MAX / 2)
                        .clamp(MIN_ADVANCE, u32::MAX / 2);
                    let next_sequence = state.highest_sequence.wrapping_add(1);
                    let next_timestamp = state.highest_timestamp.wrapping_add(advance);
                    state.in_ssrc = ssrc;
                    state.sequence_offset = next_sequence.wrapping_sub(sequence);
                    state.timestamp_offset = next_timestamp.wrapping_sub(timestamp);
                }
                state
            }
        };
        let out_sequence = sequence.wrapping_add(state.sequence_offset);
        let out_timestamp = timestamp.wrapping_add(state.timestamp_offset);
        if (out_sequence.wrapping_sub(state.highest_sequence) as i16) > 0 {
            state.highest_sequence = out_sequence;
        }
        if (out_timestamp.wrapping_sub(state.highest_timestamp) as i32) > 0 {
            state.highest_timestamp = out_timestamp;
            state.timestamp_moved_ms = now_ms;
        }
        state.packets += 1;
        Mapped {
            ssrc: state.out_ssrc,
            sequence: out_sequence,
            timestamp: out_timestamp,
            source_changed,
            rewritten: state.out_ssrc != ssrc
                || state.sequence_offset != 0
                || state.timestamp_offset != 0,
        }
    }

    /// The outgoing SSRC, once a packet was mapped.
    pub fn ssrc(&self) -> Option<u32> {
        self.state.map(|s| s.out_ssrc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn first_source_passes_unchanged() {
        let mut stream = OutgoingStream::default();
        for i in 0..5u16 {
            let mapped = stream.map(u64::from(i) * 20, 77, 100 + i, 1000 + 160 * u32::from(i));
            assert_eq!((mapped.ssrc, mapped.sequence), (77, 100 + i));
            assert!(!mapped.rewritten && !mapped.source_changed);
        }
    }

    #[test]
    fn source_change_continues_numbers() {
        let mut stream = OutgoingStream::default();
        stream.map(0, 1, 65535, 4_294_967_136);
        stream.map(20, 1, 0, 0); // wraps: highest is now (0, 0)
                                 // A new source 100 ms later with unrelated numbers.
        let mapped = stream.map(120, 2, 5000, 123_456);
        assert_eq!(mapped.ssrc, 1);
        assert_eq!(mapped.sequence, 1);
        assert_eq!(mapped.timestamp, 800, "100 ms at 8 kHz");
        assert!(mapped.source_changed && mapped.rewritten);
        let next = stream.map(140, 2, 5001, 123_616);
        assert_eq!((next.sequence, next.timestamp), (2, 960));
        assert!(!next.source_changed);
        // Back to the first source immediately: at least one frame of advance.
        let back = stream.map(141, 1, 1, 160);
        assert_eq!((back.sequence, back.timestamp), (3, 1120));
    }

    #[test]
    fn events_with_a_constant_timestamp_keep_time() {
        let mut stream = OutgoingStream::default();
        stream.map(0, 1, 10, 0);
        // DTMF: same timestamp for 200 ms.
        let first = stream.map(20, 9, 0, 50);
        for (i, now) in [40u64, 60, 80, 200].iter().enumerate() {
            let m = stream.map(*now, 9, 1 + i as u16, 50);
            assert_eq!(m.timestamp, first.timestamp);
        }
        // Audio back: the timestamp reflects the 200 ms since the event began.
        let audio = stream.map(220, 1, 11, 160);
        assert_eq!(audio.timestamp, first.timestamp + 200 * 8);
    }

    proptest! {
        #[test]
        fn sequence_numbers_never_repeat(changes in proptest::collection::vec((any::<u32>(), any::<u16>(), 1u16..20), 1..30)) {
            let mut stream = OutgoingStream::default();
            let mut seen = std::collections::HashSet::new();
            let mut now = 0u64;
            for (ssrc, start, count) in changes {
                for i in 0..count {
                    now += 20;
                    let m = stream.map(now, ssrc, start.wrapping_add(i), u32::from(i) * 160);
                    prop_assert!(seen.insert(m.sequence), "sequence {} repeated", m.sequence);
                }
            }
        }
    }
}
