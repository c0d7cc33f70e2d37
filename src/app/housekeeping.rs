//! Background work of a serving process: gauges kept fresh, due holds expired, old idempotency keys and expired
//! web sessions deleted, old webhook deliveries and events pruned, histogram samples folded.

use std::time::{Duration, Instant};

use crate::state::AppState;

/// Keeps the pool, readiness and open-wallet gauges fresh, and deletes old idempotency keys and expired web
/// sessions (an expired session is refused anyway; this only keeps the table small).
pub async fn housekeeping(app: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut last_expiry: Option<Instant> = None;
    loop {
        tick.tick().await;
        let pool = app.store.pool_state();
        metrics::gauge!("revwallet_db_pool_max_connections").set(f64::from(pool.max));
        metrics::gauge!("revwallet_db_pool_connections", "state" => "idle")
            .set(f64::from(pool.idle));
        metrics::gauge!("revwallet_db_pool_connections", "state" => "in_use")
            .set(f64::from(pool.size.saturating_sub(pool.idle)));
        if !app.database_ready().await {
            continue;
        }
        match app.store.release_failed_claims().await {
            Ok(0) => {}
            Ok(released) => tracing::info!(
                released,
                "released the idempotency keys of requests failed in an outage"
            ),
            Err(error) => tracing::warn!(%error, "could not release idempotency keys yet"),
        }
        if let Ok(open) = app.store.count_open_wallets().await {
            metrics::gauge!("revwallet_wallets_open").set(open as f64);
        }
        // Reads already treat a hold past its expiry as released; the sweep marks it `expired` and gives its money
        // back in `held`. Each wallet is its own transaction, skipped while another replica or a request holds it.
        match app.store.expire_holds().await {
            Ok(0) => {}
            Ok(expired) => tracing::info!(expired, "expired holds past their expiry"),
            Err(error) => tracing::warn!(%error, "could not expire holds"),
        }
        if let Ok(unsequenced) = app.store.count_unsequenced_events().await {
            metrics::gauge!("revwallet_events_unsequenced").set(unsequenced as f64);
        }
        if let Ok(held) = app.store.held_by_currency().await {
            for (currency, minor_units) in held {
                metrics::gauge!("revwallet_held_minor_units", "currency" => currency)
                    .set(minor_units as f64);
            }
        }
        if last_expiry.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
            match app.store.expire_idempotency_keys().await {
                Ok(expired) => tracing::debug!(expired, "expired idempotency keys"),
                Err(error) => tracing::warn!(%error, "could not expire idempotency keys"),
            }
            match app.store.expire_web_sessions().await {
                Ok(expired) => tracing::debug!(expired, "deleted expired web sessions"),
                Err(error) => tracing::warn!(%error, "could not delete expired web sessions"),
            }
            let retention = app.settings.webhooks.webhook_retention;
            match crate::webhooks::prune(&app.store, retention).await {
                Ok(pruned) => tracing::debug!(pruned, "pruned old webhook deliveries and events"),
                Err(error) => tracing::warn!(%error, "could not prune webhook deliveries"),
            }
            last_expiry = Some(Instant::now());
        }
    }
}

/// Folds recorded histogram samples into their buckets every second. The exporter keeps raw samples until
/// then, so without this memory would grow with traffic between scrapes (or forever, with nobody scraping).
pub async fn metrics_upkeep(handle: metrics_exporter_prometheus::PrometheusHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}
