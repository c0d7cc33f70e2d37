//! One vocabulary for how a request ends, shared by the API and the web app: each row of the error table
//! (`ProblemKind`: status, problem `code`, title, metric outcome), the metric of money operations
//! (`Operation`), and the cause of a 5xx carried to the logging middleware (`ProblemCause`).

use axum::http::StatusCode;

use crate::domain::{Amount, Currency};
use crate::store::StoreError;

/// One row of the error table. The API answers it as problem JSON, the web app as a page or a refused form
/// with the same status, and the operation metrics count it under `outcome()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// 400: the body could not be read (JSON that does not parse; an unreadable form).
    InvalidJson,
    InvalidRequest,
    InvalidAmount,
    AmountTooLarge,
    UnknownCurrency,
    CurrencyMismatch,
    WalletNotFound,
    NotFound,
    MethodNotAllowed,
    /// 401: no credential, or one that is unknown, revoked or expired.
    Unauthenticated,
    /// 403: not allowed for this caller (a role too low for the route, a wallet for another owner, a form posted
    /// from another site).
    Forbidden,
    InsufficientFunds,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unavailable,
    Internal,
}

impl ProblemKind {
    pub fn status(self) -> StatusCode {
        use StatusCode as S;
        match self {
            Self::InvalidJson => S::BAD_REQUEST,
            Self::InvalidRequest
            | Self::InvalidAmount
            | Self::AmountTooLarge
            | Self::UnknownCurrency
            | Self::CurrencyMismatch
            | Self::IdempotencyKeyReused => S::UNPROCESSABLE_ENTITY,
            Self::WalletNotFound | Self::NotFound => S::NOT_FOUND,
            Self::MethodNotAllowed => S::METHOD_NOT_ALLOWED,
            Self::Unauthenticated => S::UNAUTHORIZED,
            Self::Forbidden => S::FORBIDDEN,
            Self::InsufficientFunds | Self::IdempotencyKeyInUse => S::CONFLICT,
            Self::PayloadTooLarge => S::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => S::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable => S::SERVICE_UNAVAILABLE,
            Self::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable problem `code` of the API.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidJson => "invalid_json",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidAmount => "invalid_amount",
            Self::AmountTooLarge => "amount_too_large",
            Self::UnknownCurrency => "unknown_currency",
            Self::CurrencyMismatch => "currency_mismatch",
            Self::WalletNotFound => "wallet_not_found",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::InsufficientFunds => "insufficient_funds",
            Self::IdempotencyKeyInUse => "idempotency_key_in_use",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Unavailable => "service_unavailable",
            Self::Internal => "internal",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::InvalidJson => "Invalid JSON",
            Self::InvalidRequest => "Invalid request",
            Self::InvalidAmount => "Invalid amount",
            Self::AmountTooLarge => "Amount too large",
            Self::UnknownCurrency => "Unknown currency",
            Self::CurrencyMismatch => "Currency mismatch",
            Self::WalletNotFound => "Wallet not found",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Unauthenticated => "Unauthenticated",
            Self::Forbidden => "Forbidden",
            Self::InsufficientFunds => "Insufficient funds",
            Self::IdempotencyKeyInUse => "Idempotency key in use",
            Self::IdempotencyKeyReused => "Idempotency key reused",
            Self::PayloadTooLarge => "Payload too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::Unavailable => "Service unavailable",
            Self::Internal => "Internal server error",
        }
    }

    /// The `outcome` label of `revwallet_operations_total` for an operation that ended this way.
    pub fn outcome(self) -> Outcome {
        match self {
            Self::InsufficientFunds => Outcome::InsufficientFunds,
            Self::WalletNotFound => Outcome::NotFound,
            Self::CurrencyMismatch => Outcome::CurrencyMismatch,
            Self::Unavailable | Self::Internal => Outcome::Error,
            _ => Outcome::Invalid,
        }
    }
}

/// The one mapping from a store error to a row of the table.
impl From<&StoreError> for ProblemKind {
    fn from(error: &StoreError) -> Self {
        match error {
            StoreError::WalletNotFound(_) => Self::WalletNotFound,
            StoreError::InsufficientFunds { .. } => Self::InsufficientFunds,
            StoreError::BalanceTooLarge(_) => Self::AmountTooLarge,
            StoreError::ApiKeyNotFound(_) => Self::NotFound,
            StoreError::IdempotencyKeyReused => Self::IdempotencyKeyReused,
            StoreError::IdempotencyKeyInUse => Self::IdempotencyKeyInUse,
            StoreError::Unavailable(_) => Self::Unavailable,
            StoreError::Database(_) | StoreError::Corrupt(_) | StoreError::Internal(_) => {
                Self::Internal
            }
        }
    }
}

/// How a money operation ended, as `revwallet_operations_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Invalid,
    NotFound,
    InsufficientFunds,
    CurrencyMismatch,
    Error,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Invalid => "invalid",
            Self::NotFound => "not_found",
            Self::InsufficientFunds => "insufficient_funds",
            Self::CurrencyMismatch => "currency_mismatch",
            Self::Error => "error",
        }
    }
}

/// The money operations the metrics count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    Open,
    Deposit,
    Withdrawal,
    Transfer,
    Close,
}

impl OperationKind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Deposit => "deposit",
            Self::Withdrawal => "withdrawal",
            Self::Transfer => "transfer",
            Self::Close => "close",
        }
    }
}

/// One money operation as a handler learns about it (the currency once the wallet is known, the amount once
/// parsed), counted once when it is answered, by the API and the web app alike.
#[derive(Debug)]
pub struct Operation {
    kind: OperationKind,
    currency: Option<Currency>,
    moved: Amount,
}

impl Operation {
    pub fn new(kind: OperationKind) -> Self {
        Self {
            kind,
            currency: None,
            moved: Amount::ZERO,
        }
    }

    pub fn kind(&self) -> OperationKind {
        self.kind
    }

    /// Notes the wallet's currency and hands it back, so a handler can write `let c = op.currency(c);`.
    pub fn currency(&mut self, currency: Currency) -> Currency {
        self.currency = Some(currency);
        currency
    }

    pub fn amount(&mut self, amount: Amount) -> Amount {
        self.moved = amount;
        amount
    }

    /// Counts a successful operation and the money it moved.
    pub fn succeeded(self) {
        self.count(Outcome::Ok);
        if self.moved > Amount::ZERO {
            let total = moved_total(self.kind, self.currency_label(), self.moved);
            metrics::counter!("revwallet_money_moved_minor_units_total",
                "type" => self.kind.label(), "currency" => self.currency_label())
            .absolute(total);
        }
    }

    /// Counts a refused or failed operation, and logs why.
    pub fn refused(self, kind: ProblemKind, detail: &dyn std::fmt::Display) {
        let outcome = kind.outcome();
        self.count(outcome);
        tracing::info!(operation = self.kind.label(), currency = self.currency_label(),
            outcome = outcome.label(), detail = %detail, "operation refused");
    }

    fn count(&self, outcome: Outcome) {
        metrics::counter!("revwallet_operations_total", "type" => self.kind.label(),
            "currency" => self.currency_label(), "outcome" => outcome.label())
        .increment(1);
    }

    fn currency_label(&self) -> &'static str {
        self.currency.map_or("unknown", |c| c.code())
    }
}

/// Adds `moved` to this process's running total of money moved by (type, currency) and returns it for the
/// counter. The total is kept in a `u128` (no sum of `i64` amounts can reach its end) and published saturated at
/// `u64::MAX`: the exporter's counters are `u64`, whose `increment` wraps, and a Prometheus counter that wraps
/// reads as a reset. `absolute` only ever raises the published value, so the series never goes down.
fn moved_total(kind: OperationKind, currency: &'static str, moved: Amount) -> u64 {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static TOTALS: OnceLock<Mutex<HashMap<(&'static str, &'static str), u128>>> = OnceLock::new();
    let mut totals = TOTALS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let total = totals.entry((kind.label(), currency)).or_insert(0);
    *total = total.saturating_add(u128::from(moved.minor_units().unsigned_abs()));
    u64::try_from(*total).unwrap_or(u64::MAX)
}

/// The cause of a 5xx answer, stashed in the response's extensions: the logging middleware logs it once, with the
/// request id, and the client never sees it.
#[derive(Debug, Clone)]
pub struct ProblemCause(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_moved_saturates_instead_of_wrapping() {
        let most = Amount::from_minor(i64::MAX).expect("the largest amount");
        let mut last = 0;
        for _ in 0..4 {
            let total = moved_total(OperationKind::Transfer, "XTS", most);
            assert!(total >= last, "{total} < {last}");
            last = total;
        }
        assert_eq!(last, u64::MAX);
    }

    #[test]
    fn every_kind_has_a_distinct_code_and_an_error_status() {
        let kinds = [
            ProblemKind::InvalidJson,
            ProblemKind::InvalidRequest,
            ProblemKind::InvalidAmount,
            ProblemKind::AmountTooLarge,
            ProblemKind::UnknownCurrency,
            ProblemKind::CurrencyMismatch,
            ProblemKind::WalletNotFound,
            ProblemKind::NotFound,
            ProblemKind::MethodNotAllowed,
            ProblemKind::Forbidden,
            ProblemKind::InsufficientFunds,
            ProblemKind::IdempotencyKeyInUse,
            ProblemKind::IdempotencyKeyReused,
            ProblemKind::PayloadTooLarge,
            ProblemKind::UnsupportedMediaType,
            ProblemKind::Unavailable,
            ProblemKind::Internal,
        ];
        let codes: std::collections::HashSet<_> = kinds.iter().map(|k| k.code()).collect();
        assert_eq!(codes.len(), kinds.len());
        for kind in kinds {
            assert!(kind.status().is_client_error() || kind.status().is_server_error());
            assert_eq!(
                kind.outcome() == Outcome::Error,
                kind.status().is_server_error(),
                "{kind:?}: only server errors count as `error`"
            );
        }
    }
}
