//! `revwallet restore`: puts a backup in place of the database, audits it and says what point it returns to.
//!
//! It refuses, changing nothing, a file that is not a revwallet backup and a database that is in use; it
//! refuses a database that holds more of the ledger than the backup unless `--force`. "In use" on SQLite is
//! two signals: `revwallet serve` holds a shared lock on `DB.lock` for its whole life (its pool may have no
//! connection open while idle), and any other open connection blocks SQLite's own exclusive lock. ADR 0090.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use sqlx::sqlite::{SqliteConnectOptions, SqliteLockingMode};
use sqlx::{Connection, PgConnection, SqliteConnection};

use super::backup::{
    LedgerPoint, PgCommand, check_tool, is_postgres, open_sqlite_file, partial_path,
    pg_ledger_point, publish, remove_if_exists, sqlite_has_ledger, sqlite_ledger_point,
};
use crate::config::DatabaseArgs;
use crate::store::Store;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The backup to restore (written by `revwallet backup`, or by pg_dump --format=custom).
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,

    /// Replace a database that holds ledger entries the backup lacks, or that cannot be read.
    /// Never overrides "in use".
    #[arg(long)]
    pub force: bool,

    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Returns whether the restored ledger audits clean.
pub async fn restore(args: RestoreArgs) -> anyhow::Result<bool> {
    let url = args.database.url();
    if !args.from.is_file() {
        bail!("{} does not exist or is not a file", args.from.display());
    }
    if is_postgres(&url) {
        restore_postgres(&url, &args).await?;
    } else {
        restore_sqlite(&url, &args).await?;
    }
    // The audit reads through the service's own store, as `revwallet audit` does.
    let store = Store::connect(&url, &args.database.store_options())?;
    let findings = store.audit().await?;
    store.close().await;
    for finding in &findings {
        println!(
            "audit: wallet {} balance {} does not match its ledger ({:?})",
            finding.wallet_id, finding.balance, finding.ledger_balance
        );
    }
    if findings.is_empty() {
        println!("audit clean: every balance matches its ledger");
    } else {
        println!(
            "AUDIT FAILED: {} wallets do not match their ledger",
            findings.len()
        );
    }
    Ok(findings.is_empty())
}

async fn restore_sqlite(url: &str, args: &RestoreArgs) -> anyhow::Result<()> {
    let target = SqliteConnectOptions::from_str(url)?
        .get_filename()
        .to_owned();
    let backup = check_sqlite_backup(&args.from).await?;
    // Held to the end: no `revwallet serve` can start on the target while it is being replaced.
    let _lock = lock_exclusively(&target)?;
    if target.exists() {
        check_sqlite_target(&target, &backup, args.force).await?;
    }
    let staged = partial_path(&target);
    remove_if_exists(&staged)?;
    std::fs::copy(&args.from, &staged)
        .with_context(|| format!("copying {} to {}", args.from.display(), staged.display()))?;
    // The old database's WAL must not meet the new file: SQLite would replay it onto the restored pages.
    for suffix in ["-wal", "-shm"] {
        remove_if_exists(&with_suffix(&target, suffix))?;
    }
    publish(&staged, &target)?;
    println!("restored {} into {}", args.from.display(), target.display());
    println!("{backup}");
    Ok(())
}

/// Checks that `path` is a whole revwallet SQLite database this binary can serve; returns its point.
async fn check_sqlite_backup(path: &Path) -> anyhow::Result<LedgerPoint> {
    let not_ours =
        |why: String| anyhow::anyhow!("{} is not a revwallet backup: {why}", path.display());
    let mut conn = open_sqlite_file(path).await?;
    let check: String = sqlx::query_scalar("pragma quick_check")
        .fetch_one(&mut conn)
        .await
        .map_err(|error| not_ours(format!("not an SQLite database ({error})")))?;
    if check != "ok" {
        return Err(not_ours(format!(
            "the SQLite integrity check says {check:?}"
        )));
    }
    if !sqlite_has_ledger(&mut conn).await? {
        return Err(not_ours("it has no wallets and ledger tables".to_owned()));
    }
    let versions: Vec<i64> =
        sqlx::query_scalar("select version from _sqlx_migrations where success order by version")
            .fetch_all(&mut conn)
            .await
            .map_err(|_| not_ours("it has no revwallet migrations table".to_owned()))?;
    let known: Vec<i64> = SQLITE_MIGRATIONS.iter().map(|m| m.version).collect();
    if let Some(unknown) = versions.iter().find(|v| !known.contains(v)) {
        bail!(
            "{} was written by a newer revwallet (migration {unknown} is unknown to this one); restore it with that version",
            path.display()
        );
    }
    let point = sqlite_ledger_point(&mut conn).await?;
    conn.close().await?;
    Ok(point)
}

/// Refuses a target that another connection has open, or that holds ledger entries the backup lacks.
async fn check_sqlite_target(
    target: &Path,
    backup: &LedgerPoint,
    force: bool,
) -> anyhow::Result<()> {
    let options = SqliteConnectOptions::new()
        .filename(target)
        .locking_mode(SqliteLockingMode::Exclusive)
        .busy_timeout(Duration::ZERO);
    let opened = SqliteConnection::connect_with(&options).await;
    let mut conn = match opened {
        Ok(conn) => conn,
        Err(error) if is_busy(&error) => bail!(
            "{} is in use: another process has it open; stop it before restoring (--force does not override this)",
            target.display()
        ),
        Err(error) if force => {
            println!(
                "replacing {} that cannot be opened ({error})",
                target.display()
            );
            return Ok(());
        }
        Err(error) => bail!(
            "cannot open {} ({error}); pass --force to replace it",
            target.display()
        ),
    };
    // In WAL mode every open connection, even an idle one, keeps SQLite from granting this lock.
    if let Err(error) = sqlx::query("begin exclusive").execute(&mut conn).await {
        if is_busy(&error) {
            bail!(
                "{} is in use: another process has it open; stop it before restoring (--force does not override this)",
                target.display()
            );
        }
        if !force {
            bail!(
                "cannot read {} ({error}); pass --force to replace it",
                target.display()
            );
        }
    }
    let current = if sqlite_has_ledger(&mut conn).await.unwrap_or(false) {
        sqlite_ledger_point(&mut conn).await.ok()
    } else {
        None
    };
    match current {
        Some(current) if current.last_id() > backup.last_id() && !force => bail!(
            "{} is newer than the backup and restoring would lose what it holds beyond it:\n  database: {current}\n  backup:   {backup}\npass --force to restore anyway",
            target.display()
        ),
        Some(current) => println!("replacing {} ({current})", target.display()),
        None if !force => bail!(
            "{} exists but is not a revwallet database; pass --force to replace it",
            target.display()
        ),
        None => println!("replacing {} (not a revwallet database)", target.display()),
    }
    // Fold the WAL into the file before it is replaced: closing the last connection checkpoints it.
    let _ = sqlx::query("commit").execute(&mut conn).await;
    conn.close().await?;
    Ok(())
}

fn is_busy(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("5" | "6" | "517" | "261")))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn lock_path(database: &Path) -> PathBuf {
    with_suffix(database, ".lock")
}

fn open_lock(database: &Path) -> anyhow::Result<File> {
    let path = lock_path(database);
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))
}

fn lock_exclusively(database: &Path) -> anyhow::Result<File> {
    let file = open_lock(database)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => bail!(
            "{} is in use: a running revwallet holds {}; stop it before restoring (--force does not override this)",
            database.display(),
            lock_path(database).display()
        ),
        Err(TryLockError::Error(error)) => {
            Err(error).context("locking the database for the restore")
        }
    }
}

/// Held by `revwallet serve` for its whole life on an SQLite database, so `restore` can tell it is in use.
/// Shared: several processes may serve one file, as SQLite allows. `None` for PostgreSQL and in-memory SQLite.
pub fn lock_for_serving(url: &str) -> anyhow::Result<Option<File>> {
    if !url.starts_with("sqlite:") || url.contains(":memory:") {
        return Ok(None);
    }
    let database = SqliteConnectOptions::from_str(url)?
        .get_filename()
        .to_owned();
    let file = open_lock(&database)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(Some(file)),
        Err(TryLockError::WouldBlock) => bail!(
            "{} is being restored (`revwallet restore` holds {}); start revwallet once it has finished",
            database.display(),
            lock_path(&database).display()
        ),
        Err(TryLockError::Error(error)) => Err(error).context("locking the database for serving"),
    }
}

async fn restore_postgres(url: &str, args: &RestoreArgs) -> anyhow::Result<()> {
    let listing = Command::new("pg_restore")
        .arg("--list")
        .arg(&args.from)
        .output();
    let listing = check_tool("pg_restore", listing).map_err(|error| {
        anyhow::anyhow!(
            "{} is not a revwallet backup: {error:#}",
            args.from.display()
        )
    })?;
    let toc = String::from_utf8_lossy(&listing.stdout);
    if !(toc.contains("TABLE public transactions") && toc.contains("TABLE public _sqlx_migrations"))
    {
        bail!(
            "{} is not a revwallet backup: the archive has no revwallet ledger tables",
            args.from.display()
        );
    }
    let mut conn = PgConnection::connect(url)
        .await
        .context("connecting to PostgreSQL")?;
    let others: i64 = sqlx::query_scalar(
        "select count(*) from pg_stat_activity \
         where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'",
    )
    .fetch_one(&mut conn)
    .await?;
    if others > 0 {
        bail!(
            "the database is in use: {others} other sessions are connected; stop revwallet, or restore into a new \
             database and switch the service to it (--force does not override this)"
        );
    }
    let holds_ledger: bool =
        sqlx::query_scalar("select to_regclass('public.transactions') is not null")
            .fetch_one(&mut conn)
            .await?;
    if holds_ledger {
        let current = pg_ledger_point(&mut conn).await?;
        if !args.force {
            bail!(
                "the database already holds a revwallet ledger ({current}); restore into a new, empty database \
                 and switch the service to it, or pass --force to replace it"
            );
        }
        println!("replacing the database's contents ({current})");
    }
    conn.close().await?;
    let mut command = PgCommand::from_url(url)?.command("pg_restore");
    // One transaction: a restore that fails half way leaves the database as it was.
    let replace: &[&str] = if holds_ledger {
        &["--clean", "--if-exists"]
    } else {
        &[]
    };
    command
        .args([
            "--exit-on-error",
            "--single-transaction",
            "--no-owner",
            "--no-privileges",
        ])
        .args(replace)
        .arg(&args.from);
    let output = tokio::task::spawn_blocking(move || command.output()).await?;
    check_tool("pg_restore", output)?;
    let mut conn = PgConnection::connect(url).await?;
    let point = pg_ledger_point(&mut conn).await?;
    conn.close().await?;
    println!("restored {} (pg_restore)", args.from.display());
    println!("{point}");
    Ok(())
}
