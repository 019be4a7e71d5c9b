//! Transactions (RFC 3261 section 17) as sans-IO machines.
//!
//! Each machine is created with `start(now, ...)`, which returns it with its
//! first outputs, and then fed with `handle(now, input) -> Vec<Output>`.
//! Time is a [`Millis`] instant passed in by the caller; timers are armed by
//! [`Output::Schedule`] and come back as a `TimerFired` input.
//!
//! Invariants:
//! - A machine never reads the clock, never blocks and never panics on
//!   network input; late, early or stale timer firings are ignored (a timer
//!   counts only when it is armed and `now` has reached its deadline).
//! - On a reliable transport, timers A, E and G are never armed and timers
//!   D, I, J and K are zero: the machine goes straight to Terminated.
//! - After [`Output::Terminated`] a machine outputs nothing more.
//!
//! Boundary: choosing branches and tags (randomness), sending bytes and
//! matching incoming messages to machines (with [`TransactionKey`]) belong to
//! the shell; the transaction user (TU) gets [`Output::Deliver`].

mod client_invite;
mod client_non_invite;
mod key;
pub mod layer;
mod server_invite;
mod server_non_invite;

use std::borrow::Cow;
use std::fmt;

pub use client_invite::{ClientInvite, ClientInviteState};
pub use client_non_invite::{ClientNonInvite, ClientNonInviteState};
pub use key::TransactionKey;
pub use server_invite::{ServerInvite, ServerInviteState};
pub use server_non_invite::{ServerNonInvite, ServerNonInviteState};

use crate::message::{CSeq, Headers, Message, Method, StartLine};

/// An instant: milliseconds since an epoch chosen by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// This instant plus a duration in milliseconds (saturating).
    pub fn plus_ms(self, duration_ms: u64) -> Millis {
        Millis(self.0.saturating_add(duration_ms))
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// Timer base values (RFC 3261 table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate, default 500 ms.
    pub t1_ms: u64,
    /// Longest retransmit interval for non-INVITE requests and INVITE
    /// responses, default 4 s.
    pub t2_ms: u64,
    /// Longest time a message stays in the network, default 5 s.
    pub t4_ms: u64,
    /// Wait time for response retransmissions (timer D), at least 32 s on
    /// unreliable transports.
    pub timer_d_ms: u64,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1_ms: 500,
            t2_ms: 4_000,
            t4_ms: 5_000,
            timer_d_ms: 32_000,
        }
    }
}

impl TimerConfig {
    /// 64*T1: timers B, F, H and (unreliable) J.
    pub fn transaction_timeout_ms(&self) -> u64 {
        self.t1_ms.saturating_mul(64)
    }
}

/// The transaction timers of RFC 3261 (table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE request retransmit.
    A,
    /// INVITE transaction timeout.
    B,
    /// Wait for INVITE response retransmits.
    D,
    /// Non-INVITE request retransmit.
    E,
    /// Non-INVITE transaction timeout.
    F,
    /// INVITE final response retransmit.
    G,
    /// Wait for ACK.
    H,
    /// Wait for ACK retransmits.
    I,
    /// Wait for non-INVITE request retransmits.
    J,
    /// Wait for non-INVITE response retransmits.
    K,
    /// Wait for retransmissions of an INVITE answered with a 2xx (RFC 6026).
    L,
}

impl Timer {
    const ALL: [Timer; 11] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// An effect a machine asks for. Messages are boxed: a [`Message`] is
/// large and most outputs are small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this message to the peer on the transaction's transport.
    Send(Box<Message<'static>>),
    /// Pass this message to the transaction user.
    Deliver(Box<Message<'static>>),
    /// Fire `timer` back as an input at `at`.
    Schedule {
        /// Which timer.
        timer: Timer,
        /// When.
        at: Millis,
    },
    /// Timer B, F or H fired: the peer never answered (the TU treats it as
    /// a 408, or for H as a missing ACK).
    Timeout,
    /// The transport reported a failure; the TU is told.
    TransportFailed,
    /// The machine is finished; the shell forgets it.
    Terminated,
}

/// Inputs of client transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientInput {
    /// A response matched to this transaction.
    Response(Box<Message<'static>>),
    /// A timer armed earlier fired.
    TimerFired(Timer),
    /// Sending failed.
    TransportError,
}

/// Inputs of server transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerInput {
    /// A request matched to this transaction (a retransmission, or an ACK).
    Request(Box<Message<'static>>),
    /// The TU answers with this response.
    Respond(Box<Message<'static>>),
    /// A timer armed earlier fired.
    TimerFired(Timer),
    /// Sending failed.
    TransportError,
}

/// Armed timers and their deadlines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Timers {
    deadline: [Option<Millis>; 11],
}

impl Timers {
    fn arm(&mut self, timer: Timer, now: Millis, duration_ms: u64, out: &mut Vec<Output>) {
        let at = now.plus_ms(duration_ms);
        self.deadline[timer.index()] = Some(at);
        out.push(Output::Schedule { timer, at });
    }

    fn disarm(&mut self, timer: Timer) {
        self.deadline[timer.index()] = None;
    }

    fn disarm_all(&mut self) {
        self.deadline = [None; 11];
    }

    /// Whether `timer` is armed and due; a due timer is disarmed.
    fn take_due(&mut self, timer: Timer, now: Millis) -> bool {
        match self.deadline[timer.index()] {
            Some(at) if at <= now => {
                self.deadline[timer.index()] = None;
                true
            }
            _ => false,
        }
    }

    fn is_armed(&self, timer: Timer) -> bool {
        self.deadline[timer.index()].is_some()
    }

    fn armed(&self) -> impl Iterator<Item = Timer> + '_ {
        Timer::ALL.into_iter().filter(|t| self.is_armed(*t))
    }
}

/// The ACK for a non-2xx final response to an INVITE (RFC 3261 17.1.1.3):
/// same Request-URI, Call-ID, From, CSeq number, Route and top Via as the
/// INVITE, To from the response.
pub fn ack_for_non_2xx(invite: &Message<'_>, response: &Message<'_>) -> Message<'static> {
    let h = &invite.headers;
    let uri = match &invite.start {
        StartLine::Request { uri, .. } => uri.clone(),
        StartLine::Response { .. } => response.headers.to.uri.clone(),
    };
    let mut headers = Headers::new(
        h.via.iter().take(1).cloned().collect(),
        h.from.clone(),
        response.headers.to.clone(),
        h.call_id.clone(),
        CSeq {
            number: h.cseq.number,
            method: Method::Ack,
        },
    );
    headers.route = h.route.clone();
    headers.max_forwards = h.max_forwards.or(Some(70));
    Message {
        start: StartLine::Request {
            method: Method::Ack,
            uri,
        },
        headers,
        body: Cow::Borrowed(&[]),
    }
    .into_owned()
}

/// The CANCEL of an INVITE (RFC 3261 9.1): same Request-URI, Call-ID, To,
/// From, CSeq number and Route, the INVITE's top Via (so the same branch),
/// method CANCEL.
pub fn cancel_for(invite: &Message<'_>) -> Message<'static> {
    let h = &invite.headers;
    let uri = match &invite.start {
        StartLine::Request { uri, .. } => uri.clone(),
        StartLine::Response { .. } => h.to.uri.clone(),
    };
    let mut headers = Headers::new(
        h.via.iter().take(1).cloned().collect(),
        h.from.clone(),
        h.to.clone(),
        h.call_id.clone(),
        CSeq {
            number: h.cseq.number,
            method: Method::Cancel,
        },
    );
    headers.route = h.route.clone();
    headers.max_forwards = Some(70);
    Message {
        start: StartLine::Request {
            method: Method::Cancel,
            uri,
        },
        headers,
        body: Cow::Borrowed(&[]),
    }
    .into_owned()
}

/// The status code of a response message (0 for a request, which no
/// machine accepts where a response is expected).
fn status_of(m: &Message<'_>) -> u16 {
    m.status().unwrap_or(0)
}
