//! The delivery worker: claims due deliveries under a lease, POSTs each signed, with a per-attempt timeout and
//! bounded concurrency (and at most a few in flight per webhook, so an endpoint that never answers cannot take
//! every slot), then records the attempt and the next step. No database transaction is open during a POST.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::Url;
use tokio::sync::Semaphore;

use super::guard::{GuardedResolver, is_forbidden, literal_ip};
use super::signing::{signature_header, signing_secret};
use super::{Feed, WebhookSettings, dispatch};
use crate::store::{AttemptRecord, ClaimedDelivery, NextStep, Store};

/// The `outcome` label of `revwallet_webhook_deliveries_total`: a bounded set.
pub const OUTCOMES: [&str; 4] = ["delivered", "failed_attempt", "gave_up", "lease_lost"];

pub const EVENT_ID_HEADER: &str = "revwallet-event-id";
pub const SIGNATURE_HEADER: &str = "revwallet-signature";

/// How long the backlog gauges may be stale.
const GAUGE_INTERVAL: Duration = Duration::from_secs(5);

pub async fn run(store: Store, settings: WebhookSettings, feed: Feed) {
    let client = match client(&settings) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook HTTP client; webhooks are not delivered");
            return;
        }
    };
    let settings = Arc::new(settings);
    let slots = Arc::new(Semaphore::new(settings.concurrency));
    let mut tick = tokio::time::interval(settings.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut gauges_at: Option<std::time::Instant> = None;
    // Warned once per outage, not at every tick.
    let mut failing = false;
    loop {
        tick.tick().await;
        match dispatch::dispatch(&store, &feed).await {
            Ok(_) => failing = false,
            Err(error) if !failing => {
                failing = true;
                tracing::warn!(%error, "could not dispatch events to webhooks; retrying every tick");
            }
            Err(error) => tracing::debug!(%error, "could not dispatch events to webhooks"),
        }
        let free = slots.available_permits();
        if free > 0 {
            let lease = settings.timeout + Duration::from_secs(30);
            let lease_until = Utc::now() + chrono::Duration::from_std(lease).unwrap_or_default();
            match store
                .claim_deliveries(free as i64, settings.per_webhook, lease_until)
                .await
            {
                Ok(claimed) => {
                    for delivery in claimed {
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            break;
                        };
                        let (store, client, settings) =
                            (store.clone(), client.clone(), settings.clone());
                        tokio::spawn(async move {
                            attempt(&store, &client, &settings, delivery).await;
                            drop(permit);
                        });
                    }
                }
                Err(error) if failing => {
                    tracing::debug!(%error, "could not claim webhook deliveries")
                }
                Err(error) => tracing::warn!(%error, "could not claim webhook deliveries"),
            }
        }
        if gauges_at.is_none_or(|at| at.elapsed() >= GAUGE_INTERVAL) {
            if let Ok(backlog) = store.delivery_backlog().await {
                metrics::gauge!("revwallet_webhook_deliveries_pending").set(backlog.pending as f64);
                let lag = backlog.oldest_due.map_or(0.0, |at| {
                    (Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
                });
                metrics::gauge!("revwallet_webhook_delivery_lag_seconds").set(lag);
            }
            gauges_at = Some(std::time::Instant::now());
        }
    }
}

/// One client for every delivery: it connects only to addresses the guard passed, through no proxy, and does
/// not follow redirects (a 3xx is a failed attempt).
fn client(settings: &WebhookSettings) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver {
            allow_private: settings.allow_private,
        }))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("revwallet-webhooks/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(settings.timeout)
        .build()
}

async fn attempt(
    store: &Store,
    client: &reqwest::Client,
    settings: &WebhookSettings,
    delivery: ClaimedDelivery,
) {
    let started_at = Utc::now();
    let sent = send(client, settings, &delivery).await;
    let finished_at = Utc::now();
    let (response_status, error) = match sent {
        Ok(status) => (Some(status), None),
        Err(error) => (None, Some(error)),
    };
    let delivered = response_status.is_some_and(|s| (200..300).contains(&s));
    let next = if delivered {
        NextStep::Delivered
    } else {
        let failed = u32::try_from(delivery.attempts)
            .unwrap_or(0)
            .saturating_add(1);
        let age = (finished_at - delivery.created_at)
            .to_std()
            .unwrap_or_default();
        match settings.retry.after_failure(failed, age, rand::random()) {
            Some(wait) => NextStep::RetryAt(
                finished_at + chrono::Duration::from_std(wait).unwrap_or_default(),
            ),
            None => NextStep::Failed,
        }
    };
    let record = AttemptRecord {
        started_at,
        finished_at,
        response_status,
        error,
        next,
    };
    let outcome = match store.finish_attempt(&delivery, &record).await {
        Ok(true) => match next {
            NextStep::Delivered => "delivered",
            NextStep::RetryAt(_) => "failed_attempt",
            NextStep::Failed => "gave_up",
        },
        Ok(false) => "lease_lost",
        Err(error) => {
            // The lease lapses and the delivery is attempted again: at least once.
            tracing::warn!(%error, delivery_id = delivery.id, "could not record a webhook attempt");
            "lease_lost"
        }
    };
    metrics::counter!("revwallet_webhook_deliveries_total", "outcome" => outcome).increment(1);
    tracing::debug!(
        delivery_id = delivery.id,
        webhook_id = delivery.webhook_id,
        event_id = delivery.event_id,
        status = response_status,
        error = record.error.as_deref(),
        outcome,
        "webhook attempt"
    );
}

/// POSTs the delivery: the response status, or why there was none.
async fn send(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    delivery: &ClaimedDelivery,
) -> Result<u16, String> {
    let secret = signing_secret(&delivery.secret, settings.server_key.as_deref())
        .ok_or("the webhook's secret needs REVWALLET_WEBHOOK_SECRET_KEY, which is not set")?;
    let url = Url::parse(&delivery.url).map_err(|_| "the webhook's URL does not parse")?;
    // reqwest connects to an IP literal without asking the resolver, so the guard checks it here.
    if !settings.allow_private && literal_ip(&url).is_some_and(is_forbidden) {
        return Err("the URL's address is internal; refused".to_owned());
    }
    let timestamp = Utc::now().timestamp();
    let signature = signature_header(&secret, timestamp, delivery.payload.as_bytes());
    let response = client
        .post(url)
        .timeout(settings.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(EVENT_ID_HEADER, delivery.event_id.to_string())
        .header(SIGNATURE_HEADER, signature)
        .body(delivery.payload.clone())
        .send()
        .await
        .map_err(|error| describe(&error, settings.timeout))?;
    Ok(response.status().as_u16())
}

/// Why a request failed, without its URL (which may carry a token in its query).
fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    let mut text = if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(300).collect()
}
