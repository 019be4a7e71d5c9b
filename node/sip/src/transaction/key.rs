//! Matching messages to transactions (RFC 3261 17.1.3 and 17.2.3).

use crate::message::{Message, Method, StartLine};

/// The identity of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionKey {
    /// RFC 3261: the top Via's branch (with magic cookie), sent-by, and the
    /// method (ACK is filed under INVITE).
    Rfc3261 {
        /// Branch parameter.
        branch: String,
        /// `host[:port]` of the top Via.
        sent_by: String,
        /// Method; ACK maps to INVITE.
        method: Method<'static>,
    },
    /// RFC 2543 matching for branches without the cookie (RFC 4475
    /// `badbranch`): Request-URI, tags, Call-ID, CSeq and top Via.
    ///
    /// The To tag is left out for INVITE and ACK: an ACK carries the tag of
    /// the server's response, which the INVITE did not have.
    Rfc2543 {
        /// Request-URI, printed.
        request_uri: String,
        /// From tag.
        from_tag: Option<String>,
        /// To tag (None for INVITE and ACK, see above).
        to_tag: Option<String>,
        /// Call-ID.
        call_id: String,
        /// CSeq number.
        cseq: u32,
        /// Method; ACK maps to INVITE.
        method: Method<'static>,
        /// Top Via, printed.
        top_via: String,
    },
}

fn filed_method(m: &Method<'_>) -> Method<'static> {
    match m {
        Method::Ack => Method::Invite,
        other => other.clone().into_owned(),
    }
}

impl TransactionKey {
    /// The same key for another method (a CANCEL's key names the INVITE it
    /// cancels once its method is INVITE, RFC 3261 9.2).
    pub fn with_method(&self, method: Method<'static>) -> TransactionKey {
        let method = filed_method(&method);
        match self.clone() {
            TransactionKey::Rfc3261 {
                branch, sent_by, ..
            } => TransactionKey::Rfc3261 {
                branch,
                sent_by,
                method,
            },
            TransactionKey::Rfc2543 {
                request_uri,
                from_tag,
                call_id,
                cseq,
                top_via,
                ..
            } => TransactionKey::Rfc2543 {
                request_uri,
                from_tag,
                // INVITE keys leave the To tag out (see the variant).
                to_tag: None,
                call_id,
                cseq,
                method,
                top_via,
            },
        }
    }

    /// The key of the server transaction a request belongs to; `None` for a
    /// response.
    pub fn for_server(request: &Message<'_>) -> Option<TransactionKey> {
        let StartLine::Request { method, uri } = &request.start else {
            return None;
        };
        let via = request.top_via()?;
        let method = filed_method(method);
        if via.has_rfc3261_branch() {
            return Some(TransactionKey::Rfc3261 {
                branch: via.branch().unwrap_or_default().to_string(),
                sent_by: via.sent_by(),
                method,
            });
        }
        let h = &request.headers;
        let to_tag = match method {
            Method::Invite => None,
            _ => h.to.tag().map(str::to_string),
        };
        Some(TransactionKey::Rfc2543 {
            request_uri: uri.to_string(),
            from_tag: h.from.tag().map(str::to_string),
            to_tag,
            call_id: h.call_id.to_string(),
            cseq: h.cseq.number,
            method,
            top_via: via.to_string(),
        })
    }

    /// The key of the client transaction a response belongs to (top Via
    /// branch and sent-by, CSeq method). Client transactions always use
    /// RFC 3261 branches.
    pub fn for_client_response(response: &Message<'_>) -> Option<TransactionKey> {
        let via = response.top_via()?;
        Some(TransactionKey::Rfc3261 {
            branch: via.branch()?.to_string(),
            sent_by: via.sent_by(),
            method: filed_method(&response.headers.cseq.method),
        })
    }

    /// The key under which a client transaction sending `request` is filed.
    pub fn for_client_request(request: &Message<'_>) -> Option<TransactionKey> {
        let via = request.top_via()?;
        Some(TransactionKey::Rfc3261 {
            branch: via.branch()?.to_string(),
            sent_by: via.sent_by(),
            method: filed_method(request.method()),
        })
    }
}
