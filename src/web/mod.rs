//! The server-rendered web app (its own issue); until it lands, only its routes' place in the app exists.

use axum::Router;

use crate::http::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
