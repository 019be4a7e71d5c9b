//! Calls through queues on one node, with real clients: SIPp callers
//! (UAC, PCMU) dial the demo's two DIDs at 10 calls/s while 40 SIPp agents'
//! phones (UAS, registered with digest to accounts the test creates) answer.
//! Checked from the clients' side: every call is answered by exactly one
//! agent, no agent's phone ever holds two calls at once (nor rings during
//! its after-call work), the RTP each caller sends (its call number in
//! every payload) reaches the agent it was connected to and the agent's
//! answer (its own number and the call's) comes back to that caller and no
//! other; and from the node's side, one activity record per call with
//! waiting, interaction and processing times that match what the clients
//! saw within 200 ms.
//!
//! Needs SIPp (Debian `sip-tester`; `scripts/install-deps.sh`).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use common::centre::{Agent, Centre};
use common::rtp::{follow_callers, packet, tag_of, AgentMedia, CallerMedia, Tag};
use common::sipp::{by_call, AgentPhone, Behaviour, Call, Callers, Event};
use serde_json::{json, Value};

const AGENTS: u32 = 40;
const CALLS: u32 = 200;
const RATE_PER_S: u32 = 10;
/// The agents answer after this much ringing...
const RING_MS: u64 = 100;
/// ...and hang up after this much talk.
const HOLD_MS: u64 = 1_500;
/// The queues' after-call work.
const WRAP_UP_MS: u64 = 1_000;
/// How far the node's times may be from what the clients saw.
const TOLERANCE_MS: f64 = 200.0;
/// Tagged packets each side must receive of each call (a call carries
/// about 75 each way).
const MIN_PACKETS: u64 = 25;

/// What the clients saw of one call.
#[derive(Debug, Clone)]
struct Seen {
    /// Its number (index in the injection file).
    call: u32,
    caller: String,
    queue: u64,
    invited_ms: f64,
    /// The agent whose phone answered it, and when.
    agent: u32,
    answered_ms: f64,
    hung_up_ms: f64,
}

#[test]
fn a_tag_survives_its_packet_and_a_damaged_payload_has_none() {
    for tag in [
        Tag::Caller { call: 7 },
        Tag::Agent {
            agent: 3,
            call: 199,
        },
    ] {
        let p = packet(tag, 5, 9);
        assert_eq!(tag_of(&p), Some(tag));
        let mut damaged = p.clone();
        damaged[12 + 100] ^= 1;
        assert_eq!(tag_of(&damaged), None, "one changed byte is no tag");
    }
    let silence = [vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1], vec![0xFF; 160]].concat();
    assert_eq!(tag_of(&silence), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_calls_through_two_queues_at_ten_per_second() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let centre = Centre::start(dir.path(), &[]).await;
    let (support, sales) = (centre.queue("Support"), centre.queue("Sales"));
    for queue in [support.id, sales.id] {
        centre
            .configure(queue, |spec| {
                spec.insert("wrap_up_s".into(), json!(WRAP_UP_MS / 1000));
                // Sales has opening hours and a length limit in the demo;
                // this test is about routing, at any time of day.
                for key in ["opening_hours", "holidays"] {
                    spec.insert(key.into(), json!([]));
                }
                for key in ["closed_destination", "max_length"] {
                    spec.insert(key.into(), Value::Null);
                }
            })
            .await;
    }
    let agents = centre.add_agents(0, AGENTS, &[support.id, sales.id]).await;
    let limit = Duration::from_secs(120);
    let mut media = Vec::new();
    for agent in &agents {
        media.push(AgentMedia::bind(agent.index, limit).await);
    }
    let behaviour = Behaviour::Answers {
        ring_ms: RING_MS,
        hold_ms: HOLD_MS,
    };
    let phones = start_phones(&centre, dir.path(), &agents, &media, behaviour).await;
    let usernames: Vec<String> = agents.iter().map(|a| a.account.username.clone()).collect();
    centre
        .wait_online(&usernames, Duration::from_secs(20))
        .await;
    for agent in &agents {
        centre.log_in(agent).await;
    }
    for agent in &agents {
        centre
            .wait_session(
                agent.user,
                "checked in to both queues",
                Duration::from_secs(10),
                |s| {
                    s["checked_in"].as_array().is_some_and(|q| {
                        q.contains(&json!(support.id)) && q.contains(&json!(sales.id))
                    })
                },
            )
            .await;
    }
    let setup = started.elapsed();

    let mut callers_media = BTreeMap::new();
    let mut calls = Vec::new();
    for call in 0..CALLS {
        let m = CallerMedia::bind(call, limit).await;
        let did = if call % 2 == 0 {
            &support.did
        } else {
            &sales.did
        };
        calls.push(Call {
            rtp_port: m.port,
            did: did.clone(),
            caller: caller_number(call),
        });
        callers_media.insert(m.port, m);
    }
    let callers_media = Arc::new(callers_media);
    let mut callers = Callers::start(
        dir.path(),
        centre.sip,
        "callers",
        &calls,
        RATE_PER_S,
        60_000,
    );
    let follower = tokio::spawn(follow_callers(
        callers.log.clone(),
        callers_media.clone(),
        Duration::from_secs(90),
    ));
    let (code, callers) = tokio::task::spawn_blocking(move || {
        let code = callers.wait(Duration::from_secs(90));
        (code, callers)
    })
    .await
    .expect("wait for the callers");
    let calling = started.elapsed() - setup;
    follower.await.expect("follower");
    let caller_events = callers.events();
    assert_eq!(
        code,
        Some(0),
        "every call went through the caller's scenario (answered, the agent's BYE); errors:\n{}\nnode log:\n{}",
        callers.errors(),
        tail(&centre.log(), 60)
    );

    let seen = check_agents(&agents, &phones, &calls, &caller_events, &support, &sales);
    let (least_back, least_heard) = check_media(&seen, &callers_media, &calls, &media);
    eprintln!(
        "{CALLS} calls through {AGENTS} agents: setup {setup:?}, calls {calling:?}; \
         tagged packets per call at least {least_heard} at the agent, {least_back} back"
    );
    check_records(&centre, &seen, &agents).await;
    eprintln!("all checked after {:?}", started.elapsed());
    drop(phones);
    assert_eq!(centre.demo.terminate(), Some(0));
}

fn caller_number(call: u32) -> String {
    format!("+420777{call:06}")
}

/// Registers and starts every agent's phone, eight at a time.
async fn start_phones(
    centre: &Centre,
    dir: &std::path::Path,
    agents: &[Agent],
    media: &[AgentMedia],
    behaviour: Behaviour,
) -> Vec<AgentPhone> {
    let mut phones = Vec::new();
    for chunk in agents.chunks(8) {
        let mut tasks = Vec::new();
        for agent in chunk {
            let (dir, sip, account) = (dir.to_path_buf(), centre.sip, agent.account.clone());
            let rtp = media[agent.index as usize].port;
            tasks.push(tokio::task::spawn_blocking(move || {
                AgentPhone::start(&dir, sip, account, rtp, behaviour, 300)
            }));
        }
        for task in tasks {
            phones.push(task.await.expect("start a phone"));
        }
    }
    phones
}

/// The agents' side: every call answered by exactly one phone, which rang
/// with nothing else (no second call while it rang, talked or wrapped up).
fn check_agents(
    agents: &[Agent],
    phones: &[AgentPhone],
    calls: &[Call],
    caller_events: &[Event],
    support: &common::centre::Queue,
    sales: &common::centre::Queue,
) -> Vec<Seen> {
    let by_number: BTreeMap<&str, u32> = calls
        .iter()
        .enumerate()
        .map(|(i, c)| (c.caller.as_str(), i as u32))
        .collect();
    let callers = by_call(caller_events);
    let mut answered: BTreeMap<u32, Vec<(u32, Vec<Event>)>> = BTreeMap::new();
    let mut problems = Vec::new();
    for (agent, phone) in agents.iter().zip(phones) {
        let mut its_calls: Vec<Vec<Event>> = by_call(&phone.events()).into_values().collect();
        its_calls.sort_by_key(|steps| steps[0].at_us);
        for pair in its_calls.windows(2) {
            let (first, next) = (&pair[0], &pair[1]);
            let ended = first.last().expect("steps");
            if ended.kind != "ended" || next[0].at_us < ended.at_us {
                problems.push(format!(
                    "{} rang with a second call while one was up: {first:?} then {next:?}",
                    agent.account.username
                ));
            } else if let Some(bye) = first.iter().find(|e| e.kind.starts_with("bye")) {
                if next[0].at_ms() + TOLERANCE_MS < bye.at_ms() + WRAP_UP_MS as f64 {
                    problems.push(format!(
                        "{} was offered a call during its {WRAP_UP_MS} ms of after-call work: hung up at {}, rang at {}",
                        agent.account.username,
                        bye.at_ms(),
                        next[0].at_ms()
                    ));
                }
            }
        }
        for steps in its_calls {
            let invite = &steps[0];
            let number = invite.rest.first().map(String::as_str).unwrap_or("");
            let Some(&call) = by_number.get(number) else {
                problems.push(format!(
                    "{} got a call from {number:?}, no caller of the test: {steps:?}",
                    agent.account.username
                ));
                continue;
            };
            answered.entry(call).or_default().push((agent.index, steps));
        }
    }
    let mut seen = Vec::new();
    for (call, c) in calls.iter().enumerate() {
        let call = call as u32;
        let rang = answered.remove(&call).unwrap_or_default();
        let kinds = |steps: &[Event]| steps.iter().map(|e| e.kind.clone()).collect::<Vec<_>>();
        let [(agent, steps)] = rang.as_slice() else {
            problems.push(format!(
                "call {call} ({}) rang {} phones (one expected, every agent answers): {:?}",
                c.caller,
                rang.len(),
                rang.iter().map(|(a, s)| (a, kinds(s))).collect::<Vec<_>>()
            ));
            continue;
        };
        let at = |kind: &str| steps.iter().find(|e| e.kind == kind).map(Event::at_ms);
        let (Some(answered_ms), Some(hung_up_ms)) = (at("answered"), at("bye_out")) else {
            problems.push(format!(
                "call {call}: agent {agent} did not answer and hang up: {:?}",
                kinds(steps)
            ));
            continue;
        };
        let mine = callers
            .get(&c.rtp_port.to_string())
            .cloned()
            .unwrap_or_default();
        let Some(invited) = mine.iter().find(|e| e.kind == "invite") else {
            problems.push(format!("call {call}: the caller logged no INVITE"));
            continue;
        };
        seen.push(Seen {
            call,
            caller: c.caller.clone(),
            queue: if c.did == support.did {
                support.id
            } else {
                sales.id
            },
            invited_ms: invited.at_ms(),
            agent: *agent,
            answered_ms,
            hung_up_ms,
        });
    }
    assert!(
        problems.is_empty(),
        "{} problems on the agents' side, the first 20:\n{}",
        problems.len(),
        problems
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    seen
}

/// The media: each caller's tags reached the agent that answered it, and
/// that agent's answers (its number and the call's) came back to it alone.
fn check_media(
    seen: &[Seen],
    callers: &BTreeMap<u16, CallerMedia>,
    calls: &[Call],
    agents: &[AgentMedia],
) -> (u64, u64) {
    let mut problems = Vec::new();
    let (mut least_back, mut least_heard) = (u64::MAX, u64::MAX);
    let mut answered_by: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for s in seen {
        answered_by.entry(s.agent).or_default().push(s.call);
        let heard = callers[&calls[s.call as usize].rtp_port].heard();
        let from_its_agent = heard
            .tagged
            .get(&Tag::Agent {
                agent: s.agent,
                call: s.call,
            })
            .copied()
            .unwrap_or(0);
        least_back = least_back.min(from_its_agent);
        let foreign: Vec<(&Tag, &u64)> = heard
            .tagged
            .iter()
            .filter(|(t, _)| {
                **t != Tag::Agent {
                    agent: s.agent,
                    call: s.call,
                }
            })
            .collect();
        if from_its_agent < MIN_PACKETS || !foreign.is_empty() {
            problems.push(format!(
                "caller {} (agent {}): {from_its_agent} packets back from its agent, others {foreign:?}, {} untagged, {} sent",
                s.call, s.agent, heard.untagged, heard.sent
            ));
        }
    }
    for (agent, media) in agents.iter().enumerate() {
        let agent = agent as u32;
        let heard = media.heard();
        let mine = answered_by.get(&agent).cloned().unwrap_or_default();
        for (tag, count) in &heard.tagged {
            match tag {
                Tag::Caller { call } if mine.contains(call) => {
                    least_heard = least_heard.min(*count);
                    if *count < MIN_PACKETS {
                        problems.push(format!("agent {agent} heard call {call} for {count} packets"));
                    }
                }
                other => problems.push(format!(
                    "agent {agent} heard {other:?} ({count} packets), not a call it answered ({mine:?})"
                )),
            }
        }
        for call in &mine {
            if !heard.tagged.contains_key(&Tag::Caller { call: *call }) {
                problems.push(format!(
                    "agent {agent} answered call {call} and never heard it"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} media problems, the first 20:\n{}",
        problems.len(),
        problems
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    (least_back, least_heard)
}

/// One activity record per call, with the clients' times (C1): waiting
/// from the INVITE to the agent's answer, interaction from the answer to
/// the hang-up, processing from the answer to the end of after-call work.
async fn check_records(centre: &Centre, seen: &[Seen], agents: &[Agent]) {
    let ours: BTreeMap<&str, &Seen> = seen.iter().map(|s| (s.caller.as_str(), s)).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let records = loop {
        let all = centre.activities("direction=inbound", 20).await;
        let records: Vec<Value> = all
            .into_iter()
            .filter(|r| r["caller"].as_str().is_some_and(|c| ours.contains_key(c)))
            .collect();
        if records.len() >= seen.len() || tokio::time::Instant::now() > deadline {
            break records;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    let mut worst: BTreeMap<&str, f64> = BTreeMap::new();
    let mut problems = Vec::new();
    for r in &records {
        let caller = r["caller"].as_str().expect("caller");
        *count
            .entry(ours.get_key_value(caller).expect("ours").0)
            .or_default() += 1;
        let s = ours[caller];
        let ms = |key: &str| r[key].as_f64().unwrap_or(f64::NAN);
        let expected = [
            ("started_at_ms", s.invited_ms),
            ("connected_at_ms", s.answered_ms),
            ("ended_at_ms", s.hung_up_ms),
            ("waiting_ms", s.answered_ms - s.invited_ms),
            ("interaction_ms", s.hung_up_ms - s.answered_ms),
            (
                "processing_ms",
                s.hung_up_ms - s.answered_ms + WRAP_UP_MS as f64,
            ),
        ];
        for (key, want) in &expected {
            let worst = worst.entry(*key).or_insert(0.0f64);
            *worst = worst.max((ms(key) - want).abs());
        }
        let off: Vec<String> = expected
            .iter()
            .filter(|(key, want)| ms(key).is_nan() || (ms(key) - want).abs() > TOLERANCE_MS)
            .map(|(key, want)| format!("{key} {} (clients: {want:.0})", ms(key)))
            .collect();
        let agent = agents[s.agent as usize].user;
        if !off.is_empty()
            || r["outcome"]["kind"] != "answered"
            || r["agent"] != json!(agent)
            || r["queue"] != json!(s.queue)
        {
            problems.push(format!("call {} {off:?}: {r}", s.call));
        }
    }
    eprintln!(
        "{} records; the node's times against the clients', largest difference in ms: {worst:.0?}",
        records.len()
    );
    for s in seen {
        match count.get(s.caller.as_str()) {
            Some(1) => {}
            n => problems.push(format!("call {} has {n:?} records", s.call)),
        }
    }
    assert!(
        problems.is_empty(),
        "{} record problems, the first 20:\n{}",
        problems.len(),
        problems
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
