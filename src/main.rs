//! The `revwallet` command line: parses arguments and dispatches to the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use revwallet::cli;
use revwallet::config::{DatabaseArgs, ServeArgs};
use revwallet::telemetry::{LogFormat, init_logging};

#[derive(Debug, Parser)]
#[command(name = "revwallet", version, about = "An exact-money wallet service")]
struct Cli {
    /// Log format on stdout.
    #[arg(
        long,
        global = true,
        env = "REVWALLET_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API and web app (the default); migrates the database first unless --no-migrate.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Create wallets and random operations against a running instance.
    GenerateData(cli::GenerateDataArgs),
    /// Manage API keys on the database: create, list, revoke.
    Keys(cli::KeysArgs),
    /// Check the ledger invariants; exits 1 and names each broken wallet.
    Audit(DatabaseArgs),
    /// Write a consistent copy of the database while it serves (SQLite file, or pg_dump custom format).
    Backup(cli::BackupArgs),
    /// Put a backup in place of the database, then audit it; refuses a database in use.
    Restore(cli::RestoreArgs),
    /// GET /healthz of a running instance; exit 0 when healthy, 1 otherwise.
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080/healthz")]
        url: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Cli::parse();
    init_logging(args.log_format);
    let result = match args.command.unwrap_or(Command::Serve(args.serve)) {
        Command::Serve(settings) => cli::serve(settings).await.map(|()| true),
        Command::Migrate(database) => cli::migrate(database).await.map(|()| true),
        Command::GenerateData(options) => cli::generate_data(options).await.map(|refused| {
            println!(
                "done; {refused} operations were refused by the server (e.g. insufficient funds)"
            );
            true
        }),
        Command::Keys(args) => cli::keys(args).await.map(|()| true),
        Command::Audit(database) => cli::audit(database).await.map(|broken| broken == 0),
        Command::Backup(options) => cli::backup(options).await.map(|()| true),
        Command::Restore(options) => cli::restore(options).await,
        Command::Healthcheck { url } => Ok(cli::healthcheck(&url).await),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("revwallet: {error:#}");
            ExitCode::FAILURE
        }
    }
}
