//! Three `carillon node` processes on 127.0.0.11-13. A tenant gets 1,000
//! users and licence seats written concurrently through all three nodes'
//! APIs while the leader is SIGKILLed and restarted, twice; then a member is
//! removed and another added while writes continue. Afterwards every
//! acknowledged write is on every member, none twice, and no read polled
//! from the survivors during the run showed more seats in use than the pool.

use anyhow::{bail, Context, Result};
use carillon_chaos::{AdminClient, ChaosReport, ClusterSupervisor, NodeSpec};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const USERS: usize = 1_000;
const SEATS: u64 = 600;
const WORKERS: usize = 16;
const PORT_BASE: u16 = 18_080;
const OPERATOR_PASSWORD: &str = "Chaos-Operator-Pass-1!";

/// Shared view of which nodes are up, for the load and the poller.
#[derive(Default)]
struct Live {
    urls: Mutex<BTreeMap<u64, String>>,
}

impl Live {
    fn set(&self, id: u64, url: Option<String>) {
        let mut urls = self.urls.lock().expect("lock");
        match url {
            Some(url) => urls.insert(id, url),
            None => urls.remove(&id),
        };
    }

    fn pick(&self, n: usize) -> Option<String> {
        let urls = self.urls.lock().expect("lock");
        let all: Vec<&String> = urls.values().collect();
        (!all.is_empty()).then(|| all[n % all.len()].clone())
    }

    fn all(&self) -> Vec<(u64, String)> {
        self.urls
            .lock()
            .expect("lock")
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }
}

/// Sends one idempotent write, retrying on other nodes until it is answered
/// (2xx or a 4xx refusal). Transport errors and 503s are retried with the
/// same key; the answer is the first application's.
async fn write(
    live: &Live,
    token: &str,
    path: &str,
    body: &Value,
    key: &str,
    salt: usize,
) -> Result<(u16, Value)> {
    for attempt in 0..120 {
        let Some(url) = live.pick(salt + attempt) else {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        let client = AdminClient::new(&url)?.with_token(token);
        match client.post(path, body, Some(key)).await {
            Ok(reply) if reply.status < 500 => return Ok((reply.status, reply.body)),
            Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    bail!("{path} with key {key} was never answered")
}

async fn leader_of(live: &Live, token: &str) -> Option<u64> {
    for (_, url) in live.all() {
        let client = AdminClient::new(&url).ok()?.with_token(token);
        if let Ok(reply) = client.get("/api/v1/cluster").await {
            if let Some(leader) = reply.body.get("leader").and_then(Value::as_u64) {
                return Some(leader);
            }
        }
    }
    None
}

/// Releases `more` acknowledgements to the load and waits until they are
/// in, for at most two minutes. The load never runs past its budget, so it
/// cannot finish before the last fault phase however fast the machine is; a
/// worker that stops before the load is released in full has failed (its
/// error is then reported).
async fn release_and_wait(
    load: &Load,
    more: usize,
    workers: &[tokio::task::JoinHandle<Result<()>>],
) -> Result<()> {
    let target = load.release(more);
    for _ in 0..2_400 {
        if load.acked() >= target {
            return Ok(());
        }
        if workers.iter().any(|w| w.is_finished()) {
            bail!("a load worker stopped early at {} acks", load.acked());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the load did not reach {target} acks within two minutes")
}

/// The load's progress and how far the fault driver lets it go.
#[derive(Default)]
struct Load {
    acked: AtomicUsize,
    budget: AtomicUsize,
    next_user: AtomicUsize,
}

impl Load {
    fn acked(&self) -> usize {
        self.acked.load(Ordering::Relaxed)
    }

    /// Lets the load run `more` acknowledgements past the current count;
    /// answers the new budget.
    fn release(&self, more: usize) -> usize {
        let budget = self.acked().saturating_add(more);
        self.budget.fetch_max(budget, Ordering::Relaxed);
        budget
    }

    /// Waits until the budget allows another user (at most five minutes),
    /// then answers its index, or None when every user has been taken.
    async fn next(&self) -> Result<Option<usize>> {
        for _ in 0..6_000 {
            if self.acked() < self.budget.load(Ordering::Relaxed) {
                let i = self.next_user.fetch_add(1, Ordering::Relaxed);
                return Ok((i < USERS).then_some(i));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the load was not released for five minutes")
    }
}

async fn wait_ready(url: &str) -> Result<()> {
    AdminClient::new(url)?
        .wait_until("/readyz", Duration::from_secs(30), |r| r.ok())
        .await
        .map(|_| ())
}

/// Joins the finished workers to report why the load stopped.
async fn fail(
    error: anyhow::Error,
    workers: Vec<tokio::task::JoinHandle<Result<()>>>,
) -> anyhow::Error {
    let mut reasons = vec![error.to_string()];
    for worker in workers {
        if worker.is_finished() {
            match worker.await {
                Ok(Err(e)) => reasons.push(format!("{e:#}")),
                Ok(Ok(())) => {}
                Err(e) => reasons.push(e.to_string()),
            }
        } else {
            worker.abort();
        }
    }
    anyhow::anyhow!(reasons.join("; "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_survive_leader_kills_and_membership_changes() -> Result<()> {
    let specs: Vec<NodeSpec> = (1..=4)
        .map(|id| NodeSpec::loopback(id, PORT_BASE))
        .collect();
    let extra = "[raft]\nsnapshot_every_entries = 30\nkeep_entries_after_snapshot = 5\n\n\
                 [operator]\nlogin = \"operator\"\npassword_env = \"CARILLON_OPERATOR_PASSWORD\"\n";
    let mut cluster = ClusterSupervisor::new(specs, extra)?;
    cluster.set_env("CARILLON_OPERATOR_PASSWORD", OPERATOR_PASSWORD);
    for id in 1..=3 {
        cluster.write_config(id, &[1, 2, 3])?;
    }
    cluster.write_config(4, &[])?;
    let live = Arc::new(Live::default());
    for id in 1..=3 {
        cluster.start(id)?;
    }
    for id in 1..=3 {
        let url = cluster.spec(id).admin_url();
        wait_ready(&url)
            .await
            .with_context(|| cluster.log_tail(id, 30))?;
        live.set(id, Some(url));
    }
    let anyone = AdminClient::new(&cluster.spec(1).admin_url())?;
    // The bootstrapping nodes create the operator just after the cluster forms.
    let token = anyone
        .token_when_ready(
            "operator",
            OPERATOR_PASSWORD,
            120,
            Duration::from_millis(250),
        )
        .await
        .context("the operator can log in")?;
    let (status, tenant) = write(
        &live,
        &token,
        "/api/v1/tenants",
        &json!({"name": "Chaos", "sip_domain": "chaos.test"}),
        "tenant",
        0,
    )
    .await?;
    assert_eq!(status, 201, "{tenant}");
    let t = tenant["id"].as_u64().context("tenant id")?;
    let base = format!("/api/v1/tenants/{t}");
    let (status, reply) = write(
        &live,
        &token,
        &format!("{base}/licences/purchases"),
        &json!({"kind": "voice", "count": SEATS}),
        "seats",
        0,
    )
    .await?;
    assert_eq!(status, 200, "{reply}");

    let mut report = ChaosReport::default();
    let report_lock = Arc::new(Mutex::new(ChaosReport::default()));
    let done = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Load::default());

    // The invariant poller: seats in use never exceed the pool, on any survivor.
    let poller = {
        let (live, token, report, done, base) = (
            live.clone(),
            token.clone(),
            report_lock.clone(),
            done.clone(),
            base.clone(),
        );
        tokio::spawn(async move {
            for _ in 0..6_000 {
                if done.load(Ordering::Relaxed) {
                    break;
                }
                for (id, url) in live.all() {
                    let Ok(client) = AdminClient::new(&url) else {
                        continue;
                    };
                    let Ok(reply) = client
                        .with_token(&token)
                        .get(&format!("{base}/licences"))
                        .await
                    else {
                        continue;
                    };
                    if !reply.ok() {
                        continue;
                    }
                    for kind in reply.body["kinds"].as_array().into_iter().flatten() {
                        let (in_use, pool) = (
                            kind["in_use"].as_u64().unwrap_or(0),
                            kind["pool"].as_u64().unwrap_or(0),
                        );
                        report.lock().expect("lock").check(in_use <= pool, || {
                            format!("node {id}: {} seats in use > pool {pool}", in_use)
                        });
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // The load: 1,000 users and a voice seat each, through every node.
    let outcomes = Arc::new(Mutex::new(BTreeMap::<usize, (u64, String)>::new()));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let (live, token, base, outcomes, load) = (
            live.clone(),
            token.clone(),
            base.clone(),
            outcomes.clone(),
            load.clone(),
        );
        workers.push(tokio::spawn(async move {
            while let Some(i) = load.next().await? {
                let login = format!("agent{i:04}");
                let body = json!({"kind": "contact_centre", "roles": ["agent"], "full_name": format!("Agent {i}"), "login": login});
                let (status, reply) = write(&live, &token, &format!("{base}/users"), &body, &format!("user-{i}"), i).await?;
                anyhow::ensure!(status == 201, "creating {login}: {status} {reply}");
                let user = reply["id"].as_u64().context("user id")?;
                load.acked.fetch_add(1, Ordering::Relaxed);
                let seat = json!({"user": user, "kind": "voice"});
                let (status, reply) = write(&live, &token, &format!("{base}/licences/assignments"), &seat, &format!("seat-{i}"), i + 1).await?;
                let outcome = match (status, reply["code"].as_str()) {
                    (200, _) => "assigned".to_string(),
                    (409, Some("LICENCE_POOL_EXHAUSTED")) => "exhausted".to_string(),
                    _ => anyhow::bail!("seat for {login}: {status} {reply}"),
                };
                load.acked.fetch_add(1, Ordering::Relaxed);
                outcomes.lock().expect("lock").insert(i, (user, outcome));
            }
            Ok::<(), anyhow::Error>(())
        }));
    }

    // The faults: kill the leader twice, restart it after it fell far behind.
    for round in 1..=2 {
        if let Err(e) = release_and_wait(&load, 150, &workers).await {
            return Err(fail(e, workers).await);
        }
        let leader = leader_of(&live, &token).await.context("a leader")?;
        live.set(leader, None);
        cluster.kill(leader)?;
        report.event(format!(
            "round {round}: SIGKILL leader node {leader} after {} acks",
            load.acked()
        ));
        if let Err(e) = release_and_wait(&load, 350, &workers).await {
            return Err(fail(e, workers).await);
        }
        let new_leader = leader_of(&live, &token).await.context("a new leader")?;
        assert_ne!(new_leader, leader, "the survivors elected another leader");
        // Writes go on while the old leader restarts.
        load.release(100);
        cluster.start(leader)?;
        let url = cluster.spec(leader).admin_url();
        wait_ready(&url)
            .await
            .with_context(|| cluster.log_tail(leader, 30))?;
        live.set(leader, Some(url.clone()));
        let status = AdminClient::new(&url)?
            .with_token(&token)
            .get("/api/v1/cluster")
            .await?;
        let installed = status.body["snapshots_installed"].as_u64().unwrap_or(0);
        report.event(format!("round {round}: node {leader} restarted, new leader {new_leader}, snapshots installed {installed}"));
        report.check(installed >= 1, || {
            format!(
                "node {leader} was far behind and should have caught up by snapshot: {}",
                status.body
            )
        });
    }

    // A hung follower (SIGSTOP) does not stop the cluster; it resumes and catches up.
    let leader = leader_of(&live, &token).await.context("a leader")?;
    let follower = *live
        .all()
        .iter()
        .map(|(id, _)| id)
        .find(|id| **id != leader)
        .context("a follower")?;
    live.set(follower, None);
    cluster.pause(follower)?;
    let stalled = release_and_wait(&load, 100, &workers).await;
    cluster.resume(follower)?;
    if let Err(e) = stalled {
        return Err(fail(e, workers).await);
    }
    live.set(follower, Some(cluster.spec(follower).admin_url()));
    report.event(format!(
        "node {follower} paused (SIGSTOP) for 100 acks, then resumed"
    ));

    // Membership: node 4 joins as a voter, node 3 leaves, while the rest of
    // the load (at least 2 * USERS - 1,300 acks) goes on.
    load.release(usize::MAX);
    report.event(format!(
        "membership change begins at {} of {} acks",
        load.acked(),
        2 * USERS
    ));
    cluster.start(4)?;
    let spec4 = cluster.spec(4).clone();
    let add = json!({"id": 4, "raft_addr": spec4.raft_addr(), "admin_addr": spec4.admin_addr(), "voter": true});
    let mut joined = None;
    for (_, url) in live.all() {
        let reply = AdminClient::new(&url)?
            .with_token(&token)
            .post("/api/v1/cluster/members", &add, None)
            .await?;
        if reply.ok() {
            joined = Some(reply.body);
            break;
        }
    }
    let joined = joined.context("node 4 joined")?;
    report.event(format!("node 4 joined: {}", joined["members"]));
    live.set(4, Some(spec4.admin_url()));
    live.set(3, None);
    let mut removed = false;
    for (_, url) in live.all() {
        let reply = AdminClient::new(&url)?
            .with_token(&token)
            .delete("/api/v1/cluster/members/3")
            .await?;
        if reply.ok() {
            removed = true;
            break;
        }
    }
    assert!(removed, "node 3 was removed");
    report.event("node 3 removed");
    cluster.terminate(3, Duration::from_secs(15))?;

    for worker in workers {
        worker.await??;
    }
    done.store(true, Ordering::Relaxed);
    poller.await?;

    // Every acknowledged write is on every member, once.
    let outcomes = outcomes.lock().expect("lock").clone();
    assert_eq!(outcomes.len(), USERS);
    let assigned = outcomes.values().filter(|(_, o)| o == "assigned").count() as u64;
    assert_eq!(
        assigned, SEATS,
        "every seat of the pool was taken exactly once"
    );
    let members: Vec<u64> = vec![1, 2, 4];
    let leader_status = AdminClient::new(&cluster.spec(1).admin_url())?
        .with_token(&token)
        .get("/api/v1/cluster")
        .await?;
    let ids: BTreeSet<u64> = leader_status.body["members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_u64())
        .collect();
    assert_eq!(
        ids,
        members.iter().copied().collect(),
        "membership after the change"
    );
    for id in members {
        let client = AdminClient::new(&cluster.spec(id).admin_url())?.with_token(&token);
        let users = client
            .wait_until(&format!("{base}/users"), Duration::from_secs(30), |r| {
                r.body.as_array().is_some_and(|a| a.len() == USERS)
            })
            .await
            .with_context(|| format!("node {id} has every user"))?;
        let logins: BTreeSet<&str> = users
            .body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u["login"].as_str())
            .collect();
        assert_eq!(logins.len(), USERS, "node {id}: no user twice");
        for (i, (user, _)) in &outcomes {
            assert!(
                users
                    .body
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(
                        |u| u["id"].as_u64() == Some(*user) && u["login"] == format!("agent{i:04}")
                    ),
                "node {id} has acknowledged user {i}"
            );
        }
        let licences = client.get(&format!("{base}/licences")).await?;
        let voice = licences.body["kinds"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|k| k["kind"] == "voice")
            .cloned()
            .context("voice")?;
        assert_eq!(
            voice["in_use"].as_u64(),
            Some(assigned),
            "node {id}: every acknowledged seat, none twice"
        );
    }
    // The membership changes are in the platform's audit trail of every
    // member, with the operator as their actor.
    for id in [1, 2, 4] {
        let audit = AdminClient::new(&cluster.spec(id).admin_url())?
            .with_token(&token)
            .wait_until(
                "/api/v1/audit?object_kind=member&limit=10",
                Duration::from_secs(30),
                |r| r.body["items"].as_array().is_some_and(|a| a.len() >= 2),
            )
            .await
            .with_context(|| format!("node {id} has the membership audit records"))?;
        let items = audit.body["items"].as_array().cloned().unwrap_or_default();
        let joined = items
            .iter()
            .any(|r| r["after"]["id"] == 4 && r["actor"]["kind"] == "operator");
        let left = items
            .iter()
            .any(|r| r["before"]["id"] == 3 && r["after"].is_null());
        report.check(joined && left, || {
            format!("node {id}: node 4's join and node 3's removal are audited: {items:?}")
        });
    }
    let polled = report_lock.lock().expect("lock").clone();
    report.event(format!(
        "poller: {} checks of seats <= pool",
        polled.checks()
    ));
    for violation in polled.violations() {
        report.check(false, || violation.clone());
    }
    assert!(
        polled.checks() > 50,
        "the poller kept reading during the run"
    );
    println!("{report}");
    report.assert_clean();
    Ok(())
}
