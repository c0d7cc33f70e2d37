//! SQLite backend: the embedded default for one machine. WAL with `synchronous=FULL` so an acknowledged
//! operation survives a crash; writers take the lock up front (`BEGIN IMMEDIATE`) and queue in process for one
//! writer connection, so they wait their turn instead of failing with `SQLITE_BUSY`, and the writes queued
//! together share a commit (`group_commit`). The writer has a connection of its own, apart from the readers'
//! pool: WAL lets readers and the one writer run side by side, so a write never waits for a reader to give a
//! connection back.

mod at_once;
mod group_commit;

use group_commit::{Isolation, KeyClaim};

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::SqliteConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::oneshot;

use super::cache::{FactsCache, HoldsCache, WalletFacts};
use super::events::{Feed, count_written};
use super::idempotency::{FailedClaims, KeyRow, cutoff};
use super::shared::{acquire, shared_statements};
use super::{
    Capture, Claim, Finish, Hold, IDEMPOTENCY_RETENTION, LedgerEntry, Memo, Movement, NewApiKey,
    Result, StoreError, StoreOptions, StoredResponse, Transfer, Wallet, sql,
};
use crate::domain::{Amount, Currency, HoldId, LedgerEntryKind, WalletId};

/// The keys whose ids are in a JSON array of strings.
const KEYS_BY_ID: &str = "select id, secret_hash, name, role, owner, created_at, revoked_at from api_keys \
     where id in (select value from json_each($1))";

/// Whole ledger entries and holds by id (a JSON array of numbers), for the event feed.
const ENTRIES_BY_ID: &str =
    "select * from transactions where id in (select value from json_each($1))";
const HOLDS_BY_ID: &str = "select * from holds where id in (select value from json_each($1))";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The write transaction holds the database's lock: nothing to lock row by row (see `expire_due_holds`).
const LOCK_WALLET: &str = "select id from wallets where id = $1";
const EXPIRE_DUE_HOLDS: &str = "update holds set status = 'expired', finished_at = $2 \
     where wallet_id = $1 and status = 'pending' and expires_at <= $2 returning amount";

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Reads, and migrations.
    pub(in crate::store) pool: SqlitePool,
    /// The one writer connection and its batches.
    writer: Arc<group_commit::GroupCommit>,
    facts: FactsCache,
    pub(in crate::store) holds: HoldsCache,
    failed_claims: FailedClaims,
    feed: Feed,
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
            // An embedded database does not go away under us; skip sqlx's ping per acquisition.
            .test_before_acquire(false)
            .connect_lazy_with(connect.clone());
        let write_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(false)
            // The writer never checkpoints: a commit that did would make the whole queue behind it wait while the
            // WAL is copied into the database file. `checkpoint_wal` does it on a reader connection instead, and
            // closing the store does the last one.
            .connect_lazy_with(connect.pragma("wal_autocheckpoint", "0"));
        let feed = Feed::default();
        Ok(Self {
            pool,
            writer: Arc::new(group_commit::GroupCommit::new(
                write_pool,
                options.batch_writes,
                feed.clone(),
            )),
            facts: FactsCache::default(),
            holds: HoldsCache::default(),
            failed_claims: FailedClaims::default(),
            feed,
        })
    }

    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    /// Runs `work` in a write transaction (shared with the writes queued beside it) and answers once committed.
    pub(in crate::store) async fn write<T>(
        &self,
        work: impl for<'t> AsyncFnOnce(&'t mut SqliteConnection) -> Result<T>,
    ) -> Result<T> {
        self.writer.write(work).await
    }

    pub async fn create_wallet(
        &self,
        owner: &str,
        currency: Currency,
        initial: Amount,
        memo: &Memo,
        finish: Option<Finish<'_, Movement>>,
    ) -> Result<Movement> {
        let created = self
            .writer
            .write_keyed(Isolation::Savepoint, finish, async |conn| {
                let created = insert_wallet(conn, owner, currency, initial, memo).await?;
                Ok(created)
            })
            .await?;
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
        // Bare: the balance's update refuses before any change but releasing expired holds, and the entry's
        // insert cannot be refused once the balance moved.
        // Batched, the move waits in a queue for the first turn at the writer, its own or an earlier write's.
        let mut queued = self.writer.batching().then(|| {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let (done, outcome) = oneshot::channel();
            let seq = NEXT.fetch_add(1, Ordering::Relaxed);
            self.writer.queue_move(at_once::MoveOrder {
                id,
                kind,
                amount,
                memo: memo.clone(),
                key: finish.map(|finish| (finish.key.to_owned(), finish.request_hash.to_owned())),
                seq,
                done,
            });
            QueuedMove {
                writer: &self.writer,
                seq,
                outcome,
                taken: false,
            }
        });
        let at_once =
            async |conn: &mut SqliteConnection, claim: Option<KeyClaim<'_>>| match &mut queued {
                Some(queued) => queued.run(conn).await,
                None => at_once::move_money(conn, id, kind, amount, memo, claim).await,
            };
        self.writer
            .write_keyed_at_once(Isolation::Bare, finish, at_once, async |conn| {
                let wallet = change_balance(conn, id, kind, amount).await?;
                let entry = insert_entry(conn, &wallet, kind, amount, None, memo).await?;
                let movement = Movement { wallet, entry };
                Ok(movement)
            })
            .await
    }

    pub async fn transfer(
        &self,
        from: WalletId,
        to: WalletId,
        amount: Amount,
        memo: &Memo,
        finish: Option<Finish<'_, Transfer>>,
    ) -> Result<Transfer> {
        let at_once = async |conn: &mut SqliteConnection, claim: Option<KeyClaim<'_>>| {
            at_once::transfer(conn, from, to, amount, memo, claim).await
        };
        self.writer
            .write_keyed_at_once(Isolation::Savepoint, finish, at_once, async |conn| {
                // The write lock is the database's: no row locks to order.
                for id in [from, to] {
                    get_open_wallet(&mut *conn, id)
                        .await?
                        .ok_or(StoreError::WalletNotFound(id))?;
                }
                let transfer = apply_transfer(conn, from, to, amount, memo).await?;
                Ok(transfer)
            })
            .await
    }

    pub async fn close_wallet(
        &self,
        id: WalletId,
        memo: &Memo,
        finish: Option<Finish<'_, Option<LedgerEntry>>>,
    ) -> Result<Option<LedgerEntry>> {
        self.writer
            .write_keyed(Isolation::Savepoint, finish, async |conn| {
                let payout = apply_close(conn, id, memo).await?;
                Ok(payout)
            })
            .await
    }

    /// The database lock of the write transaction makes "none yet" and the insert one step.
    pub async fn insert_first_api_key(&self, key: &NewApiKey) -> Result<bool> {
        self.write(async |conn| insert_first_key(conn, key).await)
            .await
    }

    pub async fn place_hold(
        &self,
        wallet: WalletId,
        amount: Amount,
        expires_at: chrono::DateTime<Utc>,
        memo: &Memo,
        finish: Option<Finish<'_, Hold>>,
    ) -> Result<Hold> {
        let at_once = async |conn: &mut SqliteConnection, claim: Option<KeyClaim<'_>>| {
            at_once::place_hold(conn, wallet, amount, expires_at, memo, claim).await
        };
        self.writer
            .write_keyed_at_once(Isolation::Savepoint, finish, at_once, async |conn| {
                let hold = apply_hold(conn, wallet, amount, expires_at, memo).await?;
                Ok(hold)
            })
            .await
    }

    pub async fn void_hold(&self, id: HoldId, finish: Option<Finish<'_, Hold>>) -> Result<Hold> {
        let at_once = async |conn: &mut SqliteConnection, claim: Option<KeyClaim<'_>>| {
            at_once::void_hold(conn, id, claim).await
        };
        self.writer
            .write_keyed_at_once(Isolation::Savepoint, finish, at_once, async |conn| {
                let hold = apply_void(conn, id).await?;
                Ok(hold)
            })
            .await
    }

    pub async fn capture_hold(
        &self,
        id: HoldId,
        amount: Amount,
        to: Option<WalletId>,
        memo: &Memo,
        finish: Option<Finish<'_, Capture>>,
    ) -> Result<Capture> {
        let at_once = async |conn: &mut SqliteConnection, claim: Option<KeyClaim<'_>>| {
            at_once::capture_hold(conn, id, amount, to, memo, claim).await
        };
        self.writer
            .write_keyed_at_once(Isolation::Savepoint, finish, at_once, async |conn| {
                let hold = finish_hold(conn, id, Some(amount)).await?;
                let capture = apply_capture(conn, hold, amount, to, memo).await?;
                Ok(capture)
            })
            .await
    }

    pub async fn expire_wallet_holds(&self, wallet: WalletId) -> Result<u64> {
        self.write(async |conn| expire_due_holds(conn, wallet, Utc::now()).await)
            .await
    }

    /// Claims a key another request took (`crate::idempotency`): its answer, or a conflict while it runs. A new
    /// claim (the key was freed meanwhile) is answered before its commit: its request releases it at once.
    /// Bare (no savepoint): each statement is atomic, and only the last one (a take-over) changes anything.
    pub async fn claim_key(&self, key: &str, request_hash: &str) -> Result<Claim> {
        let early = |claim: &Result<Claim>| matches!(claim, Ok(Claim::New));
        self.writer
            .write_answering_early(
                Isolation::Bare,
                async |conn| {
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
                    let abandoned = existing.is_abandoned(now) || self.failed_claims.contains(key);
                    if let Some(claim) = existing.into_claim(request_hash)? {
                        return Ok(claim);
                    }
                    if abandoned {
                        sqlx::query(sql::TAKE_OVER_ABANDONED_KEY)
                            .bind(key)
                            .bind(now)
                            .bind(self.failed_claims.take_over_before(key))
                            .execute(&mut *conn)
                            .await?;
                        self.failed_claims.remove(key);
                        return Ok(Claim::New);
                    }
                    Err(StoreError::IdempotencyKeyInUse)
                },
                early,
            )
            .await
    }

    /// The wallet if it exists and is open (a balance read).
    async fn open_wallet(&self, id: WalletId) -> Result<Option<Wallet>> {
        get_open_wallet(&mut *acquire(&self.pool).await?, id).await
    }

    pub async fn store_answer(
        &self,
        key: &str,
        request_hash: &str,
        answer: StoredResponse,
    ) -> Result<()> {
        self.write(async |conn| record_answer(conn, key, request_hash, answer).await)
            .await
    }

    pub async fn release_key(&self, key: &str) -> Result<()> {
        self.failed_claims.insert(key);
        self.write(async |conn| {
            sqlx::query(sql::RELEASE_KEY)
                .bind(key)
                .execute(conn)
                .await?;
            Ok(())
        })
        .await?;
        self.failed_claims.remove(key);
        Ok(())
    }

    pub fn failed_claims(&self) -> Vec<String> {
        self.failed_claims.keys()
    }

    pub async fn expire_keys(&self) -> Result<u64> {
        self.write(async |conn| {
            Ok(sqlx::query(sql::EXPIRE_KEYS)
                .bind(cutoff(IDEMPOTENCY_RETENTION))
                .execute(conn)
                .await?
                .rows_affected())
        })
        .await
    }
}

/// New events by type after a position, and the highest position (the SQLite "sequencer" only counts and announces:
/// the triggers number events at insert).
const EVENTS_SINCE: &str = "select type, count(*) as n, max(position) as top from events where position > $1 \
     group by type";

/// How often the WAL is folded into the database file while writes go on: each checkpoint copies many batches'
/// pages at once and costs the database file one fsync.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// WAL frames (pages of 4 KiB, 256 MiB) past which the writer pauses once to let SQLite start the WAL over,
/// seldom enough that the pause (tens of milliseconds on a loaded disk) stays out of the latency's tail. Under
/// sustained writes the file has still reached 950 MiB, the restart coming rounds late (ADR 0151).
const RESTART_WAL_AT: i64 = 65_536;

impl SqliteStore {
    /// Writes number their events as they commit; this wakes the feed's readers after each write, counts the
    /// events written, and looks again every second for writes by another process. Alongside, it checkpoints
    /// the WAL (`checkpoint_wal`), which the writer leaves to it.
    pub async fn run_sequencer(&self) {
        tokio::join!(self.announce_events(), self.checkpoint_wal());
    }

    /// After writes, at most every `CHECKPOINT_EVERY`, copies the WAL's pages into the database file on a reader
    /// connection (docs/adr/0149-sqlite-checkpoints-off-the-writer.md). Passive: it waits for neither readers nor
    /// the writer, and copies what no reader still needs. `fold_wal` says when the WAL starts over.
    async fn checkpoint_wal(&self) {
        let mut checkpointed_at = self.writer.commits();
        loop {
            tokio::time::sleep(CHECKPOINT_EVERY).await;
            let commits = self.writer.commits();
            if commits == checkpointed_at {
                continue;
            }
            match self.fold_wal(RESTART_WAL_AT).await {
                Ok(_) => checkpointed_at = commits,
                Err(error) => tracing::debug!(%error, "could not checkpoint the WAL (will retry)"),
            }
        }
    }

    /// One round of `checkpoint_wal`: a passive checkpoint on a reader connection and, once the WAL holds
    /// `restart_at` frames, what it takes for SQLite to start it over. SQLite does so when a write transaction
    /// begins with every frame already copied; under a steady stream of batches some are always committed during
    /// the checkpoint, so without this the file would grow for as long as the writes go on. A second pass
    /// copies what was written during the first (its fsync is the slow part), then the writer copies the few
    /// frames left between two batches, which wait for it (docs/adr/0151-sqlite-wal-restarts-under-load.md).
    pub(in crate::store) async fn fold_wal(&self, restart_at: i64) -> Result<WalFrames> {
        let wal = self.checkpoint().await?;
        if wal.frames < restart_at {
            return Ok(wal);
        }
        self.checkpoint().await?;
        let (copied, paused) = self
            .writer
            .between_batches(async |conn| {
                let started = Instant::now();
                let copied = checkpoint_on(conn).await?;
                Ok((copied, started.elapsed()))
            })
            .await?;
        // Writes waited this long: the tail latency a restart adds, worth seeing next to the p99s.
        tracing::info!(
            frames = copied.frames,
            copied = copied.copied,
            writes_paused_ms = paused.as_millis() as u64,
            "the writer checkpointed the WAL so that it starts over"
        );
        Ok(copied)
    }

    /// One passive checkpoint on a reader connection: the WAL's frames, and how many of them are now in the
    /// database file.
    pub(in crate::store) async fn checkpoint(&self) -> Result<WalFrames> {
        checkpoint_on(&mut *acquire(&self.pool).await?).await
    }

    async fn announce_events(&self) {
        self.feed.set_hearing(true);
        let mut seen: Option<i64> = None;
        loop {
            let result: Result<Vec<(String, i64, i64)>> = async {
                let mut conn = acquire(&self.pool).await?;
                let after = match seen {
                    Some(seen) => seen,
                    None => {
                        let top: Option<i64> =
                            sqlx::query_scalar("select max(position) from events")
                                .fetch_one(&mut *conn)
                                .await?;
                        *seen.insert(top.unwrap_or(0))
                    }
                };
                Ok(sqlx::query_as(EVENTS_SINCE)
                    .bind(after)
                    .fetch_all(&mut *conn)
                    .await?)
            }
            .await;
            match result {
                Ok(rows) if !rows.is_empty() => {
                    count_written(rows.iter().map(|(t, n, _)| (t.as_str(), *n as u64)));
                    seen = rows.iter().map(|(_, _, top)| *top).max().or(seen);
                    self.feed.announce();
                }
                Ok(_) => {}
                Err(error) => tracing::debug!(%error, "could not read new events"),
            }
            tokio::select! {
                () = self.feed.written() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

/// A passive checkpoint on `conn`.
async fn checkpoint_on(conn: &mut SqliteConnection) -> Result<WalFrames> {
    let (_busy, frames, copied): (i64, i64, i64) = sqlx::query_as("pragma wal_checkpoint(passive)")
        .fetch_one(conn)
        .await?;
    Ok(WalFrames { frames, copied })
}

/// The WAL's length in frames (pages written), and how many of them a checkpoint has copied into the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::store) struct WalFrames {
    pub frames: i64,
    pub copied: i64,
}

shared_statements!(SqliteStore, sqlx::SqliteConnection);

/// A migrated store on a file in `dir`, with two read connections.
#[cfg(test)]
async fn two_reader_store(dir: &tempfile::TempDir) -> SqliteStore {
    let url = format!("sqlite://{}", dir.path().join("s.db").display());
    let options = StoreOptions {
        max_connections: 2,
        // Long enough for a busy machine; a test's readers may never give their connections back.
        acquire_timeout: Duration::from_secs(5),
        batch_writes: true,
    };
    let store = SqliteStore::connect(&url, &options).expect("store");
    store.migrate().await.expect("migrate");
    store
}

/// A deposit or withdrawal queued for the writer (`GroupCommit::queue_move`), as its write holds it.
struct QueuedMove<'a> {
    writer: &'a group_commit::GroupCommit,
    seq: u64,
    outcome: oneshot::Receiver<at_once::MoveOutcome>,
    /// The write took its outcome at its turn: nothing is left to clear up.
    taken: bool,
}

impl QueuedMove<'_> {
    /// The write's turn at the writer: it runs the moves queued first (`MOVES_PER_CALL` at a time, its own among
    /// them) in one call, unless an earlier write's turn already ran its own. The batch that ran it is this
    /// write's own, since none commits while an outcome is untaken; if that batch ended undone instead, nothing
    /// of it happened and the write runs afresh (`Ok(None)`). docs/adr/0153-sqlite-deposits-share-a-call.md.
    async fn run(&mut self, conn: &mut SqliteConnection) -> Result<Option<Movement>> {
        let batch = self.writer.open_batch();
        loop {
            if let Ok((ran, ran_in)) = self.outcome.try_recv() {
                self.taken = true;
                self.writer.took_outcome();
                return match (ran_in, &batch) {
                    (Some(ran_in), Some(batch)) if ran_in.is(batch) => ran,
                    // Not expected (no batch commits with an outcome untaken), but if it did, the move stands.
                    (Some(ran_in), _) if ran_in.committed() => ran,
                    _ => Ok(None),
                };
            }
            let orders = self.writer.take_moves(self.seq, at_once::MOVES_PER_CALL);
            if orders.is_empty() {
                return Err(StoreError::Internal(
                    "a queued deposit went missing".to_owned(),
                ));
            }
            match at_once::move_many(conn, &orders).await {
                Ok(outcomes) => {
                    for (order, ran) in orders.into_iter().zip(outcomes) {
                        self.writer.send_outcome(order, (ran, batch.clone()));
                    }
                }
                // The call failed and this batch ends undone: the others run afresh in their own turns. This
                // write's own move, if still queued, is withdrawn now, in its turn, so that no later turn runs it.
                Err(error) => {
                    for order in orders {
                        self.writer.send_outcome(order, (Ok(None), None));
                    }
                    self.writer.withdraw_move(self.seq);
                    return Err(error);
                }
            }
        }
    }
}

impl Drop for QueuedMove<'_> {
    /// A write that ends without taking its move's outcome leaves nothing behind: its move is no longer queued,
    /// and an outcome sent to it is counted as taken. Every path of a turn that fails has already withdrawn the
    /// move or been sent its outcome, under the writer's lock; this covers a write dropped while it waits for its
    /// turn, which only a task aborted at shutdown is (requests run to completion).
    fn drop(&mut self) {
        if self.taken {
            return;
        }
        self.writer.withdraw_move(self.seq);
        self.outcome.close();
        if self.outcome.try_recv().is_ok() {
            self.writer.took_outcome();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wallet for each number in `owners`, each opened by a write of its own.
    async fn open_wallets(store: &SqliteStore, owners: std::ops::Range<usize>) {
        let eur = Currency::parse("EUR").expect("EUR");
        for n in owners {
            store
                .create_wallet(
                    &format!("owner {n}"),
                    eur,
                    Amount::ZERO,
                    &Memo::default(),
                    None,
                )
                .await
                .expect("wallet");
        }
    }

    #[tokio::test]
    async fn the_writer_leaves_checkpoints_to_a_reader_connection() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = two_reader_store(&dir).await;
        let autocheckpoint: i64 = store
            .write(async |conn| {
                Ok(sqlx::query_scalar("pragma wal_autocheckpoint")
                    .fetch_one(conn)
                    .await?)
            })
            .await
            .expect("pragma");
        assert_eq!(autocheckpoint, 0, "the writer never checkpoints");
        let before = store.checkpoint().await.expect("checkpoint");
        // Enough pages that the writer would have checkpointed on its own with SQLite's default (1,000).
        open_wallets(&store, 0..300).await;
        let written = store.checkpoint().await.expect("checkpoint");
        assert!(
            written.frames > before.frames && written.frames >= 1_000,
            "the WAL grew, with no checkpoint by the writer: {before:?} then {written:?}"
        );
        assert_eq!(
            written.copied, written.frames,
            "the checkpoint copied all of it"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn the_wal_starts_over_though_a_batch_commits_during_every_checkpoint() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = two_reader_store(&dir).await;
        open_wallets(&store, 0..100).await;
        // A batch open while a reader's checkpoint runs, as under a steady stream of batches: the checkpoint
        // copies every frame committed before it, and the batch commits more after it.
        let checkpoint_during_a_batch = async |key: &str| {
            store
                .write(async |conn| {
                    sqlx::query(
                        "insert into idempotency_keys (key, request_hash) values ($1, 'h')",
                    )
                    .bind(key)
                    .execute(&mut *conn)
                    .await?;
                    store.checkpoint().await
                })
                .await
                .expect("write with a checkpoint during it")
        };

        let first = checkpoint_during_a_batch("first").await;
        let second = checkpoint_during_a_batch("second").await;
        assert!(
            second.frames > first.frames,
            "a batch that begins with frames not yet copied appends to the WAL: {first:?} then {second:?}"
        );
        store
            .writer
            .between_batches(checkpoint_on)
            .await
            .expect("the writer's checkpoint");
        open_wallets(&store, 100..101).await;
        let restarted = store.checkpoint().await.expect("checkpoint");
        assert!(
            restarted.frames < first.frames,
            "after the writer copied the rest, the next write starts the WAL over: {second:?} then {restarted:?}"
        );

        // `fold_wal` does the same past its threshold, and only a reader's checkpoint below it.
        open_wallets(&store, 101..102).await;
        let below = store.fold_wal(i64::MAX).await.expect("fold");
        assert_eq!(below.copied, below.frames);
        let folded = store.fold_wal(0).await.expect("fold");
        assert_eq!(
            folded.copied, folded.frames,
            "every frame copied: {folded:?}"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn a_write_completes_while_readers_hold_every_read_connection() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = two_reader_store(&dir).await;
        // Readers hold the whole read pool, one inside an open read transaction.
        let mut reading = store.pool.acquire().await.expect("reader");
        let mut snapshot = sqlx::Connection::begin(&mut *reading).await.expect("begin");
        sqlx::query("select count(*) from wallets")
            .execute(&mut *snapshot)
            .await
            .expect("read");
        let busy = store.pool.acquire().await.expect("reader");

        let eur = Currency::parse("EUR").expect("EUR");
        let created = tokio::time::timeout(
            Duration::from_secs(60),
            store.create_wallet("writer", eur, Amount::ZERO, &Memo::default(), None),
        )
        .await
        .expect("the write finished");
        assert!(
            created.is_ok(),
            "a write queued behind readers: {created:?}"
        );
        drop((snapshot, busy));
    }
}
