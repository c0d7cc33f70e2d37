//! Storage: one `Store` over PostgreSQL or SQLite, chosen from the database URL at start-up.
//!
//! Every operation is one database transaction (on PostgreSQL the hot paths are one statement). Balances are
//! changed only by SQL that checks and writes in the same statement, never read-modified-written in memory.

mod coalesce;
mod postgres;
mod shared;
mod sql;
mod sqlite;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use crate::domain::{Amount, Currency, LedgerEntryKind, WalletId};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// How long a claimed idempotency key may stay unfinished before another request may take it over:
/// longer than any request can run (the request timeout), so a live request is never overtaken.
pub const ABANDONED_CLAIM_AFTER: Duration = Duration::from_secs(120);
/// How long finished idempotency records are kept (the spec asks for at least 24 hours).
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(48 * 3600);

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

#[derive(Debug, Clone, Default)]
pub struct WalletFilter {
    pub owner: Option<String>,
    pub currency: Option<Currency>,
    pub after: Option<WalletId>,
    pub limit: u32,
}

/// A response kept for an idempotency key, replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

pub enum Claim {
    /// The key is ours: run the operation and record its response with it.
    New,
    Replay(StoredResponse),
}

/// Records the response of an idempotent request in the same transaction as its operation.
pub struct Finish<'a, T> {
    pub key: &'a str,
    pub render: &'a (dyn Fn(&T) -> StoredResponse + Send + Sync),
}

impl<T> Clone for Finish<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Finish<'_, T> {}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("wallet {0} not found")]
    WalletNotFound(WalletId),
    #[error("wallet {} holds {} {currency}; cannot take {} {currency}", .wallet.id, .wallet.balance.format(.wallet.currency), .requested.format(.wallet.currency), currency = .wallet.currency)]
    InsufficientFunds { wallet: Wallet, requested: Amount },
    #[error("the balance of wallet {0} would exceed the largest representable amount")]
    BalanceTooLarge(WalletId),
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
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

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

#[derive(Debug, FromRow)]
struct WalletRow {
    id: i64,
    owner: String,
    currency: String,
    balance: i64,
    created_at: DateTime<Utc>,
}

#[derive(Debug, FromRow)]
struct EntryRow {
    id: i64,
    wallet_id: i64,
    kind: String,
    amount: i64,
    balance_after: i64,
    counterparty_id: Option<i64>,
    created_at: DateTime<Utc>,
}

#[derive(Debug, FromRow)]
struct KeyRow {
    request_hash: String,
    status: Option<i32>,
    location: Option<String>,
    body: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(Debug, FromRow)]
struct AuditRow {
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
        })
    }
}

impl KeyRow {
    fn into_claim(self, request_hash: &str) -> Result<Option<Claim>> {
        if self.request_hash != request_hash {
            return Err(StoreError::IdempotencyKeyReused);
        }
        Ok(match (self.status, self.body) {
            (Some(status), Some(body)) => Some(Claim::Replay(StoredResponse {
                status: u16::try_from(status)
                    .map_err(|_| StoreError::Corrupt(format!("status {status}")))?,
                location: self.location,
                body,
            })),
            _ => None,
        })
    }

    fn is_abandoned(&self, now: DateTime<Utc>) -> bool {
        self.status.is_none() && now - self.created_at > abandoned_after()
    }
}

fn abandoned_after() -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(ABANDONED_CLAIM_AFTER).unwrap_or(chrono::TimeDelta::MAX)
}

/// Wallet currencies never change, so a process-wide cache lets an amount be parsed in the wallet's currency
/// without a database round trip on the hot path. Ids are never reused (identity / autoincrement).
#[derive(Debug, Default, Clone)]
struct CurrencyCache(Arc<RwLock<HashMap<i64, Currency>>>);

impl CurrencyCache {
    const MAX_ENTRIES: usize = 1_000_000;

    fn get(&self, id: WalletId) -> Option<Currency> {
        self.0.read().ok()?.get(&id.get()).copied()
    }

    fn put(&self, id: WalletId, currency: Currency) {
        if let Ok(mut map) = self.0.write() {
            if map.len() >= Self::MAX_ENTRIES {
                map.clear();
            }
            map.insert(id.get(), currency);
        }
    }
}

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
}

/// The one storage seam: the backend is chosen from the URL scheme.
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
        dispatch!(self, s => s.wallet_currency(id).await)
    }

    pub async fn create_wallet(
        &self,
        owner: &str,
        currency: Currency,
        initial_balance: Amount,
        finish: Option<Finish<'_, Movement>>,
    ) -> Result<Movement> {
        dispatch!(self, s => s.create_wallet(owner, currency, initial_balance, finish).await)
    }

    pub async fn get_wallet(&self, id: WalletId) -> Result<Wallet> {
        dispatch!(self, s => s.get_wallet(id).await)
    }

    pub async fn list_wallets(&self, filter: &WalletFilter) -> Result<Vec<Wallet>> {
        dispatch!(self, s => s.list_wallets(filter).await)
    }

    pub async fn deposit(
        &self,
        id: WalletId,
        amount: Amount,
        finish: Option<Finish<'_, Movement>>,
    ) -> Result<Movement> {
        dispatch!(self, s => s.move_money(id, LedgerEntryKind::Deposit, amount, finish).await)
    }

    pub async fn withdraw(
        &self,
        id: WalletId,
        amount: Amount,
        finish: Option<Finish<'_, Movement>>,
    ) -> Result<Movement> {
        dispatch!(self, s => s.move_money(id, LedgerEntryKind::Withdrawal, amount, finish).await)
    }

    /// Moves money between two wallets of the same currency (the caller checks currencies and parses the amount).
    pub async fn transfer(
        &self,
        from: WalletId,
        to: WalletId,
        amount: Amount,
        finish: Option<Finish<'_, Transfer>>,
    ) -> Result<Transfer> {
        dispatch!(self, s => s.transfer(from, to, amount, finish).await)
    }

    /// Closes a wallet, paying out what remains as a final `closing` entry. Returns that entry, if any.
    pub async fn close_wallet(
        &self,
        id: WalletId,
        finish: Option<Finish<'_, Option<LedgerEntry>>>,
    ) -> Result<Option<LedgerEntry>> {
        dispatch!(self, s => s.close_wallet(id, finish).await)
    }

    /// A page of a wallet's ledger, newest first, strictly before the entry id `before`.
    pub async fn history(
        &self,
        id: WalletId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<LedgerEntry>> {
        dispatch!(self, s => s.history(id, before, limit).await)
    }

    pub async fn count_open_wallets(&self) -> Result<i64> {
        dispatch!(self, s => s.count_open_wallets().await)
    }

    pub async fn audit(&self) -> Result<Vec<AuditFinding>> {
        dispatch!(self, s => s.audit().await)
    }

    pub async fn claim_idempotency_key(&self, key: &str, request_hash: &str) -> Result<Claim> {
        dispatch!(self, s => s.claim_key(key, request_hash).await)
    }

    /// Frees a claim after the request failed without changing anything, so a retry can run.
    pub async fn release_idempotency_key(&self, key: &str) -> Result<()> {
        dispatch!(self, s => s.release_key(key).await)
    }

    pub async fn expire_idempotency_keys(&self) -> Result<u64> {
        dispatch!(self, s => s.expire_keys().await)
    }
}

/// Shared by both backends: turns a debit or credit that matched no row into the reason why.
fn refused_movement(
    id: WalletId,
    kind: LedgerEntryKind,
    requested: Amount,
    current: Option<Wallet>,
) -> StoreError {
    match current {
        None => StoreError::WalletNotFound(id),
        Some(wallet) if is_debit(kind) => StoreError::InsufficientFunds { wallet, requested },
        Some(_) => StoreError::BalanceTooLarge(id),
    }
}

fn is_debit(kind: LedgerEntryKind) -> bool {
    matches!(
        kind,
        LedgerEntryKind::Withdrawal | LedgerEntryKind::TransferOut | LedgerEntryKind::Closing
    )
}

fn update_for(kind: LedgerEntryKind) -> &'static str {
    if is_debit(kind) {
        sql::DEBIT
    } else {
        sql::CREDIT
    }
}

/// Takes a connection from the pool, recording the wait as `revwallet_db_pool_acquire_duration_seconds`.
async fn acquire<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
) -> Result<sqlx::pool::PoolConnection<DB>> {
    let started = std::time::Instant::now();
    let connection = pool.acquire().await;
    metrics::histogram!("revwallet_db_pool_acquire_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    Ok(connection?)
}

fn cutoff(age: Duration) -> DateTime<Utc> {
    Utc::now() - chrono::TimeDelta::from_std(age).unwrap_or(chrono::TimeDelta::zero())
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
