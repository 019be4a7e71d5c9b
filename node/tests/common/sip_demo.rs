//! A `carillon demo` for the SIP edge's tests ([`SipDemo`]: its SIP and
//! WebSocket addresses, tenant and tokens, extension states and metrics) and
//! SIPp runs to completion against it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::sipp::require;
use super::{free_port, password_of, Api, Demo};
use serde_json::{json, Value};

/// A demo with its SIP address, tenant and an admin token.
pub struct SipDemo {
    pub demo: Demo,
    pub api: Api,
    pub token: String,
    pub operator: String,
    pub tenant: u64,
    pub sip: SocketAddr,
    pub ws_url: String,
    pub file: Value,
}

impl SipDemo {
    pub async fn start(dir: &Path, options: &[&str]) -> SipDemo {
        let mut extra = Vec::new();
        for o in options {
            extra.push("--sip-option");
            extra.push(*o);
        }
        let demo = Demo::start_with(dir, free_port(), free_port(), &extra);
        let file = demo.demo_json();
        let api = demo.api();
        api.wait_ready().await;
        let token = api.login("admin", &password_of(&file, "admin")).await;
        let operator = api.login("operator", &password_of(&file, "operator")).await;
        SipDemo {
            tenant: file["tenant_id"].as_u64().expect("tenant_id"),
            sip: file["sip_addr"]
                .as_str()
                .expect("sip_addr")
                .parse()
                .expect("sip_addr is ip:port"),
            ws_url: file["sip_ws_url"].as_str().expect("sip_ws_url").to_string(),
            demo,
            api,
            token,
            operator,
            file,
        }
    }

    /// (username, password) of the demo's SIP accounts.
    pub fn accounts(&self) -> Vec<(String, String)> {
        self.file["sip_accounts"]
            .as_array()
            .expect("sip_accounts")
            .iter()
            .map(|a| {
                (
                    a["username"].as_str().expect("username").to_string(),
                    a["password"].as_str().expect("password").to_string(),
                )
            })
            .collect()
    }

    pub async fn extensions(&self) -> BTreeMap<String, Value> {
        let (status, body) = self
            .api
            .call(
                Some(&self.token),
                "GET",
                &format!("/api/v1/tenants/{}/extensions", self.tenant),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body.as_array()
            .expect("a list")
            .iter()
            .map(|e| {
                (
                    e["sip_username"].as_str().unwrap_or("").to_string(),
                    e.clone(),
                )
            })
            .collect()
    }

    /// Waits until `user`'s extension state is `state`; returns the entry.
    pub async fn wait_state(&self, user: &str, state: &str, within: Duration) -> Value {
        match self.try_wait_state(user, state, within).await {
            Ok(e) => e,
            Err(e) => panic!(
                "{user} not {state} within {within:?}: {e}\nlog:\n{}",
                std::fs::read_to_string(&self.demo.log).unwrap_or_default()
            ),
        }
    }

    /// The extension once it is in `state`, or its last view after `within`.
    pub async fn try_wait_state(
        &self,
        user: &str,
        state: &str,
        within: Duration,
    ) -> Result<Value, Value> {
        let polls = within.as_millis() / 100;
        for poll in 0.. {
            let all = self.extensions().await;
            let e = all.get(user).cloned().unwrap_or(Value::Null);
            if e["state"] == state {
                return Ok(e);
            }
            if poll >= polls {
                return Err(e);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        unreachable!("the loop returns")
    }

    pub async fn metric(&self, name: &str) -> f64 {
        super::metric(&self.api.url, name).await
    }

    /// Waits until a metric reads `value` (the edge publishes its
    /// counters every 100-250 ms).
    pub async fn wait_metric(&self, name: &str, value: f64) {
        let mut last = 0.0;
        for _ in 0..50 {
            last = self.metric(name).await;
            if last == value {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{name} is {last}, not {value}");
    }

    /// Adds SIP phones `sipp-NNN` until the tenant has `total` accounts,
    /// buying device packages as needed; returns every account.
    pub async fn accounts_up_to(&self, total: usize) -> Vec<(String, String)> {
        let mut accounts = self.accounts();
        let base = format!("/api/v1/tenants/{}", self.tenant);
        let (status, body) = self
            .api
            .call(
                Some(&self.operator),
                "POST",
                &format!("{base}/licences/device-packages"),
                Some(json!({"count": total.div_ceil(10)})),
            )
            .await;
        assert!(status < 300, "buy device packages: {status} {body}");
        let mut n = 0;
        while accounts.len() < total {
            n += 1;
            let username = format!("sipp-{n:03}");
            let password = format!("Sipp-Pass-{n:03}!");
            let (status, body) = self
                .api
                .call(
                    Some(&self.token),
                    "POST",
                    &format!("{base}/devices"),
                    Some(json!({
                        "kind": "sip_phone", "name": username, "sip_username": username,
                        "short_number": format!("{}", 5000 + n), "sip_password": password,
                    })),
                )
                .await;
            assert_eq!(status, 201, "create {username}: {body}");
            accounts.push((username, password));
        }
        accounts
    }
}

pub fn domain() -> &'static str {
    "demo.carillon.test"
}

/// A SIPp injection file: username; auth keyword; domain; Expires.
pub fn injection(dir: &Path, name: &str, accounts: &[(String, String)]) -> PathBuf {
    let mut text = String::from("SEQUENTIAL\n");
    for (u, p) in accounts {
        text.push_str(&format!(
            "{u};[authentication username={u} password={p}];{};300;\n",
            domain()
        ));
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write injection file");
    path
}

/// Runs SIPp to completion (bounded by `-timeout`); returns its exit code
/// and its screen output.
pub fn sipp(dir: &Path, target: SocketAddr, args: &[&str]) -> (i32, String) {
    let bin = require("sipp", "sip-tester");
    let output = Command::new(bin)
        .current_dir(dir)
        .arg(target.to_string())
        .args(args)
        .args([
            "-nostdin",
            "-timeout",
            "60s",
            "-timeout_error",
            "-trace_err",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run sipp");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

pub fn scenario(name: &str) -> String {
    super::sipp::scenario(name).display().to_string()
}

pub fn errors_of(dir: &Path) -> String {
    let mut all = String::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().ends_with("_errors.log") {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    all
}

/// The last line of SIPp's `-trace_counts` file, by column.
pub fn sipp_counts(dir: &Path, prefix: &str) -> BTreeMap<String, u64> {
    let file = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .find(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with(prefix) && n.ends_with("_counts.csv")
        })
        .expect("a SIPp counts file");
    let text = std::fs::read_to_string(file.path()).expect("counts");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "a header and a row: {text}");
    let header: Vec<&str> = lines[0].split(';').collect();
    let last: Vec<&str> = lines[lines.len() - 1].split(';').collect();
    header
        .iter()
        .zip(last)
        .filter_map(|(h, v)| v.trim().parse().ok().map(|v| (h.to_string(), v)))
        .collect()
}
