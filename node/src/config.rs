//! The node configuration file (TOML). See the README for a three-node example.

use carillon_consensus::{NodeAddr, RaftTiming};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod front_door;

pub use front_door::{AdminSection, LoginSection, MailSection, TlsSection};

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The file is not valid TOML for this schema (unknown keys included).
    #[error("{path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What was wrong, with its line.
        reason: String,
    },
    /// Valid TOML, but the values do not make a usable node.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// Which rule.
        reason: String,
    },
}

/// One member of the initial voter set.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// Raft node id.
    pub id: u64,
    /// Node-to-node address.
    pub raft_addr: String,
    /// Admin API address.
    pub admin_addr: String,
}

/// Raft timing in the file; every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftSection {
    /// Leader heartbeat period (default 100).
    pub heartbeat_interval_ms: Option<u64>,
    /// Election timeout lower bound (default 600).
    pub election_timeout_min_ms: Option<u64>,
    /// Election timeout upper bound (default 1200).
    pub election_timeout_max_ms: Option<u64>,
    /// Snapshot after this many entries (default 5000).
    pub snapshot_every_entries: Option<u64>,
    /// Entries kept behind a snapshot (default 1000).
    pub keep_entries_after_snapshot: Option<u64>,
    /// Client request deadline, forwarding and retries included (default 10000).
    pub request_timeout_ms: Option<u64>,
}

/// The platform operator account created when the cluster is bootstrapped.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorSection {
    /// Operator login.
    pub login: String,
    /// Name of the environment variable holding the operator's password
    /// (passwords do not belong in configuration files).
    pub password_env: String,
}

/// SIP edge settings; every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSection {
    /// WebSocket listen address (RFC 7118), off when absent.
    pub ws_addr: Option<String>,
    /// SIP over TLS listen address (`sips:`, usually port 5061); needs `[tls]`.
    pub tls_addr: Option<String>,
    /// SIP over secure WebSocket listen address (RFC 7118 WSS); needs `[tls]`.
    pub wss_addr: Option<String>,
    /// Host put in Via and From of the node's own requests (default: the
    /// host of `sip_addr`).
    pub advertised_host: Option<String>,
    /// Requests per second allowed from one source address (default 500).
    pub rate_per_second: Option<u32>,
    /// Burst above the rate (default 1000).
    pub burst: Option<u32>,
    /// Authentication failures that ban a source (default 5).
    pub max_auth_failures: Option<u32>,
    /// Window in which failures are counted, seconds (default 60).
    pub failure_window_s: Option<u64>,
    /// Ban length, seconds (default 600).
    pub ban_s: Option<u64>,
    /// Nonce lifetime, seconds (default 300).
    pub nonce_ttl_s: Option<u64>,
    /// Digest challenges and their order: `md5-first` (default),
    /// `sha256-first`, `sha256-only`, `md5-only`.
    pub digest: Option<carillon_sip::digest::Challenges>,
    /// Shortest registration, seconds (default 60).
    pub min_expires_s: Option<u32>,
    /// Longest registration, seconds (default 3600).
    pub max_expires_s: Option<u32>,
    /// Contacts per device (default 10).
    pub max_contacts: Option<usize>,
    /// OPTIONS keepalive period towards contacts, seconds (default 30).
    pub keepalive_interval_s: Option<u64>,
    /// Timer T1, milliseconds (default 500).
    pub t1_ms: Option<u64>,
    /// Most TCP plus WebSocket connections (default 10000).
    pub max_connections: Option<usize>,
    /// Idle stream connections are closed after this, seconds (default 600).
    pub idle_timeout_s: Option<u64>,
    /// A stream message must be complete this long after its first byte,
    /// seconds (default 10).
    pub message_deadline_s: Option<u64>,
}

/// What a node runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Raft member, admin API, SIP edge (when `sip_addr` is set) and a
    /// media relay (when `[media]` is set).
    #[default]
    Full,
    /// A media relay only, driven over its control API (DESIGN.md: relays
    /// scale out by adding media nodes). Needs `[media]` with
    /// `control_addr`; Raft, admin and SIP settings are not used.
    Media,
}

/// The media relay of a node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSection {
    /// Address the RTP sockets bind to.
    pub bind_ip: String,
    /// Address written in SDP, when it differs from `bind_ip`.
    pub advertised_ip: Option<String>,
    /// First port of the RTP/RTCP pool.
    pub first_port: u16,
    /// Last port of the pool.
    pub last_port: u16,
    /// Address of the relay's HTTP control API (required for role media).
    pub control_addr: Option<String>,
    /// Where recordings go (default: `data_dir/recordings`).
    pub recordings_dir: Option<PathBuf>,
    /// Nap after a relay turn that relayed few datagrams, in microseconds (default
    /// 200; 0: none; at most 50,000).
    pub wake_coalesce_us: Option<u64>,
}

/// A node's configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// What this node runs (default `full`).
    #[serde(default)]
    pub role: Role,
    /// Raft node id, unique in the cluster, > 0.
    pub node_id: u64,
    /// Where the node keeps its store (`raft.redb`).
    pub data_dir: PathBuf,
    /// Admin HTTP API listen address (not used by media nodes).
    #[serde(default)]
    pub admin_addr: String,
    /// Node-to-node Raft listen address (not used by media nodes).
    #[serde(default)]
    pub raft_addr: String,
    /// SIP listen address (UDP and TCP); no SIP edge when absent.
    #[serde(default)]
    pub sip_addr: Option<String>,
    /// SIP edge settings.
    #[serde(default)]
    pub sip: SipSection,
    /// Initialise a new cluster with `peers` as its voters if this node's
    /// store is empty. Joiners set it to false and are added through the API.
    #[serde(default)]
    pub bootstrap: bool,
    /// The initial voters (this node included) when `bootstrap` is true.
    #[serde(default)]
    pub peers: Vec<Peer>,
    /// Raft timing.
    #[serde(default)]
    pub raft: RaftSection,
    /// The operator account to create at bootstrap.
    #[serde(default)]
    pub operator: Option<OperatorSection>,
    /// Login throttling and lockout.
    #[serde(default)]
    pub login: LoginSection,
    /// The admin API's HTTP policy (CORS).
    #[serde(default)]
    pub admin: AdminSection,
    /// TLS: certificate and key, the HTTPS address.
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// E-mail through an SMTP relay; no e-mail when absent.
    #[serde(default)]
    pub mail: Option<MailSection>,
    /// The media relay (required for role media).
    #[serde(default)]
    pub media: Option<MediaSection>,
    /// Control addresses of media-only nodes this node's calls may use
    /// beside its own relay (the least loaded is chosen per call).
    #[serde(default)]
    pub media_nodes: Vec<String>,
}

impl NodeConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses and validates configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Self = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            reason: e.to_string(),
        })?;
        config.validate(origin)?;
        Ok(config)
    }

    /// Checks the rules a usable node needs; `origin` names the source.
    pub fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            path: origin.to_string(),
            reason,
        };
        if self.node_id == 0 {
            return Err(invalid("node_id must be greater than 0".into()));
        }
        if let Some(m) = &self.media {
            if m.bind_ip.parse::<std::net::IpAddr>().is_err() {
                return Err(invalid(format!(
                    "media.bind_ip {:?} is not an IP address",
                    m.bind_ip
                )));
            }
            if let Some(a) = &m.advertised_ip {
                if a.parse::<std::net::IpAddr>().is_err() {
                    return Err(invalid(format!(
                        "media.advertised_ip {a:?} is not an IP address"
                    )));
                }
            }
            if let Some(a) = &m.control_addr {
                if a.parse::<std::net::SocketAddr>().is_err() {
                    return Err(invalid(format!(
                        "media.control_addr {a:?} is not an ip:port address"
                    )));
                }
            }
            if m.first_port == 0 || m.last_port < m.first_port.saturating_add(1) {
                return Err(invalid(
                    "media ports: 0 < first_port < last_port (a range of RTP/RTCP pairs)".into(),
                ));
            }
        }
        if self.role == Role::Media {
            return match &self.media {
                Some(m) if m.control_addr.is_some() => Ok(()),
                _ => Err(invalid(
                    "role = \"media\" needs a [media] section with control_addr".into(),
                )),
            };
        }
        for (name, addr) in [
            ("admin_addr", &self.admin_addr),
            ("raft_addr", &self.raft_addr),
        ] {
            if addr.parse::<std::net::SocketAddr>().is_err() {
                return Err(invalid(format!(
                    "{name} {addr:?} is not an ip:port address"
                )));
            }
        }
        for (name, addr) in [
            ("sip_addr", &self.sip_addr),
            ("sip.ws_addr", &self.sip.ws_addr),
            ("sip.tls_addr", &self.sip.tls_addr),
            ("sip.wss_addr", &self.sip.wss_addr),
            (
                "tls.https_addr",
                &self.tls.as_ref().and_then(|t| t.https_addr.clone()),
            ),
        ] {
            if let Some(addr) = addr {
                if addr.parse::<std::net::SocketAddr>().is_err() {
                    return Err(invalid(format!(
                        "{name} {addr:?} is not an ip:port address"
                    )));
                }
            }
        }
        if self.sip.ws_addr.is_some() && self.sip_addr.is_none() {
            return Err(invalid("sip.ws_addr needs sip_addr as well".into()));
        }
        if (self.sip.tls_addr.is_some() || self.sip.wss_addr.is_some()) && self.sip_addr.is_none() {
            return Err(invalid(
                "sip.tls_addr and sip.wss_addr need sip_addr as well".into(),
            ));
        }
        if (self.sip.tls_addr.is_some() || self.sip.wss_addr.is_some()) && self.tls.is_none() {
            return Err(invalid(
                "sip.tls_addr and sip.wss_addr need a [tls] section (cert_file, key_file)".into(),
            ));
        }
        let sip = &self.sip;
        if sip.rate_per_second == Some(0) || sip.burst == Some(0) {
            return Err(invalid(
                "sip.rate_per_second and sip.burst must be at least 1".into(),
            ));
        }
        let login = &self.login;
        if login.lockout_failures == Some(0)
            || [login.window_s, login.lockout_s, login.max_delay_s].contains(&Some(0))
        {
            return Err(invalid(
                "login: lockout_failures, window_s, lockout_s and max_delay_s are at least 1"
                    .into(),
            ));
        }
        if let Err(e) =
            carillon_admin::security::SecurityPolicy::new(&self.admin.cors_origins, false)
        {
            return Err(invalid(format!("admin.cors_origins: {e}")));
        }
        if let Some(mail) = &self.mail {
            mail.relay().map_err(invalid)?;
            if mail.reset_ttl_s == Some(0) || mail.smtp_host.is_empty() {
                return Err(invalid(
                    "mail: smtp_host is required and reset_ttl_s is at least 1".into(),
                ));
            }
        }
        if sip.max_auth_failures == Some(0) {
            return Err(invalid("sip.max_auth_failures must be at least 1".into()));
        }
        if let (Some(min), Some(max)) = (sip.min_expires_s, sip.max_expires_s) {
            if min > max {
                return Err(invalid(
                    "sip.min_expires_s must not exceed sip.max_expires_s".into(),
                ));
            }
        }
        if sip.t1_ms == Some(0) || sip.keepalive_interval_s == Some(0) {
            return Err(invalid(
                "sip.t1_ms and sip.keepalive_interval_s must be at least 1".into(),
            ));
        }
        if self.bootstrap {
            if !self.peers.iter().any(|p| p.id == self.node_id) {
                return Err(invalid(format!(
                    "bootstrap is true but peers does not list this node (id {})",
                    self.node_id
                )));
            }
            let mut seen = std::collections::BTreeSet::new();
            if let Some(dup) = self.peers.iter().find(|p| !seen.insert(p.id)) {
                return Err(invalid(format!("peer id {} is listed twice", dup.id)));
            }
        }
        let t = self.timing();
        if t.election_timeout_min_ms <= t.heartbeat_interval_ms
            || t.election_timeout_max_ms <= t.election_timeout_min_ms
        {
            return Err(invalid(
                "raft timing must satisfy heartbeat < election_timeout_min < election_timeout_max"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The SIP server settings, when `sip_addr` is set.
    pub fn sip_server(&self) -> Option<crate::sip_io::SipServerConfig> {
        use crate::sip_io::{SipServerConfig, StreamLimits};
        use carillon_sip::digest::DigestConfig;
        use carillon_sip::edge::EdgeConfig;
        use carillon_sip::guard::GuardConfig;
        use carillon_sip::registrar::RegistrarConfig;
        use carillon_sip::transaction::TimerConfig;
        use std::time::Duration;
        let addr: std::net::SocketAddr = self.sip_addr.as_ref()?.parse().ok()?;
        let s = &self.sip;
        let (g, r, d, l) = (
            GuardConfig::default(),
            RegistrarConfig::default(),
            DigestConfig::default(),
            StreamLimits::default(),
        );
        let t1_ms = s.t1_ms.unwrap_or(TimerConfig::default().t1_ms);
        let timers = TimerConfig {
            t1_ms,
            t2_ms: TimerConfig::default().t2_ms.max(t1_ms),
            ..TimerConfig::default()
        };
        Some(SipServerConfig {
            udp: Some(addr),
            tcp: Some(addr),
            ws: s.ws_addr.as_ref().and_then(|a| a.parse().ok()),
            tls: self.tls.as_ref().map(|t| crate::sip_io::SipTls {
                addr: s.tls_addr.as_ref().and_then(|a| a.parse().ok()),
                wss: s.wss_addr.as_ref().and_then(|a| a.parse().ok()),
                files: t.files(),
            }),
            edge: EdgeConfig {
                advertised_host: s
                    .advertised_host
                    .clone()
                    .unwrap_or_else(|| addr.ip().to_string()),
                advertised_port: addr.port(),
                timers,
                digest: DigestConfig {
                    challenges: s.digest.unwrap_or_default(),
                    nonce_ttl_ms: s.nonce_ttl_s.map_or(d.nonce_ttl_ms, |v| v * 1_000),
                    ..d
                },
                guard: GuardConfig {
                    rate_per_second: s.rate_per_second.unwrap_or(g.rate_per_second),
                    burst: s.burst.unwrap_or(g.burst),
                    max_auth_failures: s.max_auth_failures.unwrap_or(g.max_auth_failures),
                    failure_window_ms: s
                        .failure_window_s
                        .map_or(g.failure_window_ms, |v| v * 1_000),
                    ban_ms: s.ban_s.map_or(g.ban_ms, |v| v * 1_000),
                    ..g
                },
                registrar: RegistrarConfig {
                    min_expires_s: s.min_expires_s.unwrap_or(r.min_expires_s),
                    max_expires_s: s.max_expires_s.unwrap_or(r.max_expires_s),
                    default_expires_s: s
                        .max_expires_s
                        .unwrap_or(r.max_expires_s)
                        .min(r.default_expires_s),
                    max_contacts: s.max_contacts.unwrap_or(r.max_contacts),
                    keepalive_interval_ms: s
                        .keepalive_interval_s
                        .map_or(r.keepalive_interval_ms, |v| v * 1_000),
                },
                ..EdgeConfig::default()
            },
            limits: StreamLimits {
                max_connections: s.max_connections.unwrap_or(l.max_connections),
                idle_timeout: s.idle_timeout_s.map_or(l.idle_timeout, Duration::from_secs),
                message_deadline: s
                    .message_deadline_s
                    .map_or(l.message_deadline, Duration::from_secs),
            },
        })
    }

    /// The relay settings, when `[media]` is set.
    pub fn relay(&self) -> Option<carillon_media::shell::RelayConfig> {
        use carillon_media::shell::RelayConfig;
        let m = self.media.as_ref()?;
        let mut config = RelayConfig::new(
            m.bind_ip.parse().ok()?,
            m.first_port,
            m.last_port,
            m.recordings_dir
                .clone()
                .unwrap_or_else(|| self.data_dir.join("recordings")),
        );
        config.advertised_ip = m.advertised_ip.as_ref().and_then(|a| a.parse().ok());
        config.control_addr = m.control_addr.as_ref().and_then(|a| a.parse().ok());
        if let Some(us) = m.wake_coalesce_us {
            config.wake_coalesce_us = us;
        }
        Some(config)
    }

    /// This node's addresses.
    pub fn addr(&self) -> NodeAddr {
        NodeAddr {
            raft_addr: self.raft_addr.clone(),
            admin_addr: self.admin_addr.clone(),
        }
    }

    /// The initial voter set.
    pub fn initial_members(&self) -> BTreeMap<u64, NodeAddr> {
        self.peers
            .iter()
            .map(|p| {
                (
                    p.id,
                    NodeAddr {
                        raft_addr: p.raft_addr.clone(),
                        admin_addr: p.admin_addr.clone(),
                    },
                )
            })
            .collect()
    }

    /// Raft timing with defaults filled in.
    pub fn timing(&self) -> RaftTiming {
        let d = RaftTiming::default();
        let r = &self.raft;
        RaftTiming {
            heartbeat_interval_ms: r.heartbeat_interval_ms.unwrap_or(d.heartbeat_interval_ms),
            election_timeout_min_ms: r
                .election_timeout_min_ms
                .unwrap_or(d.election_timeout_min_ms),
            election_timeout_max_ms: r
                .election_timeout_max_ms
                .unwrap_or(d.election_timeout_max_ms),
            snapshot_every_entries: r.snapshot_every_entries.unwrap_or(d.snapshot_every_entries),
            keep_entries_after_snapshot: r
                .keep_entries_after_snapshot
                .unwrap_or(d.keep_entries_after_snapshot),
            request_timeout_ms: r.request_timeout_ms.unwrap_or(d.request_timeout_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &str = r#"
node_id = 1
data_dir = "/var/lib/carillon/node-1"
admin_addr = "127.0.0.11:8080"
raft_addr = "127.0.0.11:7000"
sip_addr = "127.0.0.11:5060"
bootstrap = true

[[peers]]
id = 1
raft_addr = "127.0.0.11:7000"
admin_addr = "127.0.0.11:8080"

[[peers]]
id = 2
raft_addr = "127.0.0.12:7000"
admin_addr = "127.0.0.12:8080"

[raft]
snapshot_every_entries = 500
"#;

    #[test]
    fn a_three_node_config_parses_with_defaults_filled_in() {
        let config = NodeConfig::parse(THREE, "test").expect("valid");
        assert_eq!(config.initial_members().len(), 2);
        assert_eq!(config.timing().snapshot_every_entries, 500);
        assert_eq!(config.timing().heartbeat_interval_ms, 100);
        assert_eq!(
            config.login.rules(),
            carillon_admin::throttle::ThrottleRules::default()
        );
        let tuned = NodeConfig::parse(
            &format!("{THREE}\n[login]\nlockout_failures = 5\nlockout_s = 60\n"),
            "test",
        )
        .expect("valid");
        let rules = tuned.login.rules();
        assert_eq!((rules.lockout_failures, rules.lockout_ms), (5, 60_000));
        assert_eq!(
            rules.pair_free_failures, 3,
            "the others keep their defaults"
        );
    }

    #[test]
    fn bad_configs_are_refused_with_the_rule_they_break() {
        let cases = [
            (
                THREE.replace("node_id = 1", "node_id = 0"),
                "node_id must be greater than 0",
            ),
            (
                THREE.replace("node_id = 1", "node_id = 9"),
                "does not list this node",
            ),
            (
                THREE.replace("\"127.0.0.11:8080\"\nraft", "\"nowhere\"\nraft"),
                "not an ip:port",
            ),
            (format!("{THREE}\nsurprise = 1"), "unknown field"),
            (
                THREE.replace("[raft]", "[raft]\nheartbeat_interval_ms = 5000"),
                "heartbeat <",
            ),
            (
                format!("role = \"media\"\n{THREE}"),
                "needs a [media] section",
            ),
            (
                format!("{THREE}\n[media]\nbind_ip = \"127.0.0.1\"\nfirst_port = 40000\nlast_port = 30000\n"),
                "media ports",
            ),
            (
                format!("{THREE}\n[sip]\nrate_per_second = 0\n"),
                "rate_per_second",
            ),
            (
                format!("{THREE}\n[login]\nlockout_failures = 0\n"),
                "login: lockout_failures",
            ),
            (
                format!("{THREE}\n[login]\nwindow_s = 0\n"),
                "login: lockout_failures, window_s",
            ),
            (format!("{THREE}\n[login]\nsurprise = 1\n"), "unknown field"),
        ];
        for (text, expected) in cases {
            let error = NodeConfig::parse(&text, "test")
                .expect_err("invalid")
                .to_string();
            assert!(
                error.contains(expected),
                "{error:?} should mention {expected:?}"
            );
        }
    }
}
