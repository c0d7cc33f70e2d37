//! SQL that both PostgreSQL and SQLite accept (`$n` placeholders, `returning`, `on conflict`).
//! Backend-specific statements live beside their backend.

/// The columns of a wallet as the API shows it. `held` leaves out pending holds past their expiry (instant `$n`)
/// that no sweep or write has marked expired yet: an expired hold stops counting at `expires_at`, swept or not
/// (docs/adr/0100-holds-model.md). `wallets` must be the table's own name in the statement.
macro_rules! wallet_columns {
    ($now:literal) => {
        concat!(
            "wallets.id as id, wallets.owner as owner, wallets.currency as currency, \
             wallets.balance as balance, wallets.held - cast(coalesce((select sum(h.amount) from holds h \
             where h.wallet_id = wallets.id and h.status = 'pending' and h.expires_at <= ",
            $now,
            "), 0) as bigint) as held, wallets.created_at as created_at"
        )
    };
}
pub(crate) use wallet_columns;

/// A new wallet holds nothing.
pub const INSERT_WALLET: &str = "insert into wallets (owner, currency, balance, created_at) values ($1, $2, $3, $4) \
     returning id, owner, currency, balance, held, created_at";

pub const INSERT_ENTRY: &str = "insert into transactions (wallet_id, kind, amount, balance_after, counterparty_id, created_at, actor, \
     reference, description, metadata) \
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     returning id, wallet_id, kind, amount, balance_after, counterparty_id, created_at, actor, \
     reference, description, metadata";

/// `$2`: now.
pub const GET_OPEN_WALLET: &str = concat!(
    "select ",
    wallet_columns!("$2"),
    " from wallets where id = $1 and closed_at is null"
);

pub const GET_FACTS: &str = "select currency, owner from wallets where id = $1";

/// Credits a wallet unless it is closed or the balance would leave i64 (SQLite would silently turn it into a float).
/// `$3`: now.
pub const CREDIT: &str = concat!(
    "update wallets set balance = balance + $2 \
     where id = $1 and closed_at is null and balance <= 9223372036854775807 - $2 returning ",
    wallet_columns!("$3")
);

/// Debits a wallet only if enough of it is available (not held): the check and the write are one statement, so no
/// update is lost. Pending holds past their expiry still count here until released (`expire_due_holds`), which a
/// refused debit does before it tries again. `$3`: now.
pub const DEBIT: &str = concat!(
    "update wallets set balance = balance - $2 \
     where id = $1 and closed_at is null and balance - held >= $2 returning ",
    wallet_columns!("$3")
);

/// Refused (no row) while the wallet has a pending hold, even one past its expiry that could not be released.
pub const CLOSE_WALLET: &str = "update wallets set balance = 0, closed_at = $2 where id = $1 and closed_at is null and held = 0";

/// Keyset pagination over open wallets: `id > $3` rather than an offset, so deep pages stay cheap.
/// `$5`: now.
pub const LIST_WALLETS: &str = concat!(
    "select ",
    wallet_columns!("$5"),
    " from wallets \
     where closed_at is null and ($1 is null or owner = $1) and ($2 is null or currency = $2) and id > $3 \
     order by id limit $4"
);

/// The columns of a ledger entry (`EntryRow`).
pub const ENTRY_COLUMNS: &str = "id, wallet_id, kind, amount, balance_after, counterparty_id, created_at, actor, \
     reference, description, metadata";

pub const COUNT_OPEN_WALLETS: &str = "select count(*) from wallets where closed_at is null";

/// Every wallet whose balance differs from its ledger, every entry whose `balance_after` does not continue
/// the previous entry of its wallet, and every wallet whose `held` is not the sum of its pending holds or exceeds
/// its balance. Window functions exist in both backends.
pub const AUDIT: &str = "with entries as ( \
         select wallet_id, id, kind, balance_after, \
                case when kind in ('opening', 'deposit', 'transfer_in') then amount else -amount end as signed, \
                lag(balance_after) over (partition by wallet_id order by id) as previous \
         from transactions \
     ), broken_chain as ( \
         select wallet_id, min(id) as first_bad_entry from entries \
         where balance_after <> coalesce(previous, 0) + signed \
            or (previous is null and kind <> 'opening') \
         group by wallet_id \
     ), sums as ( \
         select wallet_id, cast(sum(signed) as bigint) as ledger_balance from entries group by wallet_id \
     ), pending as ( \
         select wallet_id, cast(sum(amount) as bigint) as pending_holds from holds where status = 'pending' \
         group by wallet_id \
     ) \
     select w.id as wallet_id, w.balance, s.ledger_balance, b.first_bad_entry, \
            w.held, cast(coalesce(p.pending_holds, 0) as bigint) as pending_holds \
     from wallets w \
     left join sums s on s.wallet_id = w.id \
     left join broken_chain b on b.wallet_id = w.id \
     left join pending p on p.wallet_id = w.id \
     where s.ledger_balance is null or s.ledger_balance <> w.balance or b.first_bad_entry is not null \
        or w.held <> coalesce(p.pending_holds, 0) or w.held > w.balance or w.held < 0 \
     order by w.id";

pub const CLAIM_KEY: &str = "insert into idempotency_keys (key, request_hash, created_at) values ($1, $2, $3) on conflict (key) do nothing";

pub const KEY_TAKEN: &str = "select exists (select 1 from idempotency_keys where key = $1)";

pub const GET_KEY: &str =
    "select request_hash, status, location, body, created_at from idempotency_keys where key = $1";

/// Takes over a claim whose request died before finishing (its process crashed or was killed).
pub const TAKE_OVER_ABANDONED_KEY: &str = "update idempotency_keys set created_at = $2 \
     where key = $1 and status is null and created_at < $3";

/// A keyed operation's answer, and with it the key's claim (`Finish`); nothing if the key is taken.
pub const INSERT_ANSWER: &str = "insert into idempotency_keys (key, request_hash, created_at, status, location, body) \
     values ($1, $2, $3, $4, $5, $6) on conflict (key) do nothing";

pub const RELEASE_KEY: &str = "delete from idempotency_keys where key = $1 and status is null";

pub const EXPIRE_KEYS: &str = "delete from idempotency_keys where created_at < $1";

/// The columns of a hold as the API shows it: a pending hold past its expiry (instant `$n`) reads `expired`.
macro_rules! hold_columns {
    ($now:literal) => {
        concat!(
            "holds.id as id, holds.wallet_id as wallet_id, holds.amount as amount, \
             case when holds.status = 'pending' and holds.expires_at <= ",
            $now,
            " then 'expired' else holds.status end as status, holds.captured as captured, \
             holds.expires_at as expires_at, holds.created_at as created_at, \
             holds.reference as reference, holds.description as description, holds.metadata as metadata"
        )
    };
}
pub(crate) use hold_columns;

/// Reserves money for a hold: only what is available (balance less held) can be held.
pub const RESERVE: &str = "update wallets set held = held + $2 \
     where id = $1 and closed_at is null and balance - held >= $2 returning id";

/// `$1` wallet, `$2` amount, `$3` now, `$4` expires at, `$5`–`$7` reference, description, metadata.
pub const INSERT_HOLD: &str = concat!(
    "insert into holds (wallet_id, amount, status, expires_at, created_at, reference, description, metadata) \
     values ($1, $2, 'pending', $4, $3, $5, $6, $7) returning ",
    hold_columns!("$3")
);

/// Gives back what a hold reserved, once it leaves `pending`.
pub const RELEASE: &str = "update wallets set held = held - $2 where id = $1 and held >= $2";

/// A hold of an open wallet. `$2`: now.
pub const GET_HOLD: &str = concat!(
    "select ",
    hold_columns!("$2"),
    " from holds join wallets w on w.id = holds.wallet_id and w.closed_at is null where holds.id = $1"
);

/// A page of a wallet's holds, newest first, optionally of one status as the API shows it (`$2`, `pending` or
/// `expired` taking expiry into account). `$3` before, `$4` limit, `$5` now.
pub const LIST_HOLDS: &str = concat!(
    "select ",
    hold_columns!("$5"),
    " from holds where wallet_id = $1 and holds.id < $3 and ($2 is null or \
       (case when holds.status = 'pending' and holds.expires_at <= $5 then 'expired' else holds.status end) = $2) \
     order by holds.id desc limit $4"
);

/// Takes a pending, unexpired hold out of `pending`. `$1` hold, `$2` status, `$3` now, `$4` captured amount
/// (null for a void). The capture never takes more than the hold.
pub const FINISH_HOLD: &str = concat!(
    "update holds set status = $2, finished_at = $3, captured = $4 \
     where id = $1 and status = 'pending' and expires_at > $3 and ($4 is null or amount >= $4) returning ",
    hold_columns!("$3")
);

/// Wallets with pending holds past their expiry, for the sweep. `$1` now, `$2` limit.
pub const WALLETS_WITH_DUE_HOLDS: &str = "select distinct wallet_id from holds \
     where status = 'pending' and expires_at <= $1 order by wallet_id limit $2";

/// The money held in open wallets, by currency (a gauge).
pub const HELD_BY_CURRENCY: &str = "select currency, cast(sum(held) as bigint) as held from wallets where closed_at is null group by currency";

/// How far an entry's `created_at` may run ahead of a later entry's in the same wallet. Entries of a wallet are
/// written one after another under its lock, but `created_at` is read from the clock before the statement that
/// takes the lock, which waits at most `lock_timeout` (4 s) within `statement_timeout` (5 s); the rest is margin
/// for clock adjustments and replicas' clocks.
pub const CLOCK_SLACK: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The id of the wallet's last entry in time before instant `$2`: every entry at or after `$2 + CLOCK_SLACK` has a
/// larger id.
pub const LAST_ID_BEFORE: &str = "select id from transactions where wallet_id = $1 and created_at < $2 \
     order by created_at desc, id desc limit 1";

/// The id of the wallet's first entry in time at or after instant `$2`: every entry before `$2 - CLOCK_SLACK` has a
/// smaller id.
pub const FIRST_ID_FROM: &str = "select id from transactions where wallet_id = $1 and created_at >= $2 \
     order by created_at, id limit 1";

/// A page of a wallet's entries with only the filters that are set (so the planner sees plain predicates it can
/// match to an index). `$1` wallet, `$2` and `$3` the ids it lies strictly between (the cursor, and the period's
/// id range), `$4` limit, then in order whichever of kind, reference, from (inclusive) and to (exclusive) the
/// filter has.
pub fn list_entries(filter: &super::HistoryFilter, ascending: bool) -> String {
    let mut statement = format!(
        "select {ENTRY_COLUMNS} from transactions where wallet_id = $1 and id > $2 and id < $3"
    );
    let mut n = 4;
    let mut add = |predicate: &str| {
        n += 1;
        statement.push_str(&format!(" and {predicate} ${n}"));
    };
    if filter.kind.is_some() {
        add("kind =");
    }
    if filter.reference.is_some() {
        add("reference =");
    }
    if filter.from.is_some() {
        add("created_at >=");
    }
    if filter.to.is_some() {
        add("created_at <");
    }
    statement.push_str(if ascending {
        " order by id limit $4"
    } else {
        " order by id desc limit $4"
    });
    statement
}

/// The last entry of a wallet at (when `inclusive`) or before instant `$2`: one probe of
/// `transactions_by_wallet_time`.
pub fn entry_as_of(inclusive: bool) -> String {
    let compare = if inclusive { "<=" } else { "<" };
    format!(
        "select {ENTRY_COLUMNS} from transactions where wallet_id = $1 and created_at {compare} $2 \
         order by created_at desc, id desc limit 1"
    )
}
