//! Second parsing stage: the start line and the typed headers.

use std::borrow::Cow;

use super::address::{Contact, NameAddr};
use super::error::{ParseError, SyntaxError};
use super::framing::{split, RawHeader, MAX_HEADER_COUNT};
use super::header_values::{
    check_call_id, check_date, parse_delta_seconds, parse_max_forwards, parse_option_tags,
    AuthValue, CSeq, MediaType, Method,
};
use super::scanner::parse_digits;
use super::uri::Uri;
use super::via::Via;
use super::{Header, Headers, Message, StartLine};

/// Canonical names and compact forms (RFC 3261 7.3.3 and the registry of
/// compact forms). Headers listed here print under their canonical name.
const KNOWN_NAMES: &[(&str, Option<&str>)] = &[
    ("Via", Some("v")),
    ("From", Some("f")),
    ("To", Some("t")),
    ("Call-ID", Some("i")),
    ("CSeq", None),
    ("Max-Forwards", None),
    ("Contact", Some("m")),
    ("Expires", None),
    ("Content-Type", Some("c")),
    ("Content-Length", Some("l")),
    ("Content-Encoding", Some("e")),
    ("Route", None),
    ("Record-Route", None),
    ("Require", None),
    ("Proxy-Require", None),
    ("Supported", Some("k")),
    ("Unsupported", None),
    ("Authorization", None),
    ("Proxy-Authorization", None),
    ("WWW-Authenticate", None),
    ("Proxy-Authenticate", None),
    ("Date", None),
    ("Subject", Some("s")),
    ("Refer-To", Some("r")),
    ("Referred-By", Some("b")),
    ("Event", Some("o")),
    ("Allow-Events", Some("u")),
    ("Session-Expires", Some("x")),
    ("Identity", Some("y")),
    ("Identity-Info", Some("n")),
    ("Accept-Contact", Some("a")),
    ("Reject-Contact", Some("j")),
    ("Request-Disposition", Some("d")),
    ("Accept", None),
    ("Accept-Encoding", None),
    ("Accept-Language", None),
    ("Allow", None),
    ("Call-Info", None),
    ("Content-Disposition", None),
    ("Content-Language", None),
    ("Min-Expires", None),
    ("Retry-After", None),
    ("Server", None),
    ("User-Agent", None),
    ("Warning", None),
];

/// The canonical name of a known header, matching full names
/// case-insensitively and compact forms.
pub(crate) fn canonical_name(name: &str) -> Option<&'static str> {
    KNOWN_NAMES
        .iter()
        .find(|(full, compact)| {
            full.eq_ignore_ascii_case(name) || compact.is_some_and(|c| c.eq_ignore_ascii_case(name))
        })
        .map(|(full, _)| *full)
}

/// Runs `$parse` on a header value, copying the result when the value was
/// itself a copy (an unfolded line), so that the result lives for `'a`.
macro_rules! typed {
    ($value:expr, $name:expr, $parse:expr, $owned:expr) => {
        match $value {
            Cow::Borrowed(text) => $parse(text).map_err(|reason| ParseError::Header {
                name: $name,
                reason,
            })?,
            Cow::Owned(text) => {
                let parsed = $parse(text.as_str()).map_err(|reason| ParseError::Header {
                    name: $name,
                    reason,
                })?;
                $owned(parsed)
            }
        }
    };
}

fn owned_vec<T, U>(convert: fn(T) -> U) -> impl Fn(Vec<T>) -> Vec<U> {
    move |v| v.into_iter().map(convert).collect()
}

fn owned_tag(t: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(t.into_owned())
}

fn set_once<T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::Duplicate(name));
    }
    *slot = Some(value);
    Ok(())
}

/// Typed headers being collected; mandatory ones are optional until the end.
#[derive(Default)]
struct Collector<'a> {
    via: Vec<Via<'a>>,
    from: Option<NameAddr<'a>>,
    to: Option<NameAddr<'a>>,
    call_id: Option<Cow<'a, str>>,
    cseq: Option<CSeq<'a>>,
    max_forwards: Option<u8>,
    content_length: Option<usize>,
    route: Vec<NameAddr<'a>>,
    record_route: Vec<NameAddr<'a>>,
    contact: Vec<Contact<'a>>,
    expires: Option<u32>,
    content_type: Option<MediaType<'a>>,
    require: Vec<Cow<'a, str>>,
    proxy_require: Vec<Cow<'a, str>>,
    supported: Vec<Cow<'a, str>>,
    unsupported: Vec<Cow<'a, str>>,
    authorization: Vec<AuthValue<'a>>,
    proxy_authorization: Vec<AuthValue<'a>>,
    www_authenticate: Vec<AuthValue<'a>>,
    proxy_authenticate: Vec<AuthValue<'a>>,
    date: Option<Cow<'a, str>>,
    other: Vec<Header<'a>>,
}

impl<'a> Collector<'a> {
    fn add(&mut self, raw: RawHeader<'a>) -> Result<(), ParseError> {
        let Some(name) = canonical_name(raw.name) else {
            self.other.push(Header {
                name: Cow::Borrowed(raw.name),
                value: raw.value,
            });
            return Ok(());
        };
        let value = raw.value;
        match name {
            "Via" => {
                let v = typed!(value, name, Via::parse_list, owned_vec(Via::into_owned));
                self.via.extend(v);
            }
            "From" => set_once(
                &mut self.from,
                typed!(value, name, NameAddr::parse, NameAddr::into_owned),
                name,
            )?,
            "To" => set_once(
                &mut self.to,
                typed!(value, name, NameAddr::parse, NameAddr::into_owned),
                name,
            )?,
            "Call-ID" => {
                check_call_id(&value).map_err(|reason| ParseError::Header { name, reason })?;
                set_once(&mut self.call_id, value, name)?;
            }
            "CSeq" => set_once(
                &mut self.cseq,
                typed!(value, name, CSeq::parse, CSeq::into_owned),
                name,
            )?,
            "Max-Forwards" => {
                let v = parse_max_forwards(&value)
                    .map_err(|reason| ParseError::Header { name, reason })?;
                set_once(&mut self.max_forwards, v, name)?;
            }
            "Content-Length" => {
                let v = parse_digits(&value, "not a number")
                    .ok()
                    .and_then(|v| usize::try_from(v).ok())
                    .ok_or(ParseError::Header {
                        name,
                        reason: SyntaxError("not a valid length"),
                    })?;
                set_once(&mut self.content_length, v, name)?;
            }
            "Contact" => {
                let v = typed!(
                    value,
                    name,
                    Contact::parse_list,
                    owned_vec(Contact::into_owned)
                );
                self.contact.extend(v);
            }
            "Route" => {
                let v = typed!(
                    value,
                    name,
                    NameAddr::parse_list,
                    owned_vec(NameAddr::into_owned)
                );
                self.route.extend(v);
            }
            "Record-Route" => {
                let v = typed!(
                    value,
                    name,
                    NameAddr::parse_list,
                    owned_vec(NameAddr::into_owned)
                );
                self.record_route.extend(v);
            }
            "Expires" => {
                let v = parse_delta_seconds(&value)
                    .map_err(|reason| ParseError::Header { name, reason })?;
                set_once(&mut self.expires, v, name)?;
            }
            "Content-Type" => {
                let v = typed!(value, name, MediaType::parse, MediaType::into_owned);
                set_once(&mut self.content_type, v, name)?;
            }
            "Require" | "Proxy-Require" | "Supported" | "Unsupported" => {
                let tags = typed!(value, name, parse_option_tags, owned_vec(owned_tag));
                let list = match name {
                    "Require" => &mut self.require,
                    "Proxy-Require" => &mut self.proxy_require,
                    "Supported" => &mut self.supported,
                    _ => &mut self.unsupported,
                };
                list.extend(tags);
            }
            "Authorization" | "Proxy-Authorization" | "WWW-Authenticate" | "Proxy-Authenticate" => {
                let v = typed!(value, name, AuthValue::parse, AuthValue::into_owned);
                let list = match name {
                    "Authorization" => &mut self.authorization,
                    "Proxy-Authorization" => &mut self.proxy_authorization,
                    "WWW-Authenticate" => &mut self.www_authenticate,
                    _ => &mut self.proxy_authenticate,
                };
                list.push(v);
            }
            "Date" => {
                check_date(&value).map_err(|reason| ParseError::Header { name, reason })?;
                set_once(&mut self.date, value, name)?;
            }
            _ => self.other.push(Header {
                name: Cow::Borrowed(name),
                value,
            }),
        }
        Ok(())
    }

    fn finish(self) -> Result<(Headers<'a>, Option<usize>), ParseError> {
        if self.via.is_empty() {
            return Err(ParseError::Missing("Via"));
        }
        let headers = Headers {
            via: self.via,
            from: self.from.ok_or(ParseError::Missing("From"))?,
            to: self.to.ok_or(ParseError::Missing("To"))?,
            call_id: self.call_id.ok_or(ParseError::Missing("Call-ID"))?,
            cseq: self.cseq.ok_or(ParseError::Missing("CSeq"))?,
            max_forwards: self.max_forwards,
            route: self.route,
            record_route: self.record_route,
            contact: self.contact,
            expires: self.expires,
            content_type: self.content_type,
            require: self.require,
            proxy_require: self.proxy_require,
            supported: self.supported,
            unsupported: self.unsupported,
            authorization: self.authorization,
            proxy_authorization: self.proxy_authorization,
            www_authenticate: self.www_authenticate,
            proxy_authenticate: self.proxy_authenticate,
            date: self.date,
            other: self.other,
        };
        Ok((headers, self.content_length))
    }
}

/// Checks `SIP/2.0`; another well-formed version is answered with 505.
pub(crate) fn check_version(v: &str) -> Result<(), ParseError> {
    if v.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    let well_formed = v.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
        && v[4..].split_once('.').is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
        });
    if well_formed {
        Err(ParseError::VersionNotSupported(v.to_string()))
    } else {
        Err(ParseError::StartLine(SyntaxError("invalid SIP version")))
    }
}

pub(crate) fn parse_start_line(line: &str) -> Result<StartLine<'_>, ParseError> {
    if line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        let (version, rest) = line
            .split_once(' ')
            .ok_or(ParseError::StartLine(SyntaxError("no status code")))?;
        check_version(version)?;
        let (code, reason) = rest
            .split_once(' ')
            .ok_or(ParseError::StartLine(SyntaxError("no reason phrase")))?;
        let status = match code.as_bytes() {
            [a @ b'1'..=b'6', b, c] if b.is_ascii_digit() && c.is_ascii_digit() => {
                u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
            }
            _ => {
                return Err(ParseError::StartLine(SyntaxError(
                    "status code is not 100 to 699",
                )))
            }
        };
        if reason.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err(ParseError::StartLine(SyntaxError(
                "control character in reason phrase",
            )));
        }
        return Ok(StartLine::Response {
            status,
            reason: Cow::Borrowed(reason),
        });
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::StartLine(SyntaxError(
            "request line is not 'method SP uri SP version'",
        )));
    };
    let method = Method::from_token(method).map_err(ParseError::StartLine)?;
    if uri.is_empty() {
        return Err(ParseError::StartLine(SyntaxError("empty Request-URI")));
    }
    let uri = Uri::parse(uri, false).map_err(ParseError::RequestUri)?;
    check_version(version)?;
    Ok(StartLine::Request { method, uri })
}

pub(crate) fn parse_message(input: &[u8]) -> Result<Message<'_>, ParseError> {
    let raw = split(input)?;
    let start = parse_start_line(raw.start_line)?;
    let mut collector = Collector::default();
    for header in raw.headers {
        collector.add(header)?;
    }
    let (headers, content_length) = collector.finish()?;
    // Comma lists print one value per line and Content-Length is always
    // printed: a message within the limit may print beyond it, and then
    // `parse(print(m)) == m` would not hold (checked by `sip::fuzz`).
    if headers.printed_line_count() > MAX_HEADER_COUNT {
        return Err(ParseError::TooManyHeaders {
            max: MAX_HEADER_COUNT,
        });
    }
    if let StartLine::Request { method, .. } = &start {
        if *method != headers.cseq.method {
            return Err(ParseError::CSeqMethodMismatch {
                request_method: method.to_string(),
                cseq_method: headers.cseq.method.to_string(),
            });
        }
    }
    let body = match content_length {
        Some(len) if len > raw.rest.len() => {
            return Err(ParseError::BodyTruncated {
                declared_bytes: len,
                available_bytes: raw.rest.len(),
            })
        }
        Some(len) => &raw.rest[..len],
        None => raw.rest,
    };
    Ok(Message {
        start,
        headers,
        body: Cow::Borrowed(body),
    })
}
