//! Group commit for SQLite's one writer.
//!
//! A SQLite commit in WAL mode with `synchronous=FULL` costs an fsync, and there is one writer: committing each
//! operation alone caps the embedded default at one operation per fsync. Here every write runs on the writer's
//! connection inside a savepoint of the transaction that is open at the time, and the transaction commits when no
//! other write is queued behind it (or when it holds `MAX_BATCH` operations). So a batch is whatever queued while
//! the previous one ran: a lone write commits at once and pays nothing, a busy server shares one fsync among
//! many. Each operation keeps its own outcome (a refused one rolls back to its savepoint only), and every answer
//! waits for the commit that makes it true; if that commit fails, every operation of the batch is answered as
//! unavailable (its outcome unknown), never as done.
//!
//! Requests can be cancelled at any await (a client that goes away): the commit runs in a task of its own, and
//! a write dropped before it has decided whether to commit hands that decision to a task too, so a batch is never
//! left open behind a cancelled request.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::Utc;
use sqlx::sqlite::SqlitePool;
use sqlx::{Sqlite, SqliteConnection, Transaction};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use super::at_once::{MoveOrder, MoveOutcome};
use crate::store::events::Feed;
use crate::store::{Finish, Result, StoreError, StoredResponse, sql};

/// Most operations in one transaction: bounds how long a batch holds the write lock and how much one failed
/// commit can take with it.
const MAX_BATCH: usize = 256;

/// What a batch's commit came to; every member reads it.
type Outcome = std::result::Result<(), String>;

#[derive(Debug)]
pub(super) struct GroupCommit {
    /// One connection: the writer's.
    pool: SqlitePool,
    open: Arc<Mutex<OpenBatch>>,
    /// Writes waiting for `open`: while there are some, the batch stays open for them.
    queued: Arc<AtomicUsize>,
    /// `1` without batching: every write commits alone.
    max_batch: usize,
    feed: Feed,
    /// Transactions committed (or tried): fewer than writes when batching works.
    commits: Arc<std::sync::atomic::AtomicU64>,
    /// What the batch open now will come to, for work done in it on behalf of writes that join it later
    /// (`SqliteStore::move_money`). Set under `open`'s lock.
    current: std::sync::Mutex<Option<watch::Receiver<Option<Outcome>>>>,
    /// Deposits and withdrawals waiting for the writer: the first write to get a turn runs several in one call
    /// (`SqliteStore::move_in_turn`, docs/adr/0153-sqlite-deposits-share-a-call.md).
    moves: std::sync::Mutex<VecDeque<MoveOrder>>,
    /// Queued moves whose outcome was sent and not yet taken by their own write: their work may sit in the open
    /// batch without their answers, so no batch commits while there are some (unless every write has had its
    /// turn, which takes them all).
    ahead: Arc<AtomicUsize>,
    /// Set while a turn between batches waits: writes then run only their own move, so `ahead` drains.
    quiesce: AtomicBool,
}

#[derive(Debug, Default)]
struct OpenBatch {
    tx: Option<Transaction<'static, Sqlite>>,
    committed: Option<watch::Sender<Option<Outcome>>>,
    members: usize,
    /// Keyed answers of the batch's writes that succeeded, recorded together just before the commit.
    answers: Vec<(String, StoredResponse)>,
}

impl GroupCommit {
    pub(super) fn new(pool: SqlitePool, batching: bool, feed: Feed) -> Self {
        Self {
            pool,
            open: Arc::default(),
            queued: Arc::default(),
            max_batch: if batching { MAX_BATCH } else { 1 },
            feed,
            commits: Arc::default(),
            current: std::sync::Mutex::default(),
            moves: std::sync::Mutex::default(),
            ahead: Arc::default(),
            quiesce: AtomicBool::new(false),
        }
    }

    /// Queues a move for the first turn at the writer (`take_moves`).
    pub(super) fn queue_move(&self, order: MoveOrder) {
        self.moves_queue().push_back(order);
    }

    /// In a write's turn: the moves to run now, in queue order. Up to `max` of them; only the write's own
    /// (`seq`) while a turn between batches waits. Their outcomes must then be `sent`.
    pub(super) fn take_moves(&self, seq: u64, max: usize) -> Vec<MoveOrder> {
        let mut queue = self.moves_queue();
        if self.quiesce.load(Ordering::SeqCst) {
            let own = queue.iter().position(|order| order.seq == seq);
            return own.and_then(|at| queue.remove(at)).into_iter().collect();
        }
        let n = queue.len().min(max);
        queue.drain(..n).collect()
    }

    /// Sends a move's outcome to its write, which takes it at its turn (`took_outcome`).
    pub(super) fn send_outcome(&self, order: MoveOrder, outcome: MoveOutcome) {
        self.ahead.fetch_add(1, Ordering::SeqCst);
        if order.done.send(outcome).is_err() {
            // Its write is gone (only a task aborted at shutdown: requests run to completion).
            self.took_outcome();
        }
    }

    /// A write took its move's outcome.
    pub(super) fn took_outcome(&self) {
        self.ahead.fetch_sub(1, Ordering::SeqCst);
    }

    /// Takes the write's move `seq` out of the queue, if it is still there.
    pub(super) fn withdraw_move(&self, seq: u64) {
        self.moves_queue().retain(|order| order.seq != seq);
    }

    /// A turn that could not begin a batch: every queued move is told to run afresh in its own turn.
    fn release_moves(&self) {
        let orders: Vec<MoveOrder> = self.moves_queue().drain(..).collect();
        for order in orders {
            self.send_outcome(order, (Ok(None), None));
        }
    }

    fn moves_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<MoveOrder>> {
        self.moves
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// No outcome sent and not yet taken: the open batch holds no work without its answer.
    fn nothing_ahead(&self) -> bool {
        self.ahead.load(Ordering::SeqCst) == 0
    }

    /// Whether writes share transactions (`false`: each commits alone).
    pub(super) fn batching(&self) -> bool {
        self.max_batch > 1
    }

    /// What the open batch will come to; to be called in a write's turn (from its work), when there is one.
    pub(super) fn open_batch(&self) -> Option<BatchOutcome> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .map(BatchOutcome)
    }

    /// Transactions committed (or tried) so far.
    pub(super) fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    pub(super) async fn close(&self) {
        // A batch being committed finishes first: its task holds the lock until then.
        drop(self.open.lock().await);
        self.pool.close().await;
    }

    /// Runs `work` on the writer's connection outside any transaction, after the batch open at the time (if
    /// any) has committed; the next batch waits for it.
    pub(super) async fn between_batches<T>(
        &self,
        work: impl AsyncFnOnce(&mut SqliteConnection) -> Result<T>,
    ) -> Result<T> {
        // No move runs ahead of its write meanwhile, and the batch committed here holds no move without its
        // answer: writes with an outcome to take have their turns first (they are ahead in the lock's queue).
        let quiesced = Quiesced::new(&self.quiesce);
        let mut open = self.open.clone().lock_owned().await;
        loop {
            if !self.nothing_ahead() {
                drop(open);
                tokio::task::yield_now().await;
            } else if open.tx.is_some() {
                // In a task of its own, as every commit: this future may be dropped.
                tokio::spawn(commit(open, self.feed.clone(), self.commits.clone()));
            } else {
                break;
            }
            open = self.open.clone().lock_owned().await;
        }
        drop(quiesced);
        let mut conn = self.pool.acquire().await?;
        let done = work(&mut conn).await;
        drop(open);
        done
    }

    /// Runs `work` in the open batch (a savepoint of its transaction) and answers once that batch committed.
    pub(super) async fn write<T>(
        &self,
        work: impl for<'t> AsyncFnOnce(&'t mut SqliteConnection) -> Result<T>,
    ) -> Result<T> {
        self.run(no_shortcut, work, |_| false, Isolation::Savepoint, None)
            .await
    }

    /// As `write`, with `isolation` chosen by the caller, under an idempotency key if `finish` has one: the key
    /// is inserted first in the same turn (`keyed`), and the answer of a write that succeeded goes on its row
    /// with the batch's others, in one statement just before the commit.
    pub(super) async fn write_keyed<T>(
        &self,
        isolation: Isolation,
        finish: Option<Finish<'_, T>>,
        work: impl for<'t> AsyncFnOnce(&'t mut SqliteConnection) -> Result<T>,
    ) -> Result<T> {
        self.run(no_shortcut, work, |_| false, isolation, finish)
            .await
    }

    /// As `write_keyed`, trying `at_once` first: the claim of the key (if any) and the whole write in one call to
    /// the database thread. `at_once` answers `Ok(None)` when it changed nothing and `work` should run instead
    /// (a refusal to explain, expired holds to release).
    pub(super) async fn write_keyed_at_once<T>(
        &self,
        isolation: Isolation,
        finish: Option<Finish<'_, T>>,
        at_once: impl for<'t> AsyncFnOnce(
            &'t mut SqliteConnection,
            Option<KeyClaim<'t>>,
        ) -> Result<Option<T>>,
        work: impl for<'t> AsyncFnOnce(&'t mut SqliteConnection) -> Result<T>,
    ) -> Result<T> {
        self.run(at_once, work, |_| false, isolation, finish).await
    }

    /// As `write`, but a result for which `early` is true is answered before the commit. Only for a result whose
    /// truth the caller's next write depends on anyway: that write runs on this same transaction or a later one
    /// and fails if this one's work did not commit (an idempotency claim: the operation's answer is recorded on
    /// the claim's row, and recording it fails when the row is not there).
    pub(super) async fn write_answering_early<T>(
        &self,
        isolation: Isolation,
        work: impl for<'t> AsyncFnOnce(&'t mut SqliteConnection) -> Result<T>,
        early: impl FnOnce(&Result<T>) -> bool,
    ) -> Result<T> {
        self.run(no_shortcut, work, early, isolation, None).await
    }

    async fn run<T>(
        &self,
        at_once: impl for<'t> AsyncFnOnce(
            &'t mut SqliteConnection,
            Option<KeyClaim<'t>>,
        ) -> Result<Option<T>>,
        work: impl for<'t> AsyncFnOnce(&'t mut SqliteConnection) -> Result<T>,
        early: impl FnOnce(&Result<T>) -> bool,
        isolation: Isolation,
        finish: Option<Finish<'_, T>>,
    ) -> Result<T> {
        let mut turn = Turn::queue(self);
        let mut open = self.open.clone().lock_owned().await;
        turn.started();
        if open.tx.is_none() {
            match self.pool.begin_with("BEGIN IMMEDIATE").await {
                Ok(tx) => open.tx = Some(tx),
                Err(error) => {
                    self.release_moves();
                    return Err(error.into());
                }
            }
            let (committed, outcome) = watch::channel(None);
            open.committed = Some(committed);
            *self
                .current
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(outcome);
            open.members = 0;
            open.answers.clear();
        }
        let (result, broken) = match open.tx.as_mut() {
            Some(tx) => attempt(tx, finish, isolation, at_once, work).await,
            None => (
                Err(StoreError::Internal("no write transaction".to_owned())),
                true,
            ),
        };
        open.members += 1;
        if let (Ok(value), Some(finish)) = (&result, finish) {
            open.answers
                .push((finish.key.to_owned(), (finish.render)(value)));
        }
        let mut committed = match &open.committed {
            Some(sender) => sender.subscribe(),
            None => watch::channel(Some(Err("no batch".to_owned()))).1,
        };
        if broken {
            // The savepoint itself failed: the transaction cannot be trusted, so the batch ends here, undone.
            turn.decided();
            end_batch(open, Err("the write transaction failed".to_owned()));
            return result;
        }
        let full = open.members >= self.max_batch;
        if (self.queued.load(Ordering::SeqCst) == 0 || full) && self.nothing_ahead() {
            tokio::spawn(commit(open, self.feed.clone(), self.commits.clone()));
        } else {
            drop(open);
        }
        turn.decided();
        if early(&result) {
            return result;
        }
        let outcome = committed
            .wait_for(Option::is_some)
            .await
            .map(|outcome| outcome.clone())
            .ok()
            .flatten();
        match outcome {
            Some(Ok(())) => result,
            Some(Err(error)) => Err(unknown(error)),
            None => Err(unknown("the batch ended without a commit".to_owned())),
        }
    }
}

/// Moves run only in their own writes' turns while this lives (`take_moves`).
struct Quiesced<'a>(&'a AtomicBool);

impl<'a> Quiesced<'a> {
    fn new(flag: &'a AtomicBool) -> Self {
        flag.store(true, Ordering::SeqCst);
        Self(flag)
    }
}

impl Drop for Quiesced<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// What one batch came to, or will: whether work done in it on another write's behalf is durable.
#[derive(Debug, Clone)]
pub(super) struct BatchOutcome(watch::Receiver<Option<Outcome>>);

impl BatchOutcome {
    /// Whether this is the batch that is open now (so work done in it stands or falls with the caller's).
    pub(super) fn is(&self, other: &BatchOutcome) -> bool {
        self.0.same_channel(&other.0)
    }

    /// Whether the batch committed; `false` while it is open or once it failed.
    pub(super) fn committed(&self) -> bool {
        matches!(*self.0.borrow(), Some(Ok(())))
    }
}

/// How a write's work is kept apart from its neighbours' in the batch's transaction.
#[derive(Debug, Clone, Copy)]
pub(super) enum Isolation {
    /// In a savepoint: a refusal at any step undoes the write's earlier statements.
    Savepoint,
    /// Bare, for work whose statements are each atomic and which refuses only before its first change, or after
    /// changes that are true whatever it decides (expired holds released). A savepoint costs two round trips to
    /// the database thread, as much as a deposit's own statements. A database error (or a row that cannot be
    /// read back) from bare work ends its batch undone: nothing says what of the transaction survived it.
    Bare,
}

/// `work` kept apart from its neighbours as `isolation` says. `true` when the transaction is in doubt.
async fn isolated<T>(
    tx: &mut Transaction<'static, Sqlite>,
    isolation: Isolation,
    work: impl for<'t> AsyncFnOnce(&'t mut SqliteConnection) -> Result<T>,
) -> (Result<T>, bool) {
    match isolation {
        Isolation::Savepoint => in_savepoint(tx, work).await,
        Isolation::Bare => {
            let result = work(&mut **tx).await;
            let broken = matches!(
                result,
                Err(StoreError::Database(_)
                    | StoreError::Unavailable(_)
                    | StoreError::Corrupt(_)
                    | StoreError::Internal(_))
            );
            (result, broken)
        }
    }
}

/// An idempotency key to claim and its request's fingerprint.
#[derive(Debug, Clone, Copy)]
pub(super) struct KeyClaim<'a> {
    pub key: &'a str,
    pub request_hash: &'a str,
}

async fn no_shortcut<T>(_: &mut SqliteConnection, _: Option<KeyClaim<'_>>) -> Result<Option<T>> {
    Ok(None)
}

/// `at_once` and, if it changed nothing, `work` (keyed if `finish` says so). `true` when the transaction is in
/// doubt.
async fn attempt<T>(
    tx: &mut Transaction<'static, Sqlite>,
    finish: Option<Finish<'_, T>>,
    isolation: Isolation,
    at_once: impl for<'t> AsyncFnOnce(
        &'t mut SqliteConnection,
        Option<KeyClaim<'t>>,
    ) -> Result<Option<T>>,
    work: impl for<'t> AsyncFnOnce(&'t mut SqliteConnection) -> Result<T>,
) -> (Result<T>, bool) {
    let claim = finish.map(|finish| KeyClaim {
        key: finish.key,
        request_hash: finish.request_hash,
    });
    match at_once(&mut **tx, claim).await {
        Ok(Some(value)) => return (Ok(value), false),
        Ok(None) => {}
        Err(StoreError::IdempotencyKeyInUse) => {
            return (Err(StoreError::IdempotencyKeyInUse), false);
        }
        Err(error) => return (Err(error), true),
    }
    match finish {
        Some(finish) => keyed(tx, finish, isolation, work).await,
        None => isolated(tx, isolation, work).await,
    }
}

/// A keyed write in this writer turn: its key is inserted first (the claim; a key another request has refuses
/// the write before it changes anything), and a refused write takes its key with it, as if it never ran. The
/// answer goes on the key's row with the batch's others at commit.
async fn keyed<T>(
    tx: &mut Transaction<'static, Sqlite>,
    finish: Finish<'_, T>,
    isolation: Isolation,
    work: impl for<'t> AsyncFnOnce(&'t mut SqliteConnection) -> Result<T>,
) -> (Result<T>, bool) {
    let claimed = sqlx::query(sql::CLAIM_KEY)
        .bind(finish.key)
        .bind(finish.request_hash)
        .bind(Utc::now())
        .execute(&mut **tx)
        .await;
    match claimed.map(|done| done.rows_affected()) {
        Ok(1) => {}
        Ok(_) => return (Err(StoreError::IdempotencyKeyInUse), false),
        Err(error) => return (Err(error.into()), true),
    }
    let (result, broken) = isolated(tx, isolation, work).await;
    if result.is_ok() || broken {
        return (result, broken);
    }
    let released = sqlx::query(sql::RELEASE_KEY)
        .bind(finish.key)
        .execute(&mut **tx)
        .await;
    (result, released.is_err())
}

/// `work` inside a savepoint: released on success, rolled back on failure. `true` when the savepoint's own
/// statements failed (the enclosing transaction is then in doubt).
async fn in_savepoint<T>(
    tx: &mut Transaction<'static, Sqlite>,
    work: impl for<'t> AsyncFnOnce(&'t mut SqliteConnection) -> Result<T>,
) -> (Result<T>, bool) {
    let mut savepoint = match sqlx::Connection::begin(&mut **tx).await {
        Ok(savepoint) => savepoint,
        Err(error) => return (Err(error.into()), true),
    };
    match work(&mut *savepoint).await {
        Ok(value) => match savepoint.commit().await {
            Ok(()) => (Ok(value), false),
            Err(error) => (Err(error.into()), true),
        },
        Err(refused) => match savepoint.rollback().await {
            Ok(()) => (Err(refused), false),
            Err(_) => (Err(refused), true),
        },
    }
}

/// Commits the batch and tells its members; holding the lock meanwhile, so writes arriving during the fsync
/// queue up for the next batch.
async fn commit(
    mut open: OwnedMutexGuard<OpenBatch>,
    feed: Feed,
    commits: Arc<std::sync::atomic::AtomicU64>,
) {
    metrics::histogram!("revwallet_write_batch_size").record(open.members as f64);
    commits.fetch_add(1, Ordering::SeqCst);
    let answers = std::mem::take(&mut open.answers);
    let outcome = match open.tx.take() {
        Some(mut tx) => match record_answers(&mut tx, &answers).await {
            // Dropping the transaction rolls it back: no write of the batch applies.
            Err(error) => Err(error),
            Ok(()) => tx.commit().await.map_err(|error| error.to_string()),
        },
        None => Ok(()),
    };
    end_batch(open, outcome);
    feed.wrote();
}

/// Records every keyed answer of a batch on its claim in one statement. A claim missing (its own batch's commit
/// failed after it was answered early) fails the whole batch: its operation must not happen unprotected.
async fn record_answers(
    tx: &mut Transaction<'static, Sqlite>,
    answers: &[(String, StoredResponse)],
) -> Outcome {
    if answers.is_empty() {
        return Ok(());
    }
    let rows: Vec<AnswerRow<'_>> = answers
        .iter()
        .map(|(key, answer)| AnswerRow {
            key,
            status: answer.status,
            location: answer.location.as_deref(),
            body: &answer.body,
        })
        .collect();
    let json = serde_json::to_string(&rows).map_err(|error| error.to_string())?;
    let recorded = sqlx::query(STORE_RESPONSES)
        .bind(json)
        .execute(&mut **tx)
        .await
        .map_err(|error| error.to_string())?
        .rows_affected();
    if recorded == answers.len() as u64 {
        Ok(())
    } else {
        Err(format!(
            "{} of {} idempotency keys' claims were not committed",
            answers.len() as u64 - recorded,
            answers.len()
        ))
    }
}

/// One keyed answer, as the JSON array `STORE_RESPONSES` reads.
#[derive(serde::Serialize)]
struct AnswerRow<'a> {
    key: &'a str,
    status: u16,
    location: Option<&'a str>,
    body: &'a str,
}

/// Keys are unique within a batch: each was claimed once, and only a write that succeeded records its answer.
const STORE_RESPONSES: &str = "update idempotency_keys set status = a.value ->> 'status', \
     location = a.value ->> 'location', body = a.value ->> 'body' \
     from json_each($1) as a where idempotency_keys.key = a.value ->> 'key'";

/// Rolls back whatever is still open (dropping the transaction does) and gives the batch its outcome.
fn end_batch(mut open: OwnedMutexGuard<OpenBatch>, outcome: Outcome) {
    open.tx = None;
    open.members = 0;
    open.answers.clear();
    if let Some(committed) = open.committed.take() {
        committed.send_replace(Some(outcome));
    }
}

/// Commits a batch left open by a write that was cancelled before deciding, unless another write is queued (it
/// decides in turn).
async fn settle(group: Settle) {
    let open = group.open.lock_owned().await;
    if open.tx.is_some()
        && group.queued.load(Ordering::SeqCst) == 0
        && group.ahead.load(Ordering::SeqCst) == 0
    {
        commit(open, group.feed, group.commits).await;
    }
}

/// What `settle` needs of the group, owned (it runs in a task of its own).
struct Settle {
    open: Arc<Mutex<OpenBatch>>,
    queued: Arc<AtomicUsize>,
    ahead: Arc<AtomicUsize>,
    feed: Feed,
    commits: Arc<std::sync::atomic::AtomicU64>,
}

fn unknown(error: String) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Protocol(format!(
        "the batch's commit failed, so its outcome is unknown: {error}"
    )))
}

/// One write's place in the queue, until it has decided whether its batch commits. Dropped before then (the
/// request was cancelled), it leaves the queue and has the decision taken by a task.
struct Turn<'a> {
    group: &'a GroupCommit,
    queued: bool,
    decided: bool,
}

impl<'a> Turn<'a> {
    fn queue(group: &'a GroupCommit) -> Self {
        group.queued.fetch_add(1, Ordering::SeqCst);
        Self {
            group,
            queued: true,
            decided: false,
        }
    }

    fn started(&mut self) {
        if std::mem::take(&mut self.queued) {
            self.group.queued.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn decided(&mut self) {
        self.decided = true;
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.started();
        if !self.decided {
            let group = self.group;
            tokio::spawn(settle(Settle {
                open: group.open.clone(),
                queued: group.queued.clone(),
                ahead: group.ahead.clone(),
                feed: group.feed.clone(),
                commits: group.commits.clone(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;
    use std::time::Duration;

    use sqlx::sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
    };

    use super::*;

    /// A group on a scratch database with two tables, `parent` (ids 1 and 2) and `child` referring to it.
    async fn group(dir: &tempfile::TempDir, batching: bool) -> (Arc<GroupCommit>, SqlitePool) {
        let url = format!("sqlite://{}", dir.path().join("g.db").display());
        let connect = SqliteConnectOptions::from_str(&url)
            .expect("url")
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true);
        let reader = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect.clone())
            .await
            .expect("reader");
        for statement in [
            "create table parent (id integer primary key)",
            "create table child (id integer primary key, parent integer not null references parent (id), \
             note text not null unique)",
            "insert into parent (id) values (1), (2)",
            "create table idempotency_keys (key text primary key, request_hash text not null, \
             status integer, location text, body text, created_at text)",
        ] {
            sqlx::query(statement)
                .execute(&reader)
                .await
                .expect("schema");
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(connect);
        let group = Arc::new(GroupCommit::new(writer, batching, Feed::default()));
        (group, reader)
    }

    async fn add_child(group: &GroupCommit, parent: i64, note: &str) -> Result<()> {
        group
            .write(async |conn| {
                sqlx::query("insert into child (parent, note) values ($1, $2)")
                    .bind(parent)
                    .bind(note)
                    .execute(conn)
                    .await?;
                Ok(())
            })
            .await
    }

    async fn notes(reader: &SqlitePool) -> Vec<String> {
        sqlx::query_scalar("select note from child order by id")
            .fetch_all(reader)
            .await
            .expect("notes")
    }

    /// `add_child` as a write to queue.
    fn added(group: &Arc<GroupCommit>, parent: i64, note: &'static str) -> Pending {
        let group = group.clone();
        Box::pin(async move { add_child(&group, parent, note).await })
    }

    /// Children added in one batch, in order.
    async fn one_batch(
        group: &Arc<GroupCommit>,
        writes: &[(i64, &'static str)],
    ) -> Vec<Result<()>> {
        let writes = writes
            .iter()
            .map(|&(parent, note)| added(group, parent, note))
            .collect();
        in_one_batch(group, writes).await
    }

    fn commits(group: &GroupCommit) -> u64 {
        group.commits.load(Ordering::SeqCst)
    }

    #[tokio::test]
    async fn queued_writes_share_one_commit_and_a_refused_one_leaves_its_neighbours_alone() {
        let dir = tempfile::tempdir().expect("dir");
        let (group, reader) = group(&dir, true).await;
        // The third repeats a unique note and the fifth names no parent: both fail inside the batch.
        let results = one_batch(
            &group,
            &[(1, "a"), (2, "b"), (1, "a"), (1, "c"), (9, "d"), (2, "e")],
        )
        .await;
        let failed: Vec<bool> = results.iter().map(Result::is_err).collect();
        assert_eq!(failed, [false, false, true, false, true, false]);
        assert_eq!(notes(&reader).await, ["a", "b", "c", "e"]);
        assert_eq!(commits(&group), 1, "six writes, one commit");

        // Alone, a write commits at once.
        add_child(&group, 1, "alone").await.expect("alone");
        assert_eq!(commits(&group), 2);
    }

    #[tokio::test]
    async fn work_between_batches_commits_the_batch_open_at_its_turn() {
        let dir = tempfile::tempdir().expect("dir");
        let (group, reader) = group(&dir, true).await;
        let held = group.open.clone().lock_owned().await;
        let first = tokio::spawn(added(&group, 1, "a"));
        while group.queued.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        // Queued for the writer after "a" and before "b": "a"'s batch is still open when its turn comes ("b"
        // would have joined it).
        let between = tokio::spawn({
            let group = group.clone();
            async move {
                group
                    .between_batches(async |conn| {
                        Ok(
                            sqlx::query_scalar::<_, String>("select note from child order by id")
                                .fetch_all(conn)
                                .await?,
                        )
                    })
                    .await
            }
        });
        tokio::task::yield_now().await;
        let second = tokio::spawn(added(&group, 2, "b"));
        while group.queued.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        drop(held);

        first.await.expect("task").expect("a");
        let seen = between.await.expect("task").expect("work");
        second.await.expect("task").expect("b");
        assert_eq!(
            commits(&group),
            2,
            "\"a\"'s batch committed when the work's turn came, so \"b\" began another"
        );
        assert_eq!(seen, ["a", "b"], "the work ran outside both batches");
        assert_eq!(notes(&reader).await, ["a", "b"]);
    }

    #[tokio::test]
    async fn without_batching_every_write_commits_alone() {
        let dir = tempfile::tempdir().expect("dir");
        let (group, reader) = group(&dir, false).await;
        let results = one_batch(&group, &[(1, "a"), (2, "b"), (1, "a"), (1, "c")]).await;
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
        assert_eq!(notes(&reader).await, ["a", "b", "c"]);
        assert_eq!(commits(&group), 4);
    }

    #[tokio::test]
    async fn a_failed_commit_answers_every_write_of_the_batch_unknown_and_applies_none() {
        let dir = tempfile::tempdir().expect("dir");
        let (group, reader) = group(&dir, true).await;
        let held = group.open.clone().lock_owned().await;
        let first = {
            let writer = group.clone();
            tokio::spawn(async move { add_child(&writer, 1, "before").await })
        };
        while group.queued.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        // A deferred foreign key passes its own statement and its savepoint, and fails the COMMIT.
        let breaking = {
            let writer = group.clone();
            tokio::spawn(async move {
                writer
                    .write(async |conn| {
                        sqlx::query("pragma defer_foreign_keys = on")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("insert into child (parent, note) values (99, 'orphan')")
                            .execute(&mut *conn)
                            .await?;
                        Ok(())
                    })
                    .await
            })
        };
        while group.queued.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        drop(held);
        for task in [first, breaking] {
            let result = task.await.expect("task");
            assert!(
                matches!(result, Err(StoreError::Unavailable(_))),
                "answered as unknown: {result:?}"
            );
        }
        assert!(
            notes(&reader).await.is_empty(),
            "nothing of the batch applied"
        );
        // The writer goes on.
        add_child(&group, 2, "after").await.expect("after");
        assert_eq!(notes(&reader).await, ["after"]);
    }

    #[tokio::test]
    async fn a_write_cancelled_inside_its_batch_leaves_it_to_be_committed() {
        let dir = tempfile::tempdir().expect("dir");
        let (group, reader) = group(&dir, true).await;
        let held = group.open.clone().lock_owned().await;
        let first = {
            let writer = group.clone();
            tokio::spawn(async move { add_child(&writer, 1, "kept").await })
        };
        while group.queued.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        // The second starts its work and never finishes it: its request goes away mid-write.
        let (started, inside) = tokio::sync::oneshot::channel::<()>();
        let cancelled = {
            let writer = group.clone();
            tokio::spawn(async move {
                let mut started = Some(started);
                writer
                    .write(async |conn| {
                        sqlx::query("insert into child (parent, note) values (2, 'dropped')")
                            .execute(&mut *conn)
                            .await?;
                        if let Some(started) = started.take() {
                            let _ = started.send(());
                        }
                        std::future::pending::<Result<()>>().await
                    })
                    .await
            })
        };
        while group.queued.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        drop(held);
        inside.await.expect("the second write started");
        cancelled.abort();
        // The first saw the second queued and left the commit to it; the cancelled write hands it to a task.
        let kept = tokio::time::timeout(Duration::from_secs(30), first)
            .await
            .expect("the batch was committed")
            .expect("task");
        assert!(kept.is_ok(), "{kept:?}");
        assert_eq!(notes(&reader).await, ["kept"]);
    }

    #[tokio::test]
    async fn a_result_answered_early_returns_before_its_batch_commits() {
        let dir = tempfile::tempdir().expect("dir");
        let (group, reader) = group(&dir, true).await;
        let held = group.open.clone().lock_owned().await;
        let claim = {
            let writer = group.clone();
            tokio::spawn(async move {
                writer
                    .write_answering_early(
                        Isolation::Savepoint,
                        async |conn| {
                            sqlx::query("insert into child (parent, note) values (1, 'claim')")
                                .execute(conn)
                                .await?;
                            Ok(())
                        },
                        |result| result.is_ok(),
                    )
                    .await
            })
        };
        while group.queued.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let operation = {
            let writer = group.clone();
            tokio::spawn(async move {
                let mut wait = Some(wait);
                writer
                    .write(async |conn| {
                        if let Some(wait) = wait.take() {
                            let _ = wait.await;
                        }
                        sqlx::query("insert into child (parent, note) values (1, 'operation')")
                            .execute(conn)
                            .await?;
                        Ok(())
                    })
                    .await
            })
        };
        while group.queued.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        drop(held);
        claim.await.expect("task").expect("claimed");
        assert_eq!(commits(&group), 0, "answered with its batch still open");
        assert!(notes(&reader).await.is_empty(), "not committed yet");
        let _ = go.send(());
        operation.await.expect("task").expect("operation");
        assert_eq!(commits(&group), 1);
        assert_eq!(notes(&reader).await, ["claim", "operation"]);
    }

    type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send>>;

    /// Holds the writer while `writes` queue behind it, in order, then lets them all go: they form one batch.
    async fn in_one_batch(group: &Arc<GroupCommit>, writes: Vec<Pending>) -> Vec<Result<()>> {
        let held = group.open.clone().lock_owned().await;
        let mut tasks = Vec::new();
        for (n, write) in writes.into_iter().enumerate() {
            tasks.push(tokio::spawn(write));
            while group.queued.load(Ordering::SeqCst) < n + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("task"));
        }
        results
    }

    /// A child added under an idempotency key, its answer rendered from the note.
    fn keyed_child(
        group: &Arc<GroupCommit>,
        key: &'static str,
        parent: i64,
        note: &'static str,
    ) -> Pending {
        let group = group.clone();
        Box::pin(async move {
            let render: crate::store::Render<String> = Arc::new(|note: &String| StoredResponse {
                status: 201,
                location: Some(format!("/child/{note}")),
                body: note.clone(),
            });
            group
                .write_keyed(
                    Isolation::Savepoint,
                    Some(Finish {
                        key,
                        request_hash: "h",
                        render: &render,
                    }),
                    async |conn| {
                        sqlx::query("insert into child (parent, note) values ($1, $2)")
                            .bind(parent)
                            .bind(note)
                            .execute(conn)
                            .await?;
                        Ok(note.to_owned())
                    },
                )
                .await
                .map(drop)
        })
    }

    async fn claim(reader: &SqlitePool, key: &str) {
        sqlx::query("insert into idempotency_keys (key, request_hash) values ($1, 'h')")
            .bind(key)
            .execute(reader)
            .await
            .expect("claim");
    }

    async fn answers(
        reader: &SqlitePool,
    ) -> Vec<(String, Option<i64>, Option<String>, Option<String>)> {
        sqlx::query_as("select key, status, location, body from idempotency_keys order by key")
            .fetch_all(reader)
            .await
            .expect("answers")
    }

    #[tokio::test]
    async fn keyed_writes_claim_their_keys_and_record_answers_with_the_commit() {
        let dir = tempfile::tempdir().expect("dir");
        let (group, reader) = group(&dir, true).await;
        claim(&reader, "taken").await;
        // k2 names no parent: refused inside the batch, it takes its key with it. "taken" is another request's
        // key, and the second k1 the first k1's: both refused before they change anything.
        let results = in_one_batch(
            &group,
            vec![
                keyed_child(&group, "k1", 1, "a"),
                keyed_child(&group, "k2", 9, "x"),
                keyed_child(&group, "taken", 1, "t"),
                keyed_child(&group, "k1", 1, "again"),
                keyed_child(&group, "k3", 2, "b"),
            ],
        )
        .await;
        assert!(results[0].is_ok() && results[4].is_ok(), "{results:?}");
        assert!(matches!(results[1], Err(StoreError::Database(_))));
        for taken in [&results[2], &results[3]] {
            assert!(matches!(taken, Err(StoreError::IdempotencyKeyInUse)));
        }
        assert_eq!(commits(&group), 1, "five writes, one commit");
        assert_eq!(notes(&reader).await, ["a", "b"]);
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            answers(&reader).await,
            [
                ("k1".to_owned(), Some(201), some("/child/a"), some("a")),
                ("k3".to_owned(), Some(201), some("/child/b"), some("b")),
                ("taken".to_owned(), None, None, None),
            ]
        );
    }

    #[tokio::test]
    async fn an_answer_without_its_key_fails_the_whole_batch_undone() {
        let dir = tempfile::tempdir().expect("dir");
        let (group, reader) = group(&dir, true).await;
        // A later write of the batch removes "gone"'s row: its answer has nowhere to go, so nothing applies.
        let remove: Pending = {
            let group = group.clone();
            Box::pin(async move {
                group
                    .write(async |conn| {
                        sqlx::query("delete from idempotency_keys where key = 'gone'")
                            .execute(conn)
                            .await?;
                        Ok(())
                    })
                    .await
            })
        };
        let results = in_one_batch(
            &group,
            vec![
                keyed_child(&group, "k1", 1, "a"),
                keyed_child(&group, "gone", 2, "b"),
                remove,
            ],
        )
        .await;
        for result in results {
            assert!(
                matches!(result, Err(StoreError::Unavailable(_))),
                "answered as unknown: {result:?}"
            );
        }
        assert!(
            notes(&reader).await.is_empty(),
            "nothing of the batch applied"
        );
        assert!(answers(&reader).await.is_empty());
        // The writer goes on.
        add_child(&group, 2, "after").await.expect("after");
        assert_eq!(notes(&reader).await, ["after"]);
    }

    /// A bare write: refused before it changes anything when `parent` is 0, else an insert.
    fn bare_child(group: &Arc<GroupCommit>, parent: i64, note: &'static str) -> Pending {
        let group = group.clone();
        Box::pin(async move {
            group
                .write_keyed::<()>(Isolation::Bare, None, async |conn| {
                    if parent == 0 {
                        return Err(StoreError::IdempotencyKeyInUse);
                    }
                    sqlx::query("insert into child (parent, note) values ($1, $2)")
                        .bind(parent)
                        .bind(note)
                        .execute(conn)
                        .await?;
                    Ok(())
                })
                .await
        })
    }

    #[tokio::test]
    async fn a_bare_write_failing_in_the_database_ends_its_batch_undone() {
        let dir = tempfile::tempdir().expect("dir");
        let (group, reader) = group(&dir, true).await;
        let results = in_one_batch(
            &group,
            vec![
                added(&group, 1, "a"),
                bare_child(&group, 0, "r"),
                added(&group, 2, "b"),
            ],
        )
        .await;
        let failed: Vec<bool> = results.iter().map(Result::is_err).collect();
        assert_eq!(
            failed,
            [false, true, false],
            "a bare refusal leaves its neighbours alone"
        );
        assert_eq!(commits(&group), 1);
        // Parent 9 fails the insert's foreign key: the database refused a statement of bare work.
        let results = in_one_batch(
            &group,
            vec![
                added(&group, 1, "c"),
                bare_child(&group, 9, "x"),
                added(&group, 2, "d"),
            ],
        )
        .await;
        assert!(
            matches!(results[0], Err(StoreError::Unavailable(_))),
            "{:?}",
            results[0]
        );
        assert!(
            matches!(results[1], Err(StoreError::Database(_))),
            "{:?}",
            results[1]
        );
        // The batch ended at the failure: the write after it starts the next batch.
        assert!(results[2].is_ok(), "{:?}", results[2]);
        assert_eq!(notes(&reader).await, ["a", "b", "d"]);
    }
}
