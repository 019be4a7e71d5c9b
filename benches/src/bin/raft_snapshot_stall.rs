//! How long client writes wait while the replicated ledger takes snapshots.
//!
//! A three-node Carillon cluster (127.0.0.34-36, every node pinned to core 0,
//! this generator to core 1) is filled with waiting callers by 64 clients,
//! so that each snapshot carries tens of megabytes of state; then one client
//! writes through the members in turn while the nodes snapshot every 5,000
//! entries. The report counts the snapshots taken, the writes, and how many
//! of them waited more than 20 ms, 100 ms and 500 ms, from the nodes' own
//! `carillon_raft_request_duration_seconds{kind="write"}` histograms (summed
//! over the three nodes: each records the writes it was asked for).
//! Run it with `benches/raft_snapshot_stall.sh`.

use anyhow::{bail, Context, Result};
use carillon_benches::cluster::BenchCluster;
use std::time::Duration;

/// Write stalls while the nodes take snapshots (run by `benches/raft_snapshot_stall.sh`).
#[derive(Debug, clap::Parser)]
struct Options {
    /// Seconds of filling with 64 clients before the measurement.
    #[arg(long, default_value_t = 6)]
    fill_seconds: u64,
    /// Seconds of the one-client measurement.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Measurements, each on a fresh cluster.
    #[arg(long, default_value_t = 2)]
    runs: usize,
}

/// The upper bounds (seconds) whose cumulative counts the report compares.
const BOUNDS: [&str; 3] = ["0.02", "0.1", "0.5"];

/// Sums, over every node, the cumulative count of writes at or under each
/// of [`BOUNDS`], and the total.
async fn write_histogram(http: &reqwest::Client, urls: &[String]) -> Result<[u64; 4]> {
    let mut sums = [0u64; 4];
    for url in urls {
        let text = http
            .get(format!("{url}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        for line in text.lines() {
            let Some(rest) = line
                .strip_prefix("carillon_raft_request_duration_seconds_bucket{kind=\"write\",le=\"")
            else {
                continue;
            };
            let (bound, count) = rest.split_once("\"} ").context("a bucket line")?;
            let count: u64 = count.trim().parse().context("a bucket count")?;
            if let Some(i) = BOUNDS.iter().position(|b| *b == bound) {
                sums[i] += count;
            } else if bound == "+Inf" {
                sums[3] += count;
            }
        }
    }
    Ok(sums)
}

/// How many "snapshot built" lines the nodes have logged.
fn snapshots_built(cluster: &BenchCluster) -> usize {
    cluster
        .supervisor
        .ids()
        .into_iter()
        .map(|id| {
            std::fs::read_to_string(cluster.supervisor.log_path(id))
                .map(|log| log.matches("snapshot built").count())
                .unwrap_or(0)
        })
        .sum()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let options = <Options as clap::Parser>::parse();
    if options.runs == 0 || options.seconds == 0 {
        bail!("--runs and --seconds must be at least 1");
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(512)
        .build()?;
    println!("| run | filled with | snapshots taken | writes | over 20 ms | over 100 ms | over 500 ms | writes/s |");
    println!("|---|---|---|---|---|---|---|---|");
    for run in 1..=options.runs {
        let cluster = BenchCluster::start([24, 25, 26], 19_180, &http).await?;
        let fill = cluster
            .enqueue_load(
                &http,
                64,
                Duration::from_secs(options.fill_seconds),
                format!("fill{run}"),
            )
            .await;
        let filled = (fill.per_second * options.fill_seconds as f64) as u64;
        let before = write_histogram(&http, &cluster.urls).await?;
        let snapshots_before = snapshots_built(&cluster);
        let measured = cluster
            .enqueue_load(
                &http,
                1,
                Duration::from_secs(options.seconds),
                format!("one{run}"),
            )
            .await;
        let after = write_histogram(&http, &cluster.urls).await?;
        let snapshots = snapshots_built(&cluster) - snapshots_before;
        let total = after[3] - before[3];
        let over = |i: usize| total - (after[i] - before[i]);
        println!(
            "| {run} | {filled} writes | {snapshots} (on 3 nodes) | {total} | {} | {} | {} | {:.0} |",
            over(0),
            over(1),
            over(2),
            measured.per_second
        );
        if measured.errors > 0 || fill.errors > 0 {
            bail!(
                "{} writes failed while filling and {} while measuring",
                fill.errors,
                measured.errors
            );
        }
    }
    Ok(())
}
