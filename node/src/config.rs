//! The node configuration file (TOML). See the README for a three-node example.

use carillon_consensus::{NodeAddr, RaftTiming};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// A node's configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Raft node id, unique in the cluster, > 0.
    pub node_id: u64,
    /// Where the node keeps its store (`raft.redb`).
    pub data_dir: PathBuf,
    /// Admin HTTP API listen address.
    pub admin_addr: String,
    /// Node-to-node Raft listen address.
    pub raft_addr: String,
    /// SIP listen address (UDP and TCP), used once the SIP edge runs.
    #[serde(default)]
    pub sip_addr: Option<String>,
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

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid {
            path: origin.to_string(),
            reason,
        };
        if self.node_id == 0 {
            return Err(invalid("node_id must be greater than 0".into()));
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
