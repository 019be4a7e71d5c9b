//! The SIP message codec (RFC 3261 section 7 and 25, RFC 5118 for IPv6).
//!
//! [`Message::parse`] turns one datagram (or one framed stream message, see
//! [`frame_stream`]) into a [`Message`] that borrows from the input where no
//! rewriting was needed (folded header lines are copied). The headers a
//! proxy, registrar or user agent needs are typed fields of [`Headers`];
//! every other header is kept raw, in order, in [`Headers::other`].
//!
//! Invariants of a parsed message:
//! - it has at least one Via and exactly one From, To, Call-ID and CSeq;
//!   single-valued headers (those, Max-Forwards, Content-Length,
//!   Content-Type, Expires, Date) never appear twice;
//! - in a request, the CSeq method equals the request method;
//! - its canonical form (below) has at most [`MAX_HEADER_COUNT`] header
//!   lines, Content-Length included, counting each comma-list value once;
//! - `body` holds exactly Content-Length octets (a datagram without
//!   Content-Length takes the rest of the datagram);
//! - `Message::parse(&m.to_bytes()) == Ok(m)`: printing gives a canonical
//!   form (full header names, typed headers first, one Via, Route,
//!   Record-Route or Contact value per line, Content-Length last) that
//!   parses back to the same value.
//!
//! Boundary: the codec checks syntax and the framing rules above; what a
//! server does with a well-formed message (416, 420, 415, 483, 401, ...) is
//! decided above it, from the typed fields exposed here.

mod address;
mod error;
mod framing;
mod header_values;
mod multipart;
mod parse;
mod print;
mod reject;
mod scanner;
mod uri;
mod via;

use std::borrow::Cow;
use std::fmt;

pub use address::{Contact, DisplayName, NameAddr};
pub use error::{ParseError, SyntaxError};
pub(crate) use framing::find_end_of_headers;
pub use framing::{frame_stream, Framing, MAX_HEADER_COUNT, MAX_LINE_BYTES, MAX_MESSAGE_BYTES};
pub use header_values::{
    check_call_id, check_date, parse_delta_seconds, parse_max_forwards, parse_option_tags,
    AuthValue, CSeq, MediaType, Method,
};
pub use multipart::{split_multipart, BodyPart};
pub use reject::{reject_response, StatelessResponse};
pub use scanner::{percent_decode, unescape_quoted};
pub use uri::{Host, SipUri, TelUri, Uri};
pub use via::{Transport, Via, MAGIC_COOKIE};

/// Copies a borrowed string so that it lives as long as needed.
pub(crate) fn own(c: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(c.into_owned())
}

/// Removes surrounding quotes and quoted-pair escapes, if quoted.
pub fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|x| x.strip_suffix('"')) {
        Some(inner) => unescape_quoted(inner),
        None => v.to_string(),
    }
}

/// A `name[=value]` parameter of a URI or a header. Values are raw: URI
/// parameters keep their escapes, header parameters their quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param<'a> {
    /// Name as received.
    pub name: Cow<'a, str>,
    /// Value, when there is an `=`.
    pub value: Option<Cow<'a, str>>,
}

impl<'a> Param<'a> {
    /// A parameter with a value.
    pub fn new(name: impl Into<Cow<'a, str>>, value: impl Into<Cow<'a, str>>) -> Self {
        Param {
            name: name.into(),
            value: Some(value.into()),
        }
    }

    /// A parameter without value (`;lr`).
    pub fn flag(name: impl Into<Cow<'a, str>>) -> Self {
        Param {
            name: name.into(),
            value: None,
        }
    }

    /// Copies borrowed text so the value outlives its input.
    pub fn into_owned(self) -> Param<'static> {
        Param {
            name: own(self.name),
            value: self.value.map(own),
        }
    }
}

impl fmt::Display for Param<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(v) = &self.value {
            write!(f, "={v}")?;
        }
        Ok(())
    }
}

/// First parameter named `name` (ASCII case-insensitive).
pub(crate) fn find_param<'p>(params: &'p [Param<'_>], name: &str) -> Option<Option<&'p str>> {
    params
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| p.value.as_deref())
}

/// A header the codec does not type, kept as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    /// Canonical name for headers the codec knows (compact forms expanded),
    /// otherwise the name as received.
    pub name: Cow<'a, str>,
    /// Value with surrounding whitespace removed and folds unfolded.
    pub value: Cow<'a, str>,
}

impl Header<'_> {
    /// Copies borrowed text so the value outlives its input.
    pub fn into_owned(self) -> Header<'static> {
        Header {
            name: own(self.name),
            value: own(self.value),
        }
    }
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `Method SP Request-URI SP SIP/2.0`.
    Request {
        /// Method.
        method: Method<'a>,
        /// Request-URI (never has a `?headers` component).
        uri: Uri<'a>,
    },
    /// `SIP/2.0 SP Status-Code SP Reason-Phrase`.
    Response {
        /// Status code, 100 to 699.
        status: u16,
        /// Reason phrase, possibly empty.
        reason: Cow<'a, str>,
    },
}

/// The headers of a message: typed ones as fields, the rest raw.
///
/// Invariant (of parsed messages, and required for printing a message that
/// parses back): `via` is not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers<'a> {
    /// Via values, top first (all Via lines, comma lists flattened).
    pub via: Vec<Via<'a>>,
    /// From.
    pub from: NameAddr<'a>,
    /// To.
    pub to: NameAddr<'a>,
    /// Call-ID.
    pub call_id: Cow<'a, str>,
    /// CSeq.
    pub cseq: CSeq<'a>,
    /// Max-Forwards (absent in RFC 2543 requests).
    pub max_forwards: Option<u8>,
    /// Route values in order.
    pub route: Vec<NameAddr<'a>>,
    /// Record-Route values in order.
    pub record_route: Vec<NameAddr<'a>>,
    /// Contact values in order (`*` is [`Contact::Wildcard`]).
    pub contact: Vec<Contact<'a>>,
    /// Expires in seconds (clamped to 2^32-1).
    pub expires: Option<u32>,
    /// Content-Type.
    pub content_type: Option<MediaType<'a>>,
    /// Require option tags.
    pub require: Vec<Cow<'a, str>>,
    /// Proxy-Require option tags.
    pub proxy_require: Vec<Cow<'a, str>>,
    /// Supported option tags.
    pub supported: Vec<Cow<'a, str>>,
    /// Unsupported option tags.
    pub unsupported: Vec<Cow<'a, str>>,
    /// Authorization values.
    pub authorization: Vec<AuthValue<'a>>,
    /// Proxy-Authorization values.
    pub proxy_authorization: Vec<AuthValue<'a>>,
    /// WWW-Authenticate values.
    pub www_authenticate: Vec<AuthValue<'a>>,
    /// Proxy-Authenticate values.
    pub proxy_authenticate: Vec<AuthValue<'a>>,
    /// Date (checked to be an RFC 1123 date in GMT).
    pub date: Option<Cow<'a, str>>,
    /// Every other header, in order of appearance.
    pub other: Vec<Header<'a>>,
}

impl<'a> Headers<'a> {
    /// Headers with the mandatory fields and nothing else.
    pub fn new(
        via: Vec<Via<'a>>,
        from: NameAddr<'a>,
        to: NameAddr<'a>,
        call_id: Cow<'a, str>,
        cseq: CSeq<'a>,
    ) -> Self {
        Headers {
            via,
            from,
            to,
            call_id,
            cseq,
            max_forwards: None,
            route: Vec::new(),
            record_route: Vec::new(),
            contact: Vec::new(),
            expires: None,
            content_type: None,
            require: Vec::new(),
            proxy_require: Vec::new(),
            supported: Vec::new(),
            unsupported: Vec::new(),
            authorization: Vec::new(),
            proxy_authorization: Vec::new(),
            www_authenticate: Vec::new(),
            proxy_authenticate: Vec::new(),
            date: None,
            other: Vec::new(),
        }
    }

    /// Values of an untyped header (name compared case-insensitively with
    /// the canonical name, e.g. `"Accept"`, `"Subject"`).
    pub fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.other
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_ref())
    }

    /// Copies borrowed text so the value outlives its input.
    pub fn into_owned(self) -> Headers<'static> {
        fn tags(v: Vec<Cow<'_, str>>) -> Vec<Cow<'static, str>> {
            v.into_iter().map(own).collect()
        }
        fn auth(v: Vec<AuthValue<'_>>) -> Vec<AuthValue<'static>> {
            v.into_iter().map(AuthValue::into_owned).collect()
        }
        fn addrs(v: Vec<NameAddr<'_>>) -> Vec<NameAddr<'static>> {
            v.into_iter().map(NameAddr::into_owned).collect()
        }
        Headers {
            via: self.via.into_iter().map(Via::into_owned).collect(),
            from: self.from.into_owned(),
            to: self.to.into_owned(),
            call_id: own(self.call_id),
            cseq: self.cseq.into_owned(),
            max_forwards: self.max_forwards,
            route: addrs(self.route),
            record_route: addrs(self.record_route),
            contact: self.contact.into_iter().map(Contact::into_owned).collect(),
            expires: self.expires,
            content_type: self.content_type.map(MediaType::into_owned),
            require: tags(self.require),
            proxy_require: tags(self.proxy_require),
            supported: tags(self.supported),
            unsupported: tags(self.unsupported),
            authorization: auth(self.authorization),
            proxy_authorization: auth(self.proxy_authorization),
            www_authenticate: auth(self.www_authenticate),
            proxy_authenticate: auth(self.proxy_authenticate),
            date: self.date.map(own),
            other: self.other.into_iter().map(Header::into_owned).collect(),
        }
    }
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// Request line or status line.
    pub start: StartLine<'a>,
    /// Headers.
    pub headers: Headers<'a>,
    /// Body octets (Content-Length is derived from it when printing).
    pub body: Cow<'a, [u8]>,
}

impl<'a> Message<'a> {
    /// Parses one message from a datagram or a framed stream message. Octets
    /// after Content-Length are ignored (RFC 4475 `dblreq`).
    pub fn parse(input: &'a [u8]) -> Result<Self, ParseError> {
        parse::parse_message(input)
    }

    /// Whether this is a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method, or for a response the CSeq method.
    pub fn method(&self) -> &Method<'a> {
        match &self.start {
            StartLine::Request { method, .. } => method,
            StartLine::Response { .. } => &self.headers.cseq.method,
        }
    }

    /// The status code of a response.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { status, .. } => Some(status),
            StartLine::Request { .. } => None,
        }
    }

    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<&Uri<'a>> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The top Via (present in every parsed message).
    pub fn top_via(&self) -> Option<&Via<'a>> {
        self.headers.via.first()
    }

    /// The parts of a `multipart/*` body, split by its boundary.
    pub fn multipart_parts(&self) -> Option<Result<Vec<BodyPart<'_>>, SyntaxError>> {
        let ct = self.headers.content_type.as_ref()?;
        if !ct.kind.eq_ignore_ascii_case("multipart") {
            return None;
        }
        let boundary = ct.param("boundary")?;
        Some(split_multipart(&self.body, &boundary))
    }

    /// Copies borrowed data so the message outlives its input.
    pub fn into_owned(self) -> Message<'static> {
        Message {
            start: match self.start {
                StartLine::Request { method, uri } => StartLine::Request {
                    method: method.into_owned(),
                    uri: uri.into_owned(),
                },
                StartLine::Response { status, reason } => StartLine::Response {
                    status,
                    reason: own(reason),
                },
            },
            headers: self.headers.into_owned(),
            body: Cow::Owned(self.body.into_owned()),
        }
    }

    /// A response to `request` (RFC 3261 8.2.6.2): Via, From, To, Call-ID and
    /// CSeq copied; no body. The caller adds a To tag where needed.
    ///
    /// Panics if `status` is outside 100..=699 (a caller bug).
    pub fn response_to(request: &Message<'_>, status: u16, reason: &str) -> Message<'static> {
        assert!(
            (100..=699).contains(&status),
            "status code {status} is outside 100..=699"
        );
        let h = &request.headers;
        let headers = Headers::new(
            h.via.clone(),
            h.from.clone(),
            h.to.clone(),
            h.call_id.clone(),
            h.cseq.clone(),
        )
        .into_owned();
        Message {
            start: StartLine::Response {
                status,
                reason: Cow::Owned(reason.to_string()),
            },
            headers,
            body: Cow::Borrowed(&[]),
        }
    }
}

/// The usual reason phrase of a status code.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Unknown",
    }
}
