-- Wallets and their append-only ledger. Balances are bigint minor units; the currency fixes the exponent.
create table wallets (
    id          bigint generated always as identity primary key,
    owner       text        not null check (length(owner) between 1 and 400),
    currency    text        not null check (currency ~ '^[A-Z]{3}$'),
    -- The last line of defence against overdrafts: no code path can commit a negative balance.
    balance     bigint      not null check (balance >= 0),
    created_at  timestamptz not null default now(),
    closed_at   timestamptz,
    check (closed_at is null or balance = 0)
);

-- Listing filters by owner and pages by id (keyset), open wallets only.
create index wallets_open_by_owner on wallets (owner, id) where closed_at is null;
create index wallets_open_by_id on wallets (id) where closed_at is null;

create table transactions (
    id             bigint generated always as identity primary key,
    wallet_id      bigint      not null references wallets (id),
    kind           text        not null check (kind in ('opening', 'deposit', 'withdrawal', 'transfer_in', 'transfer_out', 'closing')),
    amount         bigint      not null check (amount >= 0),
    balance_after  bigint      not null check (balance_after >= 0),
    -- The other wallet of a transfer, so both legs can be matched.
    counterparty_id bigint     references wallets (id),
    created_at     timestamptz not null default now()
);

-- History pages newest first per wallet.
create index transactions_by_wallet on transactions (wallet_id, id desc);

-- Ledger entries are never updated or deleted: refuse it in the database, not only in code.
create function refuse_ledger_rewrite() returns trigger language plpgsql as $$
begin
    raise exception 'the ledger is append-only (% on transactions refused)', tg_op;
end;
$$;
create trigger transactions_append_only before update or delete on transactions
    for each row execute function refuse_ledger_rewrite();

-- Idempotency records: a claim is inserted when a keyed request starts; the response is stored in the same
-- database transaction as the operation it describes, so a crash never leaves an applied but unrecorded request.
create table idempotency_keys (
    key           text        primary key,
    request_hash  text        not null,
    status        integer,
    location      text,
    body          text,
    created_at    timestamptz not null default now()
);
create index idempotency_keys_by_age on idempotency_keys (created_at);
