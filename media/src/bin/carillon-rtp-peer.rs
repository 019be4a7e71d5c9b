//! `carillon-rtp-peer`: an RTP endpoint for tests and benchmarks. It sends G.711 at 50
//! packets/s per stream (a deterministic pattern per seed), optionally RFC 4733 digits and
//! a move to a second local port, receives what comes back and writes a JSON report.
//!
//! One stream from flags, or many from a JSON plan (`--plan`, see `carillon_media::peer`).

use anyhow::Context;
use carillon_media::peer::{self, PeerPlan, StreamPlan};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(about = "Send and receive G.711 RTP; write a JSON report")]
struct Args {
    /// A JSON plan (`PeerPlan`); the stream flags are then ignored.
    #[arg(long)]
    plan: Option<PathBuf>,
    /// Local address.
    #[arg(long)]
    local: Option<SocketAddr>,
    /// Target address.
    #[arg(long)]
    remote: Option<SocketAddr>,
    /// Seed of the sent pattern (and SSRC).
    #[arg(long, default_value_t = 1)]
    seed: u32,
    /// Seed of the far side's pattern, to match received frames.
    #[arg(long)]
    expect_seed: Option<u32>,
    /// How long to send.
    #[arg(long, default_value_t = 2000)]
    duration_ms: u64,
    /// How long to keep receiving afterwards.
    #[arg(long, default_value_t = 500)]
    linger_ms: u64,
    /// Digits to send (RFC 4733).
    #[arg(long, default_value = "")]
    dtmf: String,
    /// When to send the first digit.
    #[arg(long, default_value_t = 500)]
    dtmf_at_ms: u64,
    /// A second local address to move to.
    #[arg(long)]
    switch_to: Option<SocketAddr>,
    /// When to move.
    #[arg(long, default_value_t = 1000)]
    switch_after_ms: u64,
    /// `PCMU` or `PCMA`.
    #[arg(long, default_value = "PCMU")]
    law: String,
    /// Audio payload type.
    #[arg(long, default_value_t = 0)]
    payload_type: u8,
    /// Where to write the report (stdout when absent).
    #[arg(long)]
    report: Option<PathBuf>,
}

fn plan_from(args: &Args) -> anyhow::Result<PeerPlan> {
    if let Some(path) = &args.plan {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        return serde_json::from_slice(&text).context("parsing the plan");
    }
    let local = args.local.context("--local or --plan is needed")?;
    let remote = args.remote.context("--remote or --plan is needed")?;
    Ok(PeerPlan {
        streams: vec![StreamPlan {
            local,
            remote,
            seed: args.seed,
            expect_seed: args.expect_seed,
            switch_to: args.switch_to,
            switch_after_ms: args.switch_after_ms,
            dtmf: args.dtmf.clone(),
            dtmf_at_ms: args.dtmf_at_ms,
            payloads_file: None,
        }],
        duration_ms: args.duration_ms,
        linger_ms: args.linger_ms,
        law: args.law.clone(),
        payload_type: args.payload_type,
        event_payload_type: 101,
        start_at_unix_ms: None,
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let plan = plan_from(&args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(peer::run(plan))?;
    let text = serde_json::to_string_pretty(&report)?;
    match &args.report {
        Some(path) => {
            // Write then rename, so a reader never sees half a report.
            let partial = path.with_extension("partial");
            std::fs::write(&partial, text)?;
            std::fs::rename(&partial, path)?;
        }
        None => println!("{text}"),
    }
    Ok(())
}
