//! G.711 playout of prompts: 20 ms packets paced by the caller's clock, sequence and
//! timestamp advancing by one and by 160 per packet, looping for music on hold, and an
//! announcement assembled from fragments played back to back.
//!
//! Prompts are kept as 8 kHz PCM ([`PromptAudio`], shared, never copied per playout) and
//! encoded in the leg's law one frame at a time as the frames fall due, so a leg on four
//! minutes of music on hold costs a few pointers, not a copy of the recording.
//!
//! Pacing: frame `k` is due at `start_ms + 20 * k`. [`Playout::poll`] returns the frames due
//! at `now_ms`; when the caller fell more than [`MAX_FRAMES_PER_POLL`] frames behind, the
//! oldest are skipped (their audio and timestamps advance, their sequence numbers do not), so
//! a stalled shell never sends a burst and the receiver sees a gap, not compressed audio.
//!
//! Invariant: emitted sequence numbers are consecutive and timestamps are
//! `first_timestamp + 160 * frame_index` (mod 2^32).

use crate::g711::G711Law;
use std::sync::Arc;

/// Packet duration.
pub const FRAME_MS: u64 = 20;
/// Samples (and G.711 bytes) per packet at 8 kHz.
pub const FRAME_SAMPLES: usize = 160;
/// Most frames returned by one poll (the catch-up bound).
pub const MAX_FRAMES_PER_POLL: u64 = 5;
/// Longest playout content accepted (10 minutes of audio).
pub const MAX_CONTENT_SAMPLES: usize = 10 * 60 * 8000;

/// A prompt's audio: 16-bit PCM at 8 kHz, shared by every playout of it.
#[derive(Clone, PartialEq, Eq)]
pub struct PromptAudio(Arc<[i16]>);

impl PromptAudio {
    /// The samples.
    pub fn samples(&self) -> &[i16] {
        &self.0
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no sample.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<i16>> for PromptAudio {
    fn from(samples: Vec<i16>) -> Self {
        PromptAudio(samples.into())
    }
}

impl From<&[i16]> for PromptAudio {
    fn from(samples: &[i16]) -> Self {
        PromptAudio(samples.into())
    }
}

impl std::fmt::Debug for PromptAudio {
    // Minutes of music are millions of samples: never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PromptAudio({} samples)", self.0.len())
    }
}

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
    fragments: Vec<PromptAudio>,
    /// Where each fragment starts in the content (ascending; empty fragments share a start).
    starts: Vec<usize>,
    /// Samples of all fragments.
    total: usize,
    looping: bool,
    /// Next sample to play, in `0..=total`.
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
        fragments: Vec<PromptAudio>,
        looping: bool,
        first_sequence: u16,
        first_timestamp: u32,
    ) -> Result<Playout, PlayoutError> {
        let mut starts = Vec::with_capacity(fragments.len());
        let mut total = 0usize;
        for fragment in &fragments {
            starts.push(total);
            total = total.saturating_add(fragment.len());
        }
        if total == 0 {
            return Err(PlayoutError::Empty);
        }
        if total > MAX_CONTENT_SAMPLES {
            return Err(PlayoutError::TooLong);
        }
        Ok(Playout {
            law,
            fragments,
            starts,
            total,
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
        let length = self.total as u64;
        let target = self.position as u64 + samples;
        if self.looping {
            self.position = (target % length) as usize;
        } else if target >= length {
            // Nothing left to play; the last partial frame is still sent by next_frame.
            self.position = self.total;
        } else {
            self.position = target as usize;
        }
        self.frames_done += frames;
    }

    /// The samples from `position` to the end of the fragment holding it, at most `most`.
    fn samples_at(&self, position: usize, most: usize) -> &[i16] {
        assert!(position < self.total, "a position inside the content");
        // The last fragment starting at or before `position` holds it (empty fragments
        // share their start with the next one).
        let index = self.starts.partition_point(|start| *start <= position) - 1;
        let offset = position - self.starts[index];
        let samples = &self.fragments[index].samples()[offset..];
        &samples[..samples.len().min(most)]
    }

    fn next_frame(&mut self) -> PlayoutFrame {
        let mut payload = Vec::with_capacity(FRAME_SAMPLES);
        // Bound: each pass adds at least one sample, or wraps (a looping fill wraps at most
        // FRAME_SAMPLES / total + 1 times), or ends the frame.
        while payload.len() < FRAME_SAMPLES {
            if self.position >= self.total {
                if self.looping {
                    self.position = 0;
                } else {
                    break;
                }
            }
            let law = self.law;
            let chunk = self.samples_at(self.position, FRAME_SAMPLES - payload.len());
            let taken = chunk.len();
            payload.extend(chunk.iter().map(|s| law.encode_sample(*s)));
            self.position += taken;
        }
        payload.resize(FRAME_SAMPLES, self.law.silence_code());
        if !self.looping && self.position >= self.total {
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
        let mut playout = Playout::new(
            1000,
            G711Law::MuLaw,
            vec![audio.clone().into()],
            false,
            65534,
            4_294_967_000,
        )
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
        let mut playout = Playout::new(
            0,
            G711Law::ALaw,
            vec![a.clone().into(), b.clone().into()],
            false,
            0,
            0,
        )
        .expect("playout");
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
        let mut playout = Playout::new(0, G711Law::MuLaw, vec![tune.clone().into()], true, 0, 0)
            .expect("playout");
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
    fn frames_span_fragments_and_skip_empty_ones_while_looping() {
        let a = ramp(100, 0);
        let b = ramp(250, -2000);
        let fragments = vec![a.clone().into(), Vec::new().into(), b.clone().into()];
        let mut playout = Playout::new(0, G711Law::ALaw, fragments, true, 0, 0).expect("playout");
        let mut content = a.clone();
        content.extend(&b);
        let encoded = G711Law::ALaw.encode(&content);
        let mut bytes = Vec::new();
        for now in (0..400).step_by(20) {
            for frame in playout.poll(now) {
                bytes.extend(frame.payload);
            }
        }
        assert_eq!(bytes.len(), 20 * FRAME_SAMPLES);
        for (i, byte) in bytes.iter().enumerate() {
            assert_eq!(*byte, encoded[i % encoded.len()], "sample {i}");
        }
        // A stall skips audio across fragments: 60 frames due at 1580 ms, 55 of them
        // skipped, then the 5 newest played from where the skipped audio ends.
        let frames = playout.poll(1580);
        assert_eq!(frames.len() as u64, MAX_FRAMES_PER_POLL);
        let resumed = (75 * FRAME_SAMPLES) % encoded.len();
        assert_eq!(frames[0].payload[0], encoded[resumed]);
    }

    #[test]
    fn a_stalled_caller_gets_no_burst() {
        let tune = ramp(8000, 0);
        let mut playout = Playout::new(0, G711Law::MuLaw, vec![tune.clone().into()], true, 10, 0)
            .expect("playout");
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
            Playout::new(0, G711Law::MuLaw, vec![Vec::new().into()], false, 0, 0).err(),
            Some(PlayoutError::Empty)
        );
    }
}
