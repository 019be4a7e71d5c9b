//! G.711 playout of prompts: 20 ms packets paced by the caller's clock, sequence and
//! timestamp advancing by one and by 160 per packet, looping for music on hold, and an
//! announcement assembled from fragments played back to back.
//!
//! Pacing: frame `k` is due at `start_ms + 20 * k`. [`Playout::poll`] returns the frames due
//! at `now_ms`; when the caller fell more than [`MAX_FRAMES_PER_POLL`] frames behind, the
//! oldest are skipped (their audio and timestamps advance, their sequence numbers do not), so
//! a stalled shell never sends a burst and the receiver sees a gap, not compressed audio.
//!
//! Invariant: emitted sequence numbers are consecutive and timestamps are
//! `first_timestamp + 160 * frame_index` (mod 2^32).

use crate::g711::G711Law;

/// Packet duration.
pub const FRAME_MS: u64 = 20;
/// Samples (and G.711 bytes) per packet at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// Most frames returned by one poll (the catch-up bound).
pub const MAX_FRAMES_PER_POLL: u64 = 5;
/// Longest playout content accepted (10 minutes of audio).
pub const MAX_CONTENT_SAMPLES: usize = 10 * 60 * 8000;

/// A packet to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlayoutFrame {
    /// Sequence number in the playout's own stream.
    pub sequence: u16,
    /// Timestamp in the playout's own stream.
    pub timestamp: u32,
    /// Marker: first packet of the playout (start of a talkspurt).
    pub marker: bool,
    /// 160 G.711 bytes.
    pub payload: Vec<u8>,
}

/// Why a playout cannot be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PlayoutError {
    /// No samples at all.
    #[error("the prompt has no audio")]
    Empty,
    /// More than [`MAX_CONTENT_SAMPLES`].
    #[error("the prompt is longer than 10 minutes")]
    TooLong,
}

/// One playout to one leg.
#[derive(Debug, Clone)]
pub struct Playout {
    law: G711Law,
    content: Vec<u8>,
    looping: bool,
    position: usize,
    start_ms: u64,
    /// Frames accounted for (emitted or skipped).
    frames_done: u64,
    frames_emitted: u64,
    first_sequence: u16,
    first_timestamp: u32,
    finished: bool,
}

impl Playout {
    /// A playout of `fragments` back to back, starting at `now_ms` (first frame due now).
    pub fn new(
        now_ms: u64,
        law: G711Law,
        fragments: &[&[i16]],
        looping: bool,
        first_sequence: u16,
        first_timestamp: u32,
    ) -> Result<Playout, PlayoutError> {
        let total: usize = fragments.iter().map(|f| f.len()).sum();
        if total == 0 {
            return Err(PlayoutError::Empty);
        }
        if total > MAX_CONTENT_SAMPLES {
            return Err(PlayoutError::TooLong);
        }
        let mut content = Vec::with_capacity(total);
        for fragment in fragments {
            content.extend(fragment.iter().map(|s| law.encode_sample(*s)));
        }
        Ok(Playout {
            law,
            content,
            looping,
            position: 0,
            start_ms: now_ms,
            frames_done: 0,
            frames_emitted: 0,
            first_sequence,
            first_timestamp,
            finished: false,
        })
    }

    /// The law the content is encoded in.
    pub fn law(&self) -> G711Law {
        self.law
    }

    /// True once a non-looping playout has sent its last frame.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// When the next frame is due, or None when finished.
    pub fn next_due_ms(&self) -> Option<u64> {
        (!self.finished).then(|| self.start_ms + FRAME_MS * self.frames_done)
    }

    /// Frames emitted so far.
    pub fn frames_emitted(&self) -> u64 {
        self.frames_emitted
    }

    /// The frames due at `now_ms` (at most [`MAX_FRAMES_PER_POLL`]).
    pub fn poll(&mut self, now_ms: u64) -> Vec<PlayoutFrame> {
        let mut out = Vec::new();
        if self.finished || now_ms < self.start_ms {
            return out;
        }
        let due_total = (now_ms - self.start_ms) / FRAME_MS + 1;
        let behind = due_total.saturating_sub(self.frames_done);
        if behind > MAX_FRAMES_PER_POLL {
            let skipped = behind - MAX_FRAMES_PER_POLL;
            self.skip(skipped);
        }
        // Bound: at most MAX_FRAMES_PER_POLL iterations.
        while !self.finished && self.frames_done < due_total {
            out.push(self.next_frame());
        }
        out
    }

    fn skip(&mut self, frames: u64) {
        let samples = frames.saturating_mul(FRAME_SAMPLES as u64);
        let length = self.content.len() as u64;
        let target = self.position as u64 + samples;
        if self.looping {
            self.position = (target % length) as usize;
        } else if target >= length {
            // Nothing left to play; the last partial frame is still sent by next_frame.
            self.position = self.content.len();
        } else {
            self.position = target as usize;
        }
        self.frames_done += frames;
    }

    fn next_frame(&mut self) -> PlayoutFrame {
        let mut payload = Vec::with_capacity(FRAME_SAMPLES);
        // Bound: a looping fill wraps at most FRAME_SAMPLES / len + 1 times.
        while payload.len() < FRAME_SAMPLES {
            if self.position >= self.content.len() {
                if self.looping {
                    self.position = 0;
                } else {
                    break;
                }
            }
            let take = (FRAME_SAMPLES - payload.len()).min(self.content.len() - self.position);
            payload.extend_from_slice(&self.content[self.position..self.position + take]);
            self.position += take;
        }
        payload.resize(FRAME_SAMPLES, self.law.silence_code());
        if !self.looping && self.position >= self.content.len() {
            self.finished = true;
        }
        let frame = PlayoutFrame {
            sequence: self.first_sequence.wrapping_add(self.frames_emitted as u16),
            timestamp: self
                .first_timestamp
                .wrapping_add((self.frames_done as u32).wrapping_mul(FRAME_SAMPLES as u32)),
            marker: self.frames_emitted == 0,
            payload,
        };
        self.frames_done += 1;
        self.frames_emitted += 1;
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(len: usize, start: i16) -> Vec<i16> {
        (0..len).map(|i| start + (i as i16 % 50) * 100).collect()
    }

    #[test]
    fn pacing_sequence_and_timestamps() {
        let audio = ramp(160 * 3 + 40, 0);
        let mut playout =
            Playout::new(1000, G711Law::MuLaw, &[&audio], false, 65534, 4_294_967_000)
                .expect("playout");
        assert_eq!(playout.next_due_ms(), Some(1000));
        assert!(playout.poll(999).is_empty());
        let first = playout.poll(1000);
        assert_eq!(first.len(), 1);
        assert!(first[0].marker);
        assert_eq!(playout.poll(1019), vec![]);
        let more = playout.poll(1060);
        assert_eq!(more.len(), 3, "frames at 1020, 1040, 1060");
        let all: Vec<_> = first.iter().chain(more.iter()).collect();
        let sequences: Vec<u16> = all.iter().map(|f| f.sequence).collect();
        assert_eq!(sequences, vec![65534, 65535, 0, 1]);
        let timestamps: Vec<u32> = all.iter().map(|f| f.timestamp).collect();
        assert_eq!(timestamps, vec![4_294_967_000, 4_294_967_160, 24, 184]);
        assert!(all.iter().all(|f| f.payload.len() == FRAME_SAMPLES));
        // The last frame: 40 samples of audio, then mu-law silence.
        let last = &all[3].payload;
        assert_eq!(last[..40], G711Law::MuLaw.encode(&audio[480..])[..]);
        assert!(last[40..].iter().all(|b| *b == 0xFF));
        assert!(playout.is_finished());
        assert_eq!(playout.next_due_ms(), None);
        assert!(playout.poll(5000).is_empty());
    }

    #[test]
    fn fragments_play_back_to_back() {
        let a = ramp(100, 0);
        let b = ramp(100, -3000);
        let mut playout = Playout::new(0, G711Law::ALaw, &[&a, &b], false, 0, 0).expect("playout");
        let frames = playout.poll(20);
        assert_eq!(frames.len(), 2);
        let bytes: Vec<u8> = frames.iter().flat_map(|f| f.payload.clone()).collect();
        let mut expected = G711Law::ALaw.encode(&a);
        expected.extend(G711Law::ALaw.encode(&b));
        assert_eq!(bytes[..200], expected[..]);
        assert!(playout.is_finished());
    }

    #[test]
    fn looping_wraps_without_gaps() {
        let tune = ramp(100, 0); // shorter than a frame: each frame wraps
        let encoded = G711Law::MuLaw.encode(&tune);
        let mut playout = Playout::new(0, G711Law::MuLaw, &[&tune], true, 0, 0).expect("playout");
        let mut bytes = Vec::new();
        for now in (0..2000).step_by(20) {
            for frame in playout.poll(now) {
                bytes.extend(frame.payload);
            }
        }
        assert_eq!(bytes.len(), 100 * FRAME_SAMPLES);
        for (i, byte) in bytes.iter().enumerate() {
            assert_eq!(*byte, encoded[i % 100], "sample {i}");
        }
        assert!(!playout.is_finished());
    }

    #[test]
    fn a_stalled_caller_gets_no_burst() {
        let tune = ramp(8000, 0);
        let mut playout = Playout::new(0, G711Law::MuLaw, &[&tune], true, 10, 0).expect("playout");
        assert_eq!(playout.poll(0).len(), 1);
        let frames = playout.poll(1000); // 50 frames due
        assert_eq!(frames.len() as u64, MAX_FRAMES_PER_POLL);
        assert_eq!(frames[0].sequence, 11, "sequence continues without a gap");
        assert_eq!(
            frames.last().map(|f| f.timestamp),
            Some(50 * 160),
            "timestamps keep time"
        );
        assert_eq!(playout.next_due_ms(), Some(1020));
    }

    #[test]
    fn refusals() {
        assert_eq!(
            Playout::new(0, G711Law::MuLaw, &[&[]], false, 0, 0).err(),
            Some(PlayoutError::Empty)
        );
    }
}
