//! Q8 over SIP: a caller who hangs up while waiting and calls again from
//! the same number within the queue's `rejoin_window_s` resumes its place,
//! ahead of a caller who came after it the first time; the agent takes it
//! first.
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
async fn a_caller_back_within_the_window_resumes_its_place() {
    let mut scene = Scene::new(
        &[],
        |spec| {
            spec.insert("wrap_up_s".into(), json!(0));
            spec.insert("rejoin_window_s".into(), json!(60));
        },
        1,
    )
    .await;
    let (queue, did) = (scene.queue.id, scene.queue.did.clone());
    scene.start_phone(0, ANSWERS).await;
    let back = "+420779000001";
    let mut first = scene.call_from(&did, back, 5_000).await;
    scene.wait_waiting(queue, back, 5 * SECOND).await;
    let left = scene.entry_of(queue, back).await;
    let mut later = scene.call(30_000).await;
    scene.wait_waiting(queue, &later.number, 5 * SECOND).await;
    first.finish(10 * SECOND).await;
    assert!(first.step("bye_out").is_some(), "the first caller hung up");
    // Its activity closed (the place is kept then) before it calls again.
    let abandoned = scene.any_record(back).await;
    assert_eq!(abandoned["outcome"]["kind"], "abandoned", "{abandoned}");

    let mut again = scene.call_from(&did, back, 30_000).await;
    scene.wait_waiting(queue, back, 5 * SECOND).await;
    let entries = scene.entries(queue).await;
    assert!(
        entries[0]["call"]["caller"] == back
            && entries[0]["resumed_from"] == left.as_str()
            && entries[1]["call"]["caller"] == later.number.as_str(),
        "the returning caller is first, in the place it left: {entries}"
    );

    scene.log_in_all().await;
    again.finish(20 * SECOND).await;
    later.finish(20 * SECOND).await;
    let order: Vec<String> = scene
        .phone_calls(0)
        .iter()
        .filter_map(|steps| steps[0].rest.first().cloned())
        .collect();
    assert_eq!(
        order,
        [back.to_string(), later.number.clone()],
        "the agent takes the returning caller first"
    );
}
