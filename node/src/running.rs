//! A running node: consensus, the admin API, the history store and its
//! writer, and (once bootstrapped) the operator account, started and
//! stopped together.

use crate::calls::glue::CallGlue;
use crate::calls::media::MediaRelays;
use crate::calls::services::NodeServices;
use crate::calls::transport::Peers;
use crate::config::NodeConfig;
use crate::history::{HistoryMetrics, RedbHistory};
use crate::sip_io::SipServer;
use crate::sip_ledger::EdgePresence;
use crate::sip_metrics::SipCollector;
use anyhow::{Context, Result};
use carillon_actors::history::HistoryStore;
use carillon_actors::ledger::Ledger;
use carillon_admin::Admin;
use carillon_consensus::{Clock, Consensus, ConsensusConfig, SystemClock};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long each shutdown phase may take after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// The operator account to create when this node bootstraps the cluster.
#[derive(Debug, Clone)]
pub struct OperatorCredentials {
    /// Login.
    pub login: String,
    /// Password (kept in memory only until the account exists).
    pub password: String,
}

/// A node whose services are running.
#[derive(Debug)]
pub struct RunningNode {
    consensus: Consensus<Ledger>,
    admin: Admin,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    bootstrapper: Option<JoinHandle<()>>,
    sip: Option<SipServer>,
    relay: Option<carillon_media::shell::RelayHandle>,
    history_writer: JoinHandle<()>,
    mail_task: Option<JoinHandle<()>>,
    https_addr: Option<std::net::SocketAddr>,
}

impl RunningNode {
    /// Starts consensus and the admin API; when `config.bootstrap` is set,
    /// initialises the cluster and creates the operator account.
    pub async fn start(config: &NodeConfig, operator: Option<OperatorCredentials>) -> Result<Self> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let registry = prometheus::Registry::new();
        // Actor messages from other nodes ride beside Raft on its listener.
        let (inbound_tx, inbound_rx) = tokio::sync::mpsc::channel(65_536);
        let consensus = Consensus::<Ledger>::start(
            ConsensusConfig {
                node_id: config.node_id,
                addr: config.addr(),
                data_dir: config.data_dir.clone(),
                timing: config.timing(),
                extra_routes: Some(crate::calls::transport::inbound_routes(inbound_tx)),
            },
            clock.clone(),
            &registry,
        )
        .await
        .context("start consensus")?;
        if config.bootstrap {
            consensus
                .initialize(config.initial_members())
                .await
                .context("initialise the cluster")?;
        }
        let relay = match config.relay() {
            Some(relay_config) => Some(
                carillon_media::shell::serve(relay_config)
                    .await
                    .context("start the media relay")?,
            ),
            None => None,
        };
        let media = MediaRelays::new(
            relay.as_ref().map(|r| r.control()),
            config.media_nodes.clone(),
        );
        media.spawn_load_poll();
        let peers = Peers::new(config.node_id);
        peers.attach(consensus.clone());
        let services = Arc::new(NodeServices::new(
            config.node_id,
            clock.clone(),
            consensus.clone(),
            peers,
            media.clone(),
        ));
        services
            .offer_latency()
            .register(&registry)
            .context("register the queue offer latency metric")?;
        let host = crate::calls::start_actors(services.clone(), consensus.clone(), inbound_rx);
        crate::calls::liveness::spawn(consensus.clone());
        crate::calls::daily::spawn(consensus.clone(), clock.clone());
        let sip = match config.sip_server() {
            Some(sip_config) => {
                let view = crate::directory::spawn(consensus.clone());
                let glue = CallGlue::new(
                    config.node_id,
                    view.clone(),
                    host.clone(),
                    services.clone(),
                    media.choose(),
                    boot_id(),
                );
                let (server, commands) =
                    SipServer::start(sip_config, crate::directory::ViewAccounts::new(view), glue)
                        .await
                        .context("start the SIP edge")?;
                services.attach_edge(commands);
                crate::calls::registrations::spawn(
                    config.node_id,
                    services.clone(),
                    server.registrations(),
                );
                registry
                    .register(Box::new(SipCollector::new(
                        server.snapshot(),
                        server.counters(),
                    )))
                    .context("register SIP metrics")?;
                Some(server)
            }
            None => None,
        };
        let history: Arc<dyn HistoryStore> =
            Arc::new(RedbHistory::open_in(&config.data_dir).context("open the history store")?);
        let history_writer = crate::history::spawn_writer(
            consensus.clone(),
            history.clone(),
            HistoryMetrics::register(&registry).context("register history metrics")?,
            clock.clone(),
        );
        let mail = match &config.mail {
            Some(section) => {
                let relay = section.relay().map_err(anyhow::Error::msg)?;
                Some(crate::mail::start(
                    &config.data_dir,
                    relay,
                    clock.clone(),
                    &registry,
                )?)
            }
            None => None,
        };
        let mut admin =
            Admin::new(consensus.clone(), clock, registry).context("start the admin API")?;
        if let Some(server) = &sip {
            admin.set_presence(Arc::new(EdgePresence::new(server.registrations())));
        }
        admin.set_history(history);
        let mail_task = match (mail, &config.mail) {
            (Some((mailer, task)), Some(section)) => {
                admin.set_mailer(mailer, section.reset());
                Some(task)
            }
            _ => None,
        };
        admin.set_throttle_rules(config.login.rules());
        admin.set_security(
            carillon_admin::security::SecurityPolicy::new(&config.admin.cors_origins, false)
                .context("admin.cors_origins")?,
        );
        let listener = tokio::net::TcpListener::bind(&config.admin_addr)
            .await
            .with_context(|| format!("listen for the admin API on {}", config.admin_addr))?;
        let (stop, mut stopped) = watch::channel(false);
        let app = admin.router();
        let mut https_addr = None;
        let mut https = None;
        if let Some(tls) = config.tls.as_ref() {
            if let Some(addr) = &tls.https_addr {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("listen for HTTPS on {addr}"))?;
                https_addr = Some(listener.local_addr()?);
                let certificate = crate::tls::ReloadingTls::new(tls.files(), &[b"http/1.1"])
                    .context("load the [tls] certificate")?;
                let listener = crate::tls::TlsListener::new(listener, certificate, "HTTPS")?;
                let mut secure = admin.clone();
                secure.set_security(
                    carillon_admin::security::SecurityPolicy::new(&config.admin.cors_origins, true)
                        .context("admin.cors_origins")?,
                );
                let app = secure.router();
                let mut stopped = stopped.clone();
                https = Some(tokio::spawn(async move {
                    use axum::serve::ListenerExt as _;
                    let shutdown = async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    };
                    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
                    if let Err(e) = axum::serve(listener.tap_io(|_| {}), app)
                        .with_graceful_shutdown(shutdown)
                        .await
                    {
                        tracing::error!(error = %e, "HTTPS server failed");
                    }
                }));
            }
        }
        let server = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            // The peer's address feeds D4's self-adapting binding.
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "admin API server failed");
            }
            if let Some(https) = https {
                let _ = https.await;
            }
        });
        let bootstrapper = match (config.bootstrap, operator) {
            (true, Some(operator)) => {
                let admin = admin.clone();
                Some(tokio::spawn(async move {
                    // Bounded: a minute of attempts, then give up loudly.
                    for _ in 0..120 {
                        match admin.bootstrap(&operator.login, &operator.password).await {
                            Ok(()) => return,
                            Err(e) => tracing::debug!(error = %e, "bootstrap not done yet"),
                        }
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    tracing::error!("could not bootstrap the cluster within a minute");
                }))
            }
            _ => None,
        };
        tracing::info!(
            node_id = config.node_id,
            admin_addr = %config.admin_addr,
            raft_addr = %config.raft_addr,
            "node started"
        );
        Ok(Self {
            consensus,
            admin,
            stop,
            server,
            bootstrapper,
            sip,
            relay,
            history_writer,
            mail_task,
            https_addr,
        })
    }

    /// The SIP server, when `sip_addr` is configured.
    pub fn sip(&self) -> Option<&SipServer> {
        self.sip.as_ref()
    }

    /// The bound HTTPS address of the admin API, when `[tls] https_addr` is set.
    pub fn https_addr(&self) -> Option<std::net::SocketAddr> {
        self.https_addr
    }

    /// The consensus handle.
    pub fn consensus(&self) -> &Consensus<Ledger> {
        &self.consensus
    }

    /// The admin API.
    pub fn admin(&self) -> &Admin {
        &self.admin
    }

    /// Waits until the bootstrap task (if any) has finished.
    pub async fn bootstrapped(&mut self) {
        if let Some(task) = self.bootstrapper.take() {
            let _ = task.await;
        }
    }

    /// Stops serving (in-flight requests get a short grace period), then
    /// stops consensus. Bounded: a request waiting on an unreachable cluster
    /// must not keep the process alive after SIGTERM.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.bootstrapper {
            task.abort();
        }
        // A write in flight commits or not as a whole; the next start resumes.
        self.history_writer.abort();
        // A message being sent when this stops is sent again after the
        // restart (the outbox removes it only once the relay took it).
        if let Some(task) = self.mail_task {
            task.abort();
        }
        if let Some(sip) = self.sip {
            sip.stop().await;
        }
        if let Some(relay) = self.relay {
            if let Err(e) = relay.shutdown().await {
                tracing::warn!(error = %e, "the media relay did not stop cleanly");
            }
        }
        let mut server = self.server;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
            .await
            .is_err()
        {
            tracing::warn!("in-flight admin requests cut off after {SHUTDOWN_GRACE:?}");
            server.abort();
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, self.consensus.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("raft did not stop within {SHUTDOWN_GRACE:?}");
        }
        tracing::info!("node stopped");
    }
}

/// A number that differs between runs of this process (call ids must not
/// repeat after a restart).
#[allow(clippy::disallowed_methods)] // the shell draws it once
fn boot_id() -> u64 {
    rand::random::<u32>() as u64
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("install the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    Ok(())
}
