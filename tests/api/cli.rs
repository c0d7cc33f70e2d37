//! The subcommands besides `serve`: `healthcheck`, `generate-data`, `migrate`.

use crate::helpers::{Backend, Process, TestDatabase, free_port, run_audit};

fn revwallet(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_revwallet"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run revwallet")
}

#[tokio::test]
async fn healthcheck_exits_0_for_a_serving_instance_and_1_otherwise() {
    let database = TestDatabase::create(Backend::Sqlite)
        .await
        .expect("database");
    let process = Process::start(&database.url, &[]).await;
    let healthy = revwallet(&["healthcheck", "--url", &process.url("/healthz")], &[]);
    assert!(healthy.status.success(), "{healthy:?}");
    let nobody = format!("http://127.0.0.1:{}/healthz", free_port());
    let down = revwallet(&["healthcheck", "--url", &nobody], &[]);
    assert_eq!(down.status.code(), Some(1));
}

#[tokio::test]
async fn generate_data_creates_wallets_and_operations_that_keep_the_ledger_clean() {
    let database = TestDatabase::create(Backend::Sqlite)
        .await
        .expect("database");
    let process = Process::start(&database.url, &[]).await;
    let url = process.url("");
    let output = revwallet(
        &[
            "generate-data",
            "--url",
            &url,
            "--wallets",
            "5",
            "--operations",
            "60",
        ],
        &[("REVWALLET_API_KEY", crate::helpers::ADMIN_KEY)],
    );
    assert!(output.status.success(), "{output:?}");
    let wallets: Vec<serde_json::Value> = crate::helpers::admin_client()
        .get(process.url("/wallet/"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(wallets.len(), 5);
    drop(process);
    let (clean, report) = run_audit(&database.url);
    assert!(clean, "{report}");
}

#[tokio::test]
async fn migrate_prepares_an_empty_database_and_serve_can_skip_it() {
    let database = TestDatabase::create(Backend::Sqlite)
        .await
        .expect("database");
    let migrated = revwallet(&["migrate"], &[("DATABASE_URL", &database.url)]);
    assert!(migrated.status.success(), "{migrated:?}");
    let process = Process::start_with_args(&database.url, &["--no-migrate"]).await;
    let created = crate::helpers::admin_client()
        .post(process.url("/wallet/"))
        .json(&serde_json::json!({"owner": "migrated", "currency": "EUR"}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
}

#[test]
fn migrations_exist_in_lockstep_for_both_backends() {
    let names = |dir: &str| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("migrations dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let postgres = names("migrations/postgres");
    assert!(!postgres.is_empty());
    assert_eq!(postgres, names("migrations/sqlite"));
}
