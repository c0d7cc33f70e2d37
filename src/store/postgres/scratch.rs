//! Scratch databases on the test server for the backend's own tests.

use std::time::Duration;

use sqlx::PgPool;

use crate::store::{PgStore, StoreOptions};

/// A migrated scratch database on the test server, or `None` when no server is configured (a failure when
/// `REVWALLET_REQUIRE_POSTGRES=1`, as in CI).
pub(crate) async fn scratch() -> Option<(PgStore, String, String)> {
    let Some(admin) = std::env::var("REVWALLET_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        let required = std::env::var("REVWALLET_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
        assert!(!required, "REVWALLET_TEST_POSTGRES_URL is not set");
        return None;
    };
    let name = format!("revwallet_batch_{}", uuid::Uuid::new_v4().simple());
    let admin_pool = PgPool::connect(&admin).await.expect("admin connection");
    sqlx::query(&format!("create database {name}"))
        .execute(&admin_pool)
        .await
        .expect("create database");
    admin_pool.close().await;
    let (base, _) = admin.rsplit_once('/').expect("a database path");
    let options = StoreOptions {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(10),
        batch_writes: true,
    };
    let store = PgStore::connect(&format!("{base}/{name}"), &options).expect("store");
    store.migrate().await.expect("migrate");
    Some((store, admin, name))
}

pub(crate) async fn drop_scratch(store: PgStore, admin: &str, name: &str) {
    store.close().await;
    let admin_pool = PgPool::connect(admin).await.expect("admin connection");
    // `with (force)` refuses while an autovacuum worker is in the database (the test role may not end it); the
    // worker is done with a fresh database in moments. A database left behind is the test server's clutter,
    // not the test's failure.
    for attempt in 1..=20 {
        match sqlx::query(&format!("drop database if exists {name} with (force)"))
            .execute(&admin_pool)
            .await
        {
            Ok(_) => return,
            Err(error) if attempt == 20 => {
                eprintln!("could not drop scratch database {name}: {error}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
