//! INVITE server transaction (RFC 3261 17.2.1, figure 7, with the Accepted
//! state of RFC 6026: after a 2xx the transaction stays for 64*T1 to absorb
//! retransmissions of the INVITE, while the TU retransmits the 2xx itself).

use super::{status_of, Millis, Output, ServerInput, Timer, TimerConfig, Timers};
use crate::message::{reason_phrase, Message, Method};

/// States of figure 7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    /// INVITE passed to the TU; provisional responses may be sent.
    Proceeding,
    /// A non-2xx final was sent; waiting for the ACK.
    Completed,
    /// ACK received; absorbing ACK retransmissions.
    Confirmed,
    /// A 2xx was sent (RFC 6026): INVITE retransmissions are absorbed, further
    /// 2xx from the TU (its retransmissions) are sent, until timer L.
    Accepted,
    /// Finished.
    Terminated,
}

/// An INVITE server transaction.
#[derive(Debug, Clone)]
pub struct ServerInvite {
    state: ServerInviteState,
    last_response: Option<Box<Message<'static>>>,
    reliable: bool,
    config: TimerConfig,
    timers: Timers,
    retransmit_interval_ms: u64,
}

impl ServerInvite {
    /// Passes `invite` to the TU and answers 100 Trying at once (RFC 3261
    /// 17.2.1 allows skipping it only when the TU answers within 200 ms,
    /// which this core cannot know).
    pub fn start(
        now: Millis,
        invite: Message<'static>,
        reliable: bool,
        config: TimerConfig,
    ) -> (Self, Vec<Output>) {
        let _ = now;
        let trying = Box::new(Message::response_to(&invite, 100, reason_phrase(100)));
        let out = vec![
            Output::Deliver(Box::new(invite)),
            Output::Send(trying.clone()),
        ];
        let machine = ServerInvite {
            state: ServerInviteState::Proceeding,
            last_response: Some(trying),
            reliable,
            config,
            timers: Timers::default(),
            retransmit_interval_ms: config.t1_ms,
        };
        (machine, out)
    }

    /// Current state.
    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    fn terminate(&mut self, out: &mut Vec<Output>) {
        self.state = ServerInviteState::Terminated;
        self.timers.disarm_all();
        out.push(Output::Terminated);
    }

    fn resend_last(&self, out: &mut Vec<Output>) {
        if let Some(r) = &self.last_response {
            out.push(Output::Send(r.clone()));
        }
    }

    /// Feeds one input.
    pub fn handle(&mut self, now: Millis, input: ServerInput) -> Vec<Output> {
        use ServerInviteState::*;
        let mut out = Vec::new();
        match (self.state, input) {
            (Terminated, _) => {}
            (_, ServerInput::TransportError) => {
                out.push(Output::TransportFailed);
                self.terminate(&mut out);
            }
            (Proceeding | Completed, ServerInput::Request(r)) if *r.method() == Method::Invite => {
                self.resend_last(&mut out);
            }
            (Completed, ServerInput::Request(r)) if *r.method() == Method::Ack => {
                self.timers.disarm_all();
                if self.reliable {
                    self.terminate(&mut out);
                } else {
                    self.state = Confirmed;
                    self.timers.arm(Timer::I, now, self.config.t4_ms, &mut out);
                }
            }
            (Proceeding, ServerInput::Respond(response)) => match status_of(&response) {
                100..=199 => {
                    out.push(Output::Send(response.clone()));
                    self.last_response = Some(response);
                }
                200..=299 => {
                    out.push(Output::Send(response));
                    self.last_response = None;
                    self.state = Accepted;
                    self.timers.arm(
                        Timer::L,
                        now,
                        self.config.transaction_timeout_ms(),
                        &mut out,
                    );
                }
                300..=699 => {
                    out.push(Output::Send(response.clone()));
                    self.last_response = Some(response);
                    self.state = Completed;
                    if !self.reliable {
                        self.timers.arm(Timer::G, now, self.config.t1_ms, &mut out);
                    }
                    self.timers.arm(
                        Timer::H,
                        now,
                        self.config.transaction_timeout_ms(),
                        &mut out,
                    );
                }
                _ => {}
            },
            (Accepted, ServerInput::Request(r)) if *r.method() == Method::Invite => {
                // Absorbed: the TU's own 2xx retransmissions answer it.
            }
            (Accepted, ServerInput::Request(r)) if *r.method() == Method::Ack => {
                // The ACK of the 2xx belongs to the TU (it matched here only
                // by RFC 2543 rules; an RFC 3261 ACK has its own branch).
                out.push(Output::Deliver(r));
            }
            (Accepted, ServerInput::Respond(response))
                if (200..=299).contains(&status_of(&response)) =>
            {
                out.push(Output::Send(response));
            }
            (Accepted, ServerInput::TimerFired(Timer::L))
                if self.timers.take_due(Timer::L, now) =>
            {
                self.terminate(&mut out);
            }
            (Completed, ServerInput::TimerFired(Timer::G))
                if self.timers.take_due(Timer::G, now) =>
            {
                self.resend_last(&mut out);
                self.retransmit_interval_ms = self
                    .retransmit_interval_ms
                    .saturating_mul(2)
                    .min(self.config.t2_ms);
                self.timers
                    .arm(Timer::G, now, self.retransmit_interval_ms, &mut out);
            }
            (Completed, ServerInput::TimerFired(Timer::H))
                if self.timers.take_due(Timer::H, now) =>
            {
                out.push(Output::Timeout);
                self.terminate(&mut out);
            }
            (Confirmed, ServerInput::TimerFired(Timer::I))
                if self.timers.take_due(Timer::I, now) =>
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
            ServerInviteState::Proceeding | ServerInviteState::Terminated => armed.is_empty(),
            ServerInviteState::Completed => {
                armed.contains(&Timer::H) && armed.iter().all(|t| matches!(t, Timer::G | Timer::H))
            }
            ServerInviteState::Confirmed => armed == [Timer::I],
            ServerInviteState::Accepted => armed == [Timer::L],
        };
        assert!(
            ok,
            "INVITE server transaction in {:?} with timers {armed:?}",
            self.state
        );
        assert!(
            !(self.reliable && armed.contains(&Timer::G)),
            "timer G is never armed on a reliable transport"
        );
    }
}
