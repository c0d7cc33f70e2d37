//! Group commit across wallets for deposits, withdrawals, transfers and holds (place, void, capture), keyed or
//! not.
//!
//! Each commit waits for a WAL flush, and each statement for a round trip: applied one by one, writes are
//! limited by commits and statements per second whatever the server could do with them together. Here writes
//! that arrive while a batch is running queue up, and the queue becomes the next batch: one transaction and a
//! fixed handful of statements whatever its size (lock the wallets in id order; insert every entry from arrays
//! and set every touched balance, in one statement; insert every keyed answer with its key). There is no timer:
//! a lone write runs at once as before, and a busy server shares one commit among many writes. The outcome of
//! each write is decided here in arrival order on the locked rows, so several writes to one wallet get exact
//! running balances, and a refused one changes nothing for the others. Answers go out only after the commit; a commit whose connection failed leaves the
//! outcomes unknown and every member is answered as such, never retried.
//!
//! Hold operations in a batch lock their holds first (in id order) and then, with every other wallet of the
//! batch, their wallets (in id order): the order every path takes (a lone void or capture locks its hold, then
//! its wallets), so nothing deadlocks. Voids, placements and captures go in one statement each
//! (`holds_together`), the rest one by one (a second write on one hold or wallet, a refusal to explain), before
//! the movements are decided on the rows as they leave them; so a batch is some serial order of its writes, and
//! all share one commit.
//!
//! `--write-batching false` turns this off (each write its own transaction), so the bench can measure both.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{Acquire, PgConnection, PgPool};
use tokio::sync::oneshot;

use super::batcher::Batcher;
use super::holds::{
    Capturing, Placement, capture_alone, capture_in, capture_into_once, capture_many, place_alone,
    place_in, place_many, void_alone, void_many, void_once,
};
use super::{
    apply_movement_releasing, apply_transfer, lock_two_wallets, move_once, record, record_answer,
};
use crate::domain::{Amount, HoldId, LedgerEntryKind, WalletId};
use crate::store::rows::{EntryRow, WalletRow};
use crate::store::shared::{acquire, is_debit};
use crate::store::sql::wallet_columns;
use crate::store::{
    Capture, Finish, Hold, LedgerEntry, Memo, Movement, Render, Result, StoreError, StoredResponse,
    Transfer, Wallet,
};

/// Most writes in one transaction: bounds the arrays of one statement and what one failed commit takes with it.
const MAX_BATCH: usize = 512;

/// Batches in flight at once: while one waits for its commit's WAL flush, the next is already applied, and both
/// commits can share a flush. Batches touching the same wallet still run one after the other (its row lock).
const RUNNERS: usize = 2;

/// The batch's wallets, locked in id order so that batches, transfers and other replicas never deadlock. `held`
/// is what the wallet shows (due holds no longer count); `held_now` what its row holds until they are released.
const LOCK_WALLETS: &str = concat!(
    "select ",
    wallet_columns!("$2"),
    ", wallets.held as held_now from wallets where id = any($1) and closed_at is null order by id for update"
);

/// The one-by-one path's locks, taken up front in id order for the same reason.
const LOCK_IDS: &str = "select id from wallets where id = any($1) order by id for update";

/// The holds a batch voids or captures, locked in id order before any wallet; with the wallet each belongs to
/// (a hold's wallet never changes). Only those a void or capture can still take: a finished or expired hold is
/// refused without a lock, and an expired one may be locked by a debit releasing it (wallet first, then holds).
const LOCK_HOLDS: &str = "select id, wallet_id from holds \
     where id = any($1) and status = 'pending' and expires_at > $2 order by id for update";

/// Every entry of the batch from parallel arrays, in arrival order (identity values follow the select's order),
/// and in the same statement one final balance per touched wallet (`$11`, `$12`): never two rows for one wallet,
/// since an `UPDATE … FROM` applies only one. `wallets.id = any($11)` lets the planner find those rows by index (it
/// cannot see how short `unnest` is, and joined on `v.id` alone it may scan the whole table). Each entry row also
/// carries how many balances were set, which must be every touched wallet.
const INSERT_ENTRIES: &str = "with balances as ( \
         update wallets set balance = v.balance \
         from unnest($11::bigint[], $12::bigint[]) as v(id, balance) \
         where wallets.id = v.id and wallets.id = any($11) returning wallets.id) \
     insert into transactions (wallet_id, kind, amount, balance_after, counterparty_id, \
                               created_at, actor, reference, description, metadata) \
     select wallet_id, kind, amount, balance_after, counterparty_id, $10, actor, reference, description, metadata \
     from unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], \
                 $8::text[], $9::text[]) with ordinality \
          as i(wallet_id, kind, amount, balance_after, counterparty_id, actor, reference, description, metadata, ord) \
     order by ord \
     returning id, wallet_id, kind, amount, balance_after, counterparty_id, created_at, actor, reference, \
               description, metadata, (select count(*) from balances) as balances_set";

/// Every keyed answer of the batch with its key, in key order (so two batches that share keys wait for each
/// other in one order, never in a cycle); the keys another request has are not returned.
const INSERT_ANSWERS: &str = "insert into idempotency_keys (key, request_hash, status, location, body, created_at) \
     select key, request_hash, status, location, body, $6 \
     from unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[]) \
          as a(key, request_hash, status, location, body) \
     on conflict (key) do nothing returning key";

/// The key, request fingerprint and answer renderer of a keyed write, owned so that the batch's task can record
/// the answer.
struct Keyed<T> {
    key: String,
    request_hash: String,
    render: Render<T>,
}

impl<T> Keyed<T> {
    fn of(finish: Option<Finish<'_, T>>) -> Option<Self> {
        finish.map(|f| Self {
            key: f.key.to_owned(),
            request_hash: f.request_hash.to_owned(),
            render: f.render.clone(),
        })
    }

    fn finish(&self) -> Finish<'_, T> {
        Finish {
            key: &self.key,
            request_hash: &self.request_hash,
            render: &self.render,
        }
    }

    fn answer(&self, outcome: &T) -> Answer<'_> {
        Answer {
            key: &self.key,
            request_hash: &self.request_hash,
            response: (self.render)(outcome),
        }
    }
}

/// A keyed write's answer, to be inserted with its key.
struct Answer<'a> {
    key: &'a str,
    request_hash: &'a str,
    response: StoredResponse,
}

/// A queued write and where its answer goes.
enum Write {
    Move {
        wallet: WalletId,
        kind: LedgerEntryKind,
        keyed: Option<Keyed<Movement>>,
        reply: oneshot::Sender<Result<Movement>>,
    },
    Transfer {
        from: WalletId,
        to: WalletId,
        keyed: Option<Keyed<Transfer>>,
        reply: oneshot::Sender<Result<Transfer>>,
    },
    Place {
        wallet: WalletId,
        expires_at: DateTime<Utc>,
        keyed: Option<Keyed<Hold>>,
        reply: oneshot::Sender<Result<Hold>>,
    },
    Void {
        hold: HoldId,
        keyed: Option<Keyed<Hold>>,
        reply: oneshot::Sender<Result<Hold>>,
    },
    Capture {
        hold: HoldId,
        to: Option<WalletId>,
        keyed: Option<Keyed<Capture>>,
        reply: oneshot::Sender<Result<Capture>>,
    },
}

struct Queued {
    write: Write,
    amount: Amount,
    memo: Memo,
}

/// What a write came to, before its answer is sent. Lives only until then, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Done {
    Moved(Movement),
    Transferred(Transfer),
    /// Placed or voided.
    Held(Hold),
    Captured(Capture),
}

impl Queued {
    /// The wallets this write names itself (a void or capture also touches its hold's wallet: see `lock_holds_then_wallets`).
    fn wallets(&self) -> impl Iterator<Item = WalletId> {
        let (first, second) = match &self.write {
            Write::Move { wallet, .. } | Write::Place { wallet, .. } => (Some(*wallet), None),
            Write::Transfer { from, to, .. } => (Some(*from), Some(*to)),
            Write::Void { .. } => (None, None),
            Write::Capture { to, .. } => (*to, None),
        };
        first.into_iter().chain(second)
    }

    /// The hold this write voids or captures.
    fn hold(&self) -> Option<HoldId> {
        match &self.write {
            Write::Void { hold, .. } | Write::Capture { hold, .. } => Some(*hold),
            _ => None,
        }
    }

    /// What the write locks, for the queue: its wallets, and a hold it finishes (as the negated id).
    fn conflicts(&self) -> Vec<i64> {
        let hold = self.hold().map(|hold| -hold.get());
        self.wallets().map(WalletId::get).chain(hold).collect()
    }

    fn is_movement(&self) -> bool {
        matches!(self.write, Write::Move { .. } | Write::Transfer { .. })
    }

    /// Sends the outcome to the request waiting for it.
    fn answer(self, outcome: Result<Done>) {
        match self.write {
            Write::Move { reply, .. } => {
                let _ = reply.send(outcome.and_then(|done| match done {
                    Done::Moved(movement) => Ok(movement),
                    _ => Err(mixed_up()),
                }));
            }
            Write::Transfer { reply, .. } => {
                let _ = reply.send(outcome.and_then(|done| match done {
                    Done::Transferred(transfer) => Ok(transfer),
                    _ => Err(mixed_up()),
                }));
            }
            Write::Place { reply, .. } | Write::Void { reply, .. } => {
                let _ = reply.send(outcome.and_then(|done| match done {
                    Done::Held(hold) => Ok(hold),
                    _ => Err(mixed_up()),
                }));
            }
            Write::Capture { reply, .. } => {
                let _ = reply.send(outcome.and_then(|done| match done {
                    Done::Captured(capture) => Ok(capture),
                    _ => Err(mixed_up()),
                }));
            }
        }
    }

    /// The answer of a keyed write that was applied.
    fn stored_answer(&self, done: &Done) -> Option<Answer<'_>> {
        match (&self.write, done) {
            (Write::Move { keyed: Some(k), .. }, Done::Moved(m)) => Some(k.answer(m)),
            (Write::Transfer { keyed: Some(k), .. }, Done::Transferred(t)) => Some(k.answer(t)),
            (
                Write::Place { keyed: Some(k), .. } | Write::Void { keyed: Some(k), .. },
                Done::Held(h),
            ) => Some(k.answer(h)),
            (Write::Capture { keyed: Some(k), .. }, Done::Captured(c)) => Some(k.answer(c)),
            _ => None,
        }
    }

    /// This write alone, in its own transaction.
    async fn alone(&self, pool: &PgPool) -> Result<Done> {
        match &self.write {
            Write::Move {
                wallet,
                kind,
                keyed,
                ..
            } => {
                let finish = keyed.as_ref().map(Keyed::finish);
                move_alone(pool, *wallet, *kind, self.amount, &self.memo, finish)
                    .await
                    .map(Done::Moved)
            }
            Write::Transfer {
                from, to, keyed, ..
            } => {
                let finish = keyed.as_ref().map(Keyed::finish);
                transfer_alone(pool, *from, *to, self.amount, &self.memo, finish)
                    .await
                    .map(Done::Transferred)
            }
            Write::Place {
                wallet,
                expires_at,
                keyed,
                ..
            } => {
                let finish = keyed.as_ref().map(Keyed::finish);
                place_alone(pool, *wallet, self.amount, *expires_at, &self.memo, finish)
                    .await
                    .map(Done::Held)
            }
            Write::Void { hold, keyed, .. } => {
                let finish = keyed.as_ref().map(Keyed::finish);
                void_alone(pool, *hold, finish).await.map(Done::Held)
            }
            Write::Capture {
                hold, to, keyed, ..
            } => {
                let finish = keyed.as_ref().map(Keyed::finish);
                capture_alone(pool, *hold, self.amount, *to, &self.memo, finish)
                    .await
                    .map(Done::Captured)
            }
        }
    }

    /// This write inside a batch's transaction whose holds and wallets are locked already; its answer is
    /// recorded by the caller.
    async fn apply_in(&self, tx: &mut PgConnection) -> Result<Done> {
        let (amount, memo) = (self.amount, &self.memo);
        match &self.write {
            Write::Move { wallet, kind, .. } => {
                apply_movement_releasing(tx, *wallet, *kind, amount, memo)
                    .await
                    .map(Done::Moved)
            }
            Write::Transfer { from, to, .. } => apply_transfer(tx, *from, *to, amount, memo)
                .await
                .map(Done::Transferred),
            Write::Place {
                wallet, expires_at, ..
            } => place_in(tx, *wallet, amount, *expires_at, memo)
                .await
                .map(Done::Held),
            Write::Void { hold, .. } => void_once(tx, *hold).await.map(Done::Held),
            Write::Capture { hold, to, .. } => capture_in(tx, *hold, amount, *to, memo)
                .await
                .map(Done::Captured),
        }
    }
}

fn mixed_up() -> StoreError {
    StoreError::Internal("a write was answered with another's outcome".to_owned())
}

#[derive(Clone, Debug)]
pub(super) struct GroupCommit {
    queue: Batcher<Queued>,
    batching: bool,
}

impl GroupCommit {
    pub(super) fn new(batching: bool) -> Self {
        Self {
            queue: Batcher::with_conflicts(RUNNERS, MAX_BATCH, Some(Queued::conflicts)),
            batching,
        }
    }

    pub(super) async fn submit_move(
        &self,
        pool: &PgPool,
        wallet: WalletId,
        kind: LedgerEntryKind,
        amount: Amount,
        memo: &Memo,
        finish: Option<Finish<'_, Movement>>,
    ) -> Result<Movement> {
        if !self.batching {
            return move_alone(pool, wallet, kind, amount, memo, finish).await;
        }
        self.queue_write(pool, amount, memo, |reply| Write::Move {
            wallet,
            kind,
            keyed: Keyed::of(finish),
            reply,
        })
        .await
    }

    pub(super) async fn submit_transfer(
        &self,
        pool: &PgPool,
        from: WalletId,
        to: WalletId,
        amount: Amount,
        memo: &Memo,
        finish: Option<Finish<'_, Transfer>>,
    ) -> Result<Transfer> {
        if !self.batching {
            return transfer_alone(pool, from, to, amount, memo, finish).await;
        }
        self.queue_write(pool, amount, memo, |reply| Write::Transfer {
            from,
            to,
            keyed: Keyed::of(finish),
            reply,
        })
        .await
    }

    pub(super) async fn submit_place(
        &self,
        pool: &PgPool,
        wallet: WalletId,
        amount: Amount,
        expires_at: DateTime<Utc>,
        memo: &Memo,
        finish: Option<Finish<'_, Hold>>,
    ) -> Result<Hold> {
        if !self.batching {
            return place_alone(pool, wallet, amount, expires_at, memo, finish).await;
        }
        self.queue_write(pool, amount, memo, |reply| Write::Place {
            wallet,
            expires_at,
            keyed: Keyed::of(finish),
            reply,
        })
        .await
    }

    pub(super) async fn submit_void(
        &self,
        pool: &PgPool,
        hold: HoldId,
        finish: Option<Finish<'_, Hold>>,
    ) -> Result<Hold> {
        if !self.batching {
            return void_alone(pool, hold, finish).await;
        }
        self.queue_write(pool, Amount::ZERO, &Memo::default(), |reply| Write::Void {
            hold,
            keyed: Keyed::of(finish),
            reply,
        })
        .await
    }

    pub(super) async fn submit_capture(
        &self,
        pool: &PgPool,
        hold: HoldId,
        amount: Amount,
        to: Option<WalletId>,
        memo: &Memo,
        finish: Option<Finish<'_, Capture>>,
    ) -> Result<Capture> {
        if !self.batching {
            return capture_alone(pool, hold, amount, to, memo, finish).await;
        }
        self.queue_write(pool, amount, memo, |reply| Write::Capture {
            hold,
            to,
            keyed: Keyed::of(finish),
            reply,
        })
        .await
    }

    /// Queues the write `write` makes from its reply channel, and waits for its outcome.
    async fn queue_write<T>(
        &self,
        pool: &PgPool,
        amount: Amount,
        memo: &Memo,
        write: impl FnOnce(oneshot::Sender<Result<T>>) -> Write,
    ) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        let queued = Queued {
            write: write(reply),
            amount,
            memo: memo.clone(),
        };
        let pool = pool.clone();
        self.queue.push(queued, move |batch| {
            let pool = pool.clone();
            async move { apply(&pool, batch).await }
        });
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> StoreError {
    StoreError::Internal("the write queue stopped".to_owned())
}

async fn apply(pool: &PgPool, mut batch: Vec<Queued>) {
    metrics::histogram!("revwallet_write_batch_size").record(batch.len() as f64);
    if batch.len() == 1 {
        let Some(only) = batch.pop() else { return };
        let outcome = only.alone(pool).await;
        only.answer(outcome);
        return;
    }
    match together(pool, &batch).await {
        Ok(Tried::Committed(outcomes)) => {
            for (queued, outcome) in batch.into_iter().zip(outcomes) {
                queued.answer(outcome);
            }
        }
        Ok(Tried::KeysTaken(taken)) => {
            // Nothing was committed. Those whose key another request has are told so (their request then gets
            // that request's answer); the others go again without them.
            let mut rest = Vec::with_capacity(batch.len());
            for (index, queued) in batch.into_iter().enumerate() {
                if taken.contains(&index) {
                    queued.answer(Err(StoreError::IdempotencyKeyInUse));
                } else {
                    rest.push(queued);
                }
            }
            if !rest.is_empty() {
                Box::pin(apply(pool, rest)).await;
            }
        }
        // Nothing was committed: a statement was refused, or a write needs expired holds released first.
        Ok(Tried::OneByOne) | Err(StoreError::Database(_)) => one_by_one(pool, batch).await,
        Err(error) => answer_all(batch, &error),
    }
}

/// What came of trying a batch in one transaction.
enum Tried {
    /// Each write's outcome, committed.
    Committed(Vec<Result<Done>>),
    /// Nothing was committed: the batch must go one by one (a debit that only releasing expired holds could
    /// allow, or a statement that did not do what it should).
    OneByOne,
    /// Nothing was committed: the writes at these indexes have idempotency keys that other requests have.
    KeysTaken(Vec<usize>),
}

/// A deposit or withdrawal in its own transaction (one statement when it is not keyed).
async fn move_alone(
    pool: &PgPool,
    wallet: WalletId,
    kind: LedgerEntryKind,
    amount: Amount,
    memo: &Memo,
    finish: Option<Finish<'_, Movement>>,
) -> Result<Movement> {
    let Some(finish) = finish else {
        return move_once(pool, wallet, kind, amount, memo).await;
    };
    let mut conn = acquire(pool).await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let movement = apply_movement_releasing(&mut tx, wallet, kind, amount, memo).await?;
    record(&mut tx, Some(finish), &movement).await?;
    tx.commit().await?;
    Ok(movement)
}

/// A transfer in its own transaction, both rows locked in id order: opposite transfers queue, never deadlock.
async fn transfer_alone(
    pool: &PgPool,
    from: WalletId,
    to: WalletId,
    amount: Amount,
    memo: &Memo,
    finish: Option<Finish<'_, Transfer>>,
) -> Result<Transfer> {
    let mut conn = acquire(pool).await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    lock_two_wallets(&mut tx, from, to).await?;
    let transfer = apply_transfer(&mut tx, from, to, amount, memo).await?;
    record(&mut tx, finish, &transfer).await?;
    tx.commit().await?;
    Ok(transfer)
}

#[derive(sqlx::FromRow)]
struct LockedRow {
    #[sqlx(flatten)]
    wallet: WalletRow,
    held_now: i64,
}

/// A locked wallet as the batch has left it so far.
struct Running {
    wallet: Wallet,
    held_now: i64,
    touched: bool,
}

/// An entry the batch writes: the write it belongs to, and the entry's columns.
struct Planned {
    index: usize,
    wallet: WalletId,
    kind: LedgerEntryKind,
    balance_after: i64,
    counterparty: Option<WalletId>,
}

/// The whole batch in one transaction.
async fn together(pool: &PgPool, batch: &[Queued]) -> Result<Tried> {
    let now = Utc::now();
    let mut conn = acquire(pool).await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    // Hold operations first: the movements are then decided on the rows as they left them.
    let hold_outcomes = if batch.iter().any(|q| !q.is_movement()) {
        let hold_wallets = lock_holds_then_wallets(&mut tx, batch).await?;
        holds_together(&mut tx, batch, &hold_wallets, now).await?
    } else {
        batch.iter().map(|_| None).collect()
    };
    let mut ids: Vec<i64> = batch
        .iter()
        .filter(|q| q.is_movement())
        .flat_map(Queued::wallets)
        .map(WalletId::get)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    // A batch of hold operations alone has no movement to decide.
    let locked: Vec<LockedRow> = if ids.is_empty() {
        Vec::new()
    } else {
        sqlx::query_as(LOCK_WALLETS)
            .bind(&ids)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?
    };
    let mut wallets = HashMap::with_capacity(locked.len());
    for row in locked {
        let held_now = row.held_now;
        let wallet = Wallet::try_from(row.wallet)?;
        let running = Running {
            wallet,
            held_now,
            touched: false,
        };
        wallets.insert(running.wallet.id.get(), running);
    }
    let Some((refusals, planned)) = decide(batch, &mut wallets) else {
        return Ok(Tried::OneByOne);
    };
    let mut outcomes: Vec<Result<Done>> = refusals
        .into_iter()
        .zip(hold_outcomes)
        .map(|(refusal, held)| match held {
            Some(outcome) => outcome,
            None => Err(refusal.unwrap_or_else(|| StoreError::Internal("not applied".into()))),
        })
        .collect();
    if !planned.is_empty() {
        let Some(entries) = insert_entries(&mut tx, batch, &planned, &wallets, now).await? else {
            return Ok(Tried::OneByOne);
        };
        let Some(()) = assemble(batch, &planned, entries, &wallets, &mut outcomes) else {
            return Ok(Tried::OneByOne);
        };
    }
    let taken = insert_answers(&mut tx, batch, &outcomes, now).await?;
    if !taken.is_empty() {
        return Ok(Tried::KeysTaken(taken));
    }
    tx.commit().await?;
    Ok(Tried::Committed(outcomes))
}

/// Each write's refusal, or its entries, decided in arrival order on the locked balances. `None` when a debit
/// would be refused while its wallet still counts holds past their expiry: releasing them is the one-by-one
/// path's work.
#[allow(clippy::type_complexity)]
fn decide(
    batch: &[Queued],
    wallets: &mut HashMap<i64, Running>,
) -> Option<(Vec<Option<StoreError>>, Vec<Planned>)> {
    let mut refusals = Vec::with_capacity(batch.len());
    let mut planned = Vec::with_capacity(batch.len());
    for (index, queued) in batch.iter().enumerate() {
        let legs: Vec<(WalletId, LedgerEntryKind, Option<WalletId>)> = match &queued.write {
            Write::Move { wallet, kind, .. } => vec![(*wallet, *kind, None)],
            Write::Transfer { from, to, .. } => vec![
                (*from, LedgerEntryKind::TransferOut, Some(*to)),
                (*to, LedgerEntryKind::TransferIn, Some(*from)),
            ],
            // Applied before the movements were decided (`together`).
            Write::Place { .. } | Write::Void { .. } | Write::Capture { .. } => Vec::new(),
        };
        // Every leg is checked before any is applied, so a refused transfer changes neither wallet.
        let mut balances = Vec::with_capacity(legs.len());
        let mut refusal = None;
        for (wallet, kind, _) in &legs {
            match leg_balance(wallets, *wallet, *kind, queued.amount) {
                Leg::Applies(balance) => balances.push(balance),
                Leg::NeedsRelease => return None,
                Leg::Refused(error) => {
                    refusal = Some(error);
                    break;
                }
            }
        }
        if refusal.is_none() {
            for ((wallet, kind, counterparty), balance) in legs.into_iter().zip(balances) {
                if let Some(running) = wallets.get_mut(&wallet.get()) {
                    running.wallet.balance = balance;
                    running.touched = true;
                }
                planned.push(Planned {
                    index,
                    wallet,
                    kind,
                    balance_after: balance.minor_units(),
                    counterparty,
                });
            }
        }
        refusals.push(refusal);
    }
    Some((refusals, planned))
}

enum Leg {
    Applies(Amount),
    NeedsRelease,
    Refused(StoreError),
}

/// The balance one leg would leave on its wallet, as the batch has left it so far.
fn leg_balance(
    wallets: &HashMap<i64, Running>,
    wallet: WalletId,
    kind: LedgerEntryKind,
    amount: Amount,
) -> Leg {
    let Some(running) = wallets.get(&wallet.get()) else {
        return Leg::Refused(StoreError::WalletNotFound(wallet));
    };
    let (balance, amount_units) = (running.wallet.balance.minor_units(), amount.minor_units());
    let next = if is_debit(kind) {
        (balance - running.held_now >= amount_units).then(|| balance - amount_units)
    } else {
        balance.checked_add(amount_units)
    };
    match next.and_then(Amount::from_minor) {
        Some(balance) => Leg::Applies(balance),
        None if is_debit(kind) && running.held_now > running.wallet.held.minor_units() => {
            Leg::NeedsRelease
        }
        None if is_debit(kind) => Leg::Refused(StoreError::InsufficientFunds {
            wallet: running.wallet.clone(),
            requested: amount,
        }),
        None => Leg::Refused(StoreError::BalanceTooLarge(wallet)),
    }
}

/// Turns the written entries into each applied write's outcome. `None` if they do not match the plan.
fn assemble(
    batch: &[Queued],
    planned: &[Planned],
    entries: Vec<LedgerEntry>,
    wallets: &HashMap<i64, Running>,
    outcomes: &mut [Result<Done>],
) -> Option<()> {
    let mut movements = planned.iter().zip(entries).map(|(plan, entry)| {
        let running = wallets.get(&plan.wallet.get())?;
        let wallet = Wallet {
            balance: entry.balance_after,
            ..running.wallet.clone()
        };
        Some((plan.index, Movement { wallet, entry }))
    });
    while let Some(first) = movements.next() {
        let (index, from) = first?;
        outcomes[index] = Ok(match batch[index].write {
            Write::Move { .. } => Done::Moved(from),
            Write::Transfer { .. } => {
                let (_, to) = movements.next()??;
                Done::Transferred(Transfer { from, to })
            }
            Write::Place { .. } | Write::Void { .. } | Write::Capture { .. } => return None,
        });
    }
    Some(())
}

/// An inserted entry, and how many balances its statement set.
#[derive(sqlx::FromRow)]
struct InsertedRow {
    #[sqlx(flatten)]
    entry: EntryRow,
    balances_set: i64,
}

/// Inserts the planned entries and sets the touched wallets' balances; `None` if the database did not return
/// one entry per plan or did not set every balance.
async fn insert_entries(
    tx: &mut PgConnection,
    batch: &[Queued],
    planned: &[Planned],
    wallets: &HashMap<i64, Running>,
    now: DateTime<Utc>,
) -> Result<Option<Vec<LedgerEntry>>> {
    let (touched, balances): (Vec<i64>, Vec<i64>) = wallets
        .values()
        .filter(|w| w.touched)
        .map(|w| (w.wallet.id.get(), w.wallet.balance.minor_units()))
        .unzip();
    let memo = |field: fn(&Memo) -> &Option<String>| -> Vec<Option<String>> {
        planned
            .iter()
            .map(|p| field(&batch[p.index].memo).clone())
            .collect()
    };
    let mut rows: Vec<InsertedRow> = sqlx::query_as(INSERT_ENTRIES)
        .bind(planned.iter().map(|p| p.wallet.get()).collect::<Vec<_>>())
        .bind(planned.iter().map(|p| p.kind.as_str()).collect::<Vec<_>>())
        .bind(
            planned
                .iter()
                .map(|p| batch[p.index].amount.minor_units())
                .collect::<Vec<_>>(),
        )
        .bind(planned.iter().map(|p| p.balance_after).collect::<Vec<_>>())
        .bind(
            planned
                .iter()
                .map(|p| p.counterparty.map(|c| c.get()))
                .collect::<Vec<_>>(),
        )
        .bind(memo(|m| &m.actor))
        .bind(memo(|m| &m.reference))
        .bind(memo(|m| &m.description))
        .bind(memo(|m| &m.metadata))
        .bind(now)
        .bind(&touched)
        .bind(&balances)
        .fetch_all(&mut *tx)
        .await?;
    let all_set = rows
        .iter()
        .all(|row| row.balances_set == touched.len() as i64);
    if rows.len() != planned.len() || !all_set {
        return Ok(None);
    }
    // Identity values were drawn in the insert's order, which is arrival order.
    rows.sort_unstable_by_key(|row| row.entry.id);
    rows.into_iter()
        .map(|row| LedgerEntry::try_from(row.entry))
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Inserts the keys and answers of the batch's keyed writes that were applied (a refused one's answer is kept by
/// its request afterwards, as a decline). Returns the indexes of the writes whose key another request has (or
/// an earlier write of this batch): the batch must then not commit.
async fn insert_answers(
    tx: &mut PgConnection,
    batch: &[Queued],
    outcomes: &[Result<Done>],
    now: DateTime<Utc>,
) -> Result<Vec<usize>> {
    let mut answers: Vec<(usize, Answer<'_>)> = batch
        .iter()
        .zip(outcomes)
        .enumerate()
        .filter_map(|(index, (queued, outcome))| {
            Some((index, queued.stored_answer(outcome.as_ref().ok()?)?))
        })
        .collect();
    if answers.is_empty() {
        return Ok(Vec::new());
    }
    // Stable: of two writes with one key, the earlier is the one inserted.
    answers.sort_by(|(_, a), (_, b)| a.key.cmp(b.key));
    let column = |f: for<'a> fn(&'a Answer<'a>) -> Option<&'a str>| -> Vec<Option<&str>> {
        answers.iter().map(|(_, a)| f(a)).collect()
    };
    let inserted: Vec<String> = sqlx::query_scalar(INSERT_ANSWERS)
        .bind(column(|a| Some(a.key)))
        .bind(column(|a| Some(a.request_hash)))
        .bind(
            answers
                .iter()
                .map(|(_, a)| i32::from(a.response.status))
                .collect::<Vec<_>>(),
        )
        .bind(column(|a| a.response.location.as_deref()))
        .bind(column(|a| Some(a.response.body.as_str())))
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
    let mut inserted: HashSet<String> = inserted.into_iter().collect();
    Ok(answers
        .iter()
        .filter(|(_, answer)| !inserted.remove(answer.key))
        .map(|(index, _)| *index)
        .collect())
}

/// Applies each write in turn inside one transaction, each in a savepoint with its own outcome; used when the
/// batch cannot be decided from the locked rows alone.
async fn one_by_one(pool: &PgPool, batch: Vec<Queued>) {
    let mut results = Vec::with_capacity(batch.len());
    let attempt: Result<()> = async {
        let mut conn = acquire(pool).await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        lock_holds_then_wallets(&mut tx, &batch).await?;
        for queued in &batch {
            let mut savepoint = tx.begin().await?;
            match apply_one(&mut savepoint, queued).await {
                Ok(done) => {
                    savepoint.commit().await?;
                    results.push(Ok(done));
                }
                Err(error @ (StoreError::Database(_) | StoreError::Unavailable(_))) => {
                    return Err(error);
                }
                Err(refused) => {
                    savepoint.rollback().await?;
                    results.push(Err(refused));
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }
    .await;
    match attempt {
        Ok(()) => {
            for (queued, result) in batch.into_iter().zip(results) {
                queued.answer(result);
            }
        }
        // The server refused a statement, so nothing was committed: give each write its own try.
        Err(StoreError::Database(_)) => {
            for queued in batch {
                let outcome = queued.alone(pool).await;
                queued.answer(outcome);
            }
        }
        // The connection failed, possibly during the commit: the outcome is unknown, so nothing is retried.
        Err(error) => answer_all(batch, &error),
    }
}

/// One write and its recorded answer, inside the one-by-one path's transaction.
async fn apply_one(conn: &mut PgConnection, queued: &Queued) -> Result<Done> {
    let done = queued.apply_in(conn).await?;
    if let Some(answer) = queued.stored_answer(&done) {
        record_answer(conn, answer.key, answer.request_hash, answer.response).await?;
    }
    Ok(done)
}

/// Locks the holds the batch voids or captures (in id order), then every wallet it touches (in id order): those
/// its writes name and those of its holds. Returns the wallet of each hold locked (those still pending).
async fn lock_holds_then_wallets(
    tx: &mut PgConnection,
    batch: &[Queued],
) -> Result<HashMap<i64, i64>> {
    let mut ids: Vec<i64> = batch
        .iter()
        .flat_map(Queued::wallets)
        .map(WalletId::get)
        .collect();
    let mut holds: Vec<i64> = batch
        .iter()
        .filter_map(Queued::hold)
        .map(HoldId::get)
        .collect();
    let mut hold_wallets = HashMap::new();
    if !holds.is_empty() {
        holds.sort_unstable();
        holds.dedup();
        let locked: Vec<(i64, i64)> = sqlx::query_as(LOCK_HOLDS)
            .bind(&holds)
            .bind(Utc::now())
            .fetch_all(&mut *tx)
            .await?;
        ids.extend(locked.iter().map(|(_, wallet)| *wallet));
        hold_wallets.extend(locked);
    }
    ids.sort_unstable();
    ids.dedup();
    sqlx::query(LOCK_IDS).bind(&ids).execute(&mut *tx).await?;
    Ok(hold_wallets)
}

/// The batch's hold operations, each with its outcome (`None` for a movement), in one serial order: the voids
/// of holds no other write of the batch names, in one statement; then the placements on wallets no other
/// placement of the batch names, in one statement; then the captures of such holds whose wallets no other
/// capture of the set touches, in one statement; then every other hold operation in arrival order, one
/// statement each (a second write on one hold or wallet, and a void, placement or capture the set statement
/// refused, which runs again alone to be explained, or placed after expired holds are released). The holds and
/// wallets are locked already (`hold_wallets`: each pending hold's wallet). `Err` only for a failure of the
/// transaction itself.
async fn holds_together(
    tx: &mut PgConnection,
    batch: &[Queued],
    hold_wallets: &HashMap<i64, i64>,
    now: DateTime<Utc>,
) -> Result<Vec<Option<Result<Done>>>> {
    let mut outcomes: Vec<Option<Result<Done>>> = batch.iter().map(|_| None).collect();
    let mut holds_named: HashMap<i64, usize> = HashMap::new();
    let mut wallets_placed: HashMap<i64, usize> = HashMap::new();
    for queued in batch {
        if let Some(hold) = queued.hold() {
            *holds_named.entry(hold.get()).or_default() += 1;
        }
        if let Write::Place { wallet, .. } = queued.write {
            *wallets_placed.entry(wallet.get()).or_default() += 1;
        }
    }
    let voids: Vec<i64> = batch
        .iter()
        .filter_map(|queued| match queued.write {
            Write::Void { hold, .. } if holds_named.get(&hold.get()) == Some(&1) => {
                Some(hold.get())
            }
            _ => None,
        })
        .collect();
    if !voids.is_empty() {
        let mut voided: HashMap<i64, Hold> = void_many(tx, &voids, now)
            .await?
            .into_iter()
            .map(|hold| (hold.id.get(), hold))
            .collect();
        for (queued, outcome) in batch.iter().zip(&mut outcomes) {
            if let Write::Void { hold, .. } = queued.write
                && let Some(hold) = voided.remove(&hold.get())
            {
                *outcome = Some(Ok(Done::Held(hold)));
            }
        }
    }
    let placements: Vec<Placement<'_>> = batch
        .iter()
        .filter_map(|queued| match queued.write {
            Write::Place {
                wallet, expires_at, ..
            } if wallets_placed.get(&wallet.get()) == Some(&1) => Some(Placement {
                wallet,
                amount: queued.amount,
                expires_at,
                memo: &queued.memo,
            }),
            _ => None,
        })
        .collect();
    if !placements.is_empty() {
        let mut placed: HashMap<i64, Hold> = place_many(tx, &placements, now)
            .await?
            .into_iter()
            .map(|hold| (hold.wallet_id.get(), hold))
            .collect();
        for (queued, outcome) in batch.iter().zip(&mut outcomes) {
            if let Write::Place { wallet, .. } = queued.write
                && let Some(hold) = placed.remove(&wallet.get())
            {
                *outcome = Some(Ok(Done::Held(hold)));
            }
        }
    }
    let (captures, wallets) = captures_apart(batch, &holds_named, hold_wallets);
    if !captures.is_empty() {
        let mut made = capture_many(tx, &captures, &wallets, now).await?;
        for (queued, outcome) in batch.iter().zip(&mut outcomes) {
            if let Write::Capture { hold, .. } = queued.write
                && let Some(capture) = made.remove(&hold.get())
            {
                *outcome = Some(Ok(Done::Captured(capture)));
            }
        }
    }
    for (queued, outcome) in batch.iter().zip(&mut outcomes) {
        if !queued.is_movement() && outcome.is_none() {
            *outcome = Some(hold_in_batch(tx, queued).await?);
        }
    }
    Ok(outcomes)
}

/// The captures that can go in one statement, and every wallet of their legs: each of a pending hold (one in
/// `hold_wallets`) that no other write of the batch names, whose legs (the hold's wallet, and the target if
/// any) no other such capture touches.
fn captures_apart<'a>(
    batch: &'a [Queued],
    holds_named: &HashMap<i64, usize>,
    hold_wallets: &HashMap<i64, i64>,
) -> (Vec<Capturing<'a>>, Vec<i64>) {
    let candidates: Vec<(&Queued, HoldId, Option<WalletId>, Vec<i64>)> = batch
        .iter()
        .filter_map(|queued| match queued.write {
            Write::Capture { hold, to, .. } if holds_named.get(&hold.get()) == Some(&1) => {
                let wallet = *hold_wallets.get(&hold.get())?;
                let legs = std::iter::once(wallet).chain(to.map(WalletId::get));
                Some((queued, hold, to, legs.collect()))
            }
            _ => None,
        })
        .collect();
    let mut times_named: HashMap<i64, usize> = HashMap::new();
    for leg in candidates.iter().flat_map(|(.., legs)| legs) {
        *times_named.entry(*leg).or_default() += 1;
    }
    let apart: Vec<_> = candidates
        .into_iter()
        .filter(|(.., legs)| legs.iter().all(|leg| times_named.get(leg) == Some(&1)))
        .collect();
    let wallets = apart
        .iter()
        .flat_map(|(.., legs)| legs.iter().copied())
        .collect();
    let captures = apart
        .into_iter()
        .map(|(queued, hold, to, _)| Capturing {
            hold,
            amount: queued.amount,
            to,
            memo: &queued.memo,
        })
        .collect();
    (captures, wallets)
}

/// A hold operation in the batch's transaction: refused, it changes nothing. `Err` only for a failure of the
/// transaction itself (the batch then goes another way). Placing, voiding and capturing as a withdrawal are one
/// statement each, which applies whole or not at all (a placement refused may first release expired holds, true
/// whatever it decides), so they need no savepoint; so is a capture into another wallet the target can take,
/// and one it cannot runs the lone path (which finishes the hold before it checks the target) in a savepoint.
async fn hold_in_batch(tx: &mut PgConnection, queued: &Queued) -> Result<Result<Done>> {
    let Write::Capture {
        hold, to: Some(to), ..
    } = queued.write
    else {
        return match queued.apply_in(tx).await {
            Err(
                error @ (StoreError::Database(_)
                | StoreError::Unavailable(_)
                | StoreError::Corrupt(_)
                | StoreError::Internal(_)),
            ) => Err(error),
            outcome => Ok(outcome),
        };
    };
    // Into another wallet: one statement when the target can take it; refused, it changed nothing, and the
    // savepoint path below explains why.
    if let Some(capture) = capture_into_once(tx, hold, queued.amount, to, &queued.memo).await? {
        return Ok(Ok(Done::Captured(capture)));
    }
    let mut savepoint = tx.begin().await?;
    match queued.apply_in(&mut savepoint).await {
        Ok(done) => {
            savepoint.commit().await?;
            Ok(Ok(done))
        }
        Err(error @ (StoreError::Database(_) | StoreError::Unavailable(_))) => Err(error),
        Err(refused) => {
            savepoint.rollback().await?;
            Ok(Err(refused))
        }
    }
}

/// Gives every member the same failure.
fn answer_all(batch: Vec<Queued>, error: &StoreError) {
    for queued in batch {
        queued.answer(Err(error.for_each_member()));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::domain::Currency;
    use crate::store::PgStore;
    use crate::store::postgres::scratch::{drop_scratch, scratch};

    async fn wallet(store: &PgStore, cents: i64) -> WalletId {
        let eur = Currency::parse("EUR").expect("EUR");
        let initial = Amount::from_minor(cents).expect("amount");
        let created = store
            .create_wallet("batch", eur, initial, &Memo::default(), None)
            .await
            .expect("wallet");
        created.wallet.id
    }

    fn write(
        wallet: WalletId,
        kind: LedgerEntryKind,
        cents: i64,
        key: Option<&str>,
    ) -> (Queued, oneshot::Receiver<Result<Movement>>) {
        let (reply, answer) = oneshot::channel();
        let render: Render<Movement> = Arc::new(|m: &Movement| StoredResponse {
            status: 200,
            location: None,
            body: format!(
                "entry {} balance {}",
                m.entry.id,
                m.entry.balance_after.minor_units()
            ),
        });
        let write = Write::Move {
            wallet,
            kind,
            keyed: key.map(|key| Keyed {
                key: key.to_owned(),
                request_hash: "hash".to_owned(),
                render,
            }),
            reply,
        };
        (queued(write, cents), answer)
    }

    fn queued(write: Write, cents: i64) -> Queued {
        Queued {
            write,
            amount: Amount::from_minor(cents).expect("amount"),
            memo: Memo::actor(Some("tester")),
        }
    }

    /// A transfer whose answer nobody waits for (the tests read the batch's outcomes).
    fn transfer(from: WalletId, to: WalletId, cents: i64, key: Option<&str>) -> Queued {
        let render: Render<Transfer> = Arc::new(|t: &Transfer| StoredResponse {
            status: 200,
            location: None,
            body: format!("transfer {} {}", t.from.entry.id, t.to.entry.id),
        });
        let write = Write::Transfer {
            from,
            to,
            keyed: key.map(|key| Keyed {
                key: key.to_owned(),
                request_hash: "hash".to_owned(),
                render,
            }),
            reply: oneshot::channel().0,
        };
        queued(write, cents)
    }

    /// The outcomes of a batch that committed in one transaction.
    fn committed(tried: Result<Tried>) -> Vec<Result<Done>> {
        match tried {
            Ok(Tried::Committed(outcomes)) => outcomes,
            Ok(Tried::OneByOne) => panic!("sent one by one"),
            Ok(Tried::KeysTaken(taken)) => panic!("keys taken: {taken:?}"),
            Err(error) => panic!("the batch failed: {error}"),
        }
    }

    /// The entries an outcome wrote: one for a deposit or withdrawal, both legs of a transfer.
    fn movements(outcome: &Result<Done>) -> Vec<&Movement> {
        match outcome {
            Ok(Done::Moved(m)) => vec![m],
            Ok(Done::Transferred(t)) => vec![&t.from, &t.to],
            Ok(Done::Captured(c)) => std::iter::once(&c.from).chain(&c.to).collect(),
            Ok(Done::Held(_)) | Err(_) => vec![],
        }
    }

    /// The balance the write left on its (first) wallet.
    fn balance_after(outcome: &Result<Done>) -> Option<i64> {
        movements(outcome)
            .first()
            .map(|m| m.entry.balance_after.minor_units())
    }

    fn balance_after_movement(outcome: &Result<Movement>) -> Option<i64> {
        outcome
            .as_ref()
            .ok()
            .map(|m| m.entry.balance_after.minor_units())
    }

    /// A hold operation whose answer nobody waits for.
    fn place(wallet: WalletId, cents: i64, key: Option<&str>) -> Queued {
        let render: Render<Hold> = Arc::new(|h: &Hold| StoredResponse {
            status: 201,
            location: None,
            body: format!("hold {}", h.id),
        });
        let write = Write::Place {
            wallet,
            expires_at: Utc::now() + chrono::Duration::hours(1),
            keyed: key.map(|key| Keyed {
                key: key.to_owned(),
                request_hash: "hash".to_owned(),
                render,
            }),
            reply: oneshot::channel().0,
        };
        queued(write, cents)
    }

    fn void(hold: HoldId) -> Queued {
        let write = Write::Void {
            hold,
            keyed: None,
            reply: oneshot::channel().0,
        };
        queued(write, 0)
    }

    fn capture(hold: HoldId, cents: i64, to: Option<WalletId>) -> Queued {
        let write = Write::Capture {
            hold,
            to,
            keyed: None,
            reply: oneshot::channel().0,
        };
        queued(write, cents)
    }

    async fn placed(store: &PgStore, wallet: WalletId, cents: i64) -> HoldId {
        let amount = Amount::from_minor(cents).expect("amount");
        let expires_at = Utc::now() + chrono::Duration::hours(1);
        store
            .place_hold(wallet, amount, expires_at, &Memo::default(), None)
            .await
            .expect("hold")
            .id
    }

    #[tokio::test]
    async fn holds_in_a_batch_apply_before_its_movements_and_share_its_commit() {
        let Some((store, admin, name)) = scratch().await else {
            return;
        };
        let (a, b) = (wallet(&store, 1_000).await, wallet(&store, 0).await);
        let (h1, h2) = (placed(&store, a, 300).await, placed(&store, a, 100).await);
        use LedgerEntryKind::{Deposit, Withdrawal};
        let batch: Vec<Queued> = vec![
            write(a, Withdrawal, 300, None).0,
            place(a, 400, Some("kh")), // 1,000 - 400 held: placed
            void(h1),
            capture(h2, 80, Some(b)),
            write(a, Withdrawal, 500, None).0,
            void(h1),               // voided already: refused
            place(a, 10_000, None), // more than is available: refused
            write(b, Deposit, 20, None).0,
        ];
        let outcomes = committed(together(&store.pool, &batch).await);
        // Holds first, in arrival order (a: balance 920, 400 held), then the movements on what they left.
        let Ok(Done::Held(new_hold)) = &outcomes[1] else {
            panic!("placed: {:?}", outcomes[1].as_ref().err());
        };
        assert_eq!(new_hold.amount.minor_units(), 400);
        assert!(
            matches!(&outcomes[2], Ok(Done::Held(h)) if h.id == h1 && h.status.as_str() == "voided")
        );
        let Ok(Done::Captured(captured)) = &outcomes[3] else {
            panic!("captured: {:?}", outcomes[3].as_ref().err());
        };
        assert_eq!(captured.from.wallet.balance.minor_units(), 920);
        assert_eq!(
            captured.to.as_ref().map(|m| m.wallet.balance.minor_units()),
            Some(80)
        );
        assert!(matches!(&outcomes[5], Err(StoreError::HoldNotPending(h)) if h.id == h1));
        assert!(matches!(
            &outcomes[6],
            Err(StoreError::InsufficientFunds { .. })
        ));
        assert_eq!(balance_after(&outcomes[0]), Some(620));
        assert!(matches!(
            &outcomes[4],
            Err(StoreError::InsufficientFunds { wallet, .. }) if wallet.held.minor_units() == 400
        ));
        assert_eq!(balance_after(&outcomes[7]), Some(100));
        let (a_now, b_now) = (
            store.get_wallet(a).await.expect("a"),
            store.get_wallet(b).await.expect("b"),
        );
        assert_eq!(
            (a_now.balance.minor_units(), a_now.held.minor_units()),
            (620, 400)
        );
        assert_eq!(b_now.balance.minor_units(), 100);
        let recorded: Option<String> =
            sqlx::query_scalar("select body from idempotency_keys where key = 'kh'")
                .fetch_one(&store.pool)
                .await
                .expect("answer");
        assert_eq!(recorded, Some(format!("hold {}", new_hold.id)));
        let audit = store.audit().await.expect("audit");
        assert!(audit.is_empty(), "{audit:?}");
        drop_scratch(store, &admin, &name).await;
    }

    #[tokio::test]
    async fn voids_and_placements_go_together_and_the_rest_one_by_one_in_arrival_order() {
        let Some((store, admin, name)) = scratch().await else {
            return;
        };
        let (a, b, c) = (
            wallet(&store, 1_000).await,
            wallet(&store, 500).await,
            wallet(&store, 0).await,
        );
        let (h1, h2, h3) = (
            placed(&store, a, 300).await,
            placed(&store, a, 100).await,
            placed(&store, b, 200).await,
        );
        let last_event: i64 = sqlx::query_scalar("select coalesce(max(id), 0) from events")
            .fetch_one(&store.pool)
            .await
            .expect("events");
        let batch: Vec<Queued> = vec![
            place(b, 250, Some("kb")), // one statement, after the voids: b has 500 available then
            void(h1),                  // one statement with h3's void
            place(a, 500, None),       // a has two placements: each alone, in arrival order
            void(h2),                  // h2 is named twice: each alone, the void first
            place(a, 200, None),
            capture(h2, 50, None), // voided already: refused
            void(h3),
            place(c, 10, None), // refused by the statement, explained alone
            void(HoldId::from_db(i64::MAX)), // no such hold
        ];
        let outcomes = committed(together(&store.pool, &batch).await);
        let held = |i: usize| match &outcomes[i] {
            Ok(Done::Held(hold)) => (
                hold.wallet_id,
                hold.amount.minor_units(),
                hold.status.as_str(),
            ),
            other => panic!("{i}: {:?}", other.as_ref().err()),
        };
        assert_eq!(held(0), (b, 250, "pending"));
        assert_eq!(held(1), (a, 300, "voided"));
        assert_eq!(held(2), (a, 500, "pending"));
        assert_eq!(held(3), (a, 100, "voided"));
        assert_eq!(held(4), (a, 200, "pending"));
        assert!(matches!(&outcomes[5], Err(StoreError::HoldNotPending(h)) if h.id == h2));
        assert_eq!(held(6), (b, 200, "voided"));
        assert!(matches!(
            &outcomes[7],
            Err(StoreError::InsufficientFunds { wallet, .. }) if wallet.id == c
        ));
        assert!(matches!(&outcomes[8], Err(StoreError::HoldNotFound(_))));
        for (id, balance, held) in [(a, 1_000, 700), (b, 500, 250), (c, 0, 0)] {
            let now = store.get_wallet(id).await.expect("wallet");
            assert_eq!(
                (now.balance.minor_units(), now.held.minor_units()),
                (balance, held),
                "{id}"
            );
        }
        // One event per hold placed or voided, in the order of the holds' ids within each statement.
        let events: Vec<(String, i64)> =
            sqlx::query_as("select type, hold_id from events where id > $1 order by id")
                .bind(last_event)
                .fetch_all(&store.pool)
                .await
                .expect("events");
        let hold_id = |i: usize| match &outcomes[i] {
            Ok(Done::Held(hold)) => hold.id.get(),
            _ => 0,
        };
        let mut first_voids = vec![h1.get(), h3.get()];
        first_voids.sort_unstable();
        let expected: Vec<(String, i64)> = first_voids
            .into_iter()
            .map(|id| ("hold.voided".to_owned(), id))
            .chain([
                ("hold.created".to_owned(), hold_id(0)),
                ("hold.created".to_owned(), hold_id(2)),
                ("hold.voided".to_owned(), h2.get()),
                ("hold.created".to_owned(), hold_id(4)),
            ])
            .collect();
        assert_eq!(events, expected);
        let recorded: Option<String> =
            sqlx::query_scalar("select body from idempotency_keys where key = 'kb'")
                .fetch_one(&store.pool)
                .await
                .expect("answer");
        assert_eq!(recorded, Some(format!("hold {}", hold_id(0))));
        let audit = store.audit().await.expect("audit");
        assert!(audit.is_empty(), "{audit:?}");
        drop_scratch(store, &admin, &name).await;
    }

    #[tokio::test]
    async fn a_capture_into_another_wallet_is_one_statement_and_one_refused_changes_nothing() {
        let Some((store, admin, name)) = scratch().await else {
            return;
        };
        let (a, b, closed) = (
            wallet(&store, 1_000).await,
            wallet(&store, 0).await,
            wallet(&store, 0).await,
        );
        store
            .close_wallet(closed, &Memo::default(), None)
            .await
            .expect("closed");
        let (h1, h2) = (placed(&store, a, 300).await, placed(&store, a, 100).await);
        let last_event: i64 = sqlx::query_scalar("select coalesce(max(id), 0) from events")
            .fetch_one(&store.pool)
            .await
            .expect("events");
        let batch = vec![capture(h1, 200, Some(b)), capture(h2, 50, Some(closed))];
        let outcomes = committed(together(&store.pool, &batch).await);
        let Ok(Done::Captured(captured)) = &outcomes[0] else {
            panic!("captured: {:?}", outcomes[0].as_ref().err());
        };
        assert_eq!(captured.hold.id, h1);
        assert_eq!(captured.hold.captured.map(Amount::minor_units), Some(200));
        let out = &captured.from;
        assert_eq!(
            (
                out.wallet.id,
                out.wallet.balance.minor_units(),
                out.wallet.held.minor_units()
            ),
            (a, 800, 100)
        );
        assert_eq!(
            (
                out.entry.kind,
                out.entry.counterparty_id,
                out.entry.balance_after.minor_units()
            ),
            (LedgerEntryKind::TransferOut, Some(b), 800)
        );
        let into = captured.to.as_ref().expect("the target's leg");
        assert_eq!(
            (into.wallet.id, into.entry.kind, into.entry.counterparty_id),
            (b, LedgerEntryKind::TransferIn, Some(a))
        );
        assert_eq!(into.entry.balance_after.minor_units(), 200);
        assert!(out.entry.id < into.entry.id, "the out leg first");
        assert!(
            outcomes[1].is_err(),
            "a closed wallet cannot take a capture"
        );
        let h2_now = store.get_hold(h2).await.expect("h2");
        assert_eq!(h2_now.status.as_str(), "pending");
        for (id, balance, held) in [(a, 800, 100), (b, 200, 0)] {
            let now = store.get_wallet(id).await.expect("wallet");
            assert_eq!(
                (now.balance.minor_units(), now.held.minor_units()),
                (balance, held)
            );
        }
        let events: Vec<(String, Option<i64>, Option<i64>)> =
            sqlx::query_as("select type, hold_id, entry_id from events where id > $1 order by id")
                .bind(last_event)
                .fetch_all(&store.pool)
                .await
                .expect("events");
        assert_eq!(
            events,
            [
                ("hold.captured".to_owned(), Some(h1.get()), None),
                ("transaction.created".to_owned(), None, Some(out.entry.id)),
                ("transaction.created".to_owned(), None, Some(into.entry.id)),
            ]
        );
        let audit = store.audit().await.expect("audit");
        assert!(audit.is_empty(), "{audit:?}");
        drop_scratch(store, &admin, &name).await;
    }

    #[tokio::test]
    async fn captures_on_wallets_apart_go_in_one_statement_and_the_rest_one_by_one() {
        let Some((store, admin, name)) = scratch().await else {
            return;
        };
        let (a, b, c) = (
            wallet(&store, 1_000).await,
            wallet(&store, 1_000).await,
            wallet(&store, 0).await,
        );
        let (d, e, f) = (
            wallet(&store, 1_000).await,
            wallet(&store, 1_000).await,
            wallet(&store, 1_000).await,
        );
        let h1 = placed(&store, a, 300).await;
        let h2 = placed(&store, b, 200).await;
        let h3 = placed(&store, d, 100).await;
        let h4 = placed(&store, e, 100).await;
        let closed = wallet(&store, 0).await;
        store
            .close_wallet(closed, &Memo::default(), None)
            .await
            .expect("closed");
        let (h5, h6) = (placed(&store, f, 100).await, placed(&store, f, 50).await);
        let last_event: i64 = sqlx::query_scalar("select coalesce(max(id), 0) from events")
            .fetch_one(&store.pool)
            .await
            .expect("events");
        let batch = vec![
            capture(h5, 60, None), // f has two captures: each alone, in arrival order
            capture(h1, 250, None),
            capture(h2, 150, Some(c)),
            capture(h3, 101, None), // more than the hold: refused, explained alone
            capture(h4, 10, Some(closed)), // into a closed wallet: refused, explained alone
            capture(h6, 50, None),
        ];
        let outcomes = committed(together(&store.pool, &batch).await);
        let taken = |i: usize| match &outcomes[i] {
            Ok(Done::Captured(capture)) => (
                capture.hold.id,
                capture.from.entry.kind,
                capture.from.entry.balance_after.minor_units(),
                capture.from.wallet.held.minor_units(),
                capture.to.as_ref().map(|to| {
                    (
                        to.wallet.id,
                        to.entry.kind,
                        to.entry.counterparty_id,
                        to.entry.balance_after.minor_units(),
                    )
                }),
            ),
            other => panic!("{i}: {:?}", other.as_ref().err()),
        };
        use LedgerEntryKind::{TransferIn, TransferOut, Withdrawal};
        assert_eq!(taken(0), (h5, Withdrawal, 940, 50, None));
        assert_eq!(taken(1), (h1, Withdrawal, 750, 0, None));
        assert_eq!(
            taken(2),
            (h2, TransferOut, 850, 0, Some((c, TransferIn, Some(b), 150)))
        );
        assert!(matches!(
            &outcomes[3],
            Err(StoreError::CaptureTooLarge(hold)) if hold.id == h3
        ));
        assert!(
            outcomes[4].is_err(),
            "a closed wallet cannot take a capture"
        );
        assert_eq!(taken(5), (h6, Withdrawal, 890, 0, None));
        for (id, balance, held) in [
            (a, 750, 0),
            (b, 850, 0),
            (c, 150, 0),
            (d, 1_000, 100),
            (e, 1_000, 100),
            (f, 890, 0),
        ] {
            let now = store.get_wallet(id).await.expect("wallet");
            assert_eq!(
                (now.balance.minor_units(), now.held.minor_units()),
                (balance, held),
                "{id}"
            );
        }
        for pending in [h3, h4] {
            let hold = store.get_hold(pending).await.expect("hold");
            assert_eq!(hold.status.as_str(), "pending");
        }
        // The set statement first (its holds, then its entries, out legs first), then f's captures alone.
        let events: Vec<(String, Option<i64>)> =
            sqlx::query_as("select type, hold_id from events where id > $1 order by id")
                .bind(last_event)
                .fetch_all(&store.pool)
                .await
                .expect("events");
        let captured = |hold: HoldId| ("hold.captured".to_owned(), Some(hold.get()));
        let entry = ("transaction.created".to_owned(), None);
        assert_eq!(
            events,
            [
                captured(h1),
                captured(h2),
                entry.clone(),
                entry.clone(),
                entry.clone(),
                captured(h5),
                entry.clone(),
                captured(h6),
                entry,
            ]
        );
        let audit = store.audit().await.expect("audit");
        assert!(audit.is_empty(), "{audit:?}");
        drop_scratch(store, &admin, &name).await;
    }

    #[tokio::test]
    async fn a_batch_decides_in_arrival_order_across_wallets_and_records_keyed_answers() {
        let Some((store, admin, name)) = scratch().await else {
            return;
        };
        let (a, b) = (wallet(&store, 1_000).await, wallet(&store, 0).await);
        let missing = WalletId::from_db(a.get() + b.get() + 1_000);
        use LedgerEntryKind::{Deposit, Withdrawal};
        let batch: Vec<Queued> = vec![
            write(a, Deposit, 500, Some("k1")).0,
            write(b, Deposit, 300, None).0,
            transfer(b, a, 250, Some("k3")),
            write(a, Withdrawal, 1_650, None).0,
            write(a, Withdrawal, 200, None).0, // 100 left: refused, and nothing else changes
            write(missing, Deposit, 1, None).0,
            transfer(b, a, 100, None), // 50 left on b: refused, a unchanged too
            write(b, Withdrawal, 50, Some("k2")).0,
            write(a, Deposit, 50, None).0,
            transfer(a, missing, 10, None),
        ];
        let outcomes = committed(together(&store.pool, &batch).await);
        let balances: Vec<Option<i64>> = outcomes.iter().map(balance_after).collect();
        let expected = [
            Some(1_500),
            Some(300),
            Some(50),
            Some(100),
            None,
            None,
            None,
            Some(0),
            Some(150),
            None,
        ];
        assert_eq!(balances, expected);
        assert!(matches!(
            &outcomes[4],
            Err(StoreError::InsufficientFunds { wallet, .. }) if wallet.balance.minor_units() == 100
        ));
        assert!(matches!(&outcomes[5], Err(StoreError::WalletNotFound(id)) if *id == missing));
        assert!(matches!(
            &outcomes[6],
            Err(StoreError::InsufficientFunds { wallet, .. }) if wallet.id == b && wallet.balance.minor_units() == 50
        ));
        assert!(matches!(&outcomes[9], Err(StoreError::WalletNotFound(id)) if *id == missing));
        let Ok(Done::Transferred(moved)) = &outcomes[2] else {
            panic!("the transfer applied");
        };
        assert_eq!((moved.from.wallet.id, moved.to.wallet.id), (b, a));
        assert_eq!(moved.to.entry.balance_after.minor_units(), 1_750);
        assert_eq!(moved.from.entry.counterparty_id, Some(a));
        assert_eq!(moved.to.entry.counterparty_id, Some(b));
        // Entries in arrival order, one commit time, each wallet showing the balance its own write left.
        let moved: Vec<&Movement> = outcomes.iter().flat_map(movements).collect();
        assert_eq!(moved.len(), 7);
        assert!(moved.windows(2).all(|w| w[0].entry.id < w[1].entry.id));
        assert!(
            moved
                .iter()
                .all(|m| m.entry.created_at == moved[0].entry.created_at)
        );
        assert!(
            moved
                .iter()
                .all(|m| m.wallet.balance == m.entry.balance_after)
        );
        assert_eq!(
            store.get_wallet(a).await.expect("a").balance.minor_units(),
            150
        );
        assert_eq!(
            store.get_wallet(b).await.expect("b").balance.minor_units(),
            0
        );
        assert!(store.audit().await.expect("audit").is_empty());
        // The keyed answers were recorded in the batch's transaction.
        for (key, outcome) in [
            ("k1", &outcomes[0]),
            ("k3", &outcomes[2]),
            ("k2", &outcomes[7]),
        ] {
            let Ok(crate::store::Claim::Replay(stored)) = store.claim_key(key, "hash").await else {
                panic!("{key} has no recorded answer");
            };
            let expected = match outcome {
                Ok(Done::Moved(m)) => format!(
                    "entry {} balance {}",
                    m.entry.id,
                    m.entry.balance_after.minor_units()
                ),
                Ok(Done::Transferred(t)) => {
                    format!("transfer {} {}", t.from.entry.id, t.to.entry.id)
                }
                Ok(Done::Held(_) | Done::Captured(_)) => panic!("{key}: no hold in this batch"),
                Err(error) => panic!("{key}: {error}"),
            };
            assert_eq!(stored.body, expected);
        }
        drop_scratch(store, &admin, &name).await;
    }

    #[tokio::test]
    async fn writes_whose_keys_are_taken_change_nothing_and_the_rest_of_the_batch_commits() {
        let Some((store, admin, name)) = scratch().await else {
            return;
        };
        let a = wallet(&store, 1_000).await;
        let earlier = StoredResponse {
            status: 200,
            location: None,
            body: "earlier".to_owned(),
        };
        let mut conn = store.pool.acquire().await.expect("connection");
        record_answer(&mut conn, "old", "hash", earlier)
            .await
            .expect("an earlier request's answer");
        drop(conn);
        use LedgerEntryKind::{Deposit, Withdrawal};
        let (first, first_answer) = write(a, Deposit, 100, Some("k1"));
        let (old, old_answer) = write(a, Deposit, 200, Some("old"));
        let (again, again_answer) = write(a, Deposit, 300, Some("k1"));
        let (unkeyed, unkeyed_answer) = write(a, Withdrawal, 50, None);
        apply(&store.pool, vec![first, old, again, unkeyed]).await;
        let first = first_answer.await.expect("answered").expect("applied");
        assert_eq!(first.entry.balance_after.minor_units(), 1_100);
        for taken in [old_answer, again_answer] {
            let taken = taken.await.expect("answered");
            assert!(
                matches!(taken, Err(StoreError::IdempotencyKeyInUse)),
                "{taken:?}"
            );
        }
        let unkeyed = unkeyed_answer.await.expect("answered");
        assert_eq!(balance_after_movement(&unkeyed), Some(1_050));
        assert_eq!(
            store.get_wallet(a).await.expect("a").balance.minor_units(),
            1_050
        );
        let bodies: Vec<(String, Option<String>)> =
            sqlx::query_as("select key, body from idempotency_keys order by key")
                .fetch_all(&store.pool)
                .await
                .expect("keys");
        let expected = [
            (
                "k1".to_owned(),
                Some(format!("entry {} balance 1100", first.entry.id)),
            ),
            ("old".to_owned(), Some("earlier".to_owned())),
        ];
        assert_eq!(bodies, expected);
        assert!(store.audit().await.expect("audit").is_empty());
        drop_scratch(store, &admin, &name).await;
    }

    #[tokio::test]
    async fn a_withdrawal_that_needs_expired_holds_released_goes_one_by_one() {
        let Some((store, admin, name)) = scratch().await else {
            return;
        };
        let a = wallet(&store, 1_000).await;
        let lapsed = Utc::now() - chrono::TimeDelta::seconds(1);
        let amount = Amount::from_minor(800).expect("amount");
        store
            .place_hold(a, amount, lapsed, &Memo::default(), None)
            .await
            .expect("hold");
        use LedgerEntryKind::{Deposit, Withdrawal};
        let batch = || vec![write(a, Deposit, 10, None), write(a, Withdrawal, 900, None)];
        let (queued, _): (Vec<Queued>, Vec<_>) = batch().into_iter().unzip();
        assert!(
            matches!(together(&store.pool, &queued).await, Ok(Tried::OneByOne)),
            "the batch leaves the release to the one-by-one path"
        );
        // Nothing of the batch was committed; the queue's own path applies both, in order.
        assert_eq!(
            store.get_wallet(a).await.expect("a").balance.minor_units(),
            1_000
        );
        // With a transfer whose credit cannot apply (the target would overflow): its debit is undone too.
        let full = wallet(&store, i64::MAX - 1).await;
        let (mut queued, answers): (Vec<Queued>, Vec<_>) = batch().into_iter().unzip();
        let (reply, refused) = oneshot::channel();
        let write = Write::Transfer {
            from: a,
            to: full,
            keyed: None,
            reply,
        };
        queued.push(self::queued(write, 5));
        apply(&store.pool, queued).await;
        assert!(matches!(
            refused.await.expect("answered"),
            Err(StoreError::BalanceTooLarge(id)) if id == full
        ));
        let mut answers = answers.into_iter();
        let (Some(first_answer), Some(second_answer)) = (answers.next(), answers.next()) else {
            panic!("two answers");
        };
        let first = first_answer.await.expect("answered");
        let second = second_answer.await.expect("answered");
        assert_eq!(balance_after_movement(&first), Some(1_010));
        assert_eq!(balance_after_movement(&second), Some(110));
        assert_eq!(
            store.get_wallet(a).await.expect("a").balance.minor_units(),
            110
        );
        assert!(store.audit().await.expect("audit").is_empty());
        drop_scratch(store, &admin, &name).await;
    }

    #[tokio::test]
    async fn concurrent_writes_share_commits_and_lose_nothing() {
        let Some((store, admin, name)) = scratch().await else {
            return;
        };
        let mut wallets = Vec::new();
        for _ in 0..8 {
            wallets.push(wallet(&store, 0).await);
        }
        let group = GroupCommit::new(true);
        let memo = Memo::default();
        let one = Amount::from_minor(1).expect("amount");
        let deposits = (0..400).map(|n| {
            let (group, pool, memo) = (&group, &store.pool, &memo);
            let wallet = wallets[n % wallets.len()];
            async move {
                group
                    .submit_move(pool, wallet, LedgerEntryKind::Deposit, one, memo, None)
                    .await
            }
        });
        let results = futures::future::join_all(deposits).await;
        assert!(results.iter().all(Result::is_ok));
        for id in &wallets {
            let wallet = store.get_wallet(*id).await.expect("wallet");
            assert_eq!(wallet.balance.minor_units(), 50);
        }
        // Fewer commit times than writes: the writes were batched.
        let times: i64 = sqlx::query_scalar(
            "select count(distinct created_at) from transactions where kind = 'deposit'",
        )
        .fetch_one(&store.pool)
        .await
        .expect("count");
        assert!(times < 400, "{times} commits for 400 deposits");
        assert!(store.audit().await.expect("audit").is_empty());
        drop_scratch(store, &admin, &name).await;
    }
}
