//! The admin page of webhooks: each registered endpoint with its most recent deliveries, their status and the
//! outcome of their latest attempt. Read-only (webhooks are created and deleted through the API); admin only
//! (`session::needed_role`).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::error::{PageError, html};
use super::views::{Chrome, display_time};
use crate::state::AppState;
use crate::store::{Delivery, Webhook};

/// Deliveries shown per webhook.
pub const DELIVERIES_PER_WEBHOOK: u32 = 10;

#[derive(Template)]
#[template(path = "webhooks.html")]
pub struct WebhooksPage {
    pub chrome: Chrome,
    pub webhooks: Vec<WebhookView>,
}

pub struct WebhookView {
    pub id: i64,
    pub url: String,
    pub events: String,
    pub created: String,
    pub deliveries: Vec<DeliveryView>,
    pub more: bool,
}

pub struct DeliveryView {
    pub id: i64,
    pub event_id: i64,
    pub event_type: String,
    pub status: String,
    pub attempts: usize,
    /// The latest attempt's answer or error.
    pub last: String,
    pub when: String,
    pub when_iso: String,
}

impl DeliveryView {
    fn new(delivery: &Delivery) -> Self {
        let last = delivery.attempts.last().map_or_else(
            || "not attempted yet".to_owned(),
            |attempt| match (attempt.response_status, &attempt.error) {
                (Some(status), _) => format!("HTTP {status}"),
                (None, Some(error)) => error.clone(),
                (None, None) => attempt.outcome.clone(),
            },
        );
        let at = delivery
            .attempts
            .last()
            .map_or(delivery.created_at, |a| a.finished_at);
        Self {
            id: delivery.id,
            event_id: delivery.event_id,
            event_type: delivery.event_type.clone(),
            status: delivery.status.clone(),
            attempts: delivery.attempts.len(),
            last,
            when: display_time(at),
            when_iso: crate::domain::rfc3339(at),
        }
    }
}

/// `GET /ui/webhooks`.
pub async fn show_webhooks(State(app): State<AppState>) -> Response {
    match webhooks_page(&app).await {
        Ok(page) => html(StatusCode::OK, &page),
        Err(error) => error.render(&app),
    }
}

async fn webhooks_page(app: &AppState) -> Result<WebhooksPage, PageError> {
    let mut views = Vec::new();
    for webhook in app.store.list_webhooks().await? {
        views.push(view(app, &webhook).await?);
    }
    Ok(WebhooksPage {
        chrome: Chrome::new(app),
        webhooks: views,
    })
}

async fn view(app: &AppState, webhook: &Webhook) -> Result<WebhookView, PageError> {
    let page = app
        .store
        .list_deliveries(webhook.id, None, DELIVERIES_PER_WEBHOOK)
        .await?;
    Ok(WebhookView {
        id: webhook.id,
        url: webhook.url.clone(),
        events: if webhook.events.iter().any(|e| e == "*") {
            "every event".to_owned()
        } else {
            webhook.events.join(", ")
        },
        created: display_time(webhook.created_at),
        deliveries: page.items.iter().map(DeliveryView::new).collect(),
        more: page.next.is_some(),
    })
}
