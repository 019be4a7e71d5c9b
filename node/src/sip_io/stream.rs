//! Stream transports of the SIP edge: TCP and TLS connections share one
//! loop (framing, keepalive pongs, idle and slow-sender cut-offs) and the
//! connection slots.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;

use carillon_sip::message::{frame_stream, reject_response, Framing};
use carillon_sip::registrar::{Flow, FlowTransport};

use super::{clock, Event, ShellCounters, StreamLimits};

pub(super) async fn accept_tcp(
    listener: TcpListener,
    events: mpsc::Sender<Event>,
    slots: Arc<Semaphore>,
    next_id: Arc<AtomicU64>,
    counters: Arc<ShellCounters>,
    limits: StreamLimits,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            a = listener.accept() => a,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "SIP TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            counters.connections_refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let flow = Flow {
            transport: FlowTransport::Tcp,
            remote,
            connection: Some(id),
        };
        spawn_stream(stream, flow, permit, &events, &counters, limits, &stop);
    }
}

/// Serves one accepted stream connection in its own task, holding its slot.
fn spawn_stream<S>(
    stream: S,
    flow: Flow,
    permit: tokio::sync::OwnedSemaphorePermit,
    events: &mpsc::Sender<Event>,
    counters: &Arc<ShellCounters>,
    limits: StreamLimits,
    stop: &watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    counters
        .connections_accepted
        .fetch_add(1, Ordering::Relaxed);
    let (events, counters, stop) = (events.clone(), counters.clone(), stop.clone());
    tokio::spawn(async move {
        counters.connections_open.fetch_add(1, Ordering::Relaxed);
        serve_stream(stream, flow, events, &counters, limits, stop).await;
        counters.connections_open.fetch_sub(1, Ordering::Relaxed);
        drop(permit);
    });
}

/// Serves the SIP over TLS connections whose handshake completed, with the
/// same limits as TCP (the connection slots are shared).
pub(super) async fn accept_sip_tls(
    mut ready: mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    events: mpsc::Sender<Event>,
    slots: Arc<Semaphore>,
    next_id: Arc<AtomicU64>,
    counters: Arc<ShellCounters>,
    limits: StreamLimits,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (stream, remote) = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            r = ready.recv() => match r {
                Some(r) => r,
                None => return,
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            counters.connections_refused.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let flow = Flow {
            transport: FlowTransport::Tls,
            remote,
            connection: Some(id),
        };
        spawn_stream(stream, flow, permit, &events, &counters, limits, &stop);
    }
}

/// Why a stream connection ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Closed,
    Cut(&'static str),
}

async fn serve_stream<S>(
    stream: S,
    flow: Flow,
    events: mpsc::Sender<Event>,
    counters: &ShellCounters,
    limits: StreamLimits,
    mut stop: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
{
    let (remote, id) = (flow.remote, flow.connection.unwrap_or_default());
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    if events
        .send(Event::Connected {
            id,
            writer: tx.clone(),
        })
        .await
        .is_err()
    {
        return;
    }
    let write_task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let mut buffer: Vec<u8> = Vec::with_capacity(4_096);
    let mut chunk = vec![0u8; 16 * 1024];
    let mut message_started: Option<Instant> = None;
    let end = loop {
        let deadline = match message_started {
            Some(t) => (t + limits.message_deadline).min(clock() + limits.idle_timeout),
            None => clock() + limits.idle_timeout,
        };
        let read = tokio::select! {
            _ = stop.wait_for(|s| *s) => break End::Closed,
            r = tokio::time::timeout_at(deadline, reader.read(&mut chunk)) => r,
        };
        let n = match read {
            Err(_) if message_started.is_some() => break End::Cut("message not complete in time"),
            Err(_) => break End::Cut("idle"),
            Ok(Err(_)) | Ok(Ok(0)) => break End::Closed,
            Ok(Ok(n)) => n,
        };
        buffer.extend_from_slice(&chunk[..n]);
        let mut cut = None;
        loop {
            match frame_stream(&buffer) {
                Ok(Framing::Incomplete) => {
                    if buffer.is_empty() {
                        message_started = None;
                    } else if message_started.is_none() {
                        message_started = Some(clock());
                    }
                    break;
                }
                Ok(Framing::KeepAlive { len }) => {
                    // RFC 5626 3.5.1: a double CRLF ping gets a CRLF pong.
                    if len >= 4 {
                        let _ = tx.try_send(b"\r\n".to_vec());
                    }
                    buffer.drain(..len);
                }
                Ok(Framing::Complete { len }) => {
                    let bytes: Vec<u8> = buffer.drain(..len).collect();
                    message_started = None;
                    if events.send(Event::Message { flow, bytes }).await.is_err() {
                        cut = Some(End::Closed);
                        break;
                    }
                }
                Err(error) => {
                    let tag = format!("{id:x}");
                    if let Some(answer) = reject_response(&buffer, &error, &tag) {
                        let _ = tx.try_send(answer.to_bytes());
                    }
                    tracing::debug!(%remote, %error, transport = flow.transport.via_token(), "SIP stream framing error; closing");
                    cut = Some(End::Cut("framing error or oversize message"));
                    break;
                }
            }
        }
        if let Some(end) = cut {
            break end;
        }
    };
    if let End::Cut(why) = end {
        counters.connections_cut.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(%remote, why, transport = flow.transport.via_token(), "SIP stream connection cut");
    }
    drop(tx);
    let _ = events.send(Event::Closed { id }).await;
    // The edge drops its writer on Closed; the write task then ends.
    let _ = tokio::time::timeout(Duration::from_secs(1), write_task).await;
}
