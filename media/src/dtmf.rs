//! DTMF as RFC 4733 telephone-events: payload encode/decode, a detector that reports each
//! digit exactly once, and a generator of the packet sequence for one digit.
//!
//! An event is identified by its RTP timestamp (the start of the event, constant over all
//! its packets). The detector reports an event when its first end packet arrives; the
//! retransmitted end packets, duplicates and late updates of an event already reported are
//! absorbed. When every end packet is lost, the event is reported when the next event starts
//! or when no packet of it arrived for [`EVENT_TIMEOUT_MS`].
//!
//! Invariant: an event timestamp is reported at most once (within the last
//! [`REMEMBERED_EVENTS`] events).

use std::collections::VecDeque;

/// An in-progress event with no packet for this long is reported (its end packets were lost).
pub const EVENT_TIMEOUT_MS: u64 = 500;
/// How many reported event timestamps are remembered to absorb duplicates.
pub const REMEMBERED_EVENTS: usize = 32;
/// Retransmissions of the end packet (RFC 4733 2.5.1.4: three in total).
pub const END_PACKET_COPIES: usize = 3;

/// A DTMF digit (events 0..=15 of RFC 4733 section 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digit(u8);

impl Digit {
    /// From a character `0-9 * # A-D` (case-insensitive).
    pub fn from_char(c: char) -> Option<Digit> {
        let code = match c.to_ascii_uppercase() {
            d @ '0'..='9' => d as u8 - b'0',
            '*' => 10,
            '#' => 11,
            l @ 'A'..='D' => l as u8 - b'A' + 12,
            _ => return None,
        };
        Some(Digit(code))
    }

    /// From an event code 0..=15.
    pub fn from_event(code: u8) -> Option<Digit> {
        (code <= 15).then_some(Digit(code))
    }

    /// The event code.
    pub fn event(self) -> u8 {
        self.0
    }

    /// The character.
    pub fn as_char(self) -> char {
        match self.0 {
            d @ 0..=9 => char::from(b'0' + d),
            10 => '*',
            11 => '#',
            l => char::from(b'A' + (l - 12)),
        }
    }

    /// (low, high) frequencies in Hz of the DTMF tone.
    pub fn frequencies_hz(self) -> (f64, f64) {
        const LOW: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
        const HIGH: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];
        // Keypad position (row, column) of each event code.
        let (row, column) = match self.0 {
            0 => (3, 1),
            d @ 1..=9 => ((d - 1) / 3, (d - 1) % 3),
            10 => (3, 0),
            11 => (3, 2),
            l => (l - 12, 3),
        };
        (LOW[usize::from(row)], HIGH[usize::from(column)])
    }
}

/// One telephone-event payload (4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code (0..=15 for DTMF; other codes are valid events but not digits).
    pub event: u8,
    /// E bit: last packets of the event.
    pub end: bool,
    /// Volume, 0..=63 (-dBm0).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

/// A telephone-event payload shorter than 4 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("telephone-event payload of {0} bytes (needs 4)")]
pub struct EventTooShort(pub usize);

impl TelephoneEvent {
    /// Reads the first event of a payload.
    pub fn decode(payload: &[u8]) -> Result<TelephoneEvent, EventTooShort> {
        let bytes = payload.get(..4).ok_or(EventTooShort(payload.len()))?;
        Ok(TelephoneEvent {
            event: bytes[0],
            end: bytes[1] & 0x80 != 0,
            volume: bytes[1] & 0x3F,
            duration: u16::from_be_bytes([bytes[2], bytes[3]]),
        })
    }

    /// Writes the payload (the R bit is zero).
    pub fn encode(&self) -> [u8; 4] {
        let duration = self.duration.to_be_bytes();
        let end = if self.end { 0x80 } else { 0 };
        [
            self.event,
            end | (self.volume & 0x3F),
            duration[0],
            duration[1],
        ]
    }
}

/// A digit the detector recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectedDigit {
    /// The digit.
    pub digit: Digit,
    /// RTP timestamp of the start of the event.
    pub start_timestamp: u32,
    /// Duration in timestamp units (the last one seen).
    pub duration: u16,
    /// True when the end packet was seen; false when reported by supersession or timeout.
    pub ended: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    start_timestamp: u32,
    event: u8,
    duration: u16,
    last_seen_ms: u64,
}

/// Turns telephone-event packets into digits, exactly once each.
#[derive(Debug, Clone, Default)]
pub struct DtmfDetector {
    pending: Option<Pending>,
    reported: VecDeque<u32>,
}

impl DtmfDetector {
    /// Feeds one telephone-event packet; returns at most two digits (an unfinished earlier
    /// event superseded by this one, then this one if it ends here).
    pub fn on_packet(
        &mut self,
        now_ms: u64,
        timestamp: u32,
        event: TelephoneEvent,
    ) -> Vec<DetectedDigit> {
        let mut out = Vec::new();
        if self.reported.contains(&timestamp) {
            return out; // duplicate, retransmitted end, or late update
        }
        match self.pending {
            Some(p) if p.start_timestamp == timestamp => {
                let merged = Pending {
                    duration: p.duration.max(event.duration),
                    last_seen_ms: now_ms,
                    ..p
                };
                if event.end {
                    self.pending = None;
                    self.report(merged, true, &mut out);
                } else {
                    self.pending = Some(merged);
                }
            }
            Some(p) => {
                let newer = (timestamp.wrapping_sub(p.start_timestamp) as i32) > 0;
                if newer {
                    self.pending = None;
                    self.report(p, false, &mut out);
                    self.start(now_ms, timestamp, event, &mut out);
                } else if event.end {
                    // All of an older event's packets arrived late: report it now.
                    let late = Pending {
                        start_timestamp: timestamp,
                        event: event.event,
                        duration: event.duration,
                        last_seen_ms: now_ms,
                    };
                    self.report(late, true, &mut out);
                }
            }
            None => self.start(now_ms, timestamp, event, &mut out),
        }
        out
    }

    fn start(
        &mut self,
        now_ms: u64,
        timestamp: u32,
        event: TelephoneEvent,
        out: &mut Vec<DetectedDigit>,
    ) {
        let pending = Pending {
            start_timestamp: timestamp,
            event: event.event,
            duration: event.duration,
            last_seen_ms: now_ms,
        };
        if event.end {
            self.report(pending, true, out);
        } else {
            self.pending = Some(pending);
        }
    }

    fn report(&mut self, pending: Pending, ended: bool, out: &mut Vec<DetectedDigit>) {
        assert!(
            !self.reported.contains(&pending.start_timestamp),
            "an event is reported at most once"
        );
        if self.reported.len() == REMEMBERED_EVENTS {
            self.reported.pop_front();
        }
        self.reported.push_back(pending.start_timestamp);
        // Events 16..=255 (flash, tones) are absorbed but are not digits.
        if let Some(digit) = Digit::from_event(pending.event) {
            out.push(DetectedDigit {
                digit,
                start_timestamp: pending.start_timestamp,
                duration: pending.duration,
                ended,
            });
        }
    }

    /// When [`DtmfDetector::on_tick`] would report an unfinished event, if one is pending.
    pub fn deadline_ms(&self) -> Option<u64> {
        self.pending.map(|p| p.last_seen_ms + EVENT_TIMEOUT_MS)
    }

    /// Reports an event whose end packets never came, once [`EVENT_TIMEOUT_MS`] passed.
    pub fn on_tick(&mut self, now_ms: u64) -> Option<DetectedDigit> {
        let pending = self.pending?;
        if now_ms.saturating_sub(pending.last_seen_ms) < EVENT_TIMEOUT_MS {
            return None;
        }
        self.pending = None;
        let mut out = Vec::new();
        self.report(pending, false, &mut out);
        out.pop()
    }
}

/// One packet of a generated event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// When to send it, in ms after the start of the event.
    pub send_offset_ms: u64,
    /// Marker bit (first packet only).
    pub marker: bool,
    /// The payload.
    pub event: TelephoneEvent,
}

/// The packets for one digit: an update every `interval_ms` (marker on the first), then
/// the end packet sent [`END_PACKET_COPIES`] times. All share the event's RTP timestamp;
/// each gets its own sequence number when sent. Durations are in 8 kHz units.
pub fn generate(digit: Digit, duration_ms: u32, interval_ms: u32, volume: u8) -> Vec<EventPacket> {
    let interval_ms = interval_ms.clamp(10, 100);
    // 8 timestamp units per ms; an event longer than 8 s would overflow the field.
    let duration_ms = duration_ms.clamp(interval_ms, 8000);
    let mut packets = Vec::new();
    let mut elapsed_ms = 0u32;
    // Bound: duration_ms / interval_ms <= 800 updates.
    while elapsed_ms + interval_ms < duration_ms {
        elapsed_ms += interval_ms;
        packets.push(EventPacket {
            send_offset_ms: u64::from(elapsed_ms - interval_ms),
            marker: packets.is_empty(),
            event: TelephoneEvent {
                event: digit.event(),
                end: false,
                volume: volume & 0x3F,
                duration: (elapsed_ms * 8) as u16,
            },
        });
    }
    for copy in 0..END_PACKET_COPIES {
        packets.push(EventPacket {
            send_offset_ms: u64::from(elapsed_ms) + u64::from(interval_ms) * copy as u64,
            marker: packets.is_empty(),
            event: TelephoneEvent {
                event: digit.event(),
                end: true,
                volume: volume & 0x3F,
                duration: (duration_ms * 8) as u16,
            },
        });
    }
    packets
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn digits_map_both_ways() {
        for (c, code) in [
            ('0', 0),
            ('9', 9),
            ('*', 10),
            ('#', 11),
            ('A', 12),
            ('d', 15),
        ] {
            let digit = Digit::from_char(c).expect("a digit");
            assert_eq!(digit.event(), code);
            assert_eq!(digit.as_char(), c.to_ascii_uppercase());
        }
        assert_eq!(Digit::from_char('x'), None);
        assert_eq!(Digit::from_event(16), None);
        assert_eq!(
            Digit::from_char('5').map(Digit::frequencies_hz),
            Some((770.0, 1336.0))
        );
        assert_eq!(
            Digit::from_char('#').map(Digit::frequencies_hz),
            Some((941.0, 1477.0))
        );
    }

    #[test]
    fn payload_round_trip_and_known_bytes() {
        let event = TelephoneEvent {
            event: 5,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(event.encode(), [5, 0x8A, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::decode(&event.encode()), Ok(event));
        assert_eq!(TelephoneEvent::decode(&[1, 2, 3]), Err(EventTooShort(3)));
    }

    #[test]
    fn generator_sequence() {
        let digit = Digit::from_char('1').expect("digit");
        let packets = generate(digit, 100, 20, 10);
        // Updates at 20, 40, 60, 80 ms of duration, then three end packets of 100 ms.
        let durations: Vec<(u16, bool)> = packets
            .iter()
            .map(|p| (p.event.duration, p.event.end))
            .collect();
        assert_eq!(
            durations,
            vec![
                (160, false),
                (320, false),
                (480, false),
                (640, false),
                (800, true),
                (800, true),
                (800, true)
            ]
        );
        assert!(packets[0].marker && packets.iter().skip(1).all(|p| !p.marker));
        let offsets: Vec<u64> = packets.iter().map(|p| p.send_offset_ms).collect();
        assert_eq!(offsets, vec![0, 20, 40, 60, 80, 100, 120]);
    }

    #[test]
    fn lost_end_packets_reported_on_next_event_or_timeout() {
        let mut detector = DtmfDetector::default();
        let one = TelephoneEvent {
            event: 1,
            end: false,
            volume: 10,
            duration: 160,
        };
        assert!(detector.on_packet(0, 1000, one).is_empty());
        let two = TelephoneEvent {
            event: 2,
            end: false,
            volume: 10,
            duration: 160,
        };
        let out = detector.on_packet(200, 5000, two);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].digit.as_char(), out[0].ended), ('1', false));
        assert_eq!(detector.on_tick(600), None);
        let out = detector.on_tick(700).expect("timed out digit");
        assert_eq!(out.digit.as_char(), '2');
        assert_eq!(detector.on_tick(2000), None);
        // A late end packet of '2' is absorbed.
        let end_two = TelephoneEvent { end: true, ..two };
        assert!(detector.on_packet(2100, 5000, end_two).is_empty());
    }

    proptest! {
        /// Digits generated with redundant end packets, then duplicated and shuffled within
        /// a small window, are each detected exactly once and in order.
        #[test]
        fn each_digit_exactly_once(digits in proptest::collection::vec(0u8..16, 1..8),
                                   duplicates in proptest::collection::vec(0usize..64, 0..20),
                                   swaps in proptest::collection::vec(0usize..64, 0..20)) {
            let mut stream: Vec<(u32, TelephoneEvent)> = Vec::new();
            for (i, code) in digits.iter().enumerate() {
                let start = 10_000 + i as u32 * 4000;
                for packet in generate(Digit(*code), 120, 20, 10) {
                    stream.push((start, packet.event));
                }
            }
            for d in duplicates {
                let at = d % stream.len();
                let copy = stream[at];
                stream.insert(at, copy);
            }
            // Adjacent swaps reorder packets, but only within one event: a whole event
            // arriving after the next one starts is a loss pattern the relay reports late.
            for s in swaps {
                let at = s % stream.len();
                if at + 1 < stream.len() && stream[at].0 == stream[at + 1].0 {
                    stream.swap(at, at + 1);
                }
            }
            let mut detector = DtmfDetector::default();
            let mut seen = Vec::new();
            for (i, (timestamp, event)) in stream.iter().enumerate() {
                for digit in detector.on_packet(i as u64 * 20, *timestamp, *event) {
                    seen.push(digit.digit.event());
                }
            }
            seen.extend(detector.on_tick(u64::MAX / 2).map(|d| d.digit.event()));
            prop_assert_eq!(seen, digits);
        }
    }
}
