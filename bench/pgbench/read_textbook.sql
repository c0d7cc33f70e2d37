-- GENERATED from src/store by `REVWALLET_WRITE_PGBENCH=1 cargo test pgbench`; `make test` fails if it drifts.
-- The textbook balance read: pgbench's primary-key select, on revwallet's wallets table.
\set id random(:first_id, :last_id)
select balance from wallets where id = :id;
