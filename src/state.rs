//! What every handler shares: the store, the metrics handle, the settings and the authenticator. Built once, by `AppState::new`.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::auth::{AuthMode, Authenticator, Keyring};
use crate::config::ServeArgs;
use crate::store::Store;

/// Cloned for every request (by each `State` extractor and each layer given the state), so one reference count
/// behind one `Arc`: cloning the parts themselves counted up and down every `Arc` inside the store, about 3% of
/// the server's CPU on balance reads (`perf record`, docs/performance.md).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The parts of `AppState`, reached through it by `Deref` (`state.store`).
pub struct Shared {
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
        Self(Arc::new(Shared {
            store,
            metrics: crate::telemetry::metrics_handle(),
            settings: Arc::new(settings),
            auth,
        }))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl Shared {
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
