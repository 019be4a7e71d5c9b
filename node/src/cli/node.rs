//! `carillon node --config FILE`.

use crate::config::NodeConfig;
use crate::running::{shutdown_signal, OperatorCredentials, RunningNode};
use anyhow::{Context, Result};
use std::path::Path;

/// Runs a node until SIGTERM or SIGINT.
pub async fn run(config_path: &Path) -> Result<()> {
    let config = NodeConfig::load(config_path)?;
    let operator = match &config.operator {
        Some(section) if config.bootstrap => Some(OperatorCredentials {
            login: section.login.clone(),
            password: std::env::var(&section.password_env).with_context(|| {
                format!(
                    "the operator password is read from ${}, which is not set",
                    section.password_env
                )
            })?,
        }),
        _ => None,
    };
    let node = RunningNode::start(&config, operator).await?;
    shutdown_signal().await?;
    node.stop().await;
    Ok(())
}
