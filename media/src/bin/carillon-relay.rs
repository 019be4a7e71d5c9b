//! `carillon-relay`: a stand-alone media relay (what a relay-only node runs), driven over
//! its HTTP control API. Prints `ready <control address>` on stdout once serving; stops on
//! SIGINT/SIGTERM or when stdin closes (so a test that dies takes its relay with it).
//! It loads the recorded music on hold and announcements first, and exits with an error
//! naming the file and the Debian package to install when one is missing.

use anyhow::Context;
use carillon_media::leg::LatchPolicy;
use carillon_media::shell::{self, RelayConfig, SoundsConfig};
use carillon_media::sound_library::{DEFAULT_MOH_DIR, DEFAULT_SOUNDS_DIR};
use clap::Parser;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(about = "Carillon media relay")]
struct Args {
    /// Address the legs' sockets bind to.
    #[arg(long, default_value = "127.0.0.1")]
    bind_ip: IpAddr,
    /// Address written in SDP (default: --bind-ip).
    #[arg(long)]
    advertised_ip: Option<IpAddr>,
    /// Port range of the pool, `first-last`.
    #[arg(long, default_value = "30000-39999")]
    ports: String,
    /// HTTP control API address.
    #[arg(long, default_value = "127.0.0.1:19000")]
    control: SocketAddr,
    /// Directory of recordings.
    #[arg(long, default_value = "recordings")]
    recordings_dir: PathBuf,
    /// Music on hold (Debian's asterisk-moh-opsound-wav).
    #[arg(long, default_value = DEFAULT_MOH_DIR)]
    moh_dir: PathBuf,
    /// Announcements (Debian's asterisk-core-sounds-en-wav).
    #[arg(long, default_value = DEFAULT_SOUNDS_DIR)]
    sounds_dir: PathBuf,
    /// Nap after an engine turn that relayed few datagrams, in microseconds (0: none, at
    /// most 50,000); at most this much latency added, for fewer wake-ups under load.
    #[arg(long, default_value_t = shell::DEFAULT_WAKE_COALESCE_US)]
    wake_coalesce_us: u64,
    /// Consecutive packets from a new source needed to re-latch.
    #[arg(long, default_value_t = 5)]
    relatch_packets: u32,
    /// Silence of the latched source needed before re-latching.
    #[arg(long, default_value_t = 500)]
    relatch_quiet_ms: u64,
    /// Do not watch stdin (stop only on a signal).
    #[arg(long)]
    ignore_stdin: bool,
}

fn port_range(text: &str) -> anyhow::Result<(u16, u16)> {
    let (first, last) = text.split_once('-').context("--ports is first-last")?;
    Ok((first.trim().parse()?, last.trim().parse()?))
}

async fn stop_requested(watch_stdin: bool) {
    let stdin_closed = async {
        if watch_stdin {
            // Reading blocks a thread; the runtime's blocking pool is there for that.
            let _ = tokio::task::spawn_blocking(|| {
                let mut sink = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
            })
            .await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
        () = stdin_closed => {}
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (first_port, last_port) = port_range(&args.ports)?;
    let config = RelayConfig {
        bind_ip: args.bind_ip,
        advertised_ip: args.advertised_ip,
        first_port,
        last_port,
        control_addr: Some(args.control),
        recordings_dir: args.recordings_dir.clone(),
        latch: LatchPolicy {
            relatch_packets: args.relatch_packets,
            relatch_quiet_ms: args.relatch_quiet_ms,
        },
        wake_coalesce_us: args.wake_coalesce_us,
        sounds: SoundsConfig {
            moh_dir: args.moh_dir.clone(),
            sounds_dir: args.sounds_dir.clone(),
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let handle = shell::serve(config).await?;
        let addr = handle.control_addr().context("no control address")?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "ready {addr}")?;
        stdout.flush()?;
        stop_requested(!args.ignore_stdin).await;
        handle.shutdown().await?;
        Ok(())
    })
}
