//! PostgreSQL backend. A lone deposit or withdrawal is one data-modifying statement (one round trip), and
//! concurrent ones across wallets share one transaction and its commit (`group_commit`); transfers lock both rows
//! in id order so that opposite transfers never deadlock.

mod batcher;
mod group_commit;
mod holds;
#[cfg(test)]
mod pgbench_scripts;
mod reads;
#[cfg(test)]
mod scratch;
mod sequencer;

use std::sync::LazyLock;

use chrono::Utc;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, PgConnection};

use super::cache::{FactsCache, HoldsCache, WalletFacts};
use super::events::Feed;
use super::idempotency::{FailedClaims, KeyRow, cutoff};
use super::rows::{EntryRow, WalletRow};
use super::shared::{acquire, is_debit, refused_movement, shared_statements};
use super::{
    Claim, Finish, IDEMPOTENCY_RETENTION, LedgerEntry, Memo, Movement, NewApiKey, Result,
    StoreError, StoreOptions, StoredResponse, Transfer, Wallet, sql,
};
use crate::domain::{Amount, Currency, LedgerEntryKind, WalletId};

/// The keys whose ids are in a JSON array of strings.
const KEYS_BY_ID: &str = "select id, secret_hash, name, role, owner, created_at, revoked_at from api_keys \
     where id in (select jsonb_array_elements_text($1::jsonb))";

/// Whole ledger entries and holds by id (a JSON array of numbers), for the event feed.
const ENTRIES_BY_ID: &str =
    "select * from transactions where id in (select jsonb_array_elements_text($1::jsonb)::bigint)";
const HOLDS_BY_ID: &str =
    "select * from holds where id in (select jsonb_array_elements_text($1::jsonb)::bigint)";

/// Both wallets of a transfer (or of a capture into another wallet), open ones only, locked in id order: the
/// order every path locks wallets in, so no two transactions wait for each other.
const LOCK_TWO_WALLETS: &str =
    "select id from wallets where id in ($1, $2) and closed_at is null order by id for update";

/// Locks two wallets with `LOCK_TWO_WALLETS`; either one missing or closed is `WalletNotFound`.
async fn lock_two_wallets(tx: &mut PgConnection, first: WalletId, second: WalletId) -> Result<()> {
    let locked: Vec<i64> = sqlx::query_scalar(LOCK_TWO_WALLETS)
        .bind(first.get())
        .bind(second.get())
        .fetch_all(&mut *tx)
        .await?;
    match [first, second]
        .into_iter()
        .find(|id| !locked.contains(&id.get()))
    {
        Some(missing) => Err(StoreError::WalletNotFound(missing)),
        None => Ok(()),
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Update and ledger insert in one statement: the entry records the balance the update produced.
static MOVE_CREDIT: LazyLock<String> = LazyLock::new(|| movement_statement(sql::CREDIT));
static MOVE_DEBIT: LazyLock<String> = LazyLock::new(|| movement_statement(sql::DEBIT));

/// `$1` wallet, `$2` amount, `$3` now, `$4` kind, `$5`–`$8` the memo (actor, reference, description, metadata).
fn movement_statement(update: &str) -> String {
    format!(
        "with moved as ({update}), entry as ( \
             insert into transactions (wallet_id, kind, amount, balance_after, created_at, actor, \
                                       reference, description, metadata) \
             select id, $4, $2, balance, $3, $5, $6, $7, $8 from moved \
             returning id, wallet_id, kind, amount, balance_after, counterparty_id, created_at, actor, \
                       reference, description, metadata) \
         select m.id, m.owner, m.currency, m.balance, m.held, m.created_at, \
                e.id as entry_id, e.wallet_id, e.kind, e.amount, e.balance_after, e.counterparty_id, \
                e.created_at as entry_created_at, e.actor, e.reference, e.description, e.metadata \
         from moved m cross join entry e"
    )
}

/// Locks a wallet's row before its holds are expired (see `expire_due_holds`).
const LOCK_WALLET: &str = "select id from wallets where id = $1 for update";

/// Marks a wallet's due holds expired. `skip locked`: a hold a capture or void is finishing right now was still
/// pending when that request decided, so it is that request's; waiting for it could deadlock (it waits for the
/// wallet row this transaction holds).
const EXPIRE_DUE_HOLDS: &str = "update holds set status = 'expired', finished_at = $2 \
     where id in (select id from holds where wallet_id = $1 and status = 'pending' and expires_at <= $2 \
                  for update skip locked) \
     returning amount";

#[derive(Debug, sqlx::FromRow)]
struct MovementRow {
    #[sqlx(flatten)]
    wallet: WalletRow,
    entry_id: i64,
    wallet_id: i64,
    kind: String,
    amount: i64,
    balance_after: i64,
    counterparty_id: Option<i64>,
    entry_created_at: chrono::DateTime<Utc>,
    actor: Option<String>,
    reference: Option<String>,
    description: Option<String>,
    metadata: Option<String>,
}

impl TryFrom<MovementRow> for Movement {
    type Error = StoreError;
    fn try_from(row: MovementRow) -> Result<Self> {
        let entry = EntryRow {
            id: row.entry_id,
            wallet_id: row.wallet_id,
            kind: row.kind,
            amount: row.amount,
            balance_after: row.balance_after,
            counterparty_id: row.counterparty_id,
            created_at: row.entry_created_at,
            actor: row.actor,
            reference: row.reference,
            description: row.description,
            metadata: row.metadata,
        };
        Ok(Movement {
            wallet: row.wallet.try_into()?,
            entry: entry.try_into()?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct PgStore {
    pub(in crate::store) pool: PgPool,
    facts: FactsCache,
    pub(in crate::store) holds: HoldsCache,
    failed_claims: FailedClaims,
    /// Deposits, withdrawals and transfers, batched across wallets into shared transactions.
    writes: group_commit::GroupCommit,
    feed: Feed,
    /// The events listener's own connection (`sequencer`), apart from the pool requests use.
    listen_pool: PgPool,
    /// Balance reads, batched into one query when they arrive together.
    reads: reads::Reads,
}

impl PgStore {
    pub fn connect(url: &str, options: &StoreOptions) -> anyhow::Result<Self> {
        let connect: PgConnectOptions = url
            .parse::<PgConnectOptions>()?
            // A statement stuck behind a lock or a dying server answers within seconds, never hangs a request.
            .options([("statement_timeout", "5s"), ("lock_timeout", "4s")])
            .log_statements(tracing::log::LevelFilter::Trace);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            // sqlx would ping every connection it hands out: a second round trip per operation. A connection
            // that died is found on use instead (that request answers 503) and is then discarded.
            .test_before_acquire(false)
            .connect_lazy_with(connect.clone());
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .connect_lazy_with(connect);
        Ok(Self {
            pool,
            reads: reads::Reads::new(),
            facts: FactsCache::default(),
            holds: HoldsCache::default(),
            failed_claims: FailedClaims::default(),
            writes: group_commit::GroupCommit::new(options.batch_writes),
            feed: Feed::default(),
            listen_pool,
        })
    }

    /// The wallet if it exists and is open (a balance read).
    async fn open_wallet(&self, id: WalletId) -> Result<Option<Wallet>> {
        self.reads.open_wallet(&self.pool, id).await
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        // sqlx takes a PostgreSQL advisory lock, so replicas starting together migrate one at a time.
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub async fn create_wallet(
        &self,
        owner: &str,
        currency: Currency,
        initial: Amount,
        memo: &Memo,
        finish: Option<Finish<'_, Movement>>,
    ) -> Result<Movement> {
        let mut conn = acquire(&self.pool).await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let created = insert_wallet(&mut tx, owner, currency, initial, memo).await?;
        record(&mut tx, finish, &created).await?;
        tx.commit().await?;
        self.feed.wrote();
        self.facts.put(
            created.wallet.id,
            WalletFacts {
                currency,
                owner: owner.into(),
            },
        );
        Ok(created)
    }

    pub async fn move_money(
        &self,
        id: WalletId,
        kind: LedgerEntryKind,
        amount: Amount,
        memo: &Memo,
        finish: Option<Finish<'_, Movement>>,
    ) -> Result<Movement> {
        let result = self
            .writes
            .submit_move(&self.pool, id, kind, amount, memo, finish)
            .await;
        self.feed.wrote();
        result
    }

    pub async fn transfer(
        &self,
        from: WalletId,
        to: WalletId,
        amount: Amount,
        memo: &Memo,
        finish: Option<Finish<'_, Transfer>>,
    ) -> Result<Transfer> {
        let result = self
            .writes
            .submit_transfer(&self.pool, from, to, amount, memo, finish)
            .await;
        self.feed.wrote();
        result
    }

    pub async fn close_wallet(
        &self,
        id: WalletId,
        memo: &Memo,
        finish: Option<Finish<'_, Option<LedgerEntry>>>,
    ) -> Result<Option<LedgerEntry>> {
        let mut conn = acquire(&self.pool).await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        // Hold the row so that no deposit lands between reading the balance and closing.
        sqlx::query("select id from wallets where id = $1 for update")
            .bind(id.get())
            .execute(&mut *tx)
            .await?;
        let payout = apply_close(&mut tx, id, memo).await?;
        record(&mut tx, finish, &payout).await?;
        tx.commit().await?;
        self.feed.wrote();
        Ok(payout)
    }

    /// The table lock makes "none yet" and the insert one step when several replicas start at once.
    pub async fn insert_first_api_key(&self, key: &NewApiKey) -> Result<bool> {
        let mut conn = acquire(&self.pool).await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::query("lock table api_keys in exclusive mode")
            .execute(&mut *tx)
            .await?;
        let inserted = insert_first_key(&mut tx, key).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Claims a key another request took (`crate::idempotency`): its answer, or a conflict while it runs.
    pub async fn claim_key(&self, key: &str, request_hash: &str) -> Result<Claim> {
        let inserted = sqlx::query(sql::CLAIM_KEY)
            .bind(key)
            .bind(request_hash)
            .bind(Utc::now())
            .execute(&mut *acquire(&self.pool).await?)
            .await?
            .rows_affected();
        if inserted == 1 {
            return Ok(Claim::New);
        }
        let now = Utc::now();
        let Some(existing) = sqlx::query_as::<_, KeyRow>(sql::GET_KEY)
            .bind(key)
            .fetch_optional(&mut *acquire(&self.pool).await?)
            .await?
        else {
            // Released between our insert and read: let the client retry.
            return Err(StoreError::IdempotencyKeyInUse);
        };
        let abandoned = existing.is_abandoned(now) || self.failed_claims.contains(key);
        if let Some(claim) = existing.into_claim(request_hash)? {
            return Ok(claim);
        }
        if abandoned {
            let taken = sqlx::query(sql::TAKE_OVER_ABANDONED_KEY)
                .bind(key)
                .bind(now)
                .bind(self.failed_claims.take_over_before(key))
                .execute(&mut *acquire(&self.pool).await?)
                .await?
                .rows_affected();
            if taken == 1 {
                self.failed_claims.remove(key);
                return Ok(Claim::New);
            }
        }
        Err(StoreError::IdempotencyKeyInUse)
    }

    pub async fn store_answer(
        &self,
        key: &str,
        request_hash: &str,
        answer: StoredResponse,
    ) -> Result<()> {
        let mut conn = acquire(&self.pool).await?;
        record_answer(&mut conn, key, request_hash, answer).await
    }

    pub async fn release_key(&self, key: &str) -> Result<()> {
        self.failed_claims.insert(key);
        sqlx::query(sql::RELEASE_KEY)
            .bind(key)
            .execute(&mut *acquire(&self.pool).await?)
            .await?;
        self.failed_claims.remove(key);
        Ok(())
    }

    pub fn failed_claims(&self) -> Vec<String> {
        self.failed_claims.keys()
    }

    pub async fn expire_keys(&self) -> Result<u64> {
        Ok(sqlx::query(sql::EXPIRE_KEYS)
            .bind(cutoff(IDEMPOTENCY_RETENTION))
            .execute(&mut *acquire(&self.pool).await?)
            .await?
            .rows_affected())
    }
}

/// One deposit or withdrawal as a single statement in its own implicit transaction: one round trip.
async fn move_once(
    pool: &PgPool,
    id: WalletId,
    kind: LedgerEntryKind,
    amount: Amount,
    memo: &Memo,
) -> Result<Movement> {
    let mut conn = acquire(pool).await?;
    if let Some(movement) = apply_movement(&mut conn, id, kind, amount, memo, Utc::now()).await? {
        return Ok(movement);
    }
    // Refused: perhaps only because holds past their expiry still count. Release them and try once more.
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let movement = apply_movement_releasing(&mut tx, id, kind, amount, memo).await?;
    tx.commit().await?;
    Ok(movement)
}

/// A deposit or withdrawal inside a transaction; a debit refused while expired holds still count releases them
/// and tries once more. Explained when refused.
async fn apply_movement_releasing(
    conn: &mut PgConnection,
    id: WalletId,
    kind: LedgerEntryKind,
    amount: Amount,
    memo: &Memo,
) -> Result<Movement> {
    if let Some(movement) = apply_movement(conn, id, kind, amount, memo, Utc::now()).await? {
        return Ok(movement);
    }
    if is_debit(kind)
        && expire_due_holds(conn, id, Utc::now()).await? > 0
        && let Some(movement) = apply_movement(conn, id, kind, amount, memo, Utc::now()).await?
    {
        return Ok(movement);
    }
    let current = get_open_wallet(conn, id).await?;
    Err(refused_movement(id, kind, amount, current))
}

/// The update and its ledger entry; `None` when the wallet is missing, closed, or refuses the amount.
async fn apply_movement(
    conn: &mut PgConnection,
    id: WalletId,
    kind: LedgerEntryKind,
    amount: Amount,
    memo: &Memo,
    at: chrono::DateTime<Utc>,
) -> Result<Option<Movement>> {
    let statement = if is_debit(kind) {
        &MOVE_DEBIT
    } else {
        &MOVE_CREDIT
    };
    sqlx::query_as::<_, MovementRow>(statement.as_str())
        .bind(id.get())
        .bind(amount.minor_units())
        .bind(at)
        .bind(kind.as_str())
        .bind(memo.actor.as_deref())
        .bind(memo.reference.as_deref())
        .bind(memo.description.as_deref())
        .bind(memo.metadata.as_deref())
        .fetch_optional(conn)
        .await?
        .map(Movement::try_from)
        .transpose()
}

impl PgStore {
    pub async fn close(&self) {
        self.listen_pool.close().await;
        self.pool.close().await;
    }
}

shared_statements!(PgStore, sqlx::PgConnection);

/// Stores the answer of an idempotent request in the transaction of its operation. (SQLite records a batch's
/// answers together at its commit instead.)
pub(super) async fn record<T>(
    conn: &mut PgConnection,
    finish: Option<Finish<'_, T>>,
    outcome: &T,
) -> Result<()> {
    match finish {
        Some(finish) => {
            let answer = (finish.render)(outcome);
            record_answer(conn, finish.key, finish.request_hash, answer).await
        }
        None => Ok(()),
    }
}
