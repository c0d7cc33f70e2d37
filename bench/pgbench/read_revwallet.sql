-- GENERATED from src/store by `REVWALLET_WRITE_PGBENCH=1 cargo test pgbench`; `make test` fails if it drifts.
-- A balance read exactly as revwallet sends it (GET /wallet/balance/{id} -> sql::GET_OPEN_WALLET).
-- source: GET_OPEN_WALLET; parameters: $1 = :id, $2 = :now
\set id random(:first_id, :last_id)
select wallets.id as id, wallets.owner as owner, wallets.currency as currency, wallets.balance as balance, wallets.held - cast(coalesce((select sum(h.amount) from holds h where h.wallet_id = wallets.id and h.status = 'pending' and h.expires_at <= :now), 0) as bigint) as held, wallets.created_at as created_at from wallets where id = :id and closed_at is null;
