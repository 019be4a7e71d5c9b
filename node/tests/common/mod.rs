//! Running `carillon demo` as a child process for the tests.

#![allow(dead_code)]

pub mod centre;
pub mod raw;
pub mod rtp;
pub mod scene;
pub mod sip_demo;
pub mod sipp;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A TCP port free on 127.0.0.1 now, from 32000-32767: below the kernel's
/// ephemeral range (32768 and up), so that no test's outgoing connection or
/// port-0 listener takes it between this check and the demo's bind (seen:
/// `Address already in use` for an admin port picked from the ephemeral
/// range). Each process starts at its own offset and never hands out a port
/// twice.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 32_000;
    const COUNT: u32 = 768;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(97) % COUNT;
    for _ in 0..COUNT {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(FIRST + (start + n) % COUNT).expect("a port");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free in {FIRST}-{}", FIRST + COUNT - 1)
}

/// A 200-port RTP range for the demo on admin port `admin`, below the
/// ephemeral ports (10000-29999), so that demos of parallel tests rarely
/// share one.
pub fn rtp_ports(admin: u16) -> String {
    let first = 10_000 + (u32::from(admin) * 7_919 % 100) * 200;
    format!("{first}-{}", first + 199)
}

/// The demo process; killed by pid if the test fails half-way.
pub struct Demo {
    pub child: Child,
    pub url: String,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Demo {
    pub fn start(dir: &Path, admin: u16, raft: u16) -> Demo {
        Self::start_with(dir, admin, raft, &[])
    }

    /// Starts a demo with extra command-line arguments (e.g. `--sip-option`).
    pub fn start_with(dir: &Path, admin: u16, raft: u16, extra: &[&str]) -> Demo {
        Self::start_with_env(dir, admin, raft, extra, &[])
    }

    /// Starts a demo with extra arguments and environment variables.
    pub fn start_with_env(
        dir: &Path,
        admin: u16,
        raft: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Demo {
        let log = dir.join(format!("demo-{admin}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let printout =
            std::fs::File::create(dir.join(format!("demo-{admin}.out"))).expect("printout file");
        let child = Command::new(env!("CARGO_BIN_EXE_carillon"))
            .args(["demo", "--dir"])
            .arg(dir)
            .args([
                "--admin-addr",
                &format!("127.0.0.1:{admin}"),
                "--raft-addr",
                &format!("127.0.0.1:{raft}"),
            ])
            .args(["--sip-addr", "127.0.0.1:0", "--ws-addr", "127.0.0.1:0"])
            // TLS listeners only where a test asks for them: each is one
            // more port the kernel picks, which a parallel test's
            // `free_port` may have chosen.
            .args(
                ["--sip-tls-addr", "--wss-addr", "--https-addr"]
                    .into_iter()
                    .filter(|flag| !extra.contains(flag))
                    .flat_map(|flag| [flag, "off"]),
            )
            .args(["--rtp-ports", &rtp_ports(admin)])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(printout)
            .stderr(file)
            .spawn()
            .expect("start carillon demo");
        Demo {
            child,
            url: format!("http://127.0.0.1:{admin}"),
            dir: dir.to_path_buf(),
            log,
        }
    }

    /// An API client for this demo.
    pub fn api(&self) -> Api {
        Api {
            http: reqwest::Client::new(),
            url: self.url.clone(),
            log: self.log.clone(),
        }
    }

    pub fn demo_json(&self) -> Value {
        for _ in 0..300 {
            if let Ok(bytes) = std::fs::read(self.dir.join("demo.json")) {
                if let Ok(value) = serde_json::from_slice(&bytes) {
                    return value;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "no demo.json within 30 s; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn terminate(mut self) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the demo did not stop within 10 s of SIGTERM");
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the unlabelled metric `name` on the node at `url`.
pub async fn metric(url: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{url}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} in /metrics"))
}

/// The password of `login` in demo.json.
pub fn password_of(demo: &Value, login: &str) -> String {
    demo["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["login"] == login)
        .expect("user")["password"]
        .as_str()
        .expect("password")
        .to_string()
}

/// A client of a demo's admin API that checks every error is a problem.
pub struct Api {
    pub http: reqwest::Client,
    pub url: String,
    pub log: PathBuf,
}

impl Api {
    pub async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => panic!(
                "{path}: the demo does not answer ({e:?}); its log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            ),
        };
        let status = response.status().as_u16();
        let is_problem = response
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
        let text = response.text().await.expect("body");
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status >= 400 {
            assert!(
                is_problem,
                "{path}: an error is application/problem+json: {status} {value}"
            );
            assert!(
                value["code"].is_string(),
                "{path}: a problem has a code: {value}"
            );
        }
        (status, value)
    }

    /// Waits until the API answers `/readyz` with 200 (a restarted demo needs a moment).
    pub async fn wait_ready(&self) {
        for _ in 0..300 {
            if let Ok(response) = self.http.get(format!("{}/readyz", self.url)).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the demo was not ready within 30 s; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub async fn login(&self, login: &str, password: &str) -> String {
        for _ in 0..50 {
            let (status, body) = self
                .call(
                    None,
                    "POST",
                    "/api/v1/auth/login",
                    Some(json!({"login": login, "password": password})),
                )
                .await;
            if status == 200 {
                return body["token"].as_str().expect("token").to_string();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{login} cannot log in");
    }
}
