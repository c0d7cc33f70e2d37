-- Access control: API keys (only a hash of each secret is kept), the key behind every ledger entry, and the web
-- app's sign-in sessions.
create table api_keys (
    -- Public: the first 16 hex digits of the secret's SHA-256, shown in listings and as an entry's actor.
    id           text        primary key,
    -- SHA-256 of the whole secret, hex. Secrets are random (at least 128 bits), so a fast hash is enough.
    secret_hash  text        not null unique,
    name         text        not null default '' check (length(name) <= 200),
    role         text        not null check (role in ('read', 'write', 'admin')),
    owner        text        check (owner is null or length(owner) between 1 and 400),
    created_at   timestamptz not null default now(),
    revoked_at   timestamptz,
    -- An admin key may manage keys, so binding it to one owner would bound nothing.
    check (role <> 'admin' or owner is null)
);

-- Who caused each entry: the API key's id; null when authentication is off (and for entries written before).
alter table transactions add column actor text;

-- A web sign-in: the cookie carries a random token, the table only its hash.
create table web_sessions (
    token_hash  text        primary key,
    key_id      text        not null references api_keys (id),
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null
);
create index web_sessions_by_expiry on web_sessions (expires_at);
