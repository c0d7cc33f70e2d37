//! The admin API for webhooks: `POST /wallet/webhooks` (the secret is shown in that answer only),
//! `GET /wallet/webhooks`, `DELETE /wallet/webhooks/{id}`, `GET /wallet/webhooks/{id}/deliveries`. The routes
//! need the admin role (the authentication middleware checks it). Delivery itself is `crate::webhooks`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::body::JsonBody;
use super::error::{ApiError, Problem, Result};
use super::extract::ApiQuery;
use super::paging::{cursor, link_next, page_size};
use crate::domain::rfc3339;
use crate::outcome::ProblemKind;
use crate::state::AppState;
use crate::store::{Attempt, Delivery, NewWebhook, Webhook};
use crate::webhooks::{MAX_WEBHOOKS, guard, parse_event_types, signing};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// An http(s) URL that resolves to public addresses (unless the server allows private ones).
    #[schema(example = "https://hooks.example.com/revwallet")]
    pub url: String,
    /// Event types to deliver; omitted or `["*"]`: every type.
    #[schema(example = json!(["transaction.created", "hold.created"]))]
    pub events: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResponse {
    #[schema(example = "1")]
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: String,
    /// The signing secret: in the answer to its creation only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookResponse {
    pub fn new(webhook: &Webhook, secret: Option<String>) -> Self {
        Self {
            id: webhook.id.to_string(),
            url: webhook.url.clone(),
            events: webhook.events.clone(),
            created_at: rfc3339(webhook.created_at),
            secret,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptResponse {
    pub started_at: String,
    pub finished_at: String,
    /// `delivered` or `failed`.
    pub outcome: String,
    /// The receiver's HTTP status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_status: Option<i32>,
    /// Why there was no answer (timeout, connection refused, refused address, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    pub id: String,
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    /// `pending`, `delivered` or `failed` (given up after the retry window).
    pub status: String,
    pub created_at: String,
    /// When a pending delivery is next attempted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// Oldest first.
    pub attempts: Vec<AttemptResponse>,
}

impl DeliveryResponse {
    pub fn new(delivery: &Delivery) -> Self {
        Self {
            id: delivery.id.to_string(),
            event_id: delivery.event_id.to_string(),
            event_type: delivery.event_type.clone(),
            status: delivery.status.clone(),
            created_at: rfc3339(delivery.created_at),
            next_attempt_at: (delivery.status == "pending")
                .then(|| rfc3339(delivery.next_attempt_at)),
            finished_at: delivery.finished_at.map(rfc3339),
            attempts: delivery.attempts.iter().map(AttemptResponse::new).collect(),
        }
    }
}

impl AttemptResponse {
    fn new(attempt: &Attempt) -> Self {
        Self {
            started_at: rfc3339(attempt.started_at),
            finished_at: rfc3339(attempt.finished_at),
            outcome: attempt.outcome.clone(),
            response_status: attempt.response_status,
            error: attempt.error.clone(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListDeliveriesQuery {
    /// Page size, 1–1000 (default 100).
    pub limit: Option<String>,
    /// Delivery id cursor: deliveries older than this one.
    pub before: Option<String>,
}

/// A webhook id from the path: a positive integer in its canonical spelling, else no such webhook.
fn webhook_id(path: Option<Path<String>>) -> Result<i64> {
    path.and_then(|Path(text)| {
        text.parse::<i64>()
            .ok()
            .filter(|id| *id > 0 && id.to_string() == text)
    })
    .ok_or_else(|| ApiError::new(ProblemKind::NotFound, "no such webhook"))
}

/// Register a webhook. Its secret is in this answer only; an `Idempotency-Key` is not honoured here (keeping
/// the answer would keep the secret).
#[utoipa::path(post, path = "/wallet/webhooks", tag = "webhooks", request_body = CreateWebhookRequest,
    security(("bearer" = [])),
    responses((status = 201, body = WebhookResponse, headers(("Location" = String))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_webhook(
    State(app): State<AppState>,
    request: JsonBody<CreateWebhookRequest>,
) -> Result<Response> {
    let body = &request.value;
    let events = parse_event_types(body.events.as_deref()).map_err(ApiError::invalid_request)?;
    let url = guard::parse_url(&body.url).map_err(ApiError::invalid_request)?;
    let settings = &app.settings.webhooks;
    guard::check_destination(&url, settings.webhook_allow_private)
        .await
        .map_err(ApiError::invalid_request)?;
    let server_key = settings
        .webhook_secret_key
        .as_ref()
        .map(|key| key.0.as_str())
        .filter(|key| !key.is_empty());
    let (stored, secret) = signing::new_secret(server_key);
    let new = NewWebhook {
        url: url.to_string(),
        events,
        secret: stored,
    };
    let created = app
        .store
        .create_webhook(&new, MAX_WEBHOOKS)
        .await?
        .ok_or_else(|| {
            ApiError::invalid_request(format!(
                "at most {MAX_WEBHOOKS} webhooks may exist; delete one first"
            ))
        })?;
    tracing::info!(webhook_id = created.id, "webhook created");
    let location = [(
        axum::http::header::LOCATION,
        format!("/wallet/webhooks/{}", created.id),
    )];
    Ok((
        StatusCode::CREATED,
        location,
        Json(WebhookResponse::new(&created, Some(secret))),
    )
        .into_response())
}

/// List webhooks (never their secrets).
#[utoipa::path(get, path = "/wallet/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, body = [WebhookResponse]),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_webhooks(State(app): State<AppState>) -> Result<Json<Vec<WebhookResponse>>> {
    let webhooks = app.store.list_webhooks().await?;
    Ok(Json(
        webhooks
            .iter()
            .map(|w| WebhookResponse::new(w, None))
            .collect(),
    ))
}

/// Delete a webhook and its deliveries: nothing more is sent to it.
#[utoipa::path(delete, path = "/wallet/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_webhook(
    State(app): State<AppState>,
    path: Option<Path<String>>,
) -> Result<Response> {
    let id = webhook_id(path)?;
    if !app.store.delete_webhook(id).await? {
        return Err(ApiError::new(ProblemKind::NotFound, "no such webhook"));
    }
    tracing::info!(webhook_id = id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A webhook's deliveries, newest first, each with its attempts.
#[utoipa::path(get, path = "/wallet/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path), ListDeliveriesQuery), security(("bearer" = [])),
    responses((status = 200, body = [DeliveryResponse], headers(("Link" = String, description = "next page"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_deliveries(
    State(app): State<AppState>,
    path: Option<Path<String>>,
    ApiQuery(query): ApiQuery<ListDeliveriesQuery>,
) -> Result<Response> {
    let id = webhook_id(path)?;
    let limit = page_size(query.limit.as_deref())?;
    let before = cursor(query.before.as_deref(), "before")?;
    if app.store.get_webhook(id).await?.is_none() {
        return Err(ApiError::new(ProblemKind::NotFound, "no such webhook"));
    }
    let page = app.store.list_deliveries(id, before, limit).await?;
    let body: Vec<DeliveryResponse> = page.items.iter().map(DeliveryResponse::new).collect();
    let next = page
        .next
        .map(|before| vec![("limit", limit.to_string()), ("before", before.to_string())]);
    let path = format!("/wallet/webhooks/{id}/deliveries");
    Ok((link_next(&path, next), Json(body)).into_response())
}
