-- GENERATED from src/store by `REVWALLET_WRITE_PGBENCH=1 cargo test pgbench`; `make test` fails if it drifts.
-- A deposit exactly as revwallet sends it: MOVE_CREDIT, one data-modifying statement in its own
-- implicit transaction (src/store/postgres/mod.rs movement_statement(sql::CREDIT)).
-- source: MOVE_CREDIT; parameters: $1 = :id, $2 = :amount, $3 = :kind, $4 = :now, $5 = :actor
\set id random(:first_id, :last_id)
with moved as (update wallets set balance = balance + :amount where id = :id and closed_at is null and balance <= 9223372036854775807 - :amount returning id, owner, currency, balance, created_at), entry as ( insert into transactions (wallet_id, kind, amount, balance_after, created_at, actor) select id, :kind, :amount, balance, :now, :actor from moved returning id, wallet_id, kind, amount, balance_after, counterparty_id, created_at, actor) select m.id, m.owner, m.currency, m.balance, m.created_at, e.id as entry_id, e.wallet_id, e.kind, e.amount, e.balance_after, e.counterparty_id, e.created_at as entry_created_at, e.actor from moved m cross join entry e;
