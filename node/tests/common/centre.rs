//! A demo seen as a contact centre: its two queues and their DIDs, agents
//! added through the admin API (user with the agent role and the English
//! skill, a voice licence, a SIP phone it owns, checked in to queues at
//! login), their sessions, and the activity records.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use super::sipp::Account;
use super::{free_port, password_of, Api, Demo};

/// A queue of the demo and the DID that leads to it.
#[derive(Debug, Clone)]
pub struct Queue {
    /// Its id.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// A DID routed to it.
    pub did: String,
}

/// An agent the test added.
#[derive(Debug, Clone)]
pub struct Agent {
    /// Its number in the test (0-based).
    pub index: u32,
    /// Its user id.
    pub user: u64,
    /// Its SIP phone's device id.
    pub device: u64,
    /// The phone's account.
    pub account: Account,
}

impl Agent {
    /// The terminal of its phone (as a phone login by feature code names it).
    pub fn terminal(&self) -> String {
        format!("phone-{}", self.device)
    }
}

/// A running demo with tokens for its administrator and the operator.
pub struct Centre {
    /// The process.
    pub demo: Demo,
    /// Its API.
    pub api: Api,
    /// The system administrator's token.
    pub token: String,
    /// The platform operator's token.
    pub operator: String,
    /// The sample tenant.
    pub tenant: u64,
    /// The SIP address (UDP).
    pub sip: SocketAddr,
    /// The tenant's SIP domain.
    pub domain: String,
    /// Support (skills-based) and Sales (longest idle).
    pub queues: Vec<Queue>,
}

impl Centre {
    /// Starts a demo with extra command-line arguments.
    pub async fn start(dir: &Path, extra: &[&str]) -> Centre {
        let demo = Demo::start_with(dir, free_port(), free_port(), extra);
        let file = demo.demo_json();
        let api = demo.api();
        api.wait_ready().await;
        let token = api.login("admin", &password_of(&file, "admin")).await;
        let operator = api.login("operator", &password_of(&file, "operator")).await;
        let queues = file["queues"]
            .as_array()
            .expect("queues")
            .iter()
            .map(|q| Queue {
                id: q["id"].as_u64().expect("queue id"),
                name: q["name"].as_str().expect("name").to_string(),
                did: q["dids"][0].as_str().expect("did").to_string(),
            })
            .collect();
        Centre {
            tenant: file["tenant_id"].as_u64().expect("tenant_id"),
            sip: file["sip_addr"]
                .as_str()
                .expect("sip_addr")
                .parse()
                .expect("sip_addr is ip:port"),
            domain: file["sip_domain"].as_str().expect("domain").to_string(),
            demo,
            api,
            token,
            operator,
            queues,
        }
    }

    /// The queue called `name`.
    pub fn queue(&self, name: &str) -> Queue {
        self.queues
            .iter()
            .find(|q| q.name == name)
            .unwrap_or_else(|| panic!("the demo has a queue {name}"))
            .clone()
    }

    fn base(&self) -> String {
        format!("/api/v1/tenants/{}", self.tenant)
    }

    /// A call as the administrator that must succeed; its body.
    pub async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, reply) = self.api.call(Some(&self.token), method, path, body).await;
        assert!(status < 300, "{method} {path}: {status} {reply}");
        reply
    }

    /// Changes a queue's settings: `change` edits its spec, which is PUT back.
    pub async fn configure(
        &self,
        queue: u64,
        change: impl FnOnce(&mut serde_json::Map<String, Value>),
    ) {
        let path = format!("{}/queues/{queue}", self.base());
        let mut spec = self.ok("GET", &path, None).await;
        let map = spec.as_object_mut().expect("a queue is an object");
        map.remove("id");
        change(map);
        self.ok("PUT", &path, Some(spec)).await;
    }

    /// Adds `count` agents (numbered from `first`), each with a voice
    /// licence, the English skill at level 5, a SIP phone it owns, and
    /// `queues` to check in to at login.
    pub async fn add_agents(&self, first: u32, count: u32, queues: &[u64]) -> Vec<Agent> {
        if count == 0 {
            return Vec::new();
        }
        let base = self.base();
        for (path, body) in [
            (
                "licences/purchases",
                json!({"kind": "voice", "count": count}),
            ),
            (
                "licences/device-packages",
                json!({"count": count.div_ceil(10)}),
            ),
        ] {
            let (status, reply) = self
                .api
                .call(
                    Some(&self.operator),
                    "POST",
                    &format!("{base}/{path}"),
                    Some(body),
                )
                .await;
            assert!(status < 300, "{path}: {status} {reply}");
        }
        let skills = self.ok("GET", &format!("{base}/skills"), None).await;
        let english = skills
            .as_array()
            .expect("skills")
            .iter()
            .find(|s| s["name"] == "English")
            .expect("the demo has English")["id"]
            .clone();
        let mut tasks = tokio::task::JoinSet::new();
        for index in first..first + count {
            let api = Api {
                http: self.api.http.clone(),
                url: self.api.url.clone(),
                log: self.api.log.clone(),
            };
            let (token, base, domain) = (self.token.clone(), base.clone(), self.domain.clone());
            let (english, queues) = (english.clone(), queues.to_vec());
            tasks.spawn(async move {
                let user = json!({
                    "kind": "contact_centre", "roles": ["agent"], "full_name": format!("SIPp Agent {index}"),
                    "login": format!("sipp.agent.{index}"), "panel_access": true,
                    "skills": [{"skill": english, "level": 5}], "login_queues": queues,
                });
                let created = |what: &str, status: u16, reply: &Value| {
                    assert_eq!(status, 201, "create {what} {index}: {reply}");
                    reply["id"].as_u64().expect("id")
                };
                let (status, reply) = api
                    .call(Some(&token), "POST", &format!("{base}/users"), Some(user))
                    .await;
                let user = created("agent", status, &reply);
                let (status, reply) = api
                    .call(
                        Some(&token),
                        "POST",
                        &format!("{base}/licences/assignments"),
                        Some(json!({"user": user, "kind": "voice"})),
                    )
                    .await;
                assert!(status < 300, "licence for agent {index}: {reply}");
                let account = Account {
                    username: format!("sipp-agent-{index}"),
                    password: format!("Agent-Phone-{index}!"),
                    domain,
                };
                let (status, reply) = api
                    .call(
                        Some(&token),
                        "POST",
                        &format!("{base}/devices"),
                        Some(json!({
                            "kind": "sip_phone", "name": account.username, "owner": user,
                            "sip_username": account.username, "short_number": format!("{}", 6000 + index),
                            "sip_password": account.password,
                        })),
                    )
                    .await;
                let device = created("phone", status, &reply);
                Agent {
                    index,
                    user,
                    device,
                    account,
                }
            });
        }
        let mut agents: Vec<Agent> = tasks.join_all().await.into_iter().collect();
        agents.sort_by_key(|a| a.index);
        agents
    }

    /// Waits until every one of `usernames` is online (registered and
    /// answering), at most `within`.
    pub async fn wait_online(&self, usernames: &[String], within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let list = self
                .ok("GET", &format!("{}/extensions", self.base()), None)
                .await;
            let offline: Vec<&String> = usernames
                .iter()
                .filter(|u| {
                    !list.as_array().is_some_and(|l| {
                        l.iter()
                            .any(|e| e["sip_username"] == u.as_str() && e["state"] == "online")
                    })
                })
                .collect();
            if offline.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not online within {within:?}: {offline:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Logs `agent` in from its phone (A1: checked in to its login queues).
    pub async fn log_in(&self, agent: &Agent) {
        self.ok(
            "POST",
            &format!("{}/users/{}/session/login", self.base(), agent.user),
            Some(json!({"terminal": agent.terminal()})),
        )
        .await;
    }

    /// `user`'s session (`Value::Null` when logged out).
    pub async fn session(&self, user: u64) -> Value {
        self.get_or_null(&format!("{}/users/{user}/session", self.base()))
            .await
    }

    /// `user`'s A4 state as the ledger knows it (state, since when
    /// unreachable, the last session change and who caused it).
    pub async fn state(&self, user: u64) -> Value {
        self.get_or_null(&format!("{}/users/{user}/state", self.base()))
            .await
    }

    /// GET `path` as the administrator: the body, `Value::Null` for 404.
    async fn get_or_null(&self, path: &str) -> Value {
        let (status, body) = self.api.call(Some(&self.token), "GET", path, None).await;
        match status {
            200 => body,
            404 => Value::Null,
            _ => panic!("GET {path}: {status} {body}"),
        }
    }

    /// Waits until `ok` holds for `user`'s session; the session.
    pub async fn wait_session(
        &self,
        user: u64,
        what: &str,
        within: Duration,
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        self.wait_user(user, "session", what, within, ok).await
    }

    /// Waits until `ok` holds for `GET .../users/{user}/{part}` (`session`,
    /// `state`); that body.
    pub async fn wait_user(
        &self,
        user: u64,
        part: &str,
        what: &str,
        within: Duration,
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        let path = format!("{}/users/{user}/{part}", self.base());
        self.wait_get(&path, &format!("agent {user}: {what}"), within, ok)
            .await
    }

    async fn wait_get(
        &self,
        path: &str,
        what: &str,
        within: Duration,
        ok: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let s = self.get_or_null(path).await;
            if ok(&s) {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what} within {within:?}; GET {path}: {s}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every activity record of the tenant matching `filter` (query
    /// parameters of GET .../activities, e.g. `queue=3`), newest first, page
    /// by page (500 a page), at most `pages` pages.
    pub async fn activities(&self, filter: &str, pages: usize) -> Vec<Value> {
        let mut records = Vec::new();
        let first = format!("{}/activities?limit=500&{filter}", self.base());
        let mut path = first.clone();
        for _ in 0..pages {
            let page = self.ok("GET", &path, None).await;
            records.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next"].as_str() {
                Some(next) => path = format!("{first}&cursor={next}"),
                None => return records,
            }
        }
        panic!("more than {pages} pages of activities");
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.demo.log).unwrap_or_default()
    }
}
