-- Wallets and their append-only ledger. Balances are integer minor units; the currency fixes the exponent.
-- AUTOINCREMENT so an id is never reused, even after the highest row is gone.
create table wallets (
    id          integer primary key autoincrement,
    owner       text    not null check (length(owner) between 1 and 400),
    currency    text    not null check (length(currency) = 3 and currency = upper(currency)),
    -- The last line of defence against overdrafts: no code path can commit a negative balance.
    balance     integer not null check (typeof(balance) = 'integer' and balance >= 0),
    created_at  text    not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    closed_at   text,
    check (closed_at is null or balance = 0)
);

create index wallets_open_by_owner on wallets (owner, id) where closed_at is null;
create index wallets_open_by_id on wallets (id) where closed_at is null;

create table transactions (
    id              integer primary key autoincrement,
    wallet_id       integer not null references wallets (id),
    kind            text    not null check (kind in ('opening', 'deposit', 'withdrawal', 'transfer_in', 'transfer_out', 'closing')),
    amount          integer not null check (typeof(amount) = 'integer' and amount >= 0),
    balance_after   integer not null check (typeof(balance_after) = 'integer' and balance_after >= 0),
    counterparty_id integer references wallets (id),
    created_at      text    not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

create index transactions_by_wallet on transactions (wallet_id, id desc);

-- Ledger entries are never updated or deleted: refuse it in the database, not only in code.
create trigger transactions_no_update before update on transactions
begin
    select raise(abort, 'the ledger is append-only (UPDATE on transactions refused)');
end;
create trigger transactions_no_delete before delete on transactions
begin
    select raise(abort, 'the ledger is append-only (DELETE on transactions refused)');
end;

-- See the PostgreSQL migration for how claims and stored responses work.
create table idempotency_keys (
    key           text    primary key,
    request_hash  text    not null,
    status        integer,
    location      text,
    body          text,
    created_at    text    not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
create index idempotency_keys_by_age on idempotency_keys (created_at);
