//! What every handler shares: the store, the metrics handle, the settings and the authenticator. Built once, by `AppState::new`.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::{AuthMode, Authenticator, Keyring};
use crate::config::ServeArgs;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: PrometheusHandle,
    pub settings: Arc<ServeArgs>,
    pub auth: Authenticator,
}

impl AppState {
    pub fn new(store: Store, settings: ServeArgs) -> Self {
        let auth = match settings.auth {
            AuthMode::Off => Authenticator::Off,
            AuthMode::ApiKey => Authenticator::ApiKeys(Arc::new(Keyring::new(store.clone()))),
        };
        Self {
            store,
            metrics: crate::telemetry::metrics_handle(),
            settings: Arc::new(settings),
            auth,
        }
    }

    /// Whether the database answers a ping within a second (also kept as the `revwallet_database_up` gauge).
    pub async fn database_ready(&self) -> bool {
        let up = matches!(
            tokio::time::timeout(Duration::from_secs(1), self.store.ping()).await,
            Ok(Ok(()))
        );
        metrics::gauge!("revwallet_database_up").set(if up { 1.0 } else { 0.0 });
        up
    }
}
