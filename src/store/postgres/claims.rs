//! Idempotency claims of concurrent requests, inserted together. A claim is a tiny transaction, but each one
//! still costs the server a statement and a commit; under load the claims that queue while one insert runs go
//! in as one statement (`batcher`), each request learning whether its own key was free. Claims run on the
//! claims pool (`synchronous_commit = off`, ADR 0141).

use std::collections::HashSet;

use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::oneshot;

use super::batcher::Batcher;
use crate::store::shared::acquire;
use crate::store::{Result, StoreError, sql};

/// Most claims in one statement.
const MAX_BATCH: usize = 512;
/// Inserts in flight at once.
const RUNNERS: usize = 2;

/// Each key that was free, once (a key twice in one batch is claimed by its first request only).
const INSERT_CLAIMS: &str = "insert into idempotency_keys (key, request_hash, created_at) \
     select key, request_hash, $3 from unnest($1::text[], $2::text[]) as c(key, request_hash) \
     on conflict (key) do nothing returning key";

struct Pending {
    key: String,
    request_hash: String,
    reply: oneshot::Sender<Result<bool>>,
}

#[derive(Clone, Debug)]
pub(super) struct Claims {
    queue: Batcher<Pending>,
}

impl Claims {
    pub(super) fn new() -> Self {
        Self {
            queue: Batcher::new(RUNNERS, MAX_BATCH),
        }
    }

    /// Inserts the claim; `true` if the key was free and is now this request's.
    pub(super) async fn insert(
        &self,
        pool: &PgPool,
        key: &str,
        request_hash: &str,
    ) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            key: key.to_owned(),
            request_hash: request_hash.to_owned(),
            reply,
        };
        let pool = pool.clone();
        self.queue.push(pending, move |batch| {
            let pool = pool.clone();
            async move { apply(&pool, batch).await }
        });
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Internal("the claims queue stopped".to_owned())))
    }
}

async fn apply(pool: &PgPool, batch: Vec<Pending>) {
    if batch.len() > 1 {
        match together(pool, &batch).await {
            Ok(mut free) => {
                for pending in batch {
                    let _ = pending.reply.send(Ok(free.remove(&pending.key)));
                }
                return;
            }
            // The statement was refused, so nothing was inserted: each claim on its own below.
            Err(StoreError::Database(_)) => {}
            Err(error) => {
                for pending in batch {
                    let _ = pending.reply.send(Err(error.for_each_member()));
                }
                return;
            }
        }
    }
    for pending in batch {
        let claimed = alone(pool, &pending).await;
        let _ = pending.reply.send(claimed);
    }
}

async fn together(pool: &PgPool, batch: &[Pending]) -> Result<HashSet<String>> {
    let keys: Vec<&str> = batch.iter().map(|p| p.key.as_str()).collect();
    let hashes: Vec<&str> = batch.iter().map(|p| p.request_hash.as_str()).collect();
    let free: Vec<String> = sqlx::query_scalar(INSERT_CLAIMS)
        .bind(keys)
        .bind(hashes)
        .bind(Utc::now())
        .fetch_all(&mut *acquire(pool).await?)
        .await?;
    Ok(free.into_iter().collect())
}

async fn alone(pool: &PgPool, pending: &Pending) -> Result<bool> {
    let inserted = sqlx::query(sql::CLAIM_KEY)
        .bind(&pending.key)
        .bind(&pending.request_hash)
        .bind(Utc::now())
        .execute(&mut *acquire(pool).await?)
        .await?
        .rows_affected();
    Ok(inserted == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Claim;
    use crate::store::postgres::scratch::{drop_scratch, scratch};

    #[tokio::test]
    async fn concurrent_claims_go_in_together_and_each_key_is_granted_once() {
        let Some((store, admin, name)) = scratch().await else {
            return;
        };
        // Forty requests, twenty keys (each sent twice), one already finished: a key is granted to exactly one
        // request, and a finished one to none.
        let claims = Claims::new();
        assert!(claims.insert(&store.pool, "k-0", "h").await.expect("claim"));
        let requests = (0..40).map(|n| {
            let (claims, pool) = (&claims, &store.pool);
            async move {
                let key = format!("k-{}", n % 20);
                (
                    key.clone(),
                    claims.insert(pool, &key, "h").await.expect("claim"),
                )
            }
        });
        let granted = futures::future::join_all(requests).await;
        for n in 0..20 {
            let key = format!("k-{n}");
            let count = granted.iter().filter(|(k, g)| *k == key && *g).count();
            assert_eq!(count, usize::from(n != 0), "{key}");
        }
        let rows: i64 = sqlx::query_scalar("select count(*) from idempotency_keys")
            .fetch_one(&store.pool)
            .await
            .expect("count");
        assert_eq!(rows, 20);
        // The store's claim still tells a repeat from a new request.
        assert!(matches!(
            store.claim_key("k-3", "other").await,
            Err(StoreError::IdempotencyKeyReused)
        ));
        assert!(matches!(
            store.claim_key("fresh", "h").await,
            Ok(Claim::New)
        ));
        drop_scratch(store, &admin, &name).await;
    }
}
