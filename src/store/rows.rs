//! Rows as the database returns them, and their checked conversion into the store's records.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{AuditFinding, LedgerEntry, Result, StoreError, Wallet};
use crate::domain::{Amount, Currency, LedgerEntryKind, WalletId};

#[derive(Debug, FromRow)]
pub(super) struct WalletRow {
    pub id: i64,
    pub owner: String,
    pub currency: String,
    pub balance: i64,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, FromRow)]
pub(super) struct EntryRow {
    pub id: i64,
    pub wallet_id: i64,
    pub kind: String,
    pub amount: i64,
    pub balance_after: i64,
    pub counterparty_id: Option<i64>,
    pub created_at: DateTime<Utc>,
    pub actor: Option<String>,
}

#[derive(Debug, FromRow)]
pub(super) struct AuditRow {
    wallet_id: i64,
    balance: i64,
    ledger_balance: Option<i64>,
    first_bad_entry: Option<i64>,
}

fn amount(minor: i64, what: &str) -> Result<Amount> {
    Amount::from_minor(minor).ok_or_else(|| StoreError::Corrupt(format!("negative {what} {minor}")))
}

impl TryFrom<WalletRow> for Wallet {
    type Error = StoreError;
    fn try_from(row: WalletRow) -> Result<Self> {
        Ok(Self {
            id: WalletId::from_db(row.id),
            currency: Currency::parse(&row.currency)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            balance: amount(row.balance, "balance")?,
            owner: row.owner,
            created_at: row.created_at,
        })
    }
}

impl TryFrom<EntryRow> for LedgerEntry {
    type Error = StoreError;
    fn try_from(row: EntryRow) -> Result<Self> {
        Ok(Self {
            id: row.id,
            wallet_id: WalletId::from_db(row.wallet_id),
            kind: LedgerEntryKind::parse(&row.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("entry kind {:?}", row.kind)))?,
            amount: amount(row.amount, "amount")?,
            balance_after: amount(row.balance_after, "balance_after")?,
            counterparty_id: row.counterparty_id.map(WalletId::from_db),
            created_at: row.created_at,
            actor: row.actor,
        })
    }
}

impl From<AuditRow> for AuditFinding {
    fn from(row: AuditRow) -> Self {
        Self {
            wallet_id: WalletId::from_db(row.wallet_id),
            balance: row.balance,
            ledger_balance: row.ledger_balance,
            first_bad_entry: row.first_bad_entry,
        }
    }
}
