//! What the store hands out: wallets, ledger entries, the outcome of each operation, and pages of them.

use chrono::{DateTime, Utc};

use crate::domain::{Amount, Currency, LedgerEntryKind, WalletId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub id: WalletId,
    pub owner: String,
    pub currency: Currency,
    pub balance: Amount,
    pub created_at: DateTime<Utc>,
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
}

/// Which open wallets to list, a page at a time (`limit` is the page size).
#[derive(Debug, Clone, Default)]
pub struct WalletFilter {
    pub owner: Option<String>,
    pub currency: Option<Currency>,
    pub after: Option<WalletId>,
    pub limit: u32,
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
