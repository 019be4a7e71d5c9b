//! Replicated writes/s and commit latency (p50/p99) of a three-node Carillon
//! cluster beside a three-member etcd 3.4 cluster, on the same machine, with
//! fsync on in both, at 1, 16 and 256 concurrent clients. Each client writes
//! through the members in turn over HTTP/JSON: Carillon enqueues a waiting
//! caller (a replicated ledger command), etcd puts a key (its JSON gateway).
//! Run it with `benches/raft_vs_etcd.sh`, which builds in release mode and
//! pins this load generator to core 1 and the servers to core 0.
//!
//! Options (all optional): `--runs N` (default 3) runs of `--seconds S`
//! (default 6) each, at `--clients 1,16,256` concurrent clients; the table
//! shows the median of the runs.

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use carillon_benches::cluster::{acknowledged, pin, wait_for, BenchCluster};
use carillon_benches::load::{self, median, RunResult};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const RUN_SECONDS: u64 = 6;
const RUNS: usize = 3;
const CLIENTS: [usize; 3] = [1, 16, 256];

/// Replicated writes/s of three Carillon nodes beside three etcd members, at each client
/// count (run by `benches/raft_vs_etcd.sh`).
#[derive(Debug, clap::Parser)]
struct Options {
    /// Runs per client count (the table shows their median).
    #[arg(long, default_value_t = RUNS)]
    runs: usize,
    /// Length of one run, in seconds.
    #[arg(long, default_value_t = RUN_SECONDS)]
    seconds: u64,
    /// Concurrent clients, one level per value.
    #[arg(long, value_delimiter = ',', default_values_t = CLIENTS)]
    clients: Vec<usize>,
}

fn options() -> Result<Options> {
    let options = <Options as clap::Parser>::parse();
    if options.runs == 0 || options.seconds == 0 || options.clients.contains(&0) {
        bail!("--runs, --seconds and every --clients value must be at least 1");
    }
    Ok(options)
}
/// Three etcd members on 127.0.0.41-43, killed on drop.
struct Etcd {
    children: Vec<Child>,
    _dir: tempfile::TempDir,
    urls: Vec<String>,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_etcd() -> Result<Etcd> {
    let dir = tempfile::tempdir()?;
    let peers: Vec<String> = (1..=3)
        .map(|i| format!("e{i}=http://127.0.0.4{i}:2380"))
        .collect();
    let mut children = Vec::new();
    for i in 1..=3 {
        let ip = format!("127.0.0.4{i}");
        let child = Command::new("etcd")
            .args(["--name", &format!("e{i}")])
            .arg("--data-dir")
            .arg(dir.path().join(format!("e{i}")))
            .args([
                "--listen-client-urls",
                &format!("http://{ip}:2379"),
                "--advertise-client-urls",
                &format!("http://{ip}:2379"),
            ])
            .args([
                "--listen-peer-urls",
                &format!("http://{ip}:2380"),
                "--initial-advertise-peer-urls",
                &format!("http://{ip}:2380"),
            ])
            .args([
                "--initial-cluster",
                &peers.join(","),
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "bench",
            ])
            .args(["--log-level", "error"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context(
                "start etcd (install Debian's etcd-server: scripts/install-deps.sh --bench)",
            )?;
        pin(child.id(), "0")?;
        children.push(child);
    }
    Ok(Etcd {
        children,
        _dir: dir,
        urls: (1..=3)
            .map(|i| format!("http://127.0.0.4{i}:2379"))
            .collect(),
    })
}

fn line(system: &str, clients: usize, runs: &[RunResult]) -> (f64, String) {
    let per_second = median(runs, |r| r.per_second);
    let p50 = median(runs, |r| r.p50.as_secs_f64() * 1000.0);
    let p99 = median(runs, |r| r.p99.as_secs_f64() * 1000.0);
    let errors: usize = runs.iter().map(|r| r.errors).sum();
    (
        per_second,
        format!("| {system} | {clients} | {per_second:.0} | {p50:.2} | {p99:.2} | {errors} |"),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let Options {
        runs,
        seconds,
        clients: levels,
    } = options()?;
    let run_time = Duration::from_secs(seconds);
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(512)
        .build()?;
    // Carillon: three nodes on 127.0.0.31-33.
    let carillon = BenchCluster::start([21, 22, 23], 19_080, &http).await?;

    let etcd = start_etcd()?;
    for url in &etcd.urls {
        wait_for(&http, &format!("{url}/health")).await?;
    }

    let mut table = vec![
        "| system | clients | writes/s (median) | p50 ms | p99 ms | errors |".to_string(),
        "|---|---|---|---|---|---|".to_string(),
    ];
    let mut ratios = Vec::new();
    let mut details = Vec::new();
    for (round, clients) in levels.into_iter().enumerate() {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for run in 0..runs {
            ours.push(
                carillon
                    .enqueue_load(&http, clients, run_time, format!("r{round}-{run}"))
                    .await,
            );
            let (http2, urls2) = (http.clone(), Arc::new(etcd.urls.clone()));
            theirs.push(
                load::run(clients, run_time, move |c, n| {
                    let (http, urls) = (http2.clone(), urls2.clone());
                    async move {
                        let url = format!("{}/v3/kv/put", urls[(c + n) % urls.len()]);
                        let body = json!({
                            "key": STANDARD.encode(format!("r{round}-{run}-c{c}-n{n}")),
                            "value": STANDARD.encode(r#"{"entry":"waiting"}"#),
                        });
                        acknowledged(http.post(url).json(&body).send().await).await
                    }
                })
                .await,
            );
        }
        for (system, runs) in [("carillon", &ours), ("etcd 3.4", &theirs)] {
            let each: Vec<String> = runs
                .iter()
                .map(|r| {
                    format!(
                        "{:.0}/{:.1}/{:.1}/{}",
                        r.per_second,
                        r.p50.as_secs_f64() * 1000.0,
                        r.p99.as_secs_f64() * 1000.0,
                        r.errors
                    )
                })
                .collect();
            details.push(format!(
                "{system} at {clients} clients: {}",
                each.join("  ")
            ));
        }
        let (a, row_a) = line("carillon", clients, &ours);
        let (b, row_b) = line("etcd 3.4", clients, &theirs);
        table.push(row_a);
        table.push(row_b);
        ratios.push(format!(
            "{clients} clients: {:.2}x etcd",
            a / b.max(f64::MIN_POSITIVE)
        ));
    }
    println!("{}", table.join("\n"));
    println!("\nevery run (writes/s, p50 ms, p99 ms, errors):");
    for line in &details {
        println!("{line}");
    }
    println!(
        "\nthroughput ratio (carillon / etcd, medians of {runs} runs of {}s): {}",
        run_time.as_secs(),
        ratios.join(", ")
    );
    drop(etcd);
    drop(carillon);
    Ok(())
}
