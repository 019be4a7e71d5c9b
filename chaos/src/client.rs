//! A small admin API client for tests and the chaos harness.

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// A reply: HTTP status and JSON body (Null when the body is empty or not JSON).
#[derive(Debug, Clone)]
pub struct ApiReply {
    /// HTTP status code.
    pub status: u16,
    /// The JSON body.
    pub body: Value,
}

impl ApiReply {
    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The problem+json `code`, if the body is a problem.
    pub fn code(&self) -> Option<&str> {
        self.body.get("code").and_then(Value::as_str)
    }
}

/// One admin API endpoint with an optional bearer token.
#[derive(Debug, Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base_url: String,
    token: Option<String>,
}

impl AdminClient {
    /// A client for `base_url` (for example `http://127.0.0.11:8080`).
    pub fn new(base_url: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(15))
            .build()
            .context("build the HTTP client")?;
        Ok(Self {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            token: None,
        })
    }

    /// The same endpoint, authenticated with `token`.
    pub fn with_token(&self, token: &str) -> Self {
        Self {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    /// The bearer token it carries.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Logs in and returns a client carrying the bearer token.
    pub async fn login(&self, login: &str, password: &str) -> Result<Self> {
        let reply = self
            .send(
                reqwest::Method::POST,
                "/api/v1/auth/login",
                Some(&serde_json::json!({"login": login, "password": password})),
                None,
            )
            .await?;
        let token = reply
            .body
            .get("token")
            .and_then(Value::as_str)
            .with_context(|| format!("login as {login} failed: {} {}", reply.status, reply.body))?;
        Ok(self.with_token(token))
    }

    /// The bearer token of `login`, retrying while the account does not
    /// exist yet (a bootstrapping cluster creates its operator just after it
    /// forms): at most `attempts` tries, `pause` apart.
    pub async fn token_when_ready(
        &self,
        login: &str,
        password: &str,
        attempts: usize,
        pause: std::time::Duration,
    ) -> Result<String> {
        for _ in 0..attempts {
            let reply = self
                .post(
                    "/api/v1/auth/login",
                    &serde_json::json!({"login": login, "password": password}),
                    None,
                )
                .await?;
            if let Some(token) = reply.body["token"].as_str() {
                return Ok(token.to_string());
            }
            tokio::time::sleep(pause).await;
        }
        anyhow::bail!("{login} could not log in after {attempts} attempts")
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> Result<ApiReply> {
        self.send::<Value>(reqwest::Method::GET, path, None, None)
            .await
    }

    /// POST `body` to `path`, with an `Idempotency-Key` when given.
    pub async fn post<B: Serialize>(
        &self,
        path: &str,
        body: &B,
        key: Option<&str>,
    ) -> Result<ApiReply> {
        self.send(reqwest::Method::POST, path, Some(body), key)
            .await
    }

    /// PATCH `body` to `path`.
    pub async fn patch<B: Serialize>(&self, path: &str, body: &B) -> Result<ApiReply> {
        self.send(reqwest::Method::PATCH, path, Some(body), None)
            .await
    }

    /// DELETE `path`.
    pub async fn delete(&self, path: &str) -> Result<ApiReply> {
        self.send::<Value>(reqwest::Method::DELETE, path, None, None)
            .await
    }

    /// Sends a request; a transport failure is an `Err`, any HTTP status is an `Ok`.
    pub async fn send<B: Serialize>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
        key: Option<&str>,
    ) -> Result<ApiReply> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("request {path}"))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.context("read the reply")?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(ApiReply { status, body })
    }

    /// Polls `GET path` until `ready` holds or `within` passes.
    pub async fn wait_until(
        &self,
        path: &str,
        within: Duration,
        ready: impl Fn(&ApiReply) -> bool,
    ) -> Result<ApiReply> {
        let step = Duration::from_millis(100);
        let steps = (within.as_millis() / step.as_millis()).max(1);
        let mut last = None;
        for _ in 0..steps {
            match self.get(path).await {
                Ok(reply) if ready(&reply) => return Ok(reply),
                Ok(reply) => last = Some(format!("{} {}", reply.status, reply.body)),
                Err(e) => last = Some(e.to_string()),
            }
            tokio::time::sleep(step).await;
        }
        anyhow::bail!(
            "{}{path} not ready within {within:?}; last: {last:?}",
            self.base_url
        )
    }
}
