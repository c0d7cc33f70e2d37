-- Holds: money reserved in a wallet without moving it (docs/adr/0100-holds-model.md).
-- `wallets.held` is the sum of the wallet's holds whose status is still 'pending', including those past their
-- expiry that no sweep or write has marked 'expired' yet; reads subtract the latter. Every debit checks
-- `balance - held`, so with `held <= balance` below the database refuses any commit that spends reserved money.
alter table wallets
    add column held bigint not null default 0,
    add constraint wallets_held_within_balance check (held >= 0 and held <= balance);

create table holds (
    id           bigint generated always as identity primary key,
    wallet_id    bigint      not null references wallets (id),
    amount       bigint      not null check (amount > 0),
    status       text        not null default 'pending'
                             check (status in ('pending', 'captured', 'voided', 'expired')),
    -- The amount a capture took: present exactly when the hold is captured, never more than the hold.
    captured     bigint      check (captured > 0 and captured <= amount),
    expires_at   timestamptz not null,
    created_at   timestamptz not null,
    finished_at  timestamptz,
    check ((status = 'captured') = (captured is not null)),
    check ((status = 'pending') = (finished_at is null))
);

-- A wallet's holds, newest first (listing), and its pending ones (reads subtract the expired among them).
create index holds_by_wallet on holds (wallet_id, id desc);
create index holds_pending_by_wallet on holds (wallet_id, expires_at) where status = 'pending';
-- The sweep finds due holds across wallets.
create index holds_pending_by_expiry on holds (expires_at) where status = 'pending';

-- A hold leaves 'pending' once and is never changed again; its wallet and amount never change. (expires_at may
-- move while it is pending: the tests backdate it, and extending a hold would.)
create function refuse_hold_rewrite() returns trigger language plpgsql as $$
begin
    if tg_op = 'DELETE' or old.status <> 'pending' or new.wallet_id <> old.wallet_id
       or new.amount <> old.amount then
        raise exception 'hold % is final or immutable (% refused)', old.id, tg_op;
    end if;
    return new;
end;
$$;
create trigger holds_final before update or delete on holds
    for each row execute function refuse_hold_rewrite();
