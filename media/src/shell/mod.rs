//! The I/O shell around the sans-IO [`Relay`]: UDP sockets for the legs' ports, a clock,
//! timers for playout, recording files, and the control API (in-process [`Control`] and
//! HTTP, [`http`]).
//!
//! One engine thread owns the relay and every leg's socket ([`engine`], one `mio` poller);
//! control handles reach it through a bounded queue and a waker; the HTTP API runs on the
//! caller's tokio runtime. Time is read here ([`clock::Clock`]) and handed to the core as
//! `now_ms`. Playout (prompts, music on hold, generated DTMF) is paced by a timer that
//! fires at the core's next due time and at least every [`PLAYOUT_TICK_MS`].
//!
//! Entry point: [`serve`] starts a relay from a [`RelayConfig`] and returns a
//! [`RelayHandle`]; [`RelayHandle::shutdown`] stops it, closing recordings. Every relay
//! loads the recorded sounds of the catalogue first ([`sounds`]) and does not start without
//! them.
//!
//! Boundary: the shell knows sockets, files and HTTP; what happens to a packet is decided by
//! the core alone.

pub mod api;
pub mod clock;
pub mod control;
pub mod engine;
pub mod files;
pub mod http;
pub mod load;
pub mod sounds;

pub use crate::sound_library::SoundsConfig;
pub use control::{Control, ControlError, ControlResult};

use crate::control::{Relay, RelayConfig as CoreConfig};
use crate::leg::LatchPolicy;
use crate::port_pool::EmptyPortRange;
use crate::sound_library::SoundLibrary;
use engine::{Engine, EngineSettings};
use sounds::SoundLoadError;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use tokio::sync::{mpsc, oneshot};

/// Timer period of the engine: playout frames are 20 ms apart.
pub const PLAYOUT_TICK_MS: u64 = 20;
/// Events kept per session (DTMF, latching, generated media finished).
pub const MAX_SESSION_EVENTS: usize = 256;
/// Digits queued per leg by one DTMF request.
pub const MAX_QUEUED_DIGITS: usize = 64;
/// Control requests waiting for the engine.
pub const CONTROL_QUEUE_LEN: usize = 1024;

/// Default nap after an engine turn that relayed few datagrams, in microseconds: at most
/// this much latency added to a packet, for far fewer wake-ups under load.
pub const DEFAULT_WAKE_COALESCE_US: u64 = 200;
/// The longest nap a relay accepts (50 ms). Anything near it is a mistake in production (a
/// phone's jitter buffer is a few tens of ms); the bound refuses a value given in the wrong
/// unit rather than relaying every packet a second late.
pub const MAX_WAKE_COALESCE_US: u64 = 50_000;

/// Configuration of a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Address the legs' sockets bind to.
    pub bind_ip: IpAddr,
    /// Address written in SDP (defaults to `bind_ip`; set it behind NAT or a floating IP).
    pub advertised_ip: Option<IpAddr>,
    /// First port of the pool (RTP ports are even, RTCP = RTP + 1).
    pub first_port: u16,
    /// Last port of the pool.
    pub last_port: u16,
    /// Address of the HTTP control API; `None` for in-process control only.
    pub control_addr: Option<SocketAddr>,
    /// Directory of recording files (created if missing).
    pub recordings_dir: PathBuf,
    /// Latching policy of every leg.
    pub latch: LatchPolicy,
    /// Nap after an engine turn that relayed few datagrams, in microseconds (0: none).
    pub wake_coalesce_us: u64,
    /// Where the recorded music on hold and announcements are (Debian's paths by default).
    pub sounds: SoundsConfig,
}

impl RelayConfig {
    /// A configuration with the defaults: in-process control only, default latching,
    /// [`DEFAULT_WAKE_COALESCE_US`], the sounds where Debian installs them.
    pub fn new(bind_ip: IpAddr, first_port: u16, last_port: u16, recordings_dir: PathBuf) -> Self {
        RelayConfig {
            bind_ip,
            advertised_ip: None,
            first_port,
            last_port,
            control_addr: None,
            recordings_dir,
            latch: LatchPolicy::default(),
            wake_coalesce_us: DEFAULT_WAKE_COALESCE_US,
            sounds: SoundsConfig::default(),
        }
    }
}

/// Why a relay could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The port range holds no pair.
    #[error(transparent)]
    PortRange(#[from] EmptyPortRange),
    /// The recordings directory cannot be created.
    #[error("recordings directory {path}: {source}")]
    RecordingsDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The control address cannot be bound.
    #[error("control address {addr}: {source}")]
    ControlBind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A sound of the catalogue is missing or unusable.
    #[error(transparent)]
    Sound(#[from] SoundLoadError),
    /// The nap is longer than [`MAX_WAKE_COALESCE_US`].
    #[error("wake_coalesce_us is {0}: at most {MAX_WAKE_COALESCE_US} (50 ms) is allowed")]
    WakeCoalesceTooLong(u64),
    /// The engine's thread or its poller could not start.
    #[error("relay thread: {0}")]
    Thread(std::io::Error),
    /// The HTTP server failed.
    #[error("control API server: {0}")]
    Http(std::io::Error),
}

/// A running relay.
#[derive(Debug)]
pub struct RelayHandle {
    control: Control,
    control_addr: Option<SocketAddr>,
    http: Option<(
        oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
    /// Closed when the engine's thread ends.
    engine_finished: oneshot::Receiver<()>,
}

/// Starts a relay: loads the recorded sounds (failing when one is missing), then the engine
/// on a thread of its own and, when `control_addr` is set, the HTTP control API. Must be
/// called within a tokio runtime (for the HTTP API and the blocking file reads).
pub async fn serve(config: RelayConfig) -> Result<RelayHandle, ServeError> {
    if config.wake_coalesce_us > MAX_WAKE_COALESCE_US {
        return Err(ServeError::WakeCoalesceTooLong(config.wake_coalesce_us));
    }
    let mut relay = Relay::new(CoreConfig {
        advertised_ip: config.advertised_ip.unwrap_or(config.bind_ip),
        first_port: config.first_port,
        last_port: config.last_port,
        latch: config.latch,
    })?;
    let library = SoundLibrary::new(&config.sounds);
    // Some megabytes of files: read on the runtime's blocking pool, not on its workers.
    let (relay, loaded) = tokio::task::spawn_blocking(move || {
        let loaded = sounds::load(&mut relay, &library);
        (relay, loaded)
    })
    .await
    .map_err(|join| ServeError::Thread(std::io::Error::other(join)))?;
    let loaded = loaded?;
    tracing::info!(
        prompts = loaded.prompts,
        audio_seconds = loaded.audio_seconds(),
        bytes = loaded.bytes,
        elapsed_ms = loaded.elapsed.as_secs_f64() * 1000.0,
        moh_dir = %config.sounds.moh_dir.display(),
        sounds_dir = %config.sounds.sounds_dir.display(),
        "sounds loaded"
    );
    std::fs::create_dir_all(&config.recordings_dir).map_err(|source| {
        ServeError::RecordingsDir {
            path: config.recordings_dir.clone(),
            source,
        }
    })?;
    let poll = mio::Poll::new().map_err(ServeError::Thread)?;
    let waker =
        mio::Waker::new(poll.registry(), engine::WAKER_TOKEN).map_err(ServeError::Thread)?;
    let (requests, commands) = mpsc::channel(CONTROL_QUEUE_LEN);
    let control = Control::new(requests, std::sync::Arc::new(waker));
    let settings = EngineSettings {
        bind_ip: config.bind_ip,
        recordings_dir: config.recordings_dir.clone(),
        wake_coalesce: std::time::Duration::from_micros(config.wake_coalesce_us),
    };
    let engine = Engine::new(relay, clock::Clock::start(), settings, poll, commands);
    let (finished, engine_finished) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("carillon-relay".to_string())
        .spawn(move || {
            engine.run();
            drop(finished);
        })
        .map_err(ServeError::Thread)?;
    let mut handle = RelayHandle {
        control: control.clone(),
        control_addr: None,
        http: None,
        engine_finished,
    };
    if let Some(addr) = config.control_addr {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => listener,
            Err(source) => {
                handle.stop_engine().await;
                return Err(ServeError::ControlBind { addr, source });
            }
        };
        handle.control_addr = listener.local_addr().ok();
        let (stop, stopped) = oneshot::channel::<()>();
        let app = http::router(control);
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // A dropped sender means the handle is gone: stop as well.
                    let _ = stopped.await;
                })
                .await
        });
        handle.http = Some((stop, server));
    }
    tracing::info!(
        bind_ip = %config.bind_ip,
        first_port = config.first_port,
        last_port = config.last_port,
        control = ?handle.control_addr,
        "media relay started"
    );
    Ok(handle)
}

impl RelayHandle {
    /// The in-process control API.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// The address the HTTP control API listens on (with the real port when 0 was asked).
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    async fn stop_engine(&mut self) {
        self.control.shutdown().await;
        // Closed (an error here) when the engine's thread has ended.
        let _ = (&mut self.engine_finished).await;
    }

    /// Stops the HTTP API and the engine; active recordings are finished and their audit
    /// trails written.
    pub async fn shutdown(mut self) -> Result<(), ServeError> {
        let mut result = Ok(());
        if let Some((stop, server)) = self.http.take() {
            // The server may have stopped already; it is stopping either way.
            let _ = stop.send(());
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => result = Err(ServeError::Http(error)),
                Err(join) => result = Err(ServeError::Http(std::io::Error::other(join))),
            }
        }
        self.stop_engine().await;
        tracing::info!("media relay stopped");
        result
    }
}
