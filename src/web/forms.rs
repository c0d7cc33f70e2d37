//! Form posts: the urlencoded body, the per-form idempotency key that makes a double submit harmless, and the
//! words shown beside a field when the domain or the store refuses what was typed.

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::error::PageError;
use super::views::Field;
use crate::auth::Caller;
use crate::domain::{AmountError, Currency, CurrencyError, OwnerError};
use crate::idempotency::IdempotencyKey;
use crate::outcome::{Operation, ProblemKind};
use crate::state::AppState;
use crate::store::StoredResponse;

/// A posted `application/x-www-form-urlencoded` body. Unknown fields are ignored; a missing field reads as "".
pub struct FormBody {
    fields: Vec<(String, String)>,
    /// The form's idempotency key, when it carried a well-formed one.
    pub key: Option<IdempotencyKey>,
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
        // Form keys live in the signed-in key's scope, so two keys' forms never meet (the sign-in form has none).
        let scope = request
            .extensions()
            .get::<Caller>()
            .map(Caller::idempotency_scope)
            .unwrap_or_default();
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
            .and_then(|(_, key)| IdempotencyKey::for_form(&scope, key, &path, &bytes));
        Ok(Self { fields, key })
    }
}

/// Whether a browser sent this post from another site (cross-site request forgery). The session cookie is
/// `SameSite=Strict`, so a post from elsewhere arrives signed out; but a page elsewhere could still sign a
/// visitor's browser in or out, or post to a revwallet it can reach and the attacker cannot (on a private network,
/// on localhost, with authentication off). Browsers say where a request comes
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

/// A fresh key for a rendered form.
pub fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The redirect a successful form post answers with (303, so the browser follows with a GET).
pub fn redirect(location: String) -> StoredResponse {
    StoredResponse {
        status: StatusCode::SEE_OTHER.as_u16(),
        location: Some(location),
        body: String::new(),
    }
}

/// Why a field was refused: the message beside it, and the row of the error table it stands for (the page is
/// answered with that row's status, as the JSON API would be, and the operation counted under its outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: ProblemKind,
    pub message: String,
}

impl Refusal {
    pub fn new(kind: ProblemKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Puts each refusal beside its field and focuses the first one; the first refusal is what the page answers with.
pub fn mark_refused<const N: usize>(refusals: [(&mut Field, Option<Refusal>); N]) -> ProblemKind {
    let mut first = None;
    for (field, refusal) in refusals {
        if let Some(refusal) = refusal {
            field.autofocus = first.is_none();
            first.get_or_insert(refusal.kind);
            field.error = Some(refusal.message);
        }
    }
    first.unwrap_or(ProblemKind::InvalidRequest)
}

/// The optional reference and description of a money form, kept as typed in `fields`: blank means none (a
/// reference is trimmed; a description is kept as typed). A broken rule is a refusal beside its field.
pub fn read_memo(
    form: &FormBody,
    fields: &mut super::views::MemoFields,
) -> Result<crate::domain::Memo, ProblemKind> {
    use crate::domain::{Description, Memo, Reference};
    fields.reference = super::views::Field::typed(form.get("reference"));
    fields.description = super::views::Field::typed(form.get("description"));
    let refusal = |error: crate::domain::MemoError| {
        let mut message = error.to_string();
        if let Some(first) = message.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        Refusal::new(ProblemKind::InvalidRequest, format!("{message}."))
    };
    let reference = Some(form.get("reference").trim())
        .filter(|text| !text.is_empty())
        .map(Reference::parse)
        .transpose()
        .map_err(refusal);
    let description = Some(form.get("description"))
        .filter(|text| !text.trim().is_empty())
        .map(Description::parse)
        .transpose()
        .map_err(refusal);
    match (reference, description) {
        (Ok(reference), Ok(description)) => Ok(Memo {
            reference,
            description,
            metadata: None,
        }),
        (reference, description) => Err(mark_refused([
            (&mut fields.reference, reference.err()),
            (&mut fields.description, description.err()),
        ])),
    }
}

/// A form sent again with other values under the same key.
pub fn resubmitted() -> Refusal {
    Refusal::new(
        ProblemKind::IdempotencyKeyReused,
        "This form was already sent with other values. Check the result, then fill in the form again.",
    )
}

/// How a form post was answered, for the operation metric: a post that ran, a refused one (the page shown again
/// with the refusal's status), or one already sent before (a replay, or still running), which is not counted again.
pub enum Posted {
    Done(Response),
    Refused(ProblemKind, Response),
    AlreadySent(Response),
}

/// Counts the operation behind a form post once it is answered, and gives the response.
pub fn counted(op: Operation, app: &AppState, posted: Result<Posted, PageError>) -> Response {
    match posted {
        Ok(Posted::Done(response)) => {
            op.succeeded();
            response
        }
        Ok(Posted::Refused(kind, response)) => {
            op.refused(kind, &"the form was refused");
            response
        }
        Ok(Posted::AlreadySent(response)) => response,
        Err(error) => {
            op.refused(error.kind(), &error);
            error.render(app)
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
        OwnerError::FormatCharacter => {
            "Remove the invisible characters (such as zero-width spaces or text-direction marks) from the owner."
        }
    };
    Refusal::new(ProblemKind::InvalidRequest, message)
}

pub fn currency_refusal(_: CurrencyError) -> Refusal {
    Refusal::new(
        ProblemKind::UnknownCurrency,
        "Choose a currency from the list.",
    )
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
    let kind = match error {
        AmountError::TooLarge(_) => ProblemKind::AmountTooLarge,
        _ => ProblemKind::InvalidAmount,
    };
    Refusal::new(kind, message)
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
            refusal("1.001", "EUR").kind.status(),
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
}
