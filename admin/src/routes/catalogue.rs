//! Simple tenant objects with list/create/get/replace/delete: branches (U1),
//! skills and groups (A7), pause types (A5).

use super::{created, Created};
use crate::access::{Area, Caller, Mode};
use crate::extract::{Body, Id};
use crate::problem::Problem;
use crate::state::AppState;
use crate::write::created_id;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use carillon_actors::ledger::Command;
use carillon_actors::model::directory::{
    Branch, BranchSpec, Named, NamedSpec, PauseType, PauseTypeSpec,
};
use carillon_actors::model::{BranchId, GroupId, PauseTypeId, QueueId, SkillId, TenantId};

macro_rules! crud {
    (
        module: $module:ident, tag: $tag:literal, path: $path:literal, item: $item_path:literal,
        area: $area:expr, spec: $spec:ty, view: $view:ty, id: $id:ident,
        all: |$t:ident| $all:expr, key: |$v:ident| $key:expr,
        create: |$ct:ident, $cs:ident| $create:expr,
        update: |$ut:ident, $ui:ident, $us:ident| $update:expr,
        delete: |$dt:ident, $di:ident| $delete:expr $(,)?
    ) => {
        /// Handlers of one simple object kind.
        pub mod $module {
            use super::*;

            /// List them.
            #[utoipa::path(get, path = $path, tag = $tag, params(("tenant" = u64, Path)),
                responses((status = 200, body = Vec<$view>)), security(("bearer" = [])))]
            pub async fn list(
                State(app): State<AppState>,
                caller: Caller,
                Id(tenant): Id<TenantId>,
            ) -> Result<Json<Vec<$view>>, Problem> {
                app.read_tenant(&caller, tenant, $area, |$t| Ok(Json($all.cloned().collect()))).await
            }

            /// Create one.
            #[utoipa::path(post, path = $path, tag = $tag, params(("tenant" = u64, Path)), request_body = $spec,
                responses((status = 201, body = Created)), security(("bearer" = [])))]
            pub async fn create(
                State(app): State<AppState>,
                caller: Caller,
                headers: HeaderMap,
                Id(tenant): Id<TenantId>,
                Body(spec): Body<$spec>,
            ) -> Result<(StatusCode, Json<Created>), Problem> {
                caller.require(tenant, $area, Mode::Write)?;
                let ($ct, $cs) = (tenant, spec);
                let outcome = app.execute(&caller, &headers, $create).await?;
                Ok(created(created_id(&outcome)?))
            }

            /// One of them.
            #[utoipa::path(get, path = $item_path, tag = $tag,
                params(("tenant" = u64, Path), ("id" = u64, Path)),
                responses((status = 200, body = $view)), security(("bearer" = [])))]
            pub async fn get(
                State(app): State<AppState>,
                caller: Caller,
                Id((tenant, id)): Id<(TenantId, u64)>,
            ) -> Result<Json<$view>, Problem> {
                app.read_tenant(&caller, tenant, $area, |$t| {
                    $all.find(|$v| $key == id).cloned().map(Json).ok_or_else(|| Problem::not_found($tag))
                }).await
            }

            /// Replace one's settings.
            #[utoipa::path(put, path = $item_path, tag = $tag, request_body = $spec,
                params(("tenant" = u64, Path), ("id" = u64, Path)),
                responses((status = 200, body = $view)), security(("bearer" = [])))]
            pub async fn update(
                State(app): State<AppState>,
                caller: Caller,
                headers: HeaderMap,
                Id((tenant, id)): Id<(TenantId, u64)>,
                Body(spec): Body<$spec>,
            ) -> Result<Json<$view>, Problem> {
                caller.require(tenant, $area, Mode::Write)?;
                let ($ut, $ui, $us) = (tenant, $id(id), spec);
                app.execute(&caller, &headers, $update).await?;
                app.with_tenant(tenant, |$t| {
                    $all.find(|$v| $key == id).cloned().map(Json).ok_or_else(|| Problem::not_found($tag))
                }).await
            }

            /// Delete one.
            #[utoipa::path(delete, path = $item_path, tag = $tag,
                params(("tenant" = u64, Path), ("id" = u64, Path)),
                responses((status = 204, description = "Deleted")), security(("bearer" = [])))]
            pub async fn delete(
                State(app): State<AppState>,
                caller: Caller,
                headers: HeaderMap,
                Id((tenant, id)): Id<(TenantId, u64)>,
            ) -> Result<StatusCode, Problem> {
                caller.require(tenant, $area, Mode::Write)?;
                let ($dt, $di) = (tenant, $id(id));
                app.execute(&caller, &headers, $delete).await?;
                Ok(StatusCode::NO_CONTENT)
            }
        }
    };
}

crud! {
    module: branches, tag: "branches", path: "/api/v1/tenants/{tenant}/branches",
    item: "/api/v1/tenants/{tenant}/branches/{id}",
    area: Area::Branches, spec: BranchSpec, view: Branch, id: BranchId,
    all: |t| t.branches(), key: |b| b.id.0,
    create: |tenant, spec| Command::CreateBranch { tenant, spec },
    update: |tenant, branch, spec| Command::UpdateBranch { tenant, branch, spec },
    delete: |tenant, branch| Command::DeleteBranch { tenant, branch },
}

crud! {
    module: skills, tag: "skills", path: "/api/v1/tenants/{tenant}/skills",
    item: "/api/v1/tenants/{tenant}/skills/{id}",
    area: Area::Catalogue, spec: NamedSpec, view: Named, id: SkillId,
    all: |t| t.skills(), key: |s| s.id,
    create: |tenant, spec| Command::CreateSkill { tenant, spec },
    update: |tenant, skill, spec| Command::UpdateSkill { tenant, skill, spec },
    delete: |tenant, skill| Command::DeleteSkill { tenant, skill },
}

crud! {
    module: groups, tag: "groups", path: "/api/v1/tenants/{tenant}/groups",
    item: "/api/v1/tenants/{tenant}/groups/{id}",
    area: Area::Catalogue, spec: NamedSpec, view: Named, id: GroupId,
    all: |t| t.groups(), key: |g| g.id,
    create: |tenant, spec| Command::CreateGroup { tenant, spec },
    update: |tenant, group, spec| Command::UpdateGroup { tenant, group, spec },
    delete: |tenant, group| Command::DeleteGroup { tenant, group },
}

crud! {
    module: pause_types, tag: "pause-types", path: "/api/v1/tenants/{tenant}/pause-types",
    item: "/api/v1/tenants/{tenant}/pause-types/{id}",
    area: Area::Catalogue, spec: PauseTypeSpec, view: PauseType, id: PauseTypeId,
    all: |t| t.pause_types(), key: |p| p.id,
    create: |tenant, spec| Command::CreatePauseType { tenant, spec },
    update: |tenant, pause_type, spec| Command::UpdatePauseType { tenant, pause_type, spec },
    delete: |tenant, pause_type| Command::DeletePauseType { tenant, pause_type },
}

crud! {
    module: queues, tag: "queues", path: "/api/v1/tenants/{tenant}/queues",
    item: "/api/v1/tenants/{tenant}/queues/{id}",
    area: Area::Queues, spec: carillon_actors::model::queue::QueueSpec,
    view: carillon_actors::model::queue::Queue, id: QueueId,
    all: |t| t.queues(), key: |q| q.id.0,
    create: |tenant, spec| Command::CreateQueue { tenant, spec },
    update: |tenant, queue, spec| Command::UpdateQueue { tenant, queue, spec },
    delete: |tenant, queue| Command::DeleteQueue { tenant, queue },
}
