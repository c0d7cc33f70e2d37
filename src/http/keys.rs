//! The admin API for keys: `POST /wallet/keys` (the secret is shown in that answer only), `GET /wallet/keys`,
//! `DELETE /wallet/keys/{id}`. The routes need the admin role (the authentication middleware checks it).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::body::JsonBody;
use super::error::{ApiError, Problem, Result};
use crate::auth::{Authenticator, new_key};
use crate::domain::{KeySecret, Role, rfc3339};
use crate::outcome::ProblemKind;
use crate::state::AppState;
use crate::store::ApiKey;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// `read`, `write` or `admin`.
    #[schema(example = "write")]
    pub role: String,
    /// Bind the key to one owner (not for admin keys).
    #[schema(example = "alice")]
    pub owner: Option<String>,
    #[schema(example = "checkout service")]
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyResponse {
    #[schema(example = "3f9a0c1d2e4b5a69")]
    pub id: String,
    pub name: String,
    #[schema(example = "write")]
    pub role: &'static str,
    pub owner: Option<String>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// The secret: in the answer to its creation only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl KeyResponse {
    fn new(key: &ApiKey, secret: Option<&KeySecret>) -> Self {
        Self {
            id: key.id.clone(),
            name: key.name.clone(),
            role: key.role.as_str(),
            owner: key.owner.clone(),
            created_at: rfc3339(key.created_at),
            revoked_at: key.revoked_at.map(rfc3339),
            key: secret.map(|secret| secret.reveal().to_owned()),
        }
    }
}

/// Create an API key. An `Idempotency-Key` is not honoured here: keeping the answer would keep the secret.
#[utoipa::path(post, path = "/wallet/keys", tag = "keys", request_body = CreateKeyRequest,
    security(("bearer" = [])),
    responses((status = 201, body = KeyResponse, headers(("Location" = String))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_key(
    State(app): State<AppState>,
    request: JsonBody<CreateKeyRequest>,
) -> Result<Response> {
    let body = &request.value;
    let role = Role::parse(&body.role)
        .ok_or_else(|| ApiError::invalid_request("role must be read, write or admin"))?;
    let secret = KeySecret::generate();
    let key = new_key(
        &secret,
        role,
        body.owner.as_deref(),
        body.name.as_deref().unwrap_or(""),
    )
    .map_err(ApiError::invalid_request)?;
    let created = app
        .store
        .insert_api_key(&key)
        .await?
        .ok_or_else(|| ApiError::internal("a new key's id collided; the client may retry"))?;
    tracing::info!(key_id = %created.id, role = %created.role, "API key created");
    let location = [(
        axum::http::header::LOCATION,
        format!("/wallet/keys/{}", created.id),
    )];
    Ok((
        StatusCode::CREATED,
        location,
        Json(KeyResponse::new(&created, Some(&secret))),
    )
        .into_response())
}

/// List API keys (never their secrets).
#[utoipa::path(get, path = "/wallet/keys", tag = "keys", security(("bearer" = [])),
    responses((status = 200, body = [KeyResponse]),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_keys(State(app): State<AppState>) -> Result<Json<Vec<KeyResponse>>> {
    let keys = app.store.list_api_keys().await?;
    Ok(Json(
        keys.iter().map(|key| KeyResponse::new(key, None)).collect(),
    ))
}

/// Revoke an API key: every replica refuses it within seconds.
#[utoipa::path(delete, path = "/wallet/keys/{id}", tag = "keys", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn revoke_key(
    State(app): State<AppState>,
    path: Option<Path<String>>,
) -> Result<Response> {
    let Some(Path(id)) = path else {
        return Err(ApiError::new(ProblemKind::NotFound, "no such API key"));
    };
    app.store.revoke_api_key(&id).await?;
    if let Authenticator::ApiKeys(keyring) = &app.auth {
        keyring.revoked(&id);
    }
    tracing::info!(key_id = %id, "API key revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}
