//! Events: the outbox rows every change writes in its own transaction, and what the feed reads back
//! (docs/adr/0120-events-outbox-and-feed.md).
//!
//! The rows are written by database triggers (migration 0005); here are the feed's query, the conversion of its
//! rows into `Event`s, and the in-process signal that wakes the sequencer and the long-polling readers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use sqlx::FromRow;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

use super::{Hold, LedgerEntry, Result, StoreError, Wallet};
use crate::domain::{Amount, Currency, HoldId, HoldStatus, LedgerEntryKind, WalletId};

/// What happened. The names are the API's (`as_str`), and the labels of `revwallet_events_written_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    WalletOpened,
    WalletClosed,
    TransactionCreated,
    HoldCreated,
    HoldCaptured,
    HoldVoided,
    HoldExpired,
}

impl EventKind {
    pub const ALL: [Self; 7] = [
        Self::WalletOpened,
        Self::WalletClosed,
        Self::TransactionCreated,
        Self::HoldCreated,
        Self::HoldCaptured,
        Self::HoldVoided,
        Self::HoldExpired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WalletOpened => "wallet.opened",
            Self::WalletClosed => "wallet.closed",
            Self::TransactionCreated => "transaction.created",
            Self::HoldCreated => "hold.created",
            Self::HoldCaptured => "hold.captured",
            Self::HoldVoided => "hold.voided",
            Self::HoldExpired => "hold.expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// The resource an event shows, as it stood when the event was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSubject {
    /// `wallet.opened` (the opening balance, nothing held) and `wallet.closed` (balance 0).
    Wallet(Wallet),
    /// `transaction.created`.
    Entry(LedgerEntry),
    /// `hold.*`: `pending` for `hold.created`, else the outcome the event records.
    Hold(Hold),
}

/// One event of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The feed's id (the row's `position`): increasing in the order events became visible.
    pub id: i64,
    pub kind: EventKind,
    pub wallet_id: WalletId,
    /// The owner of the wallet (owner-bound keys see only their own events).
    pub owner: String,
    /// The wallet's currency, which the amounts of `subject` are in.
    pub currency: Currency,
    pub created_at: DateTime<Utc>,
    pub subject: EventSubject,
}

/// The feed: events numbered after `$1`, in order, optionally of one owner's wallets (`$2`), at most `$3`.
/// Every column the rendering needs comes from rows that never change after the event (see the migration).
pub(super) const EVENTS_AFTER: &str = "select e.position as position, e.type as type, e.wallet_id as wallet_id, \
            w.owner as owner, w.currency as currency, w.created_at as wallet_created_at, \
            e.created_at as created_at, \
            case when e.type = 'wallet.opened' then (select o.balance_after from transactions o \
                 where o.wallet_id = e.wallet_id and o.kind = 'opening') end as opening_balance, \
            t.id as entry_id, t.kind as entry_kind, t.amount as entry_amount, t.balance_after as balance_after, \
            t.counterparty_id as counterparty_id, t.created_at as entry_created_at, t.actor as actor, \
            h.id as hold_id, h.amount as hold_amount, h.captured as captured, h.expires_at as expires_at, \
            h.created_at as hold_created_at \
     from events e \
     join wallets w on w.id = e.wallet_id \
     left join transactions t on t.id = e.entry_id \
     left join holds h on h.id = e.hold_id \
     where e.position > $1 and ($2 is null or w.owner = $2) \
     order by e.position limit $3";

/// Events written but not numbered yet (always 0 on SQLite, where they are numbered at insert).
pub(super) const COUNT_UNSEQUENCED: &str = "select count(*) from events where position is null";

#[derive(Debug, FromRow)]
pub(super) struct EventRow {
    position: i64,
    #[sqlx(rename = "type")]
    kind: String,
    wallet_id: i64,
    owner: String,
    currency: String,
    wallet_created_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    opening_balance: Option<i64>,
    entry_id: Option<i64>,
    entry_kind: Option<String>,
    entry_amount: Option<i64>,
    balance_after: Option<i64>,
    counterparty_id: Option<i64>,
    entry_created_at: Option<DateTime<Utc>>,
    actor: Option<String>,
    hold_id: Option<i64>,
    hold_amount: Option<i64>,
    captured: Option<i64>,
    expires_at: Option<DateTime<Utc>>,
    hold_created_at: Option<DateTime<Utc>>,
}

fn amount(minor: Option<i64>, what: &str, position: i64) -> Result<Amount> {
    minor
        .and_then(Amount::from_minor)
        .ok_or_else(|| StoreError::Corrupt(format!("event {position}: {what}")))
}

impl TryFrom<EventRow> for Event {
    type Error = StoreError;
    fn try_from(row: EventRow) -> Result<Self> {
        let position = row.position;
        let corrupt = |what: &str| StoreError::Corrupt(format!("event {position}: {what}"));
        let kind = EventKind::parse(&row.kind).ok_or_else(|| corrupt("type"))?;
        let currency = Currency::parse(&row.currency).map_err(|_| corrupt("currency"))?;
        let wallet_id = WalletId::from_db(row.wallet_id);
        let wallet = |balance: Amount| Wallet {
            id: wallet_id,
            owner: row.owner.clone(),
            currency,
            balance,
            held: Amount::ZERO,
            created_at: row.wallet_created_at,
        };
        let hold = |status: HoldStatus| -> Result<Hold> {
            Ok(Hold {
                id: HoldId::from_db(row.hold_id.ok_or_else(|| corrupt("hold"))?),
                wallet_id,
                amount: amount(row.hold_amount, "hold amount", position)?,
                status,
                captured: match status {
                    HoldStatus::Captured => Some(amount(row.captured, "captured", position)?),
                    _ => None,
                },
                expires_at: row.expires_at.ok_or_else(|| corrupt("expires_at"))?,
                created_at: row
                    .hold_created_at
                    .ok_or_else(|| corrupt("hold created_at"))?,
            })
        };
        let subject = match kind {
            EventKind::WalletOpened => EventSubject::Wallet(wallet(amount(
                row.opening_balance,
                "opening balance",
                position,
            )?)),
            EventKind::WalletClosed => EventSubject::Wallet(wallet(Amount::ZERO)),
            EventKind::TransactionCreated => EventSubject::Entry(LedgerEntry {
                id: row.entry_id.ok_or_else(|| corrupt("entry"))?,
                wallet_id,
                kind: row
                    .entry_kind
                    .as_deref()
                    .and_then(LedgerEntryKind::parse)
                    .ok_or_else(|| corrupt("entry kind"))?,
                amount: amount(row.entry_amount, "amount", position)?,
                balance_after: amount(row.balance_after, "balance_after", position)?,
                counterparty_id: row.counterparty_id.map(WalletId::from_db),
                created_at: row
                    .entry_created_at
                    .ok_or_else(|| corrupt("entry created_at"))?,
                actor: row.actor.clone(),
            }),
            EventKind::HoldCreated => EventSubject::Hold(hold(HoldStatus::Pending)?),
            EventKind::HoldCaptured => EventSubject::Hold(hold(HoldStatus::Captured)?),
            EventKind::HoldVoided => EventSubject::Hold(hold(HoldStatus::Voided)?),
            EventKind::HoldExpired => EventSubject::Hold(hold(HoldStatus::Expired)?),
        };
        Ok(Self {
            id: position,
            kind,
            wallet_id,
            owner: row.owner,
            currency,
            created_at: row.created_at,
            subject,
        })
    }
}

/// The in-process signals around the feed, shared by every clone of a store.
///
/// `wrote` wakes the sequencer after a local write committed (a permit is kept if it is busy, so no wake-up is
/// lost); `sequenced` is bumped whenever new events may have become visible (a local round numbered some, or
/// another replica's round was announced), and the long-polling readers wait on it.
#[derive(Debug, Clone)]
pub struct Feed {
    inner: Arc<FeedInner>,
}

#[derive(Debug)]
struct FeedInner {
    wrote: Notify,
    sequenced: watch::Sender<u64>,
    /// Whether other replicas' rounds reach us (PostgreSQL's LISTEN is connected; always on SQLite). While not,
    /// readers poll.
    hearing: AtomicBool,
    /// Bounds the requests waiting for events at once.
    waiters: Arc<Semaphore>,
    /// The process is shutting down: waiting requests answer now instead of holding up the shutdown.
    stopping: AtomicBool,
}

/// At most this many requests wait for events at once; more are answered at once.
const MAX_WAITERS: usize = 1024;

impl Default for Feed {
    fn default() -> Self {
        Self {
            inner: Arc::new(FeedInner {
                wrote: Notify::new(),
                sequenced: watch::Sender::new(0),
                hearing: AtomicBool::new(false),
                waiters: Arc::new(Semaphore::new(MAX_WAITERS)),
                stopping: AtomicBool::new(false),
            }),
        }
    }
}

impl Feed {
    /// A local write committed (it may have written events).
    pub fn wrote(&self) {
        self.inner.wrote.notify_one();
    }

    pub(super) async fn written(&self) {
        self.inner.wrote.notified().await;
    }

    /// New events may be visible.
    pub fn announce(&self) {
        self.inner
            .sequenced
            .send_modify(|round| *round = round.wrapping_add(1));
    }

    /// A receiver that changes whenever new events may be visible.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.sequenced.subscribe()
    }

    /// A place among the waiting requests, if one is free; kept while held.
    pub fn try_wait(&self) -> Option<Waiting> {
        let permit = self.inner.waiters.clone().try_acquire_owned().ok()?;
        metrics::gauge!("revwallet_events_feed_waiting").increment(1.0);
        Some(Waiting(permit))
    }

    /// Ends every wait now and refuses new ones (the server is shutting down).
    pub fn stop_waiting(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.announce();
    }

    pub fn stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::SeqCst)
    }

    pub fn hearing(&self) -> bool {
        self.inner.hearing.load(Ordering::Relaxed)
    }

    pub(super) fn set_hearing(&self, hearing: bool) {
        self.inner.hearing.store(hearing, Ordering::Relaxed);
    }
}

/// A request waiting for events (counted in `revwallet_events_feed_waiting`).
#[derive(Debug)]
pub struct Waiting(#[allow(dead_code, reason = "held for its drop")] OwnedSemaphorePermit);

impl Drop for Waiting {
    fn drop(&mut self) {
        metrics::gauge!("revwallet_events_feed_waiting").decrement(1.0);
    }
}

/// Counts committed events by type (`(type, how many)` pairs), as the sequencer sees them; an unknown type is
/// not counted, so the label stays bounded.
pub(super) fn count_written<'a>(counts: impl IntoIterator<Item = (&'a str, u64)>) {
    for (name, n) in counts {
        if let Some(kind) = EventKind::parse(name) {
            metrics::counter!("revwallet_events_written_total", "type" => kind.as_str())
                .increment(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::EventKind;

    #[test]
    fn event_types_read_back() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("wallet.deleted"), None);
    }
}
