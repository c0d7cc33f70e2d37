//! The PostgreSQL sequencer: numbers committed events for the feed, one serialized round at a time, and tells
//! every replica's readers when it has (docs/adr/0120-events-outbox-and-feed.md).
//!
//! An event's insertion id is taken at insert, not at commit, so a later id can commit first; a reader paging by
//! that id would skip the earlier one when it commits. A round instead runs under a transaction-level advisory
//! lock (one replica at a time, released only once the round has committed), and numbers the events it can see,
//! all of them committed, after the highest number so far. The next round starts after this one committed and so
//! sees its numbers: numbers become visible in increasing order, and none can later appear below one served.

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use super::PgStore;
use crate::store::Result;
use crate::store::events::{Feed, count_written};
use crate::store::shared::acquire;

/// The NOTIFY channel of finished rounds.
const CHANNEL: &str = "revwallet_events";
/// The advisory lock key of a round ("rvwlevnt").
const LOCK: i64 = 0x7276_776c_6576_6e74;
/// At most this many events per round (a backlog takes several rounds back to back).
const BATCH: usize = 10_000;
/// A round runs at least this often, so events committed by a replica that died before its round, or written
/// by another process, are numbered soon.
pub(crate) const TICK: Duration = Duration::from_millis(250);
/// After a round that numbered events, the next waits this long: under a steady stream of writes each round is a
/// commit of its own, and this bounds them (100 a second per replica) while adding at most this much latency.
const GAP: Duration = Duration::from_millis(10);

/// Numbers the visible unnumbered events in insertion order after the highest number. Both subqueries and the
/// update share one snapshot, taken after the lock was acquired by the statement before.
const NUMBER: &str = "with due as ( \
         select id, row_number() over (order by id) as n from events where position is null \
         order by id limit $1 \
     ), top as ( \
         select coalesce(max(position), 0) as top from events \
     ) \
     update events set position = top.top + due.n from due, top where events.id = due.id \
     returning events.type";

impl PgStore {
    /// One round: `None` when another replica's round holds the lock, else how many events it numbered.
    pub async fn sequence_round(&self) -> Result<Option<usize>> {
        let mut conn = acquire(&self.pool).await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let mine: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1)")
            .bind(LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !mine {
            return Ok(None);
        }
        let types: Vec<String> = sqlx::query_scalar(NUMBER)
            .bind(BATCH as i64)
            .fetch_all(&mut *tx)
            .await?;
        if !types.is_empty() {
            // One NOTIFY per round, never per write: NOTIFY takes a lock at commit that serializes committers.
            sqlx::query("select pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        count_written(types.iter().map(|t| (t.as_str(), 1)));
        Ok(Some(types.len()))
    }

    /// Runs rounds whenever a local write committed, and at least every `TICK`; and listens for other replicas'
    /// rounds. Runs until the task is dropped.
    pub async fn run_sequencer(&self) {
        let listening = tokio::spawn(listen(self.listen_pool.clone(), self.feed.clone()));
        let _stop_listening = AbortOnDrop(listening);
        let mut failing = false;
        loop {
            tokio::select! {
                () = self.feed.written() => {}
                () = tokio::time::sleep(TICK) => {}
            }
            let mut busy = 0;
            loop {
                match self.sequence_round().await {
                    Ok(Some(numbered)) => {
                        failing = false;
                        if numbered > 0 {
                            self.feed.announce();
                            tokio::time::sleep(GAP).await;
                        }
                        if numbered < BATCH {
                            break;
                        }
                    }
                    // Another replica is numbering; it may have taken its snapshot before our commit.
                    Ok(None) if busy < 20 => {
                        busy += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    Ok(None) => break,
                    Err(error) => {
                        if !failing {
                            tracing::warn!(%error, "could not number events for the feed (will retry)");
                        }
                        failing = true;
                        break;
                    }
                }
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Wakes local readers whenever any replica's round numbered events. While the connection is down, readers
/// poll instead (`Feed::hearing`).
async fn listen(pool: PgPool, feed: Feed) {
    loop {
        if let Err(error) = listen_once(&pool, &feed).await {
            tracing::debug!(%error, "events listener disconnected");
        }
        feed.set_hearing(false);
        feed.announce();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen_once(pool: &PgPool, feed: &Feed) -> std::result::Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    feed.set_hearing(true);
    // Rounds announced while we were not listening.
    feed.announce();
    loop {
        // `None`: the connection was lost and has been re-established; announcements in between were missed.
        let _ = listener.try_recv().await?;
        feed.announce();
    }
}
