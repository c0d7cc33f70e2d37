//! `revwallet backup` and `revwallet restore` with the real binary: a backup taken under load restores to a
//! clean ledger holding every acknowledged operation; refused restores change nothing. On PostgreSQL these
//! run pg_dump and pg_restore, so they need the PostgreSQL client tools (required when PostgreSQL is).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{Value, json};
use sqlx::Connection;

use crate::helpers::{
    Backend, Process, REQUIRE_POSTGRES_ENV, TestDatabase, run_audit, wait_until_unused,
};

crate::on_both_backends!(
    backup_taken_while_eight_clients_write_restores_to_a_clean_ledger_with_every_acknowledged_operation,
    restore_into_a_database_in_use_fails_and_changes_nothing,
    restore_from_a_file_that_is_not_a_revwallet_backup_fails_and_changes_nothing,
    restore_over_a_newer_database_needs_force,
);

const CLIENTS: usize = 8;
/// Per client: keeps every wallet's history within one page of the API.
const MAX_OPERATIONS: usize = 120;
/// Acknowledged operations to wait for before the backup starts.
const BEFORE_BACKUP: usize = 160;

fn revwallet(args: &[&str], database_url: &str) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_revwallet"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("DB_HOST")
        .output()
        .expect("run revwallet")
}

fn text(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// On PostgreSQL the commands run pg_dump and pg_restore: without them the test is skipped loudly, unless
/// PostgreSQL is required (CI), when it fails.
fn pg_tools_ready(backend: Backend) -> bool {
    if backend == Backend::Sqlite {
        return true;
    }
    let present = ["pg_dump", "pg_restore"].iter().all(|tool| {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let required = std::env::var(REQUIRE_POSTGRES_ENV).is_ok_and(|v| v == "1");
    assert!(
        present || !required,
        "{REQUIRE_POSTGRES_ENV}=1 but pg_dump/pg_restore are not on PATH (install postgresql-client)"
    );
    if !present {
        eprintln!(
            "!!! BACKUP TESTS ON POSTGRESQL DID NOT RUN: pg_dump/pg_restore are not on PATH !!!"
        );
    }
    present
}

fn backup_file(dir: &Path, backend: Backend) -> String {
    let name = match backend {
        Backend::Sqlite => "revwallet-backup.db",
        Backend::Postgres => "revwallet-backup.dump",
    };
    dir.join(name).display().to_string()
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> Value {
    let response = client.post(url).json(&body).send().await.expect("POST");
    assert_eq!(response.status(), 200);
    response.json().await.expect("json")
}

fn entry(wallet: &Value) -> (String, String) {
    (
        wallet["id"].as_str().expect("wallet id").to_owned(),
        wallet["transaction"]["id"]
            .as_str()
            .expect("entry id")
            .to_owned(),
    )
}

/// Every (wallet, ledger entry) pair the service holds, read through its API.
async fn ledger(process: &Process, wallets: &[String]) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for wallet in wallets {
        let page: Vec<Value> = crate::helpers::admin_client()
            .get(process.url(&format!("/wallet/{wallet}/transactions?limit=1000")))
            .send()
            .await
            .expect("history")
            .json()
            .await
            .expect("json");
        assert!(page.len() < 1000, "history does not fit one page");
        for entry in page {
            pairs.push((wallet.clone(), entry["id"].as_str().expect("id").to_owned()));
        }
    }
    pairs
}

async fn backup_taken_while_eight_clients_write_restores_to_a_clean_ledger_with_every_acknowledged_operation(
    backend: Backend,
) {
    if !pg_tools_ready(backend) {
        return;
    }
    let source = TestDatabase::create(backend).await.expect("database");
    let server = Process::start(&source.url, &[]).await;
    let mut wallets = Vec::new();
    for n in 0..CLIENTS {
        wallets.push(server.create_wallet(&format!("client-{n}")).await);
    }
    let backup_began = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(tokio::sync::Notify::new());
    let mut clients = Vec::new();
    for n in 0..CLIENTS {
        let (me, next) = (wallets[n].clone(), wallets[(n + 1) % CLIENTS].clone());
        let base = server.url("");
        let (backup_began, stop) = (backup_began.clone(), stop.clone());
        let (acknowledged, progress) = (acknowledged.clone(), progress.clone());
        clients.push(tokio::spawn(async move {
            let client = crate::helpers::admin_client();
            // (wallet, entry) pairs acknowledged before the backup began, and how many came after.
            let (mut before, mut after) = (Vec::new(), 0_usize);
            for k in 0..MAX_OPERATIONS {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                // Deposits come first, so each transfer is covered by an earlier deposit.
                let pairs = if k % 2 == 0 {
                    let body = json!({"id": me, "amount": "1.00"});
                    vec![entry(
                        &post(&client, format!("{base}/wallet/deposit"), body).await,
                    )]
                } else {
                    let body = json!({"from_id": me, "to_id": next, "amount": "0.50"});
                    let reply = post(&client, format!("{base}/wallet/transfer"), body).await;
                    vec![entry(&reply["from"]), entry(&reply["to"])]
                };
                if backup_began.load(Ordering::SeqCst) {
                    after += 1;
                } else {
                    before.extend(pairs);
                }
                acknowledged.fetch_add(1, Ordering::SeqCst);
                progress.notify_one();
            }
            (before, after)
        }));
    }
    while acknowledged.load(Ordering::SeqCst) < BEFORE_BACKUP {
        progress.notified().await;
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let file = backup_file(dir.path(), backend);
    backup_began.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let (url, to) = (source.url.clone(), file.clone());
    let backup = tokio::task::spawn_blocking(move || revwallet(&["backup", "--to", &to], &url))
        .await
        .expect("backup ran");
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut must_be_there = Vec::new();
    let mut written_during_backup = 0;
    for client in clients {
        let (before, after) = client.await.expect("client");
        must_be_there.extend(before);
        written_during_backup += after;
    }
    assert!(backup.status.success(), "{}", text(&backup));
    assert!(
        text(&backup).contains("last ledger entry: #"),
        "{}",
        text(&backup)
    );
    assert!(
        written_during_backup > 0,
        "no client wrote during the backup"
    );
    eprintln!(
        "backup of {} operations under load: {} bytes in {took:?}; {written_during_backup} operations acknowledged after it began",
        acknowledged.load(Ordering::SeqCst),
        std::fs::metadata(&file).expect("backup file").len()
    );
    drop(server);

    let restored = TestDatabase::create(backend).await.expect("database");
    let restore = revwallet(&["restore", "--from", &file], &restored.url);
    assert!(restore.status.success(), "{}", text(&restore));
    assert!(text(&restore).contains("audit clean"), "{}", text(&restore));
    assert!(
        text(&restore).contains("last ledger entry: #"),
        "{}",
        text(&restore)
    );

    let server = Process::start(&restored.url, &[]).await;
    let held = ledger(&server, &wallets).await;
    let missing: Vec<_> = must_be_there.iter().filter(|p| !held.contains(p)).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged entries missing after the restore, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    let (clean, report) = run_audit(&restored.url);
    assert!(clean, "{report}");
}

/// A backup of a database holding one wallet of `owner`.
async fn backup_of(backend: Backend, owner: &str, dir: &Path) -> String {
    let database = TestDatabase::create(backend).await.expect("database");
    let server = Process::start(&database.url, &[]).await;
    server.create_wallet(owner).await;
    let file = backup_file(dir, backend);
    let backup = revwallet(&["backup", "--to", &file], &database.url);
    assert!(backup.status.success(), "{}", text(&backup));
    file
}

async fn owners(database_url: &str) -> Vec<String> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url)
        .await
        .expect("connect");
    let owners = sqlx::query_scalar("select owner from wallets order by id")
        .fetch_all(&mut conn)
        .await
        .expect("owners");
    conn.close().await.ok();
    owners
}

async fn restore_into_a_database_in_use_fails_and_changes_nothing(backend: Backend) {
    if !pg_tools_ready(backend) {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = backup_of(backend, "from-backup", dir.path()).await;
    let target = TestDatabase::create(backend).await.expect("database");
    let server = Process::start(&target.url, &[]).await;
    server.create_wallet("in-use").await;

    let refused = revwallet(&["restore", "--from", &file, "--force"], &target.url);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("in use"), "{}", text(&refused));
    assert_eq!(owners(&target.url).await, ["in-use"]);
    // The server still serves its own database.
    server.create_wallet("still-serving").await;
    assert_eq!(owners(&target.url).await, ["in-use", "still-serving"]);

    if backend == Backend::Sqlite {
        // Not only revwallet: any process holding the file open, even idle, counts as in use.
        drop(server);
        sqlx::any::install_default_drivers();
        let mut other = sqlx::AnyConnection::connect(&target.url)
            .await
            .expect("connect");
        sqlx::query("select count(*) from wallets")
            .execute(&mut other)
            .await
            .expect("read");
        let refused = revwallet(&["restore", "--from", &file, "--force"], &target.url);
        assert!(text(&refused).contains("in use"), "{}", text(&refused));
        other.close().await.ok();
        assert_eq!(owners(&target.url).await, ["in-use", "still-serving"]);
    }
}

async fn restore_from_a_file_that_is_not_a_revwallet_backup_fails_and_changes_nothing(
    backend: Backend,
) {
    if !pg_tools_ready(backend) {
        return;
    }
    let target = TestDatabase::create(backend).await.expect("database");
    let server = Process::start(&target.url, &[]).await;
    server.create_wallet("kept").await;
    drop(server);

    let dir = tempfile::tempdir().expect("temp dir");
    let mut not_backups = vec![dir.path().join("notes.txt")];
    std::fs::write(&not_backups[0], "not a database\n").expect("write");
    if backend == Backend::Sqlite {
        let other = dir.path().join("other.db");
        let mut conn =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", other.display()))
                .await
                .expect("create");
        sqlx::query("create table wallets (id integer primary key)")
            .execute(&mut conn)
            .await
            .expect("create table");
        conn.close().await.expect("close");
        not_backups.push(other);
    }
    for not_backup in &not_backups {
        let from = not_backup.display().to_string();
        let refused = revwallet(&["restore", "--from", &from, "--force"], &target.url);
        assert!(!refused.status.success(), "{}", text(&refused));
        assert!(
            text(&refused).contains("is not a revwallet backup"),
            "{}",
            text(&refused)
        );
        assert_eq!(owners(&target.url).await, ["kept"]);
    }
}

async fn restore_over_a_newer_database_needs_force(backend: Backend) {
    if !pg_tools_ready(backend) {
        return;
    }
    let database = TestDatabase::create(backend).await.expect("database");
    let server = Process::start(&database.url, &[]).await;
    let wallet = server.create_wallet("early").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = backup_file(dir.path(), backend);
    let backup = revwallet(&["backup", "--to", &file], &database.url);
    assert!(backup.status.success(), "{}", text(&backup));
    post(
        &crate::helpers::admin_client(),
        server.url("/wallet/deposit"),
        json!({"id": wallet, "amount": "5.00"}),
    )
    .await;
    server.create_wallet("late").await;
    drop(server);

    wait_until_unused(backend, &database.url).await;
    let refused = revwallet(&["restore", "--from", &file], &database.url);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(text(&refused).contains("--force"), "{}", text(&refused));
    assert_eq!(owners(&database.url).await, ["early", "late"]);

    wait_until_unused(backend, &database.url).await;
    let forced = revwallet(&["restore", "--from", &file, "--force"], &database.url);
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(text(&forced).contains("audit clean"), "{}", text(&forced));
    assert_eq!(owners(&database.url).await, ["early"]);
    let (clean, report) = run_audit(&database.url);
    assert!(clean, "{report}");
}
