//! An agent's A4 state through the API, as a supervisor and the agent meet
//! it: the agent logs in from its panel, a supervisor of its branch forces a
//! pause (S2), the agent ends it; after each step
//! `GET .../users/{u}/state` names the state, what changed and who caused
//! it, and a team administrator of another branch does not see the agent.

mod common;

use common::centre::Centre;
use common::password_of;
use serde_json::{json, Value};

async fn as_user(
    centre: &Centre,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    centre.api.call(Some(token), method, path, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_names_who_changed_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let centre = Centre::start(dir.path(), &[]).await;
    let file = centre.demo.demo_json();
    let token = |login: &str| {
        let password = password_of(&file, login);
        let api = &centre.api;
        let login = login.to_string();
        async move { api.login(&login, &password).await }
    };
    let (anna_token, boss_token, warsaw_token) = (
        token("agent.anna").await,
        token("supervisor").await,
        token("team.admin").await,
    );
    let id_of = |token: String| {
        let centre = &centre;
        async move {
            let (status, me) = as_user(centre, &token, "GET", "/api/v1/auth/me", None).await;
            assert_eq!(status, 200, "{me}");
            me["id"].as_u64().expect("id")
        }
    };
    let anna = id_of(anna_token.clone()).await;
    let boss = id_of(boss_token.clone()).await;
    let base = format!("/api/v1/tenants/{}", centre.tenant);
    let state_path = format!("{base}/users/{anna}/state");
    let pause_type = centre
        .ok("GET", &format!("{base}/pause-types"), None)
        .await
        .as_array()
        .and_then(|l| l.first().cloned())
        .expect("a pause type")["id"]
        .clone();

    let state = centre.state(anna).await;
    assert_eq!(
        (&state["user"], &state["state"]),
        (&json!(anna), &json!("logged_out")),
        "{state}"
    );

    let (status, reply) = as_user(
        &centre,
        &anna_token,
        "POST",
        &format!("{base}/users/{anna}/session/login"),
        Some(json!({"terminal": "panel"})),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let (_, state) = as_user(&centre, &anna_token, "GET", &state_path, None).await;
    assert_eq!(
        (&state["last_change"]["by"], &state["last_change"]["what"]),
        (
            &json!({"kind": "user", "user": anna}),
            &json!({"action": "logged_in", "terminal": "panel"})
        ),
        "the agent logged itself in: {state}"
    );

    let (status, reply) = as_user(
        &centre,
        &boss_token,
        "POST",
        &format!("{base}/users/{anna}/session/pause"),
        Some(json!({"pause_type": pause_type})),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let (_, state) = as_user(&centre, &boss_token, "GET", &state_path, None).await;
    assert_eq!(state["state"], "paused", "{state}");
    assert_eq!(
        (&state["last_change"]["by"], &state["last_change"]["what"]),
        (
            &json!({"kind": "user", "user": boss}),
            &json!({"action": "paused", "pause_type": pause_type, "deferred": false})
        ),
        "the supervisor paused it: {state}"
    );
    let (status, _) = as_user(&centre, &warsaw_token, "GET", &state_path, None).await;
    assert_eq!(
        status, 404,
        "Warsaw's team administrator does not see a Prague agent"
    );

    let (status, reply) = as_user(
        &centre,
        &anna_token,
        "POST",
        &format!("{base}/users/{anna}/session/unpause"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let state = centre.state(anna).await;
    assert!(
        state["last_change"]["by"] == json!({"kind": "user", "user": anna})
            && state["last_change"]["what"] == json!({"action": "unpaused"})
            && state["state"] != "paused"
            && state["last_change"]["at_ms"].is_u64(),
        "the agent ended the pause: {state}"
    );
    assert_eq!(centre.demo.terminate(), Some(0));
}
