//! Group commit across wallets for deposits and withdrawals, keyed or not.
//!
//! Each commit waits for a WAL flush, and each statement for a round trip: applied one by one, deposits are
//! limited by commits and statements per second whatever the server could do with them together. Here writes
//! that arrive while a batch is running queue up, and the queue becomes the next batch: one transaction and a
//! fixed handful of statements whatever its size (lock the wallets in id order, insert every entry from arrays,
//! set every touched balance, record every keyed answer). There is no timer: a lone write runs at once as before,
//! and a busy server shares one commit among many writes. The outcome of each write is decided here in arrival
//! order on the locked rows, so several writes to one wallet get exact running balances, and a refused one changes
//! nothing for the others. Answers go out only after the commit; a commit whose connection failed leaves the
//! outcomes unknown and every member is answered as such, never retried.
//!
//! `--write-batching false` turns this off (each write its own transaction), so the bench can measure both.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tokio::sync::oneshot;

use super::batcher::Batcher;
use super::{apply_movement_releasing, move_once, record};
use crate::domain::{Amount, LedgerEntryKind, WalletId};
use crate::store::rows::{EntryRow, WalletRow};
use crate::store::shared::{acquire, is_debit};
use crate::store::sql::wallet_columns;
use crate::store::{
    Finish, LedgerEntry, Memo, Movement, Render, Result, StoreError, StoredResponse, Wallet,
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

/// Every entry of the batch from parallel arrays, in arrival order (identity values follow the select's order).
const INSERT_ENTRIES: &str = "insert into transactions (wallet_id, kind, amount, balance_after, created_at, actor, reference, \
                               description, metadata) \
     select wallet_id, kind, amount, balance_after, $9, actor, reference, description, metadata \
     from unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::text[], $7::text[], \
                 $8::text[]) with ordinality \
          as i(wallet_id, kind, amount, balance_after, actor, reference, description, metadata, ord) \
     order by ord \
     returning id, wallet_id, kind, amount, balance_after, counterparty_id, created_at, actor, reference, \
               description, metadata";

/// One final balance per touched wallet: never two rows for one wallet (an `UPDATE … FROM` applies only one).
/// `wallets.id = any($1)` lets the planner find the rows by index: it cannot see how short `unnest` is, and joined
/// on `v.id` alone it may scan the whole table.
const SET_BALANCES: &str = "update wallets set balance = v.balance \
     from unnest($1::bigint[], $2::bigint[]) as v(id, balance) \
     where wallets.id = v.id and wallets.id = any($1)";

/// Every keyed answer of the batch (keys are unique: each was claimed by one request); `any($1)` as above.
const STORE_RESPONSES: &str = "update idempotency_keys k \
     set status = v.status, location = v.location, body = v.body \
     from unnest($1::text[], $2::int[], $3::text[], $4::text[]) as v(key, status, location, body) \
     where k.key = v.key and k.key = any($1)";

/// The key and answer renderer of a keyed write, owned so that the batch's task can record the answer.
struct Keyed {
    key: String,
    render: Render<Movement>,
}

impl Keyed {
    fn finish(&self) -> Finish<'_, Movement> {
        Finish {
            key: &self.key,
            render: &self.render,
        }
    }
}

struct Queued {
    wallet: WalletId,
    kind: LedgerEntryKind,
    amount: Amount,
    memo: Memo,
    keyed: Option<Keyed>,
    reply: oneshot::Sender<Result<Movement>>,
}

#[derive(Clone, Debug)]
pub(super) struct GroupCommit {
    queue: Batcher<Queued>,
    batching: bool,
}

impl GroupCommit {
    pub(super) fn new(batching: bool) -> Self {
        Self {
            queue: Batcher::new(RUNNERS, MAX_BATCH),
            batching,
        }
    }

    pub(super) async fn submit(
        &self,
        pool: &PgPool,
        wallet: WalletId,
        kind: LedgerEntryKind,
        amount: Amount,
        memo: &Memo,
        finish: Option<Finish<'_, Movement>>,
    ) -> Result<Movement> {
        if !self.batching {
            return alone(pool, wallet, kind, amount, memo, finish).await;
        }
        let (reply, answer) = oneshot::channel();
        let queued = Queued {
            wallet,
            kind,
            amount,
            memo: memo.clone(),
            keyed: finish.map(|f| Keyed {
                key: f.key.to_owned(),
                render: f.render.clone(),
            }),
            reply,
        };
        let pool = pool.clone();
        self.queue.push(queued, move |batch| {
            let pool = pool.clone();
            async move { apply(&pool, batch).await }
        });
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Internal("the write queue stopped".to_owned())))
    }
}

async fn apply(pool: &PgPool, mut batch: Vec<Queued>) {
    metrics::histogram!("revwallet_write_batch_size").record(batch.len() as f64);
    if batch.len() == 1 {
        let Some(only) = batch.pop() else { return };
        let finish = only.keyed.as_ref().map(Keyed::finish);
        let result = alone(
            pool,
            only.wallet,
            only.kind,
            only.amount,
            &only.memo,
            finish,
        )
        .await;
        let _ = only.reply.send(result);
        return;
    }
    match together(pool, &batch).await {
        Ok(Some(outcomes)) => {
            for (queued, outcome) in batch.into_iter().zip(outcomes) {
                let _ = queued.reply.send(outcome);
            }
        }
        // Nothing was committed: a statement was refused, or a write needs expired holds released first.
        Ok(None) | Err(StoreError::Database(_)) => one_by_one(pool, batch).await,
        Err(error) => answer_all(batch, &error),
    }
}

/// One write in its own transaction (one statement when it is not keyed).
async fn alone(
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

/// A write the batch applies: its place in the batch and the entry it writes.
struct Planned {
    index: usize,
    balance_after: i64,
}

/// The whole batch in one transaction. `Ok(None)`: nothing was committed and the batch must go one by one (a
/// withdrawal that only releasing expired holds could allow, or a statement that did not do what it should).
async fn together(pool: &PgPool, batch: &[Queued]) -> Result<Option<Vec<Result<Movement>>>> {
    let now = Utc::now();
    let mut ids: Vec<i64> = batch.iter().map(|q| q.wallet.get()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut conn = acquire(pool).await?;
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let locked: Vec<LockedRow> = sqlx::query_as(LOCK_WALLETS)
        .bind(&ids)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
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
    let Some((mut outcomes, planned)) = decide(batch, &mut wallets) else {
        return Ok(None);
    };
    if !planned.is_empty() {
        let Some(entries) = insert_entries(&mut tx, batch, &planned, now).await? else {
            return Ok(None);
        };
        let (touched, balances): (Vec<i64>, Vec<i64>) = wallets
            .values()
            .filter(|w| w.touched)
            .map(|w| (w.wallet.id.get(), w.wallet.balance.minor_units()))
            .unzip();
        let updated = sqlx::query(SET_BALANCES)
            .bind(&touched)
            .bind(&balances)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if updated != touched.len() as u64 {
            return Ok(None);
        }
        for (plan, entry) in planned.iter().zip(entries) {
            let queued = &batch[plan.index];
            let Some(running) = wallets.get(&queued.wallet.get()) else {
                return Ok(None);
            };
            let wallet = Wallet {
                balance: entry.balance_after,
                ..running.wallet.clone()
            };
            outcomes[plan.index] = Ok(Movement { wallet, entry });
        }
        if !store_responses(&mut tx, batch, &outcomes).await? {
            return Ok(None);
        }
    }
    tx.commit().await?;
    Ok(Some(outcomes))
}

/// Each write's outcome in arrival order on the locked balances. `None` when a withdrawal would be refused while
/// the wallet still counts holds past their expiry: releasing them is the one-by-one path's work.
fn decide(
    batch: &[Queued],
    wallets: &mut HashMap<i64, Running>,
) -> Option<(Vec<Result<Movement>>, Vec<Planned>)> {
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut planned = Vec::with_capacity(batch.len());
    for (index, queued) in batch.iter().enumerate() {
        let amount = queued.amount.minor_units();
        let Some(running) = wallets.get_mut(&queued.wallet.get()) else {
            outcomes.push(Err(StoreError::WalletNotFound(queued.wallet)));
            continue;
        };
        let balance = running.wallet.balance.minor_units();
        let next = if is_debit(queued.kind) {
            (balance - running.held_now >= amount).then(|| balance - amount)
        } else {
            balance.checked_add(amount)
        };
        let Some(balance_after) = next.and_then(|b| Amount::from_minor(b).map(|a| (b, a))) else {
            if is_debit(queued.kind) && running.held_now > running.wallet.held.minor_units() {
                return None;
            }
            outcomes.push(Err(if is_debit(queued.kind) {
                StoreError::InsufficientFunds {
                    wallet: running.wallet.clone(),
                    requested: queued.amount,
                }
            } else {
                StoreError::BalanceTooLarge(queued.wallet)
            }));
            continue;
        };
        running.wallet.balance = balance_after.1;
        running.touched = true;
        planned.push(Planned {
            index,
            balance_after: balance_after.0,
        });
        // Replaced by the movement once its entry is written.
        outcomes.push(Err(StoreError::Internal("not applied".to_owned())));
    }
    Some((outcomes, planned))
}

/// Inserts the planned entries; `None` if the database did not return one entry per plan.
async fn insert_entries(
    tx: &mut PgConnection,
    batch: &[Queued],
    planned: &[Planned],
    now: DateTime<Utc>,
) -> Result<Option<Vec<LedgerEntry>>> {
    let writes = || planned.iter().map(|p| &batch[p.index]);
    let memo = |field: fn(&Memo) -> &Option<String>| -> Vec<Option<String>> {
        writes().map(|q| field(&q.memo).clone()).collect()
    };
    let mut rows: Vec<EntryRow> = sqlx::query_as(INSERT_ENTRIES)
        .bind(writes().map(|q| q.wallet.get()).collect::<Vec<_>>())
        .bind(writes().map(|q| q.kind.as_str()).collect::<Vec<_>>())
        .bind(writes().map(|q| q.amount.minor_units()).collect::<Vec<_>>())
        .bind(planned.iter().map(|p| p.balance_after).collect::<Vec<_>>())
        .bind(memo(|m| &m.actor))
        .bind(memo(|m| &m.reference))
        .bind(memo(|m| &m.description))
        .bind(memo(|m| &m.metadata))
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
    if rows.len() != planned.len() {
        return Ok(None);
    }
    // Identity values were drawn in the insert's order, which is arrival order.
    rows.sort_unstable_by_key(|row| row.id);
    rows.into_iter()
        .map(LedgerEntry::try_from)
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Records the answers of the batch's keyed writes that were applied (a refused one's answer is kept by its
/// request afterwards, as a decline). `false` if a claim's row was not there.
async fn store_responses(
    tx: &mut PgConnection,
    batch: &[Queued],
    outcomes: &[Result<Movement>],
) -> Result<bool> {
    let answers: Vec<(&str, StoredResponse)> = batch
        .iter()
        .zip(outcomes)
        .filter_map(|(queued, outcome)| match (&queued.keyed, outcome) {
            (Some(keyed), Ok(movement)) => Some((keyed.key.as_str(), (keyed.render)(movement))),
            _ => None,
        })
        .collect();
    if answers.is_empty() {
        return Ok(true);
    }
    let recorded = sqlx::query(STORE_RESPONSES)
        .bind(answers.iter().map(|(key, _)| *key).collect::<Vec<_>>())
        .bind(
            answers
                .iter()
                .map(|(_, a)| i32::from(a.status))
                .collect::<Vec<_>>(),
        )
        .bind(
            answers
                .iter()
                .map(|(_, a)| a.location.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(
            answers
                .iter()
                .map(|(_, a)| a.body.as_str())
                .collect::<Vec<_>>(),
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
    Ok(recorded == answers.len() as u64)
}

/// Applies each write in turn inside one transaction, each with its own outcome; used when the batch cannot be
/// decided from the locked rows alone.
async fn one_by_one(pool: &PgPool, batch: Vec<Queued>) {
    let mut results = Vec::with_capacity(batch.len());
    let attempt: Result<()> = async {
        let mut conn = acquire(pool).await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let mut ids: Vec<i64> = batch.iter().map(|q| q.wallet.get()).collect();
        ids.sort_unstable();
        ids.dedup();
        sqlx::query(LOCK_IDS).bind(&ids).execute(&mut *tx).await?;
        for queued in &batch {
            let (wallet, memo) = (queued.wallet, &queued.memo);
            match apply_movement_releasing(&mut tx, wallet, queued.kind, queued.amount, memo).await
            {
                Ok(movement) => {
                    let finish = queued.keyed.as_ref().map(Keyed::finish);
                    record(&mut tx, finish, &movement).await?;
                    results.push(Ok(movement));
                }
                Err(error @ (StoreError::Database(_) | StoreError::Unavailable(_))) => {
                    return Err(error);
                }
                Err(refused) => results.push(Err(refused)),
            }
        }
        tx.commit().await?;
        Ok(())
    }
    .await;
    match attempt {
        Ok(()) => {
            for (queued, result) in batch.into_iter().zip(results) {
                let _ = queued.reply.send(result);
            }
        }
        // The server refused a statement, so nothing was committed: give each write its own try.
        Err(StoreError::Database(_)) => {
            for queued in batch {
                let finish = queued.keyed.as_ref().map(Keyed::finish);
                let (wallet, memo) = (queued.wallet, &queued.memo);
                let result = alone(pool, wallet, queued.kind, queued.amount, memo, finish).await;
                let _ = queued.reply.send(result);
            }
        }
        // The connection failed, possibly during the commit: the outcome is unknown, so nothing is retried.
        Err(error) => answer_all(batch, &error),
    }
}

/// Gives every member the same failure. `StoreError` holds sqlx errors and is not `Clone`, so each gets an
/// `Unavailable` (503) carrying the original message.
fn answer_all(batch: Vec<Queued>, error: &StoreError) {
    for queued in batch {
        let copy = StoreError::Unavailable(sqlx::Error::Protocol(error.to_string()));
        let _ = queued.reply.send(Err(copy));
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
        let queued = Queued {
            wallet,
            kind,
            amount: Amount::from_minor(cents).expect("amount"),
            memo: Memo::actor(Some("tester")),
            keyed: key.map(|key| Keyed {
                key: key.to_owned(),
                render,
            }),
            reply,
        };
        (queued, answer)
    }

    fn balance_after(outcome: &Result<Movement>) -> Option<i64> {
        outcome
            .as_ref()
            .ok()
            .map(|m| m.entry.balance_after.minor_units())
    }

    #[tokio::test]
    async fn a_batch_decides_in_arrival_order_across_wallets_and_records_keyed_answers() {
        let Some((store, admin, name)) = scratch().await else {
            return;
        };
        let (a, b) = (wallet(&store, 1_000).await, wallet(&store, 0).await);
        let missing = WalletId::from_db(a.get() + b.get() + 1_000);
        for key in ["k1", "k2"] {
            assert!(matches!(
                store.claim_key(key, "hash").await.expect("claim"),
                crate::store::Claim::New
            ));
        }
        use LedgerEntryKind::{Deposit, Withdrawal};
        let batch: Vec<Queued> = [
            write(a, Deposit, 500, Some("k1")),
            write(b, Deposit, 300, None),
            write(a, Withdrawal, 1_400, None),
            write(a, Withdrawal, 200, None), // 100 left: refused, and nothing else changes
            write(missing, Deposit, 1, None),
            write(b, Withdrawal, 300, Some("k2")),
            write(a, Deposit, 50, None),
        ]
        .into_iter()
        .map(|(queued, _)| queued)
        .collect();
        let outcomes = together(&store.pool, &batch)
            .await
            .expect("the batch committed")
            .expect("decided without the one-by-one path");
        let balances: Vec<Option<i64>> = outcomes.iter().map(balance_after).collect();
        assert_eq!(
            balances,
            [
                Some(1_500),
                Some(300),
                Some(100),
                None,
                None,
                Some(0),
                Some(150)
            ]
        );
        assert!(matches!(
            &outcomes[3],
            Err(StoreError::InsufficientFunds { wallet, .. }) if wallet.balance.minor_units() == 100
        ));
        assert!(matches!(&outcomes[4], Err(StoreError::WalletNotFound(id)) if *id == missing));
        // Entries in arrival order, one commit time, each wallet showing the balance its own write left.
        let ids: Vec<i64> = outcomes.iter().flatten().map(|m| m.entry.id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        let moved: Vec<&Movement> = outcomes.iter().flatten().collect();
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
        for (key, outcome) in [("k1", &outcomes[0]), ("k2", &outcomes[5])] {
            let Ok(crate::store::Claim::Replay(stored)) = store.claim_key(key, "hash").await else {
                panic!("{key} has no recorded answer");
            };
            let movement = outcome.as_ref().expect("applied");
            let expected = format!(
                "entry {} balance {}",
                movement.entry.id,
                movement.entry.balance_after.minor_units()
            );
            assert_eq!(stored.body, expected);
        }
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
            together(&store.pool, &queued)
                .await
                .expect("nothing failed")
                .is_none(),
            "the batch leaves the release to the one-by-one path"
        );
        // Nothing of the batch was committed; the queue's own path applies both, in order.
        assert_eq!(
            store.get_wallet(a).await.expect("a").balance.minor_units(),
            1_000
        );
        let (queued, answers): (Vec<Queued>, Vec<_>) = batch().into_iter().unzip();
        apply(&store.pool, queued).await;
        let mut answers = answers.into_iter();
        let (Some(first_answer), Some(second_answer)) = (answers.next(), answers.next()) else {
            panic!("two answers");
        };
        let first = first_answer.await.expect("answered");
        let second = second_answer.await.expect("answered");
        assert_eq!(balance_after(&first), Some(1_010));
        assert_eq!(balance_after(&second), Some(110));
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
                    .submit(pool, wallet, LedgerEntryKind::Deposit, one, memo, None)
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
