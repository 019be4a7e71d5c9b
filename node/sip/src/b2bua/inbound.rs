//! An inbound leg: the node is the UAS of an INVITE.
//!
//! States: `Offered` (nothing sent but 100) -> `Early` (a provisional with
//! our To tag) -> `Answered` (2xx sent, retransmitted until the ACK) ->
//! `Confirmed` -> `Terminating` (our BYE sent). A final refusal, a CANCEL
//! before the answer, a BYE from the peer, a missing ACK or the answer to
//! our BYE end it.

use std::borrow::Cow;

use super::{
    header, sdp_of, set_sdp, Action, Context, EndReason, LegCommand, LegEvent, LegId, LegTimer,
    Outcome, Purpose,
};
use crate::dialog::Dialog;
use crate::message::{reason_phrase, Contact, Message, Method};
use crate::registrar::Flow;
use crate::transaction::layer::ServerTxId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Offered,
    Early,
    Answered,
    Confirmed,
    Terminating,
}

/// An inbound leg.
#[derive(Debug)]
pub(super) struct Inbound {
    id: LegId,
    server: ServerTxId,
    /// Whether the INVITE server transaction is still alive (after timer L
    /// our 2xx retransmissions go out without it).
    invite_alive: bool,
    flow: Flow,
    invite: Box<Message<'static>>,
    local_tag: String,
    state: State,
    dialog: Option<Dialog>,
    local_sdp: Option<String>,
    answer: Option<Box<Message<'static>>>,
    retransmit_interval_ms: u64,
    bye_pending: bool,
}

impl Inbound {
    pub(super) fn new(
        id: LegId,
        server: ServerTxId,
        flow: Flow,
        invite: Box<Message<'static>>,
        local_tag: String,
    ) -> Self {
        Inbound {
            id,
            server,
            invite_alive: true,
            flow,
            invite,
            local_tag,
            state: State::Offered,
            dialog: None,
            local_sdp: None,
            answer: None,
            retransmit_interval_ms: 0,
            bye_pending: false,
        }
    }

    pub(super) fn server(&self) -> ServerTxId {
        self.server
    }

    pub(super) fn awaiting_ack(&self) -> bool {
        self.state == State::Answered
    }

    pub(super) fn invite_transaction_ended(&mut self) {
        self.invite_alive = false;
    }

    /// A response to the INVITE with our tag, Contact and Server header.
    fn response(&self, ctx: &Context, status: u16, reason: &str) -> Message<'static> {
        let mut r = Message::response_to(&self.invite, status, reason);
        r.headers.to.set_tag(Cow::Owned(self.local_tag.clone()));
        r.headers
            .other
            .push(header("Server", ctx.config.user_agent.clone()));
        r
    }

    fn with_contact(&self, ctx: &Context, mut r: Message<'static>) -> Message<'static> {
        let contact = ctx.contact(&self.flow);
        if let Ok(list) = Contact::parse_list(&contact) {
            r.headers.contact = list.into_iter().map(Contact::into_owned).collect();
        }
        r.headers.other.push(header(
            "Allow",
            "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE",
        ));
        r
    }

    fn respond(&self, response: Message<'static>, out: &mut Vec<Action>) {
        if self.invite_alive {
            out.push(Action::Respond {
                server: self.server,
                response: Box::new(response),
            });
        } else {
            out.push(Action::Transmit {
                flow: self.flow,
                message: Box::new(response),
            });
        }
    }

    /// Creates the dialog on the first response with our tag.
    fn ensure_dialog(&mut self, status: u16) -> Outcome {
        if self.dialog.is_some() {
            return Outcome::Alive;
        }
        match Dialog::uas(&self.invite, status, &self.local_tag) {
            Ok(d) => {
                let id = d.id().clone();
                self.dialog = Some(d);
                Outcome::Dialog(id)
            }
            // An INVITE without Contact has no remote target: the leg works
            // (responses go back on the flow) but no in-dialog request can
            // reach the peer; BYE from it is still matched by the flow.
            Err(_) => Outcome::Alive,
        }
    }

    pub(super) fn command(
        &mut self,
        ctx: &mut Context,
        now_ms: u64,
        command: LegCommand,
        out: &mut Vec<Action>,
    ) -> Outcome {
        match (self.state, command) {
            (State::Offered | State::Early, LegCommand::Progress { status, sdp, .. }) => {
                let status = if (101..=199).contains(&status) {
                    status
                } else {
                    183
                };
                let mut r =
                    self.with_contact(ctx, self.response(ctx, status, reason_phrase(status)));
                if let Some(sdp) = &sdp {
                    set_sdp(&mut r, sdp);
                    self.local_sdp = Some(sdp.clone());
                }
                self.respond(r, out);
                self.state = State::Early;
                self.ensure_dialog(status)
            }
            (State::Offered | State::Early, LegCommand::Answer { sdp, .. }) => {
                let mut r = self.with_contact(ctx, self.response(ctx, 200, "OK"));
                set_sdp(&mut r, &sdp);
                self.local_sdp = Some(sdp);
                let outcome = self.ensure_dialog(200);
                if let Some(d) = &mut self.dialog {
                    d.on_sent_final_response(200);
                }
                self.respond(r.clone(), out);
                self.answer = Some(Box::new(r));
                self.state = State::Answered;
                let t1 = ctx.config.timers.t1_ms;
                if !self.flow.transport.is_reliable() {
                    self.retransmit_interval_ms = t1;
                    ctx.schedule(self.id, LegTimer::Retransmit2xx, now_ms + t1);
                }
                ctx.schedule(
                    self.id,
                    LegTimer::AckTimeout,
                    now_ms + ctx.config.timers.transaction_timeout_ms(),
                );
                outcome
            }
            (
                State::Offered | State::Early,
                LegCommand::Reject {
                    status,
                    reason,
                    headers,
                    ..
                },
            ) => {
                let status = if (300..=699).contains(&status) {
                    status
                } else {
                    500
                };
                let mut r = self.response(ctx, status, &reason);
                for (name, value) in headers {
                    r.headers.other.push(header(&name, value));
                }
                self.respond(r, out);
                Outcome::Ended(EndReason::LocalHangup)
            }
            (State::Offered | State::Early, LegCommand::Hangup { .. }) => {
                let r = self.response(
                    ctx,
                    480,
                    "Temporarily Unavailable - the call ended before it was answered",
                );
                self.respond(r, out);
                Outcome::Ended(EndReason::LocalHangup)
            }
            (State::Answered, LegCommand::Hangup { .. }) => {
                // RFC 3261 15: no BYE before the ACK (or its timeout).
                self.bye_pending = true;
                Outcome::Alive
            }
            (State::Confirmed, LegCommand::Hangup { .. }) => self.send_bye(ctx, out),
            _ => Outcome::Alive,
        }
    }

    fn send_bye(&mut self, ctx: &mut Context, out: &mut Vec<Action>) -> Outcome {
        let via = ctx.via(&self.flow);
        let request = self
            .dialog
            .as_mut()
            .and_then(|d| d.build_request(Method::Bye, via, None).ok());
        let Some(mut request) = request else {
            // No dialog to send in (an INVITE without Contact): the leg ends
            // here; the peer's session times out on its side.
            return Outcome::Ended(EndReason::LocalHangup);
        };
        request
            .headers
            .other
            .push(header("User-Agent", ctx.config.user_agent.clone()));
        let owner = ctx.owner(self.id, Purpose::Bye);
        out.push(Action::Send {
            request: Box::new(request),
            flow: self.flow,
            owner,
        });
        self.state = State::Terminating;
        Outcome::Alive
    }

    pub(super) fn on_ack(
        &mut self,
        ctx: &mut Context,
        now_ms: u64,
        ack: &Message<'_>,
        out: &mut Vec<Action>,
    ) -> Outcome {
        let _ = now_ms;
        if ack.headers.cseq.number != self.invite.headers.cseq.number {
            return Outcome::Alive; // the ACK of a re-INVITE's 2xx
        }
        if self.state != State::Answered {
            return Outcome::Alive;
        }
        self.state = State::Confirmed;
        self.answer = None;
        ctx.cancel_timers(self.id);
        out.push(Action::Event(LegEvent::Confirmed { leg: self.id }));
        if self.bye_pending {
            return self.send_bye(ctx, out);
        }
        Outcome::Alive
    }

    pub(super) fn on_timer(
        &mut self,
        ctx: &mut Context,
        now_ms: u64,
        timer: LegTimer,
        out: &mut Vec<Action>,
    ) -> Outcome {
        match (self.state, timer) {
            (State::Answered, LegTimer::Retransmit2xx) => {
                if let Some(answer) = &self.answer {
                    self.respond((**answer).clone(), out);
                }
                self.retransmit_interval_ms = self
                    .retransmit_interval_ms
                    .saturating_mul(2)
                    .min(ctx.config.timers.t2_ms);
                ctx.schedule(
                    self.id,
                    LegTimer::Retransmit2xx,
                    now_ms + self.retransmit_interval_ms,
                );
                Outcome::Alive
            }
            (State::Answered, LegTimer::AckTimeout) => {
                // RFC 3261 13.3.1.4: the dialog is confirmed, the session ends.
                self.state = State::Confirmed;
                ctx.cancel_timers(self.id);
                match self.send_bye(ctx, out) {
                    Outcome::Ended(_) | Outcome::Alive | Outcome::Dialog(_) => {
                        Outcome::Ended(EndReason::NoAck)
                    }
                }
            }
            _ => Outcome::Alive,
        }
    }

    pub(super) fn on_response(&mut self, purpose: Purpose, response: &Message<'_>) -> Outcome {
        match (purpose, response.status()) {
            (Purpose::Bye, Some(200..=699)) => Outcome::Ended(EndReason::LocalHangup),
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
        let method = request.method().clone();
        if method == Method::Cancel {
            let ok = Message::response_to(request, 200, "OK");
            out.push(Action::Respond {
                server,
                response: Box::new(ok),
            });
            if matches!(self.state, State::Offered | State::Early) {
                let r = self.response(ctx, 487, "Request Terminated - cancelled by the caller");
                self.respond(r, out);
                return Outcome::Ended(EndReason::RemoteHangup);
            }
            return Outcome::Alive;
        }
        in_dialog_request(
            self.id,
            self.dialog.as_mut(),
            ctx,
            self.local_sdp.as_deref(),
            &self.flow,
            server,
            flow,
            request,
            out,
        )
    }
}

/// An in-dialog request on either kind of leg: BYE ends it, re-INVITE and
/// UPDATE get the current description, INFO and OPTIONS 200, the rest 405.
#[allow(clippy::too_many_arguments)] // one place for both leg kinds
pub(super) fn in_dialog_request(
    leg: LegId,
    dialog: Option<&mut Dialog>,
    ctx: &Context,
    local_sdp: Option<&str>,
    leg_flow: &Flow,
    server: ServerTxId,
    _flow: Flow,
    request: &Message<'static>,
    out: &mut Vec<Action>,
) -> Outcome {
    let reply = |status: u16, reason: &str| {
        let mut r = Message::response_to(request, status, reason);
        r.headers
            .other
            .push(header("Server", ctx.config.user_agent.clone()));
        r
    };
    if let Some(d) = dialog {
        if let Err(e) = d.on_request(request) {
            let r = reply(500, &format!("Server Internal Error - {e}"));
            out.push(Action::Respond {
                server,
                response: Box::new(r),
            });
            return Outcome::Alive;
        }
    }
    let method = request.method().clone();
    match method {
        Method::Bye => {
            out.push(Action::Respond {
                server,
                response: Box::new(reply(200, "OK")),
            });
            Outcome::Ended(EndReason::RemoteHangup)
        }
        Method::Invite | Method::Update => {
            let mut r = reply(200, "OK");
            if let Ok(list) = Contact::parse_list(&ctx.contact(leg_flow)) {
                r.headers.contact = list.into_iter().map(Contact::into_owned).collect();
            }
            if let Some(sdp) = local_sdp {
                set_sdp(&mut r, sdp);
            }
            out.push(Action::Respond {
                server,
                response: Box::new(r),
            });
            if let Some(sdp) = sdp_of(request) {
                out.push(Action::Event(LegEvent::Reoffered { leg, sdp }));
            }
            Outcome::Alive
        }
        Method::Info => {
            out.push(Action::Respond {
                server,
                response: Box::new(reply(200, "OK")),
            });
            let content_type = request
                .headers
                .content_type
                .as_ref()
                .map(|ct| format!("{}/{}", ct.kind, ct.subtype))
                .unwrap_or_default();
            out.push(Action::Event(LegEvent::Info {
                leg,
                content_type,
                body: request.body.to_vec(),
            }));
            Outcome::Alive
        }
        Method::Options => {
            out.push(Action::Respond {
                server,
                response: Box::new(reply(200, "OK")),
            });
            Outcome::Alive
        }
        other => {
            let mut r = reply(
                405,
                &format!(
                    "Method Not Allowed - {} is not served in a call",
                    other.as_str()
                ),
            );
            r.headers.other.push(header(
                "Allow",
                "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE",
            ));
            out.push(Action::Respond {
                server,
                response: Box::new(r),
            });
            Outcome::Alive
        }
    }
}
