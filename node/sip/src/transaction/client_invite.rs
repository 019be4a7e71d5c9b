//! INVITE client transaction (RFC 3261 17.1.1, figure 5).

use super::{ack_for_non_2xx, status_of, ClientInput, Millis, Output, Timer, TimerConfig, Timers};
use crate::message::Message;

/// States of figure 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientInviteState {
    /// INVITE sent, nothing heard.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A non-2xx final arrived and was ACKed; absorbing its retransmissions.
    Completed,
    /// Finished.
    Terminated,
}

/// An INVITE client transaction.
#[derive(Debug, Clone)]
pub struct ClientInvite {
    state: ClientInviteState,
    request: Box<Message<'static>>,
    ack: Option<Box<Message<'static>>>,
    reliable: bool,
    config: TimerConfig,
    timers: Timers,
    retransmit_interval_ms: u64,
}

impl ClientInvite {
    /// Sends `request` (an INVITE) and arms timers A (unreliable only) and B.
    pub fn start(
        now: Millis,
        request: Message<'static>,
        reliable: bool,
        config: TimerConfig,
    ) -> (Self, Vec<Output>) {
        let request = Box::new(request);
        let mut out = vec![Output::Send(request.clone())];
        let mut machine = ClientInvite {
            state: ClientInviteState::Calling,
            request,
            ack: None,
            reliable,
            config,
            timers: Timers::default(),
            retransmit_interval_ms: config.t1_ms,
        };
        if !reliable {
            machine.timers.arm(Timer::A, now, config.t1_ms, &mut out);
        }
        machine
            .timers
            .arm(Timer::B, now, config.transaction_timeout_ms(), &mut out);
        (machine, out)
    }

    /// Current state.
    pub fn state(&self) -> ClientInviteState {
        self.state
    }

    /// The INVITE this transaction sends.
    pub fn request(&self) -> &Message<'static> {
        &self.request
    }

    fn terminate(&mut self, out: &mut Vec<Output>) {
        self.state = ClientInviteState::Terminated;
        self.timers.disarm_all();
        out.push(Output::Terminated);
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Millis, input: ClientInput) -> Vec<Output> {
        use ClientInviteState::*;
        let mut out = Vec::new();
        match (self.state, input) {
            (Terminated, _) => {}
            (_, ClientInput::TransportError) => {
                out.push(Output::TransportFailed);
                self.terminate(&mut out);
            }
            (Calling, ClientInput::TimerFired(Timer::A)) if self.timers.take_due(Timer::A, now) => {
                out.push(Output::Send(self.request.clone()));
                self.retransmit_interval_ms = self.retransmit_interval_ms.saturating_mul(2);
                self.timers
                    .arm(Timer::A, now, self.retransmit_interval_ms, &mut out);
            }
            (Calling, ClientInput::TimerFired(Timer::B)) if self.timers.take_due(Timer::B, now) => {
                out.push(Output::Timeout);
                self.terminate(&mut out);
            }
            (Completed, ClientInput::TimerFired(Timer::D))
                if self.timers.take_due(Timer::D, now) =>
            {
                self.terminate(&mut out);
            }
            (Calling | Proceeding, ClientInput::Response(response)) => match status_of(&response) {
                100..=199 => {
                    self.state = Proceeding;
                    self.timers.disarm(Timer::A);
                    self.timers.disarm(Timer::B);
                    out.push(Output::Deliver(response));
                }
                200..=299 => {
                    out.push(Output::Deliver(response));
                    self.terminate(&mut out);
                }
                300..=699 => {
                    let ack = Box::new(ack_for_non_2xx(&self.request, &response));
                    out.push(Output::Deliver(response));
                    out.push(Output::Send(ack.clone()));
                    self.ack = Some(ack);
                    self.timers.disarm_all();
                    if self.reliable {
                        self.terminate(&mut out);
                    } else {
                        self.state = Completed;
                        self.timers
                            .arm(Timer::D, now, self.config.timer_d_ms, &mut out);
                    }
                }
                _ => {}
            },
            (Completed, ClientInput::Response(response)) if status_of(&response) >= 300 => {
                if let Some(ack) = &self.ack {
                    out.push(Output::Send(ack.clone()));
                }
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
            ClientInviteState::Calling => {
                armed.contains(&Timer::B) && armed.iter().all(|t| matches!(t, Timer::A | Timer::B))
            }
            ClientInviteState::Proceeding | ClientInviteState::Terminated => armed.is_empty(),
            ClientInviteState::Completed => armed == [Timer::D] && self.ack.is_some(),
        };
        assert!(
            ok,
            "INVITE client transaction in {:?} with timers {armed:?}",
            self.state
        );
        assert!(
            !(self.reliable && armed.contains(&Timer::A)),
            "timer A is never armed on a reliable transport"
        );
    }
}
