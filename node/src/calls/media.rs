//! The media relays a node's calls use: its in-process relay (`local`) and
//! media-only nodes reached over their HTTP control API. A new call takes
//! the least-loaded one (fewest sessions at the last poll, every second).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use carillon_actors::call::{MediaEvent, MediaReply, MediaRequest};
use carillon_actors::shell::BoxFuture;
use carillon_media::shell::api::PlayRequest;
use carillon_media::shell::Control;
use serde_json::{json, Value};

/// The name of the in-process relay.
pub const LOCAL: &str = "local";

/// The relays of a node.
#[derive(Clone)]
pub struct MediaRelays {
    local: Option<Control>,
    remote: Vec<String>,
    client: reqwest::Client,
    load: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl std::fmt::Debug for MediaRelays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaRelays")
            .field("local", &self.local.is_some())
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

impl MediaRelays {
    /// The in-process relay (if any) and media-only nodes' control addresses.
    pub fn new(local: Option<Control>, remote: Vec<String>) -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        MediaRelays {
            local,
            remote,
            client,
            load: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// The relay a new call should use, or why there is none.
    pub fn choose(&self) -> Result<String, String> {
        let mut names: Vec<String> = self.remote.clone();
        if self.local.is_some() {
            names.push(LOCAL.to_string());
        }
        if names.is_empty() {
            return Err("this node has no [media] relay and no media nodes configured".into());
        }
        let load = self.load.lock().map(|l| l.clone()).unwrap_or_default();
        names.sort_by_key(|n| (load.get(n).copied().unwrap_or(0), n != LOCAL));
        Ok(names.remove(0))
    }

    /// Polls every relay's load each second (for [`MediaRelays::choose`]).
    pub fn spawn_load_poll(&self) {
        let relays = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let mut load = BTreeMap::new();
                if let Some(local) = &relays.local {
                    if let Ok(l) = local.load().await {
                        load.insert(LOCAL.to_string(), l.sessions as u64);
                    }
                }
                for addr in &relays.remote {
                    let url = format!("http://{addr}/media/v1/load");
                    if let Ok(r) = relays.client.get(&url).send().await {
                        if let Ok(v) = r.json::<Value>().await {
                            let n = v
                                .get("sessions")
                                .and_then(Value::as_u64)
                                .unwrap_or(u64::MAX);
                            load.insert(addr.clone(), n);
                        }
                    }
                }
                if let Ok(mut l) = relays.load.lock() {
                    *l = load;
                }
            }
        });
    }

    /// One request to relay `relay` about `session`.
    pub fn call(
        &self,
        relay: &str,
        session: &str,
        request: MediaRequest,
    ) -> BoxFuture<'static, Result<MediaReply, String>> {
        let session = session.to_string();
        if relay == LOCAL {
            let Some(control) = self.local.clone() else {
                return Box::pin(async { Err("this node has no in-process relay".to_string()) });
            };
            return Box::pin(async move { local(&control, &session, request).await });
        }
        let client = self.client.clone();
        let base = format!("http://{relay}/media/v1/sessions");
        Box::pin(async move { remote(&client, &base, &session, request).await })
    }
}

async fn local(
    control: &Control,
    session: &str,
    request: MediaRequest,
) -> Result<MediaReply, String> {
    let text = |e: carillon_media::shell::ControlError| e.to_string();
    match request {
        MediaRequest::Create => control
            .create_session(session)
            .await
            .map(|_| MediaReply::Done)
            .map_err(text),
        MediaRequest::SetLeg { leg, remote_sdp } => control
            .set_leg(session, leg, remote_sdp)
            .await
            .map(|r| MediaReply::Sdp(r.local_sdp))
            .map_err(text),
        MediaRequest::Music { leg, prompt } => control
            .play(session, leg, PlayRequest::MusicOnHold(prompt))
            .await
            .map(|_| MediaReply::Done)
            .map_err(text),
        MediaRequest::Prompt { leg, prompt } => control
            .play(session, leg, PlayRequest::Prompt(prompt))
            .await
            .map(|_| MediaReply::Done)
            .map_err(text),
        MediaRequest::Events => control
            .session(session)
            .await
            .map(|v| {
                MediaReply::Events(
                    v.events
                        .into_iter()
                        .map(|e| MediaEvent {
                            kind: e.kind,
                            leg: e.leg,
                            digit: e.digit,
                        })
                        .collect(),
                )
            })
            .map_err(text),
        MediaRequest::StopPlay { leg } => control
            .stop_play(session, leg)
            .await
            .map(|_| MediaReply::Done)
            .map_err(text),
        MediaRequest::Remove => control
            .remove_session(session)
            .await
            .map(|_| MediaReply::Done)
            .map_err(text),
    }
}

async fn remote(
    client: &reqwest::Client,
    base: &str,
    session: &str,
    request: MediaRequest,
) -> Result<MediaReply, String> {
    let (method, url, body) = match &request {
        MediaRequest::Create => (
            reqwest::Method::POST,
            base.to_string(),
            Some(json!({"session_id": session})),
        ),
        MediaRequest::SetLeg { leg, remote_sdp } => (
            reqwest::Method::PUT,
            format!("{base}/{session}/legs/{leg}"),
            Some(json!({"remote_sdp": remote_sdp})),
        ),
        MediaRequest::Music { leg, prompt } => (
            reqwest::Method::POST,
            format!("{base}/{session}/legs/{leg}/play"),
            Some(json!({"music_on_hold": prompt})),
        ),
        MediaRequest::Prompt { leg, prompt } => (
            reqwest::Method::POST,
            format!("{base}/{session}/legs/{leg}/play"),
            Some(json!({"prompt": prompt})),
        ),
        MediaRequest::Events => (reqwest::Method::GET, format!("{base}/{session}"), None),
        MediaRequest::StopPlay { leg } => (
            reqwest::Method::DELETE,
            format!("{base}/{session}/legs/{leg}/play"),
            None,
        ),
        MediaRequest::Remove => (reqwest::Method::DELETE, format!("{base}/{session}"), None),
    };
    let mut builder = client.request(method, &url);
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    let response = builder.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let code = value.get("code").and_then(Value::as_str).unwrap_or("");
        return Err(format!("{status} {code}: {value}"));
    }
    match request {
        MediaRequest::Events => {
            let events = value
                .get("events")
                .and_then(Value::as_array)
                .map(|events| {
                    events
                        .iter()
                        .map(|e| MediaEvent {
                            kind: e.get("kind").and_then(Value::as_str).unwrap_or("").into(),
                            leg: e.get("leg").and_then(Value::as_str).unwrap_or("").into(),
                            digit: e.get("digit").and_then(Value::as_str).map(str::to_string),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(MediaReply::Events(events))
        }
        MediaRequest::SetLeg { .. } => value
            .get("local_sdp")
            .and_then(Value::as_str)
            .map(|s| MediaReply::Sdp(s.to_string()))
            .ok_or_else(|| "the relay's answer has no local_sdp".to_string()),
        _ => Ok(MediaReply::Done),
    }
}
