-- GENERATED from src/store by `REVWALLET_WRITE_PGBENCH=1 cargo test pgbench`; `make test` fails if it drifts.
-- The textbook deposit: four round trips, the row lock held from the update to the commit.
\set id random(:first_id, :last_id)
begin;
update wallets set balance = balance + :amount where id = :id returning balance \gset
insert into transactions (wallet_id, kind, amount, balance_after, created_at) values (:id, 'deposit', :amount, :balance, now());
commit;
