//! Webhooks: events from the feed POSTed, signed, to the endpoints admins register (docs/api.md, Webhooks;
//! docs/adr/0130-webhooks.md). `dispatch` turns feed events into deliveries, `worker` attempts them, `guard`
//! keeps deliveries away from internal addresses, `signing` makes secrets and signatures, `retry` says when to
//! try again. Storage is `crate::store` (webhooks.rs); the routes are `crate::http::webhooks`.

pub mod dispatch;
pub mod guard;
pub mod retry;
pub mod signing;
pub mod worker;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::config::WebhookArgs;
use crate::store::{EventKind, FeedItem, Store};

/// At most this many webhooks exist at once, so no client can grow the work of every event without bound.
pub const MAX_WEBHOOKS: i64 = 100;

/// The event types a webhook may ask for (`*` is all of them): those of the feed.
pub fn event_types() -> Vec<&'static str> {
    EventKind::ALL.iter().map(|kind| kind.as_str()).collect()
}

/// Reads the event feed: the events after a position (at most a number of them), rendered as delivered.
pub type Feed = Arc<
    dyn Fn(i64, u32) -> Pin<Box<dyn Future<Output = crate::store::Result<Vec<FeedItem>>> + Send>>
        + Send
        + Sync,
>;

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub allow_private: bool,
    pub timeout: Duration,
    pub retry: retry::RetrySchedule,
    pub poll: Duration,
    pub server_key: Option<String>,
    /// Attempts in flight in this process.
    pub concurrency: usize,
    /// Attempts in flight per webhook, over all replicas.
    pub per_webhook: i64,
    pub retention: Duration,
}

impl WebhookSettings {
    pub fn new(args: &WebhookArgs) -> Self {
        Self {
            allow_private: args.webhook_allow_private,
            timeout: Duration::from_millis(args.webhook_timeout_ms.max(1)),
            retry: retry::RetrySchedule {
                first: Duration::from_millis(args.webhook_retry_first_ms),
                max: Duration::from_millis(args.webhook_retry_max_ms),
                ..retry::RetrySchedule::default()
            },
            poll: Duration::from_millis(args.webhook_poll_ms.max(10)),
            server_key: args
                .webhook_secret_key
                .as_ref()
                .map(|key| key.0.clone())
                .filter(|key| !key.is_empty()),
            concurrency: 16,
            per_webhook: 4,
            retention: args.webhook_retention,
        }
    }
}

/// Starts the dispatcher and delivery worker of this process.
pub fn spawn(store: Store, settings: WebhookSettings, feed: Feed) -> tokio::task::JoinHandle<()> {
    tokio::spawn(worker::run(store, settings, feed))
}

/// Deletes delivered and failed deliveries older than the retention, then the events every webhook has passed
/// that are older than it, in batches (housekeeping).
pub async fn prune(store: &Store, retention: Duration) -> crate::store::Result<u64> {
    const BATCH: i64 = 1000;
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(retention).unwrap_or_default();
    let mut pruned = 0;
    loop {
        let deleted = store.prune_deliveries(cutoff, BATCH).await?;
        pruned += deleted;
        if deleted < BATCH as u64 {
            break;
        }
    }
    loop {
        let deleted = store.prune_events(cutoff, BATCH).await?;
        pruned += deleted;
        if deleted < BATCH as u64 {
            return Ok(pruned);
        }
    }
}

pub fn describe_metrics() {
    metrics::describe_counter!(
        "revwallet_webhook_deliveries_total",
        "Webhook delivery attempts by outcome (delivered, failed_attempt, gave_up, lease_lost)"
    );
    for outcome in worker::OUTCOMES {
        metrics::counter!("revwallet_webhook_deliveries_total", "outcome" => outcome).absolute(0);
    }
    metrics::describe_gauge!(
        "revwallet_webhook_delivery_lag_seconds",
        metrics::Unit::Seconds,
        "Age of the oldest webhook delivery that is due and not yet delivered; 0 when none"
    );
    metrics::gauge!("revwallet_webhook_delivery_lag_seconds").set(0.0);
    metrics::describe_gauge!(
        "revwallet_webhook_deliveries_pending",
        "Webhook deliveries not yet delivered or given up"
    );
    metrics::gauge!("revwallet_webhook_deliveries_pending").set(0.0);
}

/// Checks the `events` of a new webhook: a non-empty list of known types, or `["*"]`. Omitted means all.
pub fn parse_event_types(events: Option<&[String]>) -> Result<Vec<String>, String> {
    let Some(events) = events else {
        return Ok(vec!["*".to_owned()]);
    };
    if events.is_empty() {
        return Err("events must list at least one event type (or be [\"*\"] for all)".to_owned());
    }
    let known = event_types();
    if events.len() > known.len() {
        return Err(format!("events lists at most {} types", known.len()));
    }
    if events.iter().any(|e| e == "*") {
        return if events.len() == 1 {
            Ok(events.to_vec())
        } else {
            Err("events: \"*\" stands alone".to_owned())
        };
    }
    let mut types = Vec::with_capacity(events.len());
    for event in events {
        if !known.contains(&event.as_str()) {
            let shown: String = event.chars().take(64).collect();
            return Err(format!(
                "events: unknown event type {shown:?} (known: {})",
                known.join(", ")
            ));
        }
        if !types.contains(event) {
            types.push(event.clone());
        }
    }
    Ok(types)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn event_lists_name_known_types_or_everything() {
        assert_eq!(parse_event_types(None), Ok(list(&["*"])));
        assert_eq!(parse_event_types(Some(&list(&["*"]))), Ok(list(&["*"])));
        assert_eq!(
            parse_event_types(Some(&list(&[
                "hold.created",
                "wallet.opened",
                "hold.created"
            ]))),
            Ok(list(&["hold.created", "wallet.opened"]))
        );
        for bad in [
            list(&[]),
            list(&["wallet.exploded"]),
            list(&["*", "wallet.opened"]),
            list(&["Wallet.Opened"]),
            vec!["wallet.opened".to_owned(); 8],
        ] {
            assert!(parse_event_types(Some(&bad)).is_err(), "{bad:?}");
        }
    }
}
