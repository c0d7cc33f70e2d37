//! Code both backends run word for word.
//!
//! sqlx's connection and pool types differ per database, and generic bounds over `sqlx::Database` would repeat a
//! dozen clauses on every function. So `shared_statements!` writes the shared bodies once, as an ordinary module
//! with ordinary imports, and each backend instantiates it for its own connection type: `statements` inside
//! `postgres` and inside `sqlite`. The reads through the pool are an `impl` block on the backend's store type
//! (fields `pool` and `facts`); the plain helpers below need no macro at all.

use super::{Result, StoreError, Wallet, sql};
use crate::domain::{Amount, LedgerEntryKind, WalletId};

/// Turns a debit or credit that matched no row into the reason why.
pub(super) fn refused_movement(
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

pub(super) fn is_debit(kind: LedgerEntryKind) -> bool {
    matches!(
        kind,
        LedgerEntryKind::Withdrawal | LedgerEntryKind::TransferOut | LedgerEntryKind::Closing
    )
}

pub(super) fn update_for(kind: LedgerEntryKind) -> &'static str {
    if is_debit(kind) {
        sql::DEBIT
    } else {
        sql::CREDIT
    }
}

/// Takes a connection from the pool, recording the wait as `revwallet_db_pool_acquire_duration_seconds`.
pub(super) async fn acquire<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
) -> Result<sqlx::pool::PoolConnection<DB>> {
    let started = std::time::Instant::now();
    let connection = pool.acquire().await;
    metrics::histogram!("revwallet_db_pool_acquire_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    Ok(connection?)
}

/// Expands to `mod statements` for one backend: `$store` is its store type (in the calling module), `$conn` its
/// connection type. Everything inside reads as plain Rust; the parent module brings it in with `use statements::*`.
macro_rules! shared_statements {
    ($store:ident, $conn:ty) => {
        mod statements {
            use sqlx::Connection as _;

            use chrono::{DateTime, Utc};

            use super::$store;
            use crate::domain::{Amount, Currency, HoldId, HoldStatus, LedgerEntryKind, WalletId};
            use crate::store::cache::WalletFacts;
            use crate::store::events::{self, Event, EventRow};
            use crate::store::keys::{self, ApiKeyRow};
            use crate::store::rows::{AuditRow, EntryRow, HoldRow, WalletRow};
            use crate::store::shared::{acquire, is_debit, refused_movement, update_for};
            use crate::store::{
                ApiKey, AuditFinding, Capture, HistoryFilter, Hold, LedgerEntry, Memo, Movement,
                NewApiKey, PoolState, Result, StoreError, StoredResponse, Transfer, Wallet,
                WalletFilter, WebSession, sql,
            };

            type Conn = $conn;

            pub(in crate::store) async fn get_open_wallet(
                conn: &mut Conn,
                id: WalletId,
            ) -> Result<Option<Wallet>> {
                sqlx::query_as::<_, WalletRow>(sql::GET_OPEN_WALLET)
                    .bind(id.get())
                    .bind(Utc::now())
                    .fetch_optional(conn)
                    .await?
                    .map(Wallet::try_from)
                    .transpose()
            }

            /// One debit or credit, explained when refused. Inside a transaction: a debit refused while holds past
            /// their expiry still count releases them and tries once more.
            pub(in crate::store) async fn change_balance(
                conn: &mut Conn,
                id: WalletId,
                kind: LedgerEntryKind,
                amount: Amount,
            ) -> Result<Wallet> {
                let update = async |conn: &mut Conn| -> Result<Option<WalletRow>> {
                    Ok(sqlx::query_as(update_for(kind))
                        .bind(id.get())
                        .bind(amount.minor_units())
                        .bind(Utc::now())
                        .fetch_optional(conn)
                        .await?)
                };
                let mut row = update(&mut *conn).await?;
                if row.is_none()
                    && is_debit(kind)
                    && expire_due_holds(conn, id, Utc::now()).await? > 0
                {
                    row = update(&mut *conn).await?;
                }
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

            pub(in crate::store) async fn insert_entry(
                conn: &mut Conn,
                wallet: &Wallet,
                kind: LedgerEntryKind,
                amount: Amount,
                counterparty: Option<WalletId>,
                memo: &Memo,
            ) -> Result<LedgerEntry> {
                sqlx::query_as::<_, EntryRow>(sql::INSERT_ENTRY)
                    .bind(wallet.id.get())
                    .bind(kind.as_str())
                    .bind(amount.minor_units())
                    .bind(wallet.balance.minor_units())
                    .bind(counterparty.map(WalletId::get))
                    .bind(chrono::Utc::now())
                    .bind(memo.actor.as_deref())
                    .bind(memo.reference.as_deref())
                    .bind(memo.description.as_deref())
                    .bind(memo.metadata.as_deref())
                    .fetch_one(conn)
                    .await?
                    .try_into()
            }

            /// Inserts a key with its answer, in the operation's transaction; `IdempotencyKeyInUse` if another
            /// request has the key (the caller's transaction must then be undone).
            pub(in crate::store) async fn record_answer(
                conn: &mut Conn,
                key: &str,
                request_hash: &str,
                response: StoredResponse,
            ) -> Result<()> {
                let inserted = sqlx::query(sql::INSERT_ANSWER)
                    .bind(key)
                    .bind(request_hash)
                    .bind(chrono::Utc::now())
                    .bind(i32::from(response.status))
                    .bind(response.location)
                    .bind(response.body)
                    .execute(conn)
                    .await?
                    .rows_affected();
                match inserted {
                    1 => Ok(()),
                    _ => Err(StoreError::IdempotencyKeyInUse),
                }
            }

            /// Inserts the first key if there is none (the caller holds the lock that makes this atomic).
            pub(in crate::store) async fn insert_first_key(
                conn: &mut Conn,
                key: &NewApiKey,
            ) -> Result<bool> {
                let inserted = sqlx::query(keys::INSERT_FIRST_KEY)
                    .bind(&key.id)
                    .bind(&key.secret_hash)
                    .bind(&key.name)
                    .bind(key.role.as_str())
                    .bind(key.owner.as_deref())
                    .bind(chrono::Utc::now())
                    .execute(conn)
                    .await?
                    .rows_affected();
                Ok(inserted == 1)
            }

            /// Creates a wallet and its opening entry (inside the caller's transaction).
            pub(in crate::store) async fn insert_wallet(
                conn: &mut Conn,
                owner: &str,
                currency: Currency,
                initial: Amount,
                memo: &Memo,
            ) -> Result<Movement> {
                let wallet: Wallet = sqlx::query_as::<_, WalletRow>(sql::INSERT_WALLET)
                    .bind(owner)
                    .bind(currency.code())
                    .bind(initial.minor_units())
                    .bind(chrono::Utc::now())
                    .fetch_one(&mut *conn)
                    .await?
                    .try_into()?;
                let kind = LedgerEntryKind::Opening;
                let entry = insert_entry(conn, &wallet, kind, initial, None, memo).await?;
                Ok(Movement { wallet, entry })
            }

            /// Closes an open wallet (inside the caller's transaction, which holds its row): pays out what remains.
            pub(in crate::store) async fn apply_close(
                conn: &mut Conn,
                id: WalletId,
                memo: &Memo,
            ) -> Result<Option<LedgerEntry>> {
                let wallet = get_open_wallet(&mut *conn, id)
                    .await?
                    .ok_or(StoreError::WalletNotFound(id))?;
                // Holds past their expiry do not keep a wallet open; pending ones do (checked again below).
                expire_due_holds(conn, id, Utc::now()).await?;
                if wallet.held > Amount::ZERO {
                    return Err(StoreError::WalletHasHolds(id));
                }
                let payout = if wallet.balance > Amount::ZERO {
                    let closed = Wallet {
                        balance: Amount::ZERO,
                        ..wallet.clone()
                    };
                    let kind = LedgerEntryKind::Closing;
                    Some(insert_entry(conn, &closed, kind, wallet.balance, None, memo).await?)
                } else {
                    None
                };
                let closed = sqlx::query(sql::CLOSE_WALLET)
                    .bind(id.get())
                    .bind(chrono::Utc::now())
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                if closed == 0 {
                    return Err(StoreError::WalletHasHolds(id));
                }
                Ok(payout)
            }

            /// Both legs of a transfer, once the wallets are locked (PostgreSQL) or the database is (SQLite).
            pub(in crate::store) async fn apply_transfer(
                conn: &mut Conn,
                from: WalletId,
                to: WalletId,
                amount: Amount,
                memo: &Memo,
            ) -> Result<Transfer> {
                use LedgerEntryKind::{TransferIn, TransferOut};
                let debited = change_balance(conn, from, TransferOut, amount).await?;
                let credited = change_balance(conn, to, TransferIn, amount).await?;
                let out = insert_entry(conn, &debited, TransferOut, amount, Some(to), memo).await?;
                let into =
                    insert_entry(conn, &credited, TransferIn, amount, Some(from), memo).await?;
                Ok(Transfer {
                    from: Movement {
                        wallet: debited,
                        entry: out,
                    },
                    to: Movement {
                        wallet: credited,
                        entry: into,
                    },
                })
            }

            /// Marks the wallet's pending holds past their expiry `expired` and gives their money back; returns
            /// how many it released. Inside a transaction: the wallet row is locked first (PostgreSQL), then the due
            /// holds, skipping any that a capture or void is finishing right now (that one decided first).
            pub(in crate::store) async fn expire_due_holds(
                conn: &mut Conn,
                id: WalletId,
                now: DateTime<Utc>,
            ) -> Result<u64> {
                sqlx::query(super::LOCK_WALLET)
                    .bind(id.get())
                    .execute(&mut *conn)
                    .await?;
                let amounts: Vec<i64> = sqlx::query_scalar(super::EXPIRE_DUE_HOLDS)
                    .bind(id.get())
                    .bind(now)
                    .fetch_all(&mut *conn)
                    .await?;
                let total = amounts.iter().try_fold(0_i64, |sum, a| sum.checked_add(*a));
                let total =
                    total.ok_or_else(|| StoreError::Corrupt(format!("held of wallet {id}")))?;
                if total > 0 {
                    release(conn, id, total).await?;
                }
                if !amounts.is_empty() {
                    metrics::counter!("revwallet_holds_expired_total")
                        .increment(amounts.len() as u64);
                }
                Ok(amounts.len() as u64)
            }

            async fn release(conn: &mut Conn, id: WalletId, amount: i64) -> Result<()> {
                let released = sqlx::query(sql::RELEASE)
                    .bind(id.get())
                    .bind(amount)
                    .execute(conn)
                    .await?
                    .rows_affected();
                if released == 1 {
                    Ok(())
                } else {
                    Err(StoreError::Corrupt(format!(
                        "wallet {id} holds less than its holds"
                    )))
                }
            }

            pub(in crate::store) async fn find_hold(
                conn: &mut Conn,
                id: HoldId,
            ) -> Result<Option<Hold>> {
                sqlx::query_as::<_, HoldRow>(sql::GET_HOLD)
                    .bind(id.get())
                    .bind(Utc::now())
                    .fetch_optional(conn)
                    .await?
                    .map(Hold::try_from)
                    .transpose()
            }

            /// Places a hold (inside the caller's transaction): reserves the amount if it is available, releasing
            /// expired holds first when that is what stands in the way.
            pub(in crate::store) async fn apply_hold(
                conn: &mut Conn,
                wallet: WalletId,
                amount: Amount,
                expires_at: DateTime<Utc>,
                memo: &Memo,
            ) -> Result<Hold> {
                let reserve = async |conn: &mut Conn| -> Result<bool> {
                    let row: Option<i64> = sqlx::query_scalar(sql::RESERVE)
                        .bind(wallet.get())
                        .bind(amount.minor_units())
                        .fetch_optional(conn)
                        .await?;
                    Ok(row.is_some())
                };
                let mut reserved = reserve(&mut *conn).await?;
                if !reserved && expire_due_holds(conn, wallet, Utc::now()).await? > 0 {
                    reserved = reserve(&mut *conn).await?;
                }
                if !reserved {
                    return Err(match get_open_wallet(conn, wallet).await? {
                        None => StoreError::WalletNotFound(wallet),
                        Some(current) => StoreError::InsufficientFunds {
                            wallet: current,
                            requested: amount,
                        },
                    });
                }
                sqlx::query_as::<_, HoldRow>(sql::INSERT_HOLD)
                    .bind(wallet.get())
                    .bind(amount.minor_units())
                    .bind(Utc::now())
                    .bind(expires_at)
                    .bind(memo.reference.as_deref())
                    .bind(memo.description.as_deref())
                    .bind(memo.metadata.as_deref())
                    .fetch_one(conn)
                    .await?
                    .try_into()
            }

            /// Why a capture or void of `id` matched no pending hold.
            pub(in crate::store) async fn refused_finish(
                conn: &mut Conn,
                id: HoldId,
            ) -> Result<StoreError> {
                Ok(match find_hold(conn, id).await? {
                    None => StoreError::HoldNotFound(id),
                    Some(hold) if hold.status != HoldStatus::Pending => {
                        StoreError::HoldNotPending(Box::new(hold))
                    }
                    Some(hold) => StoreError::CaptureTooLarge(Box::new(hold)),
                })
            }

            /// Takes a pending hold out of `pending` (`captured` with an amount, else `voided`); explained when
            /// refused. The caller then moves the money and releases the reservation.
            pub(in crate::store) async fn finish_hold(
                conn: &mut Conn,
                id: HoldId,
                captured: Option<Amount>,
            ) -> Result<Hold> {
                let status = if captured.is_some() {
                    HoldStatus::Captured
                } else {
                    HoldStatus::Voided
                };
                let row: Option<HoldRow> = sqlx::query_as(sql::FINISH_HOLD)
                    .bind(id.get())
                    .bind(status.as_str())
                    .bind(Utc::now())
                    .bind(captured.map(Amount::minor_units))
                    .fetch_optional(&mut *conn)
                    .await?;
                match row {
                    Some(row) => row.try_into(),
                    None => Err(refused_finish(conn, id).await?),
                }
            }

            /// Voids a pending hold (inside the caller's transaction): its whole amount is available again.
            #[allow(
                dead_code,
                reason = "PostgreSQL voids in one statement (postgres/holds.rs)"
            )]
            pub(in crate::store) async fn apply_void(conn: &mut Conn, id: HoldId) -> Result<Hold> {
                let hold = finish_hold(conn, id, None).await?;
                release(conn, hold.wallet_id, hold.amount.minor_units()).await?;
                Ok(hold)
            }

            /// The money side of a capture whose hold is already `captured` (inside the caller's transaction,
            /// which on PostgreSQL has locked the wallets in id order): the reservation is released, then the
            /// amount leaves the wallet as a withdrawal or as a transfer into `to`.
            pub(in crate::store) async fn apply_capture(
                conn: &mut Conn,
                hold: Hold,
                amount: Amount,
                to: Option<WalletId>,
                memo: &Memo,
            ) -> Result<Capture> {
                release(conn, hold.wallet_id, hold.amount.minor_units()).await?;
                match to {
                    Some(to) => {
                        let moved = apply_transfer(conn, hold.wallet_id, to, amount, memo).await?;
                        Ok(Capture {
                            hold,
                            from: moved.from,
                            to: Some(moved.to),
                        })
                    }
                    None => {
                        let kind = LedgerEntryKind::Withdrawal;
                        let wallet = change_balance(conn, hold.wallet_id, kind, amount).await?;
                        let entry = insert_entry(conn, &wallet, kind, amount, None, memo).await?;
                        Ok(Capture {
                            hold,
                            from: Movement { wallet, entry },
                            to: None,
                        })
                    }
                }
            }

            /// A filtered page of a wallet's entries: newest first before `cursor`, or oldest first after it.
            async fn entries_page(
                conn: &mut Conn,
                id: WalletId,
                filter: &HistoryFilter,
                cursor: Option<i64>,
                limit: u32,
                ascending: bool,
            ) -> Result<Vec<LedgerEntry>> {
                // The period as a range of ids (two probes of the time index), so that the id-ordered scan starts
                // and stops near the period instead of walking the whole ledger (docs/adr/0110-...).
                let probe = async |conn: &mut Conn,
                                   statement: &str,
                                   at: DateTime<Utc>|
                       -> Result<Option<i64>> {
                    Ok(sqlx::query_scalar(statement)
                        .bind(id.get())
                        .bind(at)
                        .fetch_optional(conn)
                        .await?)
                };
                let mut above = if ascending { cursor } else { None };
                let mut below = if ascending { None } else { cursor };
                if let Some(from) = filter.from {
                    let bound =
                        probe(&mut *conn, sql::LAST_ID_BEFORE, from - sql::CLOCK_SLACK).await?;
                    above = above.max(bound);
                }
                if let Some(to) = filter.to {
                    let bound =
                        probe(&mut *conn, sql::FIRST_ID_FROM, to + sql::CLOCK_SLACK).await?;
                    below = match (below, bound) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
                let statement = sql::list_entries(filter, ascending);
                let mut query = sqlx::query_as::<_, EntryRow>(&statement)
                    .bind(id.get())
                    .bind(above.unwrap_or(0))
                    .bind(below.unwrap_or(i64::MAX))
                    .bind(i64::from(limit));
                if let Some(kind) = filter.kind {
                    query = query.bind(kind.as_str());
                }
                if let Some(reference) = &filter.reference {
                    query = query.bind(reference.clone());
                }
                if let Some(from) = filter.from {
                    query = query.bind(from);
                }
                if let Some(to) = filter.to {
                    query = query.bind(to);
                }
                query
                    .fetch_all(conn)
                    .await?
                    .into_iter()
                    .map(LedgerEntry::try_from)
                    .collect()
            }

            /// Reads through the pool, identical for both stores.
            impl $store {
                pub async fn ping(&self) -> Result<()> {
                    let mut conn = acquire(&self.pool).await?;
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

                pub async fn wallet_facts(&self, id: WalletId) -> Result<WalletFacts> {
                    if let Some(facts) = self.facts.get(id) {
                        return Ok(facts);
                    }
                    let row: Option<(String, String)> = sqlx::query_as(sql::GET_FACTS)
                        .bind(id.get())
                        .fetch_optional(&mut *acquire(&self.pool).await?)
                        .await?;
                    let (code, owner) = row.ok_or(StoreError::WalletNotFound(id))?;
                    let currency =
                        Currency::parse(&code).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    let facts = WalletFacts {
                        currency,
                        owner: owner.into(),
                    };
                    self.facts.put(id, facts.clone());
                    Ok(facts)
                }

                pub async fn get_wallet(&self, id: WalletId) -> Result<Wallet> {
                    self.open_wallet(id)
                        .await?
                        .ok_or(StoreError::WalletNotFound(id))
                }

                /// Up to `filter.limit` wallets (the `Store` asks for one more to know if a page follows).
                pub async fn list_wallets(&self, filter: &WalletFilter) -> Result<Vec<Wallet>> {
                    sqlx::query_as::<_, WalletRow>(sql::LIST_WALLETS)
                        .bind(filter.owner.as_deref())
                        .bind(filter.currency.map(|c| c.code()))
                        .bind(filter.after.map_or(0, WalletId::get))
                        .bind(i64::from(filter.limit))
                        .bind(Utc::now())
                        .fetch_all(&mut *acquire(&self.pool).await?)
                        .await?
                        .into_iter()
                        .map(Wallet::try_from)
                        .collect()
                }

                pub async fn history(
                    &self,
                    id: WalletId,
                    filter: &HistoryFilter,
                    before: Option<i64>,
                    limit: u32,
                ) -> Result<Vec<LedgerEntry>> {
                    let mut conn = acquire(&self.pool).await?;
                    get_open_wallet(&mut conn, id)
                        .await?
                        .ok_or(StoreError::WalletNotFound(id))?;
                    entries_page(&mut conn, id, filter, before, limit, false).await
                }

                /// The last entry of a wallet at (`inclusive`) or before `at` (open or closed: the caller checks).
                pub async fn entry_as_of(
                    &self,
                    id: WalletId,
                    at: DateTime<Utc>,
                    inclusive: bool,
                ) -> Result<Option<LedgerEntry>> {
                    sqlx::query_as::<_, EntryRow>(&sql::entry_as_of(inclusive))
                        .bind(id.get())
                        .bind(at)
                        .fetch_optional(&mut *acquire(&self.pool).await?)
                        .await?
                        .map(LedgerEntry::try_from)
                        .transpose()
                }

                /// A page of a wallet's entries in ledger order, strictly after the entry id `after`, for a
                /// statement.
                pub async fn statement_page(
                    &self,
                    id: WalletId,
                    filter: &HistoryFilter,
                    after: Option<i64>,
                    limit: u32,
                ) -> Result<Vec<LedgerEntry>> {
                    let mut conn = acquire(&self.pool).await?;
                    entries_page(&mut conn, id, filter, after, limit, true).await
                }

                /// Whether a request has taken this idempotency key (finished or not).
                pub async fn key_taken(&self, key: &str) -> Result<bool> {
                    let mut conn = acquire(&self.pool).await?;
                    Ok(sqlx::query_scalar(sql::KEY_TAKEN)
                        .bind(key)
                        .fetch_one(&mut *conn)
                        .await?)
                }

                pub async fn get_hold(&self, id: HoldId) -> Result<Hold> {
                    let mut conn = acquire(&self.pool).await?;
                    find_hold(&mut conn, id)
                        .await?
                        .ok_or(StoreError::HoldNotFound(id))
                }

                pub async fn list_holds(
                    &self,
                    id: WalletId,
                    status: Option<HoldStatus>,
                    before: Option<i64>,
                    limit: u32,
                ) -> Result<Vec<Hold>> {
                    let mut conn = acquire(&self.pool).await?;
                    get_open_wallet(&mut conn, id)
                        .await?
                        .ok_or(StoreError::WalletNotFound(id))?;
                    sqlx::query_as::<_, HoldRow>(sql::LIST_HOLDS)
                        .bind(id.get())
                        .bind(status.map(HoldStatus::as_str))
                        .bind(before.unwrap_or(i64::MAX))
                        .bind(i64::from(limit))
                        .bind(Utc::now())
                        .fetch_all(&mut *conn)
                        .await?
                        .into_iter()
                        .map(Hold::try_from)
                        .collect()
                }

                /// Open wallets with pending holds past their expiry, for the sweep.
                pub async fn wallets_with_due_holds(&self, limit: i64) -> Result<Vec<WalletId>> {
                    let ids: Vec<i64> = sqlx::query_scalar(sql::WALLETS_WITH_DUE_HOLDS)
                        .bind(Utc::now())
                        .bind(limit)
                        .fetch_all(&mut *acquire(&self.pool).await?)
                        .await?;
                    Ok(ids.into_iter().map(WalletId::from_db).collect())
                }

                /// The money held in open wallets, by currency code, in minor units.
                pub async fn held_by_currency(&self) -> Result<Vec<(String, i64)>> {
                    Ok(sqlx::query_as(sql::HELD_BY_CURRENCY)
                        .fetch_all(&mut *acquire(&self.pool).await?)
                        .await?)
                }

                pub async fn count_open_wallets(&self) -> Result<i64> {
                    Ok(sqlx::query_scalar(sql::COUNT_OPEN_WALLETS)
                        .fetch_one(&mut *acquire(&self.pool).await?)
                        .await?)
                }

                /// Inserts a key; `None` when a key with its id or secret already exists.
                pub async fn insert_api_key(&self, key: &NewApiKey) -> Result<Option<ApiKey>> {
                    sqlx::query_as::<_, ApiKeyRow>(&keys::insert_key_sql())
                        .bind(&key.id)
                        .bind(&key.secret_hash)
                        .bind(&key.name)
                        .bind(key.role.as_str())
                        .bind(key.owner.as_deref())
                        .bind(chrono::Utc::now())
                        .fetch_optional(&mut *acquire(&self.pool).await?)
                        .await?
                        .map(ApiKey::try_from)
                        .transpose()
                }

                pub async fn api_key(&self, id: &str) -> Result<Option<ApiKey>> {
                    sqlx::query_as::<_, ApiKeyRow>(&keys::get_key_sql())
                        .bind(id)
                        .fetch_optional(&mut *acquire(&self.pool).await?)
                        .await?
                        .map(ApiKey::try_from)
                        .transpose()
                }

                /// The keys among `ids` that still exist (to refresh a cache of them).
                pub async fn api_keys_by_id(&self, ids: &[String]) -> Result<Vec<ApiKey>> {
                    let ids = serde_json::to_string(ids)
                        .map_err(|error| StoreError::Internal(error.to_string()))?;
                    sqlx::query_as::<_, ApiKeyRow>(super::KEYS_BY_ID)
                        .bind(ids)
                        .fetch_all(&mut *acquire(&self.pool).await?)
                        .await?
                        .into_iter()
                        .map(ApiKey::try_from)
                        .collect()
                }

                pub async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
                    sqlx::query_as::<_, ApiKeyRow>(&keys::list_keys_sql())
                        .fetch_all(&mut *acquire(&self.pool).await?)
                        .await?
                        .into_iter()
                        .map(ApiKey::try_from)
                        .collect()
                }

                /// Revokes a key (revoking a revoked key changes nothing); `ApiKeyNotFound` for an unknown id.
                pub async fn revoke_api_key(&self, id: &str) -> Result<()> {
                    let revoked = sqlx::query(keys::REVOKE_KEY)
                        .bind(id)
                        .bind(chrono::Utc::now())
                        .execute(&mut *acquire(&self.pool).await?)
                        .await?
                        .rows_affected();
                    if revoked == 0 && self.api_key(id).await?.is_none() {
                        return Err(StoreError::ApiKeyNotFound(id.to_owned()));
                    }
                    Ok(())
                }

                pub async fn count_api_keys(&self) -> Result<i64> {
                    Ok(sqlx::query_scalar(keys::COUNT_KEYS)
                        .fetch_one(&mut *acquire(&self.pool).await?)
                        .await?)
                }

                pub async fn insert_web_session(
                    &self,
                    token_hash: &str,
                    key_id: &str,
                    expires_at: chrono::DateTime<chrono::Utc>,
                ) -> Result<()> {
                    sqlx::query(keys::INSERT_SESSION)
                        .bind(token_hash)
                        .bind(key_id)
                        .bind(chrono::Utc::now())
                        .bind(expires_at)
                        .execute(&mut *acquire(&self.pool).await?)
                        .await?;
                    Ok(())
                }

                /// The unexpired session with this token hash.
                pub async fn web_session(&self, token_hash: &str) -> Result<Option<WebSession>> {
                    Ok(sqlx::query_as(keys::GET_SESSION)
                        .bind(token_hash)
                        .bind(chrono::Utc::now())
                        .fetch_optional(&mut *acquire(&self.pool).await?)
                        .await?)
                }

                pub async fn delete_web_session(&self, token_hash: &str) -> Result<()> {
                    sqlx::query(keys::DELETE_SESSION)
                        .bind(token_hash)
                        .execute(&mut *acquire(&self.pool).await?)
                        .await?;
                    Ok(())
                }

                pub async fn expire_web_sessions(&self) -> Result<u64> {
                    Ok(sqlx::query(keys::EXPIRE_SESSIONS)
                        .bind(chrono::Utc::now())
                        .execute(&mut *acquire(&self.pool).await?)
                        .await?
                        .rows_affected())
                }

                /// Up to `limit` events numbered after `after`, in order; only `owner`'s wallets' when given.
                pub async fn events_after(
                    &self,
                    after: i64,
                    limit: u32,
                    owner: Option<&str>,
                ) -> Result<Vec<Event>> {
                    let mut conn = acquire(&self.pool).await?;
                    let page: Vec<EventRow> = sqlx::query_as(events::EVENTS_AFTER)
                        .bind(after)
                        .bind(owner)
                        .bind(i64::from(limit))
                        .fetch_all(&mut *conn)
                        .await?;
                    let ids = |of: fn(&EventRow) -> Option<i64>| -> Result<Option<String>> {
                        let ids: Vec<i64> = page.iter().filter_map(of).collect();
                        if ids.is_empty() {
                            return Ok(None);
                        }
                        serde_json::to_string(&ids)
                            .map(Some)
                            .map_err(|error| StoreError::Internal(error.to_string()))
                    };
                    let mut entries = std::collections::HashMap::new();
                    if let Some(ids) = ids(|row| row.entry_id)? {
                        let rows: Vec<EntryRow> = sqlx::query_as(super::ENTRIES_BY_ID)
                            .bind(ids)
                            .fetch_all(&mut *conn)
                            .await?;
                        for row in rows {
                            let entry = LedgerEntry::try_from(row)?;
                            entries.insert(entry.id, entry);
                        }
                    }
                    let mut holds = std::collections::HashMap::new();
                    if let Some(ids) = ids(|row| row.hold_id)? {
                        let rows: Vec<HoldRow> = sqlx::query_as(super::HOLDS_BY_ID)
                            .bind(ids)
                            .fetch_all(&mut *conn)
                            .await?;
                        for row in rows {
                            let hold = Hold::try_from(row)?;
                            holds.insert(hold.id.get(), hold);
                        }
                    }
                    page.into_iter()
                        .map(|row| row.into_event(&entries, &holds))
                        .collect()
                }

                pub async fn count_unsequenced_events(&self) -> Result<i64> {
                    Ok(sqlx::query_scalar(events::COUNT_UNSEQUENCED)
                        .fetch_one(&mut *acquire(&self.pool).await?)
                        .await?)
                }

                pub fn feed(&self) -> &crate::store::events::Feed {
                    &self.feed
                }

                pub async fn audit(&self) -> Result<Vec<AuditFinding>> {
                    let rows: Vec<AuditRow> = sqlx::query_as(sql::AUDIT)
                        .fetch_all(&mut *acquire(&self.pool).await?)
                        .await?;
                    Ok(rows.into_iter().map(Into::into).collect())
                }
            }
        }
        use statements::*;
    };
}

pub(super) use shared_statements;
