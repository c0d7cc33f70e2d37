//! Limits a client must not be able to push past: metric series, counters, logs, slow connections, locks.

use serde_json::json;

use crate::helpers::{Backend, TestApp};

crate::on_both_backends!(
    made_up_methods_fold_into_one_other_series,
    money_moved_never_goes_down_even_past_the_largest_counter,
);

fn series<'a>(metrics: &'a str, family: &str) -> Vec<&'a str> {
    metrics
        .lines()
        .filter(|line| line.starts_with(family) && line[family.len()..].starts_with('{'))
        .collect()
}

fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series).map(str::trim))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

async fn made_up_methods_fold_into_one_other_series(backend: Backend) {
    let app = TestApp::spawn(backend).await.expect("backend configured");
    let family = "revwallet_http_requests_total";
    let before = series(&app.get("/metrics").await.text, family).len();
    for n in 0..300 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{n}").as_bytes()).expect("method");
        let response = app
            .client
            .request(method, app.url("/wallet/"))
            .send()
            .await
            .expect("send");
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let after = app.get("/metrics").await.text;
    assert!(!after.contains("MADEUP"), "a made-up method became a label");
    assert!(
        after.contains(
            r#"revwallet_http_requests_total{method="other",route="/wallet/",status="405"}"#
        ),
        "made-up methods are counted as other"
    );
    let grown = series(&after, family).len() - before;
    // One new series for the 300 made-up methods (a little slack for tests sharing the recorder under `cargo test`).
    assert!(grown <= 3, "{grown} new series for 300 made-up methods");
}

async fn money_moved_never_goes_down_even_past_the_largest_counter(backend: Backend) {
    let app = TestApp::spawn(backend).await.expect("backend configured");
    // KRW has no minor unit: the largest amount is i64::MAX won, and three deposits of it pass u64::MAX.
    let id = app.create_wallet("limits", "KRW", "0").await;
    let most = i64::MAX.to_string();
    let deposits = r#"revwallet_money_moved_minor_units_total{type="deposit",currency="KRW"}"#;
    let mut last = sample(&app.get("/metrics").await.text, deposits);
    for _ in 0..4 {
        let deposit = app
            .post("/wallet/deposit", json!({"id": id, "amount": most}))
            .await;
        assert_eq!(deposit.status, 200, "{}", deposit.text);
        let now = sample(&app.get("/metrics").await.text, deposits);
        assert!(now >= last, "the counter went down from {last} to {now}");
        assert!(now > 0.0);
        last = now;
        let withdrawal = app
            .post("/wallet/withdraw", json!({"id": id, "amount": most}))
            .await;
        assert_eq!(withdrawal.status, 200, "{}", withdrawal.text);
    }
    assert!(
        last >= 1.8e19,
        "the total saturates at the largest counter: {last}"
    );
}
