-- Webhooks: see the PostgreSQL migration and docs/adr/0130-webhooks.md.
create table webhooks (
    id           integer primary key autoincrement,
    url          text    not null check (length(url) between 1 and 2048),
    events       text    not null,
    secret_kind  text    not null check (secret_kind in ('plain', 'derived')),
    secret       text    not null,
    start_after  integer not null,
    created_at   text    not null
);

create table webhook_dispatch (
    id        integer primary key check (id = 1),
    position  integer not null
);
insert into webhook_dispatch (id, position) values (1, 0);

create table webhook_deliveries (
    id               integer primary key autoincrement,
    webhook_id       integer not null references webhooks (id) on delete cascade,
    event_id         integer not null,
    event_type       text    not null,
    payload          text    not null,
    status           text    not null default 'pending'
                             check (status in ('pending', 'delivered', 'failed')),
    attempts         integer not null default 0,
    next_attempt_at  text    not null,
    claimed_until    text,
    claim_token      text,
    created_at       text    not null,
    finished_at      text,
    unique (webhook_id, event_id),
    check ((status = 'pending') = (finished_at is null))
);
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_by_webhook on webhook_deliveries (webhook_id, id desc);
create index webhook_deliveries_finished on webhook_deliveries (finished_at) where status <> 'pending';

create table webhook_attempts (
    id               integer primary key autoincrement,
    delivery_id      integer not null references webhook_deliveries (id) on delete cascade,
    started_at       text    not null,
    finished_at      text    not null,
    outcome          text    not null check (outcome in ('delivered', 'failed')),
    response_status  integer,
    error            text
);
create index webhook_attempts_by_delivery on webhook_attempts (delivery_id, id);
