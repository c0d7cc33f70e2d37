//! Authentication of the API: every `/wallet…` request carries `Authorization: Bearer <key>` and is refused
//! with 401 (no or a bad key) or 403 (a role too low for the route) before any handler runs. The handlers then
//! read the `Caller` for what its owner binding lets it see.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::auth::{AuthFailure, Authenticator, Caller, Denied};
use crate::domain::{KeySecret, Role};
use crate::outcome::ProblemKind;
use crate::state::AppState;

/// Longest `Authorization` header looked at; anything longer is malformed without being read further.
const MAX_AUTHORIZATION_BYTES: usize = 512;

/// The role a route needs: reads for GET, writes for POST, admin for closing wallets and for managing keys and
/// webhooks.
pub fn needed_role(method: &Method, path: &str) -> Role {
    let admin_area = ["/wallet/keys", "/wallet/webhooks"]
        .iter()
        .any(|area| path == *area || path.starts_with(&format!("{area}/")));
    if admin_area || method == Method::DELETE {
        Role::Admin
    } else if method == Method::GET || method == Method::HEAD {
        Role::Read
    } else {
        Role::Write
    }
}

fn is_api_path(path: &str) -> bool {
    path == "/wallet" || path.starts_with("/wallet/")
}

/// Checks the credential of every `/wallet…` request and hands the handlers a `Caller`.
pub async fn authenticate(
    State(app): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if !is_api_path(path) {
        return next.run(request).await;
    }
    let needed = needed_role(request.method(), path);
    let caller = match &app.auth {
        Authenticator::Off => Caller::Open,
        Authenticator::ApiKeys(keyring) => {
            let checked = match bearer(request.headers()) {
                Ok(secret) => keyring.authenticate(&secret).await,
                Err(failure) => Err(failure.into()),
            };
            match checked {
                Ok(principal) => Caller::Key(principal),
                Err(Denied::Failure(failure)) => {
                    failure.count();
                    return ApiError::unauthenticated(failure).into_response();
                }
                Err(Denied::Store(error)) => return ApiError::from(error).into_response(),
            }
        }
    };
    if !caller.allows(needed) {
        let detail = format!(
            "a {} key cannot use {} {}; it needs the {needed} role",
            caller.role(),
            request.method(),
            request.uri().path()
        );
        return ApiError::new(ProblemKind::Forbidden, detail).into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The key of an `Authorization: Bearer <key>` header (the scheme in any case, as RFC 9110 has it).
fn bearer(headers: &HeaderMap) -> Result<KeySecret, AuthFailure> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or(AuthFailure::Missing)?;
    if values.next().is_some() || value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(AuthFailure::Malformed);
    }
    let text = value.to_str().map_err(|_| AuthFailure::Malformed)?;
    let (scheme, token) = text.split_once(' ').ok_or(AuthFailure::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthFailure::Malformed);
    }
    KeySecret::parse(token.trim()).map_err(|_| AuthFailure::Malformed)
}

/// The authenticated caller, as the middleware left it.
impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::internal("a handler ran without the authentication middleware")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn routes_need_the_roles_of_the_contract() {
        assert_eq!(needed_role(&Method::GET, "/wallet/1"), Role::Read);
        assert_eq!(needed_role(&Method::POST, "/wallet/deposit"), Role::Write);
        assert_eq!(needed_role(&Method::POST, "/wallet/"), Role::Write);
        assert_eq!(needed_role(&Method::DELETE, "/wallet/1"), Role::Admin);
        assert_eq!(needed_role(&Method::GET, "/wallet/keys"), Role::Admin);
        assert_eq!(needed_role(&Method::DELETE, "/wallet/keys/ab"), Role::Admin);
        assert_eq!(
            needed_role(&Method::GET, "/wallet/webhooks/1/deliveries"),
            Role::Admin
        );
        assert_eq!(needed_role(&Method::GET, "/wallet/keysmith"), Role::Read);
    }

    #[test]
    fn only_a_single_well_formed_bearer_key_is_taken() {
        let key = format!("rw_{}", "a".repeat(40));
        let headers = |values: &[&str]| {
            let mut map = HeaderMap::new();
            for value in values {
                map.append(
                    header::AUTHORIZATION,
                    HeaderValue::from_str(value).expect("value"),
                );
            }
            map
        };
        assert!(bearer(&headers(&[&format!("Bearer {key}")])).is_ok());
        assert!(bearer(&headers(&[&format!("bearer {key}")])).is_ok());
        assert_eq!(bearer(&headers(&[])).err(), Some(AuthFailure::Missing));
        for bad in [
            key.clone(),
            format!("Basic {key}"),
            "Bearer ".to_owned(),
            format!("Bearer {}", &key[..20]),
            format!("Bearer sk_{}", "a".repeat(40)),
            format!("Bearer {}", "a".repeat(10_000)),
        ] {
            assert_eq!(
                bearer(&headers(&[&bad])).err(),
                Some(AuthFailure::Malformed),
                "{bad:.40}"
            );
        }
        let twice = headers(&[&format!("Bearer {key}"), &format!("Bearer {key}")]);
        assert_eq!(bearer(&twice).err(), Some(AuthFailure::Malformed));
    }
}
