//! Activity records through the real path (H1, C1, C4): SIPp callers dial
//! the demo's Support DID while no agent is logged in, wait in the queue
//! and hang up; the ledger closes each activity once, the node's writer
//! drains the outbox into `history.redb`, and the admin API serves the
//! records: plausible times, the outcome and the queue, filters, paging,
//! 404 and 400 problems, who may see what, and the same records after a
//! restart (drained once: nothing replayed).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{free_port, password_of, Api, Demo};
use serde_json::{json, Value};

const CALLS: usize = 3;
const HOLD_MS: u64 = 3_000;

#[allow(clippy::disallowed_methods)] // the test compares records with its own clock
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

fn sipp() -> &'static str {
    if Path::new("/usr/bin/sipp").exists() {
        "/usr/bin/sipp"
    } else {
        panic!("sipp is not installed: run scripts/install-deps.sh (Debian package sip-tester)")
    }
}

/// `CALLS` callers to `did`, 200 ms apart, each hanging up `HOLD_MS` after the answer.
fn callers_who_leave(dir: &Path, sip: &str, did: &str) {
    let rtp = std::net::UdpSocket::bind("127.0.0.1:0").expect("rtp");
    let rtp_port = rtp.local_addr().expect("addr").port();
    let csv = dir.join("callers.csv");
    std::fs::write(&csv, format!("SEQUENTIAL\n{rtp_port};{did}\n")).expect("csv");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/caller_leaves.xml");
    let output = Command::new(sipp())
        .arg(sip)
        .args(["-sf", &scenario.display().to_string()])
        .args(["-inf", &csv.display().to_string()])
        .args([
            "-m",
            &CALLS.to_string(),
            "-r",
            "5",
            "-l",
            &CALLS.to_string(),
        ])
        .args(["-d", &HOLD_MS.to_string()])
        .args(["-i", "127.0.0.1", "-p", &free_port().to_string()])
        .args(["-timeout", "40s", "-timeout_error", "-trace_err"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .current_dir(dir)
        .output()
        .expect("run sipp");
    drop(rtp);
    let errors: String = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        output.status.success(),
        "every SIPp call completed: {:?}\n{}\n{errors}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn get(api: &Api, token: &str, path: &str) -> (u16, Value) {
    api.call(Some(token), "GET", path, None).await
}

fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .expect("items")
        .iter()
        .map(|r| r["id"].as_str().expect("id").to_string())
        .collect()
}

fn metric(text: &str, name: &str, tenant: u64) -> u64 {
    let series = format!("{name}{{tenant=\"{tenant}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().expect("a counter"))
}

async fn metrics(api: &Api) -> String {
    api.http
        .get(format!("{}/metrics", api.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_calls_become_records_served_by_the_history_api() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (admin_port, raft_port) = (free_port(), free_port());
    let demo = Demo::start(dir.path(), admin_port, raft_port);
    let file = demo.demo_json();
    let api = demo.api();
    api.wait_ready().await;
    let t = file["tenant_id"].as_u64().expect("tenant");
    let base = format!("/api/v1/tenants/{t}");
    let admin = api.login("admin", &password_of(&file, "admin")).await;
    let queue = |name: &str| {
        file["queues"]
            .as_array()
            .expect("queues")
            .iter()
            .find(|q| q["name"] == name)
            .expect("queue")
            .clone()
    };
    let (support, sales) = (queue("Support"), queue("Sales"));
    let support_id = support["id"].as_u64().expect("id");
    let sales_id = sales["id"].as_u64().expect("id");
    let did = support["dids"][0].as_str().expect("did").to_string();
    let anna = file["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["login"] == "agent.anna")
        .expect("anna")["user_id"]
        .as_u64()
        .expect("id");

    let (status, empty) = get(&api, &admin, &format!("{base}/activities")).await;
    assert_eq!((status, empty), (200, json!({"items": [], "next": null})));

    let before = now_ms();
    callers_who_leave(dir.path(), file["sip_addr"].as_str().expect("sip"), &did);
    let after = now_ms();

    // The records appear once the writer has drained the outbox.
    let mut items = Value::Null;
    for _ in 0..100 {
        let (status, page) = get(&api, &admin, &format!("{base}/activities")).await;
        assert_eq!(status, 200, "{page}");
        if page["items"].as_array().is_some_and(|i| i.len() >= CALLS) {
            assert_eq!(page["next"], Value::Null, "{page}");
            items = page["items"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let records = items.as_array().unwrap_or_else(|| {
        panic!(
            "{CALLS} records within 10 s; node log:\n{}",
            std::fs::read_to_string(&demo.log).unwrap_or_default()
        )
    });
    assert_eq!(records.len(), CALLS, "one record per call: {items}");
    let mut unique = ids(&items);
    unique.dedup();
    assert_eq!(unique.len(), CALLS, "{items}");
    for r in records {
        let at = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
        assert_eq!(r["outcome"]["kind"], "abandoned", "{r}");
        assert_eq!(r["direction"], "inbound", "{r}");
        assert_eq!(r["queue"].as_u64(), Some(support_id), "{r}");
        assert!(
            r["agent"].is_null() && r["connected_at_ms"].is_null(),
            "{r}"
        );
        assert_eq!(r["called"].as_str(), Some(did.as_str()), "{r}");
        assert!(
            r["caller"]
                .as_str()
                .is_some_and(|c| c.contains("+42077700")),
            "{r}"
        );
        assert!(
            before <= at("started_at_ms") && at("closed_at_ms") <= after,
            "{r}"
        );
        assert!(at("ended_at_ms") <= at("closed_at_ms"), "{r}");
        let held = at("ended_at_ms") - at("started_at_ms");
        assert!(
            (HOLD_MS..HOLD_MS + 3_000).contains(&held),
            "the caller held about {HOLD_MS} ms: {held} in {r}"
        );
        // C1: waiting until the caller left; no interaction, no processing.
        assert!(
            at("waiting_ms") <= held && at("waiting_ms") + 1_000 >= held,
            "{r}"
        );
        assert_eq!((at("interaction_ms"), at("processing_ms")), (0, 0), "{r}");
        assert_eq!(r["node"].as_u64(), Some(1), "{r}");
        let queued = r["segments"]
            .as_array()
            .expect("segments")
            .iter()
            .any(|s| s["kind"] == "queue" && s["queue"].as_u64() == Some(support_id));
        assert!(queued, "a queue segment: {r}");
        // One record by id is the same record.
        let id = r["id"].as_str().expect("id");
        assert_eq!(
            get(&api, &admin, &format!("{base}/activities/{id}")).await,
            (200, r.clone())
        );
    }
    let starts: Vec<u64> = records
        .iter()
        .map(|r| r["started_at_ms"].as_u64().expect("start"))
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {starts:?}"
    );

    // Filters.
    let count = |query: String| {
        let (api, admin, base) = (&api, &admin, &base);
        async move {
            let (status, page) = get(api, admin, &format!("{base}/activities?{query}")).await;
            assert_eq!(status, 200, "{query}: {page}");
            page["items"].as_array().expect("items").len()
        }
    };
    for (query, want) in [
        (format!("queue={support_id}"), CALLS),
        (format!("queue={sales_id}"), 0),
        ("outcome=abandoned".into(), CALLS),
        ("outcome=answered".into(), 0),
        ("direction=inbound".into(), CALLS),
        ("direction=outbound".into(), 0),
        (format!("agent={anna}"), 0),
        (format!("from_ms={}&to_ms={}", starts[1], starts[0] + 1), 2),
        (format!("from_ms={}", starts[0] + 1), 0),
        (format!("to_ms={}", starts[CALLS - 1]), 0),
        (
            format!("queue={support_id}&outcome=abandoned&direction=inbound&limit=500"),
            CALLS,
        ),
    ] {
        assert_eq!(count(query.clone()).await, want, "{query}");
    }

    // Paging: one record a page, the same records in the same order, then the end.
    let mut paged = Vec::new();
    let mut query = "limit=1".to_string();
    for _ in 0..=CALLS {
        let (status, page) = get(&api, &admin, &format!("{base}/activities?{query}")).await;
        assert_eq!(status, 200, "{page}");
        paged.extend(ids(&page["items"]));
        match page["next"].as_str() {
            Some(next) => query = format!("limit=1&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(paged, ids(&items), "pages hold every record once, in order");

    // Problems: 404 with its code, 400s naming the rule.
    let (status, problem) = get(&api, &admin, &format!("{base}/activities/nobody")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (404, Some("ACTIVITY_NOT_FOUND"))
    );
    for (query, code) in [
        ("limit=0", "LIMIT_OUT_OF_RANGE"),
        ("limit=501", "LIMIT_OUT_OF_RANGE"),
        ("from_ms=10&to_ms=5", "TIME_RANGE_INVALID"),
        ("direction=sideways", "DIRECTION_UNKNOWN"),
        ("outcome=won", "OUTCOME_UNKNOWN"),
        ("cursor=zz", "CURSOR_INVALID"),
        ("limit=abc", "QUERY_INVALID"),
        ("colour=blue", "QUERY_INVALID"),
    ] {
        let (status, problem) = get(&api, &admin, &format!("{base}/activities?{query}")).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some(code)),
            "{query}: {problem}"
        );
        if code != "QUERY_INVALID" {
            assert_eq!(problem["rule"], "H1", "{problem}");
            assert!(
                problem["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("H1: ")),
                "{problem}"
            );
        }
    }

    // Who sees what: a UC user may not read history; an agent sees only
    // the calls it took (none here); a supervisor scoped to a branch sees
    // calls no agent took; a supervisor limited to Sales sees none of
    // Support's, one limited to Support all of them.
    let one = &unique[0];
    let eva = api.login("uc.eva", &password_of(&file, "uc.eva")).await;
    for path in [
        format!("{base}/activities"),
        format!("{base}/activities/{one}"),
    ] {
        let (status, problem) = get(&api, &eva, &path).await;
        assert_eq!((status, problem["code"].as_str()), (403, Some("FORBIDDEN")));
    }
    let anna_token = api
        .login("agent.anna", &password_of(&file, "agent.anna"))
        .await;
    let (status, page) = get(&api, &anna_token, &format!("{base}/activities")).await;
    assert_eq!((status, page["items"].clone()), (200, json!([])));
    let (status, _) = get(&api, &anna_token, &format!("{base}/activities/{one}")).await;
    assert_eq!(status, 404, "another's record is not found, not forbidden");
    let supervisor = api
        .login("supervisor", &password_of(&file, "supervisor"))
        .await;
    let (_, page) = get(&api, &supervisor, &format!("{base}/activities")).await;
    assert_eq!(ids(&page["items"]), ids(&items));
    for (login, password, queue, sees) in [
        ("sup.sales", "Supervise-Sales-7!", sales_id, false),
        ("sup.support", "Supervise-Support-7!", support_id, true),
    ] {
        let (status, body) = api
            .call(
                Some(&admin),
                "POST",
                &format!("{base}/users"),
                Some(json!({
                    "kind": "contact_centre", "roles": ["supervisor"], "full_name": login,
                    "login": login, "panel_access": true, "password": password,
                    "data_rights": {"queues": [queue]},
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let token = api.login(login, password).await;
        let (status, page) = get(&api, &token, &format!("{base}/activities")).await;
        assert_eq!(status, 200, "{page}");
        let (status, _) = get(&api, &token, &format!("{base}/activities/{one}")).await;
        if sees {
            assert_eq!(ids(&page["items"]), ids(&items), "{login}");
            assert_eq!(status, 200, "{login}");
        } else {
            assert_eq!(page["items"], json!([]), "{login}");
            assert_eq!(status, 404, "{login}");
        }
    }

    // The writer's counters: every record written once, none missed.
    let text = metrics(&api).await;
    assert_eq!(
        metric(&text, "carillon_history_records_written_total", t),
        CALLS as u64
    );
    assert_eq!(metric(&text, "carillon_history_records_missed_total", t), 0);

    // A restart keeps the records, and resumes after the drained sequence
    // (nothing is replayed from the outbox).
    assert_eq!(demo.terminate(), Some(0), "clean exit on SIGTERM");
    assert!(
        dir.path().join("data").join("history.redb").exists(),
        "the store is history.redb in the node's data directory"
    );
    let demo = Demo::start(dir.path(), admin_port, raft_port);
    api.wait_ready().await;
    let admin = api.login("admin", &password_of(&file, "admin")).await;
    let mut same = Value::Null;
    for _ in 0..50 {
        let (_, page) = get(&api, &admin, &format!("{base}/activities")).await;
        if page["items"] == items {
            same = page["items"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(same, items, "the same records after a restart");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = metrics(&api).await;
    for name in [
        "carillon_history_records_written_total",
        "carillon_history_records_duplicate_total",
        "carillon_history_records_missed_total",
    ] {
        assert_eq!(metric(&text, name, t), 0, "{name} after the restart");
    }
    assert_eq!(demo.terminate(), Some(0));
}
