//! `carillon node` with `role = "media"`: a relay-only node, started from
//! its configuration file, driven over its control API, reporting its load,
//! and stopped by SIGTERM. A bad media configuration is refused with the
//! rule it breaks.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::free_port;
use serde_json::{json, Value};

struct Node(std::process::Child);

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_media_node_serves_the_relay_control_api_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let control = free_port();
    let config = dir.path().join("media.toml");
    std::fs::write(
        &config,
        format!(
            "role = \"media\"\nnode_id = 21\ndata_dir = {:?}\n\n[media]\nbind_ip = \"127.0.0.1\"\nfirst_port = 35000\nlast_port = 35099\ncontrol_addr = \"127.0.0.1:{control}\"\n",
            dir.path().join("data")
        ),
    )
    .expect("config");
    let log = std::fs::File::create(dir.path().join("node.log")).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_carillon"))
        .args(["node", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start carillon node");
    let mut node = Node(child);
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{control}/media/v1");
    let mut load = Value::Null;
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{base}/load")).send().await {
            load = r.json().await.expect("load is JSON");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(load["sessions"], 0, "load report: {load}");
    let created = http
        .post(format!("{base}/sessions"))
        .json(&json!({"session_id": "call-1"}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status().as_u16(), 201);
    let leg = http
        .put(format!("{base}/sessions/call-1/legs/a"))
        .json(&json!({}))
        .send()
        .await
        .expect("leg");
    assert_eq!(leg.status().as_u16(), 200);
    let leg: Value = leg.json().await.expect("leg JSON");
    let sdp = leg["local_sdp"].as_str().expect("an SDP offer");
    assert!(sdp.contains("c=IN IP4 127.0.0.1"), "{sdp}");
    let port: u16 = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("an audio port");
    assert!(
        (35000..=35099).contains(&port),
        "from the configured pool: {port}"
    );
    let load: Value = http
        .get(format!("{base}/load"))
        .send()
        .await
        .expect("load")
        .json()
        .await
        .expect("JSON");
    assert_eq!(load["sessions"], 1, "{load}");
    let missing = http
        .delete(format!("{base}/sessions/nobody"))
        .send()
        .await
        .expect("delete");
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(
        missing
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("")),
        Some("application/problem+json")
    );
    let pid = nix::unistd::Pid::from_raw(i32::try_from(node.0.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let mut status = None;
    for _ in 0..100 {
        if let Some(s) = node.0.try_wait().expect("wait") {
            status = s.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, Some(0), "a clean exit on SIGTERM");
}

#[test]
fn a_media_node_without_its_section_is_refused_with_the_rule() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "role = \"media\"\nnode_id = 2\ndata_dir = \"/tmp/x\"\n",
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_carillon"))
        .args(["node", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("needs a [media] section with control_addr"),
        "{text}"
    );
}

#[test]
fn a_media_node_with_a_nap_beyond_the_bound_is_refused_with_the_rule() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("nap.toml");
    std::fs::write(
        &config,
        format!(
            "role = \"media\"\nnode_id = 22\ndata_dir = {:?}\n\n[media]\nbind_ip = \"127.0.0.1\"\nfirst_port = 35100\nlast_port = 35199\ncontrol_addr = \"127.0.0.1:{}\"\nwake_coalesce_us = 60000\n",
            dir.path().join("data"),
            free_port()
        ),
    )
    .expect("config");
    let out = Command::new(env!("CARGO_BIN_EXE_carillon"))
        .args(["node", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!out.status.success(), "a 60 ms nap is refused");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("wake_coalesce_us is 60000: at most 50000 (50 ms) is allowed"),
        "{text}"
    );
}
