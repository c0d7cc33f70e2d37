//! Logs (JSON or text on stdout, filtered by `RUST_LOG`) and the Prometheus metrics recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

/// Installs the global subscriber once; later calls (tests building several apps) are no-ops.
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    let result = match format {
        LogFormat::Json => builder
            .json()
            // Top-level `message`, `request_id`, … so log shippers need no nested paths.
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.fmt_fields(escaped_fields()).try_init(),
    };
    // Already installed (tests build many apps in one process): keep the first.
    drop(result);
}

/// Text logs' fields with every control character escaped (`\n` as the two characters `\` `n`): a value that came
/// from a request (a percent-decoded path, a header) can never start a line of its own and forge a log entry.
/// (The JSON format escapes them already.)
fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + Send + Sync + 'static
{
    use tracing_subscriber::field::MakeExt;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let text = escape_control_characters(&format!("{value:?}"));
        if field.name() == "message" {
            writer.write_str(&text)
        } else {
            write!(writer, "{}={text}", field.name())
        }
    })
    .delimited(" ")
}

/// `text` with control characters written as Rust escapes.
pub fn escape_control_characters(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// Latency buckets in seconds: fine below 100 ms where a healthy wallet API lives.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// The process-wide Prometheus recorder. The `metrics` facade has one global recorder, so every app in the
/// process (several in tests) shares it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("revwallet_write_batch_size".to_owned()),
                        BATCH_BUCKETS,
                    )
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder was installed first; the handle still renders ours.
            drop(metrics::set_global_recorder(recorder));
            describe_metrics();
            metrics::gauge!("revwallet_build_info", "version" => env!("CARGO_PKG_VERSION"))
                .set(1.0);
            handle
        })
        .clone()
}

fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "revwallet_http_requests_total",
        "HTTP requests by method, matched route and status"
    );
    describe_histogram!(
        "revwallet_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by method, matched route and status"
    );
    describe_counter!(
        "revwallet_operations_total",
        "Money operations by type, currency and outcome"
    );
    describe_counter!(
        "revwallet_money_moved_minor_units_total",
        "Money moved by successful operations, in minor units of the currency"
    );
    describe_gauge!("revwallet_wallets_open", "Open wallets");
    describe_gauge!(
        "revwallet_held_minor_units",
        "Money reserved by pending holds in open wallets, by currency, in minor units"
    );
    describe_counter!(
        "revwallet_holds_expired_total",
        "Holds marked expired by the sweep or by a write that needed their money"
    );
    describe_gauge!(
        "revwallet_database_up",
        "1 when the last database ping succeeded"
    );
    describe_gauge!(
        "revwallet_db_pool_connections",
        "Database connections by state"
    );
    describe_gauge!(
        "revwallet_db_pool_max_connections",
        "Largest size of the database pool"
    );
    describe_histogram!(
        "revwallet_db_pool_acquire_duration_seconds",
        Unit::Seconds,
        "Time spent waiting for a connection from the database pool"
    );
    describe_counter!(
        "revwallet_idempotent_replays_total",
        "Requests answered from a stored idempotent response"
    );
    describe_counter!(
        "revwallet_auth_failures_total",
        "Requests refused as unauthenticated, by reason (missing, malformed, unknown, revoked, session_expired)"
    );
    // Every reason from zero, so a dashboard and a rate() see the series before the first failure.
    for failure in crate::auth::AuthFailure::ALL {
        metrics::counter!("revwallet_auth_failures_total", "reason" => failure.reason())
            .absolute(0);
    }
    describe_counter!(
        "revwallet_auth_key_lookups_total",
        "API keys looked up in the database (a key not yet cached); the steady state adds none"
    );
    describe_counter!(
        "revwallet_events_written_total",
        "Events committed to the outbox, by type, counted as the sequencer numbers them for the feed"
    );
    for kind in crate::store::EventKind::ALL {
        metrics::counter!("revwallet_events_written_total", "type" => kind.as_str()).absolute(0);
    }
    describe_gauge!(
        "revwallet_events_unsequenced",
        "Events committed but not yet numbered for the feed (PostgreSQL; stays near 0 while the sequencer keeps up)"
    );
    describe_gauge!(
        "revwallet_events_feed_waiting",
        "Feed requests waiting for an event (long-poll)"
    );
    describe_gauge!("revwallet_build_info", "Build information; always 1");
    crate::webhooks::describe_metrics();
    describe_histogram!(
        "revwallet_write_batch_size",
        "Writes committed together in one transaction (group commit)"
    );
}

/// Renders every metric, process metrics included, in the Prometheus text format.
pub fn render_metrics(handle: &PrometheusHandle) -> String {
    static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();
    let collector = PROCESS.get_or_init(|| {
        let collector = metrics_process::Collector::default();
        collector.describe();
        collector
    });
    collector.collect();
    handle.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            escape_control_characters("1\n2026-01-01 ERROR forged\r\u{1b}[31m"),
            "1\\n2026-01-01 ERROR forged\\r\\u{1b}[31m"
        );
        assert_eq!(escape_control_characters("plain é"), "plain é");
    }
}
