//! Webhooks as the store keeps them: the endpoints, the dispatcher's cursor in the event feed, deliveries (one per
//! webhook and event) and their attempts. The worker that performs deliveries lives in `crate::webhooks`.
//!
//! Claims: a delivery is attempted under a lease (`claimed_until`, `claim_token`), taken by a conditional UPDATE
//! (on PostgreSQL over rows locked `for update skip locked`), so replicas never attempt one delivery at once and
//! a crashed replica's claim lapses. No transaction is open while a delivery is on the wire.

use std::fmt;

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::shared::acquire;
use super::{Page, Result, Store, StoreError};

/// How a webhook's signing secret is kept (see migrations/postgres/0006_webhooks.sql).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub kind: SecretKind,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// `value` is the signing secret.
    Plain,
    /// `value` is a seed; the signing secret is derived from it with the server key.
    Derived,
}

impl SecretKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Derived => "derived",
        }
    }
}

/// Never shows the secret, so records can be logged whole.
impl fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoredSecret({:?}, ..)", self.kind)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    /// Event types; `["*"]` is every type.
    pub events: Vec<String>,
    pub secret: StoredSecret,
    /// Only events after this feed position are delivered to it.
    pub start_after: i64,
    pub created_at: DateTime<Utc>,
}

impl Webhook {
    pub fn wants(&self, event_type: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == event_type)
    }
}

#[derive(Debug, Clone)]
pub struct NewWebhook {
    pub url: String,
    pub events: Vec<String>,
    pub secret: StoredSecret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Oldest first.
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Attempt {
    pub delivery_id: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// `delivered` or `failed`.
    pub outcome: String,
    pub response_status: Option<i32>,
    pub error: Option<String>,
}

/// A delivery this process holds the lease of, with what it needs to attempt it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub url: String,
    pub secret: StoredSecret,
    pub token: String,
}

/// What one attempt came to, and what happens next.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub response_status: Option<u16>,
    pub error: Option<String>,
    pub next: NextStep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    RetryAt(DateTime<Utc>),
    /// Retried for the whole window: given up.
    Failed,
}

/// An event as the dispatcher fans it out: its feed position, type and the body every webhook gets.
#[derive(Debug, Clone)]
pub struct FeedItem {
    pub event_id: i64,
    pub event_type: String,
    pub payload: String,
}

/// The pending work, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeliveryBacklog {
    pub pending: i64,
    /// When the oldest pending delivery that is due now was created.
    pub oldest_due: Option<DateTime<Utc>>,
}

#[derive(Debug, FromRow)]
struct WebhookRow {
    id: i64,
    url: String,
    events: String,
    secret_kind: String,
    secret: String,
    start_after: i64,
    created_at: DateTime<Utc>,
}

fn secret_of(kind: &str, value: String) -> Result<StoredSecret> {
    let kind = match kind {
        "plain" => SecretKind::Plain,
        "derived" => SecretKind::Derived,
        other => {
            return Err(StoreError::Corrupt(format!(
                "webhook secret kind {other:?}"
            )));
        }
    };
    Ok(StoredSecret { kind, value })
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StoreError;
    fn try_from(row: WebhookRow) -> Result<Self> {
        let events = serde_json::from_str(&row.events)
            .map_err(|_| StoreError::Corrupt(format!("webhook {} events", row.id)))?;
        Ok(Self {
            id: row.id,
            url: row.url,
            events,
            secret: secret_of(&row.secret_kind, row.secret)?,
            start_after: row.start_after,
            created_at: row.created_at,
        })
    }
}

#[derive(Debug, FromRow)]
struct DeliveryRow {
    id: i64,
    webhook_id: i64,
    event_id: i64,
    event_type: String,
    status: String,
    next_attempt_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, FromRow)]
struct ClaimedRow {
    id: i64,
    webhook_id: i64,
    event_id: i64,
    payload: String,
    attempts: i32,
    created_at: DateTime<Utc>,
    url: String,
    secret_kind: String,
    secret: String,
}

const WEBHOOK_COLUMNS: &str = "id, url, events, secret_kind, secret, start_after, created_at";

/// The feed position a new webhook starts after: the end of the feed (events not yet numbered come after it).
const FEED_END: &str = "select coalesce(max(position), 0) from events";

/// Inserts a webhook unless `$7` exist already.
fn insert_webhook_sql() -> String {
    format!(
        "insert into webhooks (url, events, secret_kind, secret, start_after, created_at) \
         select $1, $2, $3, $4, $5, $6 where (select count(*) from webhooks) < $7 \
         returning {WEBHOOK_COLUMNS}"
    )
}

const DISPATCH_POSITION: &str = "select position from webhook_dispatch where id = 1";
/// Compare-and-set: a dispatcher that read an old position advances nothing.
const ADVANCE_DISPATCH: &str =
    "update webhook_dispatch set position = $2 where id = 1 and position = $1";
/// Compare-and-set to the end of the feed, never backwards.
const SKIP_TO_FEED_END: &str = "update webhook_dispatch \
     set position = (select coalesce(max(position), 0) from events) \
     where id = 1 and position = $1 and position < (select coalesce(max(position), 0) from events)";
const INSERT_DELIVERY: &str = "insert into webhook_deliveries \
     (webhook_id, event_id, event_type, payload, next_attempt_at, created_at) values ($1, $2, $3, $4, $5, $5) \
     on conflict (webhook_id, event_id) do nothing";

/// Due deliveries to claim, at most `$2` in flight per webhook (claims of every replica count), so one slow
/// endpoint cannot take all the worker's slots. `$1` now, `$3` how many.
const DUE_DELIVERIES: &str = "with busy as ( \
         select webhook_id, count(*) as n from webhook_deliveries \
         where status = 'pending' and claimed_until > $1 group by webhook_id), \
     due as ( \
         select d.id, d.next_attempt_at, coalesce(b.n, 0) as busy, \
                row_number() over (partition by d.webhook_id order by d.next_attempt_at, d.id) as rn \
         from webhook_deliveries d left join busy b on b.webhook_id = d.webhook_id \
         where d.status = 'pending' and d.next_attempt_at <= $1 \
           and (d.claimed_until is null or d.claimed_until <= $1)) \
     select id from due where rn + busy <= $2 order by next_attempt_at, id limit $3";

/// `$1` the candidate ids, `$2` lease end, `$3` token, `$4` now. Locked rows (another replica claiming them right
/// now) are skipped, and the conditions are checked again on the locked rows.
const CLAIM_PG: &str = "update webhook_deliveries set claimed_until = $2, claim_token = $3 \
     where id in (select id from webhook_deliveries where id = any($1) and status = 'pending' \
                  and (claimed_until is null or claimed_until <= $4) for update skip locked)";
/// SQLite: one writer at a time; the conditional UPDATE is the claim. `$1` a JSON array of ids.
const CLAIM_SQLITE: &str = "update webhook_deliveries set claimed_until = $2, claim_token = $3 \
     where id in (select value from json_each($1)) and status = 'pending' \
       and (claimed_until is null or claimed_until <= $4)";
const CLAIMED: &str = "select d.id, d.webhook_id, d.event_id, d.payload, d.attempts, d.created_at, \
            w.url, w.secret_kind, w.secret \
     from webhook_deliveries d join webhooks w on w.id = d.webhook_id \
     where d.claim_token = $1 and d.status = 'pending' order by d.id";

/// Ends an attempt, only while this process still holds the lease.
const FINISH_ATTEMPT: &str = "update webhook_deliveries set status = $3, attempts = attempts + 1, \
         next_attempt_at = $4, claimed_until = null, claim_token = null, finished_at = $5 \
     where id = $1 and claim_token = $2 and status = 'pending'";
const INSERT_ATTEMPT: &str = "insert into webhook_attempts \
     (delivery_id, started_at, finished_at, outcome, response_status, error) values ($1, $2, $3, $4, $5, $6)";

const DELIVERIES_PAGE: &str = "select id, webhook_id, event_id, event_type, status, next_attempt_at, created_at, \
            finished_at \
     from webhook_deliveries where webhook_id = $1 and id < $2 order by id desc limit $3";
const ATTEMPTS_OF: &str = "select a.delivery_id, a.started_at, a.finished_at, a.outcome, a.response_status, a.error \
     from webhook_attempts a join webhook_deliveries d on d.id = a.delivery_id \
     where d.webhook_id = $1 and a.delivery_id between $2 and $3 order by a.delivery_id, a.id";

const COUNT_PENDING: &str = "select count(*) from webhook_deliveries where status = 'pending'";
const OLDEST_DUE: &str = "select min(created_at) from webhook_deliveries \
     where status = 'pending' and next_attempt_at <= $1";

/// `$1` cutoff, `$2` batch size.
const PRUNE_DELIVERIES: &str = "delete from webhook_deliveries where id in ( \
     select id from webhook_deliveries where status <> 'pending' and finished_at < $1 \
     order by finished_at limit $2)";

/// Events the dispatcher has passed (`$1`, its position) and older than `$2`, up to `$3` of them. Only the
/// `events` columns every part relies on are used: `id`, `position`, `created_at`. The newest numbered event
/// always stays: the next position is numbered after the highest one in the table, so deleting it would hand
/// out positions again that feed readers (and the dispatcher) have already passed.
const PRUNE_EVENTS: &str = "delete from events where id in ( \
     select id from events where position <= $1 and created_at < $2 \
       and position < (select max(position) from events) \
     order by position limit $3)";

/// Runs `$body` in a write transaction with `$conn` bound to its connection: on PostgreSQL a transaction from
/// the pool, on SQLite the in-process writer's `BEGIN IMMEDIATE`. `?` inside rolls back.
macro_rules! in_transaction {
    ($store:expr, $conn:ident => $body:expr) => {
        match $store {
            Store::Postgres(s) => {
                let mut connection = acquire(&s.pool).await?;
                let mut tx = sqlx::Connection::begin(&mut *connection).await?;
                let $conn: &mut sqlx::PgConnection = &mut tx;
                let value = $body;
                tx.commit().await?;
                Ok(value)
            }
            Store::Sqlite(s) => s.write(async |$conn| Ok($body)).await,
        }
    };
}

/// Runs `$body` once per backend with `$pool` bound to the backend's (read) pool.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Postgres(s) => {
                let $pool = &s.pool;
                $body
            }
            Store::Sqlite(s) => {
                let $pool = &s.pool;
                $body
            }
        }
    };
}

impl Store {
    /// Creates a webhook starting at the end of the feed; `None` when `max` webhooks exist already.
    pub async fn create_webhook(&self, new: &NewWebhook, max: i64) -> Result<Option<Webhook>> {
        let events = serde_json::to_string(&new.events)
            .map_err(|error| StoreError::Internal(error.to_string()))?;
        let now = Utc::now();
        let is_postgres = matches!(self, Store::Postgres(_));
        let row: Option<WebhookRow> = in_transaction!(self, conn => {
            if is_postgres {
                // Creations one at a time, so the count bounds them; reads are not blocked.
                sqlx::query("lock table webhooks in share row exclusive mode").execute(&mut *conn).await?;
            }
            let start_after: i64 = sqlx::query_scalar(FEED_END).fetch_one(&mut *conn).await?;
            sqlx::query_as(&insert_webhook_sql())
                .bind(&new.url)
                .bind(&events)
                .bind(new.secret.kind.as_str())
                .bind(&new.secret.value)
                .bind(start_after)
                .bind(now)
                .bind(max)
                .fetch_optional(&mut *conn)
                .await?
        })?;
        row.map(Webhook::try_from).transpose()
    }

    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>> {
        let sql = format!("select {WEBHOOK_COLUMNS} from webhooks order by id");
        let rows: Vec<WebhookRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).fetch_all(pool).await?);
        rows.into_iter().map(Webhook::try_from).collect()
    }

    pub async fn get_webhook(&self, id: i64) -> Result<Option<Webhook>> {
        let sql = format!("select {WEBHOOK_COLUMNS} from webhooks where id = $1");
        let row: Option<WebhookRow> =
            on_pool!(self, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?);
        row.map(Webhook::try_from).transpose()
    }

    /// Deletes a webhook with its deliveries; `false` when there was none.
    pub async fn delete_webhook(&self, id: i64) -> Result<bool> {
        let deleted: u64 = in_transaction!(self, conn => {
            sqlx::query("delete from webhooks where id = $1")
                .bind(id)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        })?;
        Ok(deleted > 0)
    }

    /// The feed position up to which deliveries have been created.
    pub async fn dispatch_position(&self) -> Result<i64> {
        Ok(on_pool!(self, pool => sqlx::query_scalar(DISPATCH_POSITION).fetch_one(pool).await?))
    }

    /// Creates the deliveries of `items` (events after `from`, up to `to`) for the webhooks that want them, and
    /// advances the cursor from `from` to `to`, in one transaction. `false` (and nothing changed) when the cursor
    /// was no longer at `from`: another replica dispatched these events.
    pub async fn fan_out(&self, from: i64, to: i64, items: &[FeedItem]) -> Result<bool> {
        let now = Utc::now();
        let sql = format!("select {WEBHOOK_COLUMNS} from webhooks order by id");
        in_transaction!(self, conn => {
            let advanced = sqlx::query(ADVANCE_DISPATCH)
                .bind(from)
                .bind(to)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if advanced == 1 {
                let rows: Vec<WebhookRow> = sqlx::query_as(&sql).fetch_all(&mut *conn).await?;
                let webhooks = rows.into_iter().map(Webhook::try_from).collect::<Result<Vec<_>>>()?;
                for item in items {
                    for webhook in webhooks.iter().filter(|w| {
                        w.start_after < item.event_id && w.wants(&item.event_type)
                    }) {
                        sqlx::query(INSERT_DELIVERY)
                            .bind(webhook.id)
                            .bind(item.event_id)
                            .bind(&item.event_type)
                            .bind(&item.payload)
                            .bind(now)
                            .execute(&mut *conn)
                            .await?;
                    }
                }
            }
            advanced == 1
        })
    }

    /// With no webhook at all, moves the cursor from `from` straight to the end of the feed (nothing to fan out,
    /// so nothing to read) and answers `true`; `false` when a webhook exists. A webhook created meanwhile is seen:
    /// on PostgreSQL the share lock waits for a creation in progress to commit.
    pub async fn skip_unwatched_events(&self, from: i64) -> Result<bool> {
        let is_postgres = matches!(self, Store::Postgres(_));
        in_transaction!(self, conn => {
            if is_postgres {
                sqlx::query("lock table webhooks in share mode").execute(&mut *conn).await?;
            }
            let webhooks: i64 = sqlx::query_scalar("select count(*) from webhooks")
                .fetch_one(&mut *conn)
                .await?;
            if webhooks == 0 {
                sqlx::query(SKIP_TO_FEED_END).bind(from).execute(&mut *conn).await?;
            }
            webhooks == 0
        })
    }

    /// Claims up to `limit` due deliveries until `lease_until` (at most `per_webhook` in flight per webhook).
    pub async fn claim_deliveries(
        &self,
        limit: i64,
        per_webhook: i64,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<ClaimedDelivery>> {
        let now = Utc::now();
        let candidates: Vec<i64> = on_pool!(self, pool => sqlx::query_scalar(DUE_DELIVERIES)
            .bind(now)
            .bind(per_webhook)
            .bind(limit)
            .fetch_all(pool)
            .await?);
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        match self {
            Store::Postgres(s) => {
                sqlx::query(CLAIM_PG)
                    .bind(&candidates)
                    .bind(lease_until)
                    .bind(&token)
                    .bind(now)
                    .execute(&s.pool)
                    .await?;
            }
            Store::Sqlite(s) => {
                let ids = serde_json::to_string(&candidates)
                    .map_err(|error| StoreError::Internal(error.to_string()))?;
                s.write(async |conn| {
                    sqlx::query(CLAIM_SQLITE)
                        .bind(&ids)
                        .bind(lease_until)
                        .bind(&token)
                        .bind(now)
                        .execute(conn)
                        .await?;
                    Ok(())
                })
                .await?;
            }
        }
        let rows: Vec<ClaimedRow> = on_pool!(self, pool => sqlx::query_as(CLAIMED)
            .bind(&token)
            .fetch_all(pool)
            .await?);
        rows.into_iter()
            .map(|row| {
                Ok(ClaimedDelivery {
                    id: row.id,
                    webhook_id: row.webhook_id,
                    event_id: row.event_id,
                    payload: row.payload,
                    attempts: row.attempts,
                    created_at: row.created_at,
                    url: row.url,
                    secret: secret_of(&row.secret_kind, row.secret)?,
                    token: token.clone(),
                })
            })
            .collect()
    }

    /// Records an attempt and what comes next, if this process still holds the delivery's lease (`false` if it
    /// lapsed and another replica may have taken it over: the attempt is then not recorded).
    pub async fn finish_attempt(
        &self,
        delivery: &ClaimedDelivery,
        attempt: &AttemptRecord,
    ) -> Result<bool> {
        let (status, next_at, finished_at) = match attempt.next {
            NextStep::Delivered => ("delivered", attempt.finished_at, Some(attempt.finished_at)),
            NextStep::RetryAt(at) => ("pending", at, None),
            NextStep::Failed => ("failed", attempt.finished_at, Some(attempt.finished_at)),
        };
        let outcome = if attempt.next == NextStep::Delivered {
            "delivered"
        } else {
            "failed"
        };
        in_transaction!(self, conn => {
            let updated = sqlx::query(FINISH_ATTEMPT)
                .bind(delivery.id)
                .bind(&delivery.token)
                .bind(status)
                .bind(next_at)
                .bind(finished_at)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            if updated == 1 {
                sqlx::query(INSERT_ATTEMPT)
                    .bind(delivery.id)
                    .bind(attempt.started_at)
                    .bind(attempt.finished_at)
                    .bind(outcome)
                    .bind(attempt.response_status.map(i32::from))
                    .bind(attempt.error.as_deref())
                    .execute(&mut *conn)
                    .await?;
            }
            updated == 1
        })
    }

    /// A page of a webhook's deliveries, newest first, strictly before the delivery id `before`, each with its
    /// attempts.
    pub async fn list_deliveries(
        &self,
        webhook: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Page<Delivery>> {
        let rows: Vec<DeliveryRow> = on_pool!(self, pool => sqlx::query_as(DELIVERIES_PAGE)
            .bind(webhook)
            .bind(before.unwrap_or(i64::MAX))
            .bind(i64::from(limit) + 1)
            .fetch_all(pool)
            .await?);
        let page = Page::from_overfetch(rows, limit, |d| d.id);
        let (low, high) = match (page.items.last(), page.items.first()) {
            (Some(low), Some(high)) => (low.id, high.id),
            _ => (0, -1),
        };
        let mut attempts: Vec<Attempt> = on_pool!(self, pool => sqlx::query_as(ATTEMPTS_OF)
            .bind(webhook)
            .bind(low)
            .bind(high)
            .fetch_all(pool)
            .await?);
        let items = page
            .items
            .into_iter()
            .map(|row| {
                let (mine, rest) = attempts.drain(..).partition(|a| a.delivery_id == row.id);
                attempts = rest;
                Delivery {
                    id: row.id,
                    webhook_id: row.webhook_id,
                    event_id: row.event_id,
                    event_type: row.event_type,
                    status: row.status,
                    next_attempt_at: row.next_attempt_at,
                    created_at: row.created_at,
                    finished_at: row.finished_at,
                    attempts: mine,
                }
            })
            .collect();
        Ok(Page {
            items,
            next: page.next,
        })
    }

    pub async fn delivery_backlog(&self) -> Result<DeliveryBacklog> {
        let now = Utc::now();
        let pending: i64 =
            on_pool!(self, pool => sqlx::query_scalar(COUNT_PENDING).fetch_one(pool).await?);
        let oldest_due: Option<DateTime<Utc>> = on_pool!(self, pool => sqlx::query_scalar(OLDEST_DUE)
            .bind(now)
            .fetch_one(pool)
            .await?);
        Ok(DeliveryBacklog {
            pending,
            oldest_due,
        })
    }

    /// Deletes up to `batch` events that every webhook has passed (the dispatcher's cursor) and older than `cutoff`.
    pub async fn prune_events(&self, cutoff: DateTime<Utc>, batch: i64) -> Result<u64> {
        in_transaction!(self, conn => {
            let passed: i64 = sqlx::query_scalar(DISPATCH_POSITION).fetch_one(&mut *conn).await?;
            sqlx::query(PRUNE_EVENTS)
                .bind(passed)
                .bind(cutoff)
                .bind(batch)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        })
    }

    /// Deletes up to `batch` delivered or failed deliveries (and their attempts) finished before `cutoff`.
    pub async fn prune_deliveries(&self, cutoff: DateTime<Utc>, batch: i64) -> Result<u64> {
        in_transaction!(self, conn => {
            sqlx::query(PRUNE_DELIVERIES)
                .bind(cutoff)
                .bind(batch)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        })
    }
}
