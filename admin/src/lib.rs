//! carillon-admin: the admin HTTP API under `/api/v1`, with bearer
//! authentication, role-based access, problem+json errors, Prometheus
//! metrics and its own OpenAPI document.
//!
//! Invariants: every error is `application/problem+json` with a stable
//! `code`; a refused or malformed request changes nothing; an object of
//! another tenant is 404; passwords, PINs and SIP passwords are hashed before
//! they leave the handler and are never returned or logged; domain rules
//! live in `carillon-actors`, not here.

pub mod access;
pub mod extract;
pub mod http_metrics;
pub mod mailer;
pub mod openapi;
pub mod presence;
pub mod problem;
pub mod routes;
pub mod security;
pub mod state;
pub mod throttle;
pub mod token;
pub mod write;

use crate::http_metrics::HttpMetrics;
use crate::problem::Problem;
use crate::state::AppState;
use axum::Router;
use carillon_actors::ledger::{Command, Ledger};
use carillon_actors::model::credentials::hash_operator_password;
use carillon_actors::model::RefusalCode;
use carillon_consensus::{Clock, CommandId, Consensus};
use std::sync::Arc;

/// Why the admin API could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Metrics registration failed (a duplicate name).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The admin API of one node.
#[derive(Debug, Clone)]
pub struct Admin {
    state: AppState,
    security: Arc<security::SecurityPolicy>,
}

impl Admin {
    /// An admin API over `consensus`, exposing `registry` on `/metrics`.
    pub fn new(
        consensus: Consensus<Ledger>,
        clock: Arc<dyn Clock>,
        registry: prometheus::Registry,
    ) -> Result<Self, AdminError> {
        let http_metrics = Arc::new(HttpMetrics::register(&registry)?);
        let throttle_metrics = Arc::new(http_metrics::ThrottleMetrics::register(&registry)?);
        Ok(Self {
            state: AppState {
                consensus,
                clock,
                registry,
                http_metrics,
                presence: Arc::new(presence::NoSipEdge),
                throttle: Arc::new(std::sync::Mutex::new(throttle::Throttle::new(
                    throttle::ThrottleRules::default(),
                ))),
                bearer_throttle: Arc::new(std::sync::Mutex::new(throttle::Throttle::new(
                    throttle::ThrottleRules::for_bearer_tokens(),
                ))),
                reset_throttle: Arc::new(std::sync::Mutex::new(throttle::Throttle::new(
                    throttle::ThrottleRules::for_password_resets(),
                ))),
                mailer: Arc::new(mailer::NoMailer),
                reset: mailer::ResetSettings::default(),
                throttle_metrics,
                history: None,
            },
            security: Arc::new(security::SecurityPolicy::default()),
        })
    }

    /// Applies `policy` (CORS origins, HTTPS) to every response.
    pub fn set_security(&mut self, policy: security::SecurityPolicy) {
        self.security = Arc::new(policy);
    }

    /// Shows registrations from this node's SIP edge (D7) in the API.
    pub fn set_presence(&mut self, presence: Arc<dyn presence::Presence>) {
        self.state.presence = presence;
    }

    /// Throttles logins by `rules` (the node's configuration).
    pub fn set_throttle_rules(&mut self, rules: throttle::ThrottleRules) {
        self.state.throttle = Arc::new(std::sync::Mutex::new(throttle::Throttle::new(rules)));
    }

    /// Hands outgoing e-mail (password resets) to `mailer`, with `reset`'s
    /// link and lifetime.
    pub fn set_mailer(&mut self, mailer: Arc<dyn mailer::Mailer>, reset: mailer::ResetSettings) {
        self.state.mailer = mailer;
        self.state.reset = reset;
    }

    /// Serves activity records (H1) from this node's history store.
    pub fn set_history(&mut self, history: Arc<dyn carillon_actors::history::HistoryStore>) {
        self.state.history = Some(history);
    }

    /// The HTTP router.
    pub fn router(&self) -> Router {
        openapi::router(self.state.clone()).layer(axum::middleware::from_fn_with_state(
            self.security.clone(),
            security::apply,
        ))
    }

    /// Makes sure the cluster has a token signing key and the operator
    /// account exists. Idempotent; safe on every bootstrapping node.
    pub async fn bootstrap(
        &self,
        operator_login: &str,
        operator_password: &str,
    ) -> Result<(), Problem> {
        let app = &self.state;
        let key = write::hex(&write::random_bytes::<32>());
        match app
            .execute_as(
                CommandId("cluster-bootstrap".into()),
                Command::Bootstrap {
                    signing_key_hex: key,
                },
            )
            .await
        {
            Ok(_) => {}
            Err(p) if p.code == "ALREADY_BOOTSTRAPPED" => {}
            Err(p) => return Err(p),
        }
        if app
            .consensus
            .read(|l| l.operator_by_login(operator_login).is_some())
            .await?
        {
            return Ok(());
        }
        let salt = write::random_bytes::<16>();
        let password = operator_password.to_string();
        let phc = tokio::task::spawn_blocking(move || hash_operator_password(&password, &salt))
            .await
            .map_err(|e| Problem::unavailable(e.to_string()))?;
        let command = Command::CreateOperator {
            login: operator_login.to_string(),
            password_phc: phc,
        };
        match app
            .execute_as(CommandId(format!("operator:{operator_login}")), command)
            .await
        {
            Ok(_) => Ok(()),
            Err(p)
                if p.code
                    == carillon_actors::model::refusal::code_text(RefusalCode::LoginNotUnique) =>
            {
                Ok(())
            }
            Err(p) => Err(p),
        }
    }
}
