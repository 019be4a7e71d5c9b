//! The RFC 4475 / RFC 5118 torture corpus (`shared/testdata/sip-torture/`)
//! against the codec, with a machine-checked list of deviations.
//!
//! Each file has the verdict the corpus README gives it. The codec's actual
//! behaviour is computed; every file where it differs from the README (or
//! where the README leaves the choice to us) must be listed in
//! [`DEVIATIONS`], and every entry there must be an actual deviation.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use carillon_sip::message::{reject_response, Contact, Message, ParseError, Uri};
use carillon_sip::sdp::SessionDescription;
use carillon_sip::transaction::TransactionKey;

/// What the README says an element does with a file.
#[derive(Debug, Clone, Copy)]
enum Verdict {
    /// Parses; printing reaches a fixed point.
    Valid,
    /// A request rejected statelessly with this status.
    Reject(u16),
    /// A malformed response: dropped, never answered.
    Drop,
    /// Well-formed; the semantic layer (registrar, UA, proxy: later work)
    /// answers as described. The codec must parse it and `check` verifies
    /// that the piece the semantic layer needs is exposed.
    Semantic(&'static str, fn(&Message<'_>) -> bool),
    /// The README leaves the choice to the implementation.
    Either,
}

use Verdict::*;

const TABLE: &[(&str, Verdict)] = &[
    // RFC 4475 3.1.1: valid messages.
    ("rfc4475__wsinv.dat", Valid),
    ("rfc4475__intmeth.dat", Valid),
    ("rfc4475__esc01.dat", Valid),
    ("rfc4475__escnull.dat", Valid),
    ("rfc4475__esc02.dat", Valid),
    ("rfc4475__lwsdisp.dat", Valid),
    ("rfc4475__longreq.dat", Valid),
    ("rfc4475__dblreq.dat", Valid),
    ("rfc4475__semiuri.dat", Valid),
    ("rfc4475__transports.dat", Valid),
    ("rfc4475__mpart01.dat", Valid),
    ("rfc4475__unreason.dat", Valid),
    ("rfc4475__noreason.dat", Valid),
    // RFC 4475 3.1.2: invalid messages.
    ("rfc4475__badinv01.dat", Reject(400)),
    ("rfc4475__clerr.dat", Reject(400)),
    ("rfc4475__ncl.dat", Reject(400)),
    ("rfc4475__scalar02.dat", Reject(400)),
    ("rfc4475__scalarlg.dat", Drop),
    ("rfc4475__quotbal.dat", Reject(400)),
    ("rfc4475__ltgtruri.dat", Reject(400)),
    ("rfc4475__lwsruri.dat", Reject(400)),
    ("rfc4475__lwsstart.dat", Reject(400)),
    ("rfc4475__trws.dat", Reject(400)),
    ("rfc4475__escruri.dat", Reject(400)),
    ("rfc4475__baddate.dat", Reject(400)),
    ("rfc4475__regbadct.dat", Reject(400)),
    ("rfc4475__badaspec.dat", Reject(400)),
    ("rfc4475__baddn.dat", Reject(400)),
    ("rfc4475__badvers.dat", Reject(505)),
    ("rfc4475__mismatch01.dat", Reject(400)),
    ("rfc4475__mismatch02.dat", Reject(400)),
    ("rfc4475__bigcode.dat", Drop),
    // RFC 4475 3.2: transaction layer (RFC 2543 matching is checked below).
    ("rfc4475__badbranch.dat", Valid),
    // RFC 4475 3.3: application layer. The codec itself answers the three
    // whose fault is syntactic (missing or repeated single-valued headers).
    ("rfc4475__insuf.dat", Reject(400)),
    ("rfc4475__multi01.dat", Reject(400)),
    ("rfc4475__mcl01.dat", Reject(400)),
    (
        "rfc4475__unkscm.dat",
        Semantic(
            "UA: 416 Unsupported URI Scheme",
            |m| matches!(m.request_uri(), Some(Uri::Other { scheme, .. }) if scheme == "nobodyKnowsThisScheme"),
        ),
    ),
    (
        "rfc4475__novelsc.dat",
        Semantic(
            "UA: 416 Unsupported URI Scheme",
            |m| matches!(m.request_uri(), Some(Uri::Other { scheme, .. }) if scheme == "soap.beep"),
        ),
    ),
    (
        "rfc4475__unksm2.dat",
        Semantic(
            "registrar: processed normally (non-SIP URIs kept opaque)",
            |m| {
                matches!(&m.headers.to.uri, Uri::Other { scheme, .. } if scheme == "isbn")
                    && matches!(&m.headers.contact[0], Contact::Address(a) if a.uri.scheme() == "name")
            },
        ),
    ),
    (
        "rfc4475__bext01.dat",
        Semantic(
            "UA: 420 Bad Extension, Unsupported listing the Require tags",
            |m| {
                m.headers.require == ["nothingSupportsThis", "nothingSupportsThisEither"]
                    && m.headers.proxy_require.len() == 2
            },
        ),
    ),
    (
        "rfc4475__invut.dat",
        Semantic("UA: 415 Unsupported Media Type", |m| {
            m.headers
                .content_type
                .as_ref()
                .is_some_and(|c| c.is("application", "unknownformat"))
        }),
    ),
    (
        "rfc4475__regaut01.dat",
        Semantic("registrar: 401 with a fresh Digest challenge", |m| {
            m.headers.authorization.len() == 1
                && m.headers.authorization[0].scheme == "NoOneKnowsThisScheme"
        }),
    ),
    (
        "rfc4475__bcast.dat",
        Semantic(
            "proxy/UA: nothing sent to the broadcast address of the second Via",
            |m| m.headers.via.len() == 2 && m.headers.via[1].host.is_broadcast(),
        ),
    ),
    (
        "rfc4475__zeromf.dat",
        Semantic("proxy: 483 Too Many Hops when it would forward", |m| {
            m.headers.max_forwards == Some(0)
        }),
    ),
    (
        "rfc4475__cparam01.dat",
        Semantic(
            "registrar: accepted, contact parameter kept",
            |m| matches!(&m.headers.contact[0], Contact::Address(a) if a.param("unknownparam") == Some(None)),
        ),
    ),
    (
        "rfc4475__cparam02.dat",
        Semantic("registrar: accepted, URI parameter kept", |m| {
            matches!(&m.headers.contact[0], Contact::Address(a)
            if a.uri.as_sip().is_some_and(|u| u.param("unknownparam") == Some(None)))
        }),
    ),
    (
        "rfc4475__regescrt.dat",
        Semantic("registrar: accepted, escaped URI headers kept", |m| {
            matches!(&m.headers.contact[0], Contact::Address(a)
            if a.uri.as_sip().and_then(|u| u.headers.as_deref()) == Some("Route=%3Csip:sip.example.com%3E"))
        }),
    ),
    (
        "rfc4475__sdp01.dat",
        Semantic("UA: 406 Not Acceptable (Accept excludes SDP)", |m| {
            m.headers.get_all("Accept").eq(["text/nobodyKnowsThis"])
        }),
    ),
    // RFC 4475 3.4: backward compatibility.
    ("rfc4475__inv2543.dat", Valid),
    // RFC 5118.
    ("rfc5118__ipv6-good", Valid),
    ("rfc5118__ipv6-correct-abnf-2-colons", Valid),
    ("rfc5118__port-unambiguous", Valid),
    ("rfc5118__port-ambiguous", Valid),
    ("rfc5118__ipv4-mapped-ipv6", Valid),
    ("rfc5118__via-received-param-with-delim", Valid),
    ("rfc5118__via-received-param-no-delim", Valid),
    ("rfc5118__mult-ip-in-header", Valid),
    ("rfc5118__mult-ip-in-sdp", Valid),
    ("rfc5118__ipv6-in-sdp", Valid),
    ("rfc5118__ipv6-bad", Reject(400)),
    ("rfc5118__ipv6-bug-abnf-3-colons", Either),
];

/// Files handled otherwise than the README's verdict, or where the README
/// leaves the decision to us: (file, decision and reason).
const DEVIATIONS: &[(&str, &str)] = &[(
    "rfc5118__ipv6-bug-abnf-3-colons",
    "rejected with 400: '2001:db8:::192.0.2.1' is not an IPv6 address (RFC 4291); RFC 5118 4.4 \
     says the form comes from an ABNF bug in RFC 3261, so we follow the corrected grammar",
)];

/// What the codec does with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Parsed,
    Rejected(u16),
    Dropped,
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/sip-torture")
}

fn read_corpus() -> BTreeMap<String, Vec<u8>> {
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!("the SIP torture corpus is expected at {} (shared/testdata/sip-torture/ beside the workspace): {e}", dir.display())
    });
    let mut files = BTreeMap::new();
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("rfc") {
            files.insert(name, std::fs::read(&path).unwrap());
        }
    }
    files
}

/// Parses and checks the fixed point; returns the outcome.
fn outcome(name: &str, bytes: &[u8]) -> Outcome {
    match Message::parse(bytes) {
        Ok(m) => {
            let printed = m.to_bytes();
            let reparsed = Message::parse(&printed).unwrap_or_else(|e| {
                panic!(
                    "{name}: printed form does not parse: {e}\n{}",
                    String::from_utf8_lossy(&printed)
                )
            });
            assert_eq!(m, reparsed, "{name}: parse(print(m)) != m");
            assert_eq!(
                printed,
                reparsed.to_bytes(),
                "{name}: print is not a fixed point"
            );
            Outcome::Parsed
        }
        Err(e) => {
            let response = reject_response(bytes, &e, "srv1");
            match response {
                Some(r) => {
                    assert!(
                        r.reason.len() > 3,
                        "{name}: reason phrase names the problem"
                    );
                    assert!(
                        r.headers.iter().any(|(n, _)| *n == "Via"),
                        "{name}: Via copied"
                    );
                    Outcome::Rejected(r.status)
                }
                None => {
                    assert!(
                        bytes.starts_with(b"SIP/"),
                        "{name}: only responses go unanswered, got {e}"
                    );
                    Outcome::Dropped
                }
            }
        }
    }
}

#[test]
fn torture_corpus_verdicts_and_deviations() {
    let files = read_corpus();
    assert_eq!(
        files.len(),
        61,
        "61 torture files expected in {}",
        corpus_dir().display()
    );
    let table: BTreeMap<&str, Verdict> = TABLE.iter().copied().collect();
    assert_eq!(table.len(), TABLE.len(), "no file twice in TABLE");
    for name in files.keys() {
        assert!(
            table.contains_key(name.as_str()),
            "{name} has no verdict in TABLE"
        );
    }
    let mut deviations = BTreeMap::new();
    for (name, verdict) in TABLE {
        let bytes = files
            .get(*name)
            .unwrap_or_else(|| panic!("{name} missing from the corpus"));
        let got = outcome(name, bytes);
        let as_expected = match verdict {
            Valid => got == Outcome::Parsed,
            Reject(code) => got == Outcome::Rejected(*code),
            Drop => got == Outcome::Dropped,
            Semantic(what, check) => {
                let m = Message::parse(bytes)
                    .unwrap_or_else(|e| panic!("{name} ({what}) must parse: {e}"));
                assert!(
                    check(&m),
                    "{name}: the piece the semantic layer needs ({what}) is not exposed"
                );
                true
            }
            Either => false,
        };
        if !as_expected {
            deviations.insert(*name, got);
        }
    }
    let declared: BTreeMap<&str, &str> = DEVIATIONS.iter().copied().collect();
    assert_eq!(
        deviations.keys().collect::<Vec<_>>(),
        declared.keys().collect::<Vec<_>>(),
        "actual deviations {deviations:?} differ from DEVIATIONS"
    );
    for (name, got) in &deviations {
        let reason = declared[name];
        let word = match got {
            Outcome::Parsed => "accepted",
            Outcome::Rejected(_) => "rejected",
            Outcome::Dropped => "dropped",
        };
        assert!(
            reason.starts_with(word),
            "{name}: DEVIATIONS says '{reason}' but the codec {word} it ({got:?})"
        );
    }
    let as_expected = TABLE.len() - deviations.len();
    eprintln!(
        "torture corpus: {as_expected} of {} as the README expects; deviations: {deviations:?}",
        TABLE.len()
    );
}

#[test]
fn specific_parses() {
    let files = read_corpus();
    let parse = |name: &str| Message::parse(&files[name]).unwrap();

    // dblreq: the INVITE after the REGISTER in the same datagram is ignored.
    let m = parse("rfc4475__dblreq.dat");
    assert_eq!(m.method().as_str(), "REGISTER");
    assert!(m.body.is_empty());

    // intmeth: extension method, escaped quoted display name, odd Call-ID.
    let m = parse("rfc4475__intmeth.dat");
    assert_eq!(
        m.method().as_str(),
        "!interesting-Method0123456789_*+`.%indeed'~"
    );
    assert_eq!(
        m.headers.call_id,
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    );
    let uri = m.request_uri().unwrap().as_sip().unwrap();
    assert_eq!(
        uri.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        uri.password.as_deref(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );

    // wsinv: folding, whitespace everywhere, compact forms, leading zeros.
    let m = parse("rfc4475__wsinv.dat");
    assert_eq!(m.headers.max_forwards, Some(68));
    assert_eq!(m.headers.cseq.number, 9);
    assert_eq!(m.headers.via.len(), 3);
    assert_eq!(m.headers.via[1].branch(), Some("z9hG4bK9ikj8"));
    assert_eq!(m.headers.to.tag(), Some("1918181833n"));
    assert_eq!(m.headers.from.tag(), Some("98asjd8"));
    let Contact::Address(c) = &m.headers.contact[0] else {
        panic!()
    };
    assert_eq!(c.q_thousandths(), Some(330));
    assert_eq!(
        m.headers.get_all("NewFangledHeader").collect::<Vec<_>>(),
        ["newfangled value continued newfangled value"]
    );
    assert_eq!(m.headers.get_all("Subject").collect::<Vec<_>>(), [""]);

    // esc02: RE%47IST%45R is an extension method, not REGISTER.
    let m = parse("rfc4475__esc02.dat");
    assert_eq!(m.method().as_str(), "RE%47IST%45R");
    assert_eq!(m.headers.contact.len(), 2, "C%6Fntact is another header");

    // mpart01: two parts split by the boundary.
    let m = parse("rfc4475__mpart01.dat");
    let parts = m.multipart_parts().unwrap().unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].header("content-type"), Some("text/plain"));
    assert_eq!(parts[0].body, b"Hello");
    assert_eq!(
        parts[1].header("Content-Type"),
        Some("application/octet-stream")
    );

    // RFC 5118: received with and without brackets; IPv6 Via hosts.
    for name in [
        "rfc5118__via-received-param-with-delim",
        "rfc5118__via-received-param-no-delim",
    ] {
        let m = parse(name);
        assert_eq!(
            m.headers.via[0].received(),
            Some("2001:db8::9:255".parse().unwrap()),
            "{name}"
        );
    }
    let m = parse("rfc5118__port-ambiguous");
    let uri = m.request_uri().unwrap().as_sip().unwrap();
    assert_eq!(
        (uri.host.to_string(), uri.port),
        ("[2001:db8::10:5070]".to_string(), None)
    );
    let m = parse("rfc5118__port-unambiguous");
    assert_eq!(m.request_uri().unwrap().as_sip().unwrap().port, Some(5070));
    let m = parse("rfc5118__mult-ip-in-header");
    assert_eq!(m.headers.via[0].port, Some(6050));
    assert_eq!(
        m.headers.via[2].received(),
        Some("192.0.2.200".parse().unwrap())
    );

    // inv2543: no Max-Forwards, no branch, no Content-Length (body = rest).
    let m = parse("rfc4475__inv2543.dat");
    assert_eq!(m.headers.max_forwards, None);
    assert!(m.body.starts_with(b"v=0"));
}

#[test]
fn specific_rejections() {
    let files = read_corpus();
    let err = |name: &str| Message::parse(&files[name]).unwrap_err();
    assert!(
        matches!(err("rfc4475__badvers.dat"), ParseError::VersionNotSupported(v) if v == "SIP/7.0")
    );
    assert!(matches!(
        err("rfc4475__clerr.dat"),
        ParseError::BodyTruncated {
            declared_bytes: 9999,
            ..
        }
    ));
    assert!(matches!(
        err("rfc4475__mcl01.dat"),
        ParseError::Duplicate("Content-Length")
    ));
    assert!(matches!(err("rfc4475__insuf.dat"), ParseError::Missing(_)));
    assert!(matches!(
        err("rfc4475__scalar02.dat"),
        ParseError::Header { name: "CSeq", .. }
    ));
    assert!(matches!(
        err("rfc4475__mismatch01.dat"),
        ParseError::CSeqMethodMismatch { .. }
    ));
    assert!(matches!(
        err("rfc4475__escruri.dat"),
        ParseError::RequestUri(_)
    ));
    assert!(matches!(
        err("rfc4475__baddate.dat"),
        ParseError::Header { name: "Date", .. }
    ));
    assert!(matches!(
        err("rfc4475__quotbal.dat"),
        ParseError::Header { name: "To", .. }
    ));

    // The 400 names the problem, copies the headers and adds a To tag.
    let bytes = &files["rfc4475__scalar02.dat"];
    let response = reject_response(bytes, &Message::parse(bytes).unwrap_err(), "srv1").unwrap();
    assert_eq!(response.status, 400);
    assert!(response.reason.contains("CSeq"), "{}", response.reason);
    let text = String::from_utf8(response.to_bytes()).unwrap();
    assert!(
        text.contains("CSeq: 36893488147419103232 REGISTER\r\n"),
        "{text}"
    );
    assert!(
        text.contains("To: <sip:user@example.com>;tag=srv1\r\n"),
        "{text}"
    );
    assert!(
        text.contains("Call-ID: scalar02.23o0pd9vanlq3wnrlnewofjas9ui32\r\n"),
        "{text}"
    );

    let bytes = &files["rfc4475__badvers.dat"];
    let response = reject_response(bytes, &Message::parse(bytes).unwrap_err(), "srv1").unwrap();
    assert_eq!(
        (response.status, response.reason.as_str()),
        (505, "Version Not Supported")
    );
}

#[test]
fn badbranch_uses_rfc2543_matching() {
    let files = read_corpus();
    let m = Message::parse(&files["rfc4475__badbranch.dat"]).unwrap();
    assert!(!m.headers.via[0].has_rfc3261_branch());
    assert!(matches!(
        TransactionKey::for_server(&m),
        Some(TransactionKey::Rfc2543 { .. })
    ));
    let m = Message::parse(&files["rfc4475__transports.dat"]).unwrap();
    assert!(matches!(
        TransactionKey::for_server(&m),
        Some(TransactionKey::Rfc3261 { .. })
    ));
}

#[test]
fn sdp_bodies_of_the_corpus_parse_and_print_to_a_fixed_point() {
    let files = read_corpus();
    let mut checked = 0;
    for (name, bytes) in &files {
        let Ok(m) = Message::parse(bytes) else {
            continue;
        };
        if !m
            .headers
            .content_type
            .as_ref()
            .is_some_and(|c| c.is("application", "sdp"))
        {
            continue;
        }
        let text = std::str::from_utf8(&m.body).unwrap();
        let sdp = SessionDescription::parse(text).unwrap_or_else(|e| panic!("{name}: SDP: {e}"));
        let printed = sdp.to_string();
        assert_eq!(SessionDescription::parse(&printed).unwrap(), sdp, "{name}");
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} SDP bodies checked");
    let m = Message::parse(&files["rfc5118__mult-ip-in-sdp"]).unwrap();
    let sdp = SessionDescription::parse(std::str::from_utf8(&m.body).unwrap()).unwrap();
    assert_eq!(
        sdp.media[0].connection.as_ref().unwrap().address,
        "192.0.2.1"
    );
    assert_eq!(
        sdp.media[1].connection.as_ref().unwrap().address,
        "2001:db8::1"
    );
}
