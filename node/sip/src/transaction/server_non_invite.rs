//! Non-INVITE server transaction (RFC 3261 17.2.2, figure 8).

use super::{status_of, Millis, Output, ServerInput, Timer, TimerConfig, Timers};
use crate::message::Message;

/// States of figure 8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// Request passed to the TU; no response yet.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// A final response was sent; answering retransmissions with it.
    Completed,
    /// Finished.
    Terminated,
}

/// A non-INVITE server transaction.
#[derive(Debug, Clone)]
pub struct ServerNonInvite {
    state: ServerNonInviteState,
    last_response: Option<Box<Message<'static>>>,
    reliable: bool,
    config: TimerConfig,
    timers: Timers,
}

impl ServerNonInvite {
    /// Passes `request` to the TU.
    pub fn start(
        now: Millis,
        request: Message<'static>,
        reliable: bool,
        config: TimerConfig,
    ) -> (Self, Vec<Output>) {
        let _ = now;
        let machine = ServerNonInvite {
            state: ServerNonInviteState::Trying,
            last_response: None,
            reliable,
            config,
            timers: Timers::default(),
        };
        (machine, vec![Output::Deliver(Box::new(request))])
    }

    /// Current state.
    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    fn terminate(&mut self, out: &mut Vec<Output>) {
        self.state = ServerNonInviteState::Terminated;
        self.timers.disarm_all();
        out.push(Output::Terminated);
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Millis, input: ServerInput) -> Vec<Output> {
        use ServerNonInviteState::*;
        let mut out = Vec::new();
        match (self.state, input) {
            (Terminated, _) => {}
            (_, ServerInput::TransportError) => {
                out.push(Output::TransportFailed);
                self.terminate(&mut out);
            }
            (Trying, ServerInput::Request(_)) => {}
            (Proceeding | Completed, ServerInput::Request(_)) => {
                if let Some(r) = &self.last_response {
                    out.push(Output::Send(r.clone()));
                }
            }
            (Trying | Proceeding, ServerInput::Respond(response)) => match status_of(&response) {
                100..=199 => {
                    out.push(Output::Send(response.clone()));
                    self.last_response = Some(response);
                    self.state = Proceeding;
                }
                200..=699 => {
                    out.push(Output::Send(response.clone()));
                    self.last_response = Some(response);
                    if self.reliable {
                        self.terminate(&mut out);
                    } else {
                        self.state = Completed;
                        self.timers.arm(
                            Timer::J,
                            now,
                            self.config.transaction_timeout_ms(),
                            &mut out,
                        );
                    }
                }
                _ => {}
            },
            (Completed, ServerInput::TimerFired(Timer::J))
                if self.timers.take_due(Timer::J, now) =>
            {
                self.terminate(&mut out);
            }
            _ => {}
        }
        self.check_invariants();
        out
    }

    /// Panics if the state and the armed timers disagree (a bug here).
    pub fn check_invariants(&self) {
        let armed: Vec<Timer> = self.timers.armed().collect();
        let ok = match self.state {
            ServerNonInviteState::Completed => armed == [Timer::J],
            _ => armed.is_empty(),
        };
        assert!(
            ok,
            "non-INVITE server transaction in {:?} with timers {armed:?}",
            self.state
        );
    }
}
