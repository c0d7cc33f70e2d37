//! Signing in and out of the web app: the sign-in page takes an API key and starts a session (`session.rs`);
//! the sign-out button ends it. Both posts go through the same cross-site checks as every other form.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::error::{PageError, html, see_other};
use super::forms::FormBody;
use super::query::QueryParams;
use super::session::{
    SIGN_IN_PATH, SessionToken, arrived_over_https, cleared_cookie, local_path, session_cookie,
    session_token, set_cookie,
};
use super::views::{Chrome, Field, SignInPage};
use crate::auth::{AuthFailure, Authenticator, Denied};
use crate::domain::KeySecret;
use crate::state::AppState;

/// Where a browser goes after signing in: the page it asked for, if that is a page of this app.
fn next_page(next: &str) -> String {
    local_path(next).unwrap_or("/").to_owned()
}

/// `GET /ui/sign-in`: the form (with authentication off there is nothing to sign in to: the home page).
pub async fn show_sign_in(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    if matches!(app.auth, Authenticator::Off) {
        return see_other("/");
    }
    let query = QueryParams::parse(query.as_deref());
    let page = SignInPage {
        chrome: Chrome::new(&app),
        next: next_page(query.get("next").unwrap_or("/")),
        api_key: Field::default(),
    };
    html(StatusCode::OK, &page)
}

/// `POST /ui/sign-in`: checks the key, stores a new session (only the token's hash) and sets its cookie; a bad key
/// gets the form again with 401, and nothing is stored.
pub async fn sign_in(State(app): State<AppState>, headers: HeaderMap, form: FormBody) -> Response {
    let Authenticator::ApiKeys(keyring) = &app.auth else {
        return see_other("/");
    };
    let next = next_page(form.get("next"));
    let typed = form.get("api_key").trim();
    let checked = if typed.is_empty() {
        Err(Denied::Failure(AuthFailure::Missing))
    } else {
        match KeySecret::parse(typed) {
            Ok(secret) => keyring.authenticate(&secret).await,
            Err(_) => Err(Denied::Failure(AuthFailure::Malformed)),
        }
    };
    let principal = match checked {
        Ok(principal) => principal,
        Err(Denied::Failure(failure)) => {
            failure.count();
            return refused(&app, next, failure);
        }
        Err(Denied::Store(error)) => return PageError::from(error).render(&app),
    };
    let ttl_minutes = app.settings.session_ttl_minutes;
    let lifetime = i64::try_from(ttl_minutes)
        .ok()
        .and_then(chrono::TimeDelta::try_minutes)
        .unwrap_or(chrono::TimeDelta::MAX);
    let now = chrono::Utc::now();
    let expires_at = now
        .checked_add_signed(lifetime)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    let token = SessionToken::generate();
    if let Err(error) = app
        .store
        .insert_web_session(&token.hash(), &principal.key_id, expires_at)
        .await
    {
        return PageError::from(error).render(&app);
    }
    // A session the browser held before is over: each sign-in starts afresh.
    if let Some(Ok(previous)) = session_token(&headers)
        && let Err(error) = app.store.delete_web_session(&previous.hash()).await
    {
        tracing::warn!(%error, "could not end the session replaced by a new sign-in");
    }
    tracing::info!(key_id = %principal.key_id, role = %principal.role, "signed in to the web app");
    let mut response = see_other(&next);
    let max_age = ttl_minutes.saturating_mul(60);
    set_cookie(
        &mut response,
        &session_cookie(&token, max_age, arrived_over_https(&headers)),
    );
    response
}

/// The sign-in form again, with what was wrong beside the field (the typed key is never shown back).
fn refused(app: &AppState, next: String, failure: AuthFailure) -> Response {
    let message = match failure {
        AuthFailure::Missing => "Paste an API key.",
        AuthFailure::Malformed => {
            "This is not an API key: an API key starts with rw_ followed by at least 32 letters, digits, _ or -."
        }
        _ => "This API key is unknown or has been revoked.",
    };
    let page = SignInPage {
        chrome: Chrome::new(app),
        next,
        api_key: Field {
            value: String::new(),
            error: Some(message.to_owned()),
            autofocus: true,
        },
    };
    html(StatusCode::UNAUTHORIZED, &page)
}

/// `POST /ui/sign-out`: deletes the session, clears the cookie and shows the sign-in page.
pub async fn sign_out(
    State(app): State<AppState>,
    headers: HeaderMap,
    _form: FormBody,
) -> Response {
    if matches!(app.auth, Authenticator::Off) {
        return see_other("/");
    }
    if let Some(Ok(token)) = session_token(&headers)
        && let Err(error) = app.store.delete_web_session(&token.hash()).await
    {
        // The cookie must not outlive a session that may still be in the database: say so, change nothing.
        return PageError::from(error).render(&app);
    }
    let mut response = see_other(SIGN_IN_PATH);
    set_cookie(&mut response, &cleared_cookie(arrived_over_https(&headers)));
    response
}
