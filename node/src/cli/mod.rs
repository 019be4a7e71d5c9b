//! Command-line interface of the `carillon` binary.

mod ctl;
mod demo;
mod node;

use crate::logging::{self, LogFormat};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Carillon: an actor-based, Raft-replicated contact-centre cluster.
#[derive(Debug, Parser)]
#[command(name = "carillon", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a cluster node from a configuration file.
    Node {
        /// The node's TOML configuration (see the README).
        #[arg(long)]
        config: PathBuf,
        /// Log line format.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Run a single-node demo with a sample tenant; prints URLs and credentials
    /// and writes them to DIR/demo.json.
    Demo {
        /// Where the demo keeps its data and demo.json.
        #[arg(long, default_value = "carillon-demo")]
        dir: PathBuf,
        /// Admin API address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        admin_addr: String,
        /// Raft address (node-to-node; the demo has one node).
        #[arg(long, default_value = "127.0.0.1:7000")]
        raft_addr: String,
        /// SIP address (UDP and TCP).
        #[arg(long, default_value = "127.0.0.1:5060")]
        sip_addr: String,
        /// SIP over WebSocket address (RFC 7118).
        #[arg(long, default_value = "127.0.0.1:5066")]
        ws_addr: String,
        /// SIP over TLS address (`sips:`; the demo's self-signed certificate;
        /// `off` turns it off).
        #[arg(long, default_value = "127.0.0.1:5061")]
        sip_tls_addr: String,
        /// SIP over secure WebSocket address (RFC 7118 WSS; `off` turns it off).
        #[arg(long, default_value = "127.0.0.1:5065")]
        wss_addr: String,
        /// The admin API over HTTPS (`off` turns it off).
        #[arg(long, default_value = "127.0.0.1:8443")]
        https_addr: String,
        /// A SIP edge setting, as in the `[sip]` section of a node's
        /// configuration file (for example `ban_s=30`); repeatable.
        #[arg(long = "sip-option", value_name = "KEY=VALUE")]
        sip_options: Vec<String>,
        /// An origin (`scheme://host[:port]`) whose pages may call the
        /// admin API from a browser (CORS); repeatable.
        #[arg(long = "cors-origin", value_name = "ORIGIN")]
        cors_origins: Vec<String>,
        /// A mail setting, as in the `[mail]` section of a node's
        /// configuration file (for example `smtp_host="relay.example"`);
        /// repeatable. Without them the demo sends no e-mail.
        #[arg(long = "mail-option", value_name = "KEY=VALUE")]
        mail_options: Vec<String>,
        /// The media relay's RTP port range (FIRST-LAST); it binds to the
        /// SIP address's IP.
        #[arg(long, default_value = "30000-39999")]
        rtp_ports: String,
        /// Log line format.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// A command-line client of the admin API, for scripts.
    Ctl(ctl::CtlArgs),
}

/// Runs the parsed command line; the process exit code.
pub fn main(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("carillon: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Node { config, log_format } => {
                logging::init(log_format);
                node::run(&config).await
            }
            Command::Demo {
                dir,
                admin_addr,
                raft_addr,
                sip_addr,
                ws_addr,
                sip_tls_addr,
                wss_addr,
                https_addr,
                sip_options,
                cors_origins,
                mail_options,
                rtp_ports,
                log_format,
            } => {
                logging::init(log_format);
                demo::run(demo::DemoArgs {
                    dir,
                    admin_addr,
                    raft_addr,
                    sip_addr,
                    ws_addr,
                    sip_tls_addr,
                    wss_addr,
                    https_addr,
                    sip_options,
                    cors_origins,
                    mail_options,
                    rtp_ports,
                })
                .await
            }
            Command::Ctl(args) => ctl::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "carillon failed");
            eprintln!("carillon: {e:#}");
            ExitCode::FAILURE
        }
    }
}
