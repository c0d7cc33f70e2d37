//! Coalescing of concurrent deposits and withdrawals on one wallet.
//!
//! Operations on one wallet serialise on its row lock, and each commit waits for its WAL flush: a hot wallet is
//! limited to one operation per commit. Here operations that arrive while one is running on the same wallet
//! queue up, and the queue is then applied as one database transaction (all-deposit queues as one statement),
//! so a commit carries many operations. Each operation still gets its own ledger entry, its own balance after,
//! and its own answer; a wallet that sees no concurrency takes the one-statement path unchanged.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::oneshot;

use super::{apply_movement, apply_movement_releasing, deposit_all, move_once};
use crate::domain::{Amount, LedgerEntryKind, WalletId};
use crate::store::shared::acquire;
use crate::store::{Memo, Movement, Result, StoreError};

/// One queued deposit or withdrawal and where its answer goes.
struct Queued {
    kind: LedgerEntryKind,
    amount: Amount,
    memo: Memo,
    reply: oneshot::Sender<Result<Movement>>,
}

type Queues = Arc<Mutex<HashMap<i64, Vec<Queued>>>>;

/// A wallet present in the map has a runner applying its operations; its vector holds what waits for the next batch.
#[derive(Debug, Clone, Default)]
pub struct Coalescer {
    queues: Queues,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} {}", self.kind, self.amount.minor_units())
    }
}

impl Coalescer {
    pub async fn submit(
        &self,
        pool: &PgPool,
        id: WalletId,
        kind: LedgerEntryKind,
        amount: Amount,
        memo: &Memo,
    ) -> Result<Movement> {
        let (reply, answer) = oneshot::channel();
        let queued = Queued {
            kind,
            amount,
            memo: memo.clone(),
            reply,
        };
        let first = {
            let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
            match queues.entry(id.get()) {
                Entry::Occupied(mut waiting) => {
                    waiting.get_mut().push(queued);
                    None
                }
                Entry::Vacant(idle) => {
                    idle.insert(Vec::new());
                    Some(queued)
                }
            }
        };
        if let Some(first) = first {
            // The runner owns the batch: a request that goes away does not cancel operations queued behind it.
            tokio::spawn(run(pool.clone(), self.queues.clone(), id, vec![first]));
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Internal(
                "the operation queue stopped".to_owned(),
            ))
        })
    }
}

/// Removes the wallet's queue if the runner panics, so later operations start a new runner instead of waiting.
struct RunnerGuard {
    queues: Queues,
    id: i64,
    armed: bool,
}

impl Drop for RunnerGuard {
    fn drop(&mut self) {
        if self.armed {
            self.queues
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&self.id);
        }
    }
}

async fn run(pool: PgPool, queues: Queues, id: WalletId, mut batch: Vec<Queued>) {
    let mut guard = RunnerGuard {
        queues: queues.clone(),
        id: id.get(),
        armed: true,
    };
    loop {
        apply(&pool, id, batch).await;
        let mut waiting = queues.lock().unwrap_or_else(PoisonError::into_inner);
        match waiting.get_mut(&id.get()) {
            Some(next) if !next.is_empty() => batch = std::mem::take(next),
            _ => {
                waiting.remove(&id.get());
                guard.armed = false;
                return;
            }
        }
    }
}

async fn apply(pool: &PgPool, id: WalletId, mut batch: Vec<Queued>) {
    metrics::histogram!("revwallet_coalesced_batch_size").record(batch.len() as f64);
    if batch.len() == 1 {
        let Some(only) = batch.pop() else { return };
        let result = move_once(pool, id, only.kind, only.amount, &only.memo).await;
        let _ = only.reply.send(result);
        return;
    }
    if batch.iter().all(|q| q.kind == LedgerEntryKind::Deposit) {
        let amounts: Vec<i64> = batch.iter().map(|q| q.amount.minor_units()).collect();
        let memos: Vec<Memo> = batch.iter().map(|q| q.memo.clone()).collect();
        match deposit_all(pool, id, &amounts, &memos).await {
            Ok(Some(movements)) if movements.len() == batch.len() => {
                for (queued, movement) in batch.into_iter().zip(movements) {
                    let _ = queued.reply.send(Ok(movement));
                }
                return;
            }
            // Refused (closed wallet, balance overflow) or failed before anything applied: one by one below.
            Ok(_) | Err(StoreError::Database(_)) => {}
            Err(error) => return answer_all(batch, &error),
        }
    }
    one_by_one(pool, id, batch).await;
}

/// Applies each operation in turn inside one transaction, each with its own outcome.
async fn one_by_one(pool: &PgPool, id: WalletId, batch: Vec<Queued>) {
    let mut results = Vec::with_capacity(batch.len());
    let attempt: Result<()> = async {
        let mut conn = acquire(pool).await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        for queued in &batch {
            let memo = &queued.memo;
            let moved =
                apply_movement(&mut tx, id, queued.kind, queued.amount, memo, Utc::now()).await?;
            results.push(match moved {
                Some(movement) => Ok(movement),
                // Refused: released expired holds may cover it; otherwise explained.
                None => {
                    match apply_movement_releasing(
                        &mut tx,
                        id,
                        queued.kind,
                        queued.amount,
                        &queued.memo,
                    )
                    .await
                    {
                        Err(error @ (StoreError::Database(_) | StoreError::Unavailable(_))) => {
                            return Err(error);
                        }
                        other => other,
                    }
                }
            });
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
        // The server refused a statement, so nothing was committed: give each operation its own try.
        Err(StoreError::Database(_)) => {
            for queued in batch {
                let memo = &queued.memo;
                let result = move_once(pool, id, queued.kind, queued.amount, memo).await;
                let _ = queued.reply.send(result);
            }
        }
        // The connection failed, possibly during the commit: the outcome is unknown, so nothing is retried.
        Err(error) => answer_all(batch, &error),
    }
}

/// Gives every queued request the same failure. `StoreError` holds sqlx errors and is not `Clone`, so each gets
/// an `Unavailable` (503) carrying the original message.
fn answer_all(batch: Vec<Queued>, error: &StoreError) {
    for queued in batch {
        let copy = StoreError::Unavailable(sqlx::Error::Protocol(error.to_string()));
        let _ = queued.reply.send(Err(copy));
    }
}
