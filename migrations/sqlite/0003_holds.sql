-- Holds: see the PostgreSQL migration and docs/adr/0100-holds-model.md.
alter table wallets add column held integer not null default 0
    check (typeof(held) = 'integer' and held >= 0 and held <= balance);

create table holds (
    id           integer primary key autoincrement,
    wallet_id    integer not null references wallets (id),
    amount       integer not null check (typeof(amount) = 'integer' and amount > 0),
    status       text    not null default 'pending'
                         check (status in ('pending', 'captured', 'voided', 'expired')),
    captured     integer check (captured > 0 and captured <= amount),
    -- Instants as sqlx writes them (RFC 3339, UTC): text that sorts in time order.
    expires_at   text    not null,
    created_at   text    not null,
    finished_at  text,
    check ((status = 'captured') = (captured is not null)),
    check ((status = 'pending') = (finished_at is null))
);

create index holds_by_wallet on holds (wallet_id, id desc);
create index holds_pending_by_wallet on holds (wallet_id, expires_at) where status = 'pending';
create index holds_pending_by_expiry on holds (expires_at) where status = 'pending';

create trigger holds_final before update on holds
    when old.status <> 'pending' or new.wallet_id <> old.wallet_id or new.amount <> old.amount
begin
    select raise(abort, 'a hold is final once it leaves pending, and its wallet and amount never change');
end;
create trigger holds_no_delete before delete on holds
begin
    select raise(abort, 'holds are never deleted');
end;
