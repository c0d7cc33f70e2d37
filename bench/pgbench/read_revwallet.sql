-- GENERATED from src/store by `REVWALLET_WRITE_PGBENCH=1 cargo test pgbench`; `make test` fails if it drifts.
-- A balance read exactly as revwallet sends it (GET /wallet/balance/{id} -> sql::GET_OPEN_WALLET).
-- source: GET_OPEN_WALLET; parameters: $1 = :id
\set id random(:first_id, :last_id)
select id, owner, currency, balance, created_at from wallets where id = :id and closed_at is null;
