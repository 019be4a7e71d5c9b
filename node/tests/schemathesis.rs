//! schemathesis (PyPI) fuzzes the running demo's admin API against the
//! OpenAPI document it serves: no 5xx, and every response matches the
//! document (status, content type, schema). Cluster membership changes are
//! left out: adding generated addresses as learners is not a meaningful
//! test and is covered by the chaos test.

mod common;

use common::{free_port, password_of, Demo};
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let st = Command::new("st").arg("--version").output();
    let version = match st {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).to_string(),
        _ => panic!("schemathesis (`st`) is not installed: run scripts/install-deps.sh (pip install schemathesis==4.32.5)"),
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let demo = Demo::start(dir.path(), free_port(), free_port());
    let file = demo.demo_json();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let reply: serde_json::Value = http
        .post(format!("{}/api/v1/auth/login", demo.url))
        .json(&serde_json::json!({"login": "operator", "password": password_of(&file, "operator")}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login reply");
    let token = reply["token"].as_str().expect("token").to_string();
    let output = Command::new("st")
        .current_dir(dir.path())
        .args(["run", &format!("{}/api/v1/openapi.json", demo.url)])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance"])
        .args(["--max-examples", "10", "--workers", "2", "--seed", "20261122", "--no-color"])
        .args(["--exclude-path-regex", "/api/v1/cluster/members.*"])
        .output()
        .expect("run schemathesis");
    let report = String::from_utf8_lossy(&output.stdout);
    let summary: String = report
        .lines()
        .rev()
        .take(25)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    println!("{version}{summary}");
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        report.contains("passed"),
        "schemathesis ran test cases:\n{summary}"
    );
    // The node survived the fuzzing.
    let health = http
        .get(format!("{}/healthz", demo.url))
        .send()
        .await
        .expect("the demo still answers");
    assert!(
        health.status().is_success(),
        "the demo is healthy after the run"
    );
    assert_eq!(demo.terminate(), Some(0));
}
