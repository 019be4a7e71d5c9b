//! A queue's limits and exits (Q5) over SIP, with SIPp callers and agents'
//! phones, the demo's queues configured through the admin API:
//! - a full queue sends the next caller to its overflow queue, where an
//!   agent answers and the two hear each other; the record has both queues,
//!   the first with the reason `queue_full`;
//! - the maximum wait moves a caller on to the overflow queue, where the
//!   caller's exit key (RFC 4733 in its RTP) plays a parting prompt and
//!   hangs up; the record says `max_wait`, then `exit_key`, and `exited`;
//! - a queue that no agent can serve turns an unanswered caller away with
//!   480 and the rule in the reason phrase;
//! - a queue outside its opening hours (Q9, in its own time zone) sends the
//!   caller to its closed destination: a prompt, then the hang-up.
//!
//! Needs SIPp (Debian `sip-tester`; `scripts/install-deps.sh`).

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use tokio::time::Instant;

use common::raw::{final_answer, invite, PCMU_OFFER};
use common::rtp::Tag;
use common::scene::{answering, Phone, Scene};
use serde_json::{json, Value};

const SECOND: Duration = Duration::from_secs(1);

/// A phone that answers after 200 ms and hangs up after 2 s.
const ANSWERS: Phone = answering(2_000);

/// Takes a queue's opening hours away (the demo's Sales has some): these
/// tests are about its limits, at any time of day.
fn always_open(spec: &mut serde_json::Map<String, Value>) {
    for key in ["opening_hours", "holidays"] {
        spec.insert(key.into(), json!([]));
    }
}

/// The record's queue segments as (queue, reason, milliseconds).
fn queue_segments(record: &Value) -> Vec<(u64, String, u64)> {
    record["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .filter(|s| s["kind"] == "queue")
        .map(|s| {
            (
                s["queue"].as_u64().expect("queue"),
                s["reason"].as_str().expect("reason").to_string(),
                s["to_ms"].as_u64().unwrap_or(0) - s["from_ms"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_sends_the_next_caller_to_its_overflow_queue_where_an_agent_answers() {
    let mut scene = Scene::new(
        &[],
        |spec| {
            spec.insert("wrap_up_s".into(), json!(0));
        },
        1,
    )
    .await;
    let (support, sales) = (scene.queue.clone(), scene.centre.queue("Sales"));
    // Sales holds one caller (its static member Piotr has no phone: nobody
    // takes it), and sends the next to Support, where agent 0 answers.
    scene
        .centre
        .configure(sales.id, |spec| {
            always_open(spec);
            spec.insert("max_length".into(), json!(1));
            spec.insert(
                "overflow".into(),
                json!({"after_s": 600, "destination": {"kind": "queue", "queue": support.id}}),
            );
        })
        .await;
    scene.start_phone(0, ANSWERS).await;
    scene.log_in_all().await;

    let mut first = scene.call_to(&sales.did, 8_000).await;
    scene
        .wait_waiting(sales.id, &first.number, 5 * SECOND)
        .await;
    let mut second = scene.call_to(&sales.did, 10_000).await;
    scene
        .wait_phone(0, &second.number, "answered", 5 * SECOND)
        .await;
    second.finish(15 * SECOND).await;
    first.finish(15 * SECOND).await;

    let heard = second.heard();
    let from_agent: u64 = heard
        .tagged
        .iter()
        .filter(|(t, _)| matches!(t, Tag::Agent { agent: 0, .. }))
        .map(|(_, n)| n)
        .sum();
    assert!(
        from_agent > 25,
        "the overflowed caller heard agent 0 (>0.5 s of its audio): {heard:?}"
    );
    assert!(
        scene.media[0]
            .heard()
            .tagged
            .keys()
            .any(|t| matches!(t, Tag::Caller { call: 1 })),
        "agent 0 heard the overflowed caller: {:?}",
        scene.media[0].heard()
    );
    assert!(
        !scene.media[0]
            .heard()
            .tagged
            .keys()
            .any(|t| matches!(t, Tag::Caller { call: 0 })),
        "the caller waiting in Sales never reached Support's agent"
    );

    let record = scene.any_record(&second.number).await;
    let segments = queue_segments(&record);
    assert!(
        record["outcome"]["kind"] == "answered"
            && record["queue"] == support.id
            && record["agent"] == scene.agents[0].user
            && segments.len() == 2
            && segments[0].0 == sales.id
            && segments[0].1 == "queue_full"
            && segments[1].0 == support.id
            && segments[1].1 == "answered",
        "Sales (queue_full), then Support (answered): {record}"
    );
    let waited: u64 = segments.iter().map(|s| s.2).sum();
    assert!(
        record["waiting_ms"]
            .as_u64()
            .is_some_and(|w| w.abs_diff(waited) < 50),
        "waiting counts from the first queue: {record}"
    );
    let first = scene.any_record(&first.number).await;
    assert!(
        first["outcome"]["kind"] == "abandoned"
            && queue_segments(&first)
                == [(
                    sales.id,
                    "abandoned".to_string(),
                    queue_segments(&first)[0].2
                )],
        "the first caller waited in Sales until it hung up: {first}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_maximum_wait_moves_a_caller_on_and_its_exit_key_hangs_up_after_a_prompt() {
    let mut scene = Scene::new(&[], |_| {}, 0).await;
    let (support, sales) = (scene.queue.clone(), scene.centre.queue("Sales"));
    scene
        .centre
        .configure(support.id, |spec| {
            spec.insert("max_wait_s".into(), json!(3));
            spec.insert(
                "overflow".into(),
                json!({"after_s": 600, "destination": {"kind": "queue", "queue": sales.id}}),
            );
        })
        .await;
    scene
        .centre
        .configure(sales.id, |spec| {
            always_open(spec);
            spec.insert("exit_dtmf_key".into(), json!("5"));
            spec.insert(
                "exit_destination".into(),
                json!({"kind": "hangup", "prompt": "vm-goodbye"}),
            );
        })
        .await;
    let mut call = scene.call(30_000).await;
    let joined = scene
        .wait_waiting(support.id, &call.number, 5 * SECOND)
        .await;
    let moved = scene.wait_waiting(sales.id, &call.number, 8 * SECOND).await;
    let waited = moved.duration_since(joined);
    assert!(
        (2_500..4_000).contains(&waited.as_millis()),
        "moved on after the maximum wait of 3 s: {waited:?}"
    );
    let before_key = call.heard().untagged;
    let pressed = Instant::now();
    call.media[&call.port].press('5');
    call.finish(15 * SECOND).await;
    let hung_up = pressed.elapsed();
    assert!(
        call.step("bye_in").is_some(),
        "the node hung up: {:?}",
        call.steps()
    );
    assert!(
        hung_up >= Duration::from_millis(500),
        "the parting prompt played before the hang-up: {hung_up:?}"
    );
    assert!(
        call.heard().untagged > before_key + 20,
        "the caller heard the prompt: {:?}",
        call.heard()
    );
    let record = scene.any_record(&call.number).await;
    let segments = queue_segments(&record);
    assert!(
        record["outcome"]
            == json!({"kind": "exited", "reason": "exit_key: hung up after the prompt vm-goodbye"})
            && segments.len() == 2
            && segments[0].0 == support.id
            && segments[0].1 == "max_wait"
            && (2_800..3_600).contains(&segments[0].2)
            && segments[1].0 == sales.id
            && segments[1].1 == "exit_key",
        "Support (max_wait after 3 s), then Sales (exit_key): {record}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_no_agent_can_serve_turns_an_unanswered_caller_away_naming_the_rule() {
    let scene = Scene::new(
        &[],
        |spec| {
            spec.insert("answer".into(), json!("early_media"));
            spec.insert("join_when_empty".into(), json!("when_no_agent_logged_in"));
        },
        0,
    )
    .await;
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(5 * SECOND)).expect("timeout");
    let uri = format!("sip:{}@{}", scene.queue.did, scene.centre.sip);
    let (status, reason, _) = final_answer(
        &socket,
        scene.centre.sip,
        &invite(&uri, "exit-empty-1", PCMU_OFFER),
    );
    assert_eq!(
        (status, reason.as_str()),
        (
            480,
            "Temporarily Unavailable - Q5: no agent to join in the queue (hung up)"
        )
    );
    let record = scene.any_record("+420777000001").await;
    assert!(
        record["outcome"] == json!({"kind": "exited", "reason": "no_agents: hung up"})
            && queue_segments(&record)[0].1 == "no_agents",
        "{record}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_outside_its_hours_sends_callers_to_its_closed_destination() {
    let mut scene = Scene::new(&[], |_| {}, 0).await;
    let sales = scene.centre.queue("Sales");
    // Open only on the day after tomorrow in Warsaw: closed now, even if the
    // test runs across a midnight there.
    let zone = jiff::tz::TimeZone::get("Europe/Warsaw").expect("the tz database");
    let later = jiff::Timestamp::now()
        .to_zoned(zone)
        .date()
        .checked_add(jiff::Span::new().days(2))
        .expect("a date");
    let day = format!("{:?}", later.weekday()).to_lowercase();
    scene
        .centre
        .configure(sales.id, |spec| {
            spec.insert(
                "opening_hours".into(),
                json!([{"day": day, "open_minute": 0, "close_minute": 1440}]),
            );
            spec.insert("holidays".into(), json!([]));
            spec.insert(
                "closed_destination".into(),
                json!({"kind": "hangup", "prompt": "vm-goodbye"}),
            );
        })
        .await;
    let mut call = scene.call_to(&sales.did, 30_000).await;
    call.finish(15 * SECOND).await;
    assert!(
        call.step("answered").is_some() && call.step("bye_in").is_some(),
        "answered, then hung up by the node: {:?}",
        call.steps()
    );
    assert!(
        call.heard().untagged > 20,
        "the caller heard the closed prompt: {:?}",
        call.heard()
    );
    let record = scene.any_record(&call.number).await;
    assert!(
        record["outcome"]
            == json!({"kind": "exited", "reason": "closed: hung up after the prompt vm-goodbye"})
            && queue_segments(&record)
                .iter()
                .map(|s| (s.0, s.1.as_str()))
                .eq([(sales.id, "closed")]),
        "{record}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_raises_a_waiting_callers_priority_and_withdraws_another() {
    let mut scene = Scene::new(
        &[],
        |spec| {
            spec.insert("wrap_up_s".into(), json!(0));
        },
        1,
    )
    .await;
    let support = scene.queue.clone();
    scene.start_phone(0, ANSWERS).await;
    let mut calls = Vec::new();
    for _ in 0..3 {
        let call = scene.call(30_000).await;
        scene
            .wait_waiting(support.id, &call.number, 5 * SECOND)
            .await;
        calls.push(call);
    }
    let base = format!("/api/v1/tenants/{}", scene.centre.tenant);
    let first = scene.entry_of(support.id, &calls[0].number).await;
    let last = scene.entry_of(support.id, &calls[2].number).await;
    scene
        .centre
        .ok(
            "PUT",
            &format!("{base}/entries/{last}/priority"),
            Some(json!({"priority": 90})),
        )
        .await;
    scene
        .centre
        .ok(
            "POST",
            &format!("{base}/entries/{first}/withdraw"),
            Some(json!({"destination": {"kind": "hangup", "prompt": "vm-goodbye"}})),
        )
        .await;
    calls[0].finish(10 * SECOND).await;
    assert!(
        calls[0].step("bye_in").is_some(),
        "the withdrawn caller was hung up: {:?}",
        calls[0].steps()
    );
    // The agent logs in: the raised caller first, then the other.
    scene.log_in_all().await;
    for call in &mut calls[1..] {
        call.finish(20 * SECOND).await;
    }
    let order: Vec<String> = scene
        .phone_calls(0)
        .iter()
        .filter_map(|steps| steps[0].rest.first().cloned())
        .collect();
    assert_eq!(
        order,
        [calls[2].number.clone(), calls[1].number.clone()],
        "priority 90 before the earlier caller"
    );
    let withdrawn = scene.any_record(&calls[0].number).await;
    assert!(
        withdrawn["outcome"]
            == json!({"kind": "exited", "reason": "withdrawn: hung up after the prompt vm-goodbye"})
            && withdrawn["interventions"][0]["by"]["kind"] == "user"
            && withdrawn["interventions"][0]["what"] == "withdrawn to a hang-up after vm-goodbye",
        "who withdrew it, in the record: {withdrawn}"
    );
    let raised = scene.any_record(&calls[2].number).await;
    assert!(
        raised["outcome"]["kind"] == "answered"
            && raised["interventions"][0]["what"] == "priority 90"
            && raised["interventions"][0]["at_ms"].as_u64().is_some(),
        "{raised}"
    );
}

/// The PCMU frames of a Debian sound file (canonical 44-byte WAV header,
/// 8 kHz 16-bit mono), as the relay plays it.
fn prompt_frames(name: &str) -> Vec<Vec<u8>> {
    let path = format!("/usr/share/asterisk/sounds/en_US_f_Allison/{name}.wav");
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (scripts/install-deps.sh)"));
    let samples: Vec<i16> = bytes[44..]
        .chunks_exact(2)
        .map(|p| i16::from_le_bytes([p[0], p[1]]))
        .collect();
    carillon_media::g711::G711Law::MuLaw.frames(&samples)
}

/// Where `prompt` starts in `received` as a run of whole frames, if it does.
fn played_at(received: &[Vec<u8>], prompt: &[Vec<u8>]) -> Option<usize> {
    (0..received.len().saturating_sub(prompt.len()) + 1)
        .find(|i| received[*i..].starts_with(prompt))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_caller_hears_its_position_then_the_periodic_announcement() {
    let mut scene = Scene::new(
        &[],
        |spec| {
            spec.insert("announce_position".into(), json!(true));
            spec.insert(
                "periodic_announcement".into(),
                json!({"prompt": "queue-periodic-announce", "every_s": 5}),
            );
        },
        0,
    )
    .await;
    // 5 s of music, "you are next" (5.4 s), the periodic prompt (7.8 s),
    // then music again.
    let mut call = scene.call(21_000).await;
    call.finish(40 * SECOND).await;
    let received = call.media[&call.port].audio();
    let next = prompt_frames("queue-youarenext");
    let periodic = prompt_frames("queue-periodic-announce");
    let heard_next = played_at(&received, &next);
    let heard_periodic = played_at(&received, &periodic);
    assert!(
        heard_next.is_some() && heard_periodic.is_some(),
        "the caller heard 'you are next' ({:?}) and the periodic announcement ({:?}) \
         sample-exact among {} frames",
        heard_next,
        heard_periodic,
        received.len()
    );
    let (n, p) = (heard_next.unwrap_or(0), heard_periodic.unwrap_or(0));
    assert_eq!(p, n + next.len(), "one right after the other");
    // About 5 s of music first (the cycle), then the announcement.
    assert!(
        (200..=300).contains(&n),
        "the announcement came after one cycle of 5 s: frame {n}"
    );
    assert!(
        received.len() > p + periodic.len() + 25,
        "music again after the announcement"
    );
}
