//! Rows as the database returns them, and their checked conversion into the store's records.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{AuditFinding, Hold, LedgerEntry, Result, StoreError, Wallet};
use crate::domain::{Amount, Currency, HoldId, HoldStatus, LedgerEntryKind, WalletId};

#[derive(Debug, FromRow)]
pub(super) struct WalletRow {
    pub id: i64,
    pub owner: String,
    pub currency: String,
    pub balance: i64,
    /// Pending holds, less those past their expiry (see `sql::wallet_columns`).
    pub held: i64,
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
    pub reference: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<String>,
}

#[derive(Debug, FromRow)]
pub(super) struct AuditRow {
    wallet_id: i64,
    balance: i64,
    ledger_balance: Option<i64>,
    first_bad_entry: Option<i64>,
    held: i64,
    pending_holds: i64,
}

/// A hold as stored; `status` already reads `expired` for a pending hold past its expiry.
#[derive(Debug, FromRow)]
pub(super) struct HoldRow {
    pub id: i64,
    pub wallet_id: i64,
    pub amount: i64,
    pub status: String,
    pub captured: Option<i64>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub reference: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<String>,
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
            held: amount(row.held, "held")?,
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
            reference: row.reference,
            description: row.description,
            metadata: row.metadata,
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
            held: row.held,
            pending_holds: row.pending_holds,
        }
    }
}

impl TryFrom<HoldRow> for Hold {
    type Error = StoreError;
    fn try_from(row: HoldRow) -> Result<Self> {
        Ok(Self {
            id: HoldId::from_db(row.id),
            wallet_id: WalletId::from_db(row.wallet_id),
            amount: amount(row.amount, "hold amount")?,
            status: HoldStatus::parse(&row.status)
                .ok_or_else(|| StoreError::Corrupt(format!("hold status {:?}", row.status)))?,
            captured: row.captured.map(|c| amount(c, "captured")).transpose()?,
            expires_at: row.expires_at,
            created_at: row.created_at,
            reference: row.reference,
            description: row.description,
            metadata: row.metadata,
        })
    }
}
