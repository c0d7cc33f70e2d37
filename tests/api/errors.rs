//! Every row of the error table: a clear problem-JSON answer, and nothing changed.

use serde_json::json;

use crate::helpers::{Backend, TestApp};

crate::on_both_backends!(
    bad_amounts_are_refused_and_change_nothing,
    amounts_beyond_i64_are_too_large_and_change_nothing,
    malformed_bodies_are_refused_and_change_nothing,
    unknown_currencies_and_bad_owners_are_refused,
    unknown_wallets_and_paths_are_404,
    overdrafts_are_refused_and_change_nothing,
    transfers_need_two_wallets_of_one_currency,
    wrong_methods_are_405,
    bad_query_parameters_are_422,
);

// The open mode keeps the original contract.
crate::also_with_auth_off!(
    bad_amounts_are_refused_and_change_nothing,
    amounts_beyond_i64_are_too_large_and_change_nothing,
    malformed_bodies_are_refused_and_change_nothing,
    unknown_currencies_and_bad_owners_are_refused,
    unknown_wallets_and_paths_are_404,
    overdrafts_are_refused_and_change_nothing,
    transfers_need_two_wallets_of_one_currency,
    wrong_methods_are_405,
    bad_query_parameters_are_422,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn(backend).await.expect("backend configured")
}

async fn bad_amounts_are_refused_and_change_nothing(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("strict", "EUR", "10.00").await;
    let yen = app.create_wallet("strict", "JPY", "10").await;
    let before = app.snapshot().await;
    let cases = [
        (json!("1.001"), &id),
        (json!(1.001), &id),
        (json!("0.1"), &yen),
        (json!("1e3"), &id),
        (json!("-5"), &id),
        (json!(-5), &id),
        (json!("+5"), &id),
        (json!(" 5"), &id),
        (json!("5,00"), &id),
        (json!("NaN"), &id),
        (json!(""), &id),
        (json!("0"), &id),
        (json!(0), &id),
        (json!("0.00"), &id),
    ];
    for (amount, wallet) in cases {
        for route in ["/wallet/deposit", "/wallet/withdraw"] {
            let reply = app
                .post(route, json!({"id": wallet, "amount": amount}))
                .await;
            reply.assert_problem(422, "invalid_amount");
        }
    }
    // Exponent notation as a raw JSON number (serde_json would normalise a Value).
    let raw = app
        .post_raw(
            "/wallet/deposit",
            Some("application/json"),
            format!(r#"{{"id": "{id}", "amount": 1E2}}"#),
        )
        .await;
    raw.assert_problem(422, "invalid_amount");
    let negative_initial = app
        .post(
            "/wallet/",
            json!({"owner": "x", "currency": "EUR", "initial_balance": "-1"}),
        )
        .await;
    negative_initial.assert_problem(422, "invalid_amount");
    let too_precise_initial = app
        .post(
            "/wallet/",
            json!({"owner": "x", "currency": "EUR", "initial_balance": "0.001"}),
        )
        .await;
    too_precise_initial.assert_problem(422, "invalid_amount");
    for amount in [json!(true), json!(null), json!({"value": 1}), json!([1])] {
        let reply = app
            .post("/wallet/deposit", json!({"id": id, "amount": amount}))
            .await;
        reply.assert_problem(422, "invalid_request");
    }
    assert_eq!(app.snapshot().await, before);
}

async fn amounts_beyond_i64_are_too_large_and_change_nothing(backend: Backend) {
    let app = app(backend).await;
    let id = app
        .create_wallet("rich", "EUR", "92233720368547758.00")
        .await;
    let before = app.snapshot().await;
    for amount in [json!("92233720368547758.08"), json!("1".repeat(40))] {
        app.post("/wallet/deposit", json!({"id": id, "amount": amount}))
            .await
            .assert_problem(422, "amount_too_large");
    }
    let huge_number = format!(r#"{{"id": "{id}", "amount": {}}}"#, "9".repeat(400));
    app.post_raw("/wallet/deposit", Some("application/json"), huge_number)
        .await
        .assert_problem(422, "amount_too_large");
    // The amount fits, but the resulting balance would not.
    app.post("/wallet/deposit", json!({"id": id, "amount": "1.00"}))
        .await
        .assert_problem(422, "amount_too_large");
    let create = app
        .post(
            "/wallet/",
            json!({"owner": "x", "currency": "EUR", "initial_balance": "92233720368547758.08"}),
        )
        .await;
    create.assert_problem(422, "amount_too_large");
    assert_eq!(app.snapshot().await, before);
    // The largest balance itself is fine.
    let topped = app
        .post("/wallet/deposit", json!({"id": id, "amount": "0.07"}))
        .await;
    assert_eq!(topped.body["balance"], "92233720368547758.07");
}

async fn malformed_bodies_are_refused_and_change_nothing(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("bodies", "EUR", "10.00").await;
    let before = app.snapshot().await;
    let json = Some("application/json");
    app.post_raw("/wallet/deposit", json, "{\"id\": 1,")
        .await
        .assert_problem(400, "invalid_json");
    app.post_raw("/wallet/deposit", json, "not json")
        .await
        .assert_problem(400, "invalid_json");
    app.post_raw("/wallet/deposit", json, "")
        .await
        .assert_problem(400, "invalid_json");
    app.post_raw("/wallet/", json, "[1, 2")
        .await
        .assert_problem(400, "invalid_json");
    let body = format!(r#"{{"id": "{id}", "amount": "1.00"}}"#);
    app.post_raw("/wallet/deposit", None, body.clone())
        .await
        .assert_problem(415, "unsupported_media_type");
    app.post_raw("/wallet/deposit", Some("text/plain"), body.clone())
        .await
        .assert_problem(415, "unsupported_media_type");
    app.post_raw(
        "/wallet/deposit",
        Some("application/x-www-form-urlencoded"),
        "id=1&amount=1",
    )
    .await
    .assert_problem(415, "unsupported_media_type");
    let oversized = format!(
        r#"{{"id": "{id}", "amount": "1.00", "pad": "{}"}}"#,
        "x".repeat(70 * 1024)
    );
    app.post_raw("/wallet/deposit", json, oversized)
        .await
        .assert_problem(413, "payload_too_large");
    for bad in [
        json!({"amount": "1.00"}),
        json!({"id": id}),
        json!({"id": id, "amount": "1.00", "currency": "EUR"}),
        json!({"id": "abc", "amount": "1.00"}),
        json!({"id": 0, "amount": "1.00"}),
        json!({"id": -1, "amount": "1.00"}),
        json!({"id": 1.5, "amount": "1.00"}),
        json!([id, "1.00"]),
        json!("deposit"),
    ] {
        app.post("/wallet/deposit", bad)
            .await
            .assert_problem(422, "invalid_request");
    }
    assert_eq!(app.snapshot().await, before);
}

async fn unknown_currencies_and_bad_owners_are_refused(backend: Backend) {
    let app = app(backend).await;
    for currency in ["XYZ", "EURO", "", "XAU", "12"] {
        let reply = app
            .post("/wallet/", json!({"owner": "x", "currency": currency}))
            .await;
        reply.assert_problem(422, "unknown_currency");
    }
    for owner in [
        json!(""),
        json!("   "),
        json!("a".repeat(101)),
        json!("tab\there"),
        json!(5),
    ] {
        let reply = app
            .post("/wallet/", json!({"owner": owner, "currency": "EUR"}))
            .await;
        reply.assert_problem(422, "invalid_request");
    }
    app.post("/wallet/", json!({"currency": "EUR"}))
        .await
        .assert_problem(422, "invalid_request");
    assert_eq!(app.get("/wallet/").await.body, json!([]));
}

async fn unknown_wallets_and_paths_are_404(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("known", "EUR", "1").await;
    let before = app.snapshot().await;
    for path in [
        "/wallet/999999",
        "/wallet/balance/999999",
        "/wallet/999999/transactions",
        "/wallet/abc",
        "/wallet/0",
    ] {
        app.get(path).await.assert_problem(404, "wallet_not_found");
    }
    app.delete("/wallet/999999")
        .await
        .assert_problem(404, "wallet_not_found");
    app.post("/wallet/deposit", json!({"id": "999999", "amount": "1"}))
        .await
        .assert_problem(404, "wallet_not_found");
    app.post("/wallet/withdraw", json!({"id": 999999, "amount": "1"}))
        .await
        .assert_problem(404, "wallet_not_found");
    app.post(
        "/wallet/transfer",
        json!({"from_id": id, "to_id": "999999", "amount": "1"}),
    )
    .await
    .assert_problem(404, "wallet_not_found");
    app.post(
        "/wallet/transfer",
        json!({"from_id": "999999", "to_id": id, "amount": "1"}),
    )
    .await
    .assert_problem(404, "wallet_not_found");
    for path in ["/nope", "/wallet/1/nope", "/api/wallet"] {
        app.get(path).await.assert_problem(404, "not_found");
    }
    assert_eq!(app.snapshot().await, before);
}

async fn overdrafts_are_refused_and_change_nothing(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("careful", "EUR", "10.00").await;
    let other = app.create_wallet("other", "EUR", "0").await;
    let before = app.snapshot().await;
    let reply = app
        .post("/wallet/withdraw", json!({"id": id, "amount": "50.00"}))
        .await;
    reply.assert_problem(409, "insufficient_funds");
    assert_eq!(
        reply.body["detail"],
        format!("wallet {id} holds 10.00 EUR; cannot take 50.00 EUR")
    );
    app.post("/wallet/withdraw", json!({"id": id, "amount": "10.01"}))
        .await
        .assert_problem(409, "insufficient_funds");
    app.post(
        "/wallet/transfer",
        json!({"from_id": id, "to_id": other, "amount": "10.01"}),
    )
    .await
    .assert_problem(409, "insufficient_funds");
    assert_eq!(app.snapshot().await, before);
    let exact = app
        .post("/wallet/withdraw", json!({"id": id, "amount": "10.00"}))
        .await;
    assert_eq!(exact.body["balance"], "0.00");
}

async fn transfers_need_two_wallets_of_one_currency(backend: Backend) {
    let app = app(backend).await;
    let euro = app.create_wallet("e", "EUR", "10.00").await;
    let yen = app.create_wallet("y", "JPY", "10").await;
    let before = app.snapshot().await;
    app.post(
        "/wallet/transfer",
        json!({"from_id": euro, "to_id": yen, "amount": "1"}),
    )
    .await
    .assert_problem(422, "currency_mismatch");
    app.post(
        "/wallet/transfer",
        json!({"from_id": euro, "to_id": euro, "amount": "1"}),
    )
    .await
    .assert_problem(422, "invalid_request");
    app.post("/wallet/transfer", json!({"from_id": euro, "amount": "1"}))
        .await
        .assert_problem(422, "invalid_request");
    assert_eq!(app.snapshot().await, before);
}

async fn wrong_methods_are_405(backend: Backend) {
    let app = app(backend).await;
    let put = app
        .client
        .put(app.url("/wallet/deposit"))
        .send()
        .await
        .expect("PUT");
    crate::helpers::Reply::read(put)
        .await
        .assert_problem(405, "method_not_allowed");
    let get = app.get("/wallet/transfer").await;
    get.assert_problem(405, "method_not_allowed");
    let patch = app
        .client
        .patch(app.url("/wallet/"))
        .send()
        .await
        .expect("PATCH");
    crate::helpers::Reply::read(patch)
        .await
        .assert_problem(405, "method_not_allowed");
}

async fn bad_query_parameters_are_422(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("q", "EUR", "1").await;
    for path in [
        "/wallet/?limit=0",
        "/wallet/?limit=1001",
        "/wallet/?limit=abc",
        "/wallet/?after=-1",
    ] {
        app.get(path).await.assert_problem(422, "invalid_request");
    }
    app.get("/wallet/?currency=XYZ")
        .await
        .assert_problem(422, "unknown_currency");
    app.get(&format!("/wallet/{id}/transactions?before=x"))
        .await
        .assert_problem(422, "invalid_request");
    assert_eq!(app.get("/wallet/?limit=1000").await.status, 200);
}
