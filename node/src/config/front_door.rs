//! The front door's sections of a node's configuration: login throttling
//! (`[login]`), the admin API's HTTP policy (`[admin]`), e-mail (`[mail]`)
//! and the node's certificate (`[tls]`).

use serde::Deserialize;
use std::path::PathBuf;

/// Login throttling and lockout of the admin API (the README's rule);
/// every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSection {
    /// Failures of a (login, address) pair before delays start (3).
    pub free_failures: Option<u32>,
    /// Failures of an address, any login, before delays start (20).
    pub source_free_failures: Option<u32>,
    /// Failures of a login from every address that lock it (10).
    pub lockout_failures: Option<u32>,
    /// Failures are forgotten this long after the last one (900).
    pub window_s: Option<u64>,
    /// How long a lockout lasts (900).
    pub lockout_s: Option<u64>,
    /// The longest delay between attempts (60).
    pub max_delay_s: Option<u64>,
}

impl LoginSection {
    /// The throttle's rules: the defaults where a key is absent.
    pub fn rules(&self) -> carillon_admin::throttle::ThrottleRules {
        let d = carillon_admin::throttle::ThrottleRules::default();
        carillon_admin::throttle::ThrottleRules {
            pair_free_failures: self.free_failures.unwrap_or(d.pair_free_failures),
            source_free_failures: self.source_free_failures.unwrap_or(d.source_free_failures),
            lockout_failures: self.lockout_failures.unwrap_or(d.lockout_failures),
            window_ms: self.window_s.map_or(d.window_ms, |s| s * 1000),
            lockout_ms: self.lockout_s.map_or(d.lockout_ms, |s| s * 1000),
            max_delay_ms: self.max_delay_s.map_or(d.max_delay_ms, |s| s * 1000),
            ..d
        }
    }
}

/// The admin API's HTTP policy; every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Origins (`scheme://host[:port]`) other than the node's own that
    /// browsers may call the API from; none by default.
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

/// E-mail through an SMTP relay (password recovery, U5).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSection {
    /// The relay's host.
    pub smtp_host: String,
    /// The relay's port (587).
    #[serde(default = "default_smtp_port")]
    pub smtp_port: u16,
    /// `starttls` (required, the default), `tls` (implicit, port 465) or
    /// `none` (plain text: only for a relay on this host).
    #[serde(default)]
    pub tls: crate::mail::RelayTls,
    /// Extra trusted roots (PEM) beside the system's, for a private relay.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Login at the relay.
    #[serde(default)]
    pub username: Option<String>,
    /// The environment variable that holds the relay password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The sender, e.g. `Carillon <noreply@example.com>`.
    pub from: String,
    /// The base of the links in e-mails (the panel's public URL).
    pub link_base: String,
    /// How long a password reset link works (1800 s).
    #[serde(default)]
    pub reset_ttl_s: Option<u64>,
}

fn default_smtp_port() -> u16 {
    587
}

impl MailSection {
    /// The relay's settings, with the password from the environment.
    pub fn relay(&self) -> Result<crate::mail::RelayConfig, String> {
        let from = self
            .from
            .parse()
            .map_err(|e| format!("mail.from {:?} is not an address: {e}", self.from))?;
        let ca_pem = match &self.ca_file {
            Some(path) => Some(
                std::fs::read(path).map_err(|e| format!("mail.ca_file {}: {e}", path.display()))?,
            ),
            None => None,
        };
        let credentials = match (&self.username, &self.password_env) {
            (Some(user), Some(var)) => Some((
                user.clone(),
                std::env::var(var).map_err(|_| format!("mail.password_env: {var} is not set"))?,
            )),
            (None, None) => None,
            _ => return Err("mail.username and mail.password_env go together".into()),
        };
        Ok(crate::mail::RelayConfig {
            host: self.smtp_host.clone(),
            port: self.smtp_port,
            tls: self.tls,
            ca_pem,
            credentials,
            from,
        })
    }

    /// Reset links: lifetime and base.
    pub fn reset(&self) -> carillon_admin::mailer::ResetSettings {
        carillon_admin::mailer::ResetSettings {
            ttl_ms: self.reset_ttl_s.unwrap_or(1_800) * 1_000,
            link_base: self.link_base.clone(),
        }
    }
}

/// The node's certificate for HTTPS, SIP over TLS and WSS (PEM files,
/// reloaded when they change).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// Certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// Its private key.
    pub key_file: PathBuf,
    /// The admin API (and panel) over HTTPS, beside `admin_addr`.
    #[serde(default)]
    pub https_addr: Option<String>,
}

impl TlsSection {
    /// The files.
    pub fn files(&self) -> crate::tls::TlsFiles {
        crate::tls::TlsFiles {
            cert: self.cert_file.clone(),
            key: self.key_file.clone(),
        }
    }
}
