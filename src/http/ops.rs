//! Operations endpoints (`/healthz`, `/readyz`, `/metrics`) and the API's fallbacks for unknown paths and methods.

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;

use super::error::ApiError;
use crate::outcome::ProblemKind;
use crate::state::AppState;

/// Alive while the process serves; never touches the database.
pub async fn healthz() -> impl IntoResponse {
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({"status": "ok"})),
    )
}

/// Ready when the database answers a ping within a second.
pub async fn readyz(State(app): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    match app.database_ready().await {
        true => Ok((
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ready"})),
        )),
        false => Err(ProblemKind::Unavailable.into()),
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
    ApiError::new(
        ProblemKind::NotFound,
        format!("no route for {}", uri.path()),
    )
}

pub async fn method_not_allowed() -> ApiError {
    ProblemKind::MethodNotAllowed.into()
}
