//! The API's handlers, one module per area.

pub mod audit;
pub mod auth;
pub mod catalogue;
pub mod cluster;
pub mod devices;
pub mod history;
pub mod licences;
pub mod lockouts;
pub mod login_sessions;
pub mod numbers;
pub mod password_reset;
pub mod queues;
pub mod sessions;
pub mod system;
pub mod tenants;
pub mod users;

use crate::access::{Area, Caller, Mode};
use crate::problem::Problem;
use crate::state::AppState;
use axum::http::StatusCode;
use carillon_actors::ledger::TenantState;
use carillon_actors::model::TenantId;
use serde::Serialize;
use utoipa::ToSchema;

/// The answer to a create: the new object's id.
#[derive(Debug, Serialize, ToSchema)]
pub struct Created {
    /// The new object's id.
    pub id: u64,
}

/// A 201 with the new id.
pub fn created(id: u64) -> (StatusCode, axum::Json<Created>) {
    (StatusCode::CREATED, axum::Json(Created { id }))
}

impl AppState {
    /// Checks access, then reads `tenant`'s state linearizably: the read
    /// sees every write acknowledged before it, through any node.
    pub async fn read_tenant<T>(
        &self,
        caller: &Caller,
        tenant: TenantId,
        area: Area,
        f: impl FnOnce(&TenantState) -> Result<T, Problem>,
    ) -> Result<T, Problem> {
        caller.require(tenant, area, Mode::Read)?;
        self.with_tenant(tenant, f).await
    }

    /// Reads `tenant`'s state linearizably (access is the caller's business).
    pub async fn with_tenant<T>(
        &self,
        tenant: TenantId,
        f: impl FnOnce(&TenantState) -> Result<T, Problem>,
    ) -> Result<T, Problem> {
        self.consensus
            .read(|ledger| match ledger.tenant(tenant) {
                Some(state) => f(state),
                None => Err(Problem::not_found("tenant")),
            })
            .await?
    }
}
