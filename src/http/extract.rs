//! The API's own extractors for the path id and the query string, so that every rejection, even one axum would
//! answer in plain text (a path that is not UTF-8, a repeated query parameter), is problem JSON with a row of
//! the error table.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use percent_encoding::percent_decode_str;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::domain::WalletId;

/// The `{id}` of a path: a wallet id in its canonical spelling, or 404 `wallet_not_found` (no wallet can have
/// it), whatever the segment holds (bytes that are not UTF-8, NUL, leading zeros, a sign, 300 digits).
pub struct PathId(pub WalletId);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::wallet_not_found("in this path"))?;
        Ok(Self(WalletId::parse(&text)?))
    }
}

/// A query string read strictly: each parameter percent-decoded to UTF-8 and given at most once (unknown ones
/// are ignored), else 422 `invalid_request`; then deserialised into `T`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let pairs = query_pairs(parts.uri.query().unwrap_or_default())?;
        serde_urlencoded::from_str::<T>(
            &serde_urlencoded::to_string(&pairs)
                .map_err(|e| ApiError::invalid_request(e.to_string()))?,
        )
        .map(Self)
        .map_err(|error| ApiError::invalid_request(format!("query string: {error}")))
    }
}

/// The decoded `name=value` pairs of a query string; a name or value that does not decode to UTF-8, or a name
/// given twice, is refused.
pub fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for part in query.split('&').filter(|part| !part.is_empty()) {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        let (name, value) = (decode(name)?, decode(value)?);
        if pairs.iter().any(|(seen, _)| *seen == name) {
            return Err(ApiError::invalid_request(format!(
                "query parameter {name:?} is given more than once"
            )));
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

fn decode(text: &str) -> Result<String, ApiError> {
    let text = text.replace('+', " ");
    percent_decode_str(&text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| {
            ApiError::invalid_request("the query string is not UTF-8 once percent-decoded")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_decoded_strictly() {
        let pairs = query_pairs("owner=Zo%C3%AB+B&limit=2&&flag").expect("valid query");
        assert_eq!(
            pairs,
            [
                ("owner".to_owned(), "Zoë B".to_owned()),
                ("limit".to_owned(), "2".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
        for bad in ["limit=1&limit=2", "owner=%FF", "%FF=1", "owner=a&owner="] {
            assert!(query_pairs(bad).is_err(), "{bad:?}");
        }
        assert_eq!(query_pairs("").expect("empty"), []);
    }
}
