//! Recording files: one stereo WAV per recording (started and stopped through the control
//! API) in the relay's recordings directory, and its audit trail as JSON next to it
//! (`<name>.audit.json`).

use super::api::AuditEntry;
use crate::g711::G711Law;
use crate::recording::{RecordingError, WavRecorder};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Longest part of a file name taken from a session id.
const MAX_NAME_FROM_ID: usize = 64;

/// A recording being written.
#[derive(Debug)]
pub struct RecordingFile {
    recorder: WavRecorder<BufWriter<File>>,
    path: PathBuf,
}

/// A file name for a session's `serial`-th recording: the id's safe characters, then the
/// serial, so that two recordings never share a file.
pub fn file_name(session_id: &str, serial: u64) -> String {
    let safe: String = session_id
        .chars()
        .take(MAX_NAME_FROM_ID)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}-{serial}.wav")
}

impl RecordingFile {
    /// Creates the file and starts the recording at `now_ms`.
    pub fn create(path: PathBuf, now_ms: u64, by: &str) -> Result<RecordingFile, RecordingError> {
        let file = File::create(&path)?;
        let recorder = WavRecorder::start(BufWriter::new(file), now_ms, by)?;
        Ok(RecordingFile { recorder, path })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Places a packet's audio.
    pub fn push(
        &mut self,
        arrival_ms: u64,
        channel: usize,
        ssrc: u32,
        timestamp: u32,
        law: G711Law,
        payload: &[u8],
    ) -> Result<(), RecordingError> {
        self.recorder
            .push(arrival_ms, channel, ssrc, timestamp, law, payload)
    }

    /// Lets time pass (writes frames older than the jitter window).
    pub fn tick(&mut self, now_ms: u64) -> Result<(), RecordingError> {
        self.recorder.tick(now_ms)
    }

    /// Pauses (audited in the file's trail).
    pub fn pause(&mut self, now_ms: u64, by: &str) {
        self.recorder.pause(now_ms, by);
    }

    /// Resumes.
    pub fn resume(&mut self, now_ms: u64, by: &str) {
        self.recorder.resume(now_ms, by);
    }

    /// Finishes the WAV and writes the audit trail next to it; returns the WAV's path.
    pub fn finish(self, now_ms: u64, by: &str) -> Result<PathBuf, RecordingError> {
        let (_writer, audit, counters) = self.recorder.finish(now_ms, by)?;
        let trail: Vec<AuditEntry> = audit.iter().map(AuditEntry::from).collect();
        let document = serde_json::json!({
            "recording": self.path.file_name().map(|n| n.to_string_lossy().into_owned()),
            "audit": trail,
            "packets": counters.packets,
            "late_samples_dropped": counters.late_samples_dropped,
            "packets_while_paused": counters.packets_while_paused,
        });
        let text = serde_json::to_vec_pretty(&document).map_err(std::io::Error::other)?;
        std::fs::write(self.path.with_extension("audit.json"), text)?;
        Ok(self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_distinct() {
        assert_eq!(file_name("call-1", 3), "call-1-3.wav");
        assert_eq!(file_name("../etc/passwd", 1), "___etc_passwd-1.wav");
        assert_eq!(file_name(&"x".repeat(200), 2).len(), 64 + "-2.wav".len());
    }
}
