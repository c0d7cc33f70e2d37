//! Limits a client must not be able to push past: metric series, counters, logs, slow connections, locks.

use std::time::Duration;

use revwallet::config::ServeArgs;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Backend, Process, TestApp, TestDatabase};

crate::on_both_backends!(
    made_up_methods_fold_into_one_other_series,
    money_moved_never_goes_down_even_past_the_largest_counter,
    nothing_from_a_request_forges_a_log_line,
    a_client_too_slow_to_send_its_headers_is_disconnected,
    form_posts_to_another_host_or_from_another_origin_are_refused,
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

async fn nothing_from_a_request_forges_a_log_line(backend: Backend) {
    let database = TestDatabase::create(backend).await.expect("database");
    let process = Process::start(
        &database.url,
        &[("REVWALLET_LOG_FORMAT", "text"), ("RUST_LOG", "info")],
    )
    .await;
    let client = crate::helpers::admin_client();
    // A percent-decoded newline in a path id. (It is refused by the path extractor before any handler logs it;
    // before that extractor, it reached the log through the refusal's detail.)
    let closed = client
        .delete(process.url("/wallet/1%0AFORGED%20ERROR%20pwned"))
        .send()
        .await
        .expect("close");
    assert!(closed.status().is_client_error());
    // Request ids a client made up: too long, or with characters that could pass for log fields.
    let long = "L".repeat(65);
    for forged in ["FORGEDID level=ERROR", long.as_str(), "FORGEDID\"quote"] {
        let response = client
            .get(process.url("/wallet/"))
            .header("x-request-id", forged)
            .send()
            .await
            .expect("list");
        let echoed = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .expect("a request id")
            .to_owned();
        assert_ne!(echoed, forged, "an unsafe request id was kept");
        assert!(echoed.len() >= 16, "a fresh id is made: {echoed}");
    }
    let kept = client
        .get(process.url("/wallet/"))
        .header("x-request-id", "Trace_me-42.ok")
        .send()
        .await
        .expect("list");
    assert_eq!(
        kept.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("Trace_me-42.ok"),
        "a short plain id is kept"
    );

    // Wait for the last request's line (requests are logged in order of completion).
    let mut logs = String::new();
    for _ in 0..100 {
        logs = process.logs();
        if logs.contains("Trace_me-42.ok") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        logs.contains("Trace_me-42.ok"),
        "the requests were logged: {logs}"
    );
    for line in logs.lines() {
        assert!(
            line.starts_with("20"),
            "a line that is not a log entry of its own: {line:?}"
        );
        assert!(
            !line.contains("FORGEDID"),
            "a forged request id was logged: {line}"
        );
        assert!(
            !line.contains(&long),
            "a too long request id was logged: {line}"
        );
    }
}

async fn a_client_too_slow_to_send_its_headers_is_disconnected(backend: Backend) {
    let database = TestDatabase::create(backend).await.expect("database");
    let settings = ServeArgs {
        header_read_timeout_ms: 300,
        ..ServeArgs::default()
    };
    let app = TestApp::spawn_on(database, settings).await;
    let mut slow = tokio::net::TcpStream::connect(app.address)
        .await
        .expect("connect");
    slow.write_all(b"GET /wal")
        .await
        .expect("half a request line");
    // The server closes the connection (with or without a 408 first); the bound is only against hanging forever.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), slow.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the half-open connection was never closed");

    // An idle kept-alive connection is closed the same way, and a prompt client is served.
    let mut idle = tokio::net::TcpStream::connect(app.address)
        .await
        .expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("request");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), idle.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the idle connection was never closed");
    assert!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

async fn form_posts_to_another_host_or_from_another_origin_are_refused(backend: Backend) {
    let database = TestDatabase::create(backend).await.expect("database");
    let settings = ServeArgs {
        public_origins: vec!["https://wallet.example".to_owned()],
        ..ServeArgs::default()
    };
    let configured = TestApp::spawn_on(database, settings).await;
    let client = crate::helpers::page_client();
    // Signing in is a form post too: from the public origin.
    let public_headers = [
        ("host", "wallet.example"),
        ("origin", "https://wallet.example"),
    ];
    let signed_in = configured
        .post_sign_in(crate::helpers::ADMIN_KEY, &public_headers)
        .await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text);
    let configured_session = crate::helpers::cookie_of(&signed_in);
    let default = TestApp::spawn(backend).await.expect("backend configured");
    let default_session = default.sign_in(crate::helpers::ADMIN_KEY).await;
    let open = |app: &TestApp, host: String, origin: String| {
        let cookie = if app.address == configured.address {
            &configured_session
        } else {
            &default_session
        };
        client
            .post(app.url("/ui/wallets"))
            .header("cookie", cookie)
            .header("host", host)
            .header("origin", origin)
            .header("sec-fetch-site", "same-origin")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("owner=rebound&currency=EUR&initial_balance=1&key=k-1")
            .send()
    };
    // DNS rebinding: the attacker's name resolves to this server; Host and Origin agree with each other.
    let rebound = open(
        &configured,
        "evil.example".into(),
        "https://evil.example".into(),
    )
    .await
    .expect("post");
    assert_eq!(rebound.status(), 403);
    let wrong_scheme = open(
        &configured,
        "wallet.example".into(),
        "http://wallet.example".into(),
    )
    .await
    .expect("post");
    assert_eq!(wrong_scheme.status(), 403, "the scheme is compared too");
    assert_eq!(
        configured.snapshot().await["wallets"],
        json!([]),
        "nothing was opened"
    );
    let public = open(
        &configured,
        "wallet.example".into(),
        "https://wallet.example".into(),
    )
    .await
    .expect("post");
    assert_eq!(public.status(), 303);
    let opened = |response: &reqwest::Response| {
        response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|location| location.starts_with("/ui/wallets/"))
    };
    assert!(opened(&public), "signed in, the wallet was opened");

    // The default: loopback on any port, nothing else.
    let port = default.address.port();
    let rebound = open(
        &default,
        format!("evil.example:{port}"),
        format!("http://evil.example:{port}"),
    )
    .await
    .expect("post");
    assert_eq!(rebound.status(), 403);
    let local = open(
        &default,
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}"),
    )
    .await
    .expect("post");
    assert_eq!(local.status(), 303);
    assert!(opened(&local), "signed in, the wallet was opened");
}
