//! A small scene for one agent-behaviour test: a demo whose Support queue
//! is configured through the API, a few agents with SIPp phones that behave
//! as told (answer, stay silent, refuse), logged in and checked in to it,
//! and callers placed one call at a time. Agents are ordered by user id,
//! which is the order of a linear queue (Q1).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::time::Instant;

use super::centre::{Agent, Centre, Queue};
use super::rtp::{follow_callers, AgentMedia, CallerMedia};
use super::sipp::{by_call, AgentPhone, Behaviour, Call, Callers, Event};

/// How long any endpoint of a scene runs at most.
const LIMIT: Duration = Duration::from_secs(120);

/// One phone of a scene: its behaviour and how long it registers for.
#[derive(Debug, Clone, Copy)]
pub struct Phone {
    /// What it does with INVITEs.
    pub behaviour: Behaviour,
    /// The Expires it asks for.
    pub expires_s: u32,
}

/// A phone that answers after 200 ms and hangs up after `hold_ms` of talk.
pub const fn answering(hold_ms: u64) -> Phone {
    Phone {
        behaviour: Behaviour::Answers {
            ring_ms: 200,
            hold_ms,
        },
        expires_s: 300,
    }
}

/// The demo, its Support queue and the agents of a test.
pub struct Scene {
    /// The demo.
    pub centre: Centre,
    /// Its data, logs and SIPp files.
    pub dir: tempfile::TempDir,
    /// The queue the agents are checked in to.
    pub queue: Queue,
    /// The agents, by user id.
    pub agents: Vec<Agent>,
    /// Their phones (`None` until started).
    pub phones: Vec<Option<AgentPhone>>,
    /// Their media endpoints.
    pub media: Vec<AgentMedia>,
    calls: u32,
}

impl Scene {
    /// Starts a demo (with `options` on its command line), applies
    /// `configure` to the Support queue, and adds one agent per phone in
    /// `phones`, in user id order. Phones are not started yet.
    pub async fn new(
        options: &[&str],
        configure: impl FnOnce(&mut Map<String, Value>),
        count: u32,
    ) -> Scene {
        let dir = tempfile::tempdir().expect("temp dir");
        let centre = Centre::start(dir.path(), options).await;
        let queue = centre.queue("Support");
        centre.configure(queue.id, configure).await;
        let mut agents = centre.add_agents(0, count, &[queue.id]).await;
        agents.sort_by_key(|a| a.user);
        let mut media = Vec::new();
        for agent in &agents {
            media.push(AgentMedia::bind(agent.index, LIMIT).await);
        }
        Scene {
            centre,
            dir,
            queue,
            phones: agents.iter().map(|_| None).collect(),
            agents,
            media,
            calls: 0,
        }
    }

    /// Registers and starts agent `n`'s phone and waits until it is online.
    pub async fn start_phone(&mut self, n: usize, phone: Phone) {
        let (dir, sip) = (self.dir.path().to_path_buf(), self.centre.sip);
        let account = self.agents[n].account.clone();
        let rtp = self.media[n].port;
        let started = tokio::task::spawn_blocking(move || {
            AgentPhone::start(&dir, sip, account, rtp, phone.behaviour, phone.expires_s)
        })
        .await
        .expect("start a phone");
        self.phones[n] = Some(started);
        self.centre
            .wait_online(
                &[self.agents[n].account.username.clone()],
                Duration::from_secs(10),
            )
            .await;
    }

    /// Logs every agent in from its phone and waits until each is checked
    /// in to the queue.
    pub async fn log_in_all(&self) {
        for agent in &self.agents {
            self.centre.log_in(agent).await;
        }
        for agent in &self.agents {
            let queue = self.queue.id;
            self.centre
                .wait_session(agent.user, "checked in", Duration::from_secs(10), |s| {
                    s["checked_in"]
                        .as_array()
                        .is_some_and(|q| q.contains(&json!(queue)))
                })
                .await;
        }
    }

    /// Places one call to the queue's DID; the caller hangs up after
    /// `hold_ms` unless the agent does first.
    pub async fn call(&mut self, hold_ms: u64) -> Placed {
        let did = self.queue.did.clone();
        self.call_to(&did, hold_ms).await
    }

    /// Places one call to `did`; the caller hangs up after `hold_ms` unless
    /// the other side does first.
    pub async fn call_to(&mut self, did: &str, hold_ms: u64) -> Placed {
        let number = format!("+420778{:06}", self.calls);
        self.call_from(did, &number, hold_ms).await
    }

    /// [`Self::call_to`] from the caller's `number`.
    pub async fn call_from(&mut self, did: &str, number: &str, hold_ms: u64) -> Placed {
        let call = self.calls;
        self.calls += 1;
        let media = CallerMedia::bind(call, LIMIT).await;
        let number = number.to_string();
        let calls = [Call {
            rtp_port: media.port,
            did: did.to_string(),
            caller: number.clone(),
        }];
        let callers = Callers::start(
            self.dir.path(),
            self.centre.sip,
            &format!("call-{call}"),
            &calls,
            1,
            hold_ms,
        );
        let mut map = std::collections::BTreeMap::new();
        let port = media.port;
        map.insert(port, media);
        let media = Arc::new(map);
        tokio::spawn(follow_callers(callers.log.clone(), media.clone(), LIMIT));
        Placed {
            number,
            port,
            callers,
            media,
        }
    }

    /// Agent `n`'s phone's calls so far, each its steps in order, oldest
    /// call first.
    pub fn phone_calls(&self, n: usize) -> Vec<Vec<Event>> {
        let Some(phone) = &self.phones[n] else {
            return Vec::new();
        };
        let mut calls: Vec<Vec<Event>> = by_call(&phone.events()).into_values().collect();
        calls.sort_by_key(|steps| steps[0].at_us);
        calls
    }

    /// Agent `n`'s phone's steps of the call from `number`.
    pub fn phone_steps(&self, n: usize, number: &str) -> Vec<Event> {
        self.phone_calls(n)
            .into_iter()
            .find(|steps| steps[0].rest.first().map(String::as_str) == Some(number))
            .unwrap_or_default()
    }

    /// Waits until agent `n`'s phone logged `kind` for the call from
    /// `number`; that event.
    pub async fn wait_phone(&self, n: usize, number: &str, kind: &str, within: Duration) -> Event {
        let polls = within.as_millis() / 20;
        for _ in 0..=polls {
            if let Some(e) = self
                .phone_steps(n, number)
                .into_iter()
                .find(|e| e.kind == kind)
            {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "agent {n}'s phone did not log {kind} for {number} within {within:?}; its calls: {:?}\nnode log:\n{}",
            self.phone_calls(n),
            self.centre.log()
        );
    }

    /// The activity record of the call from `number`, once the history
    /// API serves it (after the call's after-call work).
    pub async fn record(&self, number: &str) -> Value {
        let filter = format!("queue={}", self.queue.id);
        for _ in 0..100 {
            let records = self.centre.activities(&filter, 10).await;
            let mine: Vec<&Value> = records.iter().filter(|r| r["caller"] == number).collect();
            match mine.as_slice() {
                [] => tokio::time::sleep(Duration::from_millis(100)).await,
                [one] => return (*one).clone(),
                more => panic!(
                    "the call from {number} has {} records: {more:?}",
                    more.len()
                ),
            }
        }
        panic!("no record of the call from {number} within 10 s");
    }

    /// The offers of a record: (agent index in this scene, result).
    pub fn offers(&self, record: &Value) -> Vec<(usize, String)> {
        record["segments"]
            .as_array()
            .expect("segments")
            .iter()
            .filter(|s| s["kind"] == "offer")
            .map(|s| {
                let agent = self
                    .agents
                    .iter()
                    .position(|a| s["agent"] == a.user)
                    .unwrap_or(usize::MAX);
                (agent, s["result"].as_str().unwrap_or("").to_string())
            })
            .collect()
    }

    /// The callers waiting in `queue`, in service order (the API's answer).
    pub async fn entries(&self, queue: u64) -> Value {
        let path = format!(
            "/api/v1/tenants/{}/queues/{queue}/entries",
            self.centre.tenant
        );
        self.centre.ok("GET", &path, None).await
    }

    /// Waits until `number` waits in queue `queue`; the time it was seen there.
    pub async fn wait_waiting(&self, queue: u64, number: &str, within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let entries = self.entries(queue).await;
            let found = entries
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["call"]["caller"] == number));
            if found {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{number} did not wait in queue {queue} within {within:?}\n{}",
            self.centre.log()
        );
    }

    /// The one record of the call from `number`, once the history serves it.
    pub async fn any_record(&self, number: &str) -> Value {
        for _ in 0..100 {
            let records = self.centre.activities("", 1).await;
            if let Some(r) = records.iter().find(|r| r["caller"] == number) {
                return r.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no record of the call from {number} within 10 s");
    }

    /// The entry id of the call from `number` waiting in `queue`.
    pub async fn entry_of(&self, queue: u64, number: &str) -> String {
        let entries = self.entries(queue).await;
        entries
            .as_array()
            .and_then(|e| e.iter().find(|e| e["call"]["caller"] == number))
            .and_then(|e| e["entry"].as_str())
            .unwrap_or_else(|| panic!("{number} waits in {queue}: {entries}"))
            .to_string()
    }

    /// Waits until agent `n`'s session has no open activity (idle again,
    /// or paused).
    pub async fn wait_free(&self, n: usize) -> Value {
        self.centre
            .wait_session(
                self.agents[n].user,
                "no open activity",
                Duration::from_secs(15),
                |s| s["activities"].as_array().is_some_and(|a| a.is_empty()),
            )
            .await
    }
}

/// A call placed by [`Scene::call`].
pub struct Placed {
    /// The caller's number.
    pub number: String,
    /// The caller's RTP port (its steps' key).
    pub port: u16,
    /// The SIPp caller.
    pub callers: Callers,
    /// Its media endpoint.
    pub media: Arc<std::collections::BTreeMap<u16, CallerMedia>>,
}

impl Placed {
    /// The caller's steps so far.
    pub fn steps(&self) -> Vec<Event> {
        self.callers.events()
    }

    /// The caller's `kind` step, if logged.
    pub fn step(&self, kind: &str) -> Option<Event> {
        self.steps().into_iter().find(|e| e.kind == kind)
    }

    /// Waits until the caller's SIPp is done, at most `within`; its exit
    /// code (0: the call went through the scenario), or a panic with its
    /// errors.
    pub async fn finish(&mut self, within: Duration) {
        let polls = within.as_millis() / 20;
        for _ in 0..=polls {
            match self.callers.exited() {
                Some(0) => return,
                Some(code) => panic!(
                    "the call from {} failed (SIPp exit {code}): {:?}\n{}",
                    self.number,
                    self.steps(),
                    self.callers.errors()
                ),
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        panic!(
            "the call from {} did not end within {within:?}: {:?}",
            self.number,
            self.steps()
        );
    }

    /// What the caller's media endpoint received.
    pub fn heard(&self) -> super::rtp::Heard {
        self.media[&self.port].heard()
    }
}
