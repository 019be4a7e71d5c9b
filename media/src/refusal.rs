//! Refusals: a request that the relay will not carry out, as a value with a stable code
//! (STYLE.md: a domain refusal is not an error). Codes never change once published; the
//! control API sends them to the caller as they are.

use crate::playout::PlayoutError;
use crate::sdp::SdpError;

/// Why a control request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No session with that id.
    #[error("unknown session")]
    UnknownSession,
    /// A session with that id exists already.
    #[error("session exists")]
    SessionExists,
    /// No leg with that name in the session.
    #[error("unknown leg")]
    UnknownLeg,
    /// The session has as many legs as it may.
    #[error("too many legs")]
    TooManyLegs,
    /// No port pair is free.
    #[error("port pool exhausted")]
    PortPoolExhausted,
    /// The remote SDP could not be used.
    #[error("bad SDP: {0}")]
    BadSdp(SdpError),
    /// The leg has no remote SDP yet, so the relay cannot send to it.
    #[error("leg has no remote SDP yet")]
    LegNotNegotiated,
    /// The leg did not negotiate telephone-event.
    #[error("leg did not negotiate telephone-event")]
    NoTelephoneEvent,
    /// No prompt with that name.
    #[error("unknown prompt {0}")]
    UnknownPrompt(String),
    /// The prompt cannot be played.
    #[error("prompt cannot be played: {0}")]
    PromptUnplayable(PlayoutError),
    /// Something is already being played or sent to the leg.
    #[error("leg is busy with generated media")]
    LegBusy,
    /// Recording was asked to start while active.
    #[error("recording already active")]
    RecordingActive,
    /// Recording was asked to change while not active.
    #[error("recording not active")]
    RecordingNotActive,
    /// Resume while not paused.
    #[error("recording not paused")]
    RecordingNotPaused,
    /// Pause while paused.
    #[error("recording already paused")]
    RecordingAlreadyPaused,
    /// A field of the request is out of range or empty.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
}

impl Refusal {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownSession => "UNKNOWN_SESSION",
            Refusal::SessionExists => "SESSION_EXISTS",
            Refusal::UnknownLeg => "UNKNOWN_LEG",
            Refusal::TooManyLegs => "TOO_MANY_LEGS",
            Refusal::PortPoolExhausted => "PORT_POOL_EXHAUSTED",
            Refusal::BadSdp(SdpError::NoCommonCodec) => "NO_COMMON_CODEC",
            Refusal::BadSdp(_) => "BAD_SDP",
            Refusal::LegNotNegotiated => "LEG_NOT_NEGOTIATED",
            Refusal::NoTelephoneEvent => "NO_TELEPHONE_EVENT",
            Refusal::UnknownPrompt(_) => "UNKNOWN_PROMPT",
            Refusal::PromptUnplayable(_) => "PROMPT_UNPLAYABLE",
            Refusal::LegBusy => "LEG_BUSY",
            Refusal::RecordingActive => "RECORDING_ACTIVE",
            Refusal::RecordingNotActive => "RECORDING_NOT_ACTIVE",
            Refusal::RecordingNotPaused => "RECORDING_NOT_PAUSED",
            Refusal::RecordingAlreadyPaused => "RECORDING_ALREADY_PAUSED",
            Refusal::BadRequest(_) => "BAD_REQUEST",
        }
    }
}
