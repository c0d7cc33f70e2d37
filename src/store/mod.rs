//! Storage: one `Store` over PostgreSQL or SQLite, chosen from the database URL at start-up.
//!
//! Every operation is one database transaction (on PostgreSQL the hot paths are one statement). Balances are
//! changed only by SQL that checks and writes in the same statement, never read-modified-written in memory.

mod cache;
mod error;
mod events;
mod idempotency;
mod keys;
mod model;
mod postgres;
mod rows;
mod shared;
mod sql;
mod sqlite;
mod webhooks;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::{Amount, Currency, HoldId, HoldStatus, LedgerEntryKind, WalletId};

pub use cache::{HoldFacts, WalletFacts};
pub use error::{Result, StoreError};
pub use events::{Event, EventKind, EventSubject, Feed};
pub use idempotency::{
    ABANDONED_CLAIM_AFTER, Claim, Finish, IDEMPOTENCY_RETENTION, Render, StoredResponse,
};
pub use keys::{ApiKey, NewApiKey, WebSession};
pub use model::{
    AuditFinding, Capture, HistoryFilter, Hold, LedgerEntry, Memo, Movement, Page, Transfer,
    Wallet, WalletFilter,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use webhooks::{
    Attempt, AttemptRecord, ClaimedDelivery, Delivery, DeliveryBacklog, FeedItem, NewWebhook,
    NextStep, SecretKind, StoredSecret, Webhook,
};

/// Pool state, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct PoolState {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// Concurrent writes share a transaction and its commit (group commit). Off: one commit per write.
    pub batch_writes: bool,
}

/// The one storage seam: the backend is chosen from the URL scheme. A closed enum rather than a trait object
/// keeps every call monomorphic (see docs/adr/0002-one-store-two-backends.md).
#[derive(Debug, Clone)]
pub enum Store {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Store::Postgres($store) => $call,
            Store::Sqlite($store) => $call,
        }
    };
}

impl Store {
    /// Connects lazily: start-up succeeds even while the database is down, and requests get 503 until it is back.
    pub fn connect(url: &str, options: &StoreOptions) -> anyhow::Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(PgStore::connect(url, options)?))
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(SqliteStore::connect(url, options)?))
        } else {
            anyhow::bail!("DATABASE_URL must start with postgres:// or sqlite: (got {url:?})")
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        dispatch!(self, s => s.migrate().await)
    }

    pub async fn ping(&self) -> Result<()> {
        dispatch!(self, s => s.ping().await)
    }

    pub fn pool_state(&self) -> PoolState {
        dispatch!(self, s => s.pool_state())
    }

    pub async fn close(&self) {
        dispatch!(self, s => s.close().await)
    }

    /// The currency of a wallet (open or closed), from the cache when it is known.
    pub async fn wallet_currency(&self, id: WalletId) -> Result<Currency> {
        Ok(self.wallet_facts(id).await?.currency)
    }

    /// The currency and owner of a wallet (open or closed), from the cache when they are known.
    pub async fn wallet_facts(&self, id: WalletId) -> Result<WalletFacts> {
        dispatch!(self, s => s.wallet_facts(id).await)
    }

    pub async fn create_wallet(
        &self,
        owner: &str,
        currency: Currency,
        initial_balance: Amount,
        memo: &Memo,
        finish: Option<Finish<'_, Movement>>,
    ) -> Result<Movement> {
        dispatch!(self, s => s.create_wallet(owner, currency, initial_balance, memo, finish).await)
    }

    pub async fn get_wallet(&self, id: WalletId) -> Result<Wallet> {
        dispatch!(self, s => s.get_wallet(id).await)
    }

    /// A page of open wallets, oldest first, after the filter's cursor.
    pub async fn list_wallets(&self, filter: &WalletFilter) -> Result<Page<Wallet>> {
        let overfetch = WalletFilter {
            limit: filter.limit.saturating_add(1),
            ..filter.clone()
        };
        let wallets = dispatch!(self, s => s.list_wallets(&overfetch).await)?;
        Ok(Page::from_overfetch(wallets, filter.limit, |w| w.id.get()))
    }

    pub async fn deposit(
        &self,
        id: WalletId,
        amount: Amount,
        memo: &Memo,
        finish: Option<Finish<'_, Movement>>,
    ) -> Result<Movement> {
        dispatch!(self, s => s.move_money(id, LedgerEntryKind::Deposit, amount, memo, finish).await)
    }

    pub async fn withdraw(
        &self,
        id: WalletId,
        amount: Amount,
        memo: &Memo,
        finish: Option<Finish<'_, Movement>>,
    ) -> Result<Movement> {
        dispatch!(self, s => s.move_money(id, LedgerEntryKind::Withdrawal, amount, memo, finish).await)
    }

    /// Moves money between two wallets of the same currency (the caller checks currencies and parses the amount).
    pub async fn transfer(
        &self,
        from: WalletId,
        to: WalletId,
        amount: Amount,
        memo: &Memo,
        finish: Option<Finish<'_, Transfer>>,
    ) -> Result<Transfer> {
        dispatch!(self, s => s.transfer(from, to, amount, memo, finish).await)
    }

    /// Closes a wallet, paying out what remains as a final `closing` entry. Returns that entry, if any.
    pub async fn close_wallet(
        &self,
        id: WalletId,
        memo: &Memo,
        finish: Option<Finish<'_, Option<LedgerEntry>>>,
    ) -> Result<Option<LedgerEntry>> {
        dispatch!(self, s => s.close_wallet(id, memo, finish).await)
    }

    /// A page of a wallet's ledger, newest first, strictly before the entry id `before`, with the filter's entries.
    pub async fn history(
        &self,
        id: WalletId,
        filter: &HistoryFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Page<LedgerEntry>> {
        let entries =
            dispatch!(self, s => s.history(id, filter, before, limit.saturating_add(1)).await)?;
        Ok(Page::from_overfetch(entries, limit, |e| e.id))
    }

    /// The last entry of a wallet at (`inclusive`) or before an instant: what its balance was then.
    pub async fn entry_as_of(
        &self,
        id: WalletId,
        at: DateTime<Utc>,
        inclusive: bool,
    ) -> Result<Option<LedgerEntry>> {
        dispatch!(self, s => s.entry_as_of(id, at, inclusive).await)
    }

    /// Up to `limit` of a wallet's entries in ledger (id) order after the entry id `after`, for a statement.
    pub async fn statement_page(
        &self,
        id: WalletId,
        filter: &HistoryFilter,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<LedgerEntry>> {
        dispatch!(self, s => s.statement_page(id, filter, after, limit).await)
    }

    /// Creates a key; `None` when a key with the same secret (or id) exists already.
    pub async fn insert_api_key(&self, key: &NewApiKey) -> Result<Option<ApiKey>> {
        dispatch!(self, s => s.insert_api_key(key).await)
    }

    /// Creates `key` only if no key exists at all (one replica wins when several start on an empty database).
    pub async fn insert_first_api_key(&self, key: &NewApiKey) -> Result<bool> {
        dispatch!(self, s => s.insert_first_api_key(key).await)
    }

    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKey>> {
        dispatch!(self, s => s.api_key(id).await)
    }

    pub async fn api_keys_by_id(&self, ids: &[String]) -> Result<Vec<ApiKey>> {
        dispatch!(self, s => s.api_keys_by_id(ids).await)
    }

    pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        dispatch!(self, s => s.list_api_keys().await)
    }

    pub async fn revoke_api_key(&self, id: &str) -> Result<()> {
        dispatch!(self, s => s.revoke_api_key(id).await)
    }

    pub async fn count_api_keys(&self) -> Result<i64> {
        dispatch!(self, s => s.count_api_keys().await)
    }

    pub async fn insert_web_session(
        &self,
        token_hash: &str,
        key_id: &str,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        dispatch!(self, s => s.insert_web_session(token_hash, key_id, expires_at).await)
    }

    pub async fn web_session(&self, token_hash: &str) -> Result<Option<WebSession>> {
        dispatch!(self, s => s.web_session(token_hash).await)
    }

    pub async fn delete_web_session(&self, token_hash: &str) -> Result<()> {
        dispatch!(self, s => s.delete_web_session(token_hash).await)
    }

    pub async fn expire_web_sessions(&self) -> Result<u64> {
        dispatch!(self, s => s.expire_web_sessions().await)
    }

    /// Reserves `amount` of a wallet's available money until `expires_at`.
    pub async fn place_hold(
        &self,
        wallet: WalletId,
        amount: Amount,
        expires_at: DateTime<Utc>,
        memo: &Memo,
        finish: Option<Finish<'_, Hold>>,
    ) -> Result<Hold> {
        let hold =
            dispatch!(self, s => s.place_hold(wallet, amount, expires_at, memo, finish).await)?;
        self.remember_hold(&hold);
        Ok(hold)
    }

    /// Takes `amount` (at most the hold) out of the hold's wallet, as a withdrawal or a transfer into `to`
    /// (the caller checks currencies); the rest of the hold is released.
    pub async fn capture_hold(
        &self,
        id: HoldId,
        amount: Amount,
        to: Option<WalletId>,
        memo: &Memo,
        finish: Option<Finish<'_, Capture>>,
    ) -> Result<Capture> {
        let capture = dispatch!(self, s => s.capture_hold(id, amount, to, memo, finish).await)?;
        dispatch!(self, s => s.holds.forget(id));
        Ok(capture)
    }

    pub async fn void_hold(&self, id: HoldId, finish: Option<Finish<'_, Hold>>) -> Result<Hold> {
        let hold = dispatch!(self, s => s.void_hold(id, finish).await)?;
        dispatch!(self, s => s.holds.forget(id));
        Ok(hold)
    }

    /// A hold of an open wallet; a pending one past its expiry reads `expired`.
    pub async fn get_hold(&self, id: HoldId) -> Result<Hold> {
        let hold = dispatch!(self, s => s.get_hold(id).await)?;
        self.remember_hold(&hold);
        Ok(hold)
    }

    /// A hold's wallet and amount, from the cache when this process placed or read it while pending; else as
    /// `get_hold` finds it (a hold of a closed wallet is not found). What a capture or void checks before the
    /// store decides, under the hold's current status, whether it applies.
    pub async fn hold_facts(&self, id: HoldId) -> Result<HoldFacts> {
        match dispatch!(self, s => s.holds.get(id)) {
            Some(facts) => Ok(facts),
            None => self.get_hold(id).await.map(|hold| HoldFacts::from(&hold)),
        }
    }

    fn remember_hold(&self, hold: &Hold) {
        if hold.status == HoldStatus::Pending {
            dispatch!(self, s => s.holds.put(hold.id, HoldFacts::from(hold)));
        }
    }

    /// A page of a wallet's holds, newest first, strictly before the hold id `before`.
    pub async fn list_holds(
        &self,
        wallet: WalletId,
        status: Option<HoldStatus>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Page<Hold>> {
        let holds = dispatch!(self, s => s.list_holds(wallet, status, before, limit.saturating_add(1)).await)?;
        Ok(Page::from_overfetch(holds, limit, |h| h.id.get()))
    }

    /// The sweep: marks pending holds past their expiry `expired`, a wallet at a time (reads already treat them
    /// as released; this gives their money back in `held`). Safe with several replicas: a wallet another
    /// transaction holds is skipped. Returns how many holds it expired.
    pub async fn expire_holds(&self) -> Result<u64> {
        let mut expired = 0;
        for wallet in dispatch!(self, s => s.wallets_with_due_holds(500).await)? {
            expired += dispatch!(self, s => s.expire_wallet_holds(wallet).await)?;
        }
        Ok(expired)
    }

    /// The money held in open wallets by currency code, in minor units.
    pub async fn held_by_currency(&self) -> Result<Vec<(String, i64)>> {
        dispatch!(self, s => s.held_by_currency().await)
    }

    pub async fn count_open_wallets(&self) -> Result<i64> {
        dispatch!(self, s => s.count_open_wallets().await)
    }

    /// Up to `limit` events of the feed after the position `after`, in order; only the wallets of `owner` when
    /// given. Events appear here only once nothing can be numbered below them (see `postgres::sequencer`).
    pub async fn events_after(
        &self,
        after: i64,
        limit: u32,
        owner: Option<&str>,
    ) -> Result<Vec<Event>> {
        dispatch!(self, s => s.events_after(after, limit, owner).await)
    }

    /// The signals of the feed: wakes long-polling readers when new events may be visible.
    pub fn feed(&self) -> Feed {
        dispatch!(self, s => s.feed().clone())
    }

    /// Numbers committed events for the feed and wakes its readers; runs until dropped (one per serving process).
    pub async fn run_event_sequencer(&self) {
        dispatch!(self, s => s.run_sequencer().await)
    }

    /// Events committed but not numbered for the feed yet (a gauge).
    pub async fn count_unsequenced_events(&self) -> Result<i64> {
        dispatch!(self, s => s.count_unsequenced_events().await)
    }

    pub async fn audit(&self) -> Result<Vec<AuditFinding>> {
        dispatch!(self, s => s.audit().await)
    }

    pub async fn claim_idempotency_key(&self, key: &str, request_hash: &str) -> Result<Claim> {
        dispatch!(self, s => s.claim_key(key, request_hash).await)
    }

    /// Whether a request has taken this idempotency key (finished or not).
    pub async fn idempotency_key_taken(&self, key: &str) -> Result<bool> {
        dispatch!(self, s => s.key_taken(key).await)
    }

    /// Keeps the answer of a request that was declined (its operation ran and changed nothing) under its key,
    /// refused with `IdempotencyKeyInUse` if another request has the key.
    pub async fn store_idempotent_answer(
        &self,
        key: &str,
        request_hash: &str,
        answer: StoredResponse,
    ) -> Result<()> {
        dispatch!(self, s => s.store_answer(key, request_hash, answer).await)
    }

    /// Frees a claim after the request failed without changing anything, so a retry can run. Until it is freed
    /// (the database may be away), a retry through this store takes the claim over at once.
    pub async fn release_idempotency_key(&self, key: &str) -> Result<()> {
        dispatch!(self, s => s.release_key(key).await)
    }

    /// Frees the claims of failed requests that could not be freed when they failed (housekeeping).
    pub async fn release_failed_claims(&self) -> Result<usize> {
        let keys = dispatch!(self, s => s.failed_claims());
        for key in &keys {
            self.release_idempotency_key(key).await?;
        }
        Ok(keys.len())
    }

    pub async fn expire_idempotency_keys(&self) -> Result<u64> {
        dispatch!(self, s => s.expire_keys().await)
    }
}
