//! The front door's login throttle and lockout, over HTTP from several
//! loopback source addresses (127.0.0.x): three free failures per (login,
//! address), then 429 `LOGIN_THROTTLED` with `Retry-After` for that address
//! only; ten failures of a login from anywhere lock it on the cluster (429
//! `LOGIN_LOCKED`, even with the right password), its administrators see the
//! lockout and lift it; bad bearer tokens are throttled per address the
//! same way (429 `TOKEN_THROTTLED`); a spray of 100,000 random logins from 5,000
//! addresses leaves the throttle's tables at their bound and the node's
//! memory flat.

mod common;

use std::net::IpAddr;
use std::time::Instant;

use common::{free_port, metric, password_of, Demo};
use serde_json::{json, Value};

/// A client whose connections leave from `source`.
fn client_from(source: &str) -> reqwest::Client {
    let ip: IpAddr = source.parse().expect("source address");
    reqwest::Client::builder()
        .local_address(ip)
        .build()
        .expect("client")
}

/// Logs `login` in from `client`: the status, `Retry-After`, and the body.
async fn try_login(
    client: &reqwest::Client,
    url: &str,
    login: &str,
    password: &str,
) -> (u16, Option<u64>, Value) {
    let response = client
        .post(format!("{url}/api/v1/auth/login"))
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .expect("the demo answers");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry_after, body)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_throttled_per_address_then_locked_and_an_administrator_unlocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = Demo::start(dir.path(), free_port(), free_port());
    let file = demo.demo_json();
    let api = demo.api();
    api.wait_ready().await;
    let t = file["tenant_id"].as_u64().expect("tenant id");
    let admin = api.login("admin", &password_of(&file, "admin")).await;
    let anna = password_of(&file, "agent.anna");
    let url = demo.url.clone();

    // Three wrong passwords from the attacker's address: 401 each, then 429.
    let attacker = client_from("127.0.0.2");
    for _ in 0..3 {
        let (status, retry, body) = try_login(&attacker, &url, "agent.anna", "Wrong-Pass-1!").await;
        assert_eq!((status, retry), (401, None), "{body}");
    }
    let (status, retry, body) = try_login(&attacker, &url, "agent.anna", &anna).await;
    assert_eq!(
        (status, retry, body["code"].as_str()),
        (429, Some(1), Some("LOGIN_THROTTLED")),
        "even the right password waits its delay: {body}"
    );
    // The owner, elsewhere, is not slowed by the attacker's failures.
    let owner = client_from("127.0.0.3");
    let (status, _, body) = try_login(&owner, &url, "agent.anna", &anna).await;
    assert_eq!(status, 200, "{body}");

    // Seven more failures from three other addresses (no pair past its
    // free three): the tenth failure of the login locks it everywhere.
    for (source, n) in [("127.0.0.4", 3), ("127.0.0.5", 3), ("127.0.0.6", 1)] {
        let client = client_from(source);
        for _ in 0..n {
            let (status, _, body) = try_login(&client, &url, "agent.anna", "Wrong-Pass-1!").await;
            assert_eq!(status, 401, "{source}: {body}");
        }
    }
    let fresh = client_from("127.0.0.7");
    let (status, retry, body) = try_login(&fresh, &url, "Agent.Anna", &anna).await;
    assert!(
        status == 429
            && body["code"] == "LOGIN_LOCKED"
            && retry.is_some_and(|s| (890..=900).contains(&s)),
        "locked for 15 min, however the login is typed: {status} {retry:?} {body}"
    );
    let (status, locks) = api
        .call(
            Some(&admin),
            "GET",
            &format!("/api/v1/tenants/{t}/lockouts"),
            None,
        )
        .await;
    assert!(
        status == 200
            && locks.as_array().is_some_and(|l| l.len() == 1)
            && locks[0]["login"] == "agent.anna"
            && locks[0]["failures"] == 10
            && locks[0]["last_source"] == "127.0.0.6",
        "the administrator sees the lockout: {locks}"
    );
    let (status, body) = api
        .call(
            Some(&admin),
            "DELETE",
            &format!("/api/v1/tenants/{t}/lockouts/agent.anna"),
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, _, body) = try_login(&fresh, &url, "agent.anna", &anna).await;
    assert_eq!(status, 200, "unlocked: {body}");
    let (_, locks) = api
        .call(
            Some(&admin),
            "GET",
            &format!("/api/v1/tenants/{t}/lockouts"),
            None,
        )
        .await;
    assert_eq!(locks, json!([]));

    // Bad bearer tokens, per address: ten 401s, then 429 TOKEN_THROTTLED
    // for that address's bad tokens, while its good token still works and
    // another address is not slowed.
    let forger = client_from("127.0.0.8");
    let me = |client: &reqwest::Client, token: &str| {
        client
            .get(format!("{url}/api/v1/auth/me"))
            .bearer_auth(token)
            .send()
    };
    for i in 0..10 {
        let forged = format!("cat_{i:048x}");
        let response = me(&forger, &forged).await.expect("answer");
        assert_eq!(response.status().as_u16(), 401, "bad token {i}");
    }
    let response = me(&forger, "v1.forged.token").await.expect("answer");
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("problem");
    assert_eq!(
        (status, retry.as_deref(), body["code"].as_str()),
        (429, Some("1"), Some("TOKEN_THROTTLED")),
        "{body}"
    );
    let response = me(&forger, &admin).await.expect("answer");
    assert_eq!(response.status().as_u16(), 200, "a good token still passes");
    let response = me(&client_from("127.0.0.9"), "cat_nothing")
        .await
        .expect("answer");
    assert_eq!(
        response.status().as_u16(),
        401,
        "another address is not slowed"
    );

    // The spray, twice: 5,000 addresses x 20 random logins each time (each
    // address stays within its free failures, so every attempt is counted).
    // The first fills the tables; the second, all new logins, must not grow
    // the node.
    let before_kib = rss_kib(demo.child.id());
    let first_s = spray(&url, 0).await;
    let full_kib = rss_kib(demo.child.id());
    let entries_full = metric(&url, "carillon_login_throttle_entries").await;
    let second_s = spray(&url, 1).await;
    let after_kib = rss_kib(demo.child.id());
    let entries = metric(&url, "carillon_login_throttle_entries").await;
    println!(
        "spray: 2 x 100000 logins in {first_s:.1} s + {second_s:.1} s; throttle entries \
         {entries_full} then {entries}; RSS {before_kib} -> {full_kib} -> {after_kib} KiB"
    );
    // Pairs and logins stop at their capacity (65,536 each), plus the sources.
    assert!(
        (2.0 * 65_536.0..=2.0 * 65_536.0 + 10_010.0).contains(&entries),
        "the tables are full and bounded: {entries}"
    );
    assert!(
        after_kib < full_kib + 8 * 1024,
        "100,000 more logins do not grow the node: {full_kib} -> {after_kib} KiB"
    );
}

/// 100,000 failed logins of new names from 5,000 new addresses (round
/// `round`); the seconds it took. Every attempt is answered 401.
#[allow(clippy::disallowed_methods)] // the test reports how long the spray took
async fn spray(url: &str, round: u32) -> f64 {
    const WORKERS: u32 = 8;
    const SOURCES: u32 = 5_000;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..WORKERS {
        let url = url.to_string();
        tasks.spawn(async move {
            let mut refused = 0u32;
            for s in (worker..SOURCES).step_by(WORKERS as usize) {
                let source = format!("127.{}.{}.{}", round + 1, s / 250, s % 250 + 1);
                let client = client_from(&source);
                for i in 0..20 {
                    let login = format!("spray-{round}-{s}-{i}");
                    let (status, _, _) = try_login(&client, &url, &login, "x").await;
                    refused += u32::from(status != 401);
                }
            }
            refused
        });
    }
    let mut refused = 0;
    while let Some(done) = tasks.join_next().await {
        refused += done.expect("spray worker");
    }
    assert_eq!(refused, 0, "every sprayed attempt was counted (401)");
    started.elapsed().as_secs_f64()
}
