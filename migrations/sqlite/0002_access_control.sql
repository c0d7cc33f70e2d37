-- See the PostgreSQL migration for what these are.
create table api_keys (
    id           text primary key,
    secret_hash  text not null unique,
    name         text not null default '' check (length(name) <= 200),
    role         text not null check (role in ('read', 'write', 'admin')),
    owner        text check (owner is null or length(owner) between 1 and 400),
    created_at   text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    revoked_at   text,
    check (role <> 'admin' or owner is null)
);

alter table transactions add column actor text;

create table web_sessions (
    token_hash  text primary key,
    key_id      text not null references api_keys (id),
    created_at  text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    expires_at  text not null
);
create index web_sessions_by_expiry on web_sessions (expires_at);
