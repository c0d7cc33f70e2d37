-- What a caller attaches to a movement (docs/adr/0110-references-history-statements.md): its own reference, a
-- description and string metadata (canonical JSON text), on ledger entries (both legs of a transfer) and holds.
-- The application validates them; the checks below are the last line of defence. Adding nullable columns
-- rewrites no rows, and the ledger's append-only trigger does not fire for a schema change.
alter table transactions
    add column reference   text check (char_length(reference) between 1 and 128),
    add column description text check (char_length(description) <= 500),
    add column metadata    text check (octet_length(metadata) <= 8192);

alter table holds
    add column reference   text check (char_length(reference) between 1 and 128),
    add column description text check (char_length(description) <= 500),
    add column metadata    text check (octet_length(metadata) <= 8192);

-- History filters and balances as of an instant, each a range scan of one wallet's entries:
-- `as_of` and `from`/`to` on (wallet_id, created_at); `type` and `reference` keep id order for keyset paging.
create index transactions_by_wallet_time on transactions (wallet_id, created_at, id);
create index transactions_by_wallet_kind on transactions (wallet_id, kind, id desc);
create index transactions_by_wallet_reference on transactions (wallet_id, reference, id desc)
    where reference is not null;
