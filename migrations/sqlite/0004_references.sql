-- References, descriptions and metadata: see the PostgreSQL migration.
alter table transactions add column reference text check (length(reference) between 1 and 128);
alter table transactions add column description text check (length(description) <= 500);
alter table transactions add column metadata text check (length(cast(metadata as blob)) <= 8192);

alter table holds add column reference text check (length(reference) between 1 and 128);
alter table holds add column description text check (length(description) <= 500);
alter table holds add column metadata text check (length(cast(metadata as blob)) <= 8192);

create index transactions_by_wallet_time on transactions (wallet_id, created_at, id);
create index transactions_by_wallet_kind on transactions (wallet_id, kind, id desc);
create index transactions_by_wallet_reference on transactions (wallet_id, reference, id desc)
    where reference is not null;
