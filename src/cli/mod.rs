//! The subcommands of the `revwallet` binary.

mod audit;
mod backup;
mod generate_data;
mod healthcheck;
mod keys;
mod restore;
mod serve;

pub use audit::audit;
pub use backup::{BackupArgs, backup};
pub use generate_data::{GenerateDataArgs, generate_data};
pub use healthcheck::healthcheck;
pub use keys::{KeysArgs, keys};
pub use restore::{RestoreArgs, lock_for_serving, restore};
pub use serve::{migrate, serve};
