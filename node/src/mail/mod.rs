//! E-mail of the node (U5): the persisted outbox ([`outbox`]) and the task
//! that delivers it through the configured SMTP relay with lettre (STARTTLS
//! required by default; the system's trust store plus `ca_file`). The
//! admin API hands messages to [`NodeMailer`]; the task wakes when one is
//! queued and when a retry is due, sends at most [`BATCH`] per wake-up, and
//! exposes `carillon_mail_*` metrics.

pub mod outbox;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use carillon_admin::mailer::{Mailer, OutgoingMail};
use carillon_consensus::Clock;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use outbox::{Outbox, OUTBOX_FILE};

/// Messages sent per wake-up at most.
pub const BATCH: usize = 16;

/// How the relay's connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayTls {
    /// STARTTLS, required (the default).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// Plain text: only for a relay on the same host.
    None,
}

/// The relay and the sender, as the node's `[mail]` section gives them.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Relay host name or address.
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// Connection security.
    pub tls: RelayTls,
    /// Extra trusted roots (PEM), beside the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// Login at the relay, with its password.
    pub credentials: Option<(String, String)>,
    /// The `From` of every message.
    pub from: Mailbox,
}

/// The metrics of the mail task.
#[derive(Debug, Clone)]
struct MailMetrics {
    pending: IntGauge,
    dead: IntGauge,
    sent: IntCounter,
    failures: IntCounterVec,
}

impl MailMetrics {
    fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let pending = IntGauge::new(
            "carillon_mail_outbox_pending",
            "Messages in this node's mail outbox waiting for delivery.",
        )?;
        let dead = IntGauge::new(
            "carillon_mail_outbox_dead",
            "Messages given up (a permanent refusal, or 48 hours of failures).",
        )?;
        let sent = IntCounter::new(
            "carillon_mail_sent_total",
            "Messages the SMTP relay accepted.",
        )?;
        let failures = IntCounterVec::new(
            Opts::new(
                "carillon_mail_failures_total",
                "Delivery attempts that failed, by kind (temporary, permanent).",
            ),
            &["kind"],
        )?;
        for metric in [&pending, &dead] {
            registry.register(Box::new(metric.clone()))?;
        }
        registry.register(Box::new(sent.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        Ok(MailMetrics {
            pending,
            dead,
            sent,
            failures,
        })
    }
}

/// The admin API's door to the outbox.
#[derive(Debug)]
pub struct NodeMailer {
    outbox: Arc<Outbox>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
}

impl Mailer for NodeMailer {
    fn enqueue(&self, mail: OutgoingMail) -> Result<(), String> {
        self.outbox
            .enqueue(mail, self.clock.now_ms())
            .map_err(|e| e.to_string())?;
        self.wake.notify_one();
        Ok(())
    }
}

fn transport(relay: &RelayConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    let mut params = TlsParameters::builder(relay.host.clone());
    if let Some(pem) = &relay.ca_pem {
        params = params.add_root_certificate(Certificate::from_pem(pem).context("mail.ca_file")?);
    }
    let params = params.build_rustls().context("TLS for the mail relay")?;
    let tls = match relay.tls {
        RelayTls::Starttls => Tls::Required(params),
        RelayTls::Tls => Tls::Wrapper(params),
        RelayTls::None => Tls::None,
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(relay.host.clone())
        .port(relay.port)
        .tls(tls)
        .timeout(Some(Duration::from_secs(20)));
    if let Some((user, password)) = &relay.credentials {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

/// Opens the outbox in `dir` and starts delivering it through `relay`; the
/// mailer for the admin API and the task.
pub fn start(
    dir: &std::path::Path,
    relay: RelayConfig,
    clock: Arc<dyn Clock>,
    registry: &Registry,
) -> Result<(Arc<NodeMailer>, JoinHandle<()>)> {
    let outbox = Arc::new(Outbox::open_in(dir).context("open the mail outbox")?);
    let metrics = MailMetrics::register(registry).context("register mail metrics")?;
    let smtp = transport(&relay)?;
    let wake = Arc::new(Notify::new());
    let mailer = Arc::new(NodeMailer {
        outbox: outbox.clone(),
        clock: clock.clone(),
        wake: wake.clone(),
    });
    let task = tokio::spawn(deliver(outbox, smtp, relay, clock, wake, metrics));
    Ok((mailer, task))
}

/// The `Message-ID` of outbox message `id`: the same at every attempt.
fn message_id(relay: &RelayConfig, id: u64, queued_at_ms: u64) -> String {
    let domain = relay.from.email.domain();
    format!("<carillon.{queued_at_ms}.{id}@{domain}>")
}

async fn deliver(
    outbox: Arc<Outbox>,
    smtp: AsyncSmtpTransport<Tokio1Executor>,
    relay: RelayConfig,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    metrics: MailMetrics,
) {
    // Messages the relay took whose removal failed, and messages whose
    // failure could not be noted: held here, so that a disk that refuses
    // writes does not turn into the same mail sent again and again.
    let mut sent: std::collections::HashSet<u64> = std::collections::HashSet::new();
    let mut held: std::collections::HashMap<u64, u64> = std::collections::HashMap::new();
    loop {
        let now = clock.now_ms();
        for id in sent.clone() {
            let store = outbox.clone();
            if let Ok(Ok(())) = tokio::task::spawn_blocking(move || store.delivered(id)).await {
                sent.remove(&id);
            }
        }
        held.retain(|_, until| *until > now);
        let store = outbox.clone();
        let due = tokio::task::spawn_blocking(move || store.due(now, BATCH)).await;
        let due = match due {
            Ok(Ok(due)) => due,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the mail outbox cannot be read");
                Vec::new()
            }
            Err(e) => {
                tracing::error!(error = %e, "the mail outbox's reader failed");
                Vec::new()
            }
        };
        for mail in due {
            let id = mail.id;
            if sent.contains(&id) || held.contains_key(&id) {
                continue;
            }
            let message = Message::builder()
                .from(relay.from.clone())
                .to(match mail.to.parse::<Mailbox>() {
                    Ok(to) => to,
                    Err(e) => {
                        note_failure(
                            &outbox,
                            &metrics,
                            id,
                            clock.now_ms(),
                            &format!("bad recipient: {e}"),
                            true,
                        )
                        .await;
                        continue;
                    }
                })
                .subject(mail.subject.clone())
                .message_id(Some(message_id(&relay, id, mail.queued_at_ms)))
                .body(mail.body.clone());
            let message = match message {
                Ok(m) => m,
                Err(e) => {
                    note_failure(&outbox, &metrics, id, clock.now_ms(), &e.to_string(), true).await;
                    continue;
                }
            };
            match smtp.send(message).await {
                Ok(_) => {
                    let store = outbox.clone();
                    match tokio::task::spawn_blocking(move || store.delivered(id)).await {
                        Ok(Ok(())) => {
                            metrics.sent.inc();
                            tracing::info!(
                                mail = id,
                                attempts = mail.attempts + 1,
                                "mail delivered to the relay"
                            );
                        }
                        other => {
                            metrics.sent.inc();
                            sent.insert(id);
                            tracing::error!(mail = id, result = ?other.map(|r| r.map_err(|e| e.to_string())), "mail delivered but not removed from the outbox: held, the removal is retried (it is sent again only if the node restarts first)")
                        }
                    }
                }
                Err(e) => {
                    let permanent = e.is_permanent();
                    let now = clock.now_ms();
                    if !note_failure(&outbox, &metrics, id, now, &e.to_string(), permanent).await {
                        held.insert(id, now + outbox::FIRST_RETRY_MS);
                    }
                }
            }
        }
        let store = outbox.clone();
        if let Ok(Ok((pending, dead))) = tokio::task::spawn_blocking(move || store.counts()).await {
            metrics
                .pending
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
            metrics.dead.set(i64::try_from(dead).unwrap_or(i64::MAX));
        }
        let store = outbox.clone();
        let next = tokio::task::spawn_blocking(move || store.next_due())
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let wait = match next {
            Some(at) => Duration::from_millis(at.saturating_sub(clock.now_ms()).clamp(50, 60_000)),
            None => Duration::from_secs(60),
        };
        let _ = tokio::time::timeout(wait, wake.notified()).await;
    }
}

async fn note_failure(
    outbox: &Arc<Outbox>,
    metrics: &MailMetrics,
    id: u64,
    now: u64,
    error: &str,
    permanent: bool,
) -> bool {
    metrics
        .failures
        .with_label_values(&[if permanent { "permanent" } else { "temporary" }])
        .inc();
    let store = outbox.clone();
    let text = error.to_string();
    let given_up =
        tokio::task::spawn_blocking(move || store.failed(id, now, &text, permanent)).await;
    match given_up {
        Ok(Ok(true)) => {
            tracing::error!(
                mail = id,
                error,
                "mail given up (moved to the dead letters)"
            );
            true
        }
        Ok(Ok(false)) => {
            tracing::warn!(
                mail = id,
                error,
                "mail not delivered; it will be tried again"
            );
            true
        }
        other => {
            tracing::error!(mail = id, result = ?other.map(|r| r.map_err(|e| e.to_string())), "the mail outbox could not note a failure; the message waits in memory");
            false
        }
    }
}
