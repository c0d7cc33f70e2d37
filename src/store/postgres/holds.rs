//! Holds on PostgreSQL. Placing, voiding and capturing as a withdrawal are each one data-modifying statement
//! (one round trip), falling back to a transaction only to explain a refusal or to release expired holds first.
//! A capture paid into another wallet is a transaction that locks the hold, then both wallets in id order, as
//! transfers do, so it never deadlocks with them.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::{
    MovementRow, PgStore, apply_capture, apply_hold, expire_due_holds, finish_hold,
    lock_two_wallets, record, refused_finish,
};
use crate::domain::{Amount, HoldId, WalletId};
use crate::store::rows::HoldRow;
use crate::store::shared::acquire;
use crate::store::sql::{self, hold_columns, wallet_columns};
use crate::store::{Capture, Finish, Hold, Memo, Movement, Result, StoreError};

/// Reserve and insert in one statement. `$1` wallet, `$2` amount, `$3` now, `$4` expires at, `$5`–`$7`
/// reference, description, metadata.
static PLACE_HOLD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with reserved as ({reserve}) \
         insert into holds (wallet_id, amount, status, expires_at, created_at, reference, description, metadata) \
         select id, $2, 'pending', $4, $3, $5, $6, $7 from reserved returning {columns}",
        reserve = sql::RESERVE,
        columns = hold_columns!("$3"),
    )
});

/// Void and release in one statement. `$1` hold, `$2` 'voided', `$3` now, `$4` null.
static VOID_HOLD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with finished as ({finish}), released as ( \
             update wallets set held = held - f.amount from finished f where wallets.id = f.wallet_id \
             returning wallets.id) \
         select f.* from finished f join released r on r.id = f.wallet_id",
        finish = sql::FINISH_HOLD,
    )
});

/// The entry columns a capture's `insert … returning` gives, as `CAPTURE_COLUMNS` reads them (`e`).
const ENTRY_RETURNED: &str = "id, wallet_id, kind, amount, balance_after, counterparty_id, created_at, actor, \
     reference, description, metadata";

/// A capture's row, as `CaptureRow` reads it: the finished hold `f`, a wallet `m` and its entry `e`.
const CAPTURE_COLUMNS: &str = "f.id as hold_id, f.wallet_id as hold_wallet_id, f.amount as hold_amount, \
     f.status as hold_status, f.captured as hold_captured, f.expires_at as hold_expires_at, \
     f.created_at as hold_created_at, f.reference as hold_reference, f.description as hold_description, \
     f.metadata as hold_metadata, m.id, m.owner, m.currency, m.balance, m.held, m.created_at, \
     e.id as entry_id, e.wallet_id, e.kind, e.amount, e.balance_after, e.counterparty_id, \
     e.created_at as entry_created_at, e.actor, e.reference, e.description, e.metadata";

/// Capture as a withdrawal in one statement: the hold, the wallet (balance down by the capture, held down by
/// the whole hold) and the ledger entry. `$1` hold, `$2` 'captured', `$3` now, `$4` amount, `$5`–`$8` the
/// capture's memo (actor, reference, description, metadata).
static CAPTURE_HOLD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with finished as ({finish}), moved as ( \
             update wallets set balance = balance - $4, held = held - f.amount \
             from finished f where wallets.id = f.wallet_id returning {wallet}), \
         entry as ( \
             insert into transactions (wallet_id, kind, amount, balance_after, created_at, actor, \
                                       reference, description, metadata) \
             select id, 'withdrawal', $4, balance, $3, $5, $6, $7, $8 from moved \
             returning {entry}) \
         select {capture} \
         from finished f cross join moved m cross join entry e",
        finish = sql::FINISH_HOLD,
        wallet = wallet_columns!("$3"),
        entry = ENTRY_RETURNED,
        capture = CAPTURE_COLUMNS,
    )
});

/// Capture into another wallet in one statement, inside a batch whose wallets are locked already: the hold, both
/// wallets (the hold's wallet loses the capture and the whole reservation, the target gains the capture) and both
/// legs' entries, out first. The hold is finished only if the target can take the money (open, another wallet,
/// below the ceiling), so a capture refused changes nothing and returns no row. `$1` hold, `$2` 'captured', `$3`
/// now, `$4` amount, `$5`–`$8` the capture's memo (actor, reference, description, metadata), `$9` the target.
static CAPTURE_INTO: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with finished as ( \
             update holds set status = $2, finished_at = $3, captured = $4 \
             where id = $1 and status = 'pending' and expires_at > $3 and amount >= $4 \
               and exists (select 1 from wallets t where t.id = $9 and t.id <> holds.wallet_id \
                           and t.closed_at is null and t.balance <= 9223372036854775807 - $4) \
             returning {hold}), \
         moved as ( \
             update wallets set \
                 balance = case when wallets.id = f.wallet_id then balance - $4 else balance + $4 end, \
                 held = case when wallets.id = f.wallet_id then held - f.amount else held end \
             from finished f where wallets.id in (f.wallet_id, $9) returning {wallet}), \
         entry as ( \
             insert into transactions (wallet_id, kind, amount, balance_after, counterparty_id, created_at, \
                                       actor, reference, description, metadata) \
             select m.id, case when m.id = f.wallet_id then 'transfer_out' else 'transfer_in' end, $4, m.balance, \
                    case when m.id = f.wallet_id then $9 else f.wallet_id end, $3, $5, $6, $7, $8 \
             from moved m cross join finished f order by m.id <> f.wallet_id \
             returning {entry}) \
         select {capture} \
         from finished f cross join moved m join entry e on e.wallet_id = m.id order by e.id",
        hold = hold_columns!("$3"),
        wallet = wallet_columns!("$3"),
        entry = ENTRY_RETURNED,
        capture = CAPTURE_COLUMNS,
    )
});

/// Voids several holds in one statement and gives back what each reserved, one update per wallet (an
/// `UPDATE … FROM` applies one row per wallet, so a wallet's holds are summed first). `$1` the holds, each once,
/// `$2` now. A hold not returned was refused (not pending, expired, or not there) and changed nothing.
static VOID_HOLDS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with finished as ( \
             update holds set status = 'voided', finished_at = $2 \
             where id = any($1) and status = 'pending' and expires_at > $2 returning {columns}), \
         released as ( \
             update wallets set held = held - f.amount \
             from (select wallet_id, cast(sum(amount) as bigint) as amount from finished group by wallet_id) f \
             where wallets.id = f.wallet_id returning wallets.id) \
         select f.* from finished f join released r on r.id = f.wallet_id order by f.id",
        columns = hold_columns!("$2"),
    )
});

/// Places holds on distinct wallets in one statement: each reserves on its own wallet if that much is
/// available, and those reserved are inserted in arrival order. `$1` wallets (each once), `$2` amounts, `$3`
/// expiries, `$4`–`$6` references, descriptions, metadata, `$7` now. A wallet whose hold is not returned was
/// not changed (closed, not enough available, or holds past their expiry still counting).
static PLACE_HOLDS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with wanted as ( \
             select * from unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[], \
                                  $6::text[]) with ordinality \
                  as w(wallet_id, amount, expires_at, reference, description, metadata, ord)), \
         reserved as ( \
             update wallets set held = held + w.amount from wanted w \
             where wallets.id = w.wallet_id and wallets.id = any($1) and closed_at is null \
               and balance - held >= w.amount returning wallets.id) \
         insert into holds (wallet_id, amount, status, expires_at, created_at, reference, description, metadata) \
         select w.wallet_id, w.amount, 'pending', w.expires_at, $7, w.reference, w.description, w.metadata \
         from wanted w join reserved r on r.id = w.wallet_id order by w.ord \
         returning {columns}",
        columns = hold_columns!("$7"),
    )
});

/// Captures several holds in one statement, each as a withdrawal (no target) or into another wallet, inside a
/// batch whose holds and wallets are locked. Each capture's legs are its hold's wallet and its target, and no
/// wallet may be in two legs of the set (the caller sees to it): an `UPDATE … FROM` applies one row per wallet.
/// A capture into another wallet finishes its hold only if the target can take the money, as `CAPTURE_INTO`.
/// `$1` holds (each once), `$2` amounts, `$3` targets (null: a withdrawal), `$4`–`$7` actors, references,
/// descriptions, metadata, `$8` now, `$9` every wallet of the set. One row per leg, out legs first; a hold not
/// returned was refused and changed nothing.
static CAPTURE_HOLDS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "with wanted as ( \
             select * from unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], \
                                  $6::text[], $7::text[]) with ordinality \
                  as w(hold_id, taken, target, actor, memo_reference, memo_description, memo_metadata, ord)), \
         finished as ( \
             update holds set status = 'captured', finished_at = $8, captured = w.taken from wanted w \
             where holds.id = w.hold_id and holds.id = any($1) and holds.status = 'pending' \
               and holds.expires_at > $8 and holds.amount >= w.taken \
               and (w.target is null or exists (select 1 from wallets t where t.id = w.target \
                    and t.id <> holds.wallet_id and t.closed_at is null \
                    and t.balance <= 9223372036854775807 - w.taken)) \
             returning {hold}, w.taken, w.target, w.actor, w.memo_reference, w.memo_description, \
                       w.memo_metadata, w.ord), \
         legs as ( \
             select wallet_id as leg_wallet, -taken as delta, amount as released, \
                    case when target is null then 'withdrawal' else 'transfer_out' end as kind, \
                    target as counterparty, ord, 0 as leg \
             from finished \
             union all \
             select target, taken, 0, 'transfer_in', wallet_id, ord, 1 from finished where target is not null), \
         moved as ( \
             update wallets set balance = balance + l.delta, held = held - l.released from legs l \
             where wallets.id = l.leg_wallet and wallets.id = any($9) returning {wallet}), \
         entry as ( \
             insert into transactions (wallet_id, kind, amount, balance_after, counterparty_id, created_at, \
                                       actor, reference, description, metadata) \
             select l.leg_wallet, l.kind, f.taken, m.balance, l.counterparty, $8, f.actor, f.memo_reference, \
                    f.memo_description, f.memo_metadata \
             from legs l join moved m on m.id = l.leg_wallet join finished f on f.ord = l.ord \
             order by l.ord, l.leg \
             returning {entry}) \
         select {capture} \
         from finished f join legs l on l.ord = f.ord join moved m on m.id = l.leg_wallet \
              join entry e on e.wallet_id = m.id \
         order by f.ord, l.leg",
        hold = hold_columns!("$8"),
        wallet = wallet_columns!("$8"),
        entry = ENTRY_RETURNED,
        capture = CAPTURE_COLUMNS,
    )
});

/// A capture for `capture_many`.
pub(super) struct Capturing<'a> {
    pub hold: HoldId,
    pub amount: Amount,
    pub to: Option<WalletId>,
    pub memo: &'a Memo,
}

/// Captures `captures` (distinct holds, no wallet in two legs) in one statement inside the caller's
/// transaction, whose holds and wallets are locked. Returns the captures made, by hold; the others were refused
/// and changed nothing (`capture_in` explains why). `wallets` are every wallet of the set's legs.
pub(super) async fn capture_many(
    tx: &mut PgConnection,
    captures: &[Capturing<'_>],
    wallets: &[i64],
    now: DateTime<Utc>,
) -> Result<HashMap<i64, Capture>> {
    let column = |text: fn(&Memo) -> Option<&str>| -> Vec<Option<&str>> {
        captures.iter().map(|c| text(c.memo)).collect()
    };
    let rows: Vec<CaptureRow> = sqlx::query_as(CAPTURE_HOLDS.as_str())
        .bind(captures.iter().map(|c| c.hold.get()).collect::<Vec<_>>())
        .bind(
            captures
                .iter()
                .map(|c| c.amount.minor_units())
                .collect::<Vec<_>>(),
        )
        .bind(
            captures
                .iter()
                .map(|c| c.to.map(WalletId::get))
                .collect::<Vec<_>>(),
        )
        .bind(column(|memo| memo.actor.as_deref()))
        .bind(column(|memo| memo.reference.as_deref()))
        .bind(column(|memo| memo.description.as_deref()))
        .bind(column(|memo| memo.metadata.as_deref()))
        .bind(now)
        .bind(wallets)
        .fetch_all(tx)
        .await?;
    let mut made: HashMap<i64, Capture> = HashMap::with_capacity(rows.len());
    for row in rows {
        let (hold, leg) = row.parts()?;
        match made.get_mut(&hold.id.get()) {
            None => {
                made.insert(
                    hold.id.get(),
                    Capture {
                        hold,
                        from: leg,
                        to: None,
                    },
                );
            }
            Some(capture) if capture.to.is_none() => capture.to = Some(leg),
            Some(_) => return Err(not_as_asked(hold.id)),
        }
    }
    // Each capture made must have exactly the legs it asked for: otherwise the batch must not commit.
    for capture in made.values() {
        let wanted = captures.iter().find(|c| c.hold == capture.hold.id);
        let legs_match = wanted.is_some_and(|wanted| {
            capture.from.wallet.id == capture.hold.wallet_id
                && capture.to.as_ref().map(|to| to.wallet.id) == wanted.to
        });
        if !legs_match {
            return Err(not_as_asked(capture.hold.id));
        }
    }
    Ok(made)
}

fn not_as_asked(hold: HoldId) -> StoreError {
    StoreError::Internal(format!(
        "capturing hold {} with others did not write the legs it asked for",
        hold.get()
    ))
}

/// A placement for `place_many`.
pub(super) struct Placement<'a> {
    pub wallet: WalletId,
    pub amount: Amount,
    pub expires_at: DateTime<Utc>,
    pub memo: &'a Memo,
}

/// Voids `holds` (distinct) in one statement inside the caller's transaction, whose holds and wallets are
/// locked. Returns the holds voided; the others were refused and changed nothing (`void_once` explains why).
pub(super) async fn void_many(
    tx: &mut PgConnection,
    holds: &[i64],
    now: DateTime<Utc>,
) -> Result<Vec<Hold>> {
    let rows: Vec<HoldRow> = sqlx::query_as(VOID_HOLDS.as_str())
        .bind(holds)
        .bind(now)
        .fetch_all(tx)
        .await?;
    rows.into_iter().map(Hold::try_from).collect()
}

/// Places `placements` (on distinct wallets) in one statement inside the caller's transaction, whose wallets
/// are locked. Returns the holds placed; a wallet without one was not changed (`place_in` explains why, or
/// releases expired holds and tries again).
pub(super) async fn place_many(
    tx: &mut PgConnection,
    placements: &[Placement<'_>],
    now: DateTime<Utc>,
) -> Result<Vec<Hold>> {
    let column = |text: fn(&Memo) -> Option<&str>| -> Vec<Option<&str>> {
        placements.iter().map(|p| text(p.memo)).collect()
    };
    let rows: Vec<HoldRow> = sqlx::query_as(PLACE_HOLDS.as_str())
        .bind(
            placements
                .iter()
                .map(|p| p.wallet.get())
                .collect::<Vec<_>>(),
        )
        .bind(
            placements
                .iter()
                .map(|p| p.amount.minor_units())
                .collect::<Vec<_>>(),
        )
        .bind(placements.iter().map(|p| p.expires_at).collect::<Vec<_>>())
        .bind(column(|memo| memo.reference.as_deref()))
        .bind(column(|memo| memo.description.as_deref()))
        .bind(column(|memo| memo.metadata.as_deref()))
        .bind(now)
        .fetch_all(tx)
        .await?;
    rows.into_iter().map(Hold::try_from).collect()
}

#[derive(Debug, sqlx::FromRow)]
struct CaptureRow {
    hold_id: i64,
    hold_wallet_id: i64,
    hold_amount: i64,
    hold_status: String,
    hold_captured: Option<i64>,
    hold_expires_at: DateTime<Utc>,
    hold_created_at: DateTime<Utc>,
    hold_reference: Option<String>,
    hold_description: Option<String>,
    hold_metadata: Option<String>,
    #[sqlx(flatten)]
    movement: MovementRow,
}

impl CaptureRow {
    /// The hold, and the movement of the row's wallet.
    fn parts(self) -> Result<(Hold, Movement)> {
        let row = self;
        let hold = HoldRow {
            id: row.hold_id,
            wallet_id: row.hold_wallet_id,
            amount: row.hold_amount,
            status: row.hold_status,
            captured: row.hold_captured,
            expires_at: row.hold_expires_at,
            created_at: row.hold_created_at,
            reference: row.hold_reference,
            description: row.hold_description,
            metadata: row.hold_metadata,
        };
        Ok((hold.try_into()?, Movement::try_from(row.movement)?))
    }
}

impl TryFrom<CaptureRow> for Capture {
    type Error = StoreError;
    fn try_from(row: CaptureRow) -> Result<Self> {
        let (hold, from) = row.parts()?;
        Ok(Capture {
            hold,
            from,
            to: None,
        })
    }
}

async fn place_once(
    conn: &mut PgConnection,
    wallet: WalletId,
    amount: Amount,
    expires_at: DateTime<Utc>,
    memo: &Memo,
) -> Result<Option<Hold>> {
    sqlx::query_as::<_, HoldRow>(PLACE_HOLD.as_str())
        .bind(wallet.get())
        .bind(amount.minor_units())
        .bind(Utc::now())
        .bind(expires_at)
        .bind(memo.reference.as_deref())
        .bind(memo.description.as_deref())
        .bind(memo.metadata.as_deref())
        .fetch_optional(conn)
        .await?
        .map(Hold::try_from)
        .transpose()
}

pub(super) async fn void_once(conn: &mut PgConnection, id: HoldId) -> Result<Hold> {
    let row: Option<HoldRow> = sqlx::query_as(VOID_HOLD.as_str())
        .bind(id.get())
        .bind("voided")
        .bind(Utc::now())
        .bind(None::<i64>)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => row.try_into(),
        None => Err(refused_finish(conn, id).await?),
    }
}

async fn capture_once(
    conn: &mut PgConnection,
    id: HoldId,
    amount: Amount,
    memo: &Memo,
) -> Result<Capture> {
    let row: Option<CaptureRow> = sqlx::query_as(CAPTURE_HOLD.as_str())
        .bind(id.get())
        .bind("captured")
        .bind(Utc::now())
        .bind(amount.minor_units())
        .bind(memo.actor.as_deref())
        .bind(memo.reference.as_deref())
        .bind(memo.description.as_deref())
        .bind(memo.metadata.as_deref())
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        Some(row) => row.try_into(),
        None => Err(refused_finish(conn, id).await?),
    }
}

/// A hold placed in its own transaction (one statement when it is not keyed and not refused).
pub(super) async fn place_alone(
    pool: &PgPool,
    wallet: WalletId,
    amount: Amount,
    expires_at: DateTime<Utc>,
    memo: &Memo,
    finish: Option<Finish<'_, Hold>>,
) -> Result<Hold> {
    let mut conn = acquire(pool).await?;
    if finish.is_none()
        && let Some(hold) = place_once(&mut conn, wallet, amount, expires_at, memo).await?
    {
        return Ok(hold);
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let hold = place_in(&mut tx, wallet, amount, expires_at, memo).await?;
    record(&mut tx, finish, &hold).await?;
    tx.commit().await?;
    Ok(hold)
}

/// Places a hold inside the caller's transaction: refused, explained, or placed after releasing expired holds.
pub(super) async fn place_in(
    tx: &mut PgConnection,
    wallet: WalletId,
    amount: Amount,
    expires_at: DateTime<Utc>,
    memo: &Memo,
) -> Result<Hold> {
    match place_once(tx, wallet, amount, expires_at, memo).await? {
        Some(hold) => Ok(hold),
        None => apply_hold(tx, wallet, amount, expires_at, memo).await,
    }
}

/// A hold voided in its own transaction (one statement when it is not keyed).
pub(super) async fn void_alone(
    pool: &PgPool,
    id: HoldId,
    finish: Option<Finish<'_, Hold>>,
) -> Result<Hold> {
    let mut conn = acquire(pool).await?;
    let Some(finish) = finish else {
        return void_once(&mut conn, id).await;
    };
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let hold = void_once(&mut tx, id).await?;
    record(&mut tx, Some(finish), &hold).await?;
    tx.commit().await?;
    Ok(hold)
}

/// A hold captured in its own transaction: as a withdrawal in one statement when it is not keyed; into another
/// wallet the hold first, then both wallets in id order, as every path locks them.
pub(super) async fn capture_alone(
    pool: &PgPool,
    id: HoldId,
    amount: Amount,
    to: Option<WalletId>,
    memo: &Memo,
    finish: Option<Finish<'_, Capture>>,
) -> Result<Capture> {
    let mut conn = acquire(pool).await?;
    if to.is_none() && finish.is_none() {
        return capture_once(&mut conn, id, amount, memo).await;
    }
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let capture = match to {
        None => capture_once(&mut tx, id, amount, memo).await?,
        Some(to) => {
            let hold = finish_hold(&mut tx, id, Some(amount)).await?;
            lock_two_wallets(&mut tx, hold.wallet_id, to).await?;
            apply_capture(&mut tx, hold, amount, Some(to), memo).await?
        }
    };
    record(&mut tx, finish, &capture).await?;
    tx.commit().await?;
    Ok(capture)
}

/// Captures a hold into another wallet in one statement inside the caller's transaction, whose wallets are
/// locked already (a batch's). `None` when refused: nothing changed, and `capture_in` explains why.
pub(super) async fn capture_into_once(
    tx: &mut PgConnection,
    id: HoldId,
    amount: Amount,
    to: WalletId,
    memo: &Memo,
) -> Result<Option<Capture>> {
    let rows: Vec<CaptureRow> = sqlx::query_as(CAPTURE_INTO.as_str())
        .bind(id.get())
        .bind("captured")
        .bind(Utc::now())
        .bind(amount.minor_units())
        .bind(memo.actor.as_deref())
        .bind(memo.reference.as_deref())
        .bind(memo.description.as_deref())
        .bind(memo.metadata.as_deref())
        .bind(to.get())
        .fetch_all(&mut *tx)
        .await?;
    let mut legs = rows.into_iter();
    match (legs.next(), legs.next(), legs.next()) {
        (None, ..) => Ok(None),
        (Some(out), Some(into), None) => {
            let (hold, from) = out.parts()?;
            let (_, to) = into.parts()?;
            Ok(Some(Capture {
                hold,
                from,
                to: Some(to),
            }))
        }
        // Not both legs: the statement did something else than a capture, so the batch must not commit.
        _ => Err(StoreError::Internal(format!(
            "capturing hold {} into wallet {to} did not write both legs",
            id.get()
        ))),
    }
}

/// Captures a hold inside the caller's transaction, whose wallets are locked already (a batch's).
pub(super) async fn capture_in(
    tx: &mut PgConnection,
    id: HoldId,
    amount: Amount,
    to: Option<WalletId>,
    memo: &Memo,
) -> Result<Capture> {
    match to {
        None => capture_once(tx, id, amount, memo).await,
        Some(to) => {
            let hold = finish_hold(tx, id, Some(amount)).await?;
            apply_capture(tx, hold, amount, Some(to), memo).await
        }
    }
}

impl PgStore {
    pub async fn place_hold(
        &self,
        wallet: WalletId,
        amount: Amount,
        expires_at: DateTime<Utc>,
        memo: &Memo,
        finish: Option<Finish<'_, Hold>>,
    ) -> Result<Hold> {
        let hold = self
            .writes
            .submit_place(&self.pool, wallet, amount, expires_at, memo, finish)
            .await?;
        self.feed.wrote();
        Ok(hold)
    }

    pub async fn void_hold(&self, id: HoldId, finish: Option<Finish<'_, Hold>>) -> Result<Hold> {
        let hold = self.writes.submit_void(&self.pool, id, finish).await?;
        self.feed.wrote();
        Ok(hold)
    }

    pub async fn capture_hold(
        &self,
        id: HoldId,
        amount: Amount,
        to: Option<WalletId>,
        memo: &Memo,
        finish: Option<Finish<'_, Capture>>,
    ) -> Result<Capture> {
        let capture = self
            .writes
            .submit_capture(&self.pool, id, amount, to, memo, finish)
            .await?;
        self.feed.wrote();
        Ok(capture)
    }

    /// Expires the due holds of one wallet unless another transaction (a request, or another replica's sweep)
    /// holds the wallet right now; that one releases them itself or the next sweep does.
    pub async fn expire_wallet_holds(&self, wallet: WalletId) -> Result<u64> {
        let mut conn = acquire(&self.pool).await?;
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let free: Option<i64> =
            sqlx::query_scalar("select id from wallets where id = $1 for update skip locked")
                .bind(wallet.get())
                .fetch_optional(&mut *tx)
                .await?;
        if free.is_none() {
            return Ok(0);
        }
        let expired = expire_due_holds(&mut tx, wallet, Utc::now()).await?;
        tx.commit().await?;
        if expired > 0 {
            self.feed.wrote();
        }
        Ok(expired)
    }
}
