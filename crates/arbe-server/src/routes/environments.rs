//! Environments, seed 001 exactly: list and view for members, create and update for writers,
//! delete (soft) for owners; addressed by id or by name.

use arbe_api::{BindOutcome, Bound, EnvironmentDiagnosis, Unbound};
use arbe_core::{
    Environment, EnvironmentName, EnvironmentRef, ModelRef, RepoRef, RuntimeName, SandboxRef, SecretBinding, SecretName,
};
use arbe_env::{CreateEnvironment, EnvironmentPatch};
use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};

use crate::{
    ApiError, AppState,
    auth::InHouse,
    body::Body,
    routes::{HouseParam, check_view},
};

fn bindings(bindings: Vec<arbe_api::Binding>) -> Result<Vec<SecretBinding>, ApiError> {
    bindings
        .into_iter()
        .map(|b| Ok(SecretBinding { name: SecretName::parse(&b.name)?, required: b.required }))
        .collect()
}

fn repos(repos: Vec<String>) -> Result<Vec<RepoRef>, ApiError> {
    repos.iter().map(|r| Ok(RepoRef::parse(r)?)).collect()
}

/// `GET /api/environments?house_id=`.
#[utoipa::path(get, path = "/api/environments", tag = "environments", operation_id = "environments_list",
    params(HouseParam),
    responses((status = 200, description = "The house's environments", body = Vec<Environment>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
) -> Result<Json<Vec<Environment>>, ApiError> {
    Ok(Json(state.services.environments.list(&actor).await?))
}

/// `GET /api/environments/{id or name}?house_id=`.
#[utoipa::path(get, path = "/api/environments/{id}", tag = "environments", operation_id = "environments_view",
    params(HouseParam, ("id" = String, Path, description = "The environment's id or name")),
    responses((status = 200, description = "The environment", body = Environment)))]
pub(crate) async fn view(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<Json<Environment>, ApiError> {
    Ok(Json(state.services.environments.view(&actor, &EnvironmentRef::parse(&id)?).await?))
}

/// `POST /api/environments?house_id=`: without `sandbox_id` a sandbox is provisioned.
#[utoipa::path(post, path = "/api/environments", tag = "environments", operation_id = "environments_create",
    params(HouseParam), request_body = arbe_api::CreateEnvironment,
    responses((status = 201, description = "The new environment", body = Environment)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Body(body): Body<arbe_api::CreateEnvironment>,
) -> Result<(StatusCode, Json<Environment>), ApiError> {
    let mut req = CreateEnvironment::new(EnvironmentName::parse(&body.name)?);
    req.runtime = body.runtime.as_deref().map(RuntimeName::parse).transpose()?;
    req.sandbox = body.sandbox_id.as_deref().map(SandboxRef::parse).transpose()?;
    req.repo = body.repo.as_deref().map(RepoRef::parse).transpose()?;
    req.allowed_repos = repos(body.allowed_repos)?;
    req.github_installation_id = body.github_installation_id;
    req.secrets = bindings(body.secret_bindings)?;
    let env = state.services.environments.create(&actor, req).await?;
    Ok((StatusCode::CREATED, Json(env)))
}

/// `PATCH /api/environments/{id or name}?house_id=`: a partial update.
#[utoipa::path(patch, path = "/api/environments/{id}", tag = "environments", operation_id = "environments_update",
    params(HouseParam, ("id" = String, Path, description = "The environment's id or name")), request_body = arbe_api::PatchEnvironment,
    responses((status = 200, description = "The environment, updated", body = Environment)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
    Body(body): Body<arbe_api::PatchEnvironment>,
) -> Result<Json<Environment>, ApiError> {
    let by = EnvironmentRef::parse(&id)?;
    let patch = EnvironmentPatch {
        name: body.name.as_deref().map(EnvironmentName::parse).transpose()?,
        sandbox: body.sandbox_id.as_deref().map(SandboxRef::parse).transpose()?,
        default_repo: body.default_repo.map(|repo| repo.as_deref().map(RepoRef::parse).transpose()).transpose()?,
        allowed_repos: body.allowed_repos.map(repos).transpose()?,
        github_installation_id: body.github_installation_id,
        secret_bindings: body.secret_bindings.map(bindings).transpose()?,
    };
    Ok(Json(state.services.environments.update(&actor, &by, patch).await?))
}

/// `DELETE /api/environments/{id or name}?house_id=`: a soft delete, for owners.
#[utoipa::path(delete, path = "/api/environments/{id}", tag = "environments", operation_id = "environments_delete",
    params(HouseParam, ("id" = String, Path, description = "The environment's id or name")),
    responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.services.environments.delete(&actor, &EnvironmentRef::parse(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/environments/{id or name}/secrets/{NAME}?house_id=` with `{"required": …}`
/// (default true): binds a secret by name; the same flag again changes nothing.
#[utoipa::path(put, path = "/api/environments/{id}/secrets/{name}", tag = "environments", operation_id = "environments_bind",
    params(HouseParam, ("id" = String, Path, description = "The environment's id or name"), ("name" = String, Path, description = "The secret's name")), request_body = arbe_api::BindSecret,
    responses((status = 200, description = "The environment and what changed", body = Bound)))]
pub(crate) async fn bind(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path((id, name)): Path<(String, String)>,
    Body(body): Body<arbe_api::BindSecret>,
) -> Result<Json<Bound>, ApiError> {
    let by = EnvironmentRef::parse(&id)?;
    let name = SecretName::parse(&name)?;
    let (environment, outcome) = state.services.environments.bind_secret(&actor, &by, name, body.required).await?;
    let outcome = match outcome {
        arbe_env::BindOutcome::Added => BindOutcome::Added,
        arbe_env::BindOutcome::Changed => BindOutcome::Changed,
        arbe_env::BindOutcome::Unchanged => BindOutcome::Unchanged,
    };
    Ok(Json(Bound { environment, outcome }))
}

/// `DELETE /api/environments/{id or name}/secrets/{NAME}?house_id=`.
#[utoipa::path(delete, path = "/api/environments/{id}/secrets/{name}", tag = "environments", operation_id = "environments_unbind",
    params(HouseParam, ("id" = String, Path, description = "The environment's id or name"), ("name" = String, Path, description = "The secret's name")),
    responses((status = 200, description = "The environment and whether the binding was there", body = Unbound)))]
pub(crate) async fn unbind(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path((id, name)): Path<(String, String)>,
) -> Result<Json<Unbound>, ApiError> {
    let by = EnvironmentRef::parse(&id)?;
    let name = SecretName::parse(&name)?;
    let (environment, removed) = state.services.environments.unbind_secret(&actor, &by, &name).await?;
    Ok(Json(Unbound { environment, removed }))
}

/// `GET /api/environments/{id or name}/diagnose?house_id=&model=`.
#[utoipa::path(get, path = "/api/environments/{id}/diagnose", tag = "environments", operation_id = "environments_diagnose",
    params(HouseParam, ("id" = String, Path, description = "The environment's id or name"), ("model" = Option<String>, Query, description = "The model to check for (default: the house default)")),
    responses((status = 200, description = "Would a dispatch start: every check", body = EnvironmentDiagnosis)))]
pub(crate) async fn diagnose(
    State(state): State<AppState>,
    InHouse(actor): InHouse,
    Path(id): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<EnvironmentDiagnosis>, ApiError> {
    let by = EnvironmentRef::parse(&id)?;
    let model = ModelRef::parse(query.get("model").map_or(ModelRef::DEFAULT, String::as_str))?;
    let found = state.services.environments.diagnose(&actor, &by, &model).await?;
    let ok = found.is_ok();
    let checks = found.checks.into_iter().map(check_view).collect();
    Ok(Json(EnvironmentDiagnosis {
        environment: found.environment.to_string(),
        model: found.model.to_string(),
        ok,
        checks,
    }))
}
