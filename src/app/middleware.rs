//! Cross-cutting request handling for the API and the web app alike: one log line and the metrics for every
//! request (with the cause of any 5xx, logged here and nowhere else), panics and timeouts turned into problem JSON.

use std::any::Any;
use std::time::Instant;

use axum::BoxError;
use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::http::ApiError;
use crate::outcome::{ProblemCause, ProblemKind};

/// The matched route template, carried from the router to `observe` in the response.
#[derive(Debug, Clone)]
struct RouteTemplate(String);

/// Label for requests that matched no route: one fixed value, never the raw path.
const UNMATCHED: &str = "unmatched";

pub async fn remember_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteTemplate(route));
    }
    response
}

/// The longest client `X-Request-Id` kept.
const MAX_REQUEST_ID_LEN: usize = 64;

/// Whether a client's request id may be kept: short, and only letters, digits, `.`, `_` and `-`, so it can go
/// into logs and the response as it is.
pub fn is_safe_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Drops a client's `X-Request-Id` that is not safe to keep, so `SetRequestIdLayer` (which keeps any id it finds)
/// makes a fresh one instead.
pub async fn drop_unsafe_request_id(mut request: Request, next: Next) -> Response {
    let unsafe_id = request
        .headers()
        .get_all("x-request-id")
        .iter()
        .enumerate()
        .any(|(n, id)| n > 0 || !is_safe_request_id(id.as_bytes()));
    if unsafe_id {
        request.headers_mut().remove("x-request-id");
    }
    next.run(request).await
}

/// Logs one line per request and records its metrics. The request id comes from `X-Request-Id`
/// (the client's or one made by `SetRequestIdLayer`).
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let span = tracing::info_span!("request", %request_id, %method);
    let response = next.run(request).instrument(span.clone()).await;

    let latency = started.elapsed();
    let status = response.status().as_u16();
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or(UNMATCHED, |r| r.0.as_str())
        .to_owned();
    let labels = [
        ("method", method.to_owned()),
        ("route", route.clone()),
        ("status", status.to_string()),
    ];
    metrics::counter!("revwallet_http_requests_total", &labels).increment(1);
    metrics::histogram!("revwallet_http_request_duration_seconds", &labels)
        .record(latency.as_secs_f64());

    let latency_ms = latency.as_secs_f64() * 1000.0;
    let _entered = span.enter();
    if let Some(ProblemCause(cause)) = response.extensions().get::<ProblemCause>() {
        if response.status().is_server_error() && status != 503 {
            tracing::error!(%request_id, %method, %route, status, latency_ms, error = %cause, "request completed");
        } else {
            // 503: the database is away, not a bug; the cause still says why.
            tracing::warn!(%request_id, %method, %route, status, latency_ms, error = %cause, "request completed");
        }
    } else if route == "/healthz" || route == "/readyz" || route == "/metrics" {
        // Probes and scrapes arrive every few seconds: keep them out of the default log.
        tracing::debug!(%request_id, %method, %route, status, latency_ms, "request completed");
    } else {
        tracing::info!(%request_id, %method, %route, status, latency_ms, "request completed");
    }
    response
}

/// The `method` label and log field: the standard methods by name, anything else a client made up as "other",
/// so the number of series stays fixed whatever clients send.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Runs the rest of the request in its own task. A client that hangs up, or the request timeout, then
/// only stops waiting for the answer: the handler is never dropped halfway through a database transaction,
/// which could otherwise leave a connection holding locks (SQLite's write lock most visibly).
pub async fn run_to_completion(request: Request, next: Next) -> Response {
    // The task keeps the request's span, so its logs still carry the request id.
    match tokio::spawn(next.run(request).in_current_span()).await {
        Ok(response) => response,
        Err(error) => ApiError::internal(format!("request task: {error}")).into_response(),
    }
}

pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "unknown panic".to_owned());
    ApiError::internal(format!("panic: {message}")).into_response()
}

pub async fn timeout_response(error: BoxError) -> ApiError {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            ProblemKind::Unavailable,
            "the request took too long; it may or may not have been applied (use an Idempotency-Key to retry safely)",
        )
    } else {
        ApiError::internal(format!("middleware: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        for good in ["trace-me-42", "a", "A.b_c-9", &"x".repeat(64)] {
            assert!(is_safe_request_id(good.as_bytes()), "{good:?}");
        }
        for bad in [
            "",
            "has space",
            "line\nbreak",
            "quote\"",
            "é",
            &"x".repeat(65),
        ] {
            assert!(!is_safe_request_id(bad.as_bytes()), "{bad:?}");
        }
    }
}
