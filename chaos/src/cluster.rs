//! The multi-process cluster supervisor: writes each node's configuration,
//! starts `carillon node` processes on loopback addresses, and kills, pauses,
//! resumes and restarts them by pid.

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Finds the `carillon` binary: `$CARILLON_BIN`, else beside the test
/// executable's target directory (`target/<profile>/carillon`). Fails with
/// the command to build it.
pub fn carillon_binary() -> Result<PathBuf> {
    if let Ok(path) = std::env::var("CARILLON_BIN") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("locate the test executable")?;
    // target/<profile>/deps/<test> -> target/<profile>/carillon
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .context("the test executable has no target directory")?;
    let candidate = profile_dir.join("carillon");
    if candidate.is_file() {
        return Ok(candidate);
    }
    bail!(
        "the carillon binary is not at {}: build it with `cargo build -p carillon-node --bin carillon` \
         (the README's test command does), or set CARILLON_BIN",
        candidate.display()
    )
}

/// A port free for both TCP and UDP on `ip` (the kernel's choice).
pub fn free_port(ip: &str) -> Result<u16> {
    for _ in 0..50 {
        let tcp = std::net::TcpListener::bind((ip, 0)).with_context(|| format!("bind {ip}:0"))?;
        let port = tcp.local_addr().context("local address")?.port();
        if std::net::UdpSocket::bind((ip, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port free for both TCP and UDP on {ip}")
}

/// One node of a test cluster.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Raft node id.
    pub id: u64,
    /// Loopback address the node binds, for example 127.0.0.11.
    pub ip: String,
    /// Admin API port.
    pub admin_port: u16,
    /// Raft port.
    pub raft_port: u16,
    /// SIP port.
    pub sip_port: u16,
    /// The in-process media relay's RTP port range (`[media]`, bound to
    /// `ip`); `None`: the node relays no media.
    pub media_ports: Option<(u16, u16)>,
}

impl NodeSpec {
    /// A node on `127.0.0.{10+id}` with fixed ports offset by `port_base`.
    pub fn loopback(id: u64, port_base: u16) -> Self {
        Self {
            id,
            ip: format!("127.0.0.{}", 10 + id),
            admin_port: port_base,
            raft_port: port_base + 1,
            sip_port: port_base + 2,
            media_ports: None,
        }
    }

    /// A node on `ip` whose admin, Raft and SIP (UDP and TCP) ports are
    /// free ones, relaying media on RTP ports `first..=last`.
    pub fn with_free_ports(id: u64, ip: &str, media_ports: (u16, u16)) -> Result<Self> {
        Ok(Self {
            id,
            ip: ip.to_string(),
            admin_port: free_port(ip)?,
            raft_port: free_port(ip)?,
            sip_port: free_port(ip)?,
            media_ports: Some(media_ports),
        })
    }

    /// `ip:admin_port`.
    pub fn admin_addr(&self) -> String {
        format!("{}:{}", self.ip, self.admin_port)
    }

    /// `ip:raft_port`.
    pub fn raft_addr(&self) -> String {
        format!("{}:{}", self.ip, self.raft_port)
    }

    /// `ip:sip_port`.
    pub fn sip_addr(&self) -> String {
        format!("{}:{}", self.ip, self.sip_port)
    }

    /// `http://ip:admin_port`.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr())
    }
}

/// Starts and stops node processes. Dropping it kills every process it
/// started (SIGKILL, by pid) and reaps them.
#[derive(Debug)]
pub struct ClusterSupervisor {
    binary: PathBuf,
    dir: tempfile::TempDir,
    specs: BTreeMap<u64, NodeSpec>,
    children: BTreeMap<u64, Child>,
    /// Extra TOML appended to every node's configuration.
    extra_config: String,
    /// Environment variables given to every node process.
    env: Vec<(String, String)>,
}

impl ClusterSupervisor {
    /// A supervisor for `specs`; the first `voters` nodes (by id) bootstrap
    /// the cluster, the others join later through the admin API.
    pub fn new(specs: Vec<NodeSpec>, extra_config: &str) -> Result<Self> {
        let binary = carillon_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("carillon-chaos-")
            .tempdir()
            .context("create the cluster's directory")?;
        Ok(Self {
            binary,
            dir,
            specs: specs.into_iter().map(|s| (s.id, s)).collect(),
            children: BTreeMap::new(),
            extra_config: extra_config.to_string(),
            env: Vec::new(),
        })
    }

    /// Gives every node process started from now on `key=value`.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_string(), value.to_string()));
    }

    /// The spec of node `id`.
    pub fn spec(&self, id: u64) -> &NodeSpec {
        &self.specs[&id]
    }

    /// Ids of every node this supervisor knows.
    pub fn ids(&self) -> Vec<u64> {
        self.specs.keys().copied().collect()
    }

    /// Ids of the nodes whose process is running (started and not killed).
    pub fn running(&self) -> Vec<u64> {
        self.children.keys().copied().collect()
    }

    /// The directory holding configs, data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where node `id` writes its log.
    pub fn log_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}.log"))
    }

    /// Writes node `id`'s configuration. `bootstrap_peers` lists the initial
    /// voters when this node may initialise the cluster; empty for a joiner.
    pub fn write_config(&self, id: u64, bootstrap_peers: &[u64]) -> Result<PathBuf> {
        let spec = &self.specs[&id];
        let mut toml = String::new();
        writeln!(toml, "node_id = {id}")?;
        writeln!(
            toml,
            "data_dir = {:?}",
            self.dir.path().join(format!("data-{id}"))
        )?;
        writeln!(toml, "admin_addr = {:?}", spec.admin_addr())?;
        writeln!(toml, "raft_addr = {:?}", spec.raft_addr())?;
        writeln!(toml, "sip_addr = {:?}", spec.sip_addr())?;
        writeln!(toml, "bootstrap = {}", !bootstrap_peers.is_empty())?;
        for peer in bootstrap_peers {
            let p = &self.specs[peer];
            writeln!(toml, "\n[[peers]]")?;
            writeln!(toml, "id = {}", p.id)?;
            writeln!(toml, "raft_addr = {:?}", p.raft_addr())?;
            writeln!(toml, "admin_addr = {:?}", p.admin_addr())?;
        }
        if let Some((first, last)) = spec.media_ports {
            writeln!(toml, "\n[media]")?;
            writeln!(toml, "bind_ip = {:?}", spec.ip)?;
            writeln!(toml, "first_port = {first}")?;
            writeln!(toml, "last_port = {last}")?;
        }
        toml.push('\n');
        toml.push_str(&self.extra_config);
        let path = self.dir.path().join(format!("node-{id}.toml"));
        std::fs::write(&path, toml).with_context(|| format!("write {}", path.display()))?;
        Ok(path)
    }

    /// Starts node `id` from its configuration file (written earlier).
    pub fn start(&mut self, id: u64) -> Result<u32> {
        if self.children.contains_key(&id) {
            bail!("node {id} is already running");
        }
        let config = self.dir.path().join(format!("node-{id}.toml"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .context("open the node's log")?;
        let child = Command::new(&self.binary)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .arg("node")
            .arg("--config")
            .arg(&config)
            .arg("--log-format")
            .arg("json")
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("clone log handle")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", self.binary.display()))?;
        let pid = child.id();
        self.children.insert(id, child);
        Ok(pid)
    }

    /// The pid of node `id`'s process, if running.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.children.get(&id).map(Child::id)
    }

    fn signal(&self, id: u64, signal: Signal) -> Result<()> {
        let pid = self
            .pid(id)
            .with_context(|| format!("node {id} is not running"))?;
        let pid = i32::try_from(pid).context("pid fits i32")?;
        kill(Pid::from_raw(pid), signal).with_context(|| format!("{signal} to node {id}"))?;
        Ok(())
    }

    /// SIGKILL: the node dies at once, without any chance to clean up.
    pub fn kill(&mut self, id: u64) -> Result<()> {
        self.signal(id, Signal::SIGKILL)?;
        if let Some(mut child) = self.children.remove(&id) {
            child.wait().context("reap the killed node")?;
        }
        Ok(())
    }

    /// SIGTERM and wait (bounded) for a clean exit; returns the exit code.
    pub fn terminate(&mut self, id: u64, within: Duration) -> Result<Option<i32>> {
        self.signal(id, Signal::SIGTERM)?;
        let mut child = self.children.remove(&id).context("node is running")?;
        let steps = within.as_millis() / 50;
        for _ in 0..steps.max(1) {
            if let Some(status) = child.try_wait().context("poll the node")? {
                return Ok(status.code());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        bail!("node {id} did not exit within {within:?} of SIGTERM")
    }

    /// SIGSTOP: the node freezes (a hung process, as peers see it).
    pub fn pause(&self, id: u64) -> Result<()> {
        self.signal(id, Signal::SIGSTOP)
    }

    /// SIGCONT: a paused node resumes.
    pub fn resume(&self, id: u64) -> Result<()> {
        self.signal(id, Signal::SIGCONT)
    }

    /// Node `id`'s log so far (for failure messages).
    pub fn log_tail(&self, id: u64, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(id)).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ClusterSupervisor {
    fn drop(&mut self) {
        if std::env::var_os("CARILLON_CHAOS_KEEP").is_some() {
            let path = std::mem::replace(
                &mut self.dir,
                tempfile::TempDir::new().unwrap_or_else(|_| unreachable!("a temp dir")),
            );
            eprintln!("chaos: keeping {}", path.keep().display());
        }
        for (_, mut child) in std::mem::take(&mut self.children) {
            // A paused child must be resumed to die cleanly under some kernels' job control.
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGCONT);
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
