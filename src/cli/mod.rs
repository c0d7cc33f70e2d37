//! The subcommands of the `revwallet` binary.

mod audit;
mod generate_data;
mod healthcheck;
mod serve;

pub use audit::audit;
pub use generate_data::{GenerateDataArgs, generate_data};
pub use healthcheck::healthcheck;
pub use serve::{migrate, serve};
