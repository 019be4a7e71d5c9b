//! Outgoing e-mail as the admin API sees it: a message handed to the node's
//! outbox, which persists it before `enqueue` returns and delivers it
//! through the configured SMTP relay (the node's `mail` module). The API
//! never waits for delivery.

/// One message for one recipient (plain text).
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// The recipient's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

impl std::fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A body may carry a reset link: never in logs.
        f.debug_struct("OutgoingMail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Where the API hands outgoing e-mail.
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Persists `mail` for delivery; an error says why it was not taken.
    fn enqueue(&self, mail: OutgoingMail) -> Result<(), String>;
}

/// A node without a mail relay: nothing is taken.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMailer;

impl Mailer for NoMailer {
    fn enqueue(&self, _: OutgoingMail) -> Result<(), String> {
        Err("this node has no mail relay ([mail] in its configuration)".into())
    }
}

/// How password resets are mailed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetSettings {
    /// How long a reset link works.
    pub ttl_ms: u64,
    /// The link's base: the e-mail links to `{link_base}/reset-password?token=…`.
    pub link_base: String,
}

impl Default for ResetSettings {
    fn default() -> Self {
        ResetSettings {
            ttl_ms: 30 * 60 * 1000,
            link_base: "https://127.0.0.1:8443".into(),
        }
    }
}

impl crate::state::AppState {
    /// E-mails `subject` and `body` to every user with `login` who has an
    /// address and e-mail notifications on (U5), through the node's outbox;
    /// off the async workers, never failing the request that caused it.
    pub fn notify_login_owners(&self, login: &str, subject: &str, body: String) {
        let recipients: Vec<String> = self.consensus.read_local(|l| {
            l.users_by_login(login)
                .filter(|(_, u)| u.spec.email_notifications)
                .filter_map(|(_, u)| u.spec.email.clone())
                .collect()
        });
        self.send_notices(recipients, subject, body);
    }

    /// The same for one user of one tenant.
    pub fn notify_user(
        &self,
        tenant: carillon_actors::model::TenantId,
        user: carillon_actors::model::UserId,
        subject: &str,
        body: String,
    ) {
        let recipients: Vec<String> = self.consensus.read_local(|l| {
            l.tenant(tenant)
                .and_then(|t| t.find_user(user))
                .filter(|u| u.spec.email_notifications)
                .and_then(|u| u.spec.email.clone())
                .into_iter()
                .collect()
        });
        self.send_notices(recipients, subject, body);
    }

    fn send_notices(&self, recipients: Vec<String>, subject: &str, body: String) {
        for to in recipients {
            let mail = OutgoingMail {
                to,
                subject: subject.to_string(),
                body: body.clone(),
            };
            let mailer = self.mailer.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(e) = mailer.enqueue(mail) {
                    tracing::warn!(error = %e, "notification e-mail not queued");
                }
            });
        }
    }
}
