//! Sessions, security headers and CORS as a user meets them: a user lists
//! its sessions and ends any, logout ends the token at once, an API token
//! cannot "log out", every response carries the security headers, and a
//! browser page of another origin is refused unless the demo lets it in
//! (`--cors-origin https://panel.example.test`).

use serde_json::{json, Value};

use super::common::{password_of, Api};

/// The demo's configured CORS origin (`Demo::start_with` in `main.rs`).
pub const PANEL_ORIGIN: &str = "https://panel.example.test";

async fn login_as(api: &Api, login: &str, password: &str, agent: &str) -> String {
    let reply: Value = api
        .http
        .post(format!("{}/api/v1/auth/login", api.url))
        .header("user-agent", agent)
        .json(&json!({"login": login, "password": password}))
        .send()
        .await
        .expect("the demo answers")
        .json()
        .await
        .expect("a session");
    reply["token"].as_str().expect("token").to_string()
}

async fn sessions(api: &Api, token: &str) -> Vec<Value> {
    let (status, list) = api
        .call(Some(token), "GET", "/api/v1/auth/sessions", None)
        .await;
    assert_eq!(status, 200, "{list}");
    list.as_array().expect("sessions").clone()
}

fn find<'a>(list: &'a [Value], agent: &str) -> &'a Value {
    list.iter()
        .find(|s| s["user_agent"] == agent)
        .unwrap_or_else(|| panic!("no session of {agent}: {list:?}"))
}

pub async fn check(api: &Api, file: &Value) {
    let password = password_of(file, "agent.anna");
    let desk = login_as(api, "agent.anna", &password, "desk-panel/1.0").await;
    let phone = login_as(api, "agent.anna", &password, "phone-app/2.0").await;

    // Both sessions are listed, with where they came from; one is current.
    let list = sessions(api, &desk).await;
    let (d, p) = (find(&list, "desk-panel/1.0"), find(&list, "phone-app/2.0"));
    assert_eq!(
        (d["current"].as_bool(), p["current"].as_bool()),
        (Some(true), Some(false)),
        "{list:?}"
    );
    assert_eq!(d["source"], "127.0.0.1", "{d}");
    assert!(
        d["expires_at_ms"].as_u64() > d["opened_at_ms"].as_u64(),
        "{d}"
    );
    let phone_id = p["id"].as_u64().expect("id");

    // Nobody else can end it; its owner can, from the other session.
    let admin = api.login("admin", &password_of(file, "admin")).await;
    let path = format!("/api/v1/auth/sessions/{phone_id}");
    let (status, body) = api.call(Some(&admin), "DELETE", &path, None).await;
    assert_eq!(status, 404, "another user's session is not found: {body}");
    let (status, body) = api.call(Some(&desk), "DELETE", &path, None).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = api.call(Some(&phone), "GET", "/api/v1/auth/me", None).await;
    assert_eq!(status, 401, "the ended session's token: {body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("session has ended")),
        "{body}"
    );
    let (status, _) = api.call(Some(&desk), "DELETE", &path, None).await;
    assert_eq!(status, 404, "an ended session is gone");
    assert!(
        !sessions(api, &desk)
            .await
            .iter()
            .any(|s| s["id"] == phone_id),
        "it is no longer listed"
    );

    // An API token has no session to log out of.
    let (status, made) = api
        .call(
            Some(&desk),
            "POST",
            "/api/v1/auth/tokens",
            Some(json!({"name": "sessions-test"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let secret = made["token"].as_str().expect("secret");
    let (status, body) = api
        .call(Some(secret), "POST", "/api/v1/auth/logout", None)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("NOT_A_SESSION"))
    );

    // Logout ends the session at once; the password still opens a new one.
    let (status, body) = api
        .call(Some(&desk), "POST", "/api/v1/auth/logout", None)
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, _) = api.call(Some(&desk), "GET", "/api/v1/auth/me", None).await;
    assert_eq!(status, 401, "a logged-out token is refused");
    let again = login_as(api, "agent.anna", &password, "desk-panel/1.0").await;
    let (status, _) = api.call(Some(&again), "GET", "/api/v1/auth/me", None).await;
    assert_eq!(status, 200);

    headers(api, &again).await;
    cors(api, &again).await;
}

/// Every response carries the security headers; API answers are not cached.
async fn headers(api: &Api, token: &str) {
    for (path, api_path) in [
        ("/healthz", false),
        ("/api/v1/auth/me", true),
        ("/nowhere", false),
    ] {
        let response = api
            .http
            .get(format!("{}{path}", api.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("answer");
        let h = response.headers();
        let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert_eq!(get("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(get("x-frame-options"), "DENY", "{path}");
        assert_eq!(get("referrer-policy"), "no-referrer", "{path}");
        assert!(
            get("content-security-policy").contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(get("cache-control") == "no-store", api_path, "{path}");
        assert_eq!(
            get("strict-transport-security"),
            "",
            "{path}: no HSTS over plain HTTP"
        );
    }
}

/// The configured origin and the demo's own are let in; any other origin is
/// refused before a handler runs.
async fn cors(api: &Api, token: &str) {
    let own = api.url.clone();
    for origin in [PANEL_ORIGIN, own.as_str()] {
        let preflight = api
            .http
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/v1/auth/me", api.url),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
            .await
            .expect("answer");
        assert_eq!(preflight.status().as_u16(), 204, "{origin}");
        let allowed = |r: &reqwest::Response, name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        assert_eq!(allowed(&preflight, "access-control-allow-origin"), origin);
        assert!(allowed(&preflight, "access-control-allow-headers").contains("authorization"));
        let response = api
            .http
            .get(format!("{}/api/v1/auth/me", api.url))
            .header("origin", origin)
            .bearer_auth(token)
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), 200, "{origin}");
        assert_eq!(allowed(&response, "access-control-allow-origin"), origin);
        assert!(allowed(&response, "vary").contains("origin"));
    }
    // Another origin: refused, and what it asked for is not done.
    let (_, before) = api
        .call(Some(token), "GET", "/api/v1/auth/tokens", None)
        .await;
    for method in [reqwest::Method::OPTIONS, reqwest::Method::POST] {
        let response = api
            .http
            .request(method.clone(), format!("{}/api/v1/auth/tokens", api.url))
            .header("origin", "https://evil.example.test")
            .header("access-control-request-method", "POST")
            .bearer_auth(token)
            .json(&json!({"name": "from-evil"}))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status().as_u16(), 403, "{method}");
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{method}"
        );
        let body: Value = response.json().await.expect("problem");
        assert_eq!(body["code"], "CORS_ORIGIN_REFUSED", "{method}: {body}");
    }
    let (_, after) = api
        .call(Some(token), "GET", "/api/v1/auth/tokens", None)
        .await;
    assert_eq!(before, after, "the refused request made no token");
}
