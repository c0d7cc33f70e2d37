//! `revwallet serve` and `revwallet migrate`.

use anyhow::Context;

use crate::app;
use crate::auth::{AuthMode, BootstrapKey, ensure_start_keys, first_key_message};
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
    prepare_access(&store, &settings, listener.local_addr()?).await?;
    tracing::info!(address = %listener.local_addr()?, backend = store.backend(), "revwallet serving");
    app::serve(
        listener,
        AppState::new(store, settings),
        app::shutdown_signal(),
    )
    .await
}

/// Warns about an open API, or makes sure of the keys a fresh deployment starts with.
async fn prepare_access(
    store: &Store,
    settings: &ServeArgs,
    address: std::net::SocketAddr,
) -> anyhow::Result<()> {
    if settings.auth == AuthMode::Off {
        tracing::warn!(
            "authentication is OFF (--auth off): anyone who reaches this server can read and move all money"
        );
        return Ok(());
    }
    let bootstrap = settings
        .bootstrap_admin_key
        .as_ref()
        .map(|key| BootstrapKey::parse(&key.0))
        .transpose()?;
    let first = ensure_start_keys(store, bootstrap.as_ref())
        .await
        .context("preparing the API keys")?;
    if let Some(secret) = first {
        // Written once to stderr, never through the logs, and never again: only its hash is kept.
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "{}", first_key_message(&secret, address));
        tracing::warn!(key_id = %secret.id(), "created the first admin API key (printed once on stderr)");
    }
    Ok(())
}

pub async fn migrate(database: DatabaseArgs) -> anyhow::Result<()> {
    let store = Store::connect(&database.url(), &database.store_options())?;
    store.migrate().await.context("applying migrations")?;
    tracing::info!(backend = store.backend(), "migrations applied");
    store.close().await;
    Ok(())
}
