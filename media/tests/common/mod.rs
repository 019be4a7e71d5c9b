//! Helpers of the end-to-end tests: relay and peer processes (killed by pid when their
//! guard drops), the HTTP control API, SDP offers.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use carillon_media::peer::{PeerPlan, PeerReport, StreamPlan};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process, killed by its pid when dropped.
pub struct ProcessGuard {
    pub child: Child,
    /// Kept open: the relay stops when its stdin closes.
    stdin: Option<ChildStdin>,
    pub name: String,
}

impl ProcessGuard {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the exit, at most `timeout`; panics when it does not come or is a failure.
    #[allow(clippy::disallowed_methods)] // a test waits for a process by the clock
    pub fn wait_success(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    assert!(status.success(), "{} exited with {status}", self.name);
                    return;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(None) => panic!(
                    "{} (pid {}) still running after {timeout:?}",
                    self.name,
                    self.pid()
                ),
                Err(e) => panic!("waiting for {}: {e}", self.name),
            }
        }
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // Killing a process that already exited fails harmlessly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relay process and its control API.
pub struct RelayProcess {
    pub guard: ProcessGuard,
    pub base: String,
    pub http: reqwest::Client,
    pub recordings: PathBuf,
}

/// Starts `carillon-relay` on `bind_ip` with `ports` (`first-last`) and its control API on
/// `control`; returns once it says it is ready.
pub fn start_relay(
    bind_ip: &str,
    ports: &str,
    control: &str,
    dir: &Path,
    extra: &[&str],
) -> RelayProcess {
    let recordings = dir.join("recordings");
    let mut child = Command::new(env!("CARGO_BIN_EXE_carillon-relay"))
        .args(["--bind-ip", bind_ip, "--ports", ports, "--control", control])
        .arg("--recordings-dir")
        .arg(&recordings)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("relay starts");
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("relay stdout");
    let mut guard = ProcessGuard {
        child,
        stdin,
        name: "carillon-relay".into(),
    };
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("relay prints its readiness");
    assert!(line.starts_with("ready "), "relay said {line:?}");
    assert!(guard.is_running(), "relay runs");
    RelayProcess {
        guard,
        base: format!("http://{control}/media/v1"),
        http: reqwest::Client::new(),
        recordings,
    }
}

/// An HTTP answer: status, content type, JSON body (null when not JSON).
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub json: serde_json::Value,
    pub text: String,
}

impl RelayProcess {
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("relay answers");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let text = response.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Answer {
            status,
            content_type,
            json,
            text,
        }
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) -> Answer {
        self.request(reqwest::Method::POST, path, Some(body.to_string()))
            .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.request(reqwest::Method::GET, path, None).await
    }

    /// Creates a session; panics unless 201.
    pub async fn create_session(&self, id: &str) {
        let answer = self
            .post("/sessions", serde_json::json!({ "session_id": id }))
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text);
    }

    /// Adds a leg whose far side receives on `peer`; returns the relay's RTP address.
    pub async fn add_leg(&self, id: &str, leg: &str, peer: SocketAddr) -> SocketAddr {
        let body = serde_json::json!({ "remote_sdp": offer(peer) });
        let answer = self
            .request(
                reqwest::Method::PUT,
                &format!("/sessions/{id}/legs/{leg}"),
                Some(body.to_string()),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        let port = answer.json["rtp_port"].as_u64().expect("rtp_port") as u16;
        let sdp = answer.json["local_sdp"].as_str().expect("local_sdp");
        assert!(
            sdp.contains(&format!("m=audio {port} RTP/AVP 0 101")),
            "{sdp}"
        );
        let ip = sdp
            .lines()
            .find_map(|l| l.strip_prefix("c=IN IP4 "))
            .expect("c= line")
            .trim();
        format!("{ip}:{port}").parse().expect("relay address")
    }

    pub async fn session(&self, id: &str) -> serde_json::Value {
        let answer = self.get(&format!("/sessions/{id}")).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.json
    }

    pub async fn load(&self) -> serde_json::Value {
        let answer = self.get("/load").await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.json
    }
}

/// An SDP offer: PCMU and telephone-event, receiving on `addr`.
pub fn offer(addr: SocketAddr) -> String {
    format!(
        "v=0\r\no=peer 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n",
        ip = addr.ip(),
        port = addr.port()
    )
}

/// A peer process running `plan`; its report goes to `report`.
pub struct PeerProcess {
    pub guard: ProcessGuard,
    pub report: PathBuf,
}

pub fn start_peer(dir: &Path, name: &str, plan: &PeerPlan) -> PeerProcess {
    let plan_path = dir.join(format!("{name}.plan.json"));
    let report = dir.join(format!("{name}.report.json"));
    std::fs::write(&plan_path, serde_json::to_vec(plan).expect("plan")).expect("write plan");
    let child = Command::new(env!("CARGO_BIN_EXE_carillon-rtp-peer"))
        .arg("--plan")
        .arg(&plan_path)
        .arg("--report")
        .arg(&report)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("peer starts");
    PeerProcess {
        guard: ProcessGuard {
            child,
            stdin: None,
            name: format!("peer {name}"),
        },
        report,
    }
}

impl PeerProcess {
    /// Waits for the peer to finish and reads its report.
    pub fn finish(mut self, timeout: Duration) -> PeerReport {
        self.guard.wait_success(timeout);
        let text = std::fs::read(&self.report).expect("peer report");
        serde_json::from_slice(&text).expect("report parses")
    }
}

/// One-stream plan.
pub fn stream(local: SocketAddr, remote: SocketAddr, seed: u32, expect_seed: u32) -> StreamPlan {
    StreamPlan {
        local,
        remote,
        seed,
        expect_seed: Some(expect_seed),
        switch_to: None,
        switch_after_ms: 0,
        dtmf: String::new(),
        dtmf_at_ms: 0,
        payloads_file: None,
    }
}

/// A plan starting `start_in_ms` from now (so that peers started one after the other
/// begin together).
pub fn plan(streams: Vec<StreamPlan>, duration_ms: u64, start_in_ms: u64) -> PeerPlan {
    #[allow(clippy::disallowed_methods)] // tests read the wall clock to line up processes
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    PeerPlan {
        streams,
        duration_ms,
        linger_ms: 1000,
        law: "PCMU".into(),
        payload_type: 0,
        event_payload_type: 101,
        start_at_unix_ms: Some(now + start_in_ms),
    }
}

pub fn addr(text: &str) -> SocketAddr {
    text.parse().expect("address")
}
