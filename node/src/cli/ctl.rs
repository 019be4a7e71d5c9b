//! `carillon ctl`: a thin client of the admin API for scripts. It prints the
//! JSON reply on stdout and exits non-zero on any non-2xx reply, with the
//! problem+json on stderr.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::io::Read as _;

/// Arguments of `carillon ctl`.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Admin API base URL.
    #[arg(long, env = "CARILLON_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Bearer token (a session token or an API token).
    #[arg(long, env = "CARILLON_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub action: CtlAction,
}

/// What `carillon ctl` does.
#[derive(Debug, Subcommand)]
pub enum CtlAction {
    /// Log in and print the session token (password from CARILLON_PASSWORD or stdin).
    Login {
        /// The login name.
        login: String,
    },
    /// Show the cluster: members, roles, leader, term, commit index, health.
    Cluster,
    /// GET a path under the API, for example /api/v1/tenants.
    Get {
        /// The path.
        path: String,
    },
    /// POST a JSON body (argument, or `-` for stdin).
    Post {
        /// The path.
        path: String,
        /// The JSON body.
        body: String,
        /// Idempotency key: the same key never applies twice.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
    /// PATCH a JSON body (argument, or `-` for stdin).
    Patch {
        /// The path.
        path: String,
        /// The JSON body.
        body: String,
    },
    /// DELETE a path.
    Delete {
        /// The path.
        path: String,
    },
}

/// A minimal admin API client shared by `ctl` and `demo`.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl Api {
    /// A client for `url`.
    pub fn new(url: &str, token: Option<String>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .context("build the HTTP client")?;
        Ok(Self {
            http,
            url: url.trim_end_matches('/').to_string(),
            token,
        })
    }

    /// Sends a request and returns (status, JSON body).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(u16, Value)> {
        let mut request = self.http.request(method, format!("{}{path}", self.url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}{path}", self.url))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.context("read the reply")?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Ok((status, value))
    }

    /// Sends a request; a non-2xx reply is an error carrying the problem.
    pub async fn expect_ok(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let (status, value) = self.call(method.clone(), path, body, None).await?;
        if !(200..300).contains(&status) {
            bail!("{method} {path}: HTTP {status}: {value}");
        }
        Ok(value)
    }

    /// Logs in; a client carrying the session token.
    pub async fn login(&self, login: &str, password: &str) -> Result<Self> {
        let body = serde_json::json!({"login": login, "password": password});
        let reply = self
            .expect_ok(reqwest::Method::POST, "/api/v1/auth/login", Some(&body))
            .await?;
        let token = reply
            .get("token")
            .and_then(Value::as_str)
            .context("the login reply has no token")?;
        Ok(Self {
            token: Some(token.to_string()),
            ..self.clone()
        })
    }
}

fn read_body(body: &str) -> Result<Value> {
    let text = if body == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("read the body from stdin")?;
        text
    } else {
        body.to_string()
    };
    serde_json::from_str(&text).context("the body is not valid JSON")
}

/// Runs `carillon ctl`.
pub async fn run(args: CtlArgs) -> Result<()> {
    let api = Api::new(&args.url, args.token.clone())?;
    let (method, path, body, key) = match args.action {
        CtlAction::Login { login } => {
            let password = match std::env::var("CARILLON_PASSWORD") {
                Ok(password) => password,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("read the password from stdin")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let logged_in = api.login(&login, &password).await?;
            println!("{}", logged_in.token.unwrap_or_default());
            return Ok(());
        }
        CtlAction::Cluster => (
            reqwest::Method::GET,
            "/api/v1/cluster".to_string(),
            None,
            None,
        ),
        CtlAction::Get { path } => (reqwest::Method::GET, path, None, None),
        CtlAction::Post {
            path,
            body,
            idempotency_key,
        } => (
            reqwest::Method::POST,
            path,
            Some(read_body(&body)?),
            idempotency_key,
        ),
        CtlAction::Patch { path, body } => {
            (reqwest::Method::PATCH, path, Some(read_body(&body)?), None)
        }
        CtlAction::Delete { path } => (reqwest::Method::DELETE, path, None, None),
    };
    let (status, value) = api
        .call(method, &path, body.as_ref(), key.as_deref())
        .await?;
    let pretty = serde_json::to_string_pretty(&value).unwrap_or_default();
    if (200..300).contains(&status) {
        println!("{pretty}");
        Ok(())
    } else {
        eprintln!("{pretty}");
        bail!("HTTP {status}")
    }
}
