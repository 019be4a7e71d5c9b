//! TLS for the node's listeners (HTTPS, SIP over TLS, SIP over secure
//! WebSocket) with rustls. The certificate chain and key come from PEM files
//! named by the configuration's `[tls]` section; every new connection
//! checks whether either file changed (a hash of both: a few KiB read, tens
//! of microseconds) and loads them again, so a renewed certificate is used
//! by the next connection without a restart. A pair that does not load (a
//! key written before its certificate, a typo) is logged once and the
//! previous pair stays in use until the files change again; connections
//! already open keep the pair they were made with.
//!
//! Handshakes run in their own tasks, at most [`MAX_HANDSHAKES`] at once and
//! each within [`HANDSHAKE_TIMEOUT`], so that a slow or silent client holds
//! neither the accept loop nor more than a bounded amount of memory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use sha2::Digest as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Handshakes in progress at once per listener; more wait at accept.
pub const MAX_HANDSHAKES: usize = 256;

/// A client must finish its handshake within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The PEM files of a certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// What identifies one version of the files: a hash of their contents
/// (file times are too coarse to tell two quick writes apart).
type Stamp = [u8; 32];

fn stamp(files: &TlsFiles) -> Stamp {
    let mut hash = sha2::Sha256::new();
    for path in [&files.cert, &files.key] {
        let bytes = std::fs::read(path).unwrap_or_default();
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
    }
    hash.finalize().into()
}

struct Loaded {
    stamp: Stamp,
    acceptor: TlsAcceptor,
    fingerprint: String,
    /// The files as they were when they last failed to load: not parsed
    /// (nor logged) again until they change.
    failed: Option<Stamp>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// A server TLS configuration that follows its files.
#[derive(Debug)]
pub struct ReloadingTls {
    files: TlsFiles,
    alpn: Vec<Vec<u8>>,
    loaded: Mutex<Loaded>,
}

/// The SHA-256 fingerprint of a DER certificate, as `AA:BB:...`.
pub fn fingerprint(der: &[u8]) -> String {
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn load(files: &TlsFiles, alpn: &[Vec<u8>]) -> Result<(TlsAcceptor, String)> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("read the certificate {}", files.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parse the certificate {}", files.cert.display()))?;
    let leaf = certs
        .first()
        .with_context(|| format!("{} holds no certificate", files.cert.display()))?;
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("read the private key {}", files.key.display()))?;
    // ring rather than aws-lc-rs: it builds with the C compiler alone (no
    // cmake); the price is no post-quantum hybrid key exchange (README).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| {
            format!(
                "{} and {} are not a certificate and its key",
                files.cert.display(),
                files.key.display()
            )
        })?;
    config.alpn_protocols = alpn.to_vec();
    Ok((TlsAcceptor::from(Arc::new(config)), fingerprint))
}

impl ReloadingTls {
    /// Loads `files`; offers `alpn` protocols (e.g. `http/1.1`). Fails when
    /// the files are missing or do not hold a certificate and its key.
    pub fn new(files: TlsFiles, alpn: &[&[u8]]) -> Result<Arc<Self>> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let stamp = stamp(&files);
        let (acceptor, fingerprint) = load(&files, &alpn)?;
        Ok(Arc::new(ReloadingTls {
            files,
            alpn,
            loaded: Mutex::new(Loaded {
                stamp,
                acceptor,
                fingerprint,
                failed: None,
            }),
        }))
    }

    fn loaded(&self) -> std::sync::MutexGuard<'_, Loaded> {
        self.loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The acceptor for a new connection, from the files as they are now.
    pub fn acceptor(&self) -> TlsAcceptor {
        let now = stamp(&self.files);
        let mut loaded = self.loaded();
        if now != loaded.stamp && loaded.failed != Some(now) {
            match load(&self.files, &self.alpn) {
                Ok((acceptor, fingerprint)) => {
                    tracing::info!(cert = %self.files.cert.display(), %fingerprint, "TLS certificate reloaded");
                    *loaded = Loaded {
                        stamp: now,
                        acceptor,
                        fingerprint,
                        failed: None,
                    };
                }
                Err(e) => {
                    // Tried again once the files change (they may be
                    // half-written); until then the previous pair serves.
                    loaded.failed = Some(now);
                    tracing::warn!(error = %format!("{e:#}"), "TLS certificate not reloaded; the previous one stays in use");
                }
            }
        }
        loaded.acceptor.clone()
    }

    /// The SHA-256 fingerprint of the certificate in use.
    pub fn fingerprint(&self) -> String {
        self.loaded().fingerprint.clone()
    }
}

/// Accepts TCP connections on `listener` and hands on those whose TLS
/// handshake completed, through a bounded queue.
pub fn accept_tls(
    listener: TcpListener,
    tls: Arc<ReloadingTls>,
    what: &'static str,
) -> mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)> {
    let (tx, rx) = mpsc::channel(64);
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                return;
            };
            let (stream, remote) = tokio::select! {
                _ = tx.closed() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, what, "TLS accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let acceptor = tls.acceptor();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send((stream, remote)).await;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(%remote, error = %e, what, "TLS handshake failed")
                    }
                    Err(_) => tracing::debug!(%remote, what, "TLS handshake not done in time"),
                }
                drop(permit);
            });
        }
    });
    rx
}

/// A TLS listener for `axum::serve` (wrap it with `tap_io` for
/// `ConnectInfo<SocketAddr>`).
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    /// Serves TLS on `listener` with `tls`.
    pub fn new(listener: TcpListener, tls: Arc<ReloadingTls>, what: &'static str) -> Result<Self> {
        let local = listener.local_addr()?;
        Ok(TlsListener {
            local,
            ready: accept_tls(listener, tls, what),
        })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accept task ends only when this receiver is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Writes a new self-signed certificate for `names` (DNS names or IP
/// addresses) and its key to `files`; the certificate's fingerprint.
pub fn write_self_signed(files: &TlsFiles, names: &[String]) -> Result<String> {
    let made = rcgen::generate_simple_self_signed(names.to_vec())
        .context("make a self-signed certificate")?;
    for path in [&files.cert, &files.key] {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
    }
    write_private(&files.key, made.key_pair.serialize_pem().as_bytes())?;
    std::fs::write(&files.cert, made.cert.pem())
        .with_context(|| format!("write {}", files.cert.display()))?;
    Ok(fingerprint(made.cert.der()))
}

/// Writes `bytes` to a file only its owner may read, from the first byte.
#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    // An existing file keeps its mode on open: make it private too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restrict {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("write {}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_pair_is_used_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = TlsFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        let first = write_self_signed(&files, &["localhost".into()]).expect("written");
        let tls = ReloadingTls::new(files.clone(), &[b"http/1.1"]).expect("loads");
        assert_eq!(tls.fingerprint(), first);
        let second = write_self_signed(&files, &["127.0.0.1".into()]).expect("written");
        assert_ne!(first, second);
        let _ = tls.acceptor();
        assert_eq!(tls.fingerprint(), second, "the new pair is in use");
        std::fs::write(&files.key, "not a key, and longer than the last one was").expect("write");
        let _ = tls.acceptor();
        assert_eq!(tls.fingerprint(), second, "a broken pair is not taken");
        assert!(
            ReloadingTls::new(files, &[]).is_err(),
            "nor accepted at start"
        );
    }
}
