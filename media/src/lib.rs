//! carillon-media: the media relay core of Carillon.
//!
//! The crate serves media sessions keyed by an opaque [`control::SessionId`]; it knows
//! nothing of calls or agents. The core is sans-IO: time arrives as `now_ms`, bytes
//! arrive as arguments, and effects leave as values ([`session::Action`], [`control::Reply`],
//! [`refusal::Refusal`]); no core module reads a clock, opens a socket or draws a random
//! number. Only [`shell`] (the tokio shell: sockets, clock, timers, files, the control API
//! in-process and over HTTP, [`shell::serve`]) and [`peer`] (an RTP endpoint for tests and
//! benchmarks) do I/O, and they decide nothing about packets.
//! Invariants, checked by the `check_invariants()` methods after every step in tests:
//! a port pair is handed out at most once and belongs to exactly one leg; every datagram is
//! forwarded, or dropped and counted, never a panic, whatever its bytes or source; after a
//! leg latches a source, packets from any other source are dropped and counted unless the
//! documented re-latch rule ([`leg`]) moves it; the stream towards a leg keeps one SSRC and
//! continuous sequence numbers and timestamps when its source changes ([`stream`]); each
//! RFC 4733 event is reported at most once ([`dtmf`]); a refused control command changes
//! nothing. Module map: `g711` (companding), `rtp` (validation, rewriting), `stats`
//! (RFC 3550 receive statistics), `port_pool`, `sdp`, `leg` (latching), `stream`
//! (continuity), `session` (the relay state machine), `control` (the API and `Relay`),
//! `refusal` (stable codes), `recording` (stereo WAV), `playout` + `tones` + `generated`
//! (prompts, music on hold, DTMF towards a leg), `sounds` (WAV files to PCM) +
//! `sound_library` (which prompt is which recorded file), `dtmf` (RFC 4733); `shell` (I/O)
//! and `peer` (test endpoint).

pub mod control;
pub mod dtmf;
pub mod g711;
pub mod generated;
pub mod leg;
pub mod peer;
pub mod playout;
pub mod port_pool;
pub mod recording;
pub mod refusal;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod shell;
pub mod sound_library;
pub mod sounds;
pub mod stats;
pub mod stream;
pub mod tones;

#[cfg(test)]
mod recording_tests;
