//! The server-rendered web app: `/` and `/ui/...` pages built on the same store and domain code as the API
//! (never the API over HTTP), forms that post and redirect, and the stylesheet under `/static/`, all compiled
//! into the binary. No JavaScript: every page works with it disabled, and its CSP forbids scripts outright.
//! Every page but the sign-in page needs a session started with an API key (`session`, `sign_in`), and shows
//! only what that key may see and the forms its role allows.

mod assets;
mod error;
mod forms;
mod holds;
mod home;
mod operations;
pub mod origin;
mod query;
pub mod session;
mod sign_in;
#[cfg(test)]
mod tests;
mod views;
mod wallet;
mod webhooks;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{any, get};

use crate::state::AppState;

/// The pages, each behind the session check (`session::require_session`), with the page headers on every answer.
pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(home::show_home))
        .route("/ui", get(wallet::redirect_home))
        .route("/ui/", get(wallet::redirect_home))
        .route(
            "/ui/wallets",
            get(wallet::redirect_home).post(home::create_wallet),
        )
        .route("/ui/wallets/{id}", get(wallet::show_wallet))
        .route(
            "/ui/wallets/{id}/statement.csv",
            get(wallet::download_statement),
        )
        .route(
            "/ui/wallets/{id}/deposit",
            get(wallet::redirect_to_wallet).post(operations::deposit),
        )
        .route(
            "/ui/wallets/{id}/withdraw",
            get(wallet::redirect_to_wallet).post(operations::withdraw),
        )
        .route(
            "/ui/wallets/{id}/transfer",
            get(wallet::redirect_to_wallet).post(operations::transfer),
        )
        .route(
            "/ui/wallets/{id}/close",
            get(wallet::redirect_to_wallet).post(operations::close_wallet),
        )
        .route(
            session::SIGN_IN_PATH,
            get(sign_in::show_sign_in).post(sign_in::sign_in),
        )
        .route(
            session::SIGN_OUT_PATH,
            get(wallet::redirect_home).post(sign_in::sign_out),
        )
        .route(
            "/ui/wallets/{id}/holds",
            get(wallet::redirect_to_wallet).post(holds::place),
        )
        .route(
            "/ui/wallets/{id}/holds/{hold}/capture",
            get(holds::redirect_to_wallet).post(holds::capture),
        )
        .route(
            "/ui/wallets/{id}/holds/{hold}/void",
            get(holds::redirect_to_wallet).post(holds::void),
        )
        .route("/ui/webhooks", get(webhooks::show_webhooks))
        .route("/ui/{*rest}", any(wallet::page_not_found))
        .route("/static/{file}", get(assets::serve_asset))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::require_session,
        ))
        .layer(axum::middleware::from_fn(page_headers))
}

/// Pages are never cached, so Back shows fresh balances and fresh form keys; no response is content-sniffed or
/// framed by another site. The policy that forbids scripts travels in each page (`<meta
/// http-equiv="Content-Security-Policy">` in `base.html`) rather than as a header, so it holds with or without
/// the nginx edge and never competes with the edge's own `Content-Security-Policy` header.
async fn page_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Clickjacking (a framed close form) without the edge too; the same value the edge adds, so they agree.
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
