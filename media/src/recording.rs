//! Stereo WAV recording (PCM16, 8 kHz), one channel per leg, from G.711 packets.
//!
//! Placement: each channel's first packet (and its first after a source change, a resume, or
//! a timestamp jump) is placed by arrival time; following packets of the same SSRC are placed
//! by their RTP timestamp relative to that anchor, so network jitter does not shift the
//! audio. Frames are written once they are older than [`JITTER_WINDOW_MS`] behind the newest
//! arrival (or the clock given to [`WavRecorder::tick`]); anything not covered by a packet,
//! including paused spans, is written as silence. Packets that arrive later than that are
//! dropped and counted.
//!
//! Invariant: the file's frame count equals the time from start to stop at 8 kHz (plus any
//! audio placed beyond the stop); both channels always have the same length.

use crate::g711::G711Law;
use std::collections::VecDeque;
use std::io::{Seek, SeekFrom, Write};

/// Sample rate of recordings.
pub const SAMPLE_RATE_HZ: u32 = 8000;
/// Channels (legs) per recording.
pub const CHANNELS: usize = 2;
/// How long frames wait for late packets before they are written.
pub const JITTER_WINDOW_MS: u64 = 200;
/// A packet whose timestamp places it further than this from its arrival time re-anchors.
pub const MAX_TIMESTAMP_DRIFT_MS: u64 = 1000;
const SAMPLES_PER_MS: u64 = 8;
const WAV_HEADER_LEN: u64 = 44;

/// A recording failure (the writer failed, or the recording is over).
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The writer returned an error.
    #[error("recording I/O: {0}")]
    Io(#[from] std::io::Error),
    /// Channel index out of range.
    #[error("channel {0} does not exist (stereo recording)")]
    NoSuchChannel(usize),
    /// The recording would exceed the 4 GiB WAV limit.
    #[error("recording exceeds the WAV size limit")]
    TooLong,
}

/// What an audit record says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// Recording started.
    Started,
    /// Recording paused (audio replaced by silence).
    Paused,
    /// Recording resumed.
    Resumed,
    /// Recording stopped.
    Stopped,
}

/// Who did what to a recording, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// What happened.
    pub action: AuditAction,
    /// Who asked (an opaque actor name from the control API).
    pub by: String,
    /// When, in the caller's clock.
    pub at_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Anchor {
    ssrc: u32,
    timestamp: u32,
    position: u64,
}

#[derive(Debug, Clone, Default)]
struct Channel {
    /// Samples from the recorder's `written_frames` on.
    pending: VecDeque<i16>,
    anchor: Option<Anchor>,
}

/// Counters of a recording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordingCounters {
    /// Packets placed.
    pub packets: u64,
    /// Samples dropped because they arrived after their frames were written.
    pub late_samples_dropped: u64,
    /// Packets ignored while paused.
    pub packets_while_paused: u64,
}

/// A stereo WAV recorder writing to any seekable writer.
#[derive(Debug)]
pub struct WavRecorder<W: Write + Seek> {
    writer: W,
    start_ms: u64,
    written_frames: u64,
    channels: [Channel; CHANNELS],
    paused: bool,
    audit: Vec<AuditRecord>,
    counters: RecordingCounters,
}

impl<W: Write + Seek> WavRecorder<W> {
    /// Starts a recording at `now_ms`: writes a header with placeholder sizes.
    pub fn start(mut writer: W, now_ms: u64, by: &str) -> Result<Self, RecordingError> {
        writer.write_all(&wav_header(0))?;
        Ok(WavRecorder {
            writer,
            start_ms: now_ms,
            written_frames: 0,
            channels: [Channel::default(), Channel::default()],
            paused: false,
            audit: vec![AuditRecord {
                action: AuditAction::Started,
                by: by.to_string(),
                at_ms: now_ms,
            }],
            counters: RecordingCounters::default(),
        })
    }

    /// Places one packet's audio on `channel`.
    pub fn push(
        &mut self,
        arrival_ms: u64,
        channel: usize,
        ssrc: u32,
        timestamp: u32,
        law: G711Law,
        payload: &[u8],
    ) -> Result<(), RecordingError> {
        if channel >= CHANNELS {
            return Err(RecordingError::NoSuchChannel(channel));
        }
        if self.paused {
            self.counters.packets_while_paused += 1;
            return Ok(());
        }
        let arrival_position = arrival_ms.saturating_sub(self.start_ms) * SAMPLES_PER_MS;
        let state = &mut self.channels[channel];
        let position = match state.anchor {
            Some(anchor) if anchor.ssrc == ssrc => {
                let delta = i64::from(timestamp.wrapping_sub(anchor.timestamp) as i32);
                let by_timestamp = anchor.position as i64 + delta;
                let drift = (by_timestamp - arrival_position as i64).unsigned_abs();
                if by_timestamp >= 0 && drift <= MAX_TIMESTAMP_DRIFT_MS * SAMPLES_PER_MS {
                    Some(by_timestamp as u64)
                } else {
                    None
                }
            }
            _ => None,
        };
        let position = position.unwrap_or_else(|| {
            state.anchor = Some(Anchor {
                ssrc,
                timestamp,
                position: arrival_position,
            });
            arrival_position
        });
        self.counters.packets += 1;
        let mut samples = law.decode(payload);
        let mut start = position;
        if start < self.written_frames {
            let late = (self.written_frames - start).min(samples.len() as u64);
            self.counters.late_samples_dropped += late;
            samples.drain(..late as usize);
            start = self.written_frames;
        }
        let offset = (start - self.written_frames) as usize;
        let pending = &mut state.pending;
        if pending.len() < offset + samples.len() {
            pending.resize(offset + samples.len(), 0);
        }
        for (i, sample) in samples.into_iter().enumerate() {
            pending[offset + i] = sample;
        }
        self.flush_until(arrival_ms.saturating_sub(JITTER_WINDOW_MS))
    }

    /// Lets time pass: frames older than the jitter window are written (silence if empty).
    pub fn tick(&mut self, now_ms: u64) -> Result<(), RecordingError> {
        self.flush_until(now_ms.saturating_sub(JITTER_WINDOW_MS))
    }

    /// Pauses: packets are ignored until [`WavRecorder::resume`]; the span is silent.
    pub fn pause(&mut self, now_ms: u64, by: &str) {
        if !self.paused {
            self.paused = true;
            self.audit.push(AuditRecord {
                action: AuditAction::Paused,
                by: by.to_string(),
                at_ms: now_ms,
            });
        }
    }

    /// Resumes; the next packet of each channel is placed by its arrival time.
    pub fn resume(&mut self, now_ms: u64, by: &str) {
        if self.paused {
            self.paused = false;
            for channel in &mut self.channels {
                channel.anchor = None;
            }
            self.audit.push(AuditRecord {
                action: AuditAction::Resumed,
                by: by.to_string(),
                at_ms: now_ms,
            });
        }
    }

    /// True while paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The audit trail so far.
    pub fn audit(&self) -> &[AuditRecord] {
        &self.audit
    }

    /// The counters so far.
    pub fn counters(&self) -> RecordingCounters {
        self.counters
    }

    /// Stops: writes everything up to `now_ms`, fixes the header sizes, and returns the
    /// writer with the audit trail.
    pub fn finish(
        mut self,
        now_ms: u64,
        by: &str,
    ) -> Result<(W, Vec<AuditRecord>, RecordingCounters), RecordingError> {
        let pending_end = self
            .channels
            .iter()
            .map(|c| c.pending.len() as u64)
            .max()
            .unwrap_or(0)
            + self.written_frames;
        let until_frames = pending_end.max(now_ms.saturating_sub(self.start_ms) * SAMPLES_PER_MS);
        self.write_frames_until(until_frames)?;
        let data_len = self.written_frames * (CHANNELS as u64) * 2;
        let data_len = u32::try_from(data_len).map_err(|_| RecordingError::TooLong)?;
        self.writer.seek(SeekFrom::Start(0))?;
        self.writer.write_all(&wav_header(data_len))?;
        self.writer.seek(SeekFrom::End(0))?;
        self.writer.flush()?;
        self.audit.push(AuditRecord {
            action: AuditAction::Stopped,
            by: by.to_string(),
            at_ms: now_ms,
        });
        Ok((self.writer, self.audit, self.counters))
    }

    fn flush_until(&mut self, horizon_ms: u64) -> Result<(), RecordingError> {
        let frames = horizon_ms.saturating_sub(self.start_ms) * SAMPLES_PER_MS;
        self.write_frames_until(frames)
    }

    fn write_frames_until(&mut self, frames: u64) -> Result<(), RecordingError> {
        if frames <= self.written_frames {
            return Ok(());
        }
        let total_bytes = WAV_HEADER_LEN + frames * (CHANNELS as u64) * 2;
        if total_bytes > u64::from(u32::MAX) {
            return Err(RecordingError::TooLong);
        }
        let count = (frames - self.written_frames) as usize;
        let mut bytes = Vec::with_capacity(count * CHANNELS * 2);
        for _ in 0..count {
            for channel in &mut self.channels {
                let sample = channel.pending.pop_front().unwrap_or(0);
                bytes.extend_from_slice(&sample.to_le_bytes());
            }
        }
        self.writer.write_all(&bytes)?;
        self.written_frames = frames;
        Ok(())
    }
}

fn wav_header(data_len: u32) -> [u8; 44] {
    let mut header = [0u8; 44];
    let byte_rate = SAMPLE_RATE_HZ * CHANNELS as u32 * 2;
    header[0..4].copy_from_slice(b"RIFF");
    header[4..8].copy_from_slice(&data_len.saturating_add(36).to_le_bytes());
    header[8..12].copy_from_slice(b"WAVE");
    header[12..16].copy_from_slice(b"fmt ");
    header[16..20].copy_from_slice(&16u32.to_le_bytes());
    header[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    header[22..24].copy_from_slice(&(CHANNELS as u16).to_le_bytes());
    header[24..28].copy_from_slice(&SAMPLE_RATE_HZ.to_le_bytes());
    header[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    header[32..34].copy_from_slice(&(CHANNELS as u16 * 2).to_le_bytes());
    header[34..36].copy_from_slice(&16u16.to_le_bytes());
    header[36..40].copy_from_slice(b"data");
    header[40..44].copy_from_slice(&data_len.to_le_bytes());
    header
}

/// A decoded PCM16 WAV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavData {
    /// Channel count.
    pub channels: u16,
    /// Sample rate.
    pub sample_rate_hz: u32,
    /// Samples per channel.
    pub per_channel: Vec<Vec<i16>>,
}

/// Why a WAV file could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WavError {
    /// Not RIFF/WAVE, or a chunk runs past the end.
    #[error("not a well-formed WAV file")]
    Malformed,
    /// Not 16-bit PCM.
    #[error("only 16-bit PCM is read")]
    Unsupported,
}

/// Reads a PCM16 WAV file (for tests and tools checking recordings).
pub fn read_wav(bytes: &[u8]) -> Result<WavData, WavError> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(WavError::Malformed);
    }
    let mut offset = 12usize;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    // Bound: each chunk advances the offset by at least 8 bytes.
    while offset + 8 <= bytes.len() {
        let id = &bytes[offset..offset + 4];
        let size = u32::from_le_bytes([
            bytes[offset + 4],
            bytes[offset + 5],
            bytes[offset + 6],
            bytes[offset + 7],
        ]) as usize;
        let body = bytes
            .get(offset + 8..offset + 8 + size)
            .ok_or(WavError::Malformed)?;
        if id == b"fmt " {
            if body.len() < 16 {
                return Err(WavError::Malformed);
            }
            let field16 = |at: usize| u16::from_le_bytes([body[at], body[at + 1]]);
            let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
            format = Some((field16(0), field16(2), rate, field16(14)));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = format.ok_or(WavError::Malformed)?;
            if tag != 1 || bits != 16 || channels == 0 {
                return Err(WavError::Unsupported);
            }
            let mut per_channel = vec![Vec::new(); usize::from(channels)];
            for (i, pair) in body.chunks_exact(2).enumerate() {
                per_channel[i % usize::from(channels)].push(i16::from_le_bytes([pair[0], pair[1]]));
            }
            return Ok(WavData {
                channels,
                sample_rate_hz: rate,
                per_channel,
            });
        }
        offset += 8 + size + size % 2;
    }
    Err(WavError::Malformed)
}
