-- Kept in step with migrations/postgres (one version per change on both backends). There, a ledger entry's event
-- is now written by a statement-level trigger (docs/adr/0147-entry-events-per-statement.md); SQLite has only row
-- triggers, and inserts its entries one statement each, so its `transactions_event` trigger stays as it is.
select 1;
