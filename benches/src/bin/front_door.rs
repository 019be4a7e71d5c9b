//! The front door's costs on one `carillon demo` node: panel logins/s with
//! argon2id at the configured cost beside refused attempts/s (429 before any
//! password check), and REGISTER/s with digest over SIP/TLS beside plain UDP.
//! Run it with `benches/front_door.sh`, which builds in release mode; the
//! node is pinned to core 0 and this load generator to core 1. Each figure
//! is the median of `--runs` runs of `--seconds`; the results go between the
//! markers of `--out`.
//!
//! A login is `POST /api/v1/auth/login` with the right password: argon2id
//! verification and a ledger write (the session). A refused attempt is the
//! same request for a (login, address) pair the throttle delays: 429 with no
//! password check. A registration is the full digest exchange (REGISTER,
//! 401, REGISTER with MD5 credentials, 200), each client on its own UDP
//! socket or its own TLS connection (connected once, before the run).

use anyhow::{bail, Context, Result};
use carillon_benches::cluster::pin;
use carillon_benches::load::{self, median, RunResult};
use carillon_sip::digest::{client_response, Algorithm};
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

const NODE_IP: &str = "127.0.0.61";
const LOAD_IP: &str = "127.0.0.62";
const ADMIN_PORT: u16 = 18461;

/// Options (all optional).
#[derive(Debug, clap::Parser)]
struct Options {
    /// Runs per figure (the table shows their median).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Length of one run, in seconds.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Concurrent SIP clients per transport (each with its own socket or
    /// connection); the demo's 4 accounts hold 10 contacts each, so at most
    /// 20 (the UDP clients' bindings stay while the TLS clients register).
    #[arg(long, default_value_t = 16)]
    sip_clients: usize,
    /// The results file (its generated part is rewritten).
    #[arg(long, default_value = "benches/FRONT_DOOR_RESULTS.md")]
    out: PathBuf,
}

/// The demo node, stopped by pid when dropped.
struct Node {
    child: Child,
    _dir: tempfile::TempDir,
    demo: Value,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn carillon() -> Result<PathBuf> {
    if let Ok(path) = std::env::var("CARILLON_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("locate this program")?;
    Ok(exe.with_file_name("carillon"))
}

fn start_node() -> Result<Node> {
    let dir = tempfile::tempdir()?;
    let log = std::fs::File::create(dir.path().join("node.log"))?;
    let at = |port: u16| format!("{NODE_IP}:{port}");
    let child = Command::new(carillon()?)
        .args(["demo", "--dir"])
        .arg(dir.path())
        .args([
            "--admin-addr",
            &at(ADMIN_PORT),
            "--raft-addr",
            &at(ADMIN_PORT + 1),
        ])
        .args([
            "--sip-addr",
            &at(5060),
            "--ws-addr",
            &at(0),
            "--sip-tls-addr",
            &at(5061),
        ])
        .args([
            "--wss-addr",
            "off",
            "--https-addr",
            "off",
            "--rtp-ports",
            "20000-20999",
        ])
        .args([
            "--sip-option",
            "rate_per_second=1000000",
            "--sip-option",
            "burst=1000000",
        ])
        .args(["--sip-option", "digest=\"md5-only\""])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("start carillon demo (build it: benches/front_door.sh)")?;
    pin(child.id(), "0")?;
    let mut node = Node {
        child,
        _dir: dir,
        demo: Value::Null,
    };
    let file = node._dir.path().join("demo.json");
    for _ in 0..600 {
        if let Some(demo) = std::fs::read(&file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(|d| d["sip_tls_addr"].is_string())
        {
            node.demo = demo;
            return Ok(node);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(node._dir.path().join("node.log")).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(20).collect();
    bail!(
        "the demo did not write demo.json within 60 s; its log ends:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}

fn password_of(demo: &Value, login: &str) -> Result<String> {
    demo["users"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["login"] == login))
        .and_then(|u| u["password"].as_str())
        .map(str::to_string)
        .with_context(|| format!("{login} in demo.json"))
}

fn http_from(ip: &str) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .local_address(ip.parse::<IpAddr>()?)
        .timeout(Duration::from_secs(30))
        .build()?)
}

async fn login_status(http: &reqwest::Client, login: &str, password: &str) -> u16 {
    http.post(format!("http://{NODE_IP}:{ADMIN_PORT}/api/v1/auth/login"))
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16())
}

/// One SIP client: a UDP socket or a TLS connection, and its account.
enum Link {
    Udp(tokio::net::UdpSocket),
    Tls(
        Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
        Vec<u8>,
    ),
}

struct SipClient {
    link: Link,
    local: SocketAddr,
    user: String,
    ha1: String,
    realm: String,
    cseq: u32,
}

impl SipClient {
    async fn exchange(&mut self, request: String) -> Option<String> {
        let wait = Duration::from_secs(2);
        match &mut self.link {
            Link::Udp(socket) => {
                socket.send(request.as_bytes()).await.ok()?;
                let mut buf = vec![0u8; 4096];
                let n = tokio::time::timeout(wait, socket.recv(&mut buf))
                    .await
                    .ok()?
                    .ok()?;
                Some(String::from_utf8_lossy(&buf[..n]).into_owned())
            }
            Link::Tls(stream, pending) => {
                stream.write_all(request.as_bytes()).await.ok()?;
                loop {
                    if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        let message: Vec<u8> = pending.drain(..end + 4).collect();
                        return Some(String::from_utf8_lossy(&message).into_owned());
                    }
                    let mut chunk = [0u8; 4096];
                    let n = tokio::time::timeout(wait, stream.read(&mut chunk))
                        .await
                        .ok()?
                        .ok()?;
                    if n == 0 {
                        return None;
                    }
                    pending.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }

    fn request(&mut self, client: usize, authorization: Option<String>) -> String {
        self.cseq += 1;
        let transport = match self.link {
            Link::Udp(_) => "UDP",
            Link::Tls(..) => "TLS",
        };
        let (user, realm, local, cseq) = (&self.user, &self.realm, self.local, self.cseq);
        let auth = authorization
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "REGISTER sip:{realm} SIP/2.0\r\nVia: SIP/2.0/{transport} {local};branch=z9hG4bKfd{client}x{cseq};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@{realm}>;tag=fd{client}\r\nTo: <sip:{user}@{realm}>\r\n\
             Call-ID: front-door-{client}-{transport}@{}\r\nCSeq: {cseq} REGISTER\r\n\
             Contact: <sip:{user}@{local};transport={}>\r\nExpires: 300\r\n{auth}Content-Length: 0\r\n\r\n",
            local.ip(),
            transport.to_ascii_lowercase()
        )
    }

    /// One full registration; whether it ended in 200.
    async fn register(&mut self, client: usize, n: usize) -> bool {
        let first = self.request(client, None);
        let Some(challenge) = self.exchange(first).await else {
            return false;
        };
        let Some(nonce) = challenge
            .split("nonce=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .map(str::to_string)
        else {
            return false;
        };
        let cnonce = format!("{client:x}{n:x}");
        let uri = format!("sip:{}", self.realm);
        let response = client_response(
            Algorithm::Md5,
            &self.ha1,
            &nonce,
            1,
            &cnonce,
            "REGISTER",
            &uri,
        );
        let authorization = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"{cnonce}\"",
            self.user, self.realm
        );
        let second = self.request(client, Some(authorization));
        self.exchange(second)
            .await
            .is_some_and(|r| r.starts_with("SIP/2.0 200"))
    }
}

fn tls_config(cert: &Path) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(cert)? {
        roots.add(c?)?;
    }
    #[allow(deprecated)] // the node's provider too (README: why ring)
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

async fn sip_clients(demo: &Value, count: usize, tls: bool) -> Result<Vec<Mutex<SipClient>>> {
    let accounts = demo["sip_accounts"].as_array().context("sip_accounts")?;
    let udp: SocketAddr = format!("{NODE_IP}:5060").parse()?;
    let tls_addr: SocketAddr = demo["sip_tls_addr"]
        .as_str()
        .context("sip_tls_addr")?
        .parse()?;
    let config = tls_config(Path::new(
        demo["tls_cert_file"].as_str().context("tls_cert_file")?,
    ))?;
    let mut clients = Vec::new();
    for i in 0..count {
        let account = &accounts[i % accounts.len()];
        let (user, password, realm) = (
            account["username"]
                .as_str()
                .context("username")?
                .to_string(),
            account["password"].as_str().context("password")?,
            account["realm"].as_str().context("realm")?.to_string(),
        );
        let ha1 = Algorithm::Md5.hash_hex(&format!("{user}:{realm}:{password}"));
        let (link, local) = if tls {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(format!("{LOAD_IP}:0").parse()?)?;
            let tcp = socket.connect(tls_addr).await?;
            let local = tcp.local_addr()?;
            let name = rustls::pki_types::ServerName::IpAddress(tls_addr.ip().into());
            let stream = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await?;
            (Link::Tls(Box::new(stream), Vec::new()), local)
        } else {
            let socket = tokio::net::UdpSocket::bind(format!("{LOAD_IP}:0")).await?;
            socket.connect(udp).await?;
            let local = socket.local_addr()?;
            (Link::Udp(socket), local)
        };
        clients.push(Mutex::new(SipClient {
            link,
            local,
            user,
            ha1,
            realm,
            cseq: 0,
        }));
    }
    Ok(clients)
}

/// The CPU time (user + system) process `pid` has used, in seconds.
fn cpu_seconds(pid: u32, ticks_per_second: f64) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): state is 3rd.
    let after = stat.rsplit_once(')').context("/proc stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    Ok((utime + stime) / ticks_per_second)
}

/// One run and the node's CPU microseconds per successful request in it.
#[derive(Debug, Clone)]
struct Measured {
    run: RunResult,
    cpu_us: f64,
}

async fn measured<F, Fut>(
    node: u32,
    ticks: f64,
    clients: usize,
    duration: Duration,
    request: F,
) -> Result<Measured>
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let before = cpu_seconds(node, ticks)?;
    let run = load::run(clients, duration, request).await;
    let used = cpu_seconds(node, ticks)? - before;
    let done = run.per_second * duration.as_secs_f64();
    Ok(Measured {
        cpu_us: used * 1e6 / done.max(1.0),
        run,
    })
}

fn row(name: &str, runs: &[Measured]) -> String {
    let errors: usize = runs.iter().map(|r| r.run.errors).sum();
    format!(
        "| {name} | {:.0} | {:.2} | {:.2} | {:.0} | {errors} |",
        median(runs, |r| r.run.per_second),
        median(runs, |r| r.run.p50.as_secs_f64() * 1e3),
        median(runs, |r| r.run.p99.as_secs_f64() * 1e3),
        median(runs, |r| r.cpu_us),
    )
}

fn clock_ticks() -> Result<f64> {
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let options = <Options as clap::Parser>::parse();
    if options.runs == 0 || options.seconds == 0 || options.clients == 0 || options.sip_clients == 0
    {
        bail!("--runs, --seconds, --clients and --sip-clients must be at least 1");
    }
    pin(std::process::id(), "1")?;
    let node = start_node()?;
    let demo = node.demo.clone();
    let admin_password = password_of(&demo, "admin")?;
    let http = http_from(LOAD_IP)?;
    for _ in 0..100 {
        if login_status(&http, "admin", &admin_password).await == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let duration = Duration::from_secs(options.seconds);
    let mut logins = Vec::new();
    let mut refused = Vec::new();
    let mut udp = Vec::new();
    let mut tls = Vec::new();
    // The throttled pair: three wrong passwords of agent.anna from its own address.
    let attacker = http_from("127.0.0.63")?;
    for _ in 0..3 {
        login_status(&attacker, "agent.anna", "Wrong-Password-1!").await;
    }
    let udp_clients = Arc::new(sip_clients(&demo, options.sip_clients, false).await?);
    let tls_clients = Arc::new(sip_clients(&demo, options.sip_clients, true).await?);
    let (pid, ticks) = (node.child.id(), clock_ticks()?);
    for run in 0..options.runs {
        let (h, p) = (http.clone(), admin_password.clone());
        logins.push(
            measured(pid, ticks, options.clients, duration, move |_, _| {
                let (h, p) = (h.clone(), p.clone());
                async move { login_status(&h, "admin", &p).await == 200 }
            })
            .await?,
        );
        let a = attacker.clone();
        refused.push(
            measured(pid, ticks, options.clients, duration, move |_, _| {
                let a = a.clone();
                async move { login_status(&a, "agent.anna", "Wrong-Password-1!").await == 429 }
            })
            .await?,
        );
        for (clients, results) in [(&udp_clients, &mut udp), (&tls_clients, &mut tls)] {
            let c = clients.clone();
            results.push(
                measured(
                    pid,
                    ticks,
                    options.sip_clients,
                    duration,
                    move |client, n| {
                        let c = c.clone();
                        async move { c[client].lock().await.register(client, n).await }
                    },
                )
                .await?,
            );
        }
        eprintln!(
            "run {}: logins {:.0}/s, refused {:.0}/s, REGISTER udp {:.0}/s, tls {:.0}/s",
            run + 1,
            logins[run].run.per_second,
            refused[run].run.per_second,
            udp[run].run.per_second,
            tls[run].run.per_second
        );
    }
    let cpu = |v: &[Measured]| median(v, |x| x.cpu_us);
    let rate = |v: &[Measured]| median(v, |x| x.run.per_second);
    let table = [
        "| what | per second | p50 ms | p99 ms | node CPU per request, µs | failed |".to_string(),
        "|---|---:|---:|---:|---:|---:|".to_string(),
        row(
            "login (argon2id, right password, a session written)",
            &logins,
        ),
        row("refused login attempt (429, throttled pair)", &refused),
        row("REGISTER with digest over UDP", &udp),
        row("REGISTER with digest over TLS", &tls),
    ]
    .join("\n");
    let summary = format!(
        "{table}\n\nA refused attempt costs the node {:.0} µs of CPU beside {:.0} µs for a login \
         ({:.0}x less); TLS REGISTER/s is {:.2}x UDP's (CPU per registration {:.2}x). {} runs of \
         {} s, {} HTTP and {} SIP clients, closed loop; the node on core 0, the generator on \
         core 1. `failed` counts requests that did not end as expected (in the refused row: \
         the attempts the throttle let through after its delay, each a password check).\n",
        cpu(&refused),
        cpu(&logins),
        cpu(&logins) / cpu(&refused).max(1e-9),
        rate(&tls) / rate(&udp).max(1e-9),
        cpu(&tls) / cpu(&udp).max(1e-9),
        options.runs,
        options.seconds,
        options.clients,
        options.sip_clients,
    );
    println!("{summary}");
    write_between_markers(&options.out, &summary)?;
    drop(node);
    Ok(())
}

fn write_between_markers(path: &Path, generated: &str) -> Result<()> {
    const BEGIN: &str = "<!-- generated:begin (benches/front_door.sh rewrites this part) -->";
    const END: &str = "<!-- generated:end -->";
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (head, tail) = match (text.find(BEGIN), text.find(END)) {
        (Some(b), Some(e)) if b < e => (text[..b].to_string(), text[e + END.len()..].to_string()),
        _ => (text, String::new()),
    };
    std::fs::write(path, format!("{head}{BEGIN}\n{generated}{END}{tail}"))
        .with_context(|| format!("write {}", path.display()))
}
