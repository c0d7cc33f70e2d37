//! The store's error, and the classification of database errors into "retry later" and "a bug".

use crate::domain::{Amount, HoldId, WalletId};
use crate::store::{Hold, Wallet};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("wallet {0} not found")]
    WalletNotFound(WalletId),
    #[error("{}", insufficient(.wallet, *.requested))]
    InsufficientFunds { wallet: Wallet, requested: Amount },
    #[error("hold {0} not found")]
    HoldNotFound(HoldId),
    #[error("hold {} is {}, not pending", .0.id, .0.status.as_str())]
    HoldNotPending(Box<Hold>),
    #[error("cannot capture more than hold {} reserved", .0.id)]
    CaptureTooLarge(Box<Hold>),
    #[error("wallet {0} has pending holds; capture or void them first")]
    WalletHasHolds(WalletId),
    #[error("the balance of wallet {0} would exceed the largest representable amount")]
    BalanceTooLarge(WalletId),
    #[error("API key {0} not found")]
    ApiKeyNotFound(String),
    #[error("idempotency key was used for a different request")]
    IdempotencyKeyReused,
    #[error("a request with this idempotency key is still running")]
    IdempotencyKeyInUse,
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The store's own machinery failed (a background task stopped): a bug, never the client's doing.
    #[error("internal: {0}")]
    Internal(String),
}

/// The detail of a refused debit: what the wallet holds, and what of it is held, when anything is.
fn insufficient(wallet: &Wallet, requested: Amount) -> String {
    let c = wallet.currency;
    if wallet.held == Amount::ZERO {
        format!(
            "wallet {} holds {} {c}; cannot take {} {c}",
            wallet.id,
            wallet.balance.format(c),
            requested.format(c)
        )
    } else {
        format!(
            "wallet {} holds {} {c} of which {} {c} is held ({} {c} available); cannot take {} {c}",
            wallet.id,
            wallet.balance.format(c),
            wallet.held.format(c),
            wallet.available().format(c),
            requested.format(c)
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// The same failure for each member of a batch: `StoreError` holds sqlx errors and is not `Clone`, so each
    /// gets an `Unavailable` (503: outcome unknown, retry) carrying the original message.
    pub(crate) fn for_each_member(&self) -> Self {
        Self::Unavailable(sqlx::Error::Protocol(self.to_string()))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            // A connection cut during the handshake shows up as a protocol error.
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(error),
            sqlx::Error::Database(db) => match db.code().as_deref() {
                // PostgreSQL: connection exceptions, shutdown, too many connections, statement timeout,
                // lock timeout. None says anything about the request; all say "try again".
                Some(code)
                    if code.starts_with("08")
                        || code.starts_with("57P")
                        || code == "53300"
                        || code == "57014"
                        || code == "55P03" =>
                {
                    Self::Unavailable(error)
                }
                // SQLite: busy or locked for longer than the busy timeout.
                Some("5" | "6" | "517" | "261") => Self::Unavailable(error),
                _ => Self::Database(error),
            },
            _ => Self::Database(error),
        }
    }
}
