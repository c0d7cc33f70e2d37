//! Typed settings for `revwallet serve`, from flags or the environment.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::Args;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use crate::auth::AuthMode;
use crate::store::StoreOptions;

// Defaults in one place: the flags below and `ServeArgs::default()` (what tests start from) both use them.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080);
pub const DEFAULT_DB_POOL_SIZE: u32 = 16;
pub const DEFAULT_DB_ACQUIRE_TIMEOUT_MS: u64 = 3000;
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 20_000;
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_GRAFANA_URL: &str = "/grafana/";
pub const DEFAULT_PROMETHEUS_URL: &str = "/prometheus/";
pub const DEFAULT_SESSION_TTL_MINUTES: u64 = 8 * 60;

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite://path` or `postgres://user:password@host:port/db`. Default: `sqlite://revwallet.db`, unless
    /// `DB_HOST` is set, when the URL is built from DB_HOST, DB_PORT, DB_USERNAME, DB_PASSWORD and DB_NAME.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Largest number of database connections.
    #[arg(long, env = "REVWALLET_DB_POOL_SIZE", default_value_t = DEFAULT_DB_POOL_SIZE)]
    pub db_pool_size: u32,

    /// How long a request waits for a database connection before answering 503.
    #[arg(long, env = "REVWALLET_DB_ACQUIRE_TIMEOUT_MS", default_value_t = DEFAULT_DB_ACQUIRE_TIMEOUT_MS)]
    pub db_acquire_timeout_ms: u64,

    /// Group commit: writes that queue while a transaction runs share the next one and its commit (SQLite: every
    /// write; PostgreSQL: deposits, withdrawals and transfers). `false` commits every write alone (`make bench` measures both).
    #[arg(long, env = "REVWALLET_WRITE_BATCHING", default_value_t = true, action = clap::ArgAction::Set)]
    pub write_batching: bool,
}

impl DatabaseArgs {
    pub fn url(&self) -> String {
        resolve_database_url(self.database_url.clone(), |name| std::env::var(name).ok())
    }

    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            max_connections: self.db_pool_size.max(1),
            acquire_timeout: Duration::from_millis(self.db_acquire_timeout_ms),
            batch_writes: self.write_batching,
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (containers use 0.0.0.0:8080).
    #[arg(long, env = "REVWALLET_LISTEN", default_value_t = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// `api-key`: every `/wallet` and `/ui` request needs an API key (or a web session). `off`: the original open
    /// API, for trusted networks only (a warning is logged at every start).
    #[arg(long, env = "REVWALLET_AUTH", value_enum, default_value = "api-key")]
    pub auth: AuthMode,

    /// An admin API key (`rw_` and 32–200 of `[A-Za-z0-9_-]`) made sure of at start-up: how a deployment injects
    /// its first credential from a secret.
    #[arg(long, env = "REVWALLET_BOOTSTRAP_ADMIN_KEY", hide_env_values = true)]
    pub bootstrap_admin_key: Option<Hidden>,

    /// How long a web sign-in lasts.
    #[arg(long, env = "REVWALLET_SESSION_TTL_MINUTES", default_value_t = DEFAULT_SESSION_TTL_MINUTES)]
    pub session_ttl_minutes: u64,

    /// Do not apply migrations before serving (when a separate `revwallet migrate` step does it).
    #[arg(long)]
    pub no_migrate: bool,

    /// Longest time a request may take before it is answered 503.
    #[arg(long, env = "REVWALLET_REQUEST_TIMEOUT_MS", default_value_t = DEFAULT_REQUEST_TIMEOUT_MS)]
    pub request_timeout_ms: u64,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "REVWALLET_BODY_LIMIT", default_value_t = DEFAULT_BODY_LIMIT)]
    pub body_limit: usize,

    /// How long in-flight requests may take to finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "REVWALLET_SHUTDOWN_GRACE_MS", default_value_t = DEFAULT_SHUTDOWN_GRACE_MS)]
    pub shutdown_grace_ms: u64,

    /// How long a client has to send a request's headers, and how long a kept-alive connection may sit idle
    /// waiting for the next request, before the connection is closed.
    #[arg(long, env = "REVWALLET_HEADER_READ_TIMEOUT_MS", default_value_t = DEFAULT_HEADER_READ_TIMEOUT_MS)]
    pub header_read_timeout_ms: u64,

    /// The origins (`scheme://host[:port]`, comma-separated) the web app is reached at. A form post addressed to
    /// another Host, or from another Origin, is refused. Empty: loopback (127.0.0.0/8, ::1, localhost) on any port.
    #[arg(
        long = "public-origin",
        env = "REVWALLET_PUBLIC_ORIGINS",
        value_delimiter = ','
    )]
    pub public_origins: Vec<String>,

    /// Where the web app links to Grafana.
    #[arg(long, env = "REVWALLET_GRAFANA_URL", default_value = DEFAULT_GRAFANA_URL)]
    pub grafana_url: String,

    /// Where the web app links to Prometheus.
    #[arg(long, env = "REVWALLET_PROMETHEUS_URL", default_value = DEFAULT_PROMETHEUS_URL)]
    pub prometheus_url: String,

    #[command(flatten)]
    pub webhooks: WebhookArgs,
}

/// Webhook delivery (docs/api.md, Webhooks). The hidden settings exist so tests need not wait 10 s per attempt.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Let webhooks reach loopback, private, link-local and other internal addresses (tests, private networks).
    #[arg(long, env = "REVWALLET_WEBHOOK_ALLOW_PRIVATE")]
    pub webhook_allow_private: bool,

    /// How long delivered and failed deliveries (with their attempts), and events every webhook has passed, are
    /// kept: a number with a unit, `s`, `m`, `h` or `d` (e.g. `7d`).
    #[arg(long, env = "REVWALLET_WEBHOOK_RETENTION", default_value = "7d", value_parser = parse_period)]
    pub webhook_retention: Duration,

    /// A server key: webhook secrets are then derived from it and a random seed, and the database keeps only the
    /// seed, so a dump of it alone cannot sign deliveries. Changing it changes every such webhook's secret.
    #[arg(long, env = "REVWALLET_WEBHOOK_SECRET_KEY", hide_env_values = true)]
    pub webhook_secret_key: Option<Hidden>,

    /// How long one delivery attempt may take.
    #[arg(long, env = "REVWALLET_WEBHOOK_TIMEOUT_MS", hide = true, default_value_t = DEFAULT_WEBHOOK_TIMEOUT_MS)]
    pub webhook_timeout_ms: u64,

    /// The nominal wait before the first retry (then doubling, with jitter).
    #[arg(long, env = "REVWALLET_WEBHOOK_RETRY_FIRST_MS", hide = true, default_value_t = DEFAULT_WEBHOOK_RETRY_FIRST_MS)]
    pub webhook_retry_first_ms: u64,

    /// The longest nominal wait between retries.
    #[arg(long, env = "REVWALLET_WEBHOOK_RETRY_MAX_MS", hide = true, default_value_t = DEFAULT_WEBHOOK_RETRY_MAX_MS)]
    pub webhook_retry_max_ms: u64,

    /// How often the dispatcher and the delivery worker look for work.
    #[arg(long, env = "REVWALLET_WEBHOOK_POLL_MS", hide = true, default_value_t = DEFAULT_WEBHOOK_POLL_MS)]
    pub webhook_poll_ms: u64,
}

pub const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_WEBHOOK_RETRY_FIRST_MS: u64 = 5_000;
pub const DEFAULT_WEBHOOK_RETRY_MAX_MS: u64 = 3_600_000;
pub const DEFAULT_WEBHOOK_POLL_MS: u64 = 500;
pub const DEFAULT_WEBHOOK_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

impl Default for WebhookArgs {
    fn default() -> Self {
        Self {
            webhook_allow_private: false,
            webhook_retention: DEFAULT_WEBHOOK_RETENTION,
            webhook_secret_key: None,
            webhook_timeout_ms: DEFAULT_WEBHOOK_TIMEOUT_MS,
            webhook_retry_first_ms: DEFAULT_WEBHOOK_RETRY_FIRST_MS,
            webhook_retry_max_ms: DEFAULT_WEBHOOK_RETRY_MAX_MS,
            webhook_poll_ms: DEFAULT_WEBHOOK_POLL_MS,
        }
    }
}

/// A period like `7d`, `36h`, `90m` or `600s`.
pub fn parse_period(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.char_indices().last().map_or(0, |(at, _)| at);
    let (number, unit) = text.split_at(split);
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err("expected a number and a unit: s, m, h or d (e.g. 7d)".to_owned()),
    };
    number
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .and_then(|n| n.checked_mul(seconds_per))
        .map(Duration::from_secs)
        .ok_or_else(|| "expected a positive whole number before the unit (e.g. 7d)".to_owned())
}

impl Default for ServeArgs {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            database: DatabaseArgs {
                database_url: None,
                db_pool_size: DEFAULT_DB_POOL_SIZE,
                db_acquire_timeout_ms: DEFAULT_DB_ACQUIRE_TIMEOUT_MS,
                write_batching: true,
            },
            auth: AuthMode::ApiKey,
            bootstrap_admin_key: None,
            session_ttl_minutes: DEFAULT_SESSION_TTL_MINUTES,
            no_migrate: false,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            body_limit: DEFAULT_BODY_LIMIT,
            shutdown_grace_ms: DEFAULT_SHUTDOWN_GRACE_MS,
            header_read_timeout_ms: DEFAULT_HEADER_READ_TIMEOUT_MS,
            public_origins: Vec::new(),
            grafana_url: DEFAULT_GRAFANA_URL.to_owned(),
            prometheus_url: DEFAULT_PROMETHEUS_URL.to_owned(),
            webhooks: WebhookArgs::default(),
        }
    }
}

/// A secret setting: `Debug` never shows it, so settings can be logged whole; checked where it is used, so a
/// malformed value is never echoed by an argument-parsing error either.
#[derive(Clone, PartialEq, Eq)]
pub struct Hidden(pub String);

impl std::str::FromStr for Hidden {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(Self(text.to_owned()))
    }
}

impl std::fmt::Debug for Hidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hidden(..)")
    }
}

/// `DATABASE_URL` wins; else the original project's `DB_*` variables (README, Configuration) (how ECS and Kubernetes inject
/// secrets); else the embedded SQLite file.
pub fn resolve_database_url(
    explicit: Option<String>,
    env: impl Fn(&str) -> Option<String>,
) -> String {
    if let Some(url) = explicit.filter(|url| !url.is_empty()) {
        return url;
    }
    let Some(host) = env("DB_HOST").filter(|h| !h.is_empty()) else {
        return "sqlite://revwallet.db".to_owned();
    };
    let encode = |value: String| utf8_percent_encode(&value, NON_ALPHANUMERIC).to_string();
    let user = encode(env("DB_USERNAME").unwrap_or_else(|| "postgres".to_owned()));
    let password = env("DB_PASSWORD").map(encode);
    let port = env("DB_PORT").unwrap_or_else(|| "5432".to_owned());
    let name = encode(env("DB_NAME").unwrap_or_else(|| "revwallet".to_owned()));
    let credentials = match password {
        Some(password) => format!("{user}:{password}"),
        None => user,
    };
    format!("postgres://{credentials}@{host}:{port}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn retention_periods_take_a_unit() {
        assert_eq!(parse_period("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_period("36h"), Ok(Duration::from_secs(36 * 3600)));
        assert_eq!(parse_period("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_period("600s"), Ok(Duration::from_secs(600)));
        for bad in [
            "",
            "7",
            "d",
            "0d",
            "-1d",
            "1.5d",
            "7w",
            "7é",
            "99999999999999999999d",
        ] {
            assert!(parse_period(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn database_url_wins_over_db_variables() {
        let url = resolve_database_url(Some("sqlite://x.db".into()), env(&[("DB_HOST", "db")]));
        assert_eq!(url, "sqlite://x.db");
    }

    #[test]
    fn db_variables_build_a_postgres_url_with_escaped_secrets() {
        let url = resolve_database_url(
            None,
            env(&[
                ("DB_HOST", "db.internal"),
                ("DB_PORT", "6543"),
                ("DB_USERNAME", "app"),
                ("DB_PASSWORD", "p@ss:w/rd"),
                ("DB_NAME", "wallets"),
            ]),
        );
        assert_eq!(
            url,
            "postgres://app:p%40ss%3Aw%2Frd@db.internal:6543/wallets"
        );
    }

    #[test]
    fn without_anything_the_embedded_sqlite_file_is_used() {
        assert_eq!(
            resolve_database_url(None, env(&[])),
            "sqlite://revwallet.db"
        );
    }
}
