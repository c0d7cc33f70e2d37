//! The API's request and response bodies and query strings, with their OpenAPI schemas.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::body::{AmountText, IdText};
use crate::domain::{Currency, LedgerEntryKind, rfc3339};
use crate::store::{LedgerEntry, Movement, Wallet};

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
}

impl WalletResponse {
    pub fn new(wallet: &Wallet, entry: Option<&LedgerEntry>) -> Self {
        Self {
            id: wallet.id.to_string(),
            owner: wallet.owner.clone(),
            currency: wallet.currency.code().to_owned(),
            balance: wallet.balance.format(wallet.currency),
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
        }
    }
}
