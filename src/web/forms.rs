//! Form posts: the urlencoded body, the per-form idempotency key that makes a double submit harmless, and the
//! words shown beside a field when the domain or the store refuses what was typed.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::pages::PageError;
use crate::domain::{AmountError, Currency, OwnerError};
use crate::http::ApiError;
use crate::http::AppState;
use crate::store::{Claim, Finish, Store, StoreError, StoredResponse};

/// A posted `application/x-www-form-urlencoded` body. Unknown fields are ignored; a missing field reads as "".
pub struct FormBody {
    fields: Vec<(String, String)>,
    /// The form's idempotency key, when it carried a well-formed one.
    pub key: Option<FormKey>,
}

impl FormBody {
    pub fn get(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map_or("", |(_, value)| value.as_str())
    }
}

impl FromRequest<AppState> for FormBody {
    /// An error page: 415 for another content type, 413 when too large, 400 when unreadable.
    type Rejection = Response;

    async fn from_request(request: Request, app: &AppState) -> Result<Self, Response> {
        Self::read(request, app)
            .await
            .map_err(|error| error.render(app))
    }
}

impl FormBody {
    async fn read(request: Request, app: &AppState) -> Result<Self, PageError> {
        let urlencoded = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|essence| {
                essence
                    .trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !urlencoded {
            return Err(PageError::UnsupportedMediaType);
        }
        if is_cross_site(request.headers()) {
            return Err(PageError::CrossSite);
        }
        let path = request.uri().path().to_owned();
        let bytes = axum::body::Bytes::from_request(request, app)
            .await
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => PageError::PayloadTooLarge,
                _ => PageError::BadRequest,
            })?;
        let fields: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&bytes).map_err(|_| PageError::BadRequest)?;
        let key = fields
            .iter()
            .find(|(name, _)| name == "key")
            .and_then(|(_, key)| FormKey::new(key, &path, &bytes));
        Ok(Self { fields, key })
    }
}

/// Whether a browser sent this post from another site (cross-site request forgery). The app has no sessions or
/// cookies to steal, but a page elsewhere could still make a visitor's browser post to a revwallet it can
/// reach and the attacker cannot (on a private network, on localhost). Browsers say where a request comes
/// from in `Sec-Fetch-Site`; older ones send `Origin`, compared with `Host`. Clients that send neither (curl,
/// scripts) are not browsers acting for someone else, and pass.
pub fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let authority = origin.split_once("://").map(|(_, rest)| rest);
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    match (authority, host) {
        (Some(authority), Some(host)) => !authority.eq_ignore_ascii_case(host),
        // `Origin: null` (sandboxed frames, some redirects) or no Host to compare with.
        _ => true,
    }
}

/// A form's idempotency key (a random id rendered into the form) and a fingerprint of what it was posted with.
/// Stored beside the API's keys, under a `ui:` prefix so the two never meet.
#[derive(Debug, Clone)]
pub struct FormKey {
    key: String,
    request_hash: String,
}

impl FormKey {
    fn new(key: &str, path: &str, body: &[u8]) -> Option<Self> {
        let well_formed = (1..=100).contains(&key.len())
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        well_formed.then(|| {
            let mut hash = Sha256::new();
            hash.update(b"POST ");
            hash.update(path.as_bytes());
            hash.update(b"\n");
            hash.update(body);
            let request_hash = hash
                .finalize()
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            Self {
                key: format!("ui:{key}"),
                request_hash,
            }
        })
    }
}

/// A fresh key for a rendered form.
pub fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// How a write ended: it ran now, or an earlier post of the same form already ran it.
pub enum Ran<T> {
    Done(T),
    Replayed(StoredResponse),
}

/// Runs a form's write at most once per form key, like the API's `Idempotency-Key`: the redirect it answered
/// with is stored in the operation's own transaction, and a repeat post is sent to the same place.
pub async fn once<'a, T, F, Fut>(
    store: &Store,
    key: Option<&'a FormKey>,
    render: &'a (dyn Fn(&T) -> StoredResponse + Send + Sync),
    operation: F,
) -> Result<Ran<T>, StoreError>
where
    F: FnOnce(Option<Finish<'a, T>>) -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let Some(key) = key else {
        return operation(None).await.map(Ran::Done);
    };
    match store
        .claim_idempotency_key(&key.key, &key.request_hash)
        .await?
    {
        Claim::Replay(stored) => {
            metrics::counter!("revwallet_idempotent_replays_total").increment(1);
            Ok(Ran::Replayed(stored))
        }
        Claim::New => match operation(Some(Finish {
            key: &key.key,
            render,
        }))
        .await
        {
            Ok(outcome) => Ok(Ran::Done(outcome)),
            Err(error) => {
                // The failed write changed nothing: free the key so the same form may be posted again.
                if let Err(release) = store.release_idempotency_key(&key.key).await {
                    tracing::warn!(error = %release, "could not release form key");
                }
                Err(error)
            }
        },
    }
}

/// The redirect a successful form post answers with (303, so the browser follows with a GET).
pub fn redirect(location: String) -> StoredResponse {
    StoredResponse {
        status: StatusCode::SEE_OTHER.as_u16(),
        location: Some(location),
        body: String::new(),
    }
}

/// Why a field was refused: the message beside it and the status the page is answered with, which is the
/// status the JSON API gives for the same problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
    /// The `outcome` label of `revwallet_operations_total`, as the API counts the same problem.
    pub outcome: &'static str,
}

impl Refusal {
    pub fn new(error: &ApiError, message: impl Into<String>) -> Self {
        Self {
            status: error.status_code_and_title().0,
            message: message.into(),
            outcome: error.outcome(),
        }
    }
}

pub fn owner_refusal(error: OwnerError) -> Refusal {
    let message = match error {
        OwnerError::Empty => "Enter the owner’s name.",
        OwnerError::TooLong => "Use at most 100 characters for the owner.",
        OwnerError::ControlCharacter => {
            "Remove the control characters (such as tabs or line breaks) from the owner."
        }
    };
    Refusal::new(&ApiError::from(error), message)
}

pub fn currency_refusal(error: crate::domain::CurrencyError) -> Refusal {
    Refusal::new(&ApiError::from(error), "Choose a currency from the list.")
}

pub fn amount_refusal(error: AmountError, currency: Currency) -> Refusal {
    let code = currency.code();
    let message = match (&error, currency.exponent()) {
        (AmountError::NotPositive, _) => "Enter an amount greater than zero.".to_owned(),
        (AmountError::TooLarge(_), _) => "This amount is too large.".to_owned(),
        (AmountError::TooManyDecimals { .. }, 0) => {
            format!("{code} has no minor unit: enter a whole number.")
        }
        (AmountError::TooManyDecimals { exponent, .. }, _) => {
            let places = if *exponent == 1 { "place" } else { "places" };
            format!("{code} allows at most {exponent} decimal {places}.")
        }
        (AmountError::Malformed(text), _) if text.is_empty() => "Enter an amount.".to_owned(),
        (AmountError::Malformed(_), 0) => {
            "Enter a whole number, like 1500, without signs or separators.".to_owned()
        }
        (AmountError::Malformed(_), _) => format!(
            "Enter an amount like {}: digits, optionally a point and decimals, without signs or separators.",
            super::views::example_amount(currency)
        ),
    };
    Refusal::new(&ApiError::InvalidAmount(error), message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Amount;

    fn refusal(text: &str, code: &str) -> Refusal {
        let currency = Currency::parse(code).expect("test currency");
        let error = Amount::parse_positive(text, currency).expect_err("refused amount");
        amount_refusal(error, currency)
    }

    #[test]
    fn too_many_decimals_names_the_currency_and_its_places() {
        assert_eq!(
            refusal("1.001", "EUR").message,
            "EUR allows at most 2 decimal places."
        );
        assert_eq!(
            refusal("1.5", "JPY").message,
            "JPY has no minor unit: enter a whole number."
        );
        assert_eq!(
            refusal("1.001", "EUR").status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }

    #[test]
    fn empty_zero_and_malformed_amounts_get_their_own_words() {
        assert_eq!(refusal("", "EUR").message, "Enter an amount.");
        assert_eq!(
            refusal("0.00", "EUR").message,
            "Enter an amount greater than zero."
        );
        assert!(
            refusal("-5", "EUR")
                .message
                .starts_with("Enter an amount like 12.50")
        );
        assert!(
            refusal("1e3", "JPY")
                .message
                .starts_with("Enter a whole number")
        );
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    header::HeaderName::from_static(name),
                    header::HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn posts_from_another_site_are_recognised_by_fetch_metadata_or_origin() {
        assert!(!is_cross_site(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(!is_cross_site(&headers(&[("sec-fetch-site", "none")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_site(&headers(&[("sec-fetch-site", "same-site")])));
        let same = [
            ("origin", "http://wallet.example:8080"),
            ("host", "wallet.example:8080"),
        ];
        assert!(!is_cross_site(&headers(&same)));
        let other = [
            ("origin", "https://evil.example"),
            ("host", "wallet.example:8080"),
        ];
        assert!(is_cross_site(&headers(&other)));
        assert!(is_cross_site(&headers(&[
            ("origin", "null"),
            ("host", "wallet.example")
        ])));
        assert!(
            !is_cross_site(&headers(&[("host", "wallet.example")])),
            "curl and scripts send no Origin"
        );
    }

    #[test]
    fn form_keys_are_namespaced_and_fingerprint_the_post() {
        let first =
            FormKey::new("abc-123", "/ui/wallets/1/deposit", b"amount=1").expect("valid key");
        let other =
            FormKey::new("abc-123", "/ui/wallets/1/deposit", b"amount=2").expect("valid key");
        assert_eq!(first.key, "ui:abc-123");
        assert_ne!(first.request_hash, other.request_hash);
        for bad in ["", "has space", "semi;colon", &"a".repeat(101)] {
            assert!(FormKey::new(bad, "/", b"").is_none(), "{bad:?}");
        }
    }
}
