//! SIP over WebSocket and secure WebSocket (RFC 7118): the upgrade with
//! subprotocol `sip`, one text or binary frame per message.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::ConnectInfo;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::{mpsc, watch, Semaphore};

use carillon_sip::message::MAX_MESSAGE_BYTES;
use carillon_sip::registrar::{Flow, FlowTransport};

use super::{Event, ShellCounters, StreamLimits};

#[derive(Clone)]
pub(super) struct WsShared {
    pub(super) events: mpsc::Sender<Event>,
    pub(super) slots: Arc<Semaphore>,
    pub(super) next_id: Arc<AtomicU64>,
    pub(super) counters: Arc<ShellCounters>,
    pub(super) limits: StreamLimits,
    /// `Ws` or `Wss`.
    pub(super) transport: FlowTransport,
}

/// The WebSocket upgrade app and its shutdown signal.
pub(super) fn ws_app(
    shared: WsShared,
    mut stopped: watch::Receiver<bool>,
) -> (
    axum::Router,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let app = axum::Router::new()
        .route("/", get(ws_upgrade))
        .with_state(shared);
    let shutdown = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    (app, shutdown)
}

async fn ws_upgrade(
    axum::extract::State(shared): axum::extract::State<WsShared>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    upgrade: WebSocketUpgrade,
) -> axum::response::Response {
    let Ok(permit) = shared.slots.clone().try_acquire_owned() else {
        shared
            .counters
            .connections_refused
            .fetch_add(1, Ordering::Relaxed);
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "SIP WebSocket connection limit reached",
        )
            .into_response();
    };
    let upgrade = upgrade
        .protocols(["sip"])
        .max_message_size(MAX_MESSAGE_BYTES);
    upgrade.on_upgrade(move |socket| async move {
        shared
            .counters
            .connections_accepted
            .fetch_add(1, Ordering::Relaxed);
        shared
            .counters
            .connections_open
            .fetch_add(1, Ordering::Relaxed);
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        serve_ws(socket, remote, id, &shared).await;
        shared
            .counters
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
        drop(permit);
    })
}

async fn serve_ws(mut socket: WebSocket, remote: SocketAddr, id: u64, shared: &WsShared) {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(256);
    if shared
        .events
        .send(Event::Connected { id, writer: tx })
        .await
        .is_err()
    {
        return;
    }
    let flow = Flow {
        transport: shared.transport,
        remote,
        connection: Some(id),
    };
    let cut = loop {
        tokio::select! {
            outgoing = rx.recv() => match outgoing {
                Some(bytes) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    if socket.send(WsMessage::Text(text.into())).await.is_err() {
                        break false;
                    }
                }
                None => break false,
            },
            incoming = tokio::time::timeout(shared.limits.idle_timeout, socket.recv()) => match incoming {
                Err(_) => break true,
                Ok(None) | Ok(Some(Err(_))) => break false,
                Ok(Some(Ok(WsMessage::Text(t)))) => {
                    let bytes = t.as_bytes().to_vec();
                    if shared.events.send(Event::Message { flow, bytes }).await.is_err() {
                        break false;
                    }
                }
                Ok(Some(Ok(WsMessage::Binary(b)))) => {
                    if shared.events.send(Event::Message { flow, bytes: b.to_vec() }).await.is_err() {
                        break false;
                    }
                }
                Ok(Some(Ok(WsMessage::Close(_)))) => break false,
                Ok(Some(Ok(_))) => {}
            },
        }
    };
    if cut {
        shared
            .counters
            .connections_cut
            .fetch_add(1, Ordering::Relaxed);
    }
    let _ = shared.events.send(Event::Closed { id }).await;
}
