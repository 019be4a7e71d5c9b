//! The CI run of the codec fuzz oracle (`carillon_sip::fuzz`) on the
//! stable toolchain: a bounded, deterministic stream of mutated inputs
//! (byte flips, insertions, deletions, truncations, splices, header line
//! duplications) built from the torture corpus and from generated messages,
//! plus every reproducer in `fuzz/corpus-regressions/`. The long runs use
//! cargo-fuzz on nightly (`fuzz/README.md`).
//!
//! Everything derives from one seed, printed at the start; set
//! `SIP_FUZZ_SEED` (and `SIP_FUZZ_CASES`) to replay or extend a run. A
//! failing input is printed and written to `sip_fuzz_failure.bin` in the
//! test's temporary directory, ready to be added to the regressions.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use carillon_sip::fuzz::{check_datagram, check_stream};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const DEFAULT_SEED: u64 = 0x5349_5046_555a_5a31;
const DEFAULT_CASES: usize = 20_000;
/// Most mutations applied to one input.
const MAX_MUTATIONS: usize = 4;

fn torture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/sip-torture")
}

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus-regressions")
}

/// Regular files of `dir` in name order, skipping README files.
fn read_dir_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("expected a directory at {}: {e}", dir.display()));
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("README")
        })
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not valid")),
        Err(_) => default,
    }
}

/// Prints (and saves) the input being checked if the check panics.
struct Reporter<'a> {
    what: String,
    input: &'a [u8],
}

impl Drop for Reporter<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sip_fuzz_failure.bin");
            let saved = std::fs::write(&path, self.input).is_ok();
            eprintln!(
                "failing input ({}, {} bytes{}):\n{:?}",
                self.what,
                self.input.len(),
                if saved {
                    format!(", saved to {}", path.display())
                } else {
                    String::new()
                },
                String::from_utf8_lossy(self.input)
            );
        }
    }
}

fn check_both(what: String, input: &[u8]) {
    let _reporter = Reporter { what, input };
    check_datagram(input);
    check_stream(input);
}

#[test]
fn torture_corpus_and_regressions_pass_the_oracle() {
    let torture = read_dir_files(&torture_dir());
    assert!(torture.len() >= 61, "only {} torture files", torture.len());
    for (name, bytes) in &torture {
        check_both(format!("torture file {name}"), bytes);
    }
    let regressions = read_dir_files(&regressions_dir());
    assert!(
        !regressions.is_empty(),
        "fuzz/corpus-regressions/ holds the fuzzers' past findings"
    );
    for (name, bytes) in &regressions {
        check_both(format!("regression {name}"), bytes);
    }
}

#[test]
fn mutated_messages_pass_the_oracle() {
    // The seed is printed in hex; it is read back in hex (0x...) or decimal.
    let seed: u64 = match std::env::var("SIP_FUZZ_SEED") {
        Ok(v) => match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => v.parse(),
        }
        .unwrap_or_else(|_| panic!("SIP_FUZZ_SEED={v} is not a number")),
        Err(_) => DEFAULT_SEED,
    };
    let cases: usize = env_or("SIP_FUZZ_CASES", DEFAULT_CASES);
    eprintln!("sip_fuzz: seed {seed:#x}, {cases} cases (SIP_FUZZ_SEED, SIP_FUZZ_CASES)");
    let mut rng = StdRng::seed_from_u64(seed);
    let torture: Vec<Vec<u8>> = read_dir_files(&torture_dir())
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    let mut parsed = 0usize;
    for case in 0..cases {
        let base = base_input(&mut rng, &torture);
        let mutations = rng.gen_range(0..=MAX_MUTATIONS);
        let mut input = base;
        for _ in 0..mutations {
            mutate(&mut rng, &mut input, &torture);
        }
        if carillon_sip::message::Message::parse(&input).is_ok() {
            parsed += 1;
        }
        check_both(format!("seed {seed:#x} case {case}"), &input);
    }
    // The stream must not degenerate into inputs the parser rejects at once.
    assert!(
        parsed * 10 >= cases,
        "only {parsed} of {cases} inputs parsed: the mutations are too destructive to test printing"
    );
}

/// A starting point: a corpus file, a generated message, two messages
/// pipelined on a stream, or a bare session description.
fn base_input(rng: &mut StdRng, torture: &[Vec<u8>]) -> Vec<u8> {
    match rng.gen_range(0..10) {
        0..=3 => torture.choose(rng).unwrap().clone(),
        4..=7 => {
            let content_length = rng.gen_bool(0.8);
            generate_message(rng, content_length)
        }
        8 => {
            let mut out = generate_message(rng, true);
            for _ in 0..rng.gen_range(0..3) {
                out.extend_from_slice(b"\r\n\r\n");
            }
            out.extend_from_slice(&generate_message(rng, true));
            out
        }
        _ => generate_sdp(rng).into_bytes(),
    }
}

/// Fragments worth inserting: SIP punctuation, line ends, header lines.
const DICTIONARY: &[&str] = &[
    "\r\n",
    "\r\n\r\n",
    "\r\n ",
    " ",
    "\t",
    ":",
    ";",
    ",",
    "\"",
    "\\",
    "<",
    ">",
    "[",
    "]",
    "%",
    "%00",
    "@",
    "=",
    "0",
    "9999999999999999999999",
    ";tag=",
    ";branch=z9hG4bK",
    ";received=[::1]",
    "sip:",
    "sips:",
    "tel:",
    "SIP/2.0",
    "SIP/2.0/TCP",
    "[2001:db8::1]",
    "[::ffff:192.0.2.1]:5060",
    "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK9\r\n",
    "v: SIP/2.0/TCP [::1]:5060, SIP/2.0/UDP a.b\r\n",
    "Content-Length: 0\r\n",
    "l: 5\r\n",
    "Content-Type: application/sdp\r\n",
    "c: multipart/mixed;boundary=b1\r\n",
    "Contact: *\r\n",
    "CSeq: 1 INVITE\r\n",
    "Max-Forwards: 256\r\n",
    "\r\n--b1\r\n",
    "\r\n--b1--\r\n",
    "v=0\r\n",
    "m=audio 0 RTP/AVP 0\r\n",
    "a=rtpmap:0 PCMU/8000\r\n",
    "\u{e9}",
    "\u{ff}",
];

fn mutate(rng: &mut StdRng, input: &mut Vec<u8>, torture: &[Vec<u8>]) {
    let len = input.len();
    let at = rng.gen_range(0..=len);
    match rng.gen_range(0..8) {
        // Flip a bit.
        0 if len > 0 => {
            let i = rng.gen_range(0..len);
            input[i] ^= 1 << rng.gen_range(0..8);
        }
        // Replace a byte with an interesting one.
        1 if len > 0 => {
            let i = rng.gen_range(0..len);
            input[i] = *b"\0\r\n \t:;,\"\\<>[]%@=\x7f\xff".choose(rng).unwrap();
        }
        // Insert a dictionary fragment.
        2 | 3 => {
            let token = DICTIONARY.choose(rng).unwrap().as_bytes();
            input.splice(at..at, token.iter().copied());
        }
        // Delete a range.
        4 if len > 0 => {
            let end = (at + rng.gen_range(1..=16)).min(len);
            input.drain(at..end);
        }
        // Truncate.
        5 => input.truncate(at),
        // Splice in a chunk of another corpus file.
        6 => {
            let other = torture.choose(rng).unwrap();
            let from = rng.gen_range(0..other.len());
            let to = (from + rng.gen_range(1..=64)).min(other.len());
            input.splice(at..at, other[from..to].iter().copied());
        }
        // Duplicate a header line (or any line).
        _ => duplicate_line(rng, input),
    }
}

fn duplicate_line(rng: &mut StdRng, input: &mut Vec<u8>) {
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            input
                .windows(2)
                .enumerate()
                .filter(|(_, w)| *w == b"\r\n")
                .map(|(i, _)| i + 2),
        )
        .collect();
    let k = rng.gen_range(0..starts.len());
    let start = starts[k];
    let end = starts.get(k + 1).copied().unwrap_or(input.len());
    let line = input[start..end].to_vec();
    let copies = if rng.gen_bool(0.1) { 300 } else { 1 };
    for _ in 0..copies {
        input.splice(end..end, line.iter().copied());
    }
}

fn pick<'s>(rng: &mut StdRng, options: &[&'s str]) -> &'s str {
    options.choose(rng).unwrap()
}

fn host(rng: &mut StdRng) -> String {
    match rng.gen_range(0..4) {
        0 => "example.com".into(),
        1 => format!("192.0.2.{}", rng.gen_range(0..=255)),
        2 => "[2001:db8::10]".into(),
        _ => format!(
            "h{}.example.net:{}",
            rng.gen_range(0..99),
            rng.gen_range(1..65536)
        ),
    }
}

fn uri(rng: &mut StdRng) -> String {
    match rng.gen_range(0..5) {
        0 => format!("sip:{}", host(rng)),
        1 => format!("sips:alice@{};transport=tcp", host(rng)),
        2 => "tel:+1-201-555-0123".into(),
        3 => format!("sip:b%20ob@{};lr;maddr=[::1]", host(rng)),
        _ => format!("sip:carol@{}", host(rng)),
    }
}

fn name_addr(rng: &mut StdRng, tag: bool) -> String {
    let display = pick(rng, &["", "Alice ", "\"Bob \\\"B\\\" \" ", "\"\" "]);
    let tag = if tag {
        format!(";tag={}", rng.gen_range(1..1_000_000))
    } else {
        String::new()
    };
    format!("{display}<{}>{tag}", uri(rng))
}

fn via(rng: &mut StdRng) -> String {
    let transport = pick(rng, &["UDP", "TCP", "TLS", "WS", "SCTP"]);
    let branch = pick(rng, &["z9hG4bK", "z9hG4bK-", "old"]);
    format!(
        "SIP/2.0/{transport} {};branch={branch}{}{}",
        host(rng),
        rng.gen_range(0..1000),
        pick(rng, &["", ";rport", ";received=192.0.2.9", ";ttl=1"])
    )
}

fn generate_sdp(rng: &mut StdRng) -> String {
    let ip = pick(rng, &["IP4 192.0.2.1", "IP6 2001:db8::1"]);
    let mut s = format!("v=0\r\no=- {} 1 IN {ip}\r\ns=-\r\n", rng.gen_range(0..1000));
    if rng.gen_bool(0.7) {
        s.push_str(&format!("c=IN {ip}\r\n"));
    }
    s.push_str("t=0 0\r\n");
    for _ in 0..rng.gen_range(0..3) {
        s.push_str(&format!(
            "m=audio {} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na={}\r\na=ptime:20\r\n",
            rng.gen_range(0..65536),
            pick(rng, &["sendrecv", "recvonly", "sendonly", "inactive", "rtcp-mux"])
        ));
    }
    s
}

/// A well-formed message (most of the time) with a random choice of the
/// features the codec types: IPv6, compact names, comma lists, folding,
/// quoted strings, authentication, SDP and multipart bodies.
fn generate_message(rng: &mut StdRng, content_length: bool) -> Vec<u8> {
    let method = pick(
        rng,
        &["INVITE", "REGISTER", "OPTIONS", "BYE", "ACK", "NEWMETHOD.x"],
    );
    let mut head = if rng.gen_bool(0.7) {
        format!("{method} {} SIP/2.0\r\n", uri(rng))
    } else {
        format!("SIP/2.0 {} Some Reason\r\n", rng.gen_range(100..700))
    };
    let vias: Vec<String> = (0..rng.gen_range(1..4)).map(|_| via(rng)).collect();
    if rng.gen_bool(0.5) {
        head.push_str(&format!(
            "{}: {}\r\n",
            pick(rng, &["Via", "v"]),
            vias.join(", ")
        ));
    } else {
        for v in &vias {
            head.push_str(&format!("Via: {v}\r\n"));
        }
    }
    head.push_str(&format!(
        "{}: {}\r\n",
        pick(rng, &["From", "f"]),
        name_addr(rng, true)
    ));
    let tagged = rng.gen_bool(0.5);
    let to = name_addr(rng, tagged);
    head.push_str(&format!("{}: {to}\r\n", pick(rng, &["To", "t"])));
    head.push_str(&format!(
        "{}: {}@h\r\n",
        pick(rng, &["Call-ID", "i"]),
        rng.gen::<u32>()
    ));
    head.push_str(&format!("CSeq: {} {method}\r\n", rng.gen_range(0..10_000)));
    let optional = [
        "Max-Forwards: 70\r\n".to_string(),
        format!("Contact: {}, <sip:x@{}>;expires=60\r\n", name_addr(rng, false), host(rng)),
        "Contact: *\r\n".into(),
        "Expires: 3600\r\n".into(),
        format!("Route: <{};lr>\r\nRecord-Route: <{};lr>\r\n", uri(rng), uri(rng)),
        "Require: 100rel, timer\r\nSupported: path\r\n".into(),
        "Authorization: Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"0123\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"c\"\r\n".into(),
        "Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n".into(),
        "Subject: folded\r\n  over two lines\r\n".into(),
        "X-Unknown: anything; goes \"here\"\r\n".into(),
    ];
    for line in optional.iter() {
        if rng.gen_bool(0.3) {
            head.push_str(line);
        }
    }
    let body = match rng.gen_range(0..3) {
        0 => String::new(),
        1 => {
            head.push_str("Content-Type: application/sdp\r\n");
            generate_sdp(rng)
        }
        _ => {
            head.push_str("Content-Type: multipart/mixed;boundary=b1\r\n");
            format!(
                "--b1\r\nContent-Type: application/sdp\r\n\r\n{}\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1--\r\n",
                generate_sdp(rng)
            )
        }
    };
    if content_length {
        head.push_str(&format!(
            "{}: {}\r\n",
            pick(rng, &["Content-Length", "l"]),
            body.len()
        ));
    }
    head.push_str("\r\n");
    head.push_str(&body);
    head.into_bytes()
}

/// Regression (found writing the oracle): a message within the header-line
/// limit whose canonical form is beyond it (a comma list printed one value
/// per line; Content-Length added) parsed, and its printed form did not.
#[test]
fn messages_whose_printed_form_exceeds_the_header_limit_are_rejected() {
    use carillon_sip::message::{Message, ParseError, MAX_HEADER_COUNT};
    for name in [
        "via-list-prints-beyond-header-limit.sip",
        "no-content-length-at-header-limit.sip",
    ] {
        let bytes = std::fs::read(regressions_dir().join(name)).unwrap();
        assert_eq!(
            Message::parse(&bytes),
            Err(ParseError::TooManyHeaders {
                max: MAX_HEADER_COUNT
            }),
            "{name}"
        );
        check_both(format!("regression {name}"), &bytes);
    }
}
