//! `carillon demo` as a user meets it: a real process on loopback, its
//! credentials from demo.json, the admin API over HTTP. Checks the access
//! table (every route x every role), tenant isolation, bad input, that
//! secrets are never returned or logged, a clean SIGTERM, and that a
//! restart from the same directory keeps everything.

mod access;
mod audit;
#[path = "../common/mod.rs"]
mod common;
mod sessions;

use common::{free_port, password_of, Api, Demo};
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_api_as_users_meet_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (admin_port, raft_port) = (free_port(), free_port());
    let demo = Demo::start_with(
        dir.path(),
        admin_port,
        raft_port,
        &["--cors-origin", sessions::PANEL_ORIGIN],
    );
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

    let base = format!("/api/v1/tenants/{t}");
    // The access table: every route x every role (`access.rs`).
    let ids = access::Ids {
        t,
        o,
        anna,
        piotr,
        support,
        prague,
        english,
        tier1,
        lunch,
        anna_phone,
        olga,
    };
    // The table runs with sessions of its own: its last row logs them out.
    let mut table_tokens: BTreeMap<&str, String> = BTreeMap::new();
    for login in roles {
        table_tokens.insert(login, api.login(login, &password_of(&file, login)).await);
    }
    access::check(&api, &access::table(&ids), &roles, &table_tokens).await;
    for (login, token) in &table_tokens {
        let (status, body) = api.call(Some(token), "GET", "/api/v1/auth/me", None).await;
        assert_eq!(status, 401, "{login}'s logged-out token: {body}");
    }
    sessions::check(&api, &file).await;
    audit::check(&api, &file, &op).await;

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
    // Input hygiene: refused strings per field, each naming the field and
    // its rule; nothing is created.
    let user = |patch: Value| {
        let mut body =
            json!({"kind": "contact_centre", "roles": ["agent"], "full_name": "B", "login": "b1"});
        body.as_object_mut()
            .expect("object")
            .extend(patch.as_object().expect("patch").clone());
        body
    };
    let hygiene = [
        (
            "skills",
            json!({"name": "Eng\u{0}lish"}),
            "name",
            "TEXT_CONTROL_CHARACTER",
        ),
        (
            "groups",
            json!({"name": "Tier\u{85}1"}),
            "name",
            "TEXT_CONTROL_CHARACTER",
        ),
        (
            "groups",
            json!({"name": "Tier 9", "description": "bell\u{7}"}),
            "description",
            "TEXT_CONTROL_CHARACTER",
        ),
        (
            "pause-types",
            json!({"name": "Lunch\u{202e}", "paid": true}),
            "name",
            "TEXT_BIDI_CONTROL",
        ),
        (
            "branches",
            json!({"name": "x".repeat(201), "country": "CZ", "timezone": "Europe/Prague"}),
            "name",
            "TEXT_TOO_LONG",
        ),
        (
            "users",
            user(json!({"full_name": "Anna\nNovak"})),
            "full_name",
            "TEXT_CONTROL_CHARACTER",
        ),
        (
            "users",
            user(json!({"description": "\u{2066}hidden\u{2069}"})),
            "description",
            "TEXT_BIDI_CONTROL",
        ),
        (
            "users",
            user(json!({"email": "a@b.cz\u{0}"})),
            "email",
            "TEXT_CONTROL_CHARACTER",
        ),
        (
            "users",
            user(json!({"avatar_url": format!("https://x.cz/{}", "a".repeat(2048))})),
            "avatar_url",
            "TEXT_TOO_LONG",
        ),
        (
            "queues",
            json!({"name": "Sales\u{202d}"}),
            "name",
            "TEXT_BIDI_CONTROL",
        ),
        (
            "devices",
            json!({"kind": "mobile", "name": "Phone\u{1b}[2J", "external_number": "+420600000009"}),
            "name",
            "TEXT_CONTROL_CHARACTER",
        ),
    ];
    for (area, body, field, code) in hygiene {
        let (got, reply) = api
            .call(
                Some(&op),
                "POST",
                &format!("{base}/{area}"),
                Some(body.clone()),
            )
            .await;
        assert!(
            got == 422
                && reply["code"] == code
                && reply["rule"] == "V6"
                && reply["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with(&format!("V6: {field}: "))),
            "{area} {body} -> {got} {reply}"
        );
    }
    let (_, reply) = api
        .call(
            Some(&op),
            "POST",
            "/api/v1/auth/tokens",
            Some(json!({"name": "ci\u{0}"})),
        )
        .await;
    assert_eq!(reply["code"], "TEXT_CONTROL_CHARACTER", "{reply}");
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
