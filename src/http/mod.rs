//! The HTTP API: routes, middleware (request id, logging, metrics, timeout, body limit) and serving.

pub mod body;
pub mod error;
mod middleware;
mod openapi;
mod ops;
mod respond;
mod wallets;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::config::ServeArgs;
use crate::store::Store;
pub use error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: PrometheusHandle,
    pub settings: Arc<ServeArgs>,
}

/// The whole application: API, operations endpoints and (when present) the web app.
pub fn app(state: AppState) -> Router {
    let timeout = Duration::from_millis(state.settings.request_timeout_ms);
    let body_limit = state.settings.body_limit;
    let api = Router::new()
        .route(
            "/wallet",
            get(wallets::list_wallets).post(wallets::create_wallet),
        )
        .route(
            "/wallet/",
            get(wallets::list_wallets).post(wallets::create_wallet),
        )
        .route("/wallet/openapi.json", get(openapi::document))
        .route("/wallet/deposit", post(wallets::deposit))
        .route("/wallet/withdraw", post(wallets::withdraw))
        .route("/wallet/transfer", post(wallets::transfer))
        .route("/wallet/balance/{id}", get(wallets::get_balance))
        .route(
            "/wallet/{id}",
            get(wallets::get_wallet).delete(wallets::close_wallet),
        )
        .route("/wallet/{id}/transactions", get(wallets::list_transactions))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .merge(crate::web::routes())
        // Runs after routing, so only matched templates (never raw paths) become metric labels.
        .route_layer(axum::middleware::from_fn(middleware::remember_route));
    api.fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(axum::middleware::from_fn(middleware::observe))
                .layer(CatchPanicLayer::custom(middleware::panic_response))
                .layer(HandleErrorLayer::new(middleware::timeout_response))
                .timeout(timeout)
                .layer(axum::middleware::from_fn(middleware::run_to_completion))
                .layer(DefaultBodyLimit::max(body_limit)),
        )
        .with_state(state)
}

/// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests finish within the grace.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let grace = Duration::from_millis(state.settings.shutdown_grace_ms);
    let store = state.store.clone();
    let background = tokio::spawn(ops::refresh_gauges(state.clone()));
    let upkeep = tokio::spawn(ops::metrics_upkeep(state.metrics.clone()));
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stopping_tx.send(true);
    });
    let mut stopping = stopping_rx.clone();
    let drained = async move {
        let _ = stopping.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result?,
        () = drained => tracing::warn!(?grace, "shutdown grace elapsed; dropping remaining requests"),
    }
    background.abort();
    upkeep.abort();
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
