-- Webhooks (docs/adr/0130-webhooks.md): the endpoints, the dispatcher's place in the event feed, and one delivery
-- per (webhook, event) with its attempts.
create table webhooks (
    id           bigserial   primary key,
    url          text        not null check (length(url) between 1 and 2048),
    -- A JSON array of event types; ["*"] means every type.
    events       text        not null,
    -- 'plain': `secret` is the signing secret. 'derived': `secret` is a seed, and the signing secret is an HMAC of
    -- it under REVWALLET_WEBHOOK_SECRET_KEY, which the database never sees (a dump alone cannot sign).
    secret_kind  text        not null check (secret_kind in ('plain', 'derived')),
    secret       text        not null,
    -- Only events after this feed position are delivered: a new webhook starts at the end of the feed.
    start_after  bigint      not null,
    created_at   timestamptz not null
);

-- The dispatcher's cursor: the feed position up to which deliveries have been created. One row, advanced in the
-- transaction that creates the deliveries (compare-and-set, so two replicas never fan out an event twice).
create table webhook_dispatch (
    id        integer primary key check (id = 1),
    position  bigint  not null
);
insert into webhook_dispatch (id, position) values (1, 0);

create table webhook_deliveries (
    id               bigserial   primary key,
    webhook_id       bigint      not null references webhooks (id) on delete cascade,
    event_id         bigint      not null,
    event_type       text        not null,
    -- The exact body POSTed; it is signed anew at each attempt.
    payload          text        not null,
    status           text        not null default 'pending'
                                 check (status in ('pending', 'delivered', 'failed')),
    attempts         integer     not null default 0,
    next_attempt_at  timestamptz not null,
    -- A replica's lease: while it lies in the future nobody else attempts the delivery; after a crash it lapses.
    claimed_until    timestamptz,
    claim_token      text,
    created_at       timestamptz not null,
    finished_at      timestamptz,
    unique (webhook_id, event_id),
    check ((status = 'pending') = (finished_at is null))
);
create index webhook_deliveries_due on webhook_deliveries (next_attempt_at) where status = 'pending';
create index webhook_deliveries_by_webhook on webhook_deliveries (webhook_id, id desc);
create index webhook_deliveries_finished on webhook_deliveries (finished_at) where status <> 'pending';

create table webhook_attempts (
    id               bigserial   primary key,
    delivery_id      bigint      not null references webhook_deliveries (id) on delete cascade,
    started_at       timestamptz not null,
    finished_at      timestamptz not null,
    outcome          text        not null check (outcome in ('delivered', 'failed')),
    response_status  integer,
    error            text
);
create index webhook_attempts_by_delivery on webhook_attempts (delivery_id, id);
