-- The outbox: see the PostgreSQL migration and docs/adr/0120-events-outbox-and-feed.md. Every SQLite write
-- transaction holds the database's write lock, so insertion order is commit order: `position` (the feed's id)
-- is assigned at insert, as the next number after the highest one.
create table events (
    id          integer primary key autoincrement,
    position    integer unique,
    type        text    not null check (type in ('wallet.opened', 'wallet.closed', 'transaction.created',
                                                 'hold.created', 'hold.captured', 'hold.voided',
                                                 'hold.expired')),
    wallet_id   integer not null,
    entry_id    integer,
    hold_id     integer,
    created_at  text    not null
);

-- Kept for the same shape as PostgreSQL (where the sequencer uses it); empty here.
create index events_unsequenced on events (id) where position is null;

create trigger transactions_event after insert on transactions
begin
    insert into events (position, type, wallet_id, entry_id, created_at)
    values ((select coalesce(max(position), 0) + 1 from events), 'transaction.created', new.wallet_id, new.id,
            new.created_at);
end;

create trigger wallets_opened_event after insert on wallets
begin
    insert into events (position, type, wallet_id, created_at)
    values ((select coalesce(max(position), 0) + 1 from events), 'wallet.opened', new.id, new.created_at);
end;

create trigger wallets_closed_event after update of closed_at on wallets
    when old.closed_at is null and new.closed_at is not null
begin
    insert into events (position, type, wallet_id, created_at)
    values ((select coalesce(max(position), 0) + 1 from events), 'wallet.closed', new.id, new.closed_at);
end;

create trigger holds_created_event after insert on holds
begin
    insert into events (position, type, wallet_id, hold_id, created_at)
    values ((select coalesce(max(position), 0) + 1 from events), 'hold.created', new.wallet_id, new.id,
            new.created_at);
end;

create trigger holds_finished_event after update of status on holds
    when old.status = 'pending' and new.status <> 'pending'
begin
    insert into events (position, type, wallet_id, hold_id, created_at)
    values ((select coalesce(max(position), 0) + 1 from events), 'hold.' || new.status, new.wallet_id, new.id,
            new.finished_at);
end;
