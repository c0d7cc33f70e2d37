//! SQLite backend: the embedded default for one machine. WAL with `synchronous=FULL` so an acknowledged
//! operation survives a crash; writers take the lock up front (`BEGIN IMMEDIATE`) and queue in process
//! behind one async mutex, so they wait their turn instead of failing with `SQLITE_BUSY`.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, SqliteConnection};
use tokio::sync::Mutex;

use super::{
    Claim, CurrencyCache, EntryRow, Finish, KeyRow, LedgerEntry, Movement, PoolState, Result,
    StoreError, StoreOptions, Transfer, Wallet, WalletFilter, WalletRow, cutoff, refused_movement,
    sql, update_for,
};
use crate::domain::{Amount, Currency, LedgerEntryKind, WalletId};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: Arc<Mutex<()>>,
    currencies: CurrencyCache,
}

impl SqliteStore {
    pub fn connect(url: &str, options: &StoreOptions) -> anyhow::Result<Self> {
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Another process (say `revwallet audit`) may hold the write lock briefly.
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.clamp(1, 8))
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);
        Ok(Self {
            pool,
            writer: Arc::new(Mutex::new(())),
            currencies: CurrencyCache::default(),
        })
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        conn.ping().await?;
        Ok(())
    }

    pub fn pool_state(&self) -> PoolState {
        PoolState {
            size: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Runs `work` in a write transaction. The in-process queue keeps writers from spinning on SQLite's lock.
    async fn write<T>(
        &self,
        work: impl for<'t> AsyncFnOnce(&'t mut SqliteConnection) -> Result<T>,
    ) -> Result<T> {
        let _turn = self.writer.lock().await;
        let mut tx: Tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let value = work(&mut *tx).await?;
        tx.commit().await?;
        Ok(value)
    }

    pub async fn wallet_currency(&self, id: WalletId) -> Result<Currency> {
        if let Some(currency) = self.currencies.get(id) {
            return Ok(currency);
        }
        let code: Option<String> = sqlx::query_scalar(sql::GET_CURRENCY)
            .bind(id.get())
            .fetch_optional(&self.pool)
            .await?;
        let code = code.ok_or(StoreError::WalletNotFound(id))?;
        let currency = Currency::parse(&code).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.currencies.put(id, currency);
        Ok(currency)
    }

    pub async fn create_wallet(
        &self,
        owner: &str,
        currency: Currency,
        initial: Amount,
        finish: Option<Finish<'_, Movement>>,
    ) -> Result<Movement> {
        let created = self
            .write(async |conn| {
                let wallet: Wallet = sqlx::query_as::<_, WalletRow>(sql::INSERT_WALLET)
                    .bind(owner)
                    .bind(currency.code())
                    .bind(initial.minor_units())
                    .bind(Utc::now())
                    .fetch_one(&mut *conn)
                    .await?
                    .try_into()?;
                let entry =
                    insert_entry(conn, &wallet, LedgerEntryKind::Opening, initial, None).await?;
                let created = Movement { wallet, entry };
                record(conn, finish, &created).await?;
                Ok(created)
            })
            .await?;
        self.currencies.put(created.wallet.id, currency);
        Ok(created)
    }

    pub async fn get_wallet(&self, id: WalletId) -> Result<Wallet> {
        let mut conn = self.pool.acquire().await?;
        get_open_wallet(&mut conn, id)
            .await?
            .ok_or(StoreError::WalletNotFound(id))
    }

    pub async fn list_wallets(&self, filter: &WalletFilter) -> Result<Vec<Wallet>> {
        sqlx::query_as::<_, WalletRow>(sql::LIST_WALLETS)
            .bind(filter.owner.as_deref())
            .bind(filter.currency.map(|c| c.code()))
            .bind(filter.after.map_or(0, WalletId::get))
            .bind(i64::from(filter.limit))
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(Wallet::try_from)
            .collect()
    }

    pub async fn move_money(
        &self,
        id: WalletId,
        kind: LedgerEntryKind,
        amount: Amount,
        finish: Option<Finish<'_, Movement>>,
    ) -> Result<Movement> {
        self.write(async |conn| {
            let wallet = change_balance(conn, id, kind, amount).await?;
            let entry = insert_entry(conn, &wallet, kind, amount, None).await?;
            let movement = Movement { wallet, entry };
            record(conn, finish, &movement).await?;
            Ok(movement)
        })
        .await
    }

    pub async fn transfer(
        &self,
        from: WalletId,
        to: WalletId,
        amount: Amount,
        finish: Option<Finish<'_, Transfer>>,
    ) -> Result<Transfer> {
        self.write(async |conn| {
            // The write lock is the database's: no row locks to order.
            for id in [from, to] {
                get_open_wallet(&mut *conn, id)
                    .await?
                    .ok_or(StoreError::WalletNotFound(id))?;
            }
            let debited = change_balance(conn, from, LedgerEntryKind::TransferOut, amount).await?;
            let credited = change_balance(conn, to, LedgerEntryKind::TransferIn, amount).await?;
            let out = insert_entry(
                conn,
                &debited,
                LedgerEntryKind::TransferOut,
                amount,
                Some(to),
            )
            .await?;
            let inn = insert_entry(
                conn,
                &credited,
                LedgerEntryKind::TransferIn,
                amount,
                Some(from),
            )
            .await?;
            let transfer = Transfer {
                from: Movement {
                    wallet: debited,
                    entry: out,
                },
                to: Movement {
                    wallet: credited,
                    entry: inn,
                },
            };
            record(conn, finish, &transfer).await?;
            Ok(transfer)
        })
        .await
    }

    pub async fn close_wallet(
        &self,
        id: WalletId,
        finish: Option<Finish<'_, Option<LedgerEntry>>>,
    ) -> Result<Option<LedgerEntry>> {
        self.write(async |conn| {
            let wallet = get_open_wallet(&mut *conn, id)
                .await?
                .ok_or(StoreError::WalletNotFound(id))?;
            let payout = if wallet.balance > Amount::ZERO {
                let closed = Wallet {
                    balance: Amount::ZERO,
                    ..wallet.clone()
                };
                Some(
                    insert_entry(
                        conn,
                        &closed,
                        LedgerEntryKind::Closing,
                        wallet.balance,
                        None,
                    )
                    .await?,
                )
            } else {
                None
            };
            sqlx::query(sql::CLOSE_WALLET)
                .bind(id.get())
                .bind(Utc::now())
                .execute(&mut *conn)
                .await?;
            record(conn, finish, &payout).await?;
            Ok(payout)
        })
        .await
    }

    pub async fn history(
        &self,
        id: WalletId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<LedgerEntry>> {
        let mut conn = self.pool.acquire().await?;
        get_open_wallet(&mut conn, id)
            .await?
            .ok_or(StoreError::WalletNotFound(id))?;
        sqlx::query_as::<_, EntryRow>(sql::LIST_ENTRIES)
            .bind(id.get())
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(LedgerEntry::try_from)
            .collect()
    }

    pub async fn count_open_wallets(&self) -> Result<i64> {
        Ok(sqlx::query_scalar(sql::COUNT_OPEN_WALLETS)
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn audit(&self) -> Result<Vec<super::AuditFinding>> {
        let rows: Vec<super::AuditRow> = sqlx::query_as(sql::AUDIT).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn claim_key(&self, key: &str, request_hash: &str) -> Result<Claim> {
        self.write(async |conn| {
            let now = Utc::now();
            let inserted = sqlx::query(sql::CLAIM_KEY)
                .bind(key)
                .bind(request_hash)
                .bind(now)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if inserted == 1 {
                return Ok(Claim::New);
            }
            let existing: KeyRow = sqlx::query_as(sql::GET_KEY)
                .bind(key)
                .fetch_one(&mut *conn)
                .await?;
            let abandoned = existing.is_abandoned(now);
            if let Some(claim) = existing.into_claim(request_hash)? {
                return Ok(claim);
            }
            if abandoned {
                sqlx::query(sql::TAKE_OVER_ABANDONED_KEY)
                    .bind(key)
                    .bind(now)
                    .bind(cutoff(super::ABANDONED_CLAIM_AFTER))
                    .execute(&mut *conn)
                    .await?;
                return Ok(Claim::New);
            }
            Err(StoreError::IdempotencyKeyInUse)
        })
        .await
    }

    pub async fn release_key(&self, key: &str) -> Result<()> {
        self.write(async |conn| {
            sqlx::query(sql::RELEASE_KEY)
                .bind(key)
                .execute(conn)
                .await?;
            Ok(())
        })
        .await
    }

    pub async fn expire_keys(&self) -> Result<u64> {
        self.write(async |conn| {
            Ok(sqlx::query(sql::EXPIRE_KEYS)
                .bind(cutoff(super::IDEMPOTENCY_RETENTION))
                .execute(conn)
                .await?
                .rows_affected())
        })
        .await
    }
}

async fn get_open_wallet(conn: &mut SqliteConnection, id: WalletId) -> Result<Option<Wallet>> {
    sqlx::query_as::<_, WalletRow>(sql::GET_OPEN_WALLET)
        .bind(id.get())
        .fetch_optional(conn)
        .await?
        .map(Wallet::try_from)
        .transpose()
}

async fn change_balance(
    conn: &mut SqliteConnection,
    id: WalletId,
    kind: LedgerEntryKind,
    amount: Amount,
) -> Result<Wallet> {
    let row: Option<WalletRow> = sqlx::query_as(update_for(kind))
        .bind(id.get())
        .bind(amount.minor_units())
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => row.try_into(),
        None => Err(refused_movement(
            id,
            kind,
            amount,
            get_open_wallet(conn, id).await?,
        )),
    }
}

async fn insert_entry(
    conn: &mut SqliteConnection,
    wallet: &Wallet,
    kind: LedgerEntryKind,
    amount: Amount,
    counterparty: Option<WalletId>,
) -> Result<LedgerEntry> {
    sqlx::query_as::<_, EntryRow>(sql::INSERT_ENTRY)
        .bind(wallet.id.get())
        .bind(kind.as_str())
        .bind(amount.minor_units())
        .bind(wallet.balance.minor_units())
        .bind(counterparty.map(WalletId::get))
        .bind(Utc::now())
        .fetch_one(conn)
        .await?
        .try_into()
}

async fn record<T>(
    conn: &mut SqliteConnection,
    finish: Option<Finish<'_, T>>,
    outcome: &T,
) -> Result<()> {
    if let Some(finish) = finish {
        let response = (finish.render)(outcome);
        sqlx::query(sql::STORE_RESPONSE)
            .bind(finish.key)
            .bind(i32::from(response.status))
            .bind(response.location)
            .bind(response.body)
            .execute(conn)
            .await?;
    }
    Ok(())
}
