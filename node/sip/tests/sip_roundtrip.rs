//! Property tests of the codec: generated messages print, parse back to
//! the same value, and print again to the same bytes; spelling variants
//! (compact names, case, whitespace, folding) parse to the same message.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use carillon_sip::message::{
    AuthValue, CSeq, Contact, DisplayName, Header, Headers, Host, MediaType, Message, Method,
    NameAddr, Param, SipUri, StartLine, TelUri, Transport, Uri, Via,
};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;

type S = Cow<'static, str>;

fn text(re: &'static str) -> BoxedStrategy<S> {
    re.prop_map(Cow::Owned).boxed()
}

const KNOWN_METHODS: [&str; 14] = [
    "INVITE",
    "ACK",
    "OPTIONS",
    "BYE",
    "CANCEL",
    "REGISTER",
    "PRACK",
    "SUBSCRIBE",
    "NOTIFY",
    "PUBLISH",
    "INFO",
    "REFER",
    "MESSAGE",
    "UPDATE",
];

fn method() -> BoxedStrategy<Method<'static>> {
    prop_oneof![
        3 => proptest::sample::select(KNOWN_METHODS.to_vec()).prop_map(|m| Method::from_token(m).unwrap().into_owned()),
        1 => "[a-zA-Z0-9.!%*_+`'~-]{1,14}"
            .prop_filter("extension, not a known method", |t| !KNOWN_METHODS.contains(&t.as_str()))
            .prop_map(|t| Method::Extension(Cow::Owned(t))),
    ]
    .boxed()
}

fn host() -> BoxedStrategy<Host<'static>> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9]{0,8}){0,2}"
            .prop_map(|d| Host::Domain(Cow::Owned(d))),
        any::<[u8; 4]>().prop_map(|o| Host::Ipv4(Ipv4Addr::from(o))),
        any::<[u16; 8]>().prop_map(|s| Host::Ipv6(Ipv6Addr::from(s))),
        any::<[u8; 4]>().prop_map(|o| Host::Ipv6(Ipv4Addr::from(o).to_ipv6_mapped())),
    ]
    .boxed()
}

fn uri_param() -> BoxedStrategy<Param<'static>> {
    (
        "[a-z][a-z0-9-]{0,7}",
        option::of("[a-zA-Z0-9._~:-]{1,8}|%[0-9A-F]{2}[a-z]{0,3}"),
    )
        .prop_map(|(n, v)| Param {
            name: Cow::Owned(n),
            value: v.map(Cow::Owned),
        })
        .boxed()
}

fn sip_uri(allow_headers: bool) -> BoxedStrategy<SipUri<'static>> {
    let user = "([a-zA-Z0-9_.!~*'()&=+$,;?/-]|%[0-9a-fA-F]{2}){1,10}";
    let headers = if allow_headers {
        option::of("[a-zA-Z]{1,6}=([a-zA-Z0-9]|%[0-9A-F]{2}){1,6}").boxed()
    } else {
        Just(None).boxed()
    };
    (
        any::<bool>(),
        option::of((text(user), option::of(text("[a-zA-Z0-9&=+$,]{1,8}")))),
        host(),
        option::of(any::<u16>()),
        vec(uri_param(), 0..3),
        headers,
    )
        .prop_map(|(secure, userinfo, host, port, params, headers)| {
            let (user, password) = match userinfo {
                Some((u, p)) => (Some(u), p),
                None => (None, None),
            };
            SipUri {
                secure,
                user,
                password,
                host,
                port,
                params,
                headers: headers.map(Cow::Owned),
            }
        })
        .boxed()
}

fn uri(allow_headers: bool) -> BoxedStrategy<Uri<'static>> {
    prop_oneof![
        6 => sip_uri(allow_headers).prop_map(Uri::Sip),
        1 => ("\\+[0-9]{4,12}", vec(uri_param(), 0..2))
            .prop_map(|(n, params)| Uri::Tel(TelUri { number: Cow::Owned(n), params })),
        1 => ("[a-z][a-z0-9+.-]{0,6}", "[a-zA-Z0-9_./:@-]{1,20}")
            .prop_filter("not a typed scheme", |(s, _)| !["sip", "sips", "tel"].contains(&s.as_str()))
            .prop_map(|(s, o)| Uri::Other { scheme: Cow::Owned(s), opaque: Cow::Owned(o) }),
    ]
    .boxed()
}

fn header_param() -> BoxedStrategy<Param<'static>> {
    let value = prop_oneof![
        "[a-zA-Z0-9.!%*_+`'~-]{1,10}",
        "\"([a-zA-Z0-9 ,;<>@:=]|\\\\\\\\|\\\\\")*\"",
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", Ipv6Addr::from(s))),
    ];
    ("[a-zA-Z][a-zA-Z0-9-]{0,7}", option::of(value))
        .prop_map(|(n, v)| Param {
            name: Cow::Owned(n),
            value: v.map(Cow::Owned),
        })
        .boxed()
}

fn name_addr() -> BoxedStrategy<NameAddr<'static>> {
    let display = option::of(prop_oneof![
        "[a-zA-Z~'`]{1,8}( [a-zA-Z0-9!%*]{1,8}){0,2}"
            .prop_map(|t| DisplayName::Tokens(Cow::Owned(t))),
        "([a-zA-Z0-9 ,<>@:;]|\\\\\\\\|\\\\\"|é){0,15}"
            .prop_map(|q| DisplayName::Quoted(Cow::Owned(q))),
    ]);
    (display, uri(true), vec(header_param(), 0..3))
        .prop_map(|(display_name, uri, params)| NameAddr {
            display_name,
            uri,
            params,
        })
        .boxed()
}

fn via() -> BoxedStrategy<Via<'static>> {
    let transport = prop_oneof![
        Just(Transport::Udp),
        Just(Transport::Tcp),
        Just(Transport::Tls),
        Just(Transport::Sctp),
        Just(Transport::Ws),
        Just(Transport::Wss),
        Just(Transport::Other(Cow::Borrowed("QUIC"))),
    ];
    let extra = prop_oneof![
        Just(Param {
            name: Cow::Borrowed("rport"),
            value: None
        }),
        any::<u16>().prop_map(|p| Param::new("rport", p.to_string())),
        any::<[u16; 8]>().prop_map(|s| Param::new("received", Ipv6Addr::from(s).to_string())),
        any::<[u8; 4]>().prop_map(|o| Param::new("received", Ipv4Addr::from(o).to_string())),
        header_param(),
    ];
    (
        transport,
        host(),
        option::of(any::<u16>()),
        "z9hG4bK[a-zA-Z0-9.!%*_+`'~-]{1,12}",
        vec(extra, 0..3),
    )
        .prop_map(|(transport, host, port, branch, extra)| {
            let mut via = Via::new(transport, host, port, Cow::Owned(branch));
            via.params.extend(extra);
            via
        })
        .boxed()
}

fn auth() -> BoxedStrategy<AuthValue<'static>> {
    (
        "Digest|NTLM|X-[a-z]{1,5}",
        vec(
            ("[a-z]{1,8}", "\"[a-zA-Z0-9 ,=/]{0,10}\"|[a-zA-Z0-9]{1,8}"),
            1..4,
        ),
    )
        .prop_map(|(scheme, params)| AuthValue {
            scheme: Cow::Owned(scheme),
            params: params.into_iter().map(|(n, v)| Param::new(n, v)).collect(),
        })
        .boxed()
}

fn tags() -> BoxedStrategy<Vec<S>> {
    vec(text("[a-zA-Z0-9.!%*_+`'~-]{1,10}"), 0..3).boxed()
}

fn headers(method: Method<'static>) -> BoxedStrategy<Headers<'static>> {
    let core = (
        vec(via(), 1..4),
        name_addr(),
        name_addr(),
        text("[a-zA-Z0-9.!%*_+`'~()<>:\\\\\"/\\[\\]?{}-]{1,20}(@[a-z0-9.]{1,10})?"),
        any::<u32>(),
        option::of(any::<u8>()),
        vec(name_addr(), 0..3),
        vec(name_addr(), 0..3),
    )
        .prop_map(
            move |(via, from, to, call_id, number, max_forwards, route, record_route)| {
                let mut h = Headers::new(
                    via,
                    from,
                    to,
                    call_id,
                    CSeq {
                        number,
                        method: method.clone(),
                    },
                );
                h.max_forwards = max_forwards;
                h.route = route;
                h.record_route = record_route;
                h
            },
        )
        .boxed();
    let contact = prop_oneof![1 => Just(vec![Contact::Wildcard]), 4 => vec(name_addr().prop_map(Contact::Address), 0..3)];
    let content_type = option::of((
        "[a-z]{1,10}",
        "[a-z0-9.+-]{1,10}",
        vec(header_param(), 0..2),
    ));
    let other = vec(
        (
            "X-[a-zA-Z0-9-]{1,10}",
            "[!-~]([ -~]{0,20}[!-~])?|é[a-z]{0,3}",
        ),
        0..4,
    );
    let rest = (
        contact,
        option::of(any::<u32>()),
        content_type,
        tags(),
        tags(),
        vec(auth(), 0..2),
        vec(auth(), 0..2),
        option::of(Just("Sat, 13 Nov 2010 23:29:00 GMT")),
        other,
    )
        .boxed();
    (core, rest)
        .prop_map(
            |(
                mut h,
                (
                    contact,
                    expires,
                    content_type,
                    require,
                    supported,
                    authorization,
                    www_authenticate,
                    date,
                    other,
                ),
            )| {
                h.contact = contact;
                h.expires = expires;
                h.content_type = content_type.map(|(k, s, params)| MediaType {
                    kind: Cow::Owned(k),
                    subtype: Cow::Owned(s),
                    params,
                });
                h.require = require;
                h.supported = supported;
                h.authorization = authorization;
                h.www_authenticate = www_authenticate;
                h.date = date.map(Cow::Borrowed);
                h.other = other
                    .into_iter()
                    .map(|(n, v)| Header {
                        name: Cow::Owned(n),
                        value: Cow::Owned(v),
                    })
                    .collect();
                h
            },
        )
        .boxed()
}

fn message() -> BoxedStrategy<Message<'static>> {
    let request = (method(), uri(false)).prop_flat_map(|(method, uri)| {
        (headers(method.clone()), vec(any::<u8>(), 0..64)).prop_map(move |(headers, body)| {
            Message {
                start: StartLine::Request {
                    method: method.clone(),
                    uri: uri.clone(),
                },
                headers,
                body: Cow::Owned(body),
            }
        })
    });
    let response = (100u16..700, "[a-zA-Z ]{0,20}|é[a-z]*", method()).prop_flat_map(
        |(status, reason, method)| {
            (headers(method), vec(any::<u8>(), 0..64)).prop_map(move |(headers, body)| Message {
                start: StartLine::Response {
                    status,
                    reason: Cow::Owned(reason.clone()),
                },
                headers,
                body: Cow::Owned(body),
            })
        },
    );
    prop_oneof![request, response].boxed()
}

/// Folds before every `;` and after every `, ` outside angle brackets
/// (a URI may not contain whitespace; header parameters may be folded).
fn fold_outside_brackets(value: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in value.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ';' if depth == 0 => out.push_str("\r\n\t"),
            ' ' if depth == 0 && out.ends_with(',') => {
                out.push_str("\r\n  ");
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn print_parse_print_is_a_fixed_point(m in message()) {
        let printed = m.to_bytes();
        let parsed = Message::parse(&printed);
        prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed, String::from_utf8_lossy(&printed));
        let parsed = parsed.unwrap();
        prop_assert_eq!(&parsed, &m);
        prop_assert_eq!(parsed.to_bytes(), printed);
    }

    #[test]
    fn spelling_variants_parse_to_the_same_message(
        variant in vec(0usize..4, 8),
        fold in any::<bool>(),
        extra_octets in vec(any::<u8>(), 0..16),
    ) {
        // (full name, compact form) of the headers used below.
        const NAMES: [(&str, &str); 8] = [
            ("Via", "v"), ("From", "f"), ("To", "t"), ("Call-ID", "i"),
            ("Contact", "m"), ("Content-Type", "c"), ("Supported", "k"), ("Content-Length", "l"),
        ];
        let values = [
            "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1, SIP/2.0/TCP h.example.com;branch=z9hG4bK2;rport",
            "\"A \\\"B\\\"\" <sip:a@example.com>;tag=1",
            "sip:b@example.com",
            "abc@host",
            "<sip:c@[::1]:5070;transport=tcp>;expires=60;q=0.5",
            "application/sdp",
            "100rel, timer",
            "4",
        ];
        let mut text = String::from("OPTIONS sip:b@example.com SIP/2.0\r\nCSeq: 1 OPTIONS\r\n");
        let mut canonical = text.clone();
        for (i, (full, compact)) in NAMES.iter().enumerate() {
            let name = match variant[i] {
                0 => full.to_string(),
                1 => compact.to_string(),
                2 => full.to_uppercase(),
                _ => format!("{} ", full.to_lowercase()),
            };
            let mut value = values[i].to_string();
            if fold {
                value = fold_outside_brackets(&value);
            }
            text.push_str(&format!("{name}:{}{value}\r\n", if fold { "\r\n " } else { " " }));
            canonical.push_str(&format!("{full}: {}\r\n", values[i]));
        }
        text.push_str("\r\nbody");
        canonical.push_str("\r\nbody");
        let mut datagram = text.into_bytes();
        datagram.extend(extra_octets);
        let a = Message::parse(&datagram).map_err(|e| format!("{e}\n{}", String::from_utf8_lossy(&datagram))).unwrap();
        let b = Message::parse(canonical.as_bytes()).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&a.body[..], b"body");
        prop_assert_eq!(a.to_bytes(), b.to_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let _ = Message::parse(&bytes);
        let _ = carillon_sip::message::frame_stream(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(m in message(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = m.to_bytes();
        let i = cut.index(bytes.len());
        bytes[i] = byte;
        if let Err(e) = Message::parse(&bytes) {
            let _ = carillon_sip::message::reject_response(&bytes, &e, "x");
        }
        bytes.truncate(i);
        let _ = Message::parse(&bytes);
    }
}
