//! The access table of the demo's API: every route x every role (columns in
//! the roles' order, then anonymous), and the check that it names every
//! route of the OpenAPI document.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::common::Api;

/// One row: method, path, body, the status expected for each column.
pub type Row = (&'static str, String, Option<Value>, [u16; 7]);

/// The ids the rows name.
#[derive(Debug, Clone, Copy)]
pub struct Ids {
    pub t: u64,
    pub o: u64,
    pub anna: u64,
    pub piotr: u64,
    pub support: u64,
    pub prague: u64,
    pub english: u64,
    pub tier1: u64,
    pub lunch: u64,
    pub anna_phone: u64,
    pub olga: u64,
}

/// The rows, with the demo's ids.
pub fn table(ids: &Ids) -> Vec<Row> {
    let Ids {
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
    } = *ids;
    let base = format!("/api/v1/tenants/{t}");
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
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
            "/api/v1/auth/sessions".into(),
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
        // Three free failures of (nobody, 127.0.0.1), then a 1 s delay
        // (the row takes milliseconds): 429 `LOGIN_THROTTLED`.
        ("POST", "/api/v1/auth/login".into(), Some(json!({"login": "nobody", "password": "x"})), [401, 401, 401, 429, 429, 429, 429]),
        ("GET", "/api/v1/lockouts".into(), None, [200, 403, 403, 403, 403, 403, 401]),
        ("DELETE", "/api/v1/lockouts/nobody".into(), None, [404, 403, 403, 403, 403, 403, 401]),
        ("GET", format!("{base}/lockouts"), None, [200, 200, 200, 403, 403, 403, 401]),
        ("DELETE", format!("{base}/lockouts/nobody"), None, [404, 404, 404, 403, 403, 403, 401]),
        ("POST", "/api/v1/auth/tokens".into(), Some(json!({"name": ""})), [422, 422, 422, 422, 422, 422, 401]),
        ("DELETE", "/api/v1/auth/tokens/999999".into(), None, [404, 404, 404, 404, 404, 404, 401]),
        ("DELETE", "/api/v1/auth/sessions/999999".into(), None, [404, 404, 404, 404, 404, 404, 401]),
        ("POST", "/api/v1/auth/password-reset".into(), Some(json!({})), [422, 422, 422, 422, 422, 422, 422]),
        ("POST", "/api/v1/auth/password-reset/confirm".into(), Some(json!({"token": "rst_x", "password": "x"})), [422, 422, 422, 422, 422, 422, 422]),
        ("GET", "/api/v1/audit".into(), None, [200, 403, 403, 403, 403, 403, 401]),
        ("GET", format!("{base}/audit"), None, [200, 200, 403, 403, 403, 403, 401]),
        ("GET", format!("/api/v1/tenants/{o}/audit"), None, [200, 404, 404, 404, 404, 404, 401]),
        ("GET", format!("{base}/audit/retention"), None, [200, 200, 403, 403, 403, 403, 401]),
        ("PUT", format!("{base}/audit/retention"), Some(json!({"days": 0})), [422, 422, 403, 403, 403, 403, 401]),
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
        // Last: it ends the sessions the table ran with.
        ("POST", "/api/v1/auth/logout".into(), None, [204, 204, 204, 204, 204, 204, 401]),
    ];
    table
}

/// Checks that `table` covers every route of the API's OpenAPI document and
/// that every row answers each role (by its token in `tokens`, `roles`
/// order, then anonymous) with its expected status.
pub async fn check(api: &Api, table: &[Row], roles: &[&str], tokens: &BTreeMap<&str, String>) {
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
    for (method, path, body, expected) in table {
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
}

/// Whether a concrete path fits an OpenAPI path template (`{x}` matches one segment).
fn matches_template(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}')) || t == p)
}
