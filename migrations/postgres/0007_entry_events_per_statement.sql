-- A ledger entry's event, written once per statement instead of once per row (docs/adr/0147-entry-events-per-statement.md).
-- A group-commit batch inserts all its entries in one statement; the row trigger ran a PL/pgSQL call per entry,
-- half of that statement's time. The statement trigger reads the inserted rows from a transition table and
-- inserts their events in one go, in entry id order, in the same statement, so an event still commits or rolls
-- back with its entry and events keep the entries' order.
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
