//! Input rules (issue 14, docs/adr/0007-input-rules.md): text that reaches SQL is validated like the field it
//! filters on, every rejection (the framework's too) is problem JSON from the error table, owners cannot spoof
//! one another, ids have one spelling, and the web app's key prefix stays the web app's. Each refusal changes
//! nothing.

use serde_json::json;

use crate::helpers::{Backend, Reply, TestApp};

crate::on_both_backends!(
    a_nul_or_invalid_owner_filter_is_refused_with_422,
    the_web_owner_filter_follows_the_owner_rule,
    a_close_form_sent_again_with_other_values_is_refused_with_422,
    path_ids_that_are_not_utf8_are_problem_json,
    repeated_or_non_utf8_query_parameters_are_422,
    a_body_that_is_not_utf8_is_invalid_json,
    invisible_and_bidi_owners_are_refused,
    owners_are_normalised_to_nfc,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn(backend).await.expect("backend configured")
}

/// Posts a web form as a browser's first request would, without following the redirect that answers it.
async fn post_form(app: &TestApp, path: &str, body: &str) -> Reply {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let request = client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    Reply::read(request.send().await.expect("POST form")).await
}

// Item 1: a NUL in `?owner=` reached PostgreSQL (500); every owner filter now follows the owner rule.
async fn a_nul_or_invalid_owner_filter_is_refused_with_422(backend: Backend) {
    let app = app(backend).await;
    app.create_wallet("filtered", "EUR", "1.00").await;
    let before = app.snapshot().await;
    let too_long = "a".repeat(101);
    for query in [
        "owner=%00",
        "owner=a%00b",
        "owner=tab%09here",
        &format!("owner={too_long}"),
    ] {
        app.get(&format!("/wallet/?{query}"))
            .await
            .assert_problem(422, "invalid_request");
    }
    // Surrounding whitespace is trimmed, as when the owner was stored.
    let trimmed = app.get("/wallet/?owner=%20filtered%20").await;
    assert_eq!(trimmed.status, 200, "{}", trimmed.text);
    assert_eq!(trimmed.body.as_array().map(Vec::len), Some(1));
    assert_eq!(app.snapshot().await, before);
}

async fn the_web_owner_filter_follows_the_owner_rule(backend: Backend) {
    let app = app(backend).await;
    app.create_wallet("Zo\u{eb}", "EUR", "1.00").await;
    let before = app.snapshot().await;
    for query in [
        "owner=%00",
        "owner=a%E2%80%8Bb",
        &format!("owner={}", "a".repeat(101)),
    ] {
        let page = app.get(&format!("/?{query}")).await;
        assert_eq!(page.status, 422, "{query}: {}", page.text);
        assert!(page.text.contains("Invalid owner filter"), "{}", page.text);
    }
    // The same owner, decomposed (e + U+0308), finds the wallet stored composed.
    let page = app.get("/?owner=Zoe%CC%88").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains(">Zo\u{eb}</a>"), "{}", page.text);
    assert_eq!(app.snapshot().await, before);
}

// Item 1: the close form's key reused with other values was a 500; the other forms answer 422.
async fn a_close_form_sent_again_with_other_values_is_refused_with_422(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("closing", "EUR", "3.00").await;
    let other = app.create_wallet("staying", "EUR", "3.00").await;
    let path = format!("/ui/wallets/{id}/close");
    let key = "c0ffee00-1111-2222-3333-444455556666";
    let closed = post_form(&app, &path, &format!("confirm=yes&key={key}")).await;
    assert_eq!(closed.status, 303, "{}", closed.text);
    let before = app.snapshot().await;
    let again = post_form(&app, &path, &format!("confirm=yes&key={key}&note=again")).await;
    assert_eq!(again.status, 422, "{}", again.text);
    assert!(
        again
            .text
            .contains("This form was already sent with other values."),
        "{}",
        again.text
    );
    // The same form sent again is still the harmless repeat it always was.
    let repeat = post_form(&app, &path, &format!("confirm=yes&key={key}")).await;
    assert_eq!(repeat.status, 303);
    assert_eq!(app.snapshot().await, before);
    assert_eq!(app.balance(&other).await, "3.00");
}

// Item 2: axum answered these in plain text (400).
async fn path_ids_that_are_not_utf8_are_problem_json(backend: Backend) {
    let app = app(backend).await;
    app.create_wallet("paths", "EUR", "1.00").await;
    let before = app.snapshot().await;
    for path in [
        "/wallet/%FF",
        "/wallet/balance/%FF",
        "/wallet/%FF/transactions",
        "/wallet/%C3%28",
    ] {
        app.get(path).await.assert_problem(404, "wallet_not_found");
    }
    app.delete("/wallet/%FF")
        .await
        .assert_problem(404, "wallet_not_found");
    assert_eq!(app.snapshot().await, before);
}

async fn repeated_or_non_utf8_query_parameters_are_422(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("queries", "EUR", "1.00").await;
    let before = app.snapshot().await;
    for path in [
        "/wallet/?limit=1&limit=2".to_owned(),
        "/wallet?owner=a&owner=b".to_owned(),
        "/wallet/?owner=%FF".to_owned(),
        "/wallet/?%FF=1".to_owned(),
        format!("/wallet/{id}/transactions?before=1&before=2"),
        format!("/wallet/{id}/transactions?limit=%FF"),
    ] {
        app.get(&path).await.assert_problem(422, "invalid_request");
    }
    assert_eq!(app.snapshot().await, before);
}

async fn a_body_that_is_not_utf8_is_invalid_json(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("bytes", "EUR", "1.00").await;
    let before = app.snapshot().await;
    let json = Some("application/json");
    let mut inside_a_string = format!(r#"{{"id": "{id}", "amount": "1.00", "x": ""#).into_bytes();
    inside_a_string.extend_from_slice(b"\xff\xfe\"}");
    app.post_raw("/wallet/deposit", json, inside_a_string)
        .await
        .assert_problem(400, "invalid_json");
    let mut owner = br#"{"owner": "a"#.to_vec();
    owner.extend_from_slice(b"\xc3\x28\", \"currency\": \"EUR\"}");
    app.post_raw("/wallet/", json, owner)
        .await
        .assert_problem(400, "invalid_json");
    assert_eq!(app.snapshot().await, before);
}

// Item 9: zero-width, bidi and line-separator characters made two owners look alike.
async fn invisible_and_bidi_owners_are_refused(backend: Backend) {
    let app = app(backend).await;
    app.create_wallet("alice", "EUR", "1.00").await;
    let before = app.snapshot().await;
    for owner in [
        "ali\u{200B}ce",
        "ali\u{200D}ce",
        "\u{FEFF}alice",
        "alice\u{202E}gpj.exe",
        "ali\u{2028}ce",
        "ali\u{2029}ce",
    ] {
        app.post("/wallet/", json!({"owner": owner, "currency": "EUR"}))
            .await
            .assert_problem(422, "invalid_request");
        let form = serde_urlencoded::to_string([("owner", owner), ("currency", "EUR")])
            .expect("form encoding");
        let page = post_form(&app, "/ui/wallets", &form).await;
        assert_eq!(page.status, 422, "{owner:?}: {}", page.text);
        assert!(page.text.contains("Remove the invisible characters"));
    }
    assert_eq!(app.snapshot().await, before);
}

async fn owners_are_normalised_to_nfc(backend: Backend) {
    let app = app(backend).await;
    let decomposed = app
        .post(
            "/wallet/",
            json!({"owner": "Zoe\u{308}", "currency": "EUR"}),
        )
        .await;
    assert_eq!(decomposed.status, 201, "{}", decomposed.text);
    assert_eq!(decomposed.body["owner"], "Zo\u{eb}");
    app.create_wallet("Zo\u{eb}", "EUR", "0").await;
    for filter in ["Zoe%CC%88", "Zo%C3%AB"] {
        let listed = app.get(&format!("/wallet/?owner={filter}")).await;
        assert_eq!(listed.status, 200);
        let owners: Vec<_> = listed
            .body
            .as_array()
            .expect("array")
            .iter()
            .map(|w| w["owner"].clone())
            .collect();
        assert_eq!(owners, [json!("Zo\u{eb}"), json!("Zo\u{eb}")], "{filter}");
    }
}
