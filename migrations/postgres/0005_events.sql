-- The outbox (docs/adr/0120-events-outbox-and-feed.md). Every change writes its events in its own transaction:
-- triggers on the rows that make up a change (a ledger entry, a wallet opened or closed, a hold placed or
-- finished) insert them, so no write path can forget one and the event commits or rolls back with its change.
-- An event is a small pointer row; the feed renders its `data` at read time from the rows it points to, which
-- never change once the event is written (entries are append-only, a finished hold is final).
--
-- `id` is the insertion order, assigned at insert, so not in commit order. `position` is the feed's id: a
-- sequencer numbers committed events after commit, one serialized round at a time, so positions become
-- visible in increasing order and a consumer's cursor never skips one.
-- No foreign keys: every row is written by a trigger from the row it points to, and the checks would cost a
-- lookup per event on the hot path.
create table events (
    id          bigint generated always as identity primary key,
    position    bigint unique,
    type        text        not null check (type in ('wallet.opened', 'wallet.closed', 'transaction.created',
                                                     'hold.created', 'hold.captured', 'hold.voided',
                                                     'hold.expired')),
    wallet_id   bigint      not null,
    entry_id    bigint,
    hold_id     bigint,
    created_at  timestamptz not null
);

-- What the sequencer has still to number.
create index events_unsequenced on events (id) where position is null;

create function record_entry_event() returns trigger language plpgsql as $$
begin
    insert into events (type, wallet_id, entry_id, created_at)
    values ('transaction.created', new.wallet_id, new.id, new.created_at);
    return null;
end;
$$;
create trigger transactions_event after insert on transactions
    for each row execute function record_entry_event();

create function record_wallet_event() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into events (type, wallet_id, created_at) values ('wallet.opened', new.id, new.created_at);
    else
        insert into events (type, wallet_id, created_at) values ('wallet.closed', new.id, new.closed_at);
    end if;
    return null;
end;
$$;
create trigger wallets_opened_event after insert on wallets
    for each row execute function record_wallet_event();
-- `of closed_at`: balance updates (the hot path) do not even evaluate this trigger.
create trigger wallets_closed_event after update of closed_at on wallets
    for each row when (old.closed_at is null and new.closed_at is not null)
    execute function record_wallet_event();

create function record_hold_event() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into events (type, wallet_id, hold_id, created_at)
        values ('hold.created', new.wallet_id, new.id, new.created_at);
    else
        insert into events (type, wallet_id, hold_id, created_at)
        values ('hold.' || new.status, new.wallet_id, new.id, new.finished_at);
    end if;
    return null;
end;
$$;
create trigger holds_created_event after insert on holds
    for each row execute function record_hold_event();
create trigger holds_finished_event after update of status on holds
    for each row when (old.status = 'pending' and new.status <> 'pending')
    execute function record_hold_event();
