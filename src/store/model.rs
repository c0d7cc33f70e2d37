//! What the store hands out: wallets, ledger entries, the outcome of each operation, and pages of them.

use chrono::{DateTime, Utc};

use crate::domain::{Amount, Currency, HoldId, HoldStatus, LedgerEntryKind, WalletId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub id: WalletId,
    pub owner: String,
    pub currency: Currency,
    pub balance: Amount,
    /// The sum of the wallet's pending holds (those past their expiry no longer count).
    pub held: Amount,
    pub created_at: DateTime<Utc>,
}

impl Wallet {
    /// What withdrawals, transfers and new holds may take: the balance less what is held.
    pub fn available(&self) -> Amount {
        Amount::from_minor(self.balance.minor_units() - self.held.minor_units())
            .unwrap_or(Amount::ZERO)
    }
}

/// Money reserved in a wallet (docs/adr/0100-holds-model.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub id: HoldId,
    pub wallet_id: WalletId,
    pub amount: Amount,
    pub status: HoldStatus,
    /// What the capture took, once captured.
    pub captured: Option<Amount>,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub reference: Option<String>,
    pub description: Option<String>,
    pub metadata: Option<String>,
}

/// A captured hold: the hold, the debit of its wallet, and the credit of the wallet it was paid into, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    pub hold: Hold,
    pub from: Movement,
    pub to: Option<Movement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    pub id: i64,
    pub wallet_id: WalletId,
    pub kind: LedgerEntryKind,
    pub amount: Amount,
    pub balance_after: Amount,
    pub counterparty_id: Option<WalletId>,
    pub created_at: DateTime<Utc>,
    /// The id of the API key that caused the entry; `None` when authentication is off.
    pub actor: Option<String>,
    pub reference: Option<String>,
    pub description: Option<String>,
    /// Canonical JSON text of a string-to-string object.
    pub metadata: Option<String>,
}

/// Who caused an operation and why, as the caller put it: written on its ledger entries (and on a hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memo {
    /// The id of the API key; `None` when authentication is off.
    pub actor: Option<String>,
    pub reference: Option<String>,
    pub description: Option<String>,
    /// Canonical JSON text (see `domain::Metadata`).
    pub metadata: Option<String>,
}

impl Memo {
    pub fn new(actor: Option<&str>, memo: crate::domain::Memo) -> Self {
        Self {
            actor: actor.map(str::to_owned),
            reference: memo.reference.map(String::from),
            description: memo.description.map(String::from),
            metadata: memo.metadata.map(String::from),
        }
    }

    /// Only who: for operations that take no reference (closing a wallet).
    pub fn actor(actor: Option<&str>) -> Self {
        Self {
            actor: actor.map(str::to_owned),
            ..Self::default()
        }
    }
}

/// A wallet as it stands right after an operation, with the ledger entry that operation wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub wallet: Wallet,
    pub entry: LedgerEntry,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    pub from: Movement,
    pub to: Movement,
}

/// One wallet that breaks the ledger invariant, as `revwallet audit` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFinding {
    pub wallet_id: WalletId,
    pub balance: i64,
    pub ledger_balance: Option<i64>,
    pub first_bad_entry: Option<i64>,
    /// The wallet's `held` column and the sum of its pending holds (they must be equal, and `held <= balance`).
    pub held: i64,
    pub pending_holds: i64,
}

/// Which open wallets to list, a page at a time (`limit` is the page size).
#[derive(Debug, Clone, Default)]
pub struct WalletFilter {
    pub owner: Option<String>,
    pub currency: Option<Currency>,
    pub after: Option<WalletId>,
    pub limit: u32,
}

/// Which entries of a wallet's history to show; every filter that is set must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    pub kind: Option<LedgerEntryKind>,
    pub reference: Option<String>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

/// One page of a keyset-paged listing, and the cursor of the next page when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The id to continue from (`after` for wallets, `before` for history); `None` on the last page.
    pub next: Option<i64>,
}

impl<T> Page<T> {
    /// Cuts a listing fetched with one row more than `limit`: that extra row only says whether a next page exists.
    pub(super) fn from_overfetch(mut items: Vec<T>, limit: u32, id: impl Fn(&T) -> i64) -> Self {
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next = if more { items.last().map(id) } else { None };
        Self { items, next }
    }
}

#[cfg(test)]
mod tests {
    use super::Page;

    #[test]
    fn an_overfetched_listing_becomes_a_page_with_the_next_cursor() {
        let page = Page::from_overfetch(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(
            page,
            Page {
                items: vec![1, 2],
                next: Some(2)
            }
        );
        let last = Page::from_overfetch(vec![1, 2], 2, |n| *n);
        assert_eq!(
            last,
            Page {
                items: vec![1, 2],
                next: None
            }
        );
        let empty = Page::from_overfetch(Vec::<i64>::new(), 2, |n| *n);
        assert_eq!(empty.next, None);
    }
}
