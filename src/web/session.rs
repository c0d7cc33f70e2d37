//! Web sessions: every page (`/`, `/ui…`, but not `/static/…` and not the sign-in and sign-out addresses) needs
//! a signed-in session, started by pasting an API key on the sign-in page (`sign_in.rs`). The browser holds a
//! random 256-bit token in the `revwallet_session` cookie; the database keeps only its SHA-256, with the key it
//! acts as and when it expires, so sign-out and expiry hold on every replica. The key itself is checked through
//! the `Keyring` on every page, so revoking a key ends its sessions.
//!
//! The middleware hands the pages a `Caller`, exactly as the API's does: `SignedIn` extracts it, and
//! `Chrome` (the header of every page) shows who is signed in.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::error::{PageError, see_other};
use super::query::url_with;
use crate::auth::{AuthFailure, Authenticator, Caller, Denied, Keyring, Principal};
use crate::domain::{Role, hex};
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "revwallet_session";
/// The sign-in page, the one page open without a session.
pub const SIGN_IN_PATH: &str = "/ui/sign-in";
/// Where the sign-out form posts.
pub const SIGN_OUT_PATH: &str = "/ui/sign-out";
/// Hex digits of a session token (256 random bits).
const TOKEN_HEX_LEN: usize = 64;

tokio::task_local! {
    /// The caller of the page being rendered, for the header every page shows (set by `require_session`).
    static VISITOR: Caller;
}

/// The caller whose page is being rendered, if the page is behind the session check.
pub fn visitor() -> Option<Caller> {
    VISITOR.try_with(Caller::clone).ok()
}

/// A session token as the browser holds it. Never logged: no `Display`, and `Debug` hides it.
pub struct SessionToken(String);

impl SessionToken {
    /// A new token: 256 random bits, hex.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(hex(&bytes))
    }

    /// A token read from a cookie, if it has the shape of one.
    fn parse(text: &str) -> Option<Self> {
        (text.len() == TOKEN_HEX_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(text.to_ascii_lowercase()))
    }

    /// SHA-256 of the token, hex: all the database keeps.
    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes()))
    }

    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionToken(…)")
    }
}

/// The session token the request carries, `Err` when the cookie is there but malformed.
pub fn session_token(headers: &HeaderMap) -> Option<Result<SessionToken, AuthFailure>> {
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"'))?;
    Some(SessionToken::parse(value).ok_or(AuthFailure::Malformed))
}

/// Whether the request reached the edge over HTTPS (it says so in `X-Forwarded-Proto`).
pub fn arrived_over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// `Set-Cookie` for a session: only sent back to this site, never readable by scripts, `Secure` behind HTTPS.
pub fn session_cookie(token: &SessionToken, max_age_seconds: u64, secure: bool) -> String {
    cookie_with(token.reveal(), max_age_seconds, secure)
}

/// `Set-Cookie` that makes the browser forget the session cookie.
pub fn cleared_cookie(secure: bool) -> String {
    cookie_with("", 0, secure)
}

fn cookie_with(value: &str, max_age_seconds: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_seconds}{secure}"
    )
}

pub fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// Whether a page needs a session: `/` and everything under `/ui` but the sign-in and sign-out addresses.
fn needs_session(path: &str) -> bool {
    let page = path == "/" || path == "/ui" || path.starts_with("/ui/");
    page && path != SIGN_IN_PATH && path != SIGN_OUT_PATH
}

/// The role a page needs: reading for GET, writing for the forms, admin for closing a wallet and for webhooks.
fn needed_role(method: &Method, path: &str) -> Role {
    if path == "/ui/webhooks" || path.starts_with("/ui/webhooks/") {
        Role::Admin
    } else if method.is_safe() {
        Role::Read
    } else if path.starts_with("/ui/wallets/") && path.ends_with("/close") {
        Role::Admin
    } else {
        Role::Write
    }
}

/// A path this app may send a browser back to after signing in: local (one leading `/`, no `//` or `/\`, which
/// browsers read as another host) and printable ASCII.
pub fn local_path(next: &str) -> Option<&str> {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && next.len() <= 2048
        && next.bytes().all(|b| b.is_ascii_graphic());
    local.then_some(next)
}

/// The sign-in page, with where to go afterwards when that is a page other than the home page.
pub fn sign_in_url(next: Option<&str>) -> String {
    match next.and_then(local_path) {
        Some(next) if next != "/" => url_with(SIGN_IN_PATH, &[("next", next)]),
        _ => SIGN_IN_PATH.to_owned(),
    }
}

/// Lets a page through with the `Caller` its session acts as; sends anyone else to the sign-in page (a post
/// too: it changes nothing), and refuses a form the key's role does not allow with the 403 page.
pub async fn require_session(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if !needs_session(path) {
        return next.run(request).await;
    }
    let caller = match &app.auth {
        Authenticator::Off => Caller::Open,
        Authenticator::ApiKeys(keyring) => {
            match signed_in(&app, keyring, request.headers()).await {
                Ok(Some(principal)) => Caller::Key(principal),
                Ok(None) => return to_sign_in(&request, false),
                Err(Denied::Failure(failure)) => {
                    failure.count();
                    return to_sign_in(&request, true);
                }
                Err(Denied::Store(error)) => return PageError::from(error).render(&app),
            }
        }
    };
    let needed = needed_role(request.method(), path);
    if !caller.allows(needed) {
        return VISITOR
            .scope(caller, async { PageError::Forbidden.render(&app) })
            .await;
    }
    request.extensions_mut().insert(caller.clone());
    VISITOR.scope(caller, next.run(request)).await
}

/// The key a request's session acts as: `None` without a session cookie, a failure for a malformed, unknown,
/// ended or expired session or a revoked key.
async fn signed_in(
    app: &AppState,
    keyring: &Keyring,
    headers: &HeaderMap,
) -> Result<Option<Arc<Principal>>, Denied> {
    let Some(token) = session_token(headers) else {
        return Ok(None);
    };
    let hash = token?.hash();
    let session = app
        .store
        .web_session(&hash)
        .await
        .map_err(Denied::Store)?
        .ok_or(AuthFailure::SessionExpired)?;
    match keyring.principal(&session.key_id).await {
        Ok(principal) => Ok(Some(principal)),
        Err(Denied::Failure(failure)) => {
            // The key was revoked (or deleted): its sessions are over for good.
            if let Err(error) = app.store.delete_web_session(&hash).await {
                tracing::warn!(%error, "could not delete the session of a revoked key");
            }
            Err(failure.into())
        }
        Err(error) => Err(error),
    }
}

/// 303 to the sign-in page, remembering the page asked for; a refused cookie is cleared.
fn to_sign_in(request: &Request, clear_cookie: bool) -> Response {
    let next = request
        .uri()
        .path_and_query()
        .map(|path| path.as_str())
        .filter(|_| request.method().is_safe());
    let mut response = see_other(&sign_in_url(next));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if clear_cookie {
        set_cookie(
            &mut response,
            &cleared_cookie(arrived_over_https(request.headers())),
        );
    }
    response
}

/// The caller a page acts for, as `require_session` left it.
pub struct SignedIn(pub Caller);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        match parts.extensions.get::<Caller>() {
            Some(caller) => Ok(Self(caller.clone())),
            None => Err(PageError::Internal(
                "a page ran without the session middleware".to_owned(),
            )
            .render(app)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_kept_to_return_to() {
        for good in ["/", "/ui/wallets/3", "/?owner=Ada&after=20"] {
            assert_eq!(local_path(good), Some(good));
        }
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "ui/wallets",
            "/with space",
            "/tab\there",
        ] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
        assert_eq!(sign_in_url(Some("/")), "/ui/sign-in");
        assert_eq!(sign_in_url(Some("//evil.example")), "/ui/sign-in");
        assert_eq!(
            sign_in_url(Some("/ui/wallets/3")),
            "/ui/sign-in?next=%2Fui%2Fwallets%2F3"
        );
    }

    #[test]
    fn pages_need_a_session_and_forms_their_role() {
        for page in ["/", "/ui", "/ui/", "/ui/wallets/1", "/ui/anything"] {
            assert!(needs_session(page), "{page}");
        }
        for open in ["/ui/sign-in", "/ui/sign-out", "/static/app.css", "/uix"] {
            assert!(!needs_session(open), "{open}");
        }
        assert_eq!(needed_role(&Method::GET, "/ui/wallets/1/close"), Role::Read);
        assert_eq!(needed_role(&Method::POST, "/ui/wallets"), Role::Write);
        assert_eq!(needed_role(&Method::GET, "/ui/webhooks"), Role::Admin);
        assert_eq!(
            needed_role(&Method::POST, "/ui/wallets/1/deposit"),
            Role::Write
        );
        assert_eq!(
            needed_role(&Method::POST, "/ui/wallets/1/close"),
            Role::Admin
        );
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_must_look_like_a_token() {
        let token = SessionToken::generate();
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert(header::COOKIE, HeaderValue::from_str(value).expect("value"));
            map
        };
        let found = session_token(&headers(&format!(
            "theme=dark; {COOKIE}={}; other=1",
            token.reveal()
        )));
        assert_eq!(
            found.and_then(Result::ok).map(|t| t.hash()),
            Some(token.hash())
        );
        assert!(session_token(&headers("theme=dark")).is_none());
        assert_eq!(
            session_token(&headers(&format!("{COOKIE}=short"))).and_then(Result::err),
            Some(AuthFailure::Malformed)
        );
        assert_eq!(token.reveal().len(), 64);
        assert!(!format!("{token:?}").contains(token.reveal()));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_only_over_https() {
        let token = SessionToken::generate();
        let plain = session_cookie(&token, 60, false);
        assert!(plain.contains("HttpOnly; SameSite=Strict; Path=/; Max-Age=60"));
        assert!(!plain.contains("Secure"));
        assert!(session_cookie(&token, 60, true).ends_with("; Secure"));
        let mut headers = HeaderMap::new();
        assert!(!arrived_over_https(&headers));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS"));
        assert!(arrived_over_https(&headers));
        assert!(cleared_cookie(false).contains("Max-Age=0"));
    }
}
