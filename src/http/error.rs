//! The one error type of the HTTP layer, rendered as RFC 9457 problem JSON with a stable `code`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::{AmountError, Currency, CurrencyError, OwnerError, WalletId, WalletIdError};
use crate::store::StoreError;

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error(transparent)]
    InvalidAmount(AmountError),
    #[error(transparent)]
    UnknownCurrency(#[from] CurrencyError),
    #[error("wallet {from} holds {from_currency}, wallet {to} holds {to_currency}")]
    CurrencyMismatch {
        from: WalletId,
        to: WalletId,
        from_currency: Currency,
        to_currency: Currency,
    },
    #[error("{0}")]
    AmountTooLarge(String),
    #[error("wallet {0} not found")]
    WalletNotFound(String),
    #[error("no route for {0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    InsufficientFunds(String),
    #[error("a request with this Idempotency-Key is still being processed; retry later")]
    IdempotencyKeyInUse,
    #[error("this Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    #[error("the request body exceeds the size limit")]
    PayloadTooLarge,
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("the database is unavailable; retry later")]
    ServiceUnavailable,
    #[error(
        "the request took too long; it may or may not have been applied (use an Idempotency-Key to retry safely)"
    )]
    Timeout,
    /// A bug. The cause is logged once by the logging middleware and never shown to the client.
    #[error("internal error")]
    Internal(String),
}

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the `code` identifies the problem.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    /// Stable, machine-readable problem code, e.g. `insufficient_funds`.
    pub code: &'static str,
    pub detail: String,
}

/// The cause of a 500, stashed in the response for the logging middleware.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

impl ApiError {
    pub fn status_code_and_title(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Self::InvalidJson(_) => (S::BAD_REQUEST, "invalid_json", "Invalid JSON"),
            Self::InvalidRequest(_) => (
                S::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "Invalid request",
            ),
            Self::InvalidAmount(AmountError::TooLarge(_)) => (
                S::UNPROCESSABLE_ENTITY,
                "amount_too_large",
                "Amount too large",
            ),
            Self::InvalidAmount(_) => (S::UNPROCESSABLE_ENTITY, "invalid_amount", "Invalid amount"),
            Self::UnknownCurrency(_) => (
                S::UNPROCESSABLE_ENTITY,
                "unknown_currency",
                "Unknown currency",
            ),
            Self::CurrencyMismatch { .. } => (
                S::UNPROCESSABLE_ENTITY,
                "currency_mismatch",
                "Currency mismatch",
            ),
            Self::AmountTooLarge(_) => (
                S::UNPROCESSABLE_ENTITY,
                "amount_too_large",
                "Amount too large",
            ),
            Self::WalletNotFound(_) => (S::NOT_FOUND, "wallet_not_found", "Wallet not found"),
            Self::NotFound(_) => (S::NOT_FOUND, "not_found", "Not found"),
            Self::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            Self::InsufficientFunds(_) => (S::CONFLICT, "insufficient_funds", "Insufficient funds"),
            Self::IdempotencyKeyInUse => (
                S::CONFLICT,
                "idempotency_key_in_use",
                "Idempotency key in use",
            ),
            Self::IdempotencyKeyReused => (
                S::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused",
            ),
            Self::PayloadTooLarge => (
                S::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            Self::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
            ),
            Self::ServiceUnavailable | Self::Timeout => (
                S::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "Service unavailable",
            ),
            Self::Internal(_) => (
                S::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal server error",
            ),
        }
    }

    /// The stable problem code, also used as the `outcome` label of operation metrics.
    pub fn code(&self) -> &'static str {
        self.status_code_and_title().1
    }

    /// The `outcome` label of `revwallet_operations_total` for an operation refused with this error.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::InsufficientFunds(_) => "insufficient_funds",
            Self::WalletNotFound(_) => "not_found",
            Self::CurrencyMismatch { .. } => "currency_mismatch",
            Self::ServiceUnavailable | Self::Timeout | Self::Internal(_) => "error",
            _ => "invalid",
        }
    }

    pub fn problem(&self) -> Problem {
        let (status, code, title) = self.status_code_and_title();
        let detail = match self {
            Self::Internal(_) => "an internal error occurred; it has been logged".to_owned(),
            other => other.to_string(),
        };
        Problem {
            kind: "about:blank",
            title,
            status: status.as_u16(),
            code,
            detail,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Self::Internal(cause) = self {
            response.extensions_mut().insert(InternalCause(cause));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::WalletNotFound(id) => Self::WalletNotFound(id.to_string()),
            StoreError::InsufficientFunds { .. } => Self::InsufficientFunds(error.to_string()),
            StoreError::BalanceTooLarge(_) => Self::AmountTooLarge(error.to_string()),
            StoreError::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            StoreError::IdempotencyKeyInUse => Self::IdempotencyKeyInUse,
            StoreError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable");
                Self::ServiceUnavailable
            }
            StoreError::Database(cause) => Self::Internal(format!("database: {cause}")),
            StoreError::Corrupt(what) => Self::Internal(format!("corrupt data: {what}")),
        }
    }
}

impl From<AmountError> for ApiError {
    fn from(error: AmountError) -> Self {
        Self::InvalidAmount(error)
    }
}

impl From<OwnerError> for ApiError {
    fn from(error: OwnerError) -> Self {
        Self::InvalidRequest(format!("owner: {error}"))
    }
}

impl From<WalletIdError> for ApiError {
    fn from(error: WalletIdError) -> Self {
        Self::WalletNotFound(error.0)
    }
}
