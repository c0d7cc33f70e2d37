//! The HTTP API: the `/wallet` routes, the operations endpoints, and the problem-JSON fallbacks. Middleware and
//! serving are the composition root's (`crate::app`).

mod auth;
mod body;
mod error;
mod events;
mod extract;
mod holds;
mod keys;
mod openapi;
mod ops;
mod paging;
mod respond;
mod schema;
mod statement;
mod wallets;
mod webhooks;

use axum::Router;
use axum::routing::{get, post};

use crate::state::AppState;
pub use auth::authenticate;
pub use error::ApiError;
pub use events::{EventResponse, render};
pub use schema::StatementQuery;
pub use statement::statement_response;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/wallet",
            get(wallets::list_wallets).post(wallets::create_wallet),
        )
        .route(
            "/wallet/",
            get(wallets::list_wallets).post(wallets::create_wallet),
        )
        .route("/wallet/openapi.json", get(openapi::document))
        .route("/wallet/events", get(events::list_events))
        .route("/wallet/keys", get(keys::list_keys).post(keys::create_key))
        .route("/wallet/keys/{id}", axum::routing::delete(keys::revoke_key))
        .route(
            "/wallet/webhooks",
            get(webhooks::list_webhooks).post(webhooks::create_webhook),
        )
        .route(
            "/wallet/webhooks/{id}",
            axum::routing::delete(webhooks::delete_webhook),
        )
        .route(
            "/wallet/webhooks/{id}/deliveries",
            get(webhooks::list_deliveries),
        )
        .route("/wallet/deposit", post(wallets::deposit))
        .route("/wallet/withdraw", post(wallets::withdraw))
        .route("/wallet/transfer", post(wallets::transfer))
        .route("/wallet/balance/{id}", get(wallets::get_balance))
        .route("/wallet/holds", post(holds::place_hold))
        .route("/wallet/holds/{id}", get(holds::get_hold))
        .route("/wallet/holds/{id}/capture", post(holds::capture_hold))
        .route("/wallet/holds/{id}/void", post(holds::void_hold))
        .route("/wallet/{id}/holds", get(holds::list_holds))
        .route(
            "/wallet/{id}",
            get(wallets::get_wallet).delete(wallets::close_wallet),
        )
        .route("/wallet/{id}/transactions", get(wallets::list_transactions))
        .route("/wallet/{id}/statement.csv", get(statement::get_statement))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
}
