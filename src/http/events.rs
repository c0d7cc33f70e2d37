//! The event feed, `GET /wallet/events`, and the one rendering of an event as JSON, which the feed serves and
//! webhooks deliver (docs/adr/0120-events-outbox-and-feed.md).

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, Problem, Result};
use super::extract::ApiQuery;
use super::holds::HoldResponse;
use super::paging::{link_next, page_size};
use super::schema::{TransactionResponse, WalletResponse};
use crate::auth::Caller;
use crate::domain::rfc3339;
use crate::state::AppState;
use crate::store::{Event, EventSubject};

/// The longest a request may wait for an event.
pub const MAX_WAIT_SECONDS: u64 = 30;

/// How often a waiting request looks again without being woken: rarely while other replicas' rounds are heard
/// (a safety net), often while they are not.
const POLL_HEARING: Duration = Duration::from_secs(5);
const POLL_DEAF: Duration = Duration::from_millis(250);

/// An event as the feed serves it and webhooks deliver it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventResponse {
    /// The feed's cursor: increasing, never reused; pass the last one seen as `after`.
    #[schema(example = "42")]
    pub id: String,
    /// `wallet.opened`, `wallet.closed`, `transaction.created`, `hold.created`, `hold.captured`,
    /// `hold.voided` or `hold.expired`.
    #[serde(rename = "type")]
    #[schema(example = "transaction.created")]
    pub kind: &'static str,
    #[schema(example = "2026-11-26T19:00:00Z")]
    pub created_at: String,
    #[schema(example = "1")]
    pub wallet_id: String,
    /// The resource as the API shows it, as the change left it: a wallet (`wallet.*`), a transaction
    /// (`transaction.created`) or a hold (`hold.*`).
    pub data: EventData,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum EventData {
    Wallet(WalletResponse),
    Transaction(TransactionResponse),
    Hold(HoldResponse),
}

impl EventResponse {
    pub fn of(event: &Event) -> Self {
        let data = match &event.subject {
            EventSubject::Wallet(wallet) => EventData::Wallet(WalletResponse::new(wallet, None)),
            EventSubject::Entry(entry) => {
                EventData::Transaction(TransactionResponse::new(entry, event.currency))
            }
            EventSubject::Hold(hold) => EventData::Hold(HoldResponse::new(hold, event.currency)),
        };
        Self {
            id: event.id.to_string(),
            kind: event.kind.as_str(),
            created_at: rfc3339(event.created_at),
            wallet_id: event.wallet_id.to_string(),
            data,
        }
    }
}

/// The JSON of an event, exactly as the feed shows it (webhooks POST this).
pub fn render(event: &Event) -> serde_json::Value {
    serde_json::to_value(EventResponse::of(event)).unwrap_or(serde_json::Value::Null)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Cursor: only events with a larger id (default 0, from the start).
    pub after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<String>,
    /// Seconds, 0 to 30 (default 0): with no event after the cursor, wait up to this long for one.
    pub wait: Option<String>,
}

fn after_cursor(text: Option<&str>) -> Result<i64> {
    match text {
        None => Ok(0),
        Some(text) => {
            text.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                ApiError::invalid_request("after must be an event id (an integer ≥ 0)")
            })
        }
    }
}

fn wait_seconds(text: Option<&str>) -> Result<u64> {
    match text {
        None => Ok(0),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= MAX_WAIT_SECONDS)
            .ok_or_else(|| {
                ApiError::invalid_request(format!(
                    "wait must be a whole number of seconds from 0 to {MAX_WAIT_SECONDS}"
                ))
            }),
    }
}

/// Events after the cursor, oldest first. Only events that nothing can precede any more are served, so a
/// consumer that follows the cursor sees each one exactly once, in order. With `wait`, an empty page is held
/// until an event arrives or the time is up.
#[utoipa::path(get, path = "/wallet/events", tag = "events", params(EventsQuery),
    responses((status = 200, body = [EventResponse], headers(("Link" = String, description = "next page"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_events(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response> {
    let after = after_cursor(query.after.as_deref())?;
    let limit = page_size(query.limit.as_deref())?;
    let wait = Duration::from_secs(wait_seconds(query.wait.as_deref())?);
    let owner = caller.owner();
    let feed = app.store.feed();
    // Answer before the request timeout would cut the wait short with a 503.
    let timeout = Duration::from_millis(app.settings.request_timeout_ms);
    let deadline = Instant::now() + wait.min(timeout.saturating_sub(Duration::from_secs(1)));
    // Beyond the bound on waiting requests, answer at once.
    let waiting = if wait.is_zero() {
        None
    } else {
        feed.try_wait()
    };
    let mut signal = feed.subscribe();
    let mut events = loop {
        // Seen before the query: an announcement after this point wakes the wait below.
        signal.borrow_and_update();
        let events = app
            .store
            .events_after(after, limit.saturating_add(1), owner)
            .await?;
        let now = Instant::now();
        if !events.is_empty() || waiting.is_none() || now >= deadline || feed.stopping() {
            break events;
        }
        let poll = if feed.hearing() {
            POLL_HEARING
        } else {
            POLL_DEAF
        };
        let until = deadline.min(now + poll);
        if let Ok(Err(_)) = tokio::time::timeout_at(until, signal.changed()).await {
            tokio::time::sleep_until(until).await;
        }
    };
    drop(waiting);
    let more = events.len() > limit as usize;
    events.truncate(limit as usize);
    let next = more
        .then(|| events.last().map(|e| e.id))
        .flatten()
        .map(|last| vec![("after", last.to_string()), ("limit", limit.to_string())]);
    let body: Vec<EventResponse> = events.iter().map(EventResponse::of).collect();
    Ok((link_next("/wallet/events", next), axum::Json(body)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_and_waits_are_read_strictly() {
        assert_eq!(after_cursor(None).ok(), Some(0));
        assert_eq!(after_cursor(Some("0")).ok(), Some(0));
        assert_eq!(after_cursor(Some("17")).ok(), Some(17));
        for bad in ["-1", "1.5", "", " 1", "x", "99999999999999999999"] {
            assert!(after_cursor(Some(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(wait_seconds(Some("30")).ok(), Some(30));
        for bad in ["31", "-1", "0.5", "", "1e1"] {
            assert!(wait_seconds(Some(bad)).is_err(), "{bad:?}");
        }
    }
}
