//! Code both backends run word for word. sqlx's connection and pool types differ per database, and generic
//! bounds over `sqlx::Database` would repeat a dozen clauses on every function; these macros write the
//! same bodies once and instantiate them for `PgConnection`/`PgPool` and `SqliteConnection`/`SqlitePool`.

/// Free functions over one connection (plain or inside a transaction): reads, balance changes, ledger
/// inserts and stored idempotent answers.
macro_rules! connection_statements {
    ($conn:ty) => {
        pub(super) async fn get_open_wallet(
            conn: &mut $conn,
            id: $crate::domain::WalletId,
        ) -> $crate::store::Result<Option<$crate::store::Wallet>> {
            sqlx::query_as::<_, $crate::store::WalletRow>($crate::store::sql::GET_OPEN_WALLET)
                .bind(id.get())
                .fetch_optional(conn)
                .await?
                .map($crate::store::Wallet::try_from)
                .transpose()
        }

        /// One leg of a transfer: debit or credit, explained when refused.
        async fn change_balance(
            conn: &mut $conn,
            id: $crate::domain::WalletId,
            kind: $crate::domain::LedgerEntryKind,
            amount: $crate::domain::Amount,
        ) -> $crate::store::Result<$crate::store::Wallet> {
            let row: Option<$crate::store::WalletRow> =
                sqlx::query_as($crate::store::update_for(kind))
                    .bind(id.get())
                    .bind(amount.minor_units())
                    .fetch_optional(&mut *conn)
                    .await?;
            match row {
                Some(row) => row.try_into(),
                None => Err($crate::store::refused_movement(
                    id,
                    kind,
                    amount,
                    get_open_wallet(conn, id).await?,
                )),
            }
        }

        async fn insert_entry(
            conn: &mut $conn,
            wallet: &$crate::store::Wallet,
            kind: $crate::domain::LedgerEntryKind,
            amount: $crate::domain::Amount,
            counterparty: Option<$crate::domain::WalletId>,
        ) -> $crate::store::Result<$crate::store::LedgerEntry> {
            sqlx::query_as::<_, $crate::store::EntryRow>($crate::store::sql::INSERT_ENTRY)
                .bind(wallet.id.get())
                .bind(kind.as_str())
                .bind(amount.minor_units())
                .bind(wallet.balance.minor_units())
                .bind(counterparty.map($crate::domain::WalletId::get))
                .bind(chrono::Utc::now())
                .fetch_one(conn)
                .await?
                .try_into()
        }

        /// Stores the answer of an idempotent request in the transaction of its operation.
        async fn record<T>(
            conn: &mut $conn,
            finish: Option<$crate::store::Finish<'_, T>>,
            outcome: &T,
        ) -> $crate::store::Result<()> {
            if let Some(finish) = finish {
                let response = (finish.render)(outcome);
                sqlx::query($crate::store::sql::STORE_RESPONSE)
                    .bind(finish.key)
                    .bind(i32::from(response.status))
                    .bind(response.location)
                    .bind(response.body)
                    .execute(conn)
                    .await?;
            }
            Ok(())
        }

        /// Creates a wallet and its opening entry (inside the caller's transaction).
        async fn insert_wallet(
            conn: &mut $conn,
            owner: &str,
            currency: $crate::domain::Currency,
            initial: $crate::domain::Amount,
        ) -> $crate::store::Result<$crate::store::Movement> {
            let wallet: $crate::store::Wallet =
                sqlx::query_as::<_, $crate::store::WalletRow>($crate::store::sql::INSERT_WALLET)
                    .bind(owner)
                    .bind(currency.code())
                    .bind(initial.minor_units())
                    .bind(chrono::Utc::now())
                    .fetch_one(&mut *conn)
                    .await?
                    .try_into()?;
            let entry = insert_entry(
                conn,
                &wallet,
                $crate::domain::LedgerEntryKind::Opening,
                initial,
                None,
            )
            .await?;
            Ok($crate::store::Movement { wallet, entry })
        }

        /// Closes an open wallet (inside the caller's transaction, which holds its row): pays out what remains.
        async fn close_in(
            conn: &mut $conn,
            id: $crate::domain::WalletId,
        ) -> $crate::store::Result<Option<$crate::store::LedgerEntry>> {
            use $crate::domain::Amount;
            let wallet = get_open_wallet(&mut *conn, id)
                .await?
                .ok_or($crate::store::StoreError::WalletNotFound(id))?;
            let payout = if wallet.balance > Amount::ZERO {
                let closed = $crate::store::Wallet {
                    balance: Amount::ZERO,
                    ..wallet.clone()
                };
                let kind = $crate::domain::LedgerEntryKind::Closing;
                Some(insert_entry(conn, &closed, kind, wallet.balance, None).await?)
            } else {
                None
            };
            sqlx::query($crate::store::sql::CLOSE_WALLET)
                .bind(id.get())
                .bind(chrono::Utc::now())
                .execute(&mut *conn)
                .await?;
            Ok(payout)
        }

        /// Both legs of a transfer, once the wallets are locked (PostgreSQL) or the database is (SQLite).
        async fn transfer_in(
            conn: &mut $conn,
            from: $crate::domain::WalletId,
            to: $crate::domain::WalletId,
            amount: $crate::domain::Amount,
        ) -> $crate::store::Result<$crate::store::Transfer> {
            use $crate::domain::LedgerEntryKind::{TransferIn, TransferOut};
            let debited = change_balance(conn, from, TransferOut, amount).await?;
            let credited = change_balance(conn, to, TransferIn, amount).await?;
            let out = insert_entry(conn, &debited, TransferOut, amount, Some(to)).await?;
            let inn = insert_entry(conn, &credited, TransferIn, amount, Some(from)).await?;
            Ok($crate::store::Transfer {
                from: $crate::store::Movement {
                    wallet: debited,
                    entry: out,
                },
                to: $crate::store::Movement {
                    wallet: credited,
                    entry: inn,
                },
            })
        }
    };
}

/// Methods that only read through the pool, identical for both stores (`self.pool`, `self.currencies`).
macro_rules! pool_reads {
    () => {
        pub async fn ping(&self) -> $crate::store::Result<()> {
            use sqlx::Connection;
            let mut conn = $crate::store::acquire(&self.pool).await?;
            conn.ping().await?;
            Ok(())
        }

        pub fn pool_state(&self) -> $crate::store::PoolState {
            $crate::store::PoolState {
                size: self.pool.size(),
                idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
                max: self.pool.options().get_max_connections(),
            }
        }

        pub async fn close(&self) {
            self.pool.close().await;
        }

        pub async fn wallet_currency(
            &self,
            id: $crate::domain::WalletId,
        ) -> $crate::store::Result<$crate::domain::Currency> {
            use $crate::store::StoreError;
            if let Some(currency) = self.currencies.get(id) {
                return Ok(currency);
            }
            let code: Option<String> = sqlx::query_scalar($crate::store::sql::GET_CURRENCY)
                .bind(id.get())
                .fetch_optional(&mut *$crate::store::acquire(&self.pool).await?)
                .await?;
            let code = code.ok_or(StoreError::WalletNotFound(id))?;
            let currency = $crate::domain::Currency::parse(&code)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            self.currencies.put(id, currency);
            Ok(currency)
        }

        pub async fn get_wallet(
            &self,
            id: $crate::domain::WalletId,
        ) -> $crate::store::Result<$crate::store::Wallet> {
            let mut conn = $crate::store::acquire(&self.pool).await?;
            get_open_wallet(&mut conn, id)
                .await?
                .ok_or($crate::store::StoreError::WalletNotFound(id))
        }

        pub async fn list_wallets(
            &self,
            filter: &$crate::store::WalletFilter,
        ) -> $crate::store::Result<Vec<$crate::store::Wallet>> {
            sqlx::query_as::<_, $crate::store::WalletRow>($crate::store::sql::LIST_WALLETS)
                .bind(filter.owner.as_deref())
                .bind(filter.currency.map(|c| c.code()))
                .bind(filter.after.map_or(0, $crate::domain::WalletId::get))
                .bind(i64::from(filter.limit))
                .fetch_all(&mut *$crate::store::acquire(&self.pool).await?)
                .await?
                .into_iter()
                .map($crate::store::Wallet::try_from)
                .collect()
        }

        pub async fn history(
            &self,
            id: $crate::domain::WalletId,
            before: Option<i64>,
            limit: u32,
        ) -> $crate::store::Result<Vec<$crate::store::LedgerEntry>> {
            let mut conn = $crate::store::acquire(&self.pool).await?;
            get_open_wallet(&mut conn, id)
                .await?
                .ok_or($crate::store::StoreError::WalletNotFound(id))?;
            sqlx::query_as::<_, $crate::store::EntryRow>($crate::store::sql::LIST_ENTRIES)
                .bind(id.get())
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?
                .into_iter()
                .map($crate::store::LedgerEntry::try_from)
                .collect()
        }

        pub async fn count_open_wallets(&self) -> $crate::store::Result<i64> {
            Ok(sqlx::query_scalar($crate::store::sql::COUNT_OPEN_WALLETS)
                .fetch_one(&mut *$crate::store::acquire(&self.pool).await?)
                .await?)
        }

        pub async fn audit(&self) -> $crate::store::Result<Vec<$crate::store::AuditFinding>> {
            let rows: Vec<$crate::store::AuditRow> = sqlx::query_as($crate::store::sql::AUDIT)
                .fetch_all(&mut *$crate::store::acquire(&self.pool).await?)
                .await?;
            Ok(rows.into_iter().map(Into::into).collect())
        }
    };
}

pub(super) use {connection_statements, pool_reads};
