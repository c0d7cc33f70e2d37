//! Pure wallet rules: money, currencies, owners, ids, holds, roles and key secrets, and how instants are written.
//! Knows nothing of HTTP or SQL.

mod access;
mod hold;
mod memo;
mod money;
mod time;
mod wallet;

pub use access::{KeySecret, KeySecretError, Role, hex, id_of_hash};
pub use hold::{HoldId, HoldIdError, HoldLifetime, HoldLifetimeError, HoldStatus};
pub use memo::{Description, Memo, MemoError, Metadata, Reference};
pub use money::{Amount, AmountError, Currency, CurrencyError};
pub use time::{InstantError, parse_instant, rfc3339};
pub use wallet::{LedgerEntryKind, Owner, OwnerError, WalletId, WalletIdError};
