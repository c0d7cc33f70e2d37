//! `revwallet serve` and `revwallet migrate`.

use anyhow::Context;

use crate::app;
use crate::config::{DatabaseArgs, ServeArgs};
use crate::state::AppState;
use crate::store::Store;

pub async fn serve(settings: ServeArgs) -> anyhow::Result<()> {
    let url = settings.database.url();
    // Kept until exit: tells `revwallet restore` that this database is in use.
    let _in_use = super::lock_for_serving(&url)?;
    let store = Store::connect(&url, &settings.database.store_options())?;
    if !settings.no_migrate {
        store.migrate().await.context("applying migrations")?;
    }
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    tracing::info!(address = %listener.local_addr()?, backend = store.backend(), "revwallet serving");
    app::serve(
        listener,
        AppState::new(store, settings),
        app::shutdown_signal(),
    )
    .await
}

pub async fn migrate(database: DatabaseArgs) -> anyhow::Result<()> {
    let store = Store::connect(&database.url(), &database.store_options())?;
    store.migrate().await.context("applying migrations")?;
    tracing::info!(backend = store.backend(), "migrations applied");
    store.close().await;
    Ok(())
}
