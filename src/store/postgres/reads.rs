//! Single-wallet reads of concurrent requests, answered together. A balance read is one primary-key probe, and
//! what it costs is the round trip and the statement around it: under load the reads that queue while one query
//! runs go out as one `id = any($1)` query (`batcher`), each request taking its own row. A lone read is one query
//! as before.

use std::collections::HashMap;

use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::oneshot;

use super::batcher::Batcher;
use crate::domain::WalletId;
use crate::store::rows::WalletRow;
use crate::store::shared::acquire;
use crate::store::sql::wallet_columns;
use crate::store::{Result, StoreError, Wallet, sql};

/// Most reads in one query.
const MAX_BATCH: usize = 256;
/// Queries in flight at once: a read is short, and a few in flight keep the pool and the server busy.
const RUNNERS: usize = 4;

const OPEN_WALLETS: &str = concat!(
    "select ",
    wallet_columns!("$2"),
    " from wallets where id = any($1) and closed_at is null"
);

struct Pending {
    id: WalletId,
    reply: oneshot::Sender<Result<Option<Wallet>>>,
}

#[derive(Clone, Debug)]
pub(super) struct Reads {
    queue: Batcher<Pending>,
}

impl Reads {
    pub(super) fn new() -> Self {
        Self {
            queue: Batcher::new(RUNNERS, MAX_BATCH),
        }
    }

    /// The wallet if it exists and is open.
    pub(super) async fn open_wallet(&self, pool: &PgPool, id: WalletId) -> Result<Option<Wallet>> {
        let (reply, answer) = oneshot::channel();
        let pool = pool.clone();
        self.queue.push(Pending { id, reply }, move |batch| {
            let pool = pool.clone();
            async move { apply(&pool, batch).await }
        });
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Internal("the reads queue stopped".to_owned())))
    }
}

async fn apply(pool: &PgPool, batch: Vec<Pending>) {
    if batch.len() > 1 {
        match together(pool, &batch).await {
            Ok(found) => {
                for pending in batch {
                    let _ = pending.reply.send(Ok(found.get(&pending.id).cloned()));
                }
                return;
            }
            // The query was refused or a row could not be read: each read on its own below, where a bad row
            // fails only its own request.
            Err(StoreError::Database(_) | StoreError::Corrupt(_)) => {}
            Err(error) => {
                for pending in batch {
                    let _ = pending.reply.send(Err(error.for_each_member()));
                }
                return;
            }
        }
    }
    for pending in batch {
        let wallet = alone(pool, pending.id).await;
        let _ = pending.reply.send(wallet);
    }
}

/// Every open wallet of the batch by id (a wallet asked for twice is read once).
async fn together(pool: &PgPool, batch: &[Pending]) -> Result<HashMap<WalletId, Wallet>> {
    let mut ids: Vec<i64> = batch.iter().map(|p| p.id.get()).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows: Vec<WalletRow> = sqlx::query_as(OPEN_WALLETS)
        .bind(ids)
        .bind(Utc::now())
        .fetch_all(&mut *acquire(pool).await?)
        .await?;
    rows.into_iter()
        .map(|row| Wallet::try_from(row).map(|wallet| (wallet.id, wallet)))
        .collect()
}

async fn alone(pool: &PgPool, id: WalletId) -> Result<Option<Wallet>> {
    sqlx::query_as::<_, WalletRow>(sql::GET_OPEN_WALLET)
        .bind(id.get())
        .bind(Utc::now())
        .fetch_optional(&mut *acquire(pool).await?)
        .await?
        .map(Wallet::try_from)
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Amount, Currency};
    use crate::store::Memo;
    use crate::store::postgres::scratch::{drop_scratch, scratch};

    #[tokio::test]
    async fn reads_batched_together_each_get_their_own_wallet() {
        let Some((store, admin, name)) = scratch().await else {
            return;
        };
        let eur = Currency::parse("EUR").expect("EUR");
        let mut ids = Vec::new();
        for cents in [1000, 0, 0] {
            let created = store
                .create_wallet(
                    "reader",
                    eur,
                    Amount::from_minor(cents).expect("amount"),
                    &Memo::default(),
                    None,
                )
                .await
                .expect("wallet");
            ids.push(created.wallet.id);
        }
        let (a, b, closed) = (ids[0], ids[1], ids[2]);
        store
            .close_wallet(closed, &Memo::default(), None)
            .await
            .expect("close");
        let missing = WalletId::from_db(closed.get() + 1000);

        // One batch, as a runner takes it: a wallet twice, one missing, one closed.
        let asked = [a, b, a, missing, closed];
        let mut answers = Vec::new();
        let batch = asked
            .iter()
            .map(|&id| {
                let (reply, answer) = oneshot::channel();
                answers.push(answer);
                Pending { id, reply }
            })
            .collect();
        apply(&store.pool, batch).await;
        let mut got = Vec::new();
        for answer in answers {
            let wallet = answer.await.expect("answered").expect("read");
            got.push(wallet.map(|w| (w.id, w.balance.minor_units())));
        }
        assert_eq!(
            got,
            [Some((a, 1000)), Some((b, 0)), Some((a, 1000)), None, None]
        );

        // Through the store, many at once: each answer is its own wallet's.
        let reads = (0..60).map(|n| {
            let store = &store;
            let id = asked[n % asked.len()];
            async move { (id, store.get_wallet(id).await) }
        });
        for (id, read) in futures::future::join_all(reads).await {
            match read {
                Ok(wallet) => {
                    assert_eq!(wallet.id, id);
                    assert!(id == a || id == b, "{id:?} is missing or closed");
                }
                Err(StoreError::WalletNotFound(not_found)) => {
                    assert_eq!(not_found, id);
                    assert!(id == missing || id == closed);
                }
                Err(other) => panic!("{other:?}"),
            }
        }
        drop_scratch(store, &admin, &name).await;
    }
}
