//! SQL that both PostgreSQL and SQLite accept (`$n` placeholders, `returning`, `on conflict`).
//! Backend-specific statements live beside their backend.

pub const INSERT_WALLET: &str = "insert into wallets (owner, currency, balance, created_at) values ($1, $2, $3, $4) \
     returning id, owner, currency, balance, created_at";

pub const INSERT_ENTRY: &str = "insert into transactions (wallet_id, kind, amount, balance_after, counterparty_id, created_at, actor) \
     values ($1, $2, $3, $4, $5, $6, $7) \
     returning id, wallet_id, kind, amount, balance_after, counterparty_id, created_at, actor";

pub const GET_OPEN_WALLET: &str = "select id, owner, currency, balance, created_at from wallets where id = $1 and closed_at is null";

pub const GET_FACTS: &str = "select currency, owner from wallets where id = $1";

/// Credits a wallet unless it is closed or the balance would leave i64 (SQLite would silently turn it into a float).
pub const CREDIT: &str = "update wallets set balance = balance + $2 \
     where id = $1 and closed_at is null and balance <= 9223372036854775807 - $2 \
     returning id, owner, currency, balance, created_at";

/// Debits a wallet only if it holds enough: the check and the write are one statement, so no update is lost.
pub const DEBIT: &str = "update wallets set balance = balance - $2 \
     where id = $1 and closed_at is null and balance >= $2 \
     returning id, owner, currency, balance, created_at";

pub const CLOSE_WALLET: &str =
    "update wallets set balance = 0, closed_at = $2 where id = $1 and closed_at is null";

/// Keyset pagination over open wallets: `id > $3` rather than an offset, so deep pages stay cheap.
pub const LIST_WALLETS: &str = "select id, owner, currency, balance, created_at from wallets \
     where closed_at is null and ($1 is null or owner = $1) and ($2 is null or currency = $2) and id > $3 \
     order by id limit $4";

pub const LIST_ENTRIES: &str = "select id, wallet_id, kind, amount, balance_after, counterparty_id, created_at, actor \
     from transactions where wallet_id = $1 and id < $2 order by id desc limit $3";

pub const COUNT_OPEN_WALLETS: &str = "select count(*) from wallets where closed_at is null";

/// Every wallet whose balance differs from its ledger, and every entry whose `balance_after` does not continue
/// the previous entry of its wallet. Window functions exist in both backends.
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
     ) \
     select w.id as wallet_id, w.balance, s.ledger_balance, b.first_bad_entry \
     from wallets w \
     left join sums s on s.wallet_id = w.id \
     left join broken_chain b on b.wallet_id = w.id \
     where s.ledger_balance is null or s.ledger_balance <> w.balance or b.first_bad_entry is not null \
     order by w.id";

pub const CLAIM_KEY: &str = "insert into idempotency_keys (key, request_hash, created_at) values ($1, $2, $3) on conflict (key) do nothing";

pub const GET_KEY: &str =
    "select request_hash, status, location, body, created_at from idempotency_keys where key = $1";

/// Takes over a claim whose request died before finishing (its process crashed or was killed).
pub const TAKE_OVER_ABANDONED_KEY: &str = "update idempotency_keys set created_at = $2 \
     where key = $1 and status is null and created_at < $3";

pub const STORE_RESPONSE: &str =
    "update idempotency_keys set status = $2, location = $3, body = $4 where key = $1";

pub const RELEASE_KEY: &str = "delete from idempotency_keys where key = $1 and status is null";

pub const EXPIRE_KEYS: &str = "delete from idempotency_keys where created_at < $1";
