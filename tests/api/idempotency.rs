//! `Idempotency-Key`: executed once, replayed byte for byte, refused when reused for another request.

use serde_json::json;

use crate::helpers::{Backend, TestApp};

crate::on_both_backends!(
    a_repeated_key_replays_the_stored_answer_and_changes_nothing,
    a_key_reused_with_another_body_is_422,
    a_key_still_in_flight_is_409,
    a_declined_withdrawal_replays_its_409_after_a_deposit,
    a_declined_transfer_or_unknown_wallet_replays,
    a_validation_failure_frees_its_key,
    keys_must_be_printable_ascii_up_to_255,
    twenty_racing_requests_with_one_key_apply_once,
);

// The open mode keeps the original contract.
crate::also_with_auth_off!(
    a_repeated_key_replays_the_stored_answer_and_changes_nothing,
    a_key_reused_with_another_body_is_422,
    a_key_still_in_flight_is_409,
    a_declined_withdrawal_replays_its_409_after_a_deposit,
    a_declined_transfer_or_unknown_wallet_replays,
    a_validation_failure_frees_its_key,
    keys_must_be_printable_ascii_up_to_255,
    twenty_racing_requests_with_one_key_apply_once,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn(backend).await.expect("backend configured")
}

async fn a_repeated_key_replays_the_stored_answer_and_changes_nothing(backend: Backend) {
    let app = app(backend).await;
    let create = json!({"owner": "idem", "currency": "EUR", "initial_balance": "5"});
    let first = app
        .post_with_key("/wallet/", "create-1", create.clone())
        .await;
    assert_eq!(first.status, 201);
    let again = app.post_with_key("/wallet/", "create-1", create).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.text, first.text);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert!(first.header("idempotent-replayed").is_none());
    assert_eq!(
        app.get("/wallet/").await.body.as_array().map(Vec::len),
        Some(1)
    );

    let id = first.body["id"].as_str().expect("id").to_owned();
    let other = app.create_wallet("other", "EUR", "0").await;
    for (path, body) in [
        ("/wallet/deposit", json!({"id": id, "amount": "10"})),
        ("/wallet/withdraw", json!({"id": id, "amount": "3"})),
        (
            "/wallet/transfer",
            json!({"from_id": id, "to_id": other, "amount": "2"}),
        ),
    ] {
        let key = format!("key-{path}");
        let first = app.post_with_key(path, &key, body.clone()).await;
        assert_eq!(first.status, 200, "{}", first.text);
        let before = app.snapshot().await;
        let replay = app.post_with_key(path, &key, body).await;
        assert_eq!((replay.status, &replay.text), (200, &first.text));
        assert_eq!(replay.header("idempotent-replayed"), Some("true"));
        assert_eq!(
            app.snapshot().await,
            before,
            "{path} replay changed something"
        );
    }
    assert_eq!(app.balance(&id).await, "10.00");
    assert_eq!(app.balance(&other).await, "2.00");
}

async fn a_key_reused_with_another_body_is_422(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("reuse", "EUR", "0").await;
    app.post_with_key("/wallet/deposit", "k", json!({"id": id, "amount": "1"}))
        .await;
    let before = app.snapshot().await;
    app.post_with_key("/wallet/deposit", "k", json!({"id": id, "amount": "2"}))
        .await
        .assert_problem(422, "idempotency_key_reused");
    app.post_with_key("/wallet/withdraw", "k", json!({"id": id, "amount": "1"}))
        .await
        .assert_problem(422, "idempotency_key_reused");
    assert_eq!(app.snapshot().await, before);
}

async fn a_key_still_in_flight_is_409(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("inflight", "EUR", "0").await;
    let body = json!({"id": id, "amount": "1"});
    // Claim the key as a request that is still running would have: same fingerprint, no response yet.
    let claimed = app
        .post_with_key("/wallet/deposit", "running", body.clone())
        .await;
    assert_eq!(claimed.status, 200);
    app.execute(
        "update idempotency_keys set status = null, body = null where key = $1",
        &crate::helpers::admin_scoped("running"),
    )
    .await;
    let reply = app.post_with_key("/wallet/deposit", "running", body).await;
    reply.assert_problem(409, "idempotency_key_in_use");
    assert_eq!(app.balance(&id).await, "1.00");
}

/// A decline is the request's answer for good: a retry after the wallet could pay still gets the 409.
async fn a_declined_withdrawal_replays_its_409_after_a_deposit(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("retry", "EUR", "0").await;
    let body = json!({"id": id, "amount": "5"});
    let declined = app
        .post_with_key("/wallet/withdraw", "later", body.clone())
        .await;
    declined.assert_problem(409, "insufficient_funds");
    app.post("/wallet/deposit", json!({"id": id, "amount": "5"}))
        .await;
    let before = app.snapshot().await;
    let retried = app.post_with_key("/wallet/withdraw", "later", body).await;
    retried.assert_problem(409, "insufficient_funds");
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    assert_eq!(retried.text, declined.text, "the very same answer");
    assert_eq!(app.snapshot().await, before, "the replay changed nothing");
    assert_eq!(app.balance(&id).await, "5.00");
}

/// Declines by the ledger of every kind replay: an unknown wallet and a currency mismatch too.
async fn a_declined_transfer_or_unknown_wallet_replays(backend: Backend) {
    let app = app(backend).await;
    let eur = app.create_wallet("eur", "EUR", "10").await;
    let usd = app.create_wallet("usd", "USD", "10").await;
    let body = json!({"from_id": eur, "to_id": usd, "amount": "1"});
    app.post_with_key("/wallet/transfer", "mismatch", body.clone())
        .await
        .assert_problem(422, "currency_mismatch");
    let again = app
        .post_with_key("/wallet/transfer", "mismatch", body)
        .await;
    again.assert_problem(422, "currency_mismatch");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let unknown = json!({"id": "999", "amount": "1"});
    app.post_with_key("/wallet/deposit", "nobody", unknown.clone())
        .await
        .assert_problem(404, "wallet_not_found");
    let again = app
        .post_with_key("/wallet/deposit", "nobody", unknown)
        .await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    again.assert_problem(404, "wallet_not_found");
}

/// A request refused before it reached the ledger (bad content) frees its key for a corrected retry.
async fn a_validation_failure_frees_its_key(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("retry", "EUR", "0").await;
    app.post_with_key(
        "/wallet/deposit",
        "fix-me",
        json!({"id": id, "amount": "1.234"}),
    )
    .await
    .assert_problem(422, "invalid_amount");
    let fixed = app
        .post_with_key(
            "/wallet/deposit",
            "fix-me",
            json!({"id": id, "amount": "1.23"}),
        )
        .await;
    assert_eq!(fixed.status, 200, "{}", fixed.text);
    assert_eq!(fixed.header("idempotent-replayed"), None);
    assert_eq!(app.balance(&id).await, "1.23");
}

async fn keys_must_be_printable_ascii_up_to_255(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("keys", "EUR", "0").await;
    let before = app.snapshot().await;
    let body = json!({"id": id, "amount": "1"});
    for key in ["".to_owned(), "k".repeat(256), "tab\there".to_owned()] {
        let request = app
            .client
            .post(app.url("/wallet/deposit"))
            .header("Idempotency-Key", key.as_bytes())
            .json(&body);
        let reply = crate::helpers::Reply::read(request.send().await.expect("POST")).await;
        reply.assert_problem(422, "invalid_request");
    }
    assert_eq!(app.snapshot().await, before);
    assert_eq!(
        app.post_with_key("/wallet/deposit", &"k".repeat(255), body)
            .await
            .status,
        200
    );
}

async fn twenty_racing_requests_with_one_key_apply_once(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("race", "EUR", "0").await;
    let body = json!({"id": id, "amount": "7.00"});
    let replies = futures::future::join_all(
        (0..20).map(|_| app.post_with_key("/wallet/deposit", "same-key", body.clone())),
    )
    .await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    for reply in &replies {
        if reply.status != 200 {
            reply.assert_problem(409, "idempotency_key_in_use");
        }
    }
    assert!(ok >= 1, "at least the first succeeds");
    let first_text = &replies
        .iter()
        .find(|r| r.status == 200)
        .expect("a success")
        .text;
    assert!(
        replies
            .iter()
            .filter(|r| r.status == 200)
            .all(|r| &r.text == first_text)
    );
    assert_eq!(app.balance(&id).await, "7.00");
    assert_eq!(
        app.history(&id).await.len(),
        2,
        "one opening and one deposit"
    );
}
