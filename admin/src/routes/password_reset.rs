//! Password recovery (U5). `POST /api/v1/auth/password-reset` with a login
//! or an e-mail answers 202 with the same body at once, whether or not an
//! account matches (no enumeration: the lookup and the e-mail happen after
//! the answer); a matching user who may log in and has an e-mail address
//! gets a single-use link that expires. `POST
//! /api/v1/auth/password-reset/confirm` with the link's token and a new
//! password (V2 for the user's roles) sets it, ends the user's sessions and
//! revokes its API tokens. Requests are throttled per (login, address) and
//! per address like logins, without lockout.

use crate::extract::Body;
use crate::mailer::OutgoingMail;
use crate::problem::Problem;
use crate::routes::sessions::ClientIp;
use crate::state::AppState;
use crate::throttle::Verdict;
use crate::write::{hex, random_bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use carillon_actors::ledger::{fold_login, Command};
use carillon_actors::model::credentials::hash_api_token;
use carillon_actors::model::{TenantId, UserId};
use carillon_consensus::CommandId;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};
use utoipa::ToSchema;

/// Body of `POST /api/v1/auth/password-reset`: one of the two.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    /// The login.
    #[serde(default)]
    pub login: Option<String>,
    /// Or the e-mail address.
    #[serde(default)]
    pub email: Option<String>,
}

/// The answer to a reset request (the same whatever exists).
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetAccepted {
    /// What happens next.
    pub detail: String,
}

/// Body of `POST /api/v1/auth/password-reset/confirm`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    /// The `token` of the e-mailed link.
    pub token: String,
    /// The new panel password (V2).
    pub password: String,
}

impl std::fmt::Debug for ResetConfirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetConfirm").finish_non_exhaustive()
    }
}

const ACCEPTED: &str =
    "if an account matches, an e-mail with a link to set a new password is on its way";

/// Asks for a password reset e-mail.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = ResetRequest,
    responses((status = 202, body = ResetAccepted),
        (status = 429, description = "`RESET_THROTTLED`, with `Retry-After`", body = crate::problem::ProblemBody)))]
pub async fn request(
    State(app): State<AppState>,
    ClientIp(source): ClientIp,
    Body(body): Body<ResetRequest>,
) -> Result<(StatusCode, Json<ResetAccepted>), Problem> {
    let key = match (&body.login, &body.email) {
        (Some(login), None) => fold_login(login),
        (None, Some(email)) => email.trim().to_ascii_lowercase(),
        _ => {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "RESET_REQUEST_INVALID",
                "give either `login` or `email`",
            ))
        }
    };
    let source = source.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let now = app.clock.now_ms();
    {
        let mut throttle = app
            .reset_throttle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Verdict::Wait { retry_after_ms } = throttle.check(&key, source, now) {
            return Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RESET_THROTTLED",
                "too many password reset requests from this address: wait before the next",
            )
            .retry_after_ms(retry_after_ms));
        }
        throttle.failed(&key, source, now);
    }
    // The answer does not wait for the lookup, the ledger or the outbox.
    tokio::spawn(send_reset(app, body, source));
    Ok((
        StatusCode::ACCEPTED,
        Json(ResetAccepted {
            detail: ACCEPTED.into(),
        }),
    ))
}

async fn send_reset(app: AppState, body: ResetRequest, source: IpAddr) {
    let wanted = body.email.as_deref().map(|e| e.trim().to_ascii_lowercase());
    let found = app
        .consensus
        .read(|ledger| {
            let mut found: Vec<(TenantId, UserId, String)> = Vec::new();
            for state in ledger.tenants().filter_map(|t| ledger.tenant(t.id)) {
                for user in state.users() {
                    let Some(email) = user.spec.email.clone() else {
                        continue;
                    };
                    let matches = match (&body.login, &wanted) {
                        (Some(login), _) => fold_login(&user.spec.login) == fold_login(login),
                        (None, Some(e)) => email.to_ascii_lowercase() == *e,
                        _ => false,
                    };
                    if matches && user.spec.can_log_in() {
                        found.push((state.info().id, user.id, email));
                    }
                }
            }
            found
        })
        .await;
    let found = match found {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "password reset: the cluster did not answer the lookup");
            return;
        }
    };
    if found.is_empty() {
        tracing::info!(%source, "password reset asked for no account that may log in with an e-mail");
    }
    for (tenant, user, email) in found {
        let secret = format!("rst_{}", hex(&random_bytes::<24>()));
        let command = Command::IssuePasswordReset {
            tenant,
            user,
            token_hash: hash_api_token(&secret),
            expires_at_ms: app.clock.now_ms() + app.reset.ttl_ms,
        };
        let id = CommandId(hex(&random_bytes::<16>()));
        if let Err(p) = app.execute_as(id, command).await {
            tracing::warn!(tenant = tenant.0, user = user.0, problem = %p, "password reset not issued");
            continue;
        }
        let minutes = app.reset.ttl_ms / 60_000;
        let link = format!(
            "{}/reset-password?token={secret}",
            app.reset.link_base.trim_end_matches('/')
        );
        let mail = OutgoingMail {
            to: email,
            subject: "Set a new Carillon password".into(),
            body: format!(
                "Someone (you, we hope) asked to set a new password for your Carillon account.\n\n\
                 Open this link within {minutes} minutes to choose one; it works once:\n\n{link}\n\n\
                 If you did not ask, ignore this message: your password stays as it is.\n"
            ),
        };
        // The outbox writes to disk: off the async workers.
        let mailer = app.mailer.clone();
        let queued = tokio::task::spawn_blocking(move || mailer.enqueue(mail))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        match queued {
            Ok(()) => tracing::info!(
                tenant = tenant.0,
                user = user.0,
                "password reset e-mail queued"
            ),
            Err(e) => {
                tracing::warn!(tenant = tenant.0, user = user.0, error = %e, "password reset e-mail not queued")
            }
        }
    }
}

/// Sets a new password with the token of a reset e-mail.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth", request_body = ResetConfirm,
    responses((status = 204, description = "The new password is set; every session and API token of the user ended"),
        (status = 409, description = "`RESET_TOKEN_USED`", body = crate::problem::ProblemBody),
        (status = 422, description = "`RESET_TOKEN_INVALID`, `RESET_TOKEN_EXPIRED` or a V2 rule", body = crate::problem::ProblemBody)))]
pub async fn confirm(
    State(app): State<AppState>,
    Body(body): Body<ResetConfirm>,
) -> Result<StatusCode, Problem> {
    let ResetConfirm { token, password } = body;
    let token_hash = hash_api_token(&token);
    let now = app.clock.now_ms();
    let (tenant, user) = app
        .consensus
        .read(|l| l.usable_reset(&token_hash, now).map(|r| (r.tenant, r.user)))
        .await??;
    let roles = app
        .with_tenant(tenant, |t| {
            t.find_user(user)
                .map(|u| u.spec.roles.clone())
                .ok_or_else(|| Problem::not_found("user"))
        })
        .await?;
    let salt = crate::routes::users::tenant_salt(&app, tenant).await?;
    let password = crate::routes::users::hash_password(password, roles, salt).await?;
    let id = CommandId(hex(&random_bytes::<16>()));
    app.execute_as(
        id,
        Command::CompletePasswordReset {
            token_hash,
            password,
        },
    )
    .await?;
    tracing::info!(tenant = tenant.0, user = user.0, "password reset completed");
    let login = app.consensus.read_local(|l| {
        l.tenant(tenant)
            .and_then(|t| t.find_user(user))
            .map(|u| u.spec.login.clone())
    });
    if let Some(login) = login {
        app.notify_user(
            tenant,
            user,
            "Your Carillon password was changed",
            format!(
                "The password of your Carillon account {login} was just set with a password \
                 reset link, and every session of the account was ended.\n\n\
                 If that was not you, tell your administrator at once.\n"
            ),
        );
    }
    Ok(StatusCode::NO_CONTENT)
}
