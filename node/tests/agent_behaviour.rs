//! How agents' phones behave decides where calls go (Q1, Q4, A8), over SIP
//! with SIPp agents' phones and SIPp callers, the Support queue configured
//! through the admin API for each test:
//! - a phone nobody answers is passed over after the queue's ring timeout
//!   (CANCEL), and two misses in a row pause its agent with the queue's
//!   auto-pause type, seen in the agent's session and state (caused by the
//!   missed-offers rule);
//! - 486 and 603 back the agent off: not offered again within the
//!   back-off, offered again after it, while another agent takes the calls;
//! - a phone whose registration expires leaves its agent logged in but not
//!   offered calls (disconnected, A8, recorded with its rule and time);
//! - a caller who hangs up while an agent's phone rings has it CANCELled,
//!   and the agent is idle again (offered the next call at once);
//! - a ring-all queue whose two agents answer at once connects one (the
//!   caller's RTP reaches it alone) and ends the other's leg (CANCEL or
//!   BYE), which is idle again.
//!
//! Needs SIPp (Debian `sip-tester`; `scripts/install-deps.sh`).

mod common;

use std::time::Duration;

use common::rtp::Tag;
use common::scene::{Phone, Scene};
use common::sipp::{Behaviour, Event};
use serde_json::{json, Value};

/// A phone that rings and never answers.
const SILENT: Phone = Phone {
    behaviour: Behaviour::Answers {
        ring_ms: 600_000,
        hold_ms: 1_000,
    },
    expires_s: 300,
};

/// A phone that answers after 200 ms and hangs up after a second of talk.
const ANSWERS: Phone = Phone {
    behaviour: Behaviour::Answers {
        ring_ms: 200,
        hold_ms: 1_000,
    },
    expires_s: 300,
};

const SECOND: Duration = Duration::from_secs(1);

fn at(events: &[Event], kind: &str) -> Option<f64> {
    events.iter().find(|e| e.kind == kind).map(Event::at_ms)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_passes_the_call_on_after_the_ring_timeout_and_two_misses_pause_the_agent() {
    let mut scene = Scene::new(&[], |_| {}, 2).await;
    let base = format!("/api/v1/tenants/{}", scene.centre.tenant);
    let missed = scene
        .centre
        .ok(
            "POST",
            &format!("{base}/pause-types"),
            Some(json!({"name": "Missed offers", "paid": false})),
        )
        .await["id"]
        .clone();
    scene
        .centre
        .configure(scene.queue.id, |spec| {
            spec.insert("strategy".into(), json!({"kind": "linear"}));
            spec.insert("ring_timeout_s".into(), json!(5));
            spec.insert("auto_pause_after_missed".into(), json!(2));
            spec.insert("auto_pause_type".into(), missed.clone());
            spec.insert("wrap_up_s".into(), json!(0));
        })
        .await;
    scene.start_phone(0, SILENT).await;
    scene.start_phone(1, ANSWERS).await;
    scene.log_in_all().await;
    for round in 0..2 {
        let mut call = scene.call(60_000).await;
        // Linear: the first agent rings first, for the ring timeout.
        let rang = scene
            .wait_phone(0, &call.number, "invite", 5 * SECOND)
            .await;
        let cancelled = scene
            .wait_phone(0, &call.number, "cancelled", 8 * SECOND)
            .await;
        let rang_ms = cancelled.at_ms() - rang.at_ms();
        assert!(
            (4_500.0..=6_000.0).contains(&rang_ms),
            "round {round}: the silent phone rang for the queue's 5 s ring timeout, then got CANCEL: {rang_ms} ms"
        );
        let next = scene
            .wait_phone(1, &call.number, "invite", 3 * SECOND)
            .await;
        assert!(
            next.at_ms() >= cancelled.at_ms() - 100.0 && next.at_ms() - cancelled.at_ms() < 1_000.0,
            "round {round}: the next agent rang when the first one's ring timeout ended: {} ms after the CANCEL",
            next.at_ms() - cancelled.at_ms()
        );
        scene.wait_phone(1, &call.number, "answered", SECOND).await;
        call.finish(10 * SECOND).await;
        let record = scene.record(&call.number).await;
        assert_eq!(
            scene.offers(&record),
            [(0, "no_answer".to_string()), (1, "answered".to_string())],
            "round {round}: the record's offers: {record}"
        );
        let session = scene.centre.session(scene.agents[0].user).await;
        if round == 0 {
            assert!(
                session["pause"].is_null(),
                "one missed offer does not pause: {session}"
            );
        } else {
            assert_eq!(
                session["pause"]["pause_type"], missed,
                "two missed offers in a row pause the agent with the queue's auto-pause type (Missed offers): {session}"
            );
            let since = session["pause"]["since_ms"].as_f64().unwrap_or(0.0);
            assert!(
                (since - cancelled.at_ms()).abs() < 1_000.0,
                "paused when the second offer timed out ({}), not at {since}",
                cancelled.at_ms()
            );
            assert!(
                !session["terminals"]
                    .as_array()
                    .is_some_and(|t| t.is_empty()),
                "paused, still logged in: {session}"
            );
            let state = scene.centre.state(scene.agents[0].user).await;
            assert!(
                state["state"] == "paused"
                    && state["last_change"]["by"]
                        == json!({"kind": "system", "rule": "missed_offers"})
                    && state["last_change"]["what"]
                        == json!({"action": "paused", "pause_type": missed.clone(), "deferred": false}),
                "A4: the pause names the rule that caused it: {state}"
            );
        }
        scene.wait_free(1).await;
    }
    // Paused: the next call goes to the other agent at once.
    let mut call = scene.call(60_000).await;
    let rang = scene
        .wait_phone(1, &call.number, "invite", 3 * SECOND)
        .await;
    let invited = call.step("invite").expect("the caller's INVITE");
    assert!(
        rang.at_ms() - invited.at_ms() < 1_000.0,
        "with the first agent paused the second rings at once: {} ms",
        rang.at_ms() - invited.at_ms()
    );
    call.finish(10 * SECOND).await;
    let record = scene.record(&call.number).await;
    assert_eq!(
        scene.offers(&record),
        [(1, "answered".to_string())],
        "the paused agent was not offered the call: {record}"
    );
    assert_eq!(
        scene.phone_calls(0).len(),
        2,
        "the paused agent's phone rang only for the first two calls: {:?}",
        scene.phone_calls(0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_and_decline_back_the_agent_off_while_another_takes_the_calls() {
    const BACKOFF_S: u64 = 8;
    let mut scene = Scene::new(
        &[],
        |spec| {
            spec.insert("strategy".into(), json!({"kind": "linear"}));
            spec.insert("reject_backoff_s".into(), json!(BACKOFF_S));
            spec.insert("wrap_up_s".into(), json!(0));
        },
        3,
    )
    .await;
    let refuses = |status| Phone {
        behaviour: Behaviour::Refuses { status },
        expires_s: 300,
    };
    scene.start_phone(0, refuses(486)).await;
    scene.start_phone(1, refuses(603)).await;
    scene.start_phone(2, ANSWERS).await;
    scene.log_in_all().await;
    // Linear: 486 from the first, 603 from the second, the third answers.
    let mut first = scene.call(60_000).await;
    let busy = scene
        .wait_phone(0, &first.number, "refused", 3 * SECOND)
        .await;
    let declined = scene
        .wait_phone(1, &first.number, "refused", 3 * SECOND)
        .await;
    let answered = scene
        .wait_phone(2, &first.number, "answered", 3 * SECOND)
        .await;
    assert!(
        busy.at_ms() <= declined.at_ms() && declined.at_ms() <= answered.at_ms(),
        "offered in linear order, each after the previous refusal"
    );
    first.finish(10 * SECOND).await;
    let refusals = [
        (0, "busy".to_string()),
        (1, "rejected".to_string()),
        (2, "answered".to_string()),
    ];
    let record = scene.record(&first.number).await;
    assert_eq!(scene.offers(&record), refusals, "{record}");
    // Within the back-off: only the third agent is offered.
    let mut second = scene.call(60_000).await;
    scene
        .wait_phone(2, &second.number, "answered", 3 * SECOND)
        .await;
    second.finish(10 * SECOND).await;
    let record = scene.record(&second.number).await;
    assert_eq!(
        scene.offers(&record),
        [(2, "answered".to_string())],
        "within the back-off only the third agent was offered the call: {record}"
    );
    assert!(
        second.step("ended").expect("ended").at_ms() < busy.at_ms() + (BACKOFF_S * 1000) as f64,
        "the second call ended within the back-off (the test is too slow otherwise)"
    );
    for n in [0, 1] {
        assert_eq!(
            scene.phone_calls(n).len(),
            1,
            "agent {n} (refused with {}) was not offered a call within its {BACKOFF_S} s back-off: {:?}",
            if n == 0 { 486 } else { 603 },
            scene.phone_calls(n)
        );
    }
    // After the back-off both are offered again, in order.
    let resume = busy.at_ms() + (BACKOFF_S * 1000) as f64 + 500.0;
    let wait_ms = resume - second.step("ended").expect("ended").at_ms();
    tokio::time::sleep(Duration::from_millis(wait_ms.max(0.0) as u64)).await;
    let mut third = scene.call(60_000).await;
    scene
        .wait_phone(0, &third.number, "refused", 3 * SECOND)
        .await;
    scene
        .wait_phone(1, &third.number, "refused", 3 * SECOND)
        .await;
    scene
        .wait_phone(2, &third.number, "answered", 3 * SECOND)
        .await;
    third.finish(10 * SECOND).await;
    let record = scene.record(&third.number).await;
    assert_eq!(
        scene.offers(&record),
        refusals,
        "after the back-off: {record}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_whose_registration_expires_is_not_offered_calls() {
    let mut scene = Scene::new(
        &["--sip-option", "min_expires_s=2"],
        |spec| {
            spec.insert("strategy".into(), json!({"kind": "linear"}));
            spec.insert("wrap_up_s".into(), json!(0));
        },
        2,
    )
    .await;
    scene.start_phone(1, ANSWERS).await;
    scene.log_in_all().await;
    // The first agent's phone registers for 4 s and never again.
    scene
        .start_phone(
            0,
            Phone {
                expires_s: 4,
                ..ANSWERS
            },
        )
        .await;
    let mut first = scene.call(60_000).await;
    scene
        .wait_phone(0, &first.number, "answered", 3 * SECOND)
        .await;
    first.finish(10 * SECOND).await;
    let record = scene.record(&first.number).await;
    assert_eq!(
        scene.offers(&record),
        [(0, "answered".to_string())],
        "linear: the first agent takes calls while its phone is registered: {record}"
    );
    let username = scene.agents[0].account.username.clone();
    let path = format!("/api/v1/tenants/{}/extensions", scene.centre.tenant);
    let mut state = Value::Null;
    for _ in 0..100 {
        let list = scene.centre.ok("GET", &path, None).await;
        state = list
            .as_array()
            .and_then(|l| l.iter().find(|e| e["sip_username"] == username.as_str()))
            .map(|e| e["state"].clone())
            .unwrap_or(Value::Null);
        if state == "unavailable" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state, "unavailable", "the registration expired");
    let session = scene.centre.session(scene.agents[0].user).await;
    assert!(
        session["terminals"]
            .as_array()
            .is_some_and(|t| t.contains(&json!(scene.agents[0].terminal()))),
        "still logged in from its phone (disconnected, not logged out): {session}"
    );
    // A8: disconnected, as every node reads it, with the rule that caused it.
    let state = scene
        .centre
        .wait_user(
            scene.agents[0].user,
            "state",
            "recorded as disconnected",
            15 * SECOND,
            |s| s["state"] == "disconnected",
        )
        .await;
    assert!(
        state["unreachable_since_ms"].is_u64()
            && state["last_change"]["by"] == json!({"kind": "system", "rule": "reachability"})
            && state["last_change"]["what"]["action"] == "disconnected",
        "disconnected since a time, by the reachability rule: {state}"
    );
    for _ in 0..2 {
        let mut call = scene.call(60_000).await;
        let rang = scene
            .wait_phone(1, &call.number, "invite", 3 * SECOND)
            .await;
        let invited = call.step("invite").expect("INVITE");
        assert!(
            rang.at_ms() - invited.at_ms() < 1_000.0,
            "the reachable agent rang at once, not after an offer to the unreachable one: {} ms",
            rang.at_ms() - invited.at_ms()
        );
        call.finish(10 * SECOND).await;
        let record = scene.record(&call.number).await;
        assert_eq!(
            scene.offers(&record),
            [(1, "answered".to_string())],
            "the agent whose phone is gone was not offered the call: {record}"
        );
        scene.wait_free(1).await;
    }
    assert_eq!(
        scene.phone_calls(0).len(),
        1,
        "the expired phone was offered nothing after the first call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_who_hangs_up_while_the_agent_rings_cancels_it_and_the_agent_is_idle_again() {
    let mut scene = Scene::new(&[], |_| {}, 1).await;
    let types = scene
        .centre
        .ok(
            "GET",
            &format!("/api/v1/tenants/{}/pause-types", scene.centre.tenant),
            None,
        )
        .await;
    let pause_type = types[0]["id"].clone();
    scene
        .centre
        .configure(scene.queue.id, |spec| {
            spec.insert("ring_timeout_s".into(), json!(30));
            // A cancelled offer is no missed offer: a miss would pause.
            spec.insert("auto_pause_after_missed".into(), json!(1));
            spec.insert("auto_pause_type".into(), pause_type);
        })
        .await;
    scene.start_phone(0, SILENT).await;
    scene.log_in_all().await;
    for round in 0..2 {
        let mut call = scene.call(1_500).await;
        scene
            .wait_phone(0, &call.number, "invite", 3 * SECOND)
            .await;
        let cancelled = scene
            .wait_phone(0, &call.number, "cancelled", 5 * SECOND)
            .await;
        call.finish(10 * SECOND).await;
        let hung_up = at(&call.steps(), "bye_out").expect("the caller hung up");
        assert!(
            cancelled.at_ms() >= hung_up && cancelled.at_ms() - hung_up < 1_000.0,
            "round {round}: the ringing phone got CANCEL when the caller hung up: {} ms after",
            cancelled.at_ms() - hung_up
        );
        scene.wait_phone(0, &call.number, "ended", SECOND).await;
        let record = scene.record(&call.number).await;
        let invited = at(&call.steps(), "invite").expect("invite");
        assert!(
            record["outcome"]["kind"] == "abandoned"
                && record["agent"].is_null()
                && scene.offers(&record) == [(0, "cancelled".to_string())]
                && (record["waiting_ms"].as_f64().unwrap_or(0.0) - (hung_up - invited)).abs()
                    < 200.0,
            "round {round}: abandoned while offered, the offer cancelled, waiting {} ms: {record}",
            hung_up - invited
        );
        let session = scene.wait_free(0).await;
        assert!(
            session["pause"].is_null(),
            "a caller's hang-up is no missed offer (auto-pause after 1): {session}"
        );
    }
    assert_eq!(scene.phone_calls(0).len(), 2, "offered each call once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_all_with_two_agents_answering_at_once_connects_one_and_frees_the_other() {
    let mut scene = Scene::new(
        &[],
        |spec| {
            spec.insert("strategy".into(), json!({"kind": "ring_all"}));
            spec.insert("wrap_up_s".into(), json!(0));
        },
        2,
    )
    .await;
    let at_once = Phone {
        behaviour: Behaviour::Answers {
            ring_ms: 300,
            hold_ms: 1_500,
        },
        expires_s: 300,
    };
    scene.start_phone(0, at_once).await;
    scene.start_phone(1, at_once).await;
    scene.log_in_all().await;
    for round in 0..3 {
        let mut call = scene.call(60_000).await;
        for n in 0..2 {
            scene
                .wait_phone(n, &call.number, "ended", 10 * SECOND)
                .await;
        }
        call.finish(10 * SECOND).await;
        let steps: Vec<Vec<Event>> = (0..2).map(|n| scene.phone_steps(n, &call.number)).collect();
        let winners: Vec<usize> = (0..2)
            .filter(|n| at(&steps[*n], "bye_out").is_some())
            .collect();
        let [winner] = winners.as_slice() else {
            panic!("round {round}: exactly one phone stayed connected until it hung up: {steps:?}");
        };
        let loser = 1 - winner;
        let lost = &steps[loser];
        let ended_by_node = at(lost, "cancelled").or(at(lost, "bye_in"));
        let won_at = at(&steps[*winner], "answered").expect("answered");
        assert!(
            ended_by_node.is_some_and(|t| t - won_at < 1_000.0),
            "round {round}: the other phone got CANCEL (before its 200) or BYE (after it) at once: {lost:?}"
        );
        let heard = call.heard();
        let from = |agent: usize| {
            let index = scene.agents[agent].index;
            heard
                .tagged
                .iter()
                .filter(|(t, _)| matches!(t, Tag::Agent { agent, .. } if *agent == index))
                .map(|(_, n)| *n)
                .sum::<u64>()
        };
        assert!(
            from(*winner) >= 25 && from(loser) == 0,
            "round {round}: the caller heard the connected agent ({} packets) and not the other ({}): {heard:?}",
            from(*winner),
            from(loser)
        );
        let record = scene.record(&call.number).await;
        let mut offers = scene.offers(&record);
        offers.sort();
        let mut expected = vec![
            (*winner, "answered".to_string()),
            (loser, "cancelled".to_string()),
        ];
        expected.sort();
        assert_eq!(
            offers, expected,
            "round {round}: both offered at once, one won: {record}"
        );
        assert_eq!(
            record["agent"],
            json!(scene.agents[*winner].user),
            "{record}"
        );
        let session = scene.wait_free(loser).await;
        assert!(session["pause"].is_null(), "idle again: {session}");
        scene.wait_free(*winner).await;
    }
}
