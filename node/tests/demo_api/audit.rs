//! The audit trail as an administrator meets it: every change the demo's
//! seeding made is there with the operator as its actor, the logins of the
//! test with their users and address, no password, PIN or SIP secret
//! anywhere in it, the platform's log for operators, filters and pages.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use super::common::Api;

/// Every record of `path` (all pages of 500), oldest last.
async fn all(api: &Api, token: &str, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let url = match &cursor {
            Some(c) => format!("{path}?limit=500&cursor={c}"),
            None => format!("{path}?limit=500"),
        };
        let (status, page) = api.call(Some(token), "GET", &url, None).await;
        assert_eq!(status, 200, "{page}");
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return items,
        }
    }
    panic!("{path}: more than 100 pages");
}

fn created<'a>(records: &'a [Value], action: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["action"] == action).collect()
}

pub async fn check(api: &Api, file: &Value, operator: &str) {
    let t = file["tenant_id"].as_u64().expect("tenant");
    let path = format!("/api/v1/tenants/{t}/audit");
    // The history writer drains the ledger's logs: wait (bounded) for the
    // last seeded queue to be there.
    let mut records = Vec::new();
    for _ in 0..100 {
        records = all(api, operator, &path).await;
        if created(&records, "create_queue").len() >= file["queues"].as_array().map_or(0, Vec::len)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let by_operator = |r: &&Value| r["actor"]["kind"] == "operator";
    // The seeding: the tenant, its users, SIP devices, queues and numbers,
    // each made by the operator, with what it made.
    let tenant = created(&records, "create_tenant");
    assert!(
        tenant.len() == 1 && by_operator(&tenant[0]),
        "the tenant's creation: {tenant:?}"
    );
    let users: BTreeSet<String> = created(&records, "create_user")
        .into_iter()
        .filter(by_operator)
        .filter_map(|r| r["after"]["login"].as_str().map(str::to_string))
        .collect();
    for user in file["users"].as_array().expect("users").iter().skip(1) {
        let login = user["login"].as_str().expect("login");
        assert!(
            users.contains(login),
            "{login} was made by the operator: {users:?}"
        );
    }
    let devices: BTreeSet<String> = created(&records, "create_device")
        .into_iter()
        .filter(by_operator)
        .filter_map(|r| r["after"]["sip_username"].as_str().map(str::to_string))
        .collect();
    for account in file["sip_accounts"].as_array().expect("accounts") {
        let username = account["username"].as_str().expect("username");
        assert!(
            devices.contains(username),
            "{username}'s device: {devices:?}"
        );
    }
    for queue in file["queues"].as_array().expect("queues") {
        let made = created(&records, "create_queue")
            .into_iter()
            .any(|r| by_operator(&r) && r["after"]["name"] == queue["name"]);
        assert!(made, "queue {}", queue["name"]);
        for did in queue["dids"].as_array().expect("dids") {
            let assigned = created(&records, "assign_number")
                .into_iter()
                .any(|r| by_operator(&r) && r["object"]["id"] == *did);
            assert!(assigned, "DID {did} assigned");
        }
    }
    for action in [
        "buy_licences",
        "create_branch",
        "create_skill",
        "create_pause_type",
    ] {
        assert!(
            created(&records, action).iter().any(by_operator),
            "{action} by the operator"
        );
    }
    // Logins of the test: their user, from 127.0.0.1.
    let login = created(&records, "open_login_session");
    assert!(
        login
            .iter()
            .any(|r| r["actor"]["kind"] == "user" && r["source"] == "127.0.0.1"),
        "logins are audited: {login:?}"
    );
    // No secret anywhere: every password, PIN and SIP password of the demo.
    let text = serde_json::to_string(&records).expect("json");
    let mut secrets: Vec<String> = Vec::new();
    for user in file["users"].as_array().expect("users") {
        secrets.push(user["password"].as_str().expect("password").into());
    }
    for account in file["sip_accounts"].as_array().expect("accounts") {
        secrets.push(account["password"].as_str().expect("password").into());
    }
    for agent in file["agents"].as_array().expect("agents") {
        secrets.push(format!("\"{}\"", agent["pin"].as_str().expect("pin")));
    }
    secrets.extend(["$argon2".into(), "password_phc".into(), "ha1".into()]);
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "the audit trail holds {secret:?}"
        );
    }
    // Filters and pages.
    let (status, page) = api
        .call(
            Some(operator),
            "GET",
            &format!("{path}?action=create_queue&limit=1"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["items"][0]["action"], "create_queue");
    let next = page["next"].as_str().expect("a second queue follows");
    let (_, second) = api
        .call(
            Some(operator),
            "GET",
            &format!("{path}?action=create_queue&limit=1&cursor={next}"),
            None,
        )
        .await;
    assert_ne!(second["items"][0]["id"], page["items"][0]["id"]);
    let (status, bad) = api
        .call(
            Some(operator),
            "GET",
            &format!("{path}?actor=robot:1"),
            None,
        )
        .await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("ACTOR_INVALID")));
    // The platform's log: the operator made at bootstrap, by the system.
    let platform = all(api, operator, "/api/v1/audit").await;
    assert!(
        platform
            .iter()
            .any(|r| r["action"] == "create_operator" && r["actor"]["rule"] == "bootstrap"),
        "{platform:?}"
    );
}
