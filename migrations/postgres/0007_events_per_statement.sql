-- Events written once per statement instead of once per row (docs/adr/0147-events-per-statement.md). A
-- group-commit batch inserts all its entries in one statement, and places or voids its holds in one statement
-- each; a row trigger ran a PL/pgSQL call and a one-row insert per row, half of such a statement's time. These
-- statement triggers read the rows from transition tables and insert their events in one go, ordered by the rows'
-- ids, in the same statement: an event still commits or rolls back with its row, and the feed still lists a
-- statement's events in the order of its rows.
drop trigger transactions_event on transactions;
drop function record_entry_event();

create function record_entry_events() returns trigger language plpgsql as $$
begin
    insert into events (type, wallet_id, entry_id, created_at)
    select 'transaction.created', wallet_id, id, created_at from inserted order by id;
    return null;
end;
$$;
create trigger transactions_events after insert on transactions referencing new table as inserted
    for each statement execute function record_entry_events();

drop trigger holds_created_event on holds;
drop trigger holds_finished_event on holds;
drop function record_hold_event();

create function record_holds_created() returns trigger language plpgsql as $$
begin
    insert into events (type, wallet_id, hold_id, created_at)
    select 'hold.created', wallet_id, id, created_at from inserted order by id;
    return null;
end;
$$;
create trigger holds_created_events after insert on holds referencing new table as inserted
    for each statement execute function record_holds_created();

-- A statement trigger with transition tables cannot name columns (`update of status`), so it runs after every
-- update of holds and keeps the rows that left 'pending' (the only change `holds_final` allows besides moving
-- a pending hold's expiry).
create function record_holds_finished() returns trigger language plpgsql as $$
begin
    insert into events (type, wallet_id, hold_id, created_at)
    select 'hold.' || a.status, a.wallet_id, a.id, a.finished_at
    from after_update a join before_update b on b.id = a.id
    where b.status = 'pending' and a.status <> 'pending'
    order by a.id;
    return null;
end;
$$;
create trigger holds_finished_events after update on holds
    referencing old table as before_update new table as after_update
    for each statement execute function record_holds_finished();
