//! `carillon node --config FILE`.

use crate::config::{NodeConfig, Role};
use crate::running::{shutdown_signal, OperatorCredentials, RunningNode};
use anyhow::{Context, Result};
use std::path::Path;

/// Runs a node until SIGTERM or SIGINT.
pub async fn run(config_path: &Path) -> Result<()> {
    let config = NodeConfig::load(config_path)?;
    if config.role == Role::Media {
        return run_media(&config).await;
    }
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

/// A media-only node: the relay and its control API, nothing else.
async fn run_media(config: &NodeConfig) -> Result<()> {
    let relay = config
        .relay()
        .context("role media needs a valid [media] section")?;
    let handle = carillon_media::shell::serve(relay)
        .await
        .context("start the media relay")?;
    tracing::info!(
        node_id = config.node_id,
        control_addr = ?handle.control_addr(),
        "media node started"
    );
    shutdown_signal().await?;
    handle.shutdown().await.context("stop the media relay")?;
    tracing::info!("media node stopped");
    Ok(())
}
