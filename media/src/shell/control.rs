//! The in-process control handle: the same operations as the HTTP API, as async methods.
//! Each call is one bounded-queue message to the relay's engine thread (and a ring of its
//! waker) and one reply; the engine is the single owner of the relay state (no lock).

use super::api::{
    CreateSessionRequest, DtmfRequest, LegReady, Load, PlayRequest, RecordingAction,
    RecordingStatus, SessionCreated, SessionRemoved, SessionView, SetLegRequest,
};
use crate::refusal::Refusal;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Why a control operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// The relay refused (a value with a stable code, not a fault).
    #[error("refused ({code}): {0}", code = .0.code())]
    Refused(Refusal),
    /// The relay has stopped.
    #[error("the relay has stopped")]
    RelayStopped,
    /// A port could not be bound (another process holds it). For a new leg every free pair
    /// tried had a port held elsewhere and the leg was not made; for an existing leg, the leg
    /// stays and a later update of it binds again.
    #[error("port {port} cannot be bound: {reason}")]
    PortUnavailable {
        /// The port.
        port: u16,
        /// The operating system's reason.
        reason: String,
    },
    /// The recording file could not be written.
    #[error("recording failed: {0}")]
    RecordingFailed(String),
}

impl From<Refusal> for ControlError {
    fn from(refusal: Refusal) -> Self {
        ControlError::Refused(refusal)
    }
}

/// The result of a control operation.
pub type ControlResult<T> = Result<T, ControlError>;
type Reply<T> = oneshot::Sender<ControlResult<T>>;

/// A message to the engine.
#[derive(Debug)]
pub(crate) enum Request {
    CreateSession(CreateSessionRequest, Reply<SessionCreated>),
    SetLeg(String, String, SetLegRequest, Reply<LegReady>),
    LocalSdp(String, String, Reply<String>),
    Play(String, String, PlayRequest, Reply<()>),
    StopPlay(String, String, Reply<bool>),
    SendDtmf(String, String, DtmfRequest, Reply<()>),
    Recording(String, RecordingAction, String, Reply<RecordingStatus>),
    Session(String, Reply<SessionView>),
    RemoveSession(String, Reply<SessionRemoved>),
    Load(Reply<Load>),
    Shutdown(oneshot::Sender<()>),
}

/// The in-process control API of a running relay (cheap to clone).
#[derive(Debug, Clone)]
pub struct Control {
    requests: mpsc::Sender<Request>,
    /// Rung after each request: the engine waits on its poller, not on the queue.
    waker: Arc<mio::Waker>,
}

impl Control {
    pub(crate) fn new(requests: mpsc::Sender<Request>, waker: Arc<mio::Waker>) -> Control {
        Control { requests, waker }
    }

    /// Puts a request in the engine's queue and wakes the engine.
    async fn submit(&self, request: Request) -> ControlResult<()> {
        // Bounded queue: callers wait here when the engine is behind (back-pressure).
        self.requests
            .send(request)
            .await
            .map_err(|_| ControlError::RelayStopped)?;
        if let Err(error) = self.waker.wake() {
            // The engine still sees the request at its next timer tick (20 ms at most).
            tracing::warn!(%error, "relay: waking the engine failed");
        }
        Ok(())
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> ControlResult<T> {
        let (reply, answer) = oneshot::channel();
        self.submit(make(reply)).await?;
        answer.await.map_err(|_| ControlError::RelayStopped)?
    }

    /// Creates an empty session.
    pub async fn create_session(&self, session_id: &str) -> ControlResult<SessionCreated> {
        let request = CreateSessionRequest {
            session_id: session_id.to_string(),
        };
        self.call(|r| Request::CreateSession(request, r)).await
    }

    /// Adds a leg (taking a port pair) or updates it from the remote SDP.
    pub async fn set_leg(
        &self,
        session_id: &str,
        leg: &str,
        remote_sdp: Option<String>,
    ) -> ControlResult<LegReady> {
        let (s, l) = (session_id.to_string(), leg.to_string());
        self.call(|r| Request::SetLeg(s, l, SetLegRequest { remote_sdp }, r))
            .await
    }

    /// The relay's SDP for a leg.
    pub async fn local_sdp(&self, session_id: &str, leg: &str) -> ControlResult<String> {
        let (s, l) = (session_id.to_string(), leg.to_string());
        self.call(|r| Request::LocalSdp(s, l, r)).await
    }

    /// Plays a prompt, music on hold or an announcement to a leg.
    pub async fn play(&self, session_id: &str, leg: &str, what: PlayRequest) -> ControlResult<()> {
        let (s, l) = (session_id.to_string(), leg.to_string());
        self.call(|r| Request::Play(s, l, what, r)).await
    }

    /// Stops what is played or sent to a leg (and forgets queued digits); true if something
    /// was playing.
    pub async fn stop_play(&self, session_id: &str, leg: &str) -> ControlResult<bool> {
        let (s, l) = (session_id.to_string(), leg.to_string());
        self.call(|r| Request::StopPlay(s, l, r)).await
    }

    /// Sends DTMF digits to a leg, one after the other (RFC 4733).
    pub async fn send_dtmf(
        &self,
        session_id: &str,
        leg: &str,
        request: DtmfRequest,
    ) -> ControlResult<()> {
        let (s, l) = (session_id.to_string(), leg.to_string());
        self.call(|r| Request::SendDtmf(s, l, request, r)).await
    }

    /// Starts, pauses, resumes or stops the session's recording.
    pub async fn recording(
        &self,
        session_id: &str,
        action: RecordingAction,
        by: &str,
    ) -> ControlResult<RecordingStatus> {
        let (s, b) = (session_id.to_string(), by.to_string());
        self.call(|r| Request::Recording(s, action, b, r)).await
    }

    /// A session's legs, statistics, counters, recording and recent events.
    pub async fn session(&self, session_id: &str) -> ControlResult<SessionView> {
        let s = session_id.to_string();
        self.call(|r| Request::Session(s, r)).await
    }

    /// Removes a session, gives its ports back and closes its recording.
    pub async fn remove_session(&self, session_id: &str) -> ControlResult<SessionRemoved> {
        let s = session_id.to_string();
        self.call(|r| Request::RemoveSession(s, r)).await
    }

    /// The relay's load and counters.
    pub async fn load(&self) -> ControlResult<Load> {
        self.call(Request::Load).await
    }

    /// Asks the engine to stop (closing recordings); returns when it has.
    pub(crate) async fn shutdown(&self) {
        let (done, stopped) = oneshot::channel();
        if self.submit(Request::Shutdown(done)).await.is_ok() {
            // An error means the engine is gone already: stopped either way.
            let _ = stopped.await;
        }
    }
}
