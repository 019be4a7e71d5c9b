//! Phone feature codes per tenant (A3), from the outside: the administrator
//! reads and replaces the tenant's codes through the API (bad tables are
//! refused with the rule they break and change nothing; an agent may read
//! them, not change them), and the demo agent's phone (SIPp, digest) logs
//! in and out with the new codes while the old ones reach nothing; the
//! agent's state names the phone as the cause (A4).

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::centre::Centre;
use common::password_of;
use common::raw::{final_answer, invite_from, PCMU_OFFER};
use common::sip_demo::{scenario, sipp};
use common::sipp::free_udp_port;
use serde_json::{json, Value};

/// Dials `code` (URI-escaped) from `username`'s phone with `feature.xml`;
/// SIPp's exit code and output.
fn dial(
    centre: &Centre,
    dir: &std::path::Path,
    code: &str,
    username: &str,
    password: &str,
) -> (i32, String) {
    let inf = dir.join(format!("dial-{}.csv", code.replace(['*', '%'], "_")));
    std::fs::write(
        &inf,
        format!(
            "SEQUENTIAL\n{code};[authentication username={username} password={password}];{};{};\n",
            centre.domain,
            free_udp_port()
        ),
    )
    .expect("injection");
    let (script, inf, port) = (
        scenario("feature.xml"),
        inf.display().to_string(),
        free_udp_port().to_string(),
    );
    sipp(
        dir,
        centre.sip,
        &[
            "-sf",
            &script,
            "-inf",
            &inf,
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-m",
            "1",
        ],
    )
}

fn demo_agent(file: &Value, login: &str) -> (u64, String) {
    let agent = file["agents"]
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["login"] == login)
        .expect("the demo agent");
    (
        agent["user_id"].as_u64().expect("user_id"),
        agent["pin"].as_str().expect("pin").to_string(),
    )
}

fn sip_password(file: &Value, username: &str) -> String {
    file["sip_accounts"]
        .as_array()
        .expect("sip_accounts")
        .iter()
        .find(|a| a["username"] == username)
        .expect("the demo account")["password"]
        .as_str()
        .expect("password")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_sets_its_own_feature_codes_and_its_phones_dial_those() {
    let dir = tempfile::tempdir().expect("temp dir");
    let centre = Centre::start(dir.path(), &[]).await;
    let file = centre.demo.demo_json();
    let (anna, pin) = demo_agent(&file, "agent.anna");
    let password = sip_password(&file, "anna");
    let path = format!("/api/v1/tenants/{}/feature-codes", centre.tenant);

    let defaults = centre.ok("GET", &path, None).await;
    assert_eq!(
        defaults,
        json!({"login": "*100", "ready_in_campaign": "#300#", "ready_without_campaign": "#302#",
               "pause": "*200", "unpause": "*201", "logout": "404#"})
    );
    let with = |field: &str, code: &str| {
        let mut body = defaults.clone();
        body[field] = json!(code);
        body
    };
    for (body, status, code) in [
        (with("login", "100"), 422, "FEATURE_CODE_INVALID"),
        (with("pause", "*2x"), 422, "FEATURE_CODE_INVALID"),
        (with("unpause", "*20"), 422, "FEATURE_CODE_AMBIGUOUS"),
        (with("logout", "*100"), 422, "FEATURE_CODE_AMBIGUOUS"),
        (json!({"login": "*55"}), 422, "INVALID_BODY"),
    ] {
        let (got, reply) = centre
            .api
            .call(Some(&centre.token), "PUT", &path, Some(body.clone()))
            .await;
        assert_eq!(
            (got, reply["code"].as_str().unwrap_or("")),
            (status, code),
            "{body}: {reply}"
        );
    }
    assert_eq!(
        centre.ok("GET", &path, None).await,
        defaults,
        "refused tables change nothing"
    );

    let codes = json!({"login": "*55", "ready_in_campaign": "#31#", "ready_without_campaign": "#32#",
                       "pause": "*56", "unpause": "*57", "logout": "*58#"});
    let agent_token = centre
        .api
        .login("agent.anna", &password_of(&file, "agent.anna"))
        .await;
    let (status, _) = centre
        .api
        .call(Some(&agent_token), "PUT", &path, Some(codes.clone()))
        .await;
    assert_eq!(status, 403, "an agent does not change the codes");
    assert_eq!(centre.ok("PUT", &path, Some(codes.clone())).await, codes);
    let (status, read) = centre
        .api
        .call(Some(&agent_token), "GET", &path, None)
        .await;
    assert_eq!(
        (status, &read),
        (200, &codes),
        "an agent reads its tenant's codes"
    );

    // The old login code is no number of the tenant any more.
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let old = format!("sip:*100*{pin}@{}", centre.domain);
    let from = format!("sip:anna@{}", centre.domain);
    let (status, reason, _) = final_answer(
        &socket,
        centre.sip,
        &invite_from(&old, "old-code", &from, PCMU_OFFER),
    );
    assert_eq!(status, 404, "{reason}");
    assert!(
        reason.contains("neither a DID nor an internal number"),
        "{reason}"
    );
    assert_eq!(centre.session(anna).await, Value::Null, "not logged in");

    let (code, out) = dial(
        &centre,
        dir.path(),
        &format!("*55*{pin}"),
        "anna",
        &password,
    );
    assert_eq!(code, 0, "*55*PIN is answered, played and hung up: {out}");
    let session = centre
        .wait_session(anna, "logged in by *55*PIN", Duration::from_secs(5), |s| {
            s["terminals"].as_array().is_some_and(|t| !t.is_empty())
        })
        .await;
    assert!(
        session["terminals"].as_array().is_some_and(|t| t
            .iter()
            .any(|t| t.as_str().is_some_and(|t| t.starts_with("phone")))),
        "the phone's terminal is logged in: {session}"
    );
    let terminal = session["terminals"][0].as_str().unwrap_or("").to_string();
    let device: u64 = terminal
        .strip_prefix("phone-")
        .and_then(|d| d.parse().ok())
        .expect("phone-<device>");
    let state = centre.state(anna).await;
    assert_eq!(
        (&state["last_change"]["by"], &state["last_change"]["what"]),
        (
            &json!({"kind": "phone", "device": device}),
            &json!({"action": "logged_in", "terminal": terminal})
        ),
        "A4: the login names the phone that caused it: {state}"
    );

    let (code, out) = dial(&centre, dir.path(), "*58%23", "anna", &password);
    assert_eq!(code, 0, "*58# is answered, played and hung up: {out}");
    centre
        .wait_session(anna, "logged out by *58#", Duration::from_secs(5), |s| {
            s.is_null() || s["terminals"].as_array().is_some_and(|t| t.is_empty())
        })
        .await;
    let state = centre.state(anna).await;
    assert!(
        state["state"] == "logged_out"
            && state["last_change"]["by"] == json!({"kind": "phone", "device": device})
            && state["last_change"]["what"]["action"] == "logged_out",
        "logged out by its phone, and every node says so: {state}"
    );
    assert_eq!(centre.demo.terminate(), Some(0));
}
