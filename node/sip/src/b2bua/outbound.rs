//! An outbound leg: the node is the UAC of an INVITE it places.
//!
//! States: `Calling` (INVITE sent, nothing heard) -> `Early` (a provisional
//! arrived) -> `Confirmed` (2xx, ACKed) -> `Terminating` (our BYE sent). A
//! hang-up in `Calling` waits for a provisional before its CANCEL (RFC 3261
//! 9.1); in `Early` it sends CANCEL and waits in `Cancelling` for the 487
//! (or a 2xx that crossed it, then ACK and BYE). A final non-2xx or a
//! timeout ends it as `Rejected`.

use super::inbound::in_dialog_request;
use super::{
    sdp_of, set_sdp, Action, Context, DialRequest, EndReason, LegCommand, LegEvent, LegId,
    LegTimer, Outcome, Purpose, TxEnd,
};
use crate::dialog::Dialog;
use crate::message::{Message, Method};
use crate::registrar::Flow;
use crate::transaction::cancel_for;
use crate::transaction::layer::{ServerTxId, TxOwner};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Calling,
    Early,
    Cancelling,
    Confirmed,
    Terminating,
}

/// An outbound leg.
#[derive(Debug)]
pub(super) struct Outbound {
    id: LegId,
    flow: Flow,
    invite: Box<Message<'static>>,
    invite_owner: TxOwner,
    state: State,
    cancel_pending: bool,
    dialog: Option<Dialog>,
    local_sdp: String,
}

/// Characters kept in a From user part or display name we write.
fn clean(text: &str, display: bool) -> String {
    text.chars()
        .filter(|c| {
            c.is_ascii_alphanumeric()
                || "+-_.!~*'()".contains(*c)
                || (display && " ,:@".contains(*c))
        })
        .take(64)
        .collect()
}

impl Outbound {
    pub(super) fn start(
        ctx: &mut Context,
        now_ms: u64,
        id: LegId,
        request: DialRequest,
        out: &mut Vec<Action>,
    ) -> Option<Outbound> {
        let _ = now_ms;
        let user = match clean(&request.from_user, false) {
            u if u.is_empty() => "anonymous".to_string(),
            u => u,
        };
        let display = request
            .from_display
            .as_deref()
            .map(|d| clean(d, true))
            .filter(|d| !d.is_empty())
            .map(|d| format!("\"{d}\" "))
            .unwrap_or_default();
        let tag = ctx.random_hex();
        let call_id = format!("{}@{}", ctx.random_hex(), ctx.config.host);
        let via = ctx.via(&request.flow);
        let contact = ctx.contact(&request.flow);
        let mut extra = String::new();
        for (name, value) in &request.headers {
            if name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !value.contains(['\r', '\n'])
            {
                extra.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        let text = format!(
            "INVITE {target} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n\
             From: {display}<sip:{user}@{host}>;tag={tag}\r\nTo: <{to}>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: {contact}\r\n\
             Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE\r\n\
             User-Agent: {agent}\r\n{extra}Content-Length: 0\r\n\r\n",
            target = request.target,
            host = clean(&request.from_host, false),
            to = request.to,
            agent = ctx.config.user_agent,
        );
        let mut invite = Message::parse(text.as_bytes()).ok()?.into_owned();
        set_sdp(&mut invite, &request.sdp);
        let owner = ctx.owner(id, Purpose::Invite);
        let invite = Box::new(invite);
        out.push(Action::Send {
            request: invite.clone(),
            flow: request.flow,
            owner,
        });
        Some(Outbound {
            id,
            flow: request.flow,
            invite,
            invite_owner: owner,
            state: State::Calling,
            cancel_pending: false,
            dialog: None,
            local_sdp: request.sdp,
        })
    }

    /// (Call-ID, our From tag): what every response to this leg carries.
    pub(super) fn match_key(&self) -> (String, String) {
        (
            self.invite.headers.call_id.to_string(),
            self.invite
                .headers
                .from
                .tag()
                .unwrap_or_default()
                .to_string(),
        )
    }

    fn send_cancel(&mut self, ctx: &mut Context, now_ms: u64, out: &mut Vec<Action>) {
        let cancel = cancel_for(&self.invite);
        let owner = ctx.owner(self.id, Purpose::Cancel);
        out.push(Action::Send {
            request: Box::new(cancel),
            flow: self.flow,
            owner,
        });
        self.state = State::Cancelling;
        ctx.schedule(
            self.id,
            LegTimer::CancelTimeout,
            now_ms + ctx.config.timers.transaction_timeout_ms(),
        );
    }

    fn send_bye(&mut self, ctx: &mut Context, out: &mut Vec<Action>) -> Outcome {
        let via = ctx.via(&self.flow);
        let Some(request) = self
            .dialog
            .as_mut()
            .and_then(|d| d.build_request(Method::Bye, via, None).ok())
        else {
            return Outcome::Ended(EndReason::LocalHangup);
        };
        let owner = ctx.owner(self.id, Purpose::Bye);
        out.push(Action::Send {
            request: Box::new(request),
            flow: self.flow,
            owner,
        });
        self.state = State::Terminating;
        Outcome::Alive
    }

    /// ACKs a 2xx in `dialog` (RFC 3261 13.2.2.4: a new transaction, sent
    /// straight to the transport).
    fn ack(&self, ctx: &mut Context, dialog: &Dialog, out: &mut Vec<Action>) {
        let via = ctx.via(&self.flow);
        if let Ok(ack) = dialog.build_ack(self.invite.headers.cseq.number, via) {
            out.push(Action::Transmit {
                flow: self.flow,
                message: Box::new(ack),
            });
        }
    }

    pub(super) fn command(
        &mut self,
        ctx: &mut Context,
        now_ms: u64,
        command: LegCommand,
        out: &mut Vec<Action>,
    ) -> Outcome {
        let LegCommand::Hangup { .. } = command else {
            return Outcome::Alive; // answer/progress/reject belong to inbound legs
        };
        match self.state {
            State::Calling => {
                self.cancel_pending = true;
                Outcome::Alive
            }
            State::Early => {
                self.send_cancel(ctx, now_ms, out);
                Outcome::Alive
            }
            State::Confirmed => self.send_bye(ctx, out),
            State::Cancelling | State::Terminating => Outcome::Alive,
        }
    }

    pub(super) fn on_response(
        &mut self,
        ctx: &mut Context,
        now_ms: u64,
        purpose: Purpose,
        response: &Message<'static>,
        out: &mut Vec<Action>,
    ) -> Outcome {
        let Some(status) = response.status() else {
            return Outcome::Alive;
        };
        match purpose {
            Purpose::Bye if status >= 200 => return Outcome::Ended(EndReason::LocalHangup),
            Purpose::Cancel if status >= 300 => {
                // The CANCEL found nothing to cancel (481): the INVITE's own
                // final response, or the timeout, will end the leg.
                return Outcome::Alive;
            }
            Purpose::Bye | Purpose::Cancel => return Outcome::Alive,
            Purpose::Invite => {}
        }
        match status {
            100 => Outcome::Alive,
            101..=199 => {
                let mut outcome = Outcome::Alive;
                if self.state == State::Calling {
                    self.state = State::Early;
                    if response.headers.to.tag().is_some() {
                        if let Ok(d) = Dialog::uac(&self.invite, response) {
                            outcome = Outcome::Dialog(d.id().clone());
                            self.dialog = Some(d);
                        }
                    }
                    if self.cancel_pending {
                        self.send_cancel(ctx, now_ms, out);
                        return outcome;
                    }
                }
                if self.state == State::Early {
                    out.push(Action::Event(LegEvent::Progress {
                        leg: self.id,
                        status,
                        sdp: sdp_of(response),
                    }));
                }
                outcome
            }
            200..=299 => {
                let dialog = match Dialog::uac(&self.invite, response) {
                    Ok(d) => d,
                    Err(_) => {
                        // A 2xx without Contact or tag: nothing to ACK in; the
                        // callee will give up on its side.
                        return Outcome::Ended(EndReason::Rejected {
                            status: 502,
                            reason: "the 2xx could not establish a dialog".into(),
                        });
                    }
                };
                self.ack(ctx, &dialog, out);
                let id = dialog.id().clone();
                self.dialog = Some(dialog);
                ctx.cancel_timers(self.id);
                match self.state {
                    State::Calling | State::Early if !self.cancel_pending => {
                        self.state = State::Confirmed;
                        out.push(Action::Event(LegEvent::Answered {
                            leg: self.id,
                            sdp: sdp_of(response),
                        }));
                        Outcome::Dialog(id)
                    }
                    _ => {
                        // The answer crossed our CANCEL: end it with BYE.
                        let _ = self.send_bye(ctx, out);
                        if self.state == State::Terminating {
                            Outcome::Dialog(id)
                        } else {
                            Outcome::Ended(EndReason::LocalHangup)
                        }
                    }
                }
            }
            _ => {
                if matches!(self.state, State::Cancelling) || self.cancel_pending {
                    return Outcome::Ended(EndReason::LocalHangup);
                }
                let reason = match &response.start {
                    crate::message::StartLine::Response { reason, .. } => reason.to_string(),
                    crate::message::StartLine::Request { .. } => String::new(),
                };
                Outcome::Ended(EndReason::Rejected { status, reason })
            }
        }
    }

    /// A 2xx that matched no transaction: a retransmission of the one we
    /// ACKed (ACK again), or the answer of a second dialog (ACK and BYE).
    pub(super) fn on_stray_2xx(
        &mut self,
        ctx: &mut Context,
        response: &Message<'static>,
        out: &mut Vec<Action>,
    ) {
        let same = self
            .dialog
            .as_ref()
            .is_some_and(|d| Some(d.id().remote_tag.as_str()) == response.headers.to.tag());
        if same {
            if let Some(d) = self.dialog.clone() {
                self.ack(ctx, &d, out);
            }
            return;
        }
        if let Ok(mut other) = Dialog::uac(&self.invite, response) {
            self.ack(ctx, &other, out);
            let via = ctx.via(&self.flow);
            if let Ok(bye) = other.build_request(Method::Bye, via, None) {
                out.push(Action::Transmit {
                    flow: self.flow,
                    message: Box::new(bye),
                });
            }
        }
    }

    pub(super) fn on_failure(
        &mut self,
        ctx: &mut Context,
        now_ms: u64,
        purpose: Purpose,
        what: TxEnd,
        out: &mut Vec<Action>,
    ) -> Outcome {
        let _ = now_ms;
        let transport = what == TxEnd::TransportFailed;
        match purpose {
            Purpose::Invite => {
                if self.state == State::Confirmed || self.state == State::Terminating {
                    return Outcome::Alive;
                }
                if transport {
                    return Outcome::Ended(EndReason::TransportFailed);
                }
                if self.cancel_pending || self.state == State::Cancelling {
                    return Outcome::Ended(EndReason::LocalHangup);
                }
                Outcome::Ended(EndReason::Rejected {
                    status: 408,
                    reason: "Request Timeout - the device did not answer".into(),
                })
            }
            Purpose::Cancel => {
                // No answer to our CANCEL: stop waiting for the INVITE too.
                out.push(Action::Abandon {
                    owner: self.invite_owner,
                });
                ctx.cancel_timers(self.id);
                Outcome::Ended(EndReason::LocalHangup)
            }
            Purpose::Bye => Outcome::Ended(EndReason::LocalHangup),
        }
    }

    pub(super) fn on_timer(
        &mut self,
        ctx: &mut Context,
        now_ms: u64,
        timer: LegTimer,
        out: &mut Vec<Action>,
    ) -> Outcome {
        let _ = (ctx, now_ms);
        match (self.state, timer) {
            (State::Cancelling, LegTimer::CancelTimeout) => {
                out.push(Action::Abandon {
                    owner: self.invite_owner,
                });
                Outcome::Ended(EndReason::LocalHangup)
            }
            _ => Outcome::Alive,
        }
    }

    pub(super) fn on_request(
        &mut self,
        ctx: &mut Context,
        now_ms: u64,
        server: ServerTxId,
        flow: Flow,
        request: &Message<'static>,
        out: &mut Vec<Action>,
    ) -> Outcome {
        let _ = now_ms;
        let outcome = in_dialog_request(
            self.id,
            self.dialog.as_mut(),
            ctx,
            Some(&self.local_sdp),
            &self.flow,
            server,
            flow,
            request,
            out,
        );
        if let Outcome::Ended(_) = outcome {
            if matches!(
                self.state,
                State::Calling | State::Early | State::Cancelling
            ) {
                // A BYE in an early dialog also ends the INVITE's wait.
                out.push(Action::Abandon {
                    owner: self.invite_owner,
                });
            }
        }
        outcome
    }
}
