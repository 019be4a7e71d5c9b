//! A closed-loop HTTP load generator: `clients` tasks each send one request
//! at a time for a fixed duration; latencies of successful requests are kept.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most requests one run may send, whatever the duration.
pub const MAX_REQUESTS_PER_RUN: usize = 2_000_000;

/// What one run measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Successful requests per second.
    pub per_second: f64,
    /// Median latency of successful requests.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Failed requests.
    pub errors: usize,
}

/// Runs `clients` loops of `request(client, n)` for `duration`.
pub async fn run<F, Fut>(clients: usize, duration: Duration, request: F) -> RunResult
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let started = benchmark_now();
    let deadline = started + duration;
    let per_client = MAX_REQUESTS_PER_RUN / clients.max(1);
    let mut tasks = Vec::new();
    for client in 0..clients {
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            for n in 0..per_client {
                let sent = benchmark_now();
                if sent >= deadline {
                    break;
                }
                if request(client, n).await {
                    latencies.push(sent.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        if let Ok((l, e)) = task.await {
            latencies.extend(l);
            errors += e;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    RunResult {
        per_second: latencies.len() as f64 / elapsed,
        p50: at(0.50),
        p99: at(0.99),
        errors,
    }
}

/// The median of `values` (by `key`).
pub fn median<T: Clone>(values: &[T], key: impl Fn(&T) -> f64) -> f64 {
    let mut keys: Vec<f64> = values.iter().map(key).collect();
    keys.sort_by(f64::total_cmp);
    keys.get(keys.len() / 2).copied().unwrap_or(0.0)
}

#[allow(clippy::disallowed_methods)] // a benchmark measures real time
fn benchmark_now() -> Instant {
    Instant::now()
}
