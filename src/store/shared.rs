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

            use super::$store;
            use crate::domain::{Amount, Currency, LedgerEntryKind, WalletId};
            use crate::store::cache::WalletFacts;
            use crate::store::keys::{self, ApiKeyRow};
            use crate::store::rows::{AuditRow, EntryRow, WalletRow};
            use crate::store::shared::{acquire, refused_movement, update_for};
            use crate::store::{
                ApiKey, AuditFinding, Finish, LedgerEntry, Movement, NewApiKey, PoolState, Result,
                StoreError, StoredResponse, Transfer, Wallet, WalletFilter, WebSession, sql,
            };

            type Conn = $conn;

            pub(in crate::store) async fn get_open_wallet(
                conn: &mut Conn,
                id: WalletId,
            ) -> Result<Option<Wallet>> {
                sqlx::query_as::<_, WalletRow>(sql::GET_OPEN_WALLET)
                    .bind(id.get())
                    .fetch_optional(conn)
                    .await?
                    .map(Wallet::try_from)
                    .transpose()
            }

            /// One debit or credit, explained when refused.
            pub(in crate::store) async fn change_balance(
                conn: &mut Conn,
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

            pub(in crate::store) async fn insert_entry(
                conn: &mut Conn,
                wallet: &Wallet,
                kind: LedgerEntryKind,
                amount: Amount,
                counterparty: Option<WalletId>,
                actor: Option<&str>,
            ) -> Result<LedgerEntry> {
                sqlx::query_as::<_, EntryRow>(sql::INSERT_ENTRY)
                    .bind(wallet.id.get())
                    .bind(kind.as_str())
                    .bind(amount.minor_units())
                    .bind(wallet.balance.minor_units())
                    .bind(counterparty.map(WalletId::get))
                    .bind(chrono::Utc::now())
                    .bind(actor)
                    .fetch_one(conn)
                    .await?
                    .try_into()
            }

            /// Stores the answer of an idempotent request in the transaction of its operation.
            pub(in crate::store) async fn record<T>(
                conn: &mut Conn,
                finish: Option<Finish<'_, T>>,
                outcome: &T,
            ) -> Result<()> {
                match finish {
                    Some(finish) => record_answer(conn, finish.key, (finish.render)(outcome)).await,
                    None => Ok(()),
                }
            }

            pub(in crate::store) async fn record_answer(
                conn: &mut Conn,
                key: &str,
                response: StoredResponse,
            ) -> Result<()> {
                sqlx::query(sql::STORE_RESPONSE)
                    .bind(key)
                    .bind(i32::from(response.status))
                    .bind(response.location)
                    .bind(response.body)
                    .execute(conn)
                    .await?;
                Ok(())
            }

            /// Creates a wallet and its opening entry (inside the caller's transaction).
            pub(in crate::store) async fn insert_wallet(
                conn: &mut Conn,
                owner: &str,
                currency: Currency,
                initial: Amount,
                actor: Option<&str>,
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
                let entry = insert_entry(conn, &wallet, kind, initial, None, actor).await?;
                Ok(Movement { wallet, entry })
            }

            /// Closes an open wallet (inside the caller's transaction, which holds its row): pays out what remains.
            pub(in crate::store) async fn apply_close(
                conn: &mut Conn,
                id: WalletId,
                actor: Option<&str>,
            ) -> Result<Option<LedgerEntry>> {
                let wallet = get_open_wallet(&mut *conn, id)
                    .await?
                    .ok_or(StoreError::WalletNotFound(id))?;
                let payout = if wallet.balance > Amount::ZERO {
                    let closed = Wallet {
                        balance: Amount::ZERO,
                        ..wallet.clone()
                    };
                    let kind = LedgerEntryKind::Closing;
                    Some(insert_entry(conn, &closed, kind, wallet.balance, None, actor).await?)
                } else {
                    None
                };
                sqlx::query(sql::CLOSE_WALLET)
                    .bind(id.get())
                    .bind(chrono::Utc::now())
                    .execute(&mut *conn)
                    .await?;
                Ok(payout)
            }

            /// Both legs of a transfer, once the wallets are locked (PostgreSQL) or the database is (SQLite).
            pub(in crate::store) async fn apply_transfer(
                conn: &mut Conn,
                from: WalletId,
                to: WalletId,
                amount: Amount,
                actor: Option<&str>,
            ) -> Result<Transfer> {
                use LedgerEntryKind::{TransferIn, TransferOut};
                let debited = change_balance(conn, from, TransferOut, amount).await?;
                let credited = change_balance(conn, to, TransferIn, amount).await?;
                let out =
                    insert_entry(conn, &debited, TransferOut, amount, Some(to), actor).await?;
                let into =
                    insert_entry(conn, &credited, TransferIn, amount, Some(from), actor).await?;
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
                    let mut conn = acquire(&self.pool).await?;
                    get_open_wallet(&mut conn, id)
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
                        .fetch_all(&mut *acquire(&self.pool).await?)
                        .await?
                        .into_iter()
                        .map(Wallet::try_from)
                        .collect()
                }

                pub async fn history(
                    &self,
                    id: WalletId,
                    before: Option<i64>,
                    limit: u32,
                ) -> Result<Vec<LedgerEntry>> {
                    let mut conn = acquire(&self.pool).await?;
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
