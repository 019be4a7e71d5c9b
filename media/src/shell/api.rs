//! Wire types of the control API: the JSON bodies of the HTTP routes, also returned by the
//! in-process [`super::Control`] handle. They are separate from the core's types on purpose
//! (STYLE.md: internal types are not serialisable); the conversions live here.

use crate::control::LegReport;
use crate::recording::{AuditAction, AuditRecord};
use crate::refusal::Refusal;
use crate::session::RecordingState;
use serde::{Deserialize, Serialize};

/// `POST /media/v1/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSessionRequest {
    /// The caller's opaque id (1..=128 bytes).
    pub session_id: String,
}

/// Answer to a session creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionCreated {
    /// The id.
    pub session_id: String,
}

/// `PUT /media/v1/sessions/{id}/legs/{leg}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetLegRequest {
    /// The remote side's SDP; without it the relay answers with its offer.
    #[serde(default)]
    pub remote_sdp: Option<String>,
}

/// A leg added or updated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegReady {
    /// The relay's SDP for the leg (answer or offer).
    pub local_sdp: String,
    /// Local RTP port.
    pub rtp_port: u16,
    /// Local RTCP port (RTP + 1; unused with rtcp-mux).
    pub rtcp_port: u16,
}

/// `POST .../play`: exactly one of the three.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PlayRequest {
    /// One prompt, once.
    Prompt(String),
    /// A prompt looped until stopped.
    MusicOnHold(String),
    /// Prompts back to back, once.
    Announcement(Vec<String>),
}

/// `POST .../dtmf`: digits sent one after the other as RFC 4733 events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtmfRequest {
    /// `0-9 * # A-D`, at most [`super::MAX_QUEUED_DIGITS`].
    pub digits: String,
    /// Duration of each digit, 40..=2000 ms.
    #[serde(default = "default_digit_ms")]
    pub duration_ms: u32,
}

fn default_digit_ms() -> u32 {
    100
}

/// What to do to a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingAction {
    /// Start (a new file).
    Start,
    /// Pause (silence, audited).
    Pause,
    /// Resume.
    Resume,
    /// Stop (the file is closed; the audit trail is written next to it).
    Stop,
}

/// `POST .../recording`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingRequest {
    /// What to do.
    pub action: RecordingAction,
    /// Who asked (kept in the audit trail).
    pub by: String,
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// `started`, `paused`, `resumed` or `stopped`.
    pub action: String,
    /// Who asked.
    pub by: String,
    /// When, in the relay's clock (ms since the relay started).
    pub at_ms: u64,
}

impl From<&AuditRecord> for AuditEntry {
    fn from(record: &AuditRecord) -> Self {
        let action = match record.action {
            AuditAction::Started => "started",
            AuditAction::Paused => "paused",
            AuditAction::Resumed => "resumed",
            AuditAction::Stopped => "stopped",
        };
        AuditEntry {
            action: action.to_string(),
            by: record.by.clone(),
            at_ms: record.at_ms,
        }
    }
}

/// A session's recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingStatus {
    /// `off`, `recording` or `paused`.
    pub state: String,
    /// The current (or last) recording file.
    pub file: Option<String>,
    /// The audit trail of the session (every start, pause, resume, stop).
    pub audit: Vec<AuditEntry>,
}

/// The name of a recording state on the wire.
pub fn recording_state_name(state: RecordingState) -> &'static str {
    match state {
        RecordingState::Off => "off",
        RecordingState::Recording => "recording",
        RecordingState::Paused => "paused",
    }
}

/// Per-leg counters on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegCountersView {
    /// Not valid RTP/RTCP (malformed, truncated, wrong version).
    pub dropped_malformed: u64,
    /// From a source other than the latched one.
    pub dropped_foreign_source: u64,
    /// A payload type the leg did not negotiate.
    pub dropped_unknown_payload_type: u64,
    /// Towards this leg, not sent: no address yet.
    pub not_sent_no_destination: u64,
    /// Towards this leg, replaced by generated media.
    pub not_sent_generated_media: u64,
    /// Towards this leg, not sent: no common codec.
    pub not_sent_codec: u64,
    /// Moves to a new source.
    pub relatches: u64,
    /// RTCP packets passed on.
    pub rtcp_packets: u64,
    /// DTMF digits detected.
    pub dtmf_digits: u64,
}

/// One leg's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LegView {
    /// Leg name.
    pub name: String,
    /// Local RTP port.
    pub rtp_port: u16,
    /// Local RTCP port.
    pub rtcp_port: u16,
    /// The latched source, if any.
    pub latched: Option<String>,
    /// RTP packets received and accepted.
    pub packets: u64,
    /// Datagram bytes received.
    pub bytes: u64,
    /// RFC 3550 cumulative loss.
    pub cumulative_lost: i64,
    /// RFC 3550 interarrival jitter, in timestamp units.
    pub jitter_timestamp_units: f64,
    /// Counters.
    pub counters: LegCountersView,
}

impl From<&LegReport> for LegView {
    fn from(report: &LegReport) -> Self {
        let c = report.counters;
        LegView {
            name: report.leg.clone(),
            rtp_port: report.ports.rtp,
            rtcp_port: report.ports.rtcp,
            latched: report.latched.map(|a| a.to_string()),
            packets: report.statistics.packets,
            bytes: report.statistics.bytes,
            cumulative_lost: report.statistics.cumulative_lost,
            jitter_timestamp_units: report.statistics.jitter_timestamp_units,
            counters: LegCountersView {
                dropped_malformed: c.dropped_malformed,
                dropped_foreign_source: c.dropped_foreign_source,
                dropped_unknown_payload_type: c.dropped_unknown_payload_type,
                not_sent_no_destination: c.not_sent_no_destination,
                not_sent_generated_media: c.not_sent_generated_media,
                not_sent_codec: c.not_sent_codec,
                relatches: c.relatches,
                rtcp_packets: c.rtcp_packets,
                dtmf_digits: c.dtmf_digits,
            },
        }
    }
}

/// Something that happened in a session (the last [`super::MAX_SESSION_EVENTS`] are kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEvent {
    /// When, in the relay's clock.
    pub at_ms: u64,
    /// Leg name.
    pub leg: String,
    /// `dtmf`, `latched`, `relatched`, `generated_finished`, `recording_failed`.
    pub kind: String,
    /// The digit, for `dtmf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digit: Option<String>,
    /// The source address, for `latched` and `relatched`; the error, for failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `GET /media/v1/sessions/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    /// Id.
    pub session_id: String,
    /// Legs, by index.
    pub legs: Vec<LegView>,
    /// Recording.
    pub recording: RecordingStatus,
    /// Recent events, oldest first.
    pub events: Vec<SessionEvent>,
}

/// A session removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRemoved {
    /// RTP ports given back to the pool.
    pub released_rtp_ports: Vec<u16>,
    /// The recording file closed by the removal, if one was active.
    pub recording_file: Option<String>,
}

/// Counters of the shell and the relay as a whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayCountersView {
    /// Datagrams received.
    pub datagrams_received: u64,
    /// Datagrams sent.
    pub datagrams_sent: u64,
    /// Datagrams dropped, whatever the reason (the legs' counters say why).
    pub datagrams_dropped: u64,
    /// Datagrams dropped as malformed (not RTP/RTCP, truncated, wrong version).
    pub dropped_malformed: u64,
    /// Datagrams dropped as coming from a foreign source.
    pub dropped_foreign_source: u64,
    /// Datagrams dropped for another reason (payload type, no SDP yet, bad event).
    pub dropped_other: u64,
    /// Times a port still held datagrams after its share of one engine turn and was read
    /// again in the next (the engine is behind; sustained, the relay is overloaded).
    pub reads_deferred: u64,
    /// Datagrams received on a port no leg owns.
    pub datagrams_unknown_port: u64,
    /// Sends that failed (socket buffer full or error).
    pub send_failures: u64,
    /// Commands refused for an unknown session.
    pub refused_unknown_session: u64,
    /// Commands refused for an exhausted port pool.
    pub refused_pool_exhausted: u64,
    /// Commands refused for a bad SDP.
    pub refused_bad_sdp: u64,
    /// Other refusals (bad request, unknown leg, busy...).
    pub refused_other: u64,
    /// Free pairs passed over for a new leg because another process held one of their ports.
    pub ports_held_elsewhere: u64,
}

/// `GET /media/v1/load`: what a caller needs to pick the least loaded relay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// Sessions.
    pub sessions: usize,
    /// Legs.
    pub legs: usize,
    /// Datagrams received per second, over the last full second.
    pub packets_per_second: f64,
    /// CPU time of the relay process (user + system), from `/proc/self/stat`.
    pub cpu_seconds: f64,
    /// Free port pairs.
    pub port_pairs_free: usize,
    /// Port pairs in the pool.
    pub port_pairs_capacity: usize,
    /// Counters.
    pub counters: RelayCountersView,
}

/// An RFC 9457 problem document, for refusals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// `urn:carillon:media:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What exactly was wrong.
    pub detail: String,
    /// The stable refusal code (`UNKNOWN_SESSION`, `PORT_POOL_EXHAUSTED`, ...).
    pub code: String,
}

/// The HTTP status of a refusal: 404 for unknown things, 409 when the relay's state
/// prevents it (including an exhausted pool: ask another relay), 422 when the content
/// cannot be used, 400 for malformed requests.
pub fn refusal_status(refusal: &Refusal) -> u16 {
    match refusal {
        Refusal::UnknownSession | Refusal::UnknownLeg | Refusal::UnknownPrompt(_) => 404,
        Refusal::SessionExists
        | Refusal::TooManyLegs
        | Refusal::PortPoolExhausted
        | Refusal::LegBusy
        | Refusal::LegNotNegotiated
        | Refusal::RecordingActive
        | Refusal::RecordingNotActive
        | Refusal::RecordingNotPaused
        | Refusal::RecordingAlreadyPaused => 409,
        Refusal::BadSdp(_) | Refusal::NoTelephoneEvent | Refusal::PromptUnplayable(_) => 422,
        Refusal::BadRequest(_) => 400,
    }
}

impl Problem {
    /// The problem document of a refusal.
    pub fn from_refusal(refusal: &Refusal) -> Problem {
        Problem::new(refusal_status(refusal), refusal.code(), refusal.to_string())
    }

    /// A problem with a code and detail.
    pub fn new(status: u16, code: &str, detail: String) -> Problem {
        let title = match status {
            400 => "Bad request",
            404 => "Not found",
            409 => "Conflict",
            422 => "Unprocessable content",
            503 => "Service unavailable",
            _ => "Refused",
        };
        Problem {
            problem_type: format!("urn:carillon:media:{}", code.to_ascii_lowercase()),
            title: title.to_string(),
            status,
            detail,
            code: code.to_string(),
        }
    }
}
