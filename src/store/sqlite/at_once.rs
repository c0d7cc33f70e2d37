//! Deposits, withdrawals, transfers, and placing, voiding and capturing holds in one call to the database thread.
//!
//! sqlx runs a SQLite connection on a thread of its own, and every statement is a round trip to it: two thread
//! wake-ups, which on a busy machine cost more than the statement. The one writer runs its writes one after the
//! other, so those round trips add up to the time every queued write waits. Here a write's statements (the key's
//! claim, the balance updates, the entries) go as one string and come back as one stream.
//!
//! Each statement after the first runs only if the one before it changed a row (`changes()` is the count of the
//! statement completed last), so a refusal at any step changes nothing after it: the write then answers
//! `Ok(None)`, with its key's claim taken back, and the step-by-step path of the store runs instead to decide
//! and explain (a missing wallet, too little money, a hold no longer pending, holds past their expiry to release
//! first). Wallets opened or closed keep the step-by-step path.

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt as _;
use sqlx::query::Query;
use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Either, Executor as _, FromRow as _, Sqlite, SqliteConnection};

use super::group_commit::{BatchOutcome, KeyClaim};
use crate::domain::{Amount, HoldId, LedgerEntryKind, WalletId};
use crate::store::rows::{EntryRow, HoldRow, WalletRow};
use crate::store::shared::is_debit;
use crate::store::{Capture, Hold, Memo, Movement, Result, StoreError, Transfer, sql};

/// The steps. Money moves over the parameters of `movement`: `$1` the wallet (the payer of a transfer, the hold
/// of a capture), `$2` the payee, `$3` the amount, `$4` now, `$5`–`$8` the memo (actor, reference, description, metadata), `$9` the key,
/// `$10` its request's fingerprint, `$11` the entry's kind (the payer's), `$12` the payee's entry's kind. Holds
/// over those of `place_hold` and `void_hold`: `$1` the wallet (placing) or the hold (voiding), `$2` the amount,
/// `$3` now, `$4` the expiry, `$5`–`$7` reference, description, metadata, `$8` the key, `$9` its request's
/// fingerprint.
macro_rules! step {
    (claim) => {
        "insert into idempotency_keys (key, request_hash, created_at) values ($9, $10, $4) \
         on conflict (key) do nothing;"
    };
    (claim hold) => {
        "insert into idempotency_keys (key, request_hash, created_at) values ($8, $9, $3) \
         on conflict (key) do nothing;"
    };
    (reserve if $guard:expr) => {
        concat!(
            "update wallets set held = held + $2 where id = $1 ",
            $guard,
            " and closed_at is null and balance - held >= $2;"
        )
    };
    (place) => {
        concat!(
            "insert into holds (wallet_id, amount, status, expires_at, created_at, reference, description, \
             metadata) select $1, $2, 'pending', $4, $3, $5, $6, $7 where changes() = 1 returning ",
            sql::hold_columns!("$3"),
            ";"
        )
    };
    (void if $guard:expr) => {
        concat!(
            "update holds set status = 'voided', finished_at = $3 where id = $1 ",
            $guard,
            " and status = 'pending' and expires_at > $3 returning ",
            sql::hold_columns!("$3"),
            ";"
        )
    };
    // The hold `$1` gives back what it reserved.
    (release) => {
        "update wallets set held = held - hold.amount \
         from (select wallet_id, amount from holds where id = $1) as hold \
         where wallets.id = hold.wallet_id and changes() = 1 and wallets.held >= hold.amount returning wallets.id;"
    };
    // A capture's hold is `$1`; `$3` is the amount captured, `$2` the wallet it goes into (or null).
    (capture if $guard:expr) => {
        concat!(
            "update holds set status = 'captured', finished_at = $4, captured = $3 where id = $1 ",
            $guard,
            " and status = 'pending' and expires_at > $4 and amount >= $3 returning ",
            sql::hold_columns!("$4"),
            ";"
        )
    };
    // The bound on the balance is `sql::CREDIT`'s: SQLite would silently turn an overflowing sum into a float.
    (credit $wallet:literal if $guard:expr) => {
        concat!(
            "update wallets set balance = balance + $3 where id = ",
            $wallet,
            " ",
            $guard,
            " and closed_at is null and balance <= 9223372036854775807 - $3 returning ",
            sql::wallet_columns!("$4"),
            ";"
        )
    };
    (debit $wallet:literal if $guard:expr) => {
        concat!(
            "update wallets set balance = balance - $3 where id = ",
            $wallet,
            " ",
            $guard,
            " and closed_at is null and balance - held >= $3 returning ",
            sql::wallet_columns!("$4"),
            ";"
        )
    };
    (entry $wallet:literal, $kind:literal, $counterparty:literal) => {
        concat!(
            "insert into transactions (wallet_id, kind, amount, balance_after, counterparty_id, created_at, \
             actor, reference, description, metadata) select id, ",
            $kind,
            ", $3, balance, ",
            $counterparty,
            ", $4, $5, $6, $7, $8 from wallets where id = ",
            $wallet,
            " and changes() = 1 returning id, wallet_id, kind, amount, balance_after, counterparty_id, \
             created_at, actor, reference, description, metadata;"
        )
    };
}

const CREDIT: &str = concat!(step!(credit "$1" if ""), step!(entry "$1", "$11", "null"));
const DEBIT: &str = concat!(step!(debit "$1" if ""), step!(entry "$1", "$11", "null"));
const KEYED_CREDIT: &str = concat!(
    step!(claim),
    step!(credit "$1" if "and changes() = 1"),
    step!(entry "$1", "$11", "null")
);
const KEYED_DEBIT: &str = concat!(
    step!(claim),
    step!(debit "$1" if "and changes() = 1"),
    step!(entry "$1", "$11", "null")
);

/// The payer is debited only if the payee can take the money (`$payer_guard`), so that the payee's credit
/// cannot be refused once the payer's balance moved.
macro_rules! transfer {
    ($payer:literal if $payer_guard:expr) => {
        concat!(
            step!(debit $payer if $payer_guard),
            step!(credit "$2" if "and changes() = 1"),
            step!(entry $payer, "$11", "$2"),
            step!(entry "$2", "$12", $payer)
        )
    };
    ($payer_guard:expr) => {
        transfer!("$1" if $payer_guard)
    };
}

/// The payee `$2` is open and can take the amount `$3`.
macro_rules! payee_can_take_it {
    () => {
        "and exists (select 1 from wallets payee where payee.id = $2 and payee.closed_at is null \
         and payee.balance <= 9223372036854775807 - $3)"
    };
}

const TRANSFER: &str = transfer!(payee_can_take_it!());
const KEYED_TRANSFER: &str = concat!(
    step!(claim),
    transfer!(concat!("and changes() = 1 ", payee_can_take_it!()))
);

const PLACE_HOLD: &str = concat!(step!(reserve if ""), step!(place));
const KEYED_PLACE_HOLD: &str = concat!(
    step!(claim hold),
    step!(reserve if "and changes() = 1"),
    step!(place)
);
const VOID_HOLD: &str = concat!(step!(void if ""), step!(release));
const KEYED_VOID_HOLD: &str = concat!(
    step!(claim hold),
    step!(void if "and changes() = 1"),
    step!(release)
);

const TRANSFER_KINDS: [LedgerEntryKind; 2] =
    [LedgerEntryKind::TransferOut, LedgerEntryKind::TransferIn];

/// A capture finishes its hold first, and only if the wallet it goes into can take the money; then the hold's
/// reservation is released, which leaves the money to debit available for certain.
macro_rules! capture {
    (into if $guard:expr) => {
        concat!(
            step!(capture if $guard),
            step!(release),
            transfer!("(select wallet_id from holds where id = $1)" if "and changes() = 1")
        )
    };
    (out if $guard:expr) => {
        concat!(
            step!(capture if $guard),
            step!(release),
            step!(debit "(select wallet_id from holds where id = $1)" if "and changes() = 1"),
            step!(entry "(select wallet_id from holds where id = $1)", "$11", "null")
        )
    };
}
const CAPTURE: &str = capture!(out if "");
const KEYED_CAPTURE: &str = concat!(step!(claim), capture!(out if "and changes() = 1"));
const CAPTURE_INTO: &str = capture!(into if payee_can_take_it!());
const KEYED_CAPTURE_INTO: &str = concat!(
    step!(claim),
    capture!(into if concat!("and changes() = 1 ", payee_can_take_it!()))
);

/// A deposit or withdrawal; `Ok(None)` when it changed nothing.
pub(super) async fn move_money(
    conn: &mut SqliteConnection,
    id: WalletId,
    kind: LedgerEntryKind,
    amount: Amount,
    memo: &Memo,
    claim: Option<KeyClaim<'_>>,
) -> Result<Option<Movement>> {
    let statements = match (is_debit(kind), claim.is_some()) {
        (false, false) => CREDIT,
        (true, false) => DEBIT,
        (false, true) => KEYED_CREDIT,
        (true, true) => KEYED_DEBIT,
    };
    let query = movement(
        statements,
        id.get(),
        None,
        amount,
        memo,
        claim,
        [kind, kind],
    );
    let mut rows = run(conn, query, claim).await?;
    match (rows.next(), rows.next()) {
        (Some(wallet), Some(entry)) => Ok(Some(moved(&wallet, &entry)?)),
        (None, _) => unclaimed(conn, claim).await,
        (Some(_), None) => Err(half_done()),
    }
}

/// A transfer; `Ok(None)` when it changed nothing.
pub(super) async fn transfer(
    conn: &mut SqliteConnection,
    from: WalletId,
    to: WalletId,
    amount: Amount,
    memo: &Memo,
    claim: Option<KeyClaim<'_>>,
) -> Result<Option<Transfer>> {
    let statements = if claim.is_some() {
        KEYED_TRANSFER
    } else {
        TRANSFER
    };
    let query = movement(
        statements,
        from.get(),
        Some(to),
        amount,
        memo,
        claim,
        TRANSFER_KINDS,
    );
    let mut rows = run(conn, query, claim).await?;
    let Some(debited) = rows.next() else {
        return unclaimed(conn, claim).await;
    };
    let (Some(credited), Some(out), Some(into)) = (rows.next(), rows.next(), rows.next()) else {
        return Err(half_done());
    };
    Ok(Some(Transfer {
        from: moved(&debited, &out)?,
        to: moved(&credited, &into)?,
    }))
}

/// Places a hold; `Ok(None)` when it changed nothing.
pub(super) async fn place_hold(
    conn: &mut SqliteConnection,
    wallet: WalletId,
    amount: Amount,
    expires_at: DateTime<Utc>,
    memo: &Memo,
    claim: Option<KeyClaim<'_>>,
) -> Result<Option<Hold>> {
    let statements = if claim.is_some() {
        KEYED_PLACE_HOLD
    } else {
        PLACE_HOLD
    };
    let query = sqlx::query(statements)
        .bind(wallet.get())
        .bind(amount.minor_units())
        .bind(Utc::now())
        .bind(expires_at)
        .bind(memo.reference.as_deref())
        .bind(memo.description.as_deref())
        .bind(memo.metadata.as_deref())
        .bind(claim.map(|claim| claim.key))
        .bind(claim.map(|claim| claim.request_hash));
    match run(conn, query, claim).await?.next() {
        Some(hold) => Ok(Some(HoldRow::from_row(&hold)?.try_into()?)),
        None => unclaimed(conn, claim).await,
    }
}

/// Voids a pending hold, giving its whole amount back; `Ok(None)` when it changed nothing.
pub(super) async fn void_hold(
    conn: &mut SqliteConnection,
    id: HoldId,
    claim: Option<KeyClaim<'_>>,
) -> Result<Option<Hold>> {
    let statements = if claim.is_some() {
        KEYED_VOID_HOLD
    } else {
        VOID_HOLD
    };
    let query = sqlx::query(statements)
        .bind(id.get())
        .bind(None::<i64>)
        .bind(Utc::now())
        .bind(None::<DateTime<Utc>>)
        .bind(None::<&str>)
        .bind(None::<&str>)
        .bind(None::<&str>)
        .bind(claim.map(|claim| claim.key))
        .bind(claim.map(|claim| claim.request_hash));
    let mut rows = run(conn, query, claim).await?;
    match (rows.next(), rows.next()) {
        (Some(hold), Some(_released)) => Ok(Some(HoldRow::from_row(&hold)?.try_into()?)),
        (None, _) => unclaimed(conn, claim).await,
        (Some(_), None) => Err(half_done()),
    }
}

/// Captures `amount` of a pending hold, out of its wallet or into `to`; `Ok(None)` when it changed nothing.
pub(super) async fn capture_hold(
    conn: &mut SqliteConnection,
    id: HoldId,
    amount: Amount,
    to: Option<WalletId>,
    memo: &Memo,
    claim: Option<KeyClaim<'_>>,
) -> Result<Option<Capture>> {
    let (statements, kinds) = match (to, claim.is_some()) {
        (None, false) => (CAPTURE, [LedgerEntryKind::Withdrawal; 2]),
        (None, true) => (KEYED_CAPTURE, [LedgerEntryKind::Withdrawal; 2]),
        (Some(_), false) => (CAPTURE_INTO, TRANSFER_KINDS),
        (Some(_), true) => (KEYED_CAPTURE_INTO, TRANSFER_KINDS),
    };
    let query = movement(statements, id.get(), to, amount, memo, claim, kinds);
    let mut rows = run(conn, query, claim).await?;
    let Some(hold) = rows.next() else {
        return unclaimed(conn, claim).await;
    };
    let hold: Hold = HoldRow::from_row(&hold)?.try_into()?;
    let mut next = || rows.next().ok_or_else(half_done);
    let _released = next()?;
    let debited = next()?;
    let capture = match to {
        None => Capture {
            hold,
            from: moved(&debited, &next()?)?,
            to: None,
        },
        Some(_) => {
            let credited = next()?;
            let (out, into) = (next()?, next()?);
            Capture {
                hold,
                from: moved(&debited, &out)?,
                to: Some(moved(&credited, &into)?),
            }
        }
    };
    Ok(Some(capture))
}

/// A wallet and its entry, as the steps returned them.
fn moved(wallet: &SqliteRow, entry: &SqliteRow) -> Result<Movement> {
    Ok(Movement {
        wallet: WalletRow::from_row(wallet)?.try_into()?,
        entry: EntryRow::from_row(entry)?.try_into()?,
    })
}

/// A deposit's, withdrawal's, transfer's or capture's statements with their parameters: `first` is the wallet,
/// or the payer of a transfer, or the hold captured.
fn movement<'q>(
    statements: &'static str,
    first: i64,
    payee: Option<WalletId>,
    amount: Amount,
    memo: &'q Memo,
    claim: Option<KeyClaim<'q>>,
    [kind, payee_kind]: [LedgerEntryKind; 2],
) -> Query<'q, Sqlite, SqliteArguments<'q>> {
    sqlx::query(statements)
        .bind(first)
        .bind(payee.map(WalletId::get))
        .bind(amount.minor_units())
        .bind(Utc::now())
        .bind(memo.actor.as_deref())
        .bind(memo.reference.as_deref())
        .bind(memo.description.as_deref())
        .bind(memo.metadata.as_deref())
        .bind(claim.map(|claim| claim.key))
        .bind(claim.map(|claim| claim.request_hash))
        .bind(kind.as_str())
        .bind(payee_kind.as_str())
}

/// Runs the query's statements to their end and gives back the rows they returned, in order. With a `claim`, the
/// first statement is the key's: a key another request holds is `IdempotencyKeyInUse` (the claim changed
/// nothing, so nothing after it ran).
async fn run<'q>(
    conn: &mut SqliteConnection,
    query: Query<'q, Sqlite, SqliteArguments<'q>>,
    claim: Option<KeyClaim<'_>>,
) -> Result<std::vec::IntoIter<SqliteRow>> {
    // Read to the end: the database thread stops running the statements when their stream is dropped.
    let steps: Vec<Either<_, SqliteRow>> = conn.fetch_many(query).try_collect().await?;
    if let (Some(_), Some(Either::Left(claimed))) = (claim, steps.first())
        && claimed.rows_affected() != 1
    {
        return Err(StoreError::IdempotencyKeyInUse);
    }
    let rows: Vec<SqliteRow> = steps.into_iter().filter_map(Either::right).collect();
    Ok(rows.into_iter())
}

/// Nothing moved: the key's claim is taken back, for the step-by-step path to claim it again.
async fn unclaimed<T>(
    conn: &mut SqliteConnection,
    claim: Option<KeyClaim<'_>>,
) -> Result<Option<T>> {
    if let Some(claim) = claim {
        sqlx::query(sql::RELEASE_KEY)
            .bind(claim.key)
            .execute(conn)
            .await?;
    }
    Ok(None)
}

/// The guards make this impossible; if it happened, the write's transaction must not commit.
fn half_done() -> StoreError {
    StoreError::Internal("a balance moved without the rest of its write".to_owned())
}

/// One deposit or withdrawal of a call carrying several (`move_many`), over `$1`–`$13` as `movement`'s with
/// `$13` whether it is a debit. The same text serves all four kinds, so a call's text depends only on how many
/// writes it carries, and sqlx prepares at most `MOVES_PER_CALL` of them. Its three statements always run: the
/// claim inserts nothing without a key (`$9` null), and the balance's update does not ask it to have.
const MOVE: &str = concat!(
    "insert into idempotency_keys (key, request_hash, created_at) select $9, $10, $4 where $9 is not null \
     on conflict (key) do nothing;",
    "update wallets set balance = balance + (case when $13 then -$3 else $3 end) \
     where id = $1 and ($9 is null or changes() = 1) and closed_at is null \
     and (case when $13 then balance - held >= $3 else balance <= 9223372036854775807 - $3 end) returning ",
    sql::wallet_columns!("$4"),
    ";",
    step!(entry "$1", "$11", "null")
);

/// Parameters of one write in `MOVE`.
const MOVE_PARAMETERS: usize = 13;

/// Most writes in one call: bounds the statement's text and parameters (and how long one call holds the writer).
pub(super) const MOVES_PER_CALL: usize = 16;

/// `MOVE` for `n` writes, its parameters renumbered for each: `$1`–`$13` the first write's, `$14`–`$26` the
/// second's, and so on.
fn moves_text(n: usize) -> &'static str {
    static TEXTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(|| {
        (1..=MOVES_PER_CALL)
            .map(|n| {
                (0..n)
                    .map(|i| renumbered(MOVE, i * MOVE_PARAMETERS))
                    .collect()
            })
            .collect()
    });
    texts
        .get(n.clamp(1, MOVES_PER_CALL) - 1)
        .map_or(MOVE, String::as_str)
}

/// `statements` with every `$n` made `$(n + offset)`.
fn renumbered(statements: &str, offset: usize) -> String {
    let mut text = String::with_capacity(statements.len() + 64);
    let mut rest = statements;
    while let Some(dollar) = rest.find('$') {
        text.push_str(&rest[..=dollar]);
        rest = &rest[dollar + 1..];
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        match rest[..digits].parse::<usize>() {
            Ok(n) => text.push_str(&(n + offset).to_string()),
            Err(_) => text.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    text.push_str(rest);
    text
}

/// A deposit or withdrawal waiting for the writer, owned, so that whichever write gets the writer's turn first
/// can run it with its own (`SqliteStore::move_money`).
#[derive(Debug)]
pub(super) struct MoveOrder {
    pub id: WalletId,
    pub kind: LedgerEntryKind,
    pub amount: Amount,
    pub memo: Memo,
    /// The idempotency key and its request's fingerprint.
    pub key: Option<(String, String)>,
    /// Tells the write apart from the others queued.
    pub seq: u64,
    /// Tells the order's own write how it went.
    pub done: tokio::sync::oneshot::Sender<MoveOutcome>,
}

/// How a queued move went (`Ok(None)`: it changed nothing, and its write runs it afresh), and in which batch;
/// `None` when no batch holds any of it.
pub(super) type MoveOutcome = (Result<Option<Movement>>, Option<BatchOutcome>);

/// Runs up to `MOVES_PER_CALL` deposits and withdrawals in one call to the database thread; their outcomes, in
/// order, each as `move_money`'s. A write refused at a step changes nothing (its key's claim is taken back) and
/// does not stop the writes after it. `Err` when the call itself failed: the transaction is then in doubt.
pub(super) async fn move_many(
    conn: &mut SqliteConnection,
    orders: &[MoveOrder],
) -> Result<Vec<Result<Option<Movement>>>> {
    let mut query = sqlx::query(moves_text(orders.len()));
    let now = Utc::now();
    for order in orders {
        query = query
            .bind(order.id.get())
            .bind(None::<i64>)
            .bind(order.amount.minor_units())
            .bind(now)
            .bind(order.memo.actor.as_deref())
            .bind(order.memo.reference.as_deref())
            .bind(order.memo.description.as_deref())
            .bind(order.memo.metadata.as_deref())
            .bind(order.key.as_ref().map(|(key, _)| key.as_str()))
            .bind(order.key.as_ref().map(|(_, hash)| hash.as_str()))
            .bind(order.kind.as_str())
            .bind(order.kind.as_str())
            .bind(is_debit(order.kind));
    }
    // Read to the end: the database thread stops running the statements when their stream is dropped.
    let steps: Vec<Either<_, SqliteRow>> = conn.fetch_many(query).try_collect().await?;
    let mut steps = steps.into_iter();
    let mut outcomes = Vec::with_capacity(orders.len());
    let mut unclaim = Vec::new();
    for order in orders {
        // Each statement's rows come before its result; three statements per write.
        let mut rows = Vec::with_capacity(2);
        let mut claimed = true;
        for statement in 0..3 {
            loop {
                match steps.next() {
                    Some(Either::Right(row)) => rows.push(row),
                    Some(Either::Left(done)) => {
                        if statement == 0 && order.key.is_some() && done.rows_affected() != 1 {
                            claimed = false;
                        }
                        break;
                    }
                    None => return Err(half_done()),
                }
            }
        }
        let mut rows = rows.into_iter();
        let outcome = match (claimed, rows.next(), rows.next()) {
            (false, _, _) => Err(StoreError::IdempotencyKeyInUse),
            (true, Some(wallet), Some(entry)) => moved(&wallet, &entry).map(Some),
            (true, None, _) => {
                unclaim.extend(order.key.as_ref().map(|(key, _)| key.as_str()));
                Ok(None)
            }
            (true, Some(_), None) => return Err(half_done()),
        };
        outcomes.push(outcome);
    }
    for key in unclaim {
        sqlx::query(sql::RELEASE_KEY)
            .bind(key)
            .execute(&mut *conn)
            .await?;
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use sqlx::Transaction;

    use super::*;
    use crate::domain::{Currency, HoldStatus};
    use crate::store::sqlite::{SqliteStore, two_reader_store};

    fn amount(minor: i64) -> Amount {
        Amount::from_minor(minor).expect("amount")
    }

    fn key(key: &str) -> Option<KeyClaim<'_>> {
        Some(KeyClaim {
            key,
            request_hash: "hash",
        })
    }

    /// Balances and held amounts, entries, events, keys and holds: what a write that changed nothing leaves as it
    /// was.
    #[derive(Debug, PartialEq)]
    struct Everything {
        wallets: Vec<(i64, i64)>,
        entries: i64,
        events: i64,
        keys: Vec<String>,
        holds: Vec<(i64, String)>,
    }

    async fn everything(conn: &mut SqliteConnection) -> Everything {
        let wallets = sqlx::query_as("select balance, held from wallets order by id")
            .fetch_all(&mut *conn)
            .await
            .expect("balances");
        let entries = sqlx::query_scalar("select count(*) from transactions")
            .fetch_one(&mut *conn)
            .await
            .expect("entries");
        let events = sqlx::query_scalar("select count(*) from events")
            .fetch_one(&mut *conn)
            .await
            .expect("events");
        let keys = sqlx::query_scalar("select key from idempotency_keys order by key")
            .fetch_all(&mut *conn)
            .await
            .expect("keys");
        let holds = sqlx::query_as("select id, status from holds order by id")
            .fetch_all(&mut *conn)
            .await
            .expect("holds");
        Everything {
            wallets,
            entries,
            events,
            keys,
            holds,
        }
    }

    /// A fresh store with wallets 1 (1,000), 2 (empty), 3 (closed) and 4 (a balance one short of overflowing at
    /// 10), and a transaction to write in.
    async fn scratch() -> (
        tempfile::TempDir,
        SqliteStore,
        [WalletId; 4],
        Transaction<'static, Sqlite>,
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = two_reader_store(&dir).await;
        let eur = Currency::parse("EUR").expect("EUR");
        let mut ids = Vec::new();
        for (owner, initial) in [("one", 1_000), ("two", 0), ("three", 0), ("four", 0)] {
            let created = store
                .create_wallet(owner, eur, amount(initial), &Memo::default(), None)
                .await
                .expect("wallet");
            ids.push(created.wallet.id);
        }
        store
            .close_wallet(ids[2], &Memo::default(), None)
            .await
            .expect("close");
        let mut conn = store.pool.acquire().await.expect("connection");
        sqlx::query("update wallets set balance = 9223372036854775798 where id = $1")
            .bind(ids[3].get())
            .execute(&mut *conn)
            .await
            .expect("near the bound");
        let tx = store.pool.begin().await.expect("transaction");
        (dir, store, [ids[0], ids[1], ids[2], ids[3]], tx)
    }

    /// `tried` refused (`IdempotencyKeyInUse` when `in_use`, else `Ok(None)`) with nothing changed since `after`.
    async fn refused<T: std::fmt::Debug>(
        tx: &mut SqliteConnection,
        tried: Result<Option<T>>,
        in_use: bool,
        after: &Everything,
        what: &str,
    ) {
        if in_use {
            assert!(
                matches!(tried, Err(StoreError::IdempotencyKeyInUse)),
                "{what}: {tried:?}"
            );
        } else {
            assert!(matches!(tried, Ok(None)), "{what}: {tried:?}");
        }
        assert_eq!(&everything(tx).await, after, "{what}");
    }

    /// Owned orders for `move_many`, and the receivers of their outcomes (unused here: `move_many` returns them).
    fn orders(
        moves: &[(WalletId, LedgerEntryKind, i64, Option<&str>)],
    ) -> (
        Vec<MoveOrder>,
        Vec<tokio::sync::oneshot::Receiver<MoveOutcome>>,
    ) {
        moves
            .iter()
            .zip(0..)
            .map(|(&(id, kind, minor, key), seq)| {
                let (done, outcome) = tokio::sync::oneshot::channel();
                let order = MoveOrder {
                    id,
                    kind,
                    amount: amount(minor),
                    memo: Memo {
                        reference: Some(format!("move {seq}")),
                        ..Memo::default()
                    },
                    key: key.map(|key| (key.to_owned(), "hash".to_owned())),
                    seq,
                    done,
                };
                (order, outcome)
            })
            .unzip()
    }

    #[tokio::test]
    async fn moves_in_one_call_each_keep_their_own_outcome() {
        let (_dir, _store, [one, two, closed, full], mut tx) = scratch().await;
        sqlx::query("insert into idempotency_keys (key, request_hash, created_at) values ('taken', 'x', $1)")
            .bind(Utc::now())
            .execute(&mut *tx)
            .await
            .expect("a key another request holds");
        let before = everything(&mut tx).await;
        use LedgerEntryKind::{Deposit, Withdrawal};
        let (moves, _outcomes) = orders(&[
            (one, Withdrawal, 400, Some("k1")),
            (two, Withdrawal, 1, Some("k2")),
            (two, Deposit, 250, None),
            (closed, Deposit, 5, Some("k3")),
            (one, Deposit, 7, Some("taken")),
            (full, Deposit, 10, None),
            (one, Withdrawal, 600, None),
            (two, Withdrawal, 250, Some("k4")),
        ]);
        let outcomes = move_many(&mut tx, &moves).await.expect("one call");
        assert_eq!(outcomes.len(), moves.len());
        let balance = |n: usize| match &outcomes[n] {
            Ok(Some(moved)) => {
                assert_eq!(moved.entry.amount, moves[n].amount, "move {n}'s entry");
                assert_eq!(moved.entry.kind, moves[n].kind, "move {n}'s entry");
                assert_eq!(
                    moved.entry.reference.as_deref(),
                    Some(format!("move {n}").as_str())
                );
                moved.wallet.balance.minor_units()
            }
            other => panic!("move {n}: {other:?}"),
        };
        // In order, each against the balance the moves before it left.
        assert_eq!(balance(0), 600);
        assert!(
            matches!(outcomes[1], Ok(None)),
            "too little money: {:?}",
            outcomes[1]
        );
        assert_eq!(balance(2), 250);
        assert!(
            matches!(outcomes[3], Ok(None)),
            "a closed wallet: {:?}",
            outcomes[3]
        );
        assert!(
            matches!(outcomes[4], Err(StoreError::IdempotencyKeyInUse)),
            "{:?}",
            outcomes[4]
        );
        assert!(
            matches!(outcomes[5], Ok(None)),
            "past the bound: {:?}",
            outcomes[5]
        );
        assert_eq!(balance(6), 0);
        assert_eq!(balance(7), 0);
        let after = everything(&mut tx).await;
        assert_eq!(after.wallets[0].0, 0);
        assert_eq!(after.wallets[1].0, 0);
        assert_eq!(
            after.wallets[3], before.wallets[3],
            "the full wallet is unchanged"
        );
        assert_eq!(
            after.entries,
            before.entries + 4,
            "one entry per move that moved money"
        );
        assert_eq!(
            after.events,
            before.events + 4,
            "one event per move that moved money"
        );
        // The refused moves' keys are not left claimed; the others' are, for their answers.
        assert_eq!(after.keys, ["k1", "k4", "taken"]);
    }

    #[tokio::test]
    async fn a_transfer_moves_both_balances_with_entries_and_events_or_changes_nothing() {
        let (_dir, _store, [one, two, closed, full], mut tx) = scratch().await;
        let memo = Memo {
            reference: Some("order 7".to_owned()),
            ..Memo::default()
        };

        let done = transfer(&mut tx, one, two, amount(300), &memo, key("k1"))
            .await
            .expect("transfer")
            .expect("done at once");
        assert_eq!(
            (done.from.wallet.balance, done.to.wallet.balance),
            (amount(700), amount(300))
        );
        let (out, into) = (&done.from.entry, &done.to.entry);
        assert_eq!(
            (out.kind, into.kind),
            (LedgerEntryKind::TransferOut, LedgerEntryKind::TransferIn)
        );
        assert_eq!(
            (out.balance_after, into.balance_after),
            (amount(700), amount(300))
        );
        assert_eq!(
            (out.counterparty_id, into.counterparty_id),
            (Some(two), Some(one))
        );
        assert_eq!(into.reference.as_deref(), Some("order 7"));
        let after = everything(&mut tx).await;
        assert_eq!(after.wallets[..2], [(700, 0), (300, 0)]);
        assert_eq!(after.keys, ["k1"], "the key is claimed with its transfer");

        // Too much, a closed payee, a payee that cannot take it, a key in use: each changes nothing.
        for (payee, minor, claim) in [
            (two, 701, key("k2")),
            (closed, 1, key("k3")),
            (full, 10, None),
            (two, 1, key("k1")),
        ] {
            let tried = transfer(&mut tx, one, payee, amount(minor), &memo, claim).await;
            let in_use = claim.map(|claim| claim.key) == Some("k1");
            refused(&mut tx, tried, in_use, &after, &format!("{payee} {minor}")).await;
        }
    }

    #[tokio::test]
    async fn a_deposit_or_withdrawal_moves_its_balance_with_its_entry_or_changes_nothing() {
        let (_dir, _store, [one, _, closed, full], mut tx) = scratch().await;
        let memo = Memo::default();
        let before = everything(&mut tx).await;

        let paid_in = move_money(
            &mut tx,
            one,
            LedgerEntryKind::Deposit,
            amount(5),
            &memo,
            key("d"),
        )
        .await
        .expect("deposit")
        .expect("done at once");
        assert_eq!(paid_in.wallet.balance, amount(1_005));
        assert_eq!(
            (paid_in.entry.kind, paid_in.entry.balance_after),
            (LedgerEntryKind::Deposit, amount(1_005))
        );
        let paid_out = move_money(
            &mut tx,
            one,
            LedgerEntryKind::Withdrawal,
            amount(1_005),
            &memo,
            None,
        )
        .await
        .expect("withdrawal")
        .expect("done at once");
        assert_eq!(paid_out.wallet.balance, Amount::ZERO);
        let after = everything(&mut tx).await;
        assert_eq!(
            (after.entries - before.entries, after.events - before.events),
            (2, 2),
            "an entry and an event each"
        );

        for (wallet, kind, claim) in [
            (one, LedgerEntryKind::Withdrawal, key("w")),
            (closed, LedgerEntryKind::Deposit, key("c")),
            (full, LedgerEntryKind::Deposit, None),
            (
                WalletId::parse("999").expect("id"),
                LedgerEntryKind::Deposit,
                key("u"),
            ),
        ] {
            let tried = move_money(&mut tx, wallet, kind, amount(10), &memo, claim).await;
            refused(&mut tx, tried, false, &after, &format!("{wallet} {kind:?}")).await;
        }
    }

    #[tokio::test]
    async fn a_hold_is_placed_or_voided_with_its_reservation_and_event_or_nothing_changes() {
        let (_dir, _store, [one, _, closed, _], mut tx) = scratch().await;
        let memo = Memo::default();
        let later = Utc::now() + chrono::Duration::hours(1);
        let before = everything(&mut tx).await;

        let placed = place_hold(&mut tx, one, amount(400), later, &memo, key("p"))
            .await
            .expect("place")
            .expect("placed at once");
        assert_eq!((placed.wallet_id, placed.amount), (one, amount(400)));
        assert_eq!(placed.status, HoldStatus::Pending);
        let after = everything(&mut tx).await;
        assert_eq!(after.wallets[0], (1_000, 400), "the money is reserved");
        assert_eq!(after.events - before.events, 1);
        assert_eq!(after.keys, ["p"]);

        // More than is available, a closed wallet, a key in use: nothing changes.
        for (wallet, minor, claim) in [(one, 601, key("q")), (closed, 1, None), (one, 1, key("p"))]
        {
            let tried = place_hold(&mut tx, wallet, amount(minor), later, &memo, claim).await;
            let in_use = claim.map(|claim| claim.key) == Some("p");
            refused(&mut tx, tried, in_use, &after, &format!("{wallet} {minor}")).await;
        }

        let voided = void_hold(&mut tx, placed.id, key("v"))
            .await
            .expect("void")
            .expect("voided at once");
        assert_eq!((voided.id, voided.status), (placed.id, HoldStatus::Voided));
        let after = everything(&mut tx).await;
        assert_eq!(
            after.wallets[0],
            (1_000, 0),
            "the reservation is given back"
        );
        assert_eq!(after.events - before.events, 2);

        // Past its expiry (the sweep's to release), already voided, unknown: nothing changes.
        let earlier = Utc::now() - chrono::Duration::seconds(1);
        let lapsed = place_hold(&mut tx, one, amount(5), earlier, &memo, None)
            .await
            .expect("place")
            .expect("placed at once");
        let after = everything(&mut tx).await;
        for hold in [lapsed.id, placed.id, HoldId::parse("999").expect("id")] {
            let tried = void_hold(&mut tx, hold, key("w")).await;
            refused(&mut tx, tried, false, &after, &hold.to_string()).await;
        }
    }

    #[tokio::test]
    async fn a_capture_moves_the_held_money_out_or_into_another_wallet_or_nothing_changes() {
        let (_dir, _store, [one, two, closed, full], mut tx) = scratch().await;
        let memo = Memo::default();
        let later = Utc::now() + chrono::Duration::hours(1);
        let hold = async |tx: &mut SqliteConnection, minor: i64| {
            place_hold(tx, one, amount(minor), later, &memo, None)
                .await
                .expect("place")
                .expect("placed at once")
        };
        let (out, into, kept) = (
            hold(&mut tx, 400).await,
            hold(&mut tx, 200).await,
            hold(&mut tx, 100).await,
        );
        let before = everything(&mut tx).await;
        assert_eq!(before.wallets[0], (1_000, 700));

        let paid = capture_hold(&mut tx, out.id, amount(300), None, &memo, key("c1"))
            .await
            .expect("capture")
            .expect("captured at once");
        assert_eq!(
            (paid.hold.status, paid.hold.captured),
            (HoldStatus::Captured, Some(amount(300)))
        );
        assert_eq!(paid.from.wallet.balance, amount(700));
        assert_eq!(
            (paid.from.entry.kind, paid.from.entry.amount),
            (LedgerEntryKind::Withdrawal, amount(300))
        );
        assert!(paid.to.is_none());
        let after = everything(&mut tx).await;
        assert_eq!(
            after.wallets[0],
            (700, 300),
            "the whole hold is released, 300 of it paid"
        );

        let paid = capture_hold(&mut tx, into.id, amount(150), Some(two), &memo, key("c2"))
            .await
            .expect("capture")
            .expect("captured at once");
        let credited = paid.to.expect("into another wallet");
        assert_eq!(
            (paid.from.wallet.balance, credited.wallet.balance),
            (amount(550), amount(150))
        );
        assert_eq!(
            (paid.from.entry.kind, credited.entry.kind),
            (LedgerEntryKind::TransferOut, LedgerEntryKind::TransferIn)
        );
        assert_eq!(
            (
                paid.from.entry.counterparty_id,
                credited.entry.counterparty_id
            ),
            (Some(two), Some(one))
        );
        let after = everything(&mut tx).await;
        assert_eq!(after.wallets[..2], [(550, 100), (150, 0)]);
        assert_eq!(after.entries - before.entries, 3);
        assert_eq!(after.keys, ["c1", "c2"]);

        // More than held, into a closed wallet or one that cannot take it, a key in use, a hold no longer
        // pending, an unknown hold: nothing changes.
        let unknown = HoldId::parse("999").expect("id");
        for (id, minor, to, claim) in [
            (kept.id, 101, None, key("c3")),
            (kept.id, 10, Some(closed), key("c4")),
            (kept.id, 10, Some(full), None),
            (kept.id, 10, None, key("c1")),
            (out.id, 10, None, None),
            (unknown, 10, Some(two), key("c5")),
        ] {
            let tried = capture_hold(&mut tx, id, amount(minor), to, &memo, claim).await;
            let in_use = claim.map(|claim| claim.key) == Some("c1");
            refused(
                &mut tx,
                tried,
                in_use,
                &after,
                &format!("{id} {minor} {to:?}"),
            )
            .await;
        }
    }
}
