//! After-call work over SIP and the API (A4, C4): an agent in both queues
//! takes a Support call on its SIPp phone; in its after-call work it is not
//! offered the Sales caller waiting meanwhile; a disposition Support does
//! not list is refused naming the rule; ending the work early with one of
//! Support's codes writes it into the record, and the Sales caller rings
//! the agent at once.
//!
//! Needs SIPp (Debian `sip-tester`; `scripts/install-deps.sh`).

mod common;

use std::time::Duration;

use common::scene::{answering, Phone, Scene};
use serde_json::json;

const SECOND: Duration = Duration::from_secs(1);

/// A phone that answers after 200 ms and hangs up after 1 s.
const ANSWERS: Phone = answering(1_000);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_in_after_call_work_takes_no_other_queues_call_until_it_ends_it_with_a_disposition(
) {
    let mut scene = Scene::new(
        &[],
        |spec| {
            spec.insert("wrap_up_s".into(), json!(120));
            spec.insert("disposition_codes".into(), json!(["resolved", "escalated"]));
        },
        1,
    )
    .await;
    let sales = scene.centre.queue("Sales");
    scene
        .centre
        .configure(sales.id, |spec| {
            for key in ["opening_hours", "holidays"] {
                spec.insert(key.into(), json!([]));
            }
            spec.insert("wrap_up_s".into(), json!(0));
        })
        .await;
    scene.start_phone(0, ANSWERS).await;
    scene.log_in_all().await;
    let (tenant, user) = (scene.centre.tenant, scene.agents[0].user);
    let session = format!("/api/v1/tenants/{tenant}/users/{user}/session");
    scene
        .centre
        .ok(
            "POST",
            &format!("{session}/check-in"),
            Some(json!({"queue": sales.id})),
        )
        .await;

    let mut support_call = scene.call(20_000).await;
    scene
        .wait_phone(0, &support_call.number, "answered", 5 * SECOND)
        .await;
    support_call.finish(10 * SECOND).await;
    scene
        .centre
        .wait_user(user, "state", "in after-call work", 5 * SECOND, |s| {
            s["state"] == "wrap_up"
        })
        .await;

    let mut sales_call = scene.call_to(&sales.did, 20_000).await;
    tokio::time::sleep(2 * SECOND).await;
    assert!(
        scene.phone_steps(0, &sales_call.number).is_empty(),
        "the agent in Support's after-call work is not offered Sales' caller: {:?}",
        scene.phone_calls(0)
    );

    let (status, problem) = scene
        .centre
        .api
        .call(
            Some(&scene.centre.token),
            "POST",
            &format!("{session}/disposition"),
            Some(json!({"code": "won"})),
        )
        .await;
    assert!(
        status == 422 && problem["code"] == "DISPOSITION_UNKNOWN" && problem["rule"] == "C4",
        "{status} {problem}"
    );
    scene
        .centre
        .ok(
            "POST",
            &format!("{session}/wrap-up/end"),
            Some(json!({"disposition": "resolved"})),
        )
        .await;
    let rang = scene
        .wait_phone(0, &sales_call.number, "invite", 5 * SECOND)
        .await;
    sales_call.finish(15 * SECOND).await;
    let ended = support_call.step("bye_in").or(support_call.step("bye_out"));
    assert!(ended.is_some(), "{:?}", support_call.steps());

    let record = scene.record(&support_call.number).await;
    let wrap_up = record["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .find(|s| s["kind"] == "wrap_up")
        .cloned()
        .expect("a wrap-up segment");
    let lasted = wrap_up["to_ms"].as_u64().unwrap_or(0) - wrap_up["from_ms"].as_u64().unwrap_or(0);
    assert!(
        record["disposition"] == "resolved" && (2_000..20_000).contains(&lasted),
        "the disposition, and after-call work ended early ({lasted} ms of 120 s): {record}"
    );
    assert!(rang.at_ms() > 0.0);
}
