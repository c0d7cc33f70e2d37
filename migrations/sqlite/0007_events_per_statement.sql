-- Kept in step with migrations/postgres (one version per change on both backends). There, events are now
-- written by statement-level triggers (docs/adr/0147-events-per-statement.md); SQLite has only row triggers and
-- writes its entries and holds one statement each, so its triggers stay as they are.
select 1;
