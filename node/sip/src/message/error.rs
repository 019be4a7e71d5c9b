//! Errors of the SIP codec. Every variant names what was wrong, so that the
//! stateless 400 built from it (see [`super::reject`]) tells the sender why.

use thiserror::Error;

/// A grammar violation inside one element (a URI, a header value, a start
/// line). The text is a short, static description such as
/// `"unterminated quoted string"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct SyntaxError(pub &'static str);

/// Why a buffer is not a SIP message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The input is larger than [`super::MAX_MESSAGE_BYTES`].
    #[error("message of {size_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    TooLarge {
        /// Size of the input.
        size_bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// The input is empty or holds only CRLFs.
    #[error("empty message")]
    Empty,
    /// No empty line (CRLF CRLF) ends the header section.
    #[error("no empty line ends the header section")]
    NoEndOfHeaders,
    /// A physical or logical (unfolded) line is longer than [`super::MAX_LINE_BYTES`].
    #[error("a line exceeds the limit of {max_bytes} bytes")]
    LineTooLong {
        /// The limit.
        max_bytes: usize,
    },
    /// More header lines than [`super::MAX_HEADER_COUNT`].
    #[error("more than {max} header lines")]
    TooManyHeaders {
        /// The limit.
        max: usize,
    },
    /// The start line and headers must be UTF-8 (the body need not be).
    #[error("header section is not valid UTF-8")]
    NotUtf8,
    /// The request line or status line does not follow the grammar.
    #[error("malformed start line: {0}")]
    StartLine(SyntaxError),
    /// A well-formed SIP version other than 2.0 (answered with 505).
    #[error("SIP version {0} not supported")]
    VersionNotSupported(String),
    /// The Request-URI does not follow the grammar.
    #[error("malformed Request-URI: {0}")]
    RequestUri(SyntaxError),
    /// A header line has no colon or its name is not a token.
    #[error("malformed header line: {0}")]
    HeaderLine(SyntaxError),
    /// A header that the codec types does not follow its grammar.
    #[error("malformed {name} header: {reason}")]
    Header {
        /// Canonical name of the header.
        name: &'static str,
        /// What was wrong.
        reason: SyntaxError,
    },
    /// A mandatory header (Via, From, To, Call-ID, CSeq) is absent.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// A header that may appear once appears several times.
    #[error("{0} header appears more than once")]
    Duplicate(&'static str),
    /// The CSeq method differs from the request method.
    #[error("CSeq method {cseq_method} does not match request method {request_method}")]
    CSeqMethodMismatch {
        /// Method of the request line.
        request_method: String,
        /// Method of the CSeq header.
        cseq_method: String,
    },
    /// Content-Length announces more octets than the message holds.
    #[error("Content-Length {declared_bytes} exceeds the {available_bytes} body bytes present")]
    BodyTruncated {
        /// Value of Content-Length.
        declared_bytes: usize,
        /// Octets after the header section.
        available_bytes: usize,
    },
    /// A stream transport needs Content-Length to frame a message.
    #[error("missing Content-Length on a stream transport")]
    MissingContentLength,
}

impl ParseError {
    /// The status code a server answers a request with when it fails to
    /// parse this way: 505 for an unsupported version, 513 for a message
    /// over the size limit, 400 otherwise.
    pub fn status_code(&self) -> u16 {
        match self {
            ParseError::VersionNotSupported(_) => 505,
            ParseError::TooLarge { .. } => 513,
            _ => 400,
        }
    }
}
