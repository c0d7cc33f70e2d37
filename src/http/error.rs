//! The one error type of the HTTP API: a row of the error table (`ProblemKind`) and the detail shown to the
//! client, rendered as RFC 9457 problem JSON with a stable `code`.

use std::fmt;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::respond::json_response;
use crate::auth::AuthFailure;
use crate::domain::{AmountError, Currency, CurrencyError, OwnerError, WalletId, WalletIdError};
use crate::idempotency::Declinable;
use crate::outcome::{ProblemCause, ProblemKind};
use crate::store::{StoreError, StoredResponse};

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[derive(Debug)]
pub struct ApiError {
    kind: ProblemKind,
    detail: String,
    /// Why a 5xx happened: logged by the middleware, never shown.
    cause: Option<String>,
    /// The operation ran and said no (a decline): its answer is kept under the request's idempotency key.
    declined: bool,
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

impl ApiError {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            cause: None,
            declined: false,
        }
    }

    /// Marks a refusal decided by the ledger (a wallet that is not there for this caller, a currency mismatch),
    /// not by the request's shape: a retry with the same idempotency key must get it again.
    pub fn declined(self) -> Self {
        Self {
            declined: true,
            ..self
        }
    }

    pub fn unauthenticated(failure: AuthFailure) -> Self {
        Self::new(ProblemKind::Unauthenticated, failure.detail())
    }

    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::InvalidRequest, detail)
    }

    pub fn invalid_json(detail: impl Into<String>) -> Self {
        Self::new(ProblemKind::InvalidJson, detail)
    }

    pub fn wallet_not_found(id: impl fmt::Display) -> Self {
        Self::new(
            ProblemKind::WalletNotFound,
            format!("wallet {id} not found"),
        )
        .declined()
    }

    pub fn currency_mismatch(from: WalletId, to: WalletId, theirs: (Currency, Currency)) -> Self {
        let (from_currency, to_currency) = theirs;
        Self::new(
            ProblemKind::CurrencyMismatch,
            format!("wallet {from} holds {from_currency}, wallet {to} holds {to_currency}"),
        )
        .declined()
    }

    /// A bug: the client sees a fixed message, the cause is logged once by the logging middleware.
    pub fn internal(cause: impl Into<String>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::from(ProblemKind::Internal)
        }
    }

    pub fn kind(&self) -> ProblemKind {
        self.kind
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: "about:blank",
            title: self.kind.title(),
            status: self.kind.status().as_u16(),
            code: self.kind.code(),
            detail: self.detail.clone(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

/// The kinds whose detail never varies.
impl From<ProblemKind> for ApiError {
    fn from(kind: ProblemKind) -> Self {
        let detail = match kind {
            ProblemKind::MethodNotAllowed => "method not allowed",
            ProblemKind::IdempotencyKeyInUse => {
                "a request with this Idempotency-Key is still being processed; retry later"
            }
            ProblemKind::IdempotencyKeyReused => {
                "this Idempotency-Key was already used for a different request"
            }
            ProblemKind::PayloadTooLarge => "the request body exceeds the size limit",
            ProblemKind::UnsupportedMediaType => "expected Content-Type: application/json",
            ProblemKind::Unavailable => "the database is unavailable; retry later",
            ProblemKind::Internal => "an internal error occurred; it has been logged",
            other => other.title(),
        };
        Self::new(kind, detail)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.kind.status();
        let mut response = (status, axum::Json(self.problem())).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.kind == ProblemKind::Unauthenticated {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(ProblemCause(cause));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let kind = ProblemKind::from(&error);
        match error {
            StoreError::WalletNotFound(id) => Self::wallet_not_found(id),
            StoreError::InsufficientFunds { .. }
            | StoreError::BalanceTooLarge(_)
            | StoreError::HoldNotFound(_)
            | StoreError::HoldNotPending(_)
            | StoreError::CaptureTooLarge(_)
            | StoreError::WalletHasHolds(_) => Self::new(kind, error.to_string()).declined(),
            StoreError::ApiKeyNotFound(_) => Self::new(kind, error.to_string()),
            StoreError::Unavailable(cause) => Self {
                cause: Some(format!("database unavailable: {cause}")),
                ..Self::from(kind)
            },
            StoreError::Database(cause) => Self::internal(format!("database: {cause}")),
            StoreError::Corrupt(what) => Self::internal(format!("corrupt data: {what}")),
            StoreError::Internal(what) => Self::internal(what),
            StoreError::IdempotencyKeyReused | StoreError::IdempotencyKeyInUse => Self::from(kind),
        }
    }
}

/// A decline is stored under the idempotency key as the very bytes this error is answered with.
impl Declinable for ApiError {
    fn declined_answer(&self) -> Option<StoredResponse> {
        self.declined
            .then(|| json_response(self.kind.status(), None, &self.problem()))
    }

    fn key_in_use(&self) -> bool {
        self.kind == ProblemKind::IdempotencyKeyInUse
    }

    fn database_failed(&self) -> bool {
        self.kind.status().is_server_error()
    }
}

impl From<AmountError> for ApiError {
    fn from(error: AmountError) -> Self {
        let kind = match error {
            AmountError::TooLarge(_) => ProblemKind::AmountTooLarge,
            _ => ProblemKind::InvalidAmount,
        };
        Self::new(kind, error.to_string())
    }
}

impl From<CurrencyError> for ApiError {
    fn from(error: CurrencyError) -> Self {
        Self::new(ProblemKind::UnknownCurrency, error.to_string())
    }
}

impl From<crate::domain::InstantError> for ApiError {
    fn from(error: crate::domain::InstantError) -> Self {
        Self::invalid_request(error.to_string())
    }
}

impl From<crate::domain::MemoError> for ApiError {
    fn from(error: crate::domain::MemoError) -> Self {
        Self::invalid_request(error.to_string())
    }
}

impl From<OwnerError> for ApiError {
    fn from(error: OwnerError) -> Self {
        Self::invalid_request(format!("owner: {error}"))
    }
}

/// A path id that is not a wallet id names no wallet: 404, as for an unknown one (docs/api.md, Conventions).
impl From<WalletIdError> for ApiError {
    fn from(error: WalletIdError) -> Self {
        Self::wallet_not_found(error.0)
    }
}
