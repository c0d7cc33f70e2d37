//! Input rules (issue 14, docs/adr/0007-input-rules.md): text that reaches SQL is validated like the field it
//! filters on, every rejection (the framework's too) is problem JSON from the error table, owners cannot spoof
//! one another, ids have one spelling, and the web app's key prefix stays the web app's. Each refusal changes
//! nothing.

use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
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
    ids_with_leading_zeros_are_not_wallet_ids,
    an_empty_owner_filter_means_no_filter_in_the_api_and_the_web,
    api_keys_may_not_take_the_web_forms_prefix,
    every_route_answers_malformed_input_with_problem_json,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn(backend).await.expect("backend configured")
}

/// Sends any request: raw path and query (sent as written, percent escapes and all), headers and body bytes.
async fn send(
    app: &TestApp,
    method: Method,
    path_and_query: &str,
    headers: &[(&str, &[u8])],
    body: Option<Vec<u8>>,
) -> Reply {
    // A fresh connection each time: after some malformed requests the server closes theirs, and a pooled
    // connection it is closing at that moment fails the next request with `IncompleteMessage`.
    let mut request = app
        .client
        .request(method, app.url(path_and_query))
        .header(reqwest::header::CONNECTION, "close");
    for (name, value) in headers {
        request = request.header(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_bytes(value).expect("header value"),
        );
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    Reply::read(request.send().await.expect("request")).await
}

/// Posts a web form as a signed-in browser would, without following the redirect that answers it.
async fn post_form(app: &TestApp, path: &str, body: &str) -> Reply {
    app.post_page(path, body).await
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
        let page = app.page(&format!("/?{query}")).await;
        assert_eq!(page.status, 422, "{query}: {}", page.text);
        assert!(page.text.contains("Invalid owner filter"), "{}", page.text);
    }
    // The same owner, decomposed (e + U+0308), finds the wallet stored composed.
    let page = app.page("/?owner=Zoe%CC%88").await;
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

// Item 11: `/wallet/01` was another spelling of wallet 1 (and `DELETE /wallet/01` closed it).
async fn ids_with_leading_zeros_are_not_wallet_ids(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("zeros", "EUR", "5.00").await;
    assert_eq!(id, "1");
    let before = app.snapshot().await;
    for path in [
        "/wallet/01",
        "/wallet/balance/01",
        "/wallet/001/transactions",
    ] {
        app.get(path).await.assert_problem(404, "wallet_not_found");
    }
    app.delete("/wallet/01")
        .await
        .assert_problem(404, "wallet_not_found");
    for body in [
        json!({"id": "01", "amount": "1.00"}),
        json!({"id": "+1", "amount": "1.00"}),
    ] {
        app.post("/wallet/deposit", body)
            .await
            .assert_problem(422, "invalid_request");
    }
    let page = app.page("/ui/wallets/01").await;
    assert_eq!(page.status, 404);
    assert_eq!(app.snapshot().await, before);
}

async fn an_empty_owner_filter_means_no_filter_in_the_api_and_the_web(backend: Backend) {
    let app = app(backend).await;
    app.create_wallet("Ada", "EUR", "0").await;
    app.create_wallet("Grace", "EUR", "0").await;
    for query in ["owner=", "owner=%20%20"] {
        let listed = app.get(&format!("/wallet/?{query}")).await;
        assert_eq!(listed.status, 200, "{}", listed.text);
        assert_eq!(listed.body.as_array().map(Vec::len), Some(2), "{query}");
        let page = app.page(&format!("/?{query}")).await;
        assert_eq!(page.status, 200);
        assert!(page.text.contains(">Ada</a>") && page.text.contains(">Grace</a>"));
    }
}

async fn api_keys_may_not_take_the_web_forms_prefix(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("keys", "EUR", "5.00").await;
    let before = app.snapshot().await;
    app.post_with_key(
        "/wallet/deposit",
        "ui:f47ac10b-58cc-4372-a567-0e02b2c3d479",
        json!({"id": id, "amount": "1.00"}),
    )
    .await
    .assert_problem(422, "invalid_request");
    app.post_with_key("/wallet/", "ui:", json!({"owner": "x", "currency": "EUR"}))
        .await
        .assert_problem(422, "invalid_request");
    assert_eq!(app.snapshot().await, before);
    // Other keys, including ones that merely mention the prefix, are as before.
    let fine = app
        .post_with_key(
            "/wallet/deposit",
            "my-ui:key",
            json!({"id": id, "amount": "1.00"}),
        )
        .await;
    assert_eq!(fine.status, 200, "{}", fine.text);
}

/// The error table: code and status (docs/api.md, "Errors").
const TABLE: [(&str, u16); 15] = [
    ("invalid_json", 400),
    ("wallet_not_found", 404),
    ("not_found", 404),
    ("method_not_allowed", 405),
    ("forbidden", 403),
    ("insufficient_funds", 409),
    ("idempotency_key_in_use", 409),
    ("payload_too_large", 413),
    ("unsupported_media_type", 415),
    ("invalid_request", 422),
    ("invalid_amount", 422),
    ("amount_too_large", 422),
    ("unknown_currency", 422),
    ("currency_mismatch", 422),
    ("idempotency_key_reused", 422),
];

/// Every path of `src/http/mod.rs`, `{id}` marking the wallet id.
const ROUTES: [&str; 12] = [
    "/wallet",
    "/wallet/",
    "/wallet/openapi.json",
    "/wallet/deposit",
    "/wallet/withdraw",
    "/wallet/transfer",
    "/wallet/balance/{id}",
    "/wallet/{id}",
    "/wallet/{id}/transactions",
    "/healthz",
    "/readyz",
    "/metrics",
];

const METHODS: [Method; 3] = [Method::GET, Method::POST, Method::DELETE];

/// The query parameters each route reads.
fn query_parameters(route: &str) -> &'static [&'static str] {
    match route {
        "/wallet" | "/wallet/" => &["owner", "currency", "limit", "after"],
        "/wallet/{id}/transactions" => &["limit", "before"],
        _ => &[],
    }
}

/// Asserts the answer is within the contract: never a 5xx; an error is problem JSON with a code of the table and
/// that code's status. Returns whether it was an error.
#[track_caller]
fn within_contract(reply: &Reply, what: &str) -> bool {
    assert!(
        reply.status < 500,
        "{what}: {} {}",
        reply.status,
        reply.text
    );
    if reply.status < 400 {
        return false;
    }
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json"),
        "{what}: {} {}",
        reply.status,
        reply.text
    );
    let code = reply.body["code"].as_str().unwrap_or_default();
    let row = TABLE.iter().find(|(c, _)| *c == code);
    assert_eq!(
        row.map(|(_, s)| *s),
        Some(reply.status),
        "{what}: {}",
        reply.text
    );
    assert_eq!(reply.body["status"], reply.status, "{what}");
    true
}

// Acceptance 2: every route, fed malformed paths, queries, headers and bodies, answers within the contract and
// changes nothing.
async fn every_route_answers_malformed_input_with_problem_json(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("walked", "EUR", "10.00").await;
    app.create_wallet("other", "EUR", "10.00").await;
    let before = app.snapshot().await;
    let json_type: (&str, &[u8]) = ("content-type", b"application/json");

    // Paths: every route with `{id}`, every method, malformed ids. All must be refused.
    let long_id = "9".repeat(300);
    let bad_ids = [
        "%FF", "%00", "01", "-1", "+1", "0", "1.0", "%C3%28", "1%2F2", "%20", &long_id,
    ];
    for route in ROUTES.iter().filter(|r| r.contains("{id}")) {
        for bad in bad_ids {
            let path = route.replace("{id}", bad);
            for method in METHODS {
                let reply = send(
                    &app,
                    method.clone(),
                    &path,
                    &[json_type],
                    Some(b"{}".to_vec()),
                )
                .await;
                let what = format!("{method} {path}");
                assert!(
                    within_contract(&reply, &what),
                    "{what} must be refused: {}",
                    reply.text
                );
            }
        }
    }
    for path in [
        "/%FF",
        "/wallet/%FF/nope",
        "/wallet//1",
        "/wallet/balance/",
        "/wallet/%00/transactions/x",
    ] {
        for method in METHODS {
            let reply = send(
                &app,
                method.clone(),
                path,
                &[json_type],
                Some(b"{}".to_vec()),
            )
            .await;
            let what = format!("{method} {path}");
            assert!(
                within_contract(&reply, &what),
                "{what} must be refused: {}",
                reply.text
            );
        }
    }

    // Query strings: repeated, not UTF-8, NUL, huge. On the routes that read a parameter, each is refused; the
    // others may ignore their query but still answer within the contract. POST bodies are `{}` (refused) and a
    // DELETE names no wallet, so nothing can change.
    let huge = "9".repeat(8 * 1024);
    for route in ROUTES {
        let path = route.replace("{id}", &id);
        let mut queries: Vec<(String, bool)> =
            vec![("%FF=1".to_owned(), !query_parameters(route).is_empty())];
        for junk in ["x=1&x=2", "x=%FF", "x=%00", "owner=%00", "limit=1&limit=2"] {
            queries.push((junk.to_owned(), false));
        }
        for name in query_parameters(route) {
            for value in [
                format!("1&{name}=2"),
                "%FF".to_owned(),
                "%00".to_owned(),
                "a%00".to_owned(),
                huge.clone(),
            ] {
                queries.push((format!("{name}={value}"), true));
            }
        }
        for (query, refused) in queries {
            for method in METHODS {
                let path = match method {
                    Method::DELETE => route.replace("{id}", "999999"),
                    _ => path.clone(),
                };
                let target = format!("{path}?{query}");
                let reply = send(
                    &app,
                    method.clone(),
                    &target,
                    &[json_type],
                    Some(b"{}".to_vec()),
                )
                .await;
                let what = format!("{method} {}", &target[..target.len().min(120)]);
                let error = within_contract(&reply, &what);
                if refused && method == Method::GET {
                    assert!(error, "{what} must be refused: {}", reply.text);
                }
            }
        }
    }

    // Headers and bodies on every POST route (and on the others, where a POST is 405 anyway).
    let deposit = format!(r#"{{"id": "{id}", "amount": "1.00"}}"#).into_bytes();
    let long_key = vec![b'k'; 300];
    let header_cases: Vec<Vec<(&str, &[u8])>> = vec![
        vec![],
        vec![("content-type", b"text/plain")],
        vec![("content-type", b"application/x-www-form-urlencoded")],
        vec![("content-type", b"application/json\xff")],
        vec![json_type, ("idempotency-key", b"")],
        vec![json_type, ("idempotency-key", &long_key)],
        vec![json_type, ("idempotency-key", b"caf\xc3\xa9")],
        vec![json_type, ("idempotency-key", b"tab\there")],
        vec![
            json_type,
            (
                "idempotency-key",
                b"ui:f47ac10b-58cc-4372-a567-0e02b2c3d479",
            ),
        ],
        vec![json_type, ("idempotency-key", b"ui:")],
    ];
    let mut nested = vec![b'['; 10_000];
    nested.extend(vec![b']'; 10_000]);
    let mut nested_object = b"{\"a\":".repeat(200);
    nested_object.extend(b"1");
    nested_object.extend(vec![b'}'; 200]);
    let mut huge_body = br#"{"id": "1", "amount": "1.00", "pad": ""#.to_vec();
    huge_body.extend(vec![b'x'; 70 * 1024]);
    huge_body.extend(br#""}"#);
    let bodies: Vec<Vec<u8>> = vec![
        b"\xff\xfe{}".to_vec(),
        b"{\"id\": \"1\", \"amount\": \"1\xff\"}".to_vec(),
        b"{\"id\": \"1\x00\", \"amount\": \"1\"}".to_vec(),
        br#"{"id": "1\u0000", "amount": "1"}"#.to_vec(),
        br#"{"owner": "\u0000", "currency": "EUR"}"#.to_vec(),
        br#"{"from_id": "1", "to_id": "2", "amount": "\u0000"}"#.to_vec(),
        huge_body,
        nested,
        nested_object,
        b"[]".to_vec(),
        b"\"deposit\"".to_vec(),
        b"1".to_vec(),
        b"null".to_vec(),
        Vec::new(),
    ];
    for route in ROUTES {
        let path = route.replace("{id}", "999999");
        for headers in &header_cases {
            let reply = send(&app, Method::POST, &path, headers, Some(deposit.clone())).await;
            let what = format!("POST {path} with {headers:?}");
            assert!(
                within_contract(&reply, &what),
                "{what} must be refused: {}",
                reply.text
            );
        }
        for body in &bodies {
            let reply = send(&app, Method::POST, &path, &[json_type], Some(body.clone())).await;
            let what = format!(
                "POST {path} with {:?}",
                String::from_utf8_lossy(&body[..body.len().min(80)])
            );
            assert!(
                within_contract(&reply, &what),
                "{what} must be refused: {}",
                reply.text
            );
        }
    }
    assert_eq!(app.snapshot().await, before);
}
