//! A three-node Carillon cluster for the Raft benchmarks: started on
//! loopback with every node pinned to core 0, an operator logged in, and a
//! tenant with one queue whose waiting-caller entries are the writes.

use crate::load::{self, RunResult};
use anyhow::{bail, Context, Result};
use carillon_chaos::{AdminClient, ClusterSupervisor, NodeSpec};
use serde_json::json;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const OPERATOR_PASSWORD: &str = "Bench-Operator-Pass-1!";

/// Pins every thread of `pid` to `core`.
pub fn pin(pid: u32, core: &str) -> Result<()> {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", core, &pid.to_string()])
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("taskset failed for pid {pid}");
    }
    Ok(())
}

/// Waits until `url` answers a success status (20 s at most).
pub async fn wait_for(http: &reqwest::Client, url: &str) -> Result<()> {
    for _ in 0..200 {
        if let Ok(r) = http.get(url).send().await {
            if r.status().is_success() {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url} not ready")
}

/// Three running nodes (stopped when dropped) and what a client needs to
/// write to them.
pub struct BenchCluster {
    /// The supervisor that owns the node processes.
    pub supervisor: ClusterSupervisor,
    /// Each node's admin API base URL.
    pub urls: Vec<String>,
    /// The operator's bearer token.
    pub token: String,
    tenant: u64,
    queue: u64,
}

impl std::fmt::Debug for BenchCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a credential: never printed.
        f.debug_struct("BenchCluster")
            .field("urls", &self.urls)
            .field("tenant", &self.tenant)
            .field("queue", &self.queue)
            .finish_non_exhaustive()
    }
}

impl BenchCluster {
    /// Starts nodes `ids` (three) on 127.0.0.x with admin ports from
    /// `port_base`, pinned to core 0, and creates the tenant and queue.
    pub async fn start(ids: [u64; 3], port_base: u16, http: &reqwest::Client) -> Result<Self> {
        let specs: Vec<NodeSpec> = ids
            .iter()
            .map(|id| NodeSpec::loopback(*id, port_base))
            .collect();
        let extra =
            "[operator]\nlogin = \"operator\"\npassword_env = \"CARILLON_OPERATOR_PASSWORD\"\n";
        let mut supervisor = ClusterSupervisor::new(specs, extra)?;
        supervisor.set_env("CARILLON_OPERATOR_PASSWORD", OPERATOR_PASSWORD);
        for id in ids {
            supervisor.write_config(id, &ids)?;
            let pid = supervisor.start(id)?;
            pin(pid, "0")?;
        }
        let urls: Vec<String> = ids
            .iter()
            .map(|id| supervisor.spec(*id).admin_url())
            .collect();
        for url in &urls {
            wait_for(http, &format!("{url}/readyz")).await?;
        }
        let client = AdminClient::new(&urls[0])?;
        let token = client
            .token_when_ready(
                "operator",
                OPERATOR_PASSWORD,
                100,
                Duration::from_millis(100),
            )
            .await?;
        let op = client.with_token(&token);
        let tenant = op
            .post(
                "/api/v1/tenants",
                &json!({"name": "Bench", "sip_domain": "bench.test"}),
                None,
            )
            .await?
            .body["id"]
            .as_u64()
            .context("tenant")?;
        let queue = op
            .post(
                &format!("/api/v1/tenants/{tenant}/queues"),
                &json!({"name": "Bench"}),
                None,
            )
            .await?
            .body["id"]
            .as_u64()
            .context("queue")?;
        Ok(Self {
            supervisor,
            urls,
            token,
            tenant,
            queue,
        })
    }

    /// The URL that enqueues a waiting caller through node number `i`
    /// (modulo three): one replicated write.
    fn enqueue_url(&self, i: usize) -> String {
        format!(
            "{}/api/v1/tenants/{}/queues/{}/entries",
            self.urls[i % self.urls.len()],
            self.tenant,
            self.queue
        )
    }

    /// `clients` closed loops enqueueing waiting callers for `duration`,
    /// each request through the members in turn; the callers' names start
    /// with `tag` (distinct per run, so that no write repeats another).
    pub async fn enqueue_load(
        &self,
        http: &reqwest::Client,
        clients: usize,
        duration: Duration,
        tag: String,
    ) -> RunResult {
        let targets: Arc<Vec<String>> = Arc::new((0..3).map(|i| self.enqueue_url(i)).collect());
        let (http, token, tag) = (http.clone(), self.token.clone(), Arc::new(tag));
        load::run(clients, duration, move |c, n| {
            let (http, targets, token, tag) =
                (http.clone(), targets.clone(), token.clone(), tag.clone());
            async move {
                let body = json!({"entry": format!("{tag}-c{c}-n{n}")});
                acknowledged(
                    http.post(&targets[(c + n) % targets.len()])
                        .bearer_auth(token)
                        .json(&body)
                        .send()
                        .await,
                )
                .await
            }
        })
        .await
    }
}

/// Whether a write was acknowledged: a success status and the whole answer
/// read. Reading the body to its end, as any real client does, is also what
/// lets the HTTP client put the connection back in its pool; a response
/// dropped unread costs a new TCP connection for the next request.
pub async fn acknowledged(reply: reqwest::Result<reqwest::Response>) -> bool {
    match reply {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        _ => false,
    }
}
