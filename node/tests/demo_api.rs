//! `carillon demo` as a user meets it: a real process on loopback, its
//! credentials from demo.json, the admin API over HTTP. Checks the access
//! table (every route x every role), tenant isolation, bad input, that
//! secrets are never returned or logged, a clean SIGTERM, and that a
//! restart from the same directory keeps everything.

mod common;

use common::{free_port, password_of, Api, Demo};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_api_as_users_meet_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (admin_port, raft_port) = (free_port(), free_port());
    let demo = Demo::start(dir.path(), admin_port, raft_port);
    let file = demo.demo_json();

    assert_eq!(file["admin_url"], demo.url);
    assert!(
        file["sip_accounts"]
            .as_array()
            .is_some_and(|a| a.len() >= 3),
        "{file}"
    );
    let api = Api {
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        url: demo.url.clone(),
        log: demo.log.clone(),
    };
    let t = file["tenant_id"].as_u64().expect("tenant id");
    let roles = [
        "operator",
        "admin",
        "team.admin",
        "supervisor",
        "agent.anna",
        "uc.eva",
    ];
    let mut tokens: BTreeMap<&str, String> = BTreeMap::new();
    for login in roles {
        tokens.insert(login, api.login(login, &password_of(&file, login)).await);
    }
    let op = tokens["operator"].clone();
    let (_, users) = api
        .call(
            Some(&op),
            "GET",
            &format!("/api/v1/tenants/{t}/users"),
            None,
        )
        .await;
    let id = |login: &str| -> u64 {
        users
            .as_array()
            .expect("users")
            .iter()
            .find(|u| u["login"] == login)
            .expect("user")["id"]
            .as_u64()
            .expect("id")
    };
    let (anna, piotr) = (id("agent.anna"), id("agent.piotr"));
    let (_, queues) = api
        .call(
            Some(&op),
            "GET",
            &format!("/api/v1/tenants/{t}/queues"),
            None,
        )
        .await;
    let support = queues
        .as_array()
        .expect("queues")
        .iter()
        .find(|q| q["name"] == "Support")
        .expect("support")["id"]
        .as_u64()
        .expect("id");

    let find = |list: &Value, key: &str, value: &str| -> u64 {
        list.as_array()
            .expect("list")
            .iter()
            .find(|x| x[key] == value)
            .expect("item")["id"]
            .as_u64()
            .expect("id")
    };
    let mut ids = Vec::new();
    for (area, key, value) in [
        ("branches", "name", "Prague"),
        ("skills", "name", "English"),
        ("groups", "name", "Tier 1"),
        ("pause-types", "name", "Lunch"),
        ("devices", "sip_username", "anna"),
    ] {
        let (_, list) = api
            .call(
                Some(&op),
                "GET",
                &format!("/api/v1/tenants/{t}/{area}"),
                None,
            )
            .await;
        ids.push(find(&list, key, value));
    }
    let [prague, english, tier1, lunch, anna_phone] = ids[..] else {
        unreachable!("five ids")
    };

    // Another tenant, with an administrator of its own.
    let (status, other) = api
        .call(
            Some(&op),
            "POST",
            "/api/v1/tenants",
            Some(json!({"name": "Other", "sip_domain": "other.test"})),
        )
        .await;
    assert_eq!(status, 201, "{other}");
    let o = other["id"].as_u64().expect("id");
    let (status, other_admin) = api
        .call(Some(&op), "POST", &format!("/api/v1/tenants/{o}/users"), Some(json!({
            "kind": "contact_centre", "roles": ["system_administrator"], "full_name": "Olga Other", "login": "olga",
            "panel_access": true, "password": "Other-Admin-Pass-1!"})))
        .await;
    assert_eq!(status, 201, "{other_admin}");
    let olga = other_admin["id"].as_u64().expect("id");

    // The access table: every route x every role (columns in `roles` order, then anonymous).
    let base = format!("/api/v1/tenants/{t}");
    #[rustfmt::skip]
    let table: Vec<(&str, String, Option<Value>, [u16; 7])> = vec![
        (
            "GET",
            "/healthz".into(),
            None,
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/readyz".into(),
            None,
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/metrics".into(),
            None,
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/openapi.json".into(),
            None,
            [200, 200, 200, 200, 200, 200, 200],
        ),
        (
            "GET",
            "/api/v1/auth/me".into(),
            None,
            [200, 200, 200, 200, 200, 200, 401],
        ),
        (
            "GET",
            "/api/v1/auth/tokens".into(),
            None,
            [200, 200, 200, 200, 200, 200, 401],
        ),
        (
            "GET",
            "/api/v1/cluster".into(),
            None,
            [200, 200, 403, 403, 403, 403, 401],
        ),
        (
            "GET",
            "/api/v1/cluster/placement".into(),
            None,
            [200, 200, 403, 403, 403, 403, 401],
        ),
        (
            "DELETE",
            "/api/v1/cluster/members/99".into(),
            None,
            [404, 403, 403, 403, 403, 403, 401],
        ),
        (
            "GET",
            "/api/v1/tenants".into(),
            None,
            [200, 200, 200, 200, 200, 200, 401],
        ),
        (
            "POST",
            "/api/v1/tenants".into(),
            Some(json!({"name": "X", "sip_domain": "demo.carillon.test"})),
            [409, 403, 403, 403, 403, 403, 401],
        ),
        (
            "GET",
            base.clone(),
            None,
            [200, 200, 200, 200, 200, 200, 401],
        ),
        (
            "PATCH",
            base.clone(),
            Some(json!({"name": ""})),
            [422, 422, 403, 403, 403, 403, 401],
        ),
        (
            "GET",
            format!("{base}/feature-codes"),
            None,
            [200, 200, 200, 200, 200, 200, 401],
        ),
        (
            "PUT",
            format!("{base}/feature-codes"),
            Some(json!({"login": "100", "ready_in_campaign": "#300#", "ready_without_campaign": "#302#",
                        "pause": "*200", "unpause": "*201", "logout": "404#"})),
            [422, 422, 403, 403, 403, 403, 401],
        ),
        (
            "GET",
            format!("{base}/branches"),
            None,
            [200, 200, 200, 200, 403, 403, 401],
        ),
        (
            "POST",
            format!("{base}/branches"),
            Some(json!({"name": "Prague", "country": "CZ", "timezone": "Europe/Prague"})),
            [409, 409, 403, 403, 403, 403, 401],
        ),
        (
            "GET",
            format!("{base}/skills"),
            None,
            [200, 200, 200, 200, 200, 403, 401],
        ),
        (
            "POST",
            format!("{base}/skills"),
            Some(json!({"name": "English"})),
            [409, 409, 403, 403, 403, 403, 401],
        ),
        (
            "GET",
            format!("{base}/groups"),
            None,
            [200, 200, 200, 200, 200, 403, 401],
        ),
        (
            "GET",
            format!("{base}/pause-types"),
            None,
            [200, 200, 200, 200, 200, 403, 401],
        ),
        (
            "POST",
            format!("{base}/pause-types"),
            Some(json!({"name": "Lunch", "paid": true})),
            [409, 409, 403, 403, 403, 403, 401],
        ),
        (
            "GET",
            format!("{base}/queues"),
            None,
            [200, 200, 200, 200, 200, 403, 401],
        ),
        (
            "POST",
            format!("{base}/queues"),
            Some(json!({"name": "Support"})),
            [409, 409, 409, 403, 403, 403, 401],
        ),
        (
            "GET",
            format!("{base}/queues/{support}/entries"),
            None,
            [200, 200, 200, 200, 403, 403, 401],
        ),
        (
            "PUT",
            format!("{base}/entries/nobody/priority"),
            Some(json!({"priority": 5})),
            [404, 404, 404, 404, 403, 403, 401],
        ),
        (
            "GET",
            format!("{base}/users"),
            None,
            [200, 200, 200, 200, 200, 200, 401],
        ),
        (
            "POST",
            format!("{base}/users"),
            Some(
                json!({"kind": "contact_centre", "roles": ["agent"], "full_name": "A", "login": "admin"}),
            ),
            [409, 409, 409, 403, 403, 403, 401],
        ),
        (
            "GET",
            format!("{base}/users/{anna}"),
            None,
            [200, 200, 404, 200, 200, 403, 401],
        ),
        (
            "GET",
            format!("{base}/users/{piotr}"),
            None,
            [200, 200, 200, 404, 403, 403, 401],
        ),
        (
            "GET",
            format!("{base}/devices"),
            None,
            [200, 200, 200, 200, 403, 403, 401],
        ),
        (
            "GET",
            format!("{base}/extensions"),
            None,
            [200, 200, 200, 200, 403, 403, 401],
        ),
        (
            "POST",
            format!("{base}/devices"),
            Some(
                json!({"kind": "sip_phone", "name": "dup", "sip_username": "anna", "sip_password": "Dup-Pass-123!"}),
            ),
            [409, 409, 409, 403, 403, 403, 401],
        ),
        (
            "GET",
            format!("{base}/numbers"),
            None,
            [200, 200, 200, 200, 403, 403, 401],
        ),
        (
            "POST",
            format!("{base}/numbers"),
            Some(json!({"e164": "+420225000100"})),
            [409, 403, 403, 403, 403, 403, 401],
        ),
        (
            "POST",
            format!("{base}/numbers/assign"),
            Some(json!({"e164": "+420225000100", "target": {"kind": "queue", "queue": support}})),
            [409, 409, 403, 403, 403, 403, 401],
        ),
        (
            "GET",
            format!("{base}/licences"),
            None,
            [200, 200, 200, 403, 403, 403, 401],
        ),
        (
            "POST",
            format!("{base}/licences/purchases"),
            Some(json!({"kind": "voice", "count": 0})),
            [422, 422, 403, 403, 403, 403, 401],
        ),
        (
            "POST",
            format!("{base}/licences/assignments"),
            Some(json!({"user": anna, "kind": "voice"})),
            [409, 409, 404, 403, 403, 403, 401],
        ),
        (
            "GET",
            format!("{base}/sessions"),
            None,
            [200, 200, 200, 200, 403, 403, 401],
        ),
        (
            "GET",
            format!("{base}/users/{anna}/session"),
            None,
            [404, 404, 404, 404, 404, 403, 401],
        ),
        (
            "GET",
            format!("{base}/users/{anna}/state"),
            None,
            [200, 200, 404, 200, 200, 403, 401],
        ),
        (
            "POST",
            format!("{base}/users/{anna}/session/check-in"),
            Some(json!({"queue": support})),
            [409, 409, 404, 409, 409, 403, 401],
        ),
        (
            "GET",
            format!("{base}/activities"),
            None,
            [200, 200, 200, 200, 200, 403, 401],
        ),
        (
            "GET",
            format!("{base}/activities/nobody"),
            None,
            [404, 404, 404, 404, 404, 403, 401],
        ),
        (
            "GET",
            format!("/api/v1/tenants/{o}/activities"),
            None,
            [200, 404, 404, 404, 404, 404, 401],
        ),
        (
            "GET",
            format!("/api/v1/tenants/{o}"),
            None,
            [200, 404, 404, 404, 404, 404, 401],
        ),
        (
            "GET",
            format!("/api/v1/tenants/{o}/users"),
            None,
            [200, 404, 404, 404, 404, 404, 401],
        ),
        (
            "GET",
            format!("/api/v1/tenants/{o}/users/{olga}"),
            None,
            [200, 404, 404, 404, 404, 404, 401],
        ),
        (
            "GET",
            format!("{base}/users/{olga}"),
            None,
            [404, 404, 404, 404, 403, 403, 401],
        ),
        // Every other route, probed with requests that change nothing.
        ("POST", "/api/v1/auth/login".into(), Some(json!({"login": "nobody", "password": "x"})), [401, 401, 401, 401, 401, 401, 401]),
        ("POST", "/api/v1/auth/tokens".into(), Some(json!({"name": ""})), [422, 422, 422, 422, 422, 422, 401]),
        ("DELETE", "/api/v1/auth/tokens/999999".into(), None, [404, 404, 404, 404, 404, 404, 401]),
        ("POST", "/api/v1/cluster/members".into(), Some(json!({"id": 9, "raft_addr": "nowhere", "admin_addr": "nowhere"})), [422, 403, 403, 403, 403, 403, 401]),
        ("GET", format!("{base}/branches/{prague}"), None, [200, 200, 200, 200, 403, 403, 401]),
        ("PUT", format!("{base}/branches/{prague}"), Some(json!({"name": "Warsaw", "country": "CZ", "timezone": "Europe/Prague"})), [409, 409, 403, 403, 403, 403, 401]),
        ("DELETE", format!("{base}/branches/{prague}"), None, [409, 409, 403, 403, 403, 403, 401]),
        ("GET", format!("{base}/skills/{english}"), None, [200, 200, 200, 200, 200, 403, 401]),
        ("PUT", format!("{base}/skills/{english}"), Some(json!({"name": "Czech"})), [409, 409, 403, 403, 403, 403, 401]),
        ("DELETE", format!("{base}/skills/{english}"), None, [409, 409, 403, 403, 403, 403, 401]),
        ("POST", format!("{base}/groups"), Some(json!({"name": "Tier 1"})), [409, 409, 403, 403, 403, 403, 401]),
        ("GET", format!("{base}/groups/{tier1}"), None, [200, 200, 200, 200, 200, 403, 401]),
        ("PUT", format!("{base}/groups/{tier1}"), Some(json!({"name": " "})), [422, 422, 403, 403, 403, 403, 401]),
        ("DELETE", format!("{base}/groups/{tier1}"), None, [409, 409, 403, 403, 403, 403, 401]),
        ("GET", format!("{base}/pause-types/{lunch}"), None, [200, 200, 200, 200, 200, 403, 401]),
        ("PUT", format!("{base}/pause-types/{lunch}"), Some(json!({"name": "Break", "paid": true})), [409, 409, 403, 403, 403, 403, 401]),
        ("DELETE", format!("{base}/pause-types/999999"), None, [404, 404, 403, 403, 403, 403, 401]),
        ("GET", format!("{base}/queues/{support}"), None, [200, 200, 200, 200, 200, 403, 401]),
        ("PUT", format!("{base}/queues/{support}"), Some(json!({"name": "Sales"})), [409, 409, 409, 403, 403, 403, 401]),
        ("DELETE", format!("{base}/queues/999999"), None, [404, 404, 404, 403, 403, 403, 401]),
        ("POST", format!("{base}/queues/{support}/entries"), Some(json!({"entry": ""})), [422, 422, 422, 422, 403, 403, 401]),
        ("POST", format!("{base}/entries/nobody/assign"), Some(json!({"user": anna})), [404, 404, 404, 404, 403, 403, 401]),
        ("POST", format!("{base}/entries/nobody/abandon"), None, [404, 404, 404, 404, 403, 403, 401]),
        ("POST", format!("{base}/entries/nobody/withdraw"), Some(json!({"destination": {"kind": "hangup", "prompt": null}})), [404, 404, 404, 404, 403, 403, 401]),
        ("PUT", format!("{base}/users/{anna}"), Some(json!({"kind": "contact_centre", "roles": ["agent"], "full_name": "Anna", "login": "admin"})), [409, 409, 404, 403, 403, 403, 401]),
        ("DELETE", format!("{base}/users/999999"), None, [404, 404, 404, 403, 403, 403, 401]),
        ("PUT", format!("{base}/users/{anna}/password"), Some(json!({"password": "short"})), [422, 422, 404, 403, 422, 403, 401]),
        ("PUT", format!("{base}/users/{anna}/pin"), Some(json!({"pin": "12345"})), [422, 422, 404, 403, 422, 403, 401]),
        ("GET", format!("{base}/devices/{anna_phone}"), None, [200, 200, 404, 200, 403, 403, 401]),
        ("PUT", format!("{base}/devices/{anna_phone}"), Some(json!({"kind": "sip_phone", "name": "x", "sip_username": "piotr"})), [409, 409, 404, 403, 403, 403, 401]),
        ("DELETE", format!("{base}/devices/999999"), None, [404, 404, 404, 403, 403, 403, 401]),
        ("DELETE", format!("{base}/numbers/999999"), None, [404, 403, 403, 403, 403, 403, 401]),
        ("POST", format!("{base}/numbers/release"), Some(json!({"e164": "+420000000001"})), [409, 409, 403, 403, 403, 403, 401]),
        ("POST", format!("{base}/licences/withdrawals"), Some(json!({"kind": "voice", "count": 100})), [409, 409, 403, 403, 403, 403, 401]),
        ("POST", format!("{base}/licences/releases"), Some(json!({"user": piotr, "kind": "chat"})), [409, 409, 409, 403, 403, 403, 401]),
        ("POST", format!("{base}/licences/hand-over"), Some(json!({"from": anna, "to": anna})), [409, 409, 404, 403, 403, 403, 401]),
        ("PUT", format!("{base}/licences/ranks"), Some(json!({"ranks": [{"kind": "voice", "rank": 1}, {"kind": "voice", "rank": 2}]})), [422, 422, 403, 403, 403, 403, 401]),
        ("POST", format!("{base}/licences/device-packages"), Some(json!({"count": 0})), [422, 422, 403, 403, 403, 403, 401]),
        ("POST", format!("{base}/licences/device-package-withdrawals"), Some(json!({"count": 1})), [409, 409, 403, 403, 403, 403, 401]),
        ("POST", format!("{base}/users/{anna}/session/login"), Some(json!({"terminal": ""})), [422, 422, 404, 422, 422, 403, 401]),
        ("POST", format!("{base}/users/{anna}/session/logout"), Some(json!({"terminal": "t"})), [409, 409, 404, 409, 409, 403, 401]),
        ("POST", format!("{base}/users/{anna}/session/check-out"), Some(json!({"queue": support})), [409, 409, 404, 409, 409, 403, 401]),
        ("POST", format!("{base}/users/{anna}/session/pause"), Some(json!({"pause_type": lunch})), [409, 409, 404, 409, 409, 403, 401]),
        ("POST", format!("{base}/users/{anna}/session/unpause"), None, [409, 409, 404, 409, 409, 403, 401]),
        ("POST", format!("{base}/users/{anna}/session/activities"), Some(json!({"activity": "a"})), [409, 409, 404, 409, 409, 403, 401]),
        ("POST", format!("{base}/users/{anna}/session/activities/end"), Some(json!({"activity": "a"})), [409, 409, 404, 409, 409, 403, 401]),
        ("POST", format!("{base}/users/{anna}/session/disposition"), Some(json!({"code": "resolved"})), [409, 409, 404, 409, 409, 403, 401]),
        ("POST", format!("{base}/users/{anna}/session/wrap-up/end"), Some(json!({})), [409, 409, 404, 409, 409, 403, 401]),
    ];
    // The table names every route of the OpenAPI document.
    let (_, document) = api.call(None, "GET", "/api/v1/openapi.json", None).await;
    let mut untested = Vec::new();
    for (template, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            let covered = table.iter().any(|(m, path, _, _)| {
                m.eq_ignore_ascii_case(method) && matches_template(template, path)
            });
            if !covered {
                untested.push(format!("{} {template}", method.to_uppercase()));
            }
        }
    }
    assert!(
        untested.is_empty(),
        "routes missing from the access table: {untested:?}"
    );
    let mut failures = Vec::new();
    for (method, path, body, expected) in &table {
        for (column, want) in expected.iter().enumerate() {
            let token = roles.get(column).map(|login| tokens[login].as_str());
            let (status, reply) = api.call(token, method, path, body.clone()).await;
            if status != *want {
                failures.push(format!(
                    "{method} {path} as {}: {status}, expected {want}: {reply}",
                    roles.get(column).unwrap_or(&"anonymous")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "access table mismatches:\n{}",
        failures.join("\n")
    );

    // Bad input: a problem naming the rule, and nothing applied.
    let count = |users: &Value| users.as_array().map_or(0, Vec::len);
    let (_, before) = api
        .call(Some(&op), "GET", &format!("{base}/users"), None)
        .await;
    let raw = |body: &'static str, content_type: &'static str| {
        let http = api.http.clone();
        let url = format!("{}{base}/users", api.url);
        let op = op.clone();
        async move {
            let response = http
                .post(url)
                .bearer_auth(op)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("send");
            let status = response.status().as_u16();
            let value: Value = response.json().await.expect("problem json");
            (
                status,
                value["code"].as_str().unwrap_or_default().to_string(),
            )
        }
    };
    assert_eq!(
        raw("{\"kind\":", "application/json").await,
        (400, "MALFORMED_JSON".into())
    );
    assert_eq!(
        raw("{}", "text/plain").await,
        (415, "UNSUPPORTED_MEDIA_TYPE".into())
    );
    let big: &'static str =
        Box::leak(format!("{{\"full_name\":\"{}\"}}", "x".repeat(70_000)).into_boxed_str());
    assert_eq!(
        raw(big, "application/json").await,
        (413, "BODY_TOO_LARGE".into())
    );
    let bad_bodies = [
        (
            json!({"kind": "contact_centre", "roles": ["agent"], "full_name": "B", "login": "b1", "surprise": 1}),
            422,
            "INVALID_BODY",
        ),
        (
            json!({"kind": "contact_centre", "roles": "agent", "full_name": "B", "login": "b1"}),
            422,
            "INVALID_BODY",
        ),
        (
            json!({"kind": "contact_centre", "roles": ["agent"], "full_name": "B", "login": "b1", "pin": "54321"}),
            422,
            "PIN_SEQUENTIAL",
        ),
        (
            json!({"kind": "contact_centre", "roles": ["supervisor"], "full_name": "B", "login": "b1", "password": "Short-1!"}),
            422,
            "PASSWORD_TOO_SHORT_FOR_ROLE",
        ),
        (
            json!({"kind": "back_office", "roles": ["agent"], "full_name": "B", "login": "b1"}),
            422,
            "BACK_OFFICE_CANNOT_LOG_IN",
        ),
        (
            json!({"kind": "contact_centre", "roles": ["uc_user"], "full_name": "B", "login": "b1"}),
            422,
            "UC_REQUIRES_PBX_ROLE",
        ),
        (
            json!({"kind": "contact_centre", "roles": ["agent"], "full_name": "B", "login": "b1", "branch": 999_999}),
            404,
            "NOT_FOUND",
        ),
    ];
    for (body, status, code) in bad_bodies {
        let (got, reply) = api
            .call(
                Some(&op),
                "POST",
                &format!("{base}/users"),
                Some(body.clone()),
            )
            .await;
        assert_eq!(
            (got, reply["code"].as_str().unwrap_or_default()),
            (status, code),
            "{body} -> {reply}"
        );
        if reply["code"] != "INVALID_BODY" && reply["code"] != "NOT_FOUND" {
            assert!(
                reply["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with('V') || d.starts_with('U')),
                "the detail names the rule: {reply}"
            );
            assert!(reply["rule"].is_string(), "{reply}");
        }
    }
    let (status, reply) = api
        .call(
            Some(&op),
            "GET",
            &format!("{base}/users/not-a-number"),
            None,
        )
        .await;
    assert_eq!((status, reply["code"].as_str()), (404, Some("NOT_FOUND")));
    let (_, after) = api
        .call(Some(&op), "GET", &format!("{base}/users"), None)
        .await;
    assert_eq!(
        count(&before),
        count(&after),
        "refused requests applied nothing"
    );

    // An idempotent retry applies once and answers the same.
    let key_body = json!({"kind": "contact_centre", "roles": ["agent"], "full_name": "Retry", "login": "retry.me"});
    let mut answers = Vec::new();
    for _ in 0..3 {
        let response = api
            .http
            .post(format!("{}{base}/users", api.url))
            .bearer_auth(&op)
            .header("Idempotency-Key", "retry-1")
            .json(&key_body)
            .send()
            .await
            .expect("send");
        answers.push((
            response.status().as_u16(),
            response.json::<Value>().await.expect("json"),
        ));
    }
    assert!(
        answers.iter().all(|a| a == &answers[0]) && answers[0].0 == 201,
        "{answers:?}"
    );

    // API tokens for automation: made once, usable, revocable.
    let admin_token = tokens["admin"].clone();
    let (status, made) = api
        .call(
            Some(&admin_token),
            "POST",
            "/api/v1/auth/tokens",
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let secret = made["token"].as_str().expect("secret").to_string();
    let (status, me) = api
        .call(Some(&secret), "GET", "/api/v1/auth/me", None)
        .await;
    assert_eq!(
        (status, me["id"].as_u64()),
        (200, Some(id("admin"))),
        "the API token acts as its owner"
    );
    let (_, listed) = api
        .call(Some(&admin_token), "GET", "/api/v1/auth/tokens", None)
        .await;
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is shown once only"
    );
    let token_id = made["id"].as_u64().expect("id");
    let (status, _) = api
        .call(
            Some(&admin_token),
            "DELETE",
            &format!("/api/v1/auth/tokens/{token_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = api
        .call(Some(&secret), "GET", "/api/v1/auth/me", None)
        .await;
    assert_eq!(status, 401, "a revoked token authenticates nobody");

    // Prometheus metrics: Raft and HTTP.
    let metrics = api
        .http
        .get(format!("{}/metrics", api.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for name in [
        "carillon_raft_term 1",
        "carillon_raft_is_leader 1",
        "carillon_raft_commit_index",
        "carillon_http_requests_total{",
        "carillon_raft_requests_total{",
    ] {
        assert!(metrics.contains(name), "/metrics has {name}");
    }

    // Secrets are never returned, nor logged.
    let secrets: Vec<String> = file["users"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(file["sip_accounts"].as_array().into_iter().flatten())
        .filter_map(|u| u["password"].as_str().map(str::to_string))
        .collect();
    for path in [
        format!("{base}/users"),
        format!("{base}/devices"),
        format!("{base}/users/{anna}"),
    ] {
        let (_, body) = api.call(Some(&op), "GET", &path, None).await;
        let text = body.to_string();
        assert!(
            !text.contains("argon2")
                && !text.contains("phc")
                && !text.contains("ha1")
                && !text.contains("fingerprint"),
            "{path}: {text}"
        );
        assert!(
            secrets.iter().all(|s| !text.contains(s.as_str())),
            "{path} leaks a password"
        );
    }
    let log = std::fs::read_to_string(&demo.log).expect("log");
    assert!(
        log.contains("logged in"),
        "the log is the node's tracing output"
    );
    assert!(
        secrets.iter().all(|s| !log.contains(s.as_str())),
        "a password appears in the log"
    );

    // SIGTERM stops it cleanly; a restart from the same directory keeps everything.
    let log_path = demo.log.clone();
    assert_eq!(demo.terminate(), Some(0), "clean exit on SIGTERM");
    assert!(std::fs::read_to_string(log_path)
        .expect("log")
        .contains("node stopped"));
    let demo = Demo::start(dir.path(), admin_port, raft_port);
    api.wait_ready().await;
    let token = api.login("admin", &password_of(&file, "admin")).await;
    let (status, users_after) = api
        .call(Some(&token), "GET", &format!("{base}/users"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        count(&users_after),
        count(&after) + 1,
        "every user survived the restart"
    );
    let (_, report) = api
        .call(Some(&token), "GET", &format!("{base}/licences"), None)
        .await;
    let voice = report["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .find(|k| k["kind"] == "voice")
        .expect("voice");
    assert_eq!(
        (voice["pool"].as_u64(), voice["in_use"].as_u64()),
        (Some(5), Some(2)),
        "{report}"
    );
    assert_eq!(demo.terminate(), Some(0));
}

/// Whether a concrete path fits an OpenAPI path template (`{x}` matches one segment).
fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}')) || t == p)
}
