//! SIPp (Debian `sip-tester`) as the agents' phones and as the callers.
//!
//! An agent's phone is two SIPp runs on one UDP port: `register.xml`
//! registers the account with digest and exits, then `agent.xml` answers
//! the node's INVITEs there (the node sends them to the address the
//! REGISTER came from). The callers are one SIPp run of `caller.xml` with
//! one injection line per call. Every scenario logs its steps with the
//! wall-clock time (`-trace_logs`), which [`read_events`] parses.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The path of `tool`, or a panic naming the package to install.
pub fn require(tool: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(tool);
        if p.exists() {
            return p;
        }
    }
    panic!("{tool} is not installed: run scripts/install-deps.sh (Debian package {package})");
}

/// A child process killed by pid when the test ends, however it ends.
pub struct Guarded(pub Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A scenario of `tests/sipp/`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// Copies scenario `name` into `dir` with its `@PLACEHOLDER@`s replaced
/// (SIPp reads no keyword in a timeout attribute).
pub fn filled(dir: &Path, name: &str, tag: &str, values: &[(&str, String)]) -> PathBuf {
    let mut text = std::fs::read_to_string(scenario(name)).expect("read scenario");
    for (key, value) in values {
        text = text.replace(&format!("@{key}@"), &value.to_string());
    }
    assert!(
        !["_MS@", "@STATUS@", "@REASON@"]
            .iter()
            .any(|p| text.contains(p)),
        "{name}: every placeholder is given a value"
    );
    let path = dir.join(format!("{tag}-{name}"));
    std::fs::write(&path, text).expect("write scenario");
    path
}

/// A free UDP port on 127.0.0.1 (SIPp binds it a moment later).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free UDP port")
}

/// Ports SIPp binds besides its SIP port: its RTP echo port and the one two
/// above it, and its control port (8888 by default, shared by nobody).
fn side_ports() -> [String; 2] {
    for _ in 0..100 {
        let media = free_udp_port();
        let above = media
            .checked_add(2)
            .map(|p| UdpSocket::bind(("127.0.0.1", p)));
        if matches!(above, Some(Ok(_))) {
            return [media.to_string(), free_udp_port().to_string()];
        }
    }
    panic!("no two free UDP ports two apart");
}

fn sipp(dir: &Path, target: SocketAddr, sip_port: u16, log: &Path, args: &[&str]) -> Command {
    let [media, control] = side_ports();
    let mut command = Command::new(require("sipp", "sip-tester"));
    command
        .current_dir(dir)
        .arg(target.to_string())
        .args(["-i", "127.0.0.1", "-p", &sip_port.to_string()])
        .args(["-mp", &media, "-cp", &control])
        .args(["-nostdin", "-trace_logs", "-log_file"])
        .arg(log)
        .args(["-trace_err", "-error_file"])
        .arg(log.with_extension("errors"))
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// A SIP account of an agent's phone.
#[derive(Debug, Clone)]
pub struct Account {
    /// Digest username.
    pub username: String,
    /// Digest password.
    pub password: String,
    /// The tenant's SIP domain (the realm).
    pub domain: String,
}

/// Registers `account` from 127.0.0.1:`port` for `expires_s` (REGISTER,
/// 401, REGISTER with MD5 digest, 200); `Err` with SIPp's account of it.
pub fn register(
    dir: &Path,
    sip: SocketAddr,
    port: u16,
    account: &Account,
    expires_s: u32,
) -> Result<(), String> {
    let name = format!("register-{}", account.username);
    let csv = dir.join(format!("{name}.csv"));
    std::fs::write(
        &csv,
        format!(
            "SEQUENTIAL\n{u};[authentication username={u} password={p}];{d};{expires_s};\n",
            u = account.username,
            p = account.password,
            d = account.domain
        ),
    )
    .expect("injection file");
    let log = dir.join(format!("{name}.log"));
    let scenario = scenario("register.xml");
    let output = sipp(dir, sip, port, &log, &[])
        .arg("-sf")
        .arg(&scenario)
        .arg("-inf")
        .arg(&csv)
        .args(["-m", "1", "-timeout", "20s", "-timeout_error"])
        .stdout(Stdio::piped())
        .output()
        .expect("run sipp");
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{}: SIPp exit {:?}\n{}\n{}",
        account.username,
        output.status.code(),
        std::fs::read_to_string(log.with_extension("errors")).unwrap_or_default(),
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    ))
}

/// How an agent's phone behaves on each INVITE.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// `agent.xml`: rings `ring_ms` (longer than the test: it never
    /// answers), answers, and hangs up after `hold_ms` of talk.
    Answers {
        /// Ringing before the 200.
        ring_ms: u64,
        /// Talk before the agent hangs up.
        hold_ms: u64,
    },
    /// `agent_refuses.xml`: 180, then `status` (486 busy, 603 decline).
    Refuses {
        /// The final response.
        status: u16,
    },
}

/// An agent's phone: SIPp taking INVITEs on `sip_port` as its
/// [`Behaviour`] says, its media at `rtp_port`.
pub struct AgentPhone {
    /// The account it registered.
    pub account: Account,
    /// Its SIP port (where it registered from).
    pub sip_port: u16,
    /// The media port its answers name.
    pub rtp_port: u16,
    /// Its step log.
    pub log: PathBuf,
    process: Guarded,
}

impl AgentPhone {
    /// Registers `account` (for `expires_s`) and starts answering.
    pub fn start(
        dir: &Path,
        sip: SocketAddr,
        account: Account,
        rtp_port: u16,
        behaviour: Behaviour,
        expires_s: u32,
    ) -> AgentPhone {
        let mut last = String::new();
        for _ in 0..3 {
            let sip_port = free_udp_port();
            if let Err(e) = register(dir, sip, sip_port, &account, expires_s) {
                last = e;
                continue;
            }
            let name = format!("agent-{}", account.username);
            let scenario = match behaviour {
                Behaviour::Answers { ring_ms, hold_ms } => filled(
                    dir,
                    "agent.xml",
                    &name,
                    &[
                        ("RING_MS", ring_ms.to_string()),
                        ("HOLD_MS", hold_ms.to_string()),
                    ],
                ),
                Behaviour::Refuses { status } => filled(
                    dir,
                    "agent_refuses.xml",
                    &name,
                    &[
                        ("STATUS", status.to_string()),
                        ("REASON", reason_phrase(status).to_string()),
                    ],
                ),
            };
            let log = dir.join(format!("{name}.log"));
            let out = std::fs::File::create(dir.join(format!("{name}.out"))).expect("out");
            let child = sipp(dir, sip, sip_port, &log, &[])
                .arg("-sf")
                .arg(&scenario)
                .args(["-key", "rtp", &rtp_port.to_string(), "-aa"])
                .args(["-timeout", "300s"])
                .stdout(out)
                .spawn()
                .expect("start sipp");
            let mut phone = AgentPhone {
                account,
                sip_port,
                rtp_port,
                log,
                process: Guarded(child),
            };
            // A scenario SIPp cannot read ends it at once.
            std::thread::sleep(Duration::from_millis(100));
            assert!(
                phone.running(),
                "{name} ended at once: {}",
                std::fs::read_to_string(dir.join(format!("{name}.out")))
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            return phone;
        }
        panic!("{} did not register: {last}", account.username);
    }

    /// The steps its calls went through so far.
    pub fn events(&self) -> Vec<Event> {
        read_events(&self.log)
    }

    /// Whether SIPp still runs (it ends only on an error or its timeout).
    pub fn running(&mut self) -> bool {
        matches!(self.process.0.try_wait(), Ok(None))
    }

    /// SIPp's error log.
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.log.with_extension("errors")).unwrap_or_default()
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        486 => "Busy Here",
        600 => "Busy Everywhere",
        603 => "Decline",
        480 => "Temporarily Unavailable",
        _ => "Refused",
    }
}

/// One call the callers place.
#[derive(Debug, Clone)]
pub struct Call {
    /// The caller's RTP port (an endpoint the test runs).
    pub rtp_port: u16,
    /// The number dialled.
    pub did: String,
    /// The caller's number (From).
    pub caller: String,
}

/// SIPp placing `calls` in order at `rate_per_s`.
pub struct Callers {
    /// Its step log.
    pub log: PathBuf,
    process: Guarded,
}

impl Callers {
    /// Starts placing the calls; each waits up to `hold_ms` after the
    /// answer for the other side's BYE, then hangs up.
    pub fn start(
        dir: &Path,
        sip: SocketAddr,
        name: &str,
        calls: &[Call],
        rate_per_s: u32,
        hold_ms: u64,
    ) -> Callers {
        let mut csv = String::from("SEQUENTIAL\n");
        for c in calls {
            csv.push_str(&format!("{};{};{}\n", c.rtp_port, c.did, c.caller));
        }
        let inf = dir.join(format!("{name}.csv"));
        std::fs::write(&inf, csv).expect("injection file");
        let scenario = filled(dir, "caller.xml", name, &[("HOLD_MS", hold_ms.to_string())]);
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(dir.join(format!("{name}.out"))).expect("out");
        let count = calls.len().to_string();
        let child = sipp(dir, sip, free_udp_port(), &log, &[])
            .arg("-sf")
            .arg(&scenario)
            .arg("-inf")
            .arg(&inf)
            .args(["-m", &count, "-l", &count])
            .args(["-r", &rate_per_s.to_string(), "-rp", "1000"])
            .args(["-timeout", "120s", "-timeout_error"])
            .stdout(out)
            .spawn()
            .expect("start sipp");
        Callers {
            log,
            process: Guarded(child),
        }
    }

    /// The steps of the calls so far.
    pub fn events(&self) -> Vec<Event> {
        read_events(&self.log)
    }

    /// Waits until SIPp ends (every call done), at most `within`; its exit
    /// code (0: every call went through the scenario), `None` on timeout.
    pub fn wait(&mut self, within: Duration) -> Option<i32> {
        let polls = within.as_millis() / 50;
        for _ in 0..=polls {
            if let Some(code) = self.exited() {
                return Some(code);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIPp's exit code if it has ended (-1 when killed by a signal).
    pub fn exited(&mut self) -> Option<i32> {
        match self.process.0.try_wait() {
            Ok(Some(status)) => Some(status.code().unwrap_or(-1)),
            _ => None,
        }
    }

    /// SIPp's error log.
    pub fn errors(&self) -> String {
        std::fs::read_to_string(self.log.with_extension("errors")).unwrap_or_default()
    }
}

/// One logged step: `EVENT|SECONDS|MICROSECONDS|KEY|REST...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `invite`, `answered`, `cancelled`, `bye_in`, `bye_out`, `ended`, ...
    pub kind: String,
    /// Wall-clock time, microseconds since the epoch.
    pub at_us: u64,
    /// The call: SIPp's call number (agents) or the caller's RTP port.
    pub key: String,
    /// The rest of the line's fields.
    pub rest: Vec<String>,
}

impl Event {
    /// Milliseconds since the epoch (the node's unit).
    pub fn at_ms(&self) -> f64 {
        self.at_us as f64 / 1000.0
    }
}

/// The events of a scenario's log, in order; lines cut short (SIPp still
/// writing) are skipped.
pub fn read_events(path: &Path) -> Vec<Event> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete.lines().filter_map(parse_event).collect()
}

fn parse_event(line: &str) -> Option<Event> {
    let mut fields = line.trim().split('|');
    let kind = fields.next()?.to_string();
    let seconds: f64 = fields.next()?.parse().ok()?;
    let micros: f64 = fields.next()?.parse().ok()?;
    let key = fields.next()?.to_string();
    Some(Event {
        kind,
        at_us: seconds as u64 * 1_000_000 + micros as u64,
        key,
        rest: fields.map(str::to_string).collect(),
    })
}

/// Events grouped by call (their key), each group in order.
pub fn by_call(events: &[Event]) -> BTreeMap<String, Vec<Event>> {
    let mut calls: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    for e in events {
        calls.entry(e.key.clone()).or_default().push(e.clone());
    }
    calls
}
