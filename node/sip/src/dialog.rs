//! Dialogs (RFC 3261 section 12) as a sans-IO state value.
//!
//! A [`Dialog`] is created from the request and response that establish it
//! (UAC: [`Dialog::uac`], UAS: [`Dialog::uas`]), is updated by the in-dialog
//! traffic that the caller feeds it, and builds in-dialog requests
//! ([`Dialog::build_request`], [`Dialog::build_ack`]).
//!
//! Invariants:
//! - the dialog id (Call-ID, local tag, remote tag) never changes once
//!   created, and the local tag is never empty;
//! - the local sequence number only grows; requests from the peer with a
//!   lower CSeq than the last one are refused (RFC 3261 12.2.2: 500);
//! - a terminated dialog builds no requests.
//!
//! Boundary: tags, branches and Call-IDs are chosen by the caller (they
//! need randomness); transactions carry the built requests.

use std::borrow::Cow;

use thiserror::Error;

use crate::message::{CSeq, Contact, Headers, Message, Method, NameAddr, StartLine, Uri, Via};

/// Identity of a dialog, seen from this side.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag (empty for an RFC 2543 peer that sent none).
    pub remote_tag: String,
}

impl DialogId {
    /// The id of the dialog an incoming request belongs to (we are the
    /// UAS of the request: our tag is in To).
    pub fn for_incoming_request(request: &Message<'_>) -> Option<DialogId> {
        Some(DialogId {
            call_id: request.headers.call_id.to_string(),
            local_tag: request.headers.to.tag()?.to_string(),
            remote_tag: request.headers.from.tag().unwrap_or_default().to_string(),
        })
    }

    /// The id of the dialog an incoming response belongs to (we sent the
    /// request: our tag is in From).
    pub fn for_incoming_response(response: &Message<'_>) -> Option<DialogId> {
        Some(DialogId {
            call_id: response.headers.call_id.to_string(),
            local_tag: response.headers.from.tag()?.to_string(),
            remote_tag: response.headers.to.tag()?.to_string(),
        })
    }
}

/// Dialog states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
    /// Ended (BYE, non-2xx final in early state, 481 or 408).
    Terminated,
}

/// Why a dialog operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DialogError {
    /// The response cannot create a dialog (not 101-299, or to a method
    /// that creates none).
    #[error("status {0} does not create a dialog")]
    NotDialogCreating(u16),
    /// A tag needed for the dialog id is missing.
    #[error("missing {0} tag")]
    MissingTag(&'static str),
    /// The message has no Contact to use as remote target.
    #[error("missing Contact (remote target)")]
    MissingContact,
    /// The message is not of the expected kind (request vs response).
    #[error("expected a {0}")]
    WrongKind(&'static str),
    /// The message belongs to another dialog.
    #[error("message belongs to another dialog")]
    OtherDialog,
    /// The peer's CSeq went backwards (answer 500).
    #[error("CSeq {received} lower than the last one, {last}")]
    CSeqOutOfOrder {
        /// CSeq of the request.
        received: u32,
        /// Last CSeq seen from the peer.
        last: u32,
    },
    /// The local CSeq would exceed 2^31-1.
    #[error("local CSeq exhausted")]
    CSeqExhausted,
    /// The dialog is terminated.
    #[error("dialog terminated")]
    Terminated,
}

/// Largest CSeq number a request may carry (RFC 3261 8.1.1.5: below 2^31).
pub const MAX_CSEQ: u32 = (1 << 31) - 1;

/// State of one dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    id: DialogId,
    state: DialogState,
    local_seq: Option<u32>,
    remote_seq: Option<u32>,
    local_uri: NameAddr<'static>,
    remote_uri: NameAddr<'static>,
    remote_target: Uri<'static>,
    route_set: Vec<NameAddr<'static>>,
}

fn first_contact(m: &Message<'_>) -> Result<Uri<'static>, DialogError> {
    m.headers
        .contact
        .iter()
        .find_map(Contact::address)
        .map(|a| a.uri.clone().into_owned())
        .ok_or(DialogError::MissingContact)
}

fn is_target_refresh(method: &Method<'_>) -> bool {
    matches!(
        method,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify
    )
}

impl Dialog {
    /// The dialog a UAC holds after `response` to its `request` (RFC 3261
    /// 12.1.2): early for 101-199, confirmed for 2xx.
    pub fn uac(request: &Message<'_>, response: &Message<'_>) -> Result<Dialog, DialogError> {
        let status = response
            .status()
            .ok_or(DialogError::WrongKind("response"))?;
        if !request.is_request() {
            return Err(DialogError::WrongKind("request"));
        }
        let state = match status {
            101..=199 => DialogState::Early,
            200..=299 => DialogState::Confirmed,
            other => return Err(DialogError::NotDialogCreating(other)),
        };
        let id = DialogId::for_incoming_response(response)
            .ok_or(DialogError::MissingTag("To or From"))?;
        if request.headers.from.tag() != Some(id.local_tag.as_str())
            || request.headers.call_id != id.call_id
        {
            return Err(DialogError::OtherDialog);
        }
        Ok(Dialog {
            id,
            state,
            local_seq: Some(request.headers.cseq.number),
            remote_seq: None,
            local_uri: request.headers.from.clone().into_owned(),
            remote_uri: response.headers.to.clone().into_owned(),
            remote_target: first_contact(response)?,
            route_set: response
                .headers
                .record_route
                .iter()
                .rev()
                .cloned()
                .map(NameAddr::into_owned)
                .collect(),
        })
    }

    /// The dialog a UAS holds when answering `request` with `status`
    /// (101-299) and tag `local_tag` (RFC 3261 12.1.1).
    pub fn uas(request: &Message<'_>, status: u16, local_tag: &str) -> Result<Dialog, DialogError> {
        if !request.is_request() {
            return Err(DialogError::WrongKind("request"));
        }
        let state = match status {
            101..=199 => DialogState::Early,
            200..=299 => DialogState::Confirmed,
            other => return Err(DialogError::NotDialogCreating(other)),
        };
        if local_tag.is_empty() {
            return Err(DialogError::MissingTag("local"));
        }
        let mut local_uri = request.headers.to.clone().into_owned();
        local_uri.set_tag(Cow::Owned(local_tag.to_string()));
        Ok(Dialog {
            id: DialogId {
                call_id: request.headers.call_id.to_string(),
                local_tag: local_tag.to_string(),
                remote_tag: request.headers.from.tag().unwrap_or_default().to_string(),
            },
            state,
            local_seq: None,
            remote_seq: Some(request.headers.cseq.number),
            local_uri,
            remote_uri: request.headers.from.clone().into_owned(),
            remote_target: first_contact(request)?,
            route_set: request
                .headers
                .record_route
                .iter()
                .cloned()
                .map(NameAddr::into_owned)
                .collect(),
        })
    }

    /// The dialog id.
    pub fn id(&self) -> &DialogId {
        &self.id
    }

    /// The state.
    pub fn state(&self) -> DialogState {
        self.state
    }

    /// Where in-dialog requests go (the peer's Contact).
    pub fn remote_target(&self) -> &Uri<'static> {
        &self.remote_target
    }

    /// The route set, first hop first.
    pub fn route_set(&self) -> &[NameAddr<'static>] {
        &self.route_set
    }

    /// Last CSeq number we used.
    pub fn local_seq(&self) -> Option<u32> {
        self.local_seq
    }

    /// Last CSeq number the peer used.
    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }

    /// Updates a UAC dialog with a response to a request sent in it (or to
    /// the request that created it).
    pub fn on_response(&mut self, response: &Message<'_>) -> Result<(), DialogError> {
        let status = response
            .status()
            .ok_or(DialogError::WrongKind("response"))?;
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        if DialogId::for_incoming_response(response).as_ref() != Some(&self.id) {
            return Err(DialogError::OtherDialog);
        }
        let method = &response.headers.cseq.method;
        match status {
            200..=299 => {
                if self.state == DialogState::Early {
                    // RFC 3261 13.2.2.4: the 2xx fixes the route set.
                    self.route_set = response
                        .headers
                        .record_route
                        .iter()
                        .rev()
                        .cloned()
                        .map(NameAddr::into_owned)
                        .collect();
                    self.state = DialogState::Confirmed;
                }
                if is_target_refresh(method) {
                    if let Ok(target) = first_contact(response) {
                        self.remote_target = target;
                    }
                }
            }
            101..=199 if is_target_refresh(method) => {
                if let Ok(target) = first_contact(response) {
                    self.remote_target = target;
                }
            }
            300..=699 if self.state == DialogState::Early && *method == Method::Invite => {
                self.state = DialogState::Terminated;
            }
            408 | 481 => self.state = DialogState::Terminated,
            _ => {}
        }
        self.check_invariants();
        Ok(())
    }

    /// Updates the dialog with a request from the peer (RFC 3261 12.2.2).
    /// An error means the request must be refused (500 for CSeq order).
    pub fn on_request(&mut self, request: &Message<'_>) -> Result<(), DialogError> {
        if !request.is_request() {
            return Err(DialogError::WrongKind("request"));
        }
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        if DialogId::for_incoming_request(request).as_ref() != Some(&self.id) {
            return Err(DialogError::OtherDialog);
        }
        let method = request.method();
        let received = request.headers.cseq.number;
        if !matches!(method, Method::Ack | Method::Cancel) {
            if let Some(last) = self.remote_seq {
                if received < last {
                    return Err(DialogError::CSeqOutOfOrder { received, last });
                }
            }
            self.remote_seq = Some(received);
        }
        if is_target_refresh(method) {
            if let Ok(target) = first_contact(request) {
                self.remote_target = target;
            }
        }
        if *method == Method::Bye {
            self.state = DialogState::Terminated;
        }
        self.check_invariants();
        Ok(())
    }

    /// Records a final response we (the UAS) sent to the dialog-creating
    /// request: 2xx confirms an early dialog, 300-699 ends it.
    pub fn on_sent_final_response(&mut self, status: u16) {
        match (self.state, status) {
            (DialogState::Early, 200..=299) => self.state = DialogState::Confirmed,
            (DialogState::Early, 300..=699) => self.state = DialogState::Terminated,
            _ => {}
        }
        self.check_invariants();
    }

    /// Request-URI and Route header of an in-dialog request (RFC 3261
    /// 12.2.1.1), for loose and strict first hops.
    fn target_and_route(&self) -> (Uri<'static>, Vec<NameAddr<'static>>) {
        let Some(first) = self.route_set.first() else {
            return (self.remote_target.clone(), Vec::new());
        };
        let loose = first.uri.as_sip().is_some_and(|u| u.is_loose_router());
        if loose {
            return (self.remote_target.clone(), self.route_set.clone());
        }
        // Strict router: it becomes the Request-URI, the remote target the
        // last Route.
        let mut uri = first.uri.clone();
        if let Uri::Sip(sip) = &mut uri {
            sip.headers = None;
        }
        let mut route: Vec<NameAddr<'static>> = self.route_set[1..].to_vec();
        route.push(NameAddr::new(self.remote_target.clone()));
        (uri, route)
    }

    fn request(&self, method: Method<'static>, seq: u32, via: Via<'static>) -> Message<'static> {
        let (uri, route) = self.target_and_route();
        let mut headers = Headers::new(
            vec![via],
            self.local_uri.clone(),
            self.remote_uri.clone(),
            Cow::Owned(self.id.call_id.clone()),
            CSeq {
                number: seq,
                method: method.clone(),
            },
        );
        headers.route = route;
        headers.max_forwards = Some(70);
        Message {
            start: StartLine::Request { method, uri },
            headers,
            body: Cow::Borrowed(&[]),
        }
    }

    /// Builds an in-dialog request (not ACK or CANCEL) with the next local
    /// CSeq. A UAS dialog that never sent a request starts at 1. `contact`
    /// is added for target refreshes. The caller sets the body.
    pub fn build_request(
        &mut self,
        method: Method<'static>,
        via: Via<'static>,
        contact: Option<NameAddr<'static>>,
    ) -> Result<Message<'static>, DialogError> {
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        let seq = self
            .local_seq
            .map_or(Some(1), |s| s.checked_add(1))
            .filter(|s| *s <= MAX_CSEQ);
        let seq = seq.ok_or(DialogError::CSeqExhausted)?;
        self.local_seq = Some(seq);
        let mut request = self.request(method, seq, via);
        request.headers.contact = contact.into_iter().map(Contact::Address).collect();
        self.check_invariants();
        Ok(request)
    }

    /// Builds the ACK for a 2xx to the INVITE with CSeq `invite_seq` (RFC
    /// 3261 13.2.2.4): same CSeq number, method ACK, new transaction.
    pub fn build_ack(
        &self,
        invite_seq: u32,
        via: Via<'static>,
    ) -> Result<Message<'static>, DialogError> {
        if self.state == DialogState::Terminated {
            return Err(DialogError::Terminated);
        }
        Ok(self.request(Method::Ack, invite_seq, via))
    }

    /// Panics if the dialog state is inconsistent (a bug here).
    pub fn check_invariants(&self) {
        assert!(
            !self.id.local_tag.is_empty(),
            "a dialog always has a local tag"
        );
        assert!(
            self.local_seq.is_none_or(|s| s <= MAX_CSEQ),
            "local CSeq stays below 2^31"
        );
        assert_eq!(
            self.local_uri.tag(),
            Some(self.id.local_tag.as_str()),
            "local URI carries the local tag"
        );
    }
}
