//! The API's request and response bodies and query strings, with their OpenAPI schemas.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::body::{AmountText, IdText};
use super::error::ApiError;
use crate::domain::{Currency, LedgerEntryKind, Memo, rfc3339};
use crate::store::{self, LedgerEntry, Movement, Wallet};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWalletRequest {
    #[schema(example = "test2")]
    pub owner: String,
    /// ISO 4217 code, any case.
    #[schema(example = "EUR")]
    pub currency: String,
    /// Decimal string or JSON number; defaults to 0. (`balance` is accepted as an alias.)
    #[serde(default, alias = "balance")]
    #[schema(value_type = Option<String>, example = "999.00")]
    pub initial_balance: Option<AmountText>,
    /// The caller's own id for the operation: 1–128 characters, no control characters, no edge whitespace.
    #[serde(default)]
    #[schema(example = "invoice-2026-0042")]
    pub reference: Option<String>,
    /// Up to 500 characters; line breaks and tabs allowed.
    #[serde(default)]
    #[schema(example = "May rent")]
    pub description: Option<String>,
    /// At most 32 string keys (1–64 characters) to string values (up to 500), at most 8 KiB as JSON.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveMoneyRequest {
    /// Wallet id, as a string or a number.
    #[schema(value_type = String, example = "1")]
    pub id: IdText,
    /// Decimal string or JSON number, > 0, with at most the currency's decimals.
    #[schema(value_type = String, example = "100.00")]
    pub amount: AmountText,
    /// The caller's own id for the operation: 1–128 characters, no control characters, no edge whitespace.
    #[serde(default)]
    #[schema(example = "invoice-2026-0042")]
    pub reference: Option<String>,
    /// Up to 500 characters; line breaks and tabs allowed.
    #[serde(default)]
    #[schema(example = "May rent")]
    pub description: Option<String>,
    /// At most 32 string keys (1–64 characters) to string values (up to 500), at most 8 KiB as JSON.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    #[schema(value_type = String, example = "1")]
    pub from_id: IdText,
    #[schema(value_type = String, example = "2")]
    pub to_id: IdText,
    #[schema(value_type = String, example = "25.00")]
    pub amount: AmountText,
    /// The caller's own id for the operation: 1–128 characters, no control characters, no edge whitespace.
    #[serde(default)]
    #[schema(example = "invoice-2026-0042")]
    pub reference: Option<String>,
    /// Up to 500 characters; line breaks and tabs allowed.
    #[serde(default)]
    #[schema(example = "May rent")]
    pub description: Option<String>,
    /// At most 32 string keys (1–64 characters) to string values (up to 500), at most 8 KiB as JSON.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionResponse {
    #[schema(example = "17")]
    pub id: String,
    #[schema(example = "1")]
    pub wallet_id: String,
    /// `opening`, `deposit`, `withdrawal`, `transfer_in`, `transfer_out` or `closing`.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "deposit")]
    pub kind: LedgerEntryKind,
    #[schema(example = "100.00")]
    pub amount: String,
    #[schema(example = "1099.00")]
    pub balance_after: String,
    /// The other wallet of a transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterparty_id: Option<String>,
    #[schema(example = "2026-11-26T19:00:00Z")]
    pub created_at: String,
    /// The id of the API key that caused the entry (absent when authentication is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "3f9a0c1d2e4b5a69")]
    pub actor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The metadata object as given (keys sorted).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Box<RawValue>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletResponse {
    #[schema(example = "1")]
    pub id: String,
    #[schema(example = "test2")]
    pub owner: String,
    #[schema(example = "EUR")]
    pub currency: String,
    #[schema(example = "999.00")]
    pub balance: String,
    /// The sum of the wallet's pending holds (a hold past its expiry no longer counts).
    #[schema(example = "100.00")]
    pub held: String,
    /// `balance - held`: what withdrawals, transfers and new holds may take.
    #[schema(example = "899.00")]
    pub available: String,
    #[schema(example = "2026-11-26T19:00:00Z")]
    pub created_at: String,
    /// The ledger entry the operation wrote (on writes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<TransactionResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferResponse {
    pub from: WalletResponse,
    pub to: TransferTarget,
}

impl TransferTarget {
    /// The receiving side as `caller` may see it.
    pub fn of(movement: &Movement, caller: &crate::auth::Caller) -> Self {
        if caller.sees(&movement.wallet.owner) {
            Self::Visible(Box::new(WalletResponse::of_movement(movement)))
        } else {
            Self::Redacted {
                id: movement.wallet.id.to_string(),
            }
        }
    }
}

/// The receiving wallet of a transfer: whole, or only its `id` when it belongs to an owner the key may not see.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TransferTarget {
    Visible(Box<WalletResponse>),
    Redacted {
        #[schema(example = "2")]
        id: String,
    },
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListWalletsQuery {
    /// Only wallets of this owner (exact match after trimming and NFC); empty means no filter.
    pub owner: Option<String>,
    /// Only wallets in this currency.
    pub currency: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<String>,
    /// Cursor: only wallets with a larger id (from the `Link: rel="next"` header).
    pub after: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTransactionsQuery {
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<String>,
    /// Cursor: only entries with a smaller id (from the `Link: rel="next"` header).
    pub before: Option<String>,
    /// Only entries of this type (`opening`, `deposit`, `withdrawal`, `transfer_in`, `transfer_out`, `closing`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Only entries with exactly this reference.
    pub reference: Option<String>,
    /// Only entries created at or after this RFC 3339 instant.
    pub from: Option<String>,
    /// Only entries created before this RFC 3339 instant (exclusive).
    pub to: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetWalletQuery {
    /// An RFC 3339 instant: the wallet with the balance it had then, from the ledger.
    pub as_of: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// Entries created at or after this RFC 3339 instant (default: from the first).
    pub from: Option<String>,
    /// Entries created before this RFC 3339 instant (default: the time of the request).
    pub to: Option<String>,
}

/// A wallet as it stood at an instant (`GET /wallet/{id}?as_of=`). Holds are not part of the ledger, so a past
/// instant has no `held` or `available`: only the balance the ledger gives.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletAsOfResponse {
    #[schema(example = "1")]
    pub id: String,
    #[schema(example = "test2")]
    pub owner: String,
    #[schema(example = "EUR")]
    pub currency: String,
    /// The balance after the last entry at or before `as_of`.
    #[schema(example = "999.00")]
    pub balance: String,
    #[schema(example = "2026-11-26T19:00:00Z")]
    pub created_at: String,
    #[schema(example = "2026-11-27T12:00:00Z")]
    pub as_of: String,
}

impl WalletResponse {
    pub fn new(wallet: &Wallet, entry: Option<&LedgerEntry>) -> Self {
        Self {
            id: wallet.id.to_string(),
            owner: wallet.owner.clone(),
            currency: wallet.currency.code().to_owned(),
            balance: wallet.balance.format(wallet.currency),
            held: wallet.held.format(wallet.currency),
            available: wallet.available().format(wallet.currency),
            created_at: rfc3339(wallet.created_at),
            transaction: entry.map(|entry| TransactionResponse::new(entry, wallet.currency)),
        }
    }

    pub fn of_movement(movement: &Movement) -> Self {
        Self::new(&movement.wallet, Some(&movement.entry))
    }
}

impl TransactionResponse {
    pub fn new(entry: &LedgerEntry, currency: Currency) -> Self {
        Self {
            id: entry.id.to_string(),
            wallet_id: entry.wallet_id.to_string(),
            kind: entry.kind,
            amount: entry.amount.format(currency),
            balance_after: entry.balance_after.format(currency),
            counterparty_id: entry.counterparty_id.map(|id| id.to_string()),
            created_at: rfc3339(entry.created_at),
            actor: entry.actor.clone(),
            reference: entry.reference.clone(),
            description: entry.description.clone(),
            metadata: metadata_json(entry.metadata.as_deref()),
        }
    }
}

/// Stored metadata (canonical JSON text) as it goes out: the same text, embedded as JSON.
pub fn metadata_json(text: Option<&str>) -> Option<Box<RawValue>> {
    text.and_then(|text| RawValue::from_string(text.to_owned()).ok())
}

/// The memo of a write: who (`actor`) and the request's own reference, description and metadata, each checked.
pub fn memo_of(
    actor: Option<&str>,
    reference: Option<&str>,
    description: Option<&str>,
    metadata: Option<&serde_json::Value>,
) -> Result<store::Memo, ApiError> {
    let memo = Memo::parse(reference, description, metadata)?;
    Ok(store::Memo::new(actor, memo))
}

/// Requests that carry a reference, a description and metadata.
pub trait WithMemo {
    fn memo(&self, actor: Option<&str>) -> Result<store::Memo, ApiError>;
}

macro_rules! with_memo {
    ($($request:ty),*) => {$(
        impl WithMemo for $request {
            fn memo(
                &self,
                actor: Option<&str>,
            ) -> Result<$crate::store::Memo, $crate::http::ApiError> {
                $crate::http::schema::memo_of(actor, self.reference.as_deref(), self.description.as_deref(), self.metadata.as_ref())
            }
        }
    )*};
}
pub(super) use with_memo;
with_memo!(CreateWalletRequest, MoveMoneyRequest, TransferRequest);
