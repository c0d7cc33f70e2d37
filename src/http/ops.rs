//! Operations endpoints (`/healthz`, `/readyz`, `/metrics`), fallbacks, and the gauges refreshed in the background.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;

use super::AppState;
use super::error::ApiError;

/// Alive while the process serves; never touches the database.
pub async fn healthz() -> impl IntoResponse {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"status": "ok"})),
    )
}

/// Ready when the database answers a ping within a second.
pub async fn readyz(State(app): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    match ping(&app).await {
        true => Ok((
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready"})),
        )),
        false => Err(ApiError::ServiceUnavailable),
    }
}

pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::render_metrics(&app.metrics),
    )
}

pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_owned())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn ping(app: &AppState) -> bool {
    let up = matches!(
        tokio::time::timeout(Duration::from_secs(1), app.store.ping()).await,
        Ok(Ok(()))
    );
    metrics::gauge!("revwallet_database_up").set(if up { 1.0 } else { 0.0 });
    up
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

/// Keeps the pool, readiness and open-wallet gauges fresh, and expires old idempotency keys.
pub async fn refresh_gauges(app: AppState) {
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
        if !ping(&app).await {
            continue;
        }
        if let Ok(open) = app.store.count_open_wallets().await {
            metrics::gauge!("revwallet_wallets_open").set(open as f64);
        }
        if last_expiry.is_none_or(|at| at.elapsed() > Duration::from_secs(3600)) {
            match app.store.expire_idempotency_keys().await {
                Ok(expired) => tracing::debug!(expired, "expired idempotency keys"),
                Err(error) => tracing::warn!(%error, "could not expire idempotency keys"),
            }
            last_expiry = Some(Instant::now());
        }
    }
}
