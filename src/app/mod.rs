//! The composition root: the API's and the web app's routes under one middleware stack, serving, background
//! housekeeping and graceful shutdown. `revwallet serve`, the web tests and the API test harness all start here.

mod housekeeping;
mod middleware;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::state::AppState;

/// The whole application: the API with the operations endpoints, and the web app.
pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_millis(state.settings.request_timeout_ms);
    let body_limit = state.settings.body_limit;
    crate::http::routes()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::authenticate,
        ))
        .merge(
            // A forged post is refused before the session is looked at.
            crate::web::routes(&state).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::web::origin::refuse_foreign_hosts,
            )),
        )
        // Runs after routing, so only matched templates (never raw paths) become metric labels.
        .route_layer(axum::middleware::from_fn(middleware::remember_route))
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(
                    middleware::drop_unsafe_request_id,
                ))
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
    let background = tokio::spawn(housekeeping::housekeeping(state.clone()));
    let upkeep = tokio::spawn(housekeeping::metrics_upkeep(state.metrics.clone()));
    let webhooks = crate::webhooks::spawn(
        state.store.clone(),
        crate::webhooks::WebhookSettings::new(&state.settings.webhooks),
        event_feed(state.store.clone()),
    );
    let sequencer = {
        let store = state.store.clone();
        tokio::spawn(async move { store.run_event_sequencer().await })
    };
    let keys_current = match &state.auth {
        crate::auth::Authenticator::ApiKeys(keyring) => {
            Some(tokio::spawn(keyring.clone().keep_current()))
        }
        crate::auth::Authenticator::Off => None,
    };
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    let header_read_timeout = Duration::from_millis(state.settings.header_read_timeout_ms);
    let feed = state.store.feed();
    let app = router(state);
    let server = async move {
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            // Long polls answer what they have now rather than hold the shutdown for up to 30 s.
            feed.stop_waiting();
            let _ = stopping_tx.send(true);
        };
        accept_until(listener, app, header_read_timeout, shutdown).await;
        Ok::<(), anyhow::Error>(())
    };
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
    webhooks.abort();
    sequencer.abort();
    if let Some(keys_current) = keys_current {
        keys_current.abort();
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The event feed as the webhook dispatcher reads it: every event (no owner filter), rendered as the feed serves it.
fn event_feed(store: crate::store::Store) -> crate::webhooks::Feed {
    std::sync::Arc::new(move |after, limit| {
        let store = store.clone();
        Box::pin(async move {
            let events = store.events_after(after, limit, None).await?;
            Ok(events
                .iter()
                .map(|event| crate::store::FeedItem {
                    event_id: event.id,
                    event_type: event.kind.as_str().to_owned(),
                    // The struct itself, not a `Value` (whose keys would come out sorted): the very bytes the
                    // feed serves.
                    payload: serde_json::to_string(&crate::http::EventResponse::of(event))
                        .unwrap_or_default(),
                })
                .collect())
        })
    })
}

/// Accepts connections until `shutdown` resolves, then lets the open ones finish their requests and close.
/// Each connection is served by hyper's HTTP/1 with a timer, so a client gets `header_read_timeout` to send a
/// request's headers, and a kept-alive connection closes when no new request starts within it (hyper starts that
/// clock whenever it waits for a request head): slow or idle clients cannot hold connections open.
async fn accept_until(
    listener: tokio::net::TcpListener,
    app: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
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
