//! Non-INVITE client transaction (RFC 3261 17.1.2, figure 6).

use super::{status_of, ClientInput, Millis, Output, Timer, TimerConfig, Timers};
use crate::message::Message;

/// States of figure 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientNonInviteState {
    /// Request sent, nothing heard.
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing its retransmissions.
    Completed,
    /// Finished.
    Terminated,
}

/// A non-INVITE client transaction.
#[derive(Debug, Clone)]
pub struct ClientNonInvite {
    state: ClientNonInviteState,
    request: Box<Message<'static>>,
    reliable: bool,
    config: TimerConfig,
    timers: Timers,
    retransmit_interval_ms: u64,
}

impl ClientNonInvite {
    /// Sends `request` and arms timers E (unreliable only) and F.
    pub fn start(
        now: Millis,
        request: Message<'static>,
        reliable: bool,
        config: TimerConfig,
    ) -> (Self, Vec<Output>) {
        let request = Box::new(request);
        let mut out = vec![Output::Send(request.clone())];
        let mut machine = ClientNonInvite {
            state: ClientNonInviteState::Trying,
            request,
            reliable,
            config,
            timers: Timers::default(),
            retransmit_interval_ms: config.t1_ms,
        };
        if !reliable {
            machine.timers.arm(Timer::E, now, config.t1_ms, &mut out);
        }
        machine
            .timers
            .arm(Timer::F, now, config.transaction_timeout_ms(), &mut out);
        (machine, out)
    }

    /// Current state.
    pub fn state(&self) -> ClientNonInviteState {
        self.state
    }

    fn terminate(&mut self, out: &mut Vec<Output>) {
        self.state = ClientNonInviteState::Terminated;
        self.timers.disarm_all();
        out.push(Output::Terminated);
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Millis, input: ClientInput) -> Vec<Output> {
        use ClientNonInviteState::*;
        let mut out = Vec::new();
        match (self.state, input) {
            (Terminated, _) => {}
            (_, ClientInput::TransportError) => {
                out.push(Output::TransportFailed);
                self.terminate(&mut out);
            }
            (Trying | Proceeding, ClientInput::TimerFired(Timer::E))
                if self.timers.take_due(Timer::E, now) =>
            {
                out.push(Output::Send(self.request.clone()));
                self.retransmit_interval_ms = if self.state == Trying {
                    self.retransmit_interval_ms
                        .saturating_mul(2)
                        .min(self.config.t2_ms)
                } else {
                    self.config.t2_ms
                };
                self.timers
                    .arm(Timer::E, now, self.retransmit_interval_ms, &mut out);
            }
            (Trying | Proceeding, ClientInput::TimerFired(Timer::F))
                if self.timers.take_due(Timer::F, now) =>
            {
                out.push(Output::Timeout);
                self.terminate(&mut out);
            }
            (Completed, ClientInput::TimerFired(Timer::K))
                if self.timers.take_due(Timer::K, now) =>
            {
                self.terminate(&mut out);
            }
            (Trying | Proceeding, ClientInput::Response(response)) => match status_of(&response) {
                100..=199 => {
                    self.state = Proceeding;
                    out.push(Output::Deliver(response));
                }
                200..=699 => {
                    out.push(Output::Deliver(response));
                    self.timers.disarm_all();
                    if self.reliable {
                        self.terminate(&mut out);
                    } else {
                        self.state = Completed;
                        self.timers.arm(Timer::K, now, self.config.t4_ms, &mut out);
                    }
                }
                _ => {}
            },
            _ => {}
        }
        self.check_invariants();
        out
    }

    /// Panics if the state and the armed timers disagree (a bug here).
    pub fn check_invariants(&self) {
        let armed: Vec<Timer> = self.timers.armed().collect();
        let ok = match self.state {
            ClientNonInviteState::Trying | ClientNonInviteState::Proceeding => {
                armed.contains(&Timer::F) && armed.iter().all(|t| matches!(t, Timer::E | Timer::F))
            }
            ClientNonInviteState::Completed => armed == [Timer::K],
            ClientNonInviteState::Terminated => armed.is_empty(),
        };
        assert!(
            ok,
            "non-INVITE client transaction in {:?} with timers {armed:?}",
            self.state
        );
        assert!(
            !(self.reliable && armed.contains(&Timer::E)),
            "timer E is never armed on a reliable transport"
        );
    }
}
