//! `revwallet backup`: a consistent online copy of the database while the service keeps writing.
//!
//! SQLite: `VACUUM INTO` reads one snapshot (a WAL reader never blocks the writers), never a file copy of a
//! live WAL database. PostgreSQL: `pg_dump --format=custom` on a snapshot exported by our own transaction, so
//! the last ledger entry we report is exactly the last one in the dump. Either way the file appears under its
//! name only when complete (written beside it, synced, renamed). ADR 0090.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use clap::Args;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, PgConnection, SqliteConnection};

use crate::config::DatabaseArgs;

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The file to write (SQLite database, or a pg_dump custom-format archive); must not exist yet.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,

    #[command(flatten)]
    pub database: DatabaseArgs,
}

pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let url = args.database.url();
    if args.to.exists() {
        bail!(
            "{} already exists; choose a new file name (backups are never overwritten)",
            args.to.display()
        );
    }
    let partial = partial_path(&args.to);
    // A partial file is what an interrupted earlier run left behind; it was never a backup.
    remove_if_exists(&partial)?;
    let started = Instant::now();
    let written = if is_postgres(&url) {
        backup_postgres(&url, &partial).await
    } else {
        backup_sqlite(&url, &partial).await
    };
    let point = match written {
        Ok(point) => point,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    publish(&partial, &args.to)?;
    let size = std::fs::metadata(&args.to)?.len();
    println!(
        "backup written: {} ({size} bytes, {}, {} ms)",
        args.to.display(),
        if is_postgres(&url) {
            "pg_dump custom format"
        } else {
            "SQLite database"
        },
        started.elapsed().as_millis()
    );
    println!("{point}");
    Ok(())
}

async fn backup_sqlite(url: &str, partial: &Path) -> anyhow::Result<LedgerPoint> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(5));
    let source = options.get_filename().to_owned();
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening {}", source.display()))?;
    if !sqlite_has_ledger(&mut conn).await? {
        bail!(
            "{} is not a revwallet database (no ledger table)",
            source.display()
        );
    }
    let target = partial
        .to_str()
        .context("the backup path is not valid UTF-8")?;
    sqlx::query("vacuum into $1")
        .bind(target)
        .execute(&mut conn)
        .await
        .context("VACUUM INTO")?;
    conn.close().await?;
    // Read the point back from the copy itself: that is what a restore returns to.
    let mut copy = open_sqlite_file(partial).await?;
    let point = sqlite_ledger_point(&mut copy).await?;
    copy.close().await?;
    Ok(point)
}

async fn backup_postgres(url: &str, partial: &Path) -> anyhow::Result<LedgerPoint> {
    let mut conn = PgConnection::connect(url)
        .await
        .context("connecting to PostgreSQL")?;
    // pg_dump joins this transaction's snapshot, so the point read here is exactly what the dump holds.
    sqlx::query("begin transaction isolation level repeatable read, read only")
        .execute(&mut conn)
        .await?;
    let snapshot: String = sqlx::query_scalar("select pg_export_snapshot()")
        .fetch_one(&mut conn)
        .await?;
    let exists: bool = sqlx::query_scalar("select to_regclass('public.transactions') is not null")
        .fetch_one(&mut conn)
        .await?;
    if !exists {
        bail!("the database is not a revwallet database (no ledger table)");
    }
    let point = pg_ledger_point(&mut conn).await?;
    let connection = PgCommand::from_url(url)?;
    let mut dump = connection.command("pg_dump");
    dump.arg("--format=custom")
        .arg(format!("--snapshot={snapshot}"))
        .arg("--file")
        .arg(partial);
    let output = tokio::task::spawn_blocking(move || dump.output()).await?;
    sqlx::query("rollback").execute(&mut conn).await?;
    conn.close().await?;
    check_tool("pg_dump", output)?;
    Ok(point)
}

/// What a database or backup holds: the point in the ledger it returns to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerPoint {
    pub last_entry: Option<(i64, DateTime<Utc>)>,
    pub wallets: i64,
    pub entries: i64,
}

impl LedgerPoint {
    pub fn last_id(&self) -> i64 {
        self.last_entry.map_or(0, |(id, _)| id)
    }
}

impl std::fmt::Display for LedgerPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.last_entry {
            Some((id, at)) => write!(
                f,
                "last ledger entry: #{id} at {}",
                at.to_rfc3339_opts(SecondsFormat::Millis, true)
            )?,
            None => write!(f, "last ledger entry: none (empty ledger)")?,
        }
        write!(
            f,
            "; {} wallets, {} ledger entries",
            self.wallets, self.entries
        )
    }
}

const LAST_ENTRY: &str = "select id, created_at from transactions order by id desc limit 1";
const COUNTS: &str = "select (select count(*) from wallets) as wallets, (select count(*) from transactions) as entries";

pub(crate) async fn sqlite_ledger_point(
    conn: &mut SqliteConnection,
) -> anyhow::Result<LedgerPoint> {
    let last_entry = sqlx::query_as(LAST_ENTRY)
        .fetch_optional(&mut *conn)
        .await?;
    let (wallets, entries) = sqlx::query_as(COUNTS).fetch_one(&mut *conn).await?;
    Ok(LedgerPoint {
        last_entry,
        wallets,
        entries,
    })
}

pub(crate) async fn pg_ledger_point(conn: &mut PgConnection) -> anyhow::Result<LedgerPoint> {
    let last_entry = sqlx::query_as(LAST_ENTRY)
        .fetch_optional(&mut *conn)
        .await?;
    let (wallets, entries) = sqlx::query_as(COUNTS).fetch_one(&mut *conn).await?;
    Ok(LedgerPoint {
        last_entry,
        wallets,
        entries,
    })
}

pub(crate) async fn sqlite_has_ledger(conn: &mut SqliteConnection) -> anyhow::Result<bool> {
    let tables: i64 = sqlx::query_scalar(
        "select count(*) from sqlite_master where type = 'table' and name in ('wallets', 'transactions')",
    )
    .fetch_one(conn)
    .await?;
    Ok(tables == 2)
}

/// Opens a database file that nobody else writes (a backup or a staged copy) without creating `-wal`/`-shm`.
pub(crate) async fn open_sqlite_file(path: &Path) -> anyhow::Result<SqliteConnection> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true);
    SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening {}", path.display()))
}

pub(crate) fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `FILE.partial` beside the final file, so the rename that publishes it stays on one file system.
pub(crate) fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

pub(crate) fn remove_if_exists(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(error).with_context(|| format!("removing {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Makes `partial` durable and gives it its final name, then makes the rename durable.
pub(crate) fn publish(partial: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::File::open(partial)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("syncing {}", partial.display()))?;
    std::fs::rename(partial, path)
        .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

/// How to run a PostgreSQL client tool against a URL without putting the password on its command line
/// (where `ps` shows it): the URL goes without it, the password in `PGPASSWORD`.
pub(crate) struct PgCommand {
    url: String,
    password: Option<String>,
}

impl PgCommand {
    pub(crate) fn from_url(url: &str) -> anyhow::Result<Self> {
        let mut parsed = reqwest::Url::parse(url).context("parsing the PostgreSQL URL")?;
        let password = parsed.password().map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        });
        parsed
            .set_password(None)
            .map_err(|()| anyhow::anyhow!("the PostgreSQL URL cannot carry a password"))?;
        Ok(Self {
            url: parsed.to_string(),
            password,
        })
    }

    pub(crate) fn command(&self, tool: &str) -> Command {
        let mut command = Command::new(tool);
        command.arg("--dbname").arg(&self.url);
        if let Some(password) = &self.password {
            command.env("PGPASSWORD", password);
        }
        command
    }
}

/// Turns a client tool's result into an error that says what to do when it is missing or failed.
pub(crate) fn check_tool(
    tool: &str,
    output: std::io::Result<std::process::Output>,
) -> anyhow::Result<std::process::Output> {
    let output = match output {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
            "{tool} not found on PATH: install the PostgreSQL client tools of the server's major version \
             (Debian: postgresql-client), or on Docker Compose use `make backup` / `make restore`"
        ),
        other => other.with_context(|| format!("running {tool}"))?,
    };
    if !output.status.success() {
        bail!(
            "{tool} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output)
}
