//! Printing in canonical form: full header names, typed headers in a fixed
//! order, one Via/Route/Record-Route/Contact value per line, option tags
//! comma-joined, untyped headers in their original order, Content-Length
//! computed from the body and written last.

use std::fmt;

use super::{Headers, Message, StartLine};

impl fmt::Display for StartLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartLine::Request { method, uri } => write!(f, "{method} {uri} SIP/2.0"),
            StartLine::Response { status, reason } => write!(f, "SIP/2.0 {status} {reason}"),
        }
    }
}

fn lines<T: fmt::Display>(f: &mut fmt::Formatter<'_>, name: &str, values: &[T]) -> fmt::Result {
    for v in values {
        write!(f, "{name}: {v}\r\n")?;
    }
    Ok(())
}

fn joined<T: fmt::Display>(f: &mut fmt::Formatter<'_>, name: &str, values: &[T]) -> fmt::Result {
    if values.is_empty() {
        return Ok(());
    }
    write!(f, "{name}: ")?;
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{v}")?;
    }
    f.write_str("\r\n")
}

/// Writes every header line except Content-Length.
impl fmt::Display for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        lines(f, "Via", &self.via)?;
        lines(f, "Route", &self.route)?;
        lines(f, "Record-Route", &self.record_route)?;
        write!(f, "From: {}\r\n", self.from)?;
        write!(f, "To: {}\r\n", self.to)?;
        write!(f, "Call-ID: {}\r\n", self.call_id)?;
        write!(f, "CSeq: {}\r\n", self.cseq)?;
        if let Some(m) = self.max_forwards {
            write!(f, "Max-Forwards: {m}\r\n")?;
        }
        lines(f, "Contact", &self.contact)?;
        if let Some(e) = self.expires {
            write!(f, "Expires: {e}\r\n")?;
        }
        joined(f, "Require", &self.require)?;
        joined(f, "Proxy-Require", &self.proxy_require)?;
        joined(f, "Supported", &self.supported)?;
        joined(f, "Unsupported", &self.unsupported)?;
        lines(f, "Authorization", &self.authorization)?;
        lines(f, "Proxy-Authorization", &self.proxy_authorization)?;
        lines(f, "WWW-Authenticate", &self.www_authenticate)?;
        lines(f, "Proxy-Authenticate", &self.proxy_authenticate)?;
        if let Some(d) = &self.date {
            write!(f, "Date: {d}\r\n")?;
        }
        if let Some(c) = &self.content_type {
            write!(f, "Content-Type: {c}\r\n")?;
        }
        for h in &self.other {
            write!(f, "{}: {}\r\n", h.name, h.value)?;
        }
        Ok(())
    }
}

impl Headers<'_> {
    /// Header lines the canonical form has, Content-Length included. Kept
    /// beside `Display` above, which it counts line for line.
    pub(crate) fn printed_line_count(&self) -> usize {
        let single = [
            self.max_forwards.is_some(),
            self.expires.is_some(),
            !self.require.is_empty(),
            !self.proxy_require.is_empty(),
            !self.supported.is_empty(),
            !self.unsupported.is_empty(),
            self.date.is_some(),
            self.content_type.is_some(),
        ];
        // From, To, Call-ID, CSeq and Content-Length.
        5 + single.iter().filter(|present| **present).count()
            + self.via.len()
            + self.route.len()
            + self.record_route.len()
            + self.contact.len()
            + self.authorization.len()
            + self.proxy_authorization.len()
            + self.www_authenticate.len()
            + self.proxy_authenticate.len()
            + self.other.len()
    }
}

impl Message<'_> {
    /// The message in canonical wire form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let head = format!(
            "{}\r\n{}Content-Length: {}\r\n\r\n",
            self.start,
            self.headers,
            self.body.len()
        );
        let mut out = Vec::with_capacity(head.len() + self.body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}
