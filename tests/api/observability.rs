//! Metrics and logs as an operator sees them.

use serde_json::{Value, json};

use crate::helpers::{Backend, Process, TestApp, TestDatabase};

crate::on_both_backends!(metrics_count_requests_by_route_template_and_operations_by_outcome);

async fn metrics_count_requests_by_route_template_and_operations_by_outcome(backend: Backend) {
    let app = TestApp::spawn(backend).await.expect("backend configured");
    // CHF only here: `cargo test` runs every test in one process, sharing the metrics recorder.
    let id = app.create_wallet("metered", "CHF", "1.00").await;
    let before = app.get("/metrics").await.text;
    let refused = r#"revwallet_operations_total{type="withdrawal",currency="CHF",outcome="insufficient_funds"}"#;
    let refused_before = sample(&before, refused);
    app.post("/wallet/withdraw", json!({"id": id, "amount": "5"}))
        .await
        .assert_problem(409, "insufficient_funds");
    app.post("/wallet/deposit", json!({"id": id, "amount": "2.50"}))
        .await;
    app.get(&format!("/wallet/{id}")).await;
    app.get("/no/such/path/12345").await;

    let after = app.get("/metrics").await.text;
    assert_eq!(
        sample(&after, refused),
        refused_before + 1.0,
        "a refused overdraft is counted"
    );
    assert!(
        sample(
            &after,
            r#"revwallet_money_moved_minor_units_total{type="deposit",currency="CHF"}"#
        ) >= 250.0
    );
    assert!(
        after.contains(r#"route="/wallet/{id}""#),
        "routes are templates"
    );
    assert!(
        !after.contains(&format!("/wallet/{id}\"")),
        "a raw id leaked into a label"
    );
    assert!(
        !after.contains("/no/such/path"),
        "an unmatched path leaked into a label"
    );
    for family in [
        "revwallet_http_requests_total",
        "revwallet_http_request_duration_seconds_bucket",
        "revwallet_operations_total",
        "revwallet_money_moved_minor_units_total",
        "revwallet_build_info",
        "revwallet_db_pool_acquire_duration_seconds_bucket",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ] {
        assert!(
            after.lines().any(|l| l.starts_with(family)),
            "{family} missing from /metrics"
        );
    }
    assert!(after.contains(
        r#"revwallet_http_requests_total{method="POST",route="/wallet/withdraw",status="409"}"#
    ));
    assert!(after.contains(r#"route="unmatched""#));
}

fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series).map(str::trim))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn json_logs_carry_the_request_id_given_in_the_request() {
    let database = TestDatabase::create(Backend::Sqlite)
        .await
        .expect("database");
    let process = Process::start(
        &database.url,
        &[("REVWALLET_LOG_FORMAT", "json"), ("RUST_LOG", "info")],
    )
    .await;
    let client = crate::helpers::admin_client();
    let response = client
        .post(process.url("/wallet/"))
        .header("x-request-id", "trace-me-42")
        .json(&json!({"owner": "logged", "currency": "EUR"}))
        .send()
        .await
        .expect("create");
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("trace-me-42")
    );
    let generated = client
        .get(process.url("/wallet/"))
        .send()
        .await
        .expect("list");
    let generated_id = generated
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert!(
        generated_id.as_deref().is_some_and(|id| id.len() >= 16),
        "a request id is made when none is given"
    );

    let mut completed = None;
    for _ in 0..50 {
        let logs = process.logs();
        let lines: Vec<Value> = logs
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is JSON"))
            .collect();
        completed = lines
            .into_iter()
            .find(|l| l["message"] == "request completed" && l["request_id"] == "trace-me-42");
        if completed.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let line = completed.expect("a completion line with the request id");
    for field in [
        "timestamp",
        "level",
        "target",
        "method",
        "route",
        "status",
        "latency_ms",
    ] {
        assert!(!line[field].is_null(), "{field} missing from {line}");
    }
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["route"], "/wallet/");
    assert_eq!(line["status"], 201);
    let opened = process
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "wallet opened")
        .expect("the operation is logged");
    assert_eq!(opened["span"]["request_id"], "trace-me-42");
    assert_eq!(opened["currency"], "EUR");
}
