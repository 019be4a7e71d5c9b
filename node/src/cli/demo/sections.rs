//! The demo's node configuration built from its command line: the
//! relay's port range, the self-signed certificate, and the `[sip]` and
//! `[mail]` sections from `--sip-option` and `--mail-option`.

use super::DemoArgs;
use crate::config::SipSection;
use anyhow::{Context, Result};

/// The demo's in-process relay: on the SIP address's IP, over `ports`.
pub(super) fn media_section(sip_addr: &str, ports: &str) -> Result<crate::config::MediaSection> {
    let ip = sip_addr
        .rsplit_once(':')
        .map(|(ip, _)| ip.trim_start_matches('[').trim_end_matches(']'))
        .context("--sip-addr is HOST:PORT")?;
    let (first, last) = ports
        .split_once('-')
        .and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?)))
        .filter(|(a, b)| a < b)
        .with_context(|| format!("--rtp-ports {ports:?} is not FIRST-LAST"))?;
    Ok(crate::config::MediaSection {
        bind_ip: ip.to_string(),
        advertised_ip: None,
        first_port: first,
        last_port: last,
        control_addr: None,
        recordings_dir: None,
        wake_coalesce_us: None,
    })
}

/// The demo's certificate, `DIR/tls/cert.pem` and `key.pem`: self-signed
/// for `localhost` and the demo's addresses, made at the first start and
/// kept (replace the files to use another; the node reloads them).
pub(super) fn demo_certificate(args: &DemoArgs) -> Result<Option<crate::config::TlsSection>> {
    if [&args.https_addr, &args.sip_tls_addr, &args.wss_addr]
        .iter()
        .all(|a| listen(a).is_none())
    {
        return Ok(None);
    }
    let section = crate::config::TlsSection {
        cert_file: args.dir.join("tls").join("cert.pem"),
        key_file: args.dir.join("tls").join("key.pem"),
        https_addr: listen(&args.https_addr),
    };
    if !section.cert_file.exists() || !section.key_file.exists() {
        let mut names = vec!["localhost".to_string()];
        for addr in [&args.admin_addr, &args.sip_addr, &args.https_addr] {
            if let Ok(a) = addr.parse::<std::net::SocketAddr>() {
                let ip = a.ip().to_string();
                if !names.contains(&ip) {
                    names.push(ip);
                }
            }
        }
        crate::tls::write_self_signed(&section.files(), &names)?;
    }
    Ok(Some(section))
}

/// A listen address of the command line; `off` (or nothing) turns it off.
fn listen(addr: &str) -> Option<String> {
    (!addr.is_empty() && addr != "off").then(|| addr.to_string())
}

/// The `[mail]` section of the demo, from `key=value` settings checked
/// like a configuration file's (none: the demo sends no e-mail).
pub(super) fn mail_section(options: &[String]) -> Result<Option<crate::config::MailSection>> {
    if options.is_empty() {
        return Ok(None);
    }
    let mut text = String::new();
    push_options(&mut text, "--mail-option", options)?;
    toml::from_str(&text)
        .map(Some)
        .with_context(|| format!("--mail-option: {}", options.join(" ")))
}

/// The `[sip]` section of the demo: WebSocket, TLS and secure WebSocket
/// on the demo's addresses, plus `key=value` settings checked like a
/// configuration file's.
pub(super) fn sip_section(args: &DemoArgs, options: &[String]) -> Result<SipSection> {
    let mut text = format!("ws_addr = {:?}\n", args.ws_addr);
    if let Some(addr) = listen(&args.sip_tls_addr) {
        text.push_str(&format!("tls_addr = {addr:?}\n"));
    }
    if let Some(addr) = listen(&args.wss_addr) {
        text.push_str(&format!("wss_addr = {addr:?}\n"));
    }
    push_options(&mut text, "--sip-option", options)?;
    toml::from_str(&text).with_context(|| format!("--sip-option: {}", options.join(" ")))
}

/// Appends `KEY=VALUE` settings (of the command-line flag `flag`) to a
/// TOML section's text.
fn push_options(text: &mut String, flag: &str, options: &[String]) -> Result<()> {
    for option in options {
        let (key, value) = option
            .split_once('=')
            .with_context(|| format!("{flag} {option:?} is not KEY=VALUE"))?;
        text.push_str(&format!("{} = {}\n", key.trim(), value.trim()));
    }
    Ok(())
}
