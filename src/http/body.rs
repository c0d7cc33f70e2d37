//! Request bodies: JSON with a checked content type and size, amounts and ids read from their exact JSON
//! text (never through `f64`), and the `Idempotency-Key` that travels with a write.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::error::ApiError;
use crate::auth::Caller;
use crate::domain::{Amount, Currency, WalletId};
use crate::idempotency::{FORM_KEY_PREFIX, IdempotencyKey};
use crate::outcome::ProblemKind;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A JSON request body, plus the idempotency key of the request if it carried one.
pub struct JsonBody<T> {
    pub value: T,
    pub idempotency: Option<IdempotencyKey>,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return Err(ProblemKind::UnsupportedMediaType.into());
        }
        let (bytes, idempotency) = keyed_bytes(request, state).await?;
        // A body that is not UTF-8 is not JSON (RFC 8259 §8.1), wherever the bad bytes are.
        if std::str::from_utf8(&bytes).is_err() {
            return Err(ApiError::invalid_json("the body is not valid UTF-8"));
        }
        // Syntax first, so that `[1, 2` is reported as broken JSON rather than as the wrong shape.
        serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
            .map_err(|error| ApiError::invalid_json(error.to_string()))?;
        // serde would also read a struct from an array (`[1, "2.00"]`): every request body here is an object.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(ApiError::invalid_request("the body must be a JSON object"));
        }
        let value = serde_json::from_slice(&bytes)
            .map_err(|error| ApiError::invalid_request(error.to_string()))?;
        Ok(Self { value, idempotency })
    }
}

/// A write's body bytes (within the body limit) and its `Idempotency-Key`, fingerprinting those bytes, in the
/// caller's scope (set by the authentication middleware on every `/wallet` route).
pub(super) async fn keyed_bytes<S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<(axum::body::Bytes, Option<IdempotencyKey>), ApiError> {
    let key = idempotency_key(request.headers())?;
    let scope = request
        .extensions()
        .get::<Caller>()
        .map(Caller::idempotency_scope)
        .unwrap_or_default();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let bytes = axum::body::Bytes::from_request(request, state)
        .await
        .map_err(|rejection| match rejection.status().as_u16() {
            413 => ProblemKind::PayloadTooLarge.into(),
            _ => ApiError::invalid_json(rejection.body_text()),
        })?;
    let idempotency =
        key.map(|key| IdempotencyKey::for_api(&scope, &key, method.as_str(), &path, &bytes));
    Ok((bytes, idempotency))
}

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(essence) = content_type
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
    else {
        return false;
    };
    let essence = essence.trim().to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn idempotency_key(headers: &header::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (b' '..=b'~').contains(b)) {
        return Err(ApiError::invalid_request(
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
        ));
    }
    // The web app's form keys live in the same table under this prefix: an API key must never meet one.
    if bytes.starts_with(FORM_KEY_PREFIX.as_bytes()) {
        return Err(ApiError::invalid_request(format!(
            "Idempotency-Key must not start with {FORM_KEY_PREFIX:?}: that prefix is reserved for the web app's forms"
        )));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// The exact text of a JSON string or number: `"100.50"` and `100.50` both give `100.50`.
pub(super) fn scalar_text<'de, D: Deserializer<'de>>(
    deserializer: D,
    what: &str,
) -> Result<String, D::Error> {
    let raw = Box::<RawValue>::deserialize(deserializer)?;
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(text).map_err(D::Error::custom),
        Some(b'-' | b'0'..=b'9') => Ok(text.to_owned()),
        _ => Err(D::Error::custom(format!(
            "{what} must be a JSON string or number"
        ))),
    }
}

/// An amount as the client wrote it, parsed once the currency is known.
#[derive(Debug, Clone)]
pub struct AmountText(pub String);

impl<'de> Deserialize<'de> for AmountText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        scalar_text(deserializer, "amount").map(Self)
    }
}

impl AmountText {
    pub fn positive(&self, currency: Currency) -> Result<Amount, ApiError> {
        Ok(Amount::parse_positive(&self.0, currency)?)
    }

    pub fn non_negative(&self, currency: Currency) -> Result<Amount, ApiError> {
        Ok(Amount::parse(&self.0, currency)?)
    }
}

/// A wallet id given in a body, as a string (`"1"`) or a number (`1`).
#[derive(Debug, Clone, Copy)]
pub struct IdText(pub WalletId);

impl<'de> Deserialize<'de> for IdText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = scalar_text(deserializer, "wallet id")?;
        WalletId::parse(&text).map(Self).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        amount: AmountText,
    }

    fn amount_text(json: &str) -> Result<String, String> {
        serde_json::from_str::<Probe>(json)
            .map(|probe| probe.amount.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_keep_their_exact_text() {
        assert_eq!(amount_text(r#"{"amount": 0.1}"#), Ok("0.1".to_owned()));
        assert_eq!(
            amount_text(r#"{"amount": 100.50}"#),
            Ok("100.50".to_owned())
        );
        assert_eq!(
            amount_text(r#"{"amount": 123456789012345678901234567890}"#),
            Ok("123456789012345678901234567890".to_owned())
        );
        assert_eq!(amount_text(r#"{"amount": 1e3}"#), Ok("1e3".to_owned()));
        assert_eq!(amount_text(r#"{"amount": "7.25"}"#), Ok("7.25".to_owned()));
    }

    #[test]
    fn other_json_types_are_refused() {
        for json in [
            r#"{"amount": true}"#,
            r#"{"amount": null}"#,
            r#"{"amount": [1]}"#,
        ] {
            assert!(amount_text(json).is_err(), "{json}");
        }
    }

    #[test]
    fn content_types_are_matched_on_their_essence() {
        let check = |v: &str| is_json(Some(&header::HeaderValue::from_str(v).expect("header")));
        assert!(check("application/json"));
        assert!(check("Application/JSON; charset=utf-8"));
        assert!(check("application/merge-patch+json"));
        assert!(!check("text/plain"));
        assert!(!check("application/x-www-form-urlencoded"));
        assert!(!is_json(None));
    }
}
