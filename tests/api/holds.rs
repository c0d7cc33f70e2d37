//! Holds (SPEC §9): reserve money now, capture or void it later, with expiry that takes effect at `expires_at`
//! whether or not the sweep has run. Every refusal is checked to have changed nothing.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::helpers::{Backend, Process, TestApp, TestDatabase, run_audit};

crate::on_both_backends!(
    placing_a_hold_lowers_available_but_not_balance_and_answers_201_with_its_location,
    a_hold_bigger_than_available_is_409_and_changes_nothing,
    withdrawals_and_transfers_are_limited_by_available_but_deposits_are_not,
    malformed_hold_requests_are_refused_and_change_nothing,
    capturing_part_of_a_hold_withdraws_it_and_releases_the_rest,
    capturing_into_another_wallet_is_a_transfer_of_the_same_currency,
    a_capture_refused_for_its_amount_target_or_currency_changes_nothing,
    voiding_releases_the_whole_hold_and_a_hold_is_finished_only_once,
    an_expired_hold_no_longer_counts_before_any_sweep_and_cannot_be_captured_or_voided,
    the_sweep_marks_due_holds_expired_and_keeps_held_equal_to_the_pending_holds,
    closing_a_wallet_with_a_pending_hold_is_409_until_it_is_released,
    holds_page_newest_first_and_filter_by_status,
    keyed_hold_capture_and_void_requests_replay_and_apply_once,
    audit_names_a_wallet_whose_held_disagrees_with_its_holds,
    thirty_concurrent_holds_of_ten_on_a_hundred_place_exactly_ten,
    twenty_racing_captures_and_voids_of_one_hold_let_exactly_one_win,
    mixed_concurrent_operations_keep_held_within_balance_and_audit_clean,
    random_sequences_of_operations_match_a_simple_model,
    kill_9_during_holds_and_captures_loses_no_acknowledged_operation,
    a_hold_finished_by_another_replica_is_refused_here_as_it_would_be_there,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn(backend).await.expect("backend configured")
}

/// Amounts as the API writes them, in cents (EUR in every test here).
fn cents(text: &Value) -> i64 {
    let text = text.as_str().expect("amount string");
    let (whole, fraction) = text.split_once('.').expect("two decimals");
    whole.parse::<i64>().expect("digits") * 100 + fraction.parse::<i64>().expect("digits")
}

async fn wallet(app: &TestApp, id: &str) -> Value {
    let reply = app.get(&format!("/wallet/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body
}

async fn place(app: &TestApp, wallet_id: &str, amount: &str) -> Value {
    let reply = app
        .post(
            "/wallet/holds",
            json!({"wallet_id": wallet_id, "amount": amount}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body
}

/// The snapshot of every wallet and ledger, plus every wallet's holds (the state a refusal must not change).
async fn snapshot(app: &TestApp) -> Value {
    let mut state = app.snapshot().await;
    let mut holds = Vec::new();
    for wallet in state["wallets"].as_array().expect("wallets").clone() {
        let id = wallet["id"].as_str().expect("id");
        holds.push(
            app.get(&format!("/wallet/{id}/holds?limit=1000"))
                .await
                .body,
        );
    }
    state["holds"] = json!(holds);
    state
}

/// Moves a pending hold's expiry into the past, as if its time had come (no sweep runs in tests).
async fn backdate(app: &TestApp, hold_id: &str) {
    app.execute(
        "update holds set expires_at = '2000-01-01T00:00:00+00:00' where id = cast($1 as bigint)",
        hold_id,
    )
    .await;
}

async fn placing_a_hold_lowers_available_but_not_balance_and_answers_201_with_its_location(
    backend: Backend,
) {
    let app = app(backend).await;
    let id = app.create_wallet("buyer", "EUR", "100.00").await;
    let reply = app
        .post(
            "/wallet/holds",
            json!({"wallet_id": id, "amount": 25.5, "expires_in": 3600}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let hold = &reply.body;
    let hold_id = hold["id"].as_str().expect("id");
    assert_eq!(
        reply.header("location"),
        Some(format!("/wallet/holds/{hold_id}").as_str())
    );
    assert_eq!(hold["wallet_id"], id.as_str());
    assert_eq!(hold["amount"], "25.50");
    assert_eq!(hold["status"], "pending");
    assert!(hold.get("captured").is_none());
    let created =
        chrono::DateTime::parse_from_rfc3339(hold["created_at"].as_str().expect("created"))
            .expect("rfc3339");
    let expires =
        chrono::DateTime::parse_from_rfc3339(hold["expires_at"].as_str().expect("expires"))
            .expect("rfc3339");
    assert!(
        (expires - created).num_seconds().abs_diff(3600) <= 1,
        "{hold}"
    );

    let w = wallet(&app, &id).await;
    assert_eq!(
        (&w["balance"], &w["held"], &w["available"]),
        (&json!("100.00"), &json!("25.50"), &json!("74.50"))
    );
    assert_eq!(
        app.get(&format!("/wallet/holds/{hold_id}")).await.body,
        *hold
    );
    // The default lifetime is a week.
    let default = place(&app, &id, "1.00").await;
    let created = chrono::DateTime::parse_from_rfc3339(default["created_at"].as_str().expect("c"))
        .expect("rfc3339");
    let expires = chrono::DateTime::parse_from_rfc3339(default["expires_at"].as_str().expect("e"))
        .expect("rfc3339");
    assert!((expires - created).num_seconds().abs_diff(604_800) <= 1);
    assert_eq!(wallet(&app, &id).await["available"], "73.50");
    // No ledger entry: a hold moves no money.
    assert_eq!(app.history(&id).await.len(), 1);
    assert_eq!(app.audit_findings().await, 0);
}

async fn a_hold_bigger_than_available_is_409_and_changes_nothing(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("buyer", "EUR", "100.00").await;
    place(&app, &id, "60.00").await;
    let before = snapshot(&app).await;
    let reply = app
        .post("/wallet/holds", json!({"wallet_id": id, "amount": "40.01"}))
        .await;
    reply.assert_problem(409, "insufficient_funds");
    assert_eq!(snapshot(&app).await, before);
    // Exactly what is available can be held.
    place(&app, &id, "40.00").await;
    assert_eq!(wallet(&app, &id).await["available"], "0.00");
}

async fn withdrawals_and_transfers_are_limited_by_available_but_deposits_are_not(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("buyer", "EUR", "100.00").await;
    let other = app.create_wallet("seller", "EUR", "0").await;
    place(&app, &id, "70.00").await;
    let before = snapshot(&app).await;
    app.post("/wallet/withdraw", json!({"id": id, "amount": "30.01"}))
        .await
        .assert_problem(409, "insufficient_funds");
    app.post(
        "/wallet/transfer",
        json!({"from_id": id, "to_id": other, "amount": "30.01"}),
    )
    .await
    .assert_problem(409, "insufficient_funds");
    assert_eq!(snapshot(&app).await, before);

    let deposit = app
        .post("/wallet/deposit", json!({"id": id, "amount": "5.00"}))
        .await;
    assert_eq!(deposit.status, 200, "{}", deposit.text);
    assert_eq!(
        (&deposit.body["held"], &deposit.body["available"]),
        (&json!("70.00"), &json!("35.00"))
    );
    let withdrawn = app
        .post("/wallet/withdraw", json!({"id": id, "amount": "35.00"}))
        .await;
    assert_eq!(withdrawn.status, 200, "{}", withdrawn.text);
    assert_eq!(
        (&withdrawn.body["balance"], &withdrawn.body["available"]),
        (&json!("70.00"), &json!("0.00"))
    );
    assert_eq!(app.audit_findings().await, 0);
}

async fn malformed_hold_requests_are_refused_and_change_nothing(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("buyer", "EUR", "100.00").await;
    let before = snapshot(&app).await;
    for (body, status, code) in [
        (
            json!({"wallet_id": id, "amount": "0"}),
            422,
            "invalid_amount",
        ),
        (
            json!({"wallet_id": id, "amount": "1.001"}),
            422,
            "invalid_amount",
        ),
        (
            json!({"wallet_id": id, "amount": "-1"}),
            422,
            "invalid_amount",
        ),
        (
            json!({"wallet_id": id, "amount": "99999999999999999999"}),
            422,
            "amount_too_large",
        ),
        (
            json!({"wallet_id": id, "amount": "1", "expires_in": 0}),
            422,
            "invalid_request",
        ),
        (
            json!({"wallet_id": id, "amount": "1", "expires_in": 2_592_001}),
            422,
            "invalid_request",
        ),
        (
            json!({"wallet_id": id, "amount": "1", "expires_in": 1.5}),
            422,
            "invalid_request",
        ),
        (
            json!({"wallet_id": id, "amount": "1", "color": "red"}),
            422,
            "invalid_request",
        ),
        (json!({"amount": "1"}), 422, "invalid_request"),
        (
            json!({"wallet_id": "999", "amount": "1"}),
            404,
            "wallet_not_found",
        ),
    ] {
        app.post("/wallet/holds", body)
            .await
            .assert_problem(status, code);
    }
    for path in [
        "/wallet/holds/999/capture",
        "/wallet/holds/999/void",
        "/wallet/holds/abc/void",
    ] {
        app.post(path, json!({}))
            .await
            .assert_problem(404, "not_found");
    }
    app.get("/wallet/holds/999")
        .await
        .assert_problem(404, "not_found");
    app.get("/wallet/999/holds")
        .await
        .assert_problem(404, "wallet_not_found");
    app.get(&format!("/wallet/{id}/holds?status=open"))
        .await
        .assert_problem(422, "invalid_request");
    let hold = place(&app, &id, "1.00").await;
    let hold_id = hold["id"].as_str().expect("id");
    let before_void = snapshot(&app).await;
    app.post_raw(&format!("/wallet/holds/{hold_id}/void"), None, "x")
        .await
        .assert_problem(415, "unsupported_media_type");
    app.post(
        &format!("/wallet/holds/{hold_id}/void"),
        json!({"why": "no"}),
    )
    .await
    .assert_problem(422, "invalid_request");
    assert_eq!(snapshot(&app).await, before_void);
    assert_ne!(before, before_void);
}

async fn capturing_part_of_a_hold_withdraws_it_and_releases_the_rest(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("buyer", "EUR", "100.00").await;
    let hold = place(&app, &id, "50.00").await;
    let hold_id = hold["id"].as_str().expect("id");
    let reply = app
        .post(
            &format!("/wallet/holds/{hold_id}/capture"),
            json!({"amount": "30.00"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = &reply.body;
    assert_eq!(body["hold"]["status"], "captured");
    assert_eq!(body["hold"]["captured"], "30.00");
    assert_eq!(body["hold"]["amount"], "50.00");
    assert_eq!(body["transaction"]["type"], "withdrawal");
    assert_eq!(body["transaction"]["amount"], "30.00");
    assert_eq!(body["transaction"]["balance_after"], "70.00");
    assert!(body.get("to").is_none());
    let w = wallet(&app, &id).await;
    assert_eq!(
        (&w["balance"], &w["held"], &w["available"]),
        (&json!("70.00"), &json!("0.00"), &json!("70.00"))
    );
    assert_eq!(
        app.get(&format!("/wallet/holds/{hold_id}")).await.body,
        body["hold"]
    );

    // One capture per hold: a second one, or a void after it, changes nothing.
    let before = snapshot(&app).await;
    app.post(&format!("/wallet/holds/{hold_id}/capture"), json!({}))
        .await
        .assert_problem(409, "hold_not_pending");
    app.post(&format!("/wallet/holds/{hold_id}/void"), json!({}))
        .await
        .assert_problem(409, "hold_not_pending");
    assert_eq!(snapshot(&app).await, before);

    // Without an amount, the whole hold is captured (no body at all is fine too).
    let whole = place(&app, &id, "20.00").await;
    let reply = app
        .post_raw(
            &format!(
                "/wallet/holds/{}/capture",
                whole["id"].as_str().expect("id")
            ),
            None,
            "",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["hold"]["captured"], "20.00");
    assert_eq!(wallet(&app, &id).await["balance"], "50.00");
    assert_eq!(app.audit_findings().await, 0);
}

async fn capturing_into_another_wallet_is_a_transfer_of_the_same_currency(backend: Backend) {
    let app = app(backend).await;
    let buyer = app.create_wallet("buyer", "EUR", "100.00").await;
    let seller = app.create_wallet("seller", "EUR", "1.00").await;
    let hold = place(&app, &buyer, "40.00").await;
    let reply = app
        .post(
            &format!("/wallet/holds/{}/capture", hold["id"].as_str().expect("id")),
            json!({"amount": "25.00", "to_id": seller}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["transaction"]["type"], "transfer_out");
    assert_eq!(
        reply.body["transaction"]["counterparty_id"],
        seller.as_str()
    );
    assert_eq!(reply.body["to"]["id"], seller.as_str());
    assert_eq!(reply.body["to"]["balance"], "26.00");
    assert_eq!(reply.body["to"]["transaction"]["type"], "transfer_in");
    let w = wallet(&app, &buyer).await;
    assert_eq!(
        (&w["balance"], &w["held"], &w["available"]),
        (&json!("75.00"), &json!("0.00"), &json!("75.00"))
    );
    assert_eq!(app.balance(&seller).await, "26.00");
    assert_eq!(app.audit_findings().await, 0);
}

async fn a_capture_refused_for_its_amount_target_or_currency_changes_nothing(backend: Backend) {
    let app = app(backend).await;
    let buyer = app.create_wallet("buyer", "EUR", "100.00").await;
    let dollars = app.create_wallet("usd", "USD", "0").await;
    let closed = app.create_wallet("gone", "EUR", "0").await;
    assert_eq!(app.delete(&format!("/wallet/{closed}")).await.status, 204);
    let hold = place(&app, &buyer, "40.00").await;
    let path = format!("/wallet/holds/{}/capture", hold["id"].as_str().expect("id"));
    let before = snapshot(&app).await;
    for (body, status, code) in [
        (json!({"amount": "40.01"}), 422, "invalid_amount"),
        (json!({"amount": "0"}), 422, "invalid_amount"),
        (json!({"amount": "1.001"}), 422, "invalid_amount"),
        (json!({"to_id": dollars}), 422, "currency_mismatch"),
        (json!({"to_id": buyer}), 422, "invalid_request"),
        (json!({"to_id": closed}), 404, "wallet_not_found"),
        (json!({"to_id": "999"}), 404, "wallet_not_found"),
    ] {
        app.post(&path, body).await.assert_problem(status, code);
    }
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(
        app.get(&format!(
            "/wallet/holds/{}",
            hold["id"].as_str().expect("id")
        ))
        .await
        .body["status"],
        "pending"
    );
}

async fn voiding_releases_the_whole_hold_and_a_hold_is_finished_only_once(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("buyer", "EUR", "100.00").await;
    let first = place(&app, &id, "30.00").await;
    let second = place(&app, &id, "20.00").await;
    // A void with no body at all.
    let reply = app
        .post_raw(
            &format!("/wallet/holds/{}/void", first["id"].as_str().expect("id")),
            None,
            "",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["status"], "voided");
    assert!(reply.body.get("captured").is_none());
    // And one with `{}`.
    let reply = app
        .post(
            &format!("/wallet/holds/{}/void", second["id"].as_str().expect("id")),
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let w = wallet(&app, &id).await;
    assert_eq!(
        (&w["balance"], &w["held"], &w["available"]),
        (&json!("100.00"), &json!("0.00"), &json!("100.00"))
    );
    let before = snapshot(&app).await;
    for hold in [&first, &second] {
        let hold_id = hold["id"].as_str().expect("id");
        app.post(&format!("/wallet/holds/{hold_id}/void"), json!({}))
            .await
            .assert_problem(409, "hold_not_pending");
        app.post(&format!("/wallet/holds/{hold_id}/capture"), json!({}))
            .await
            .assert_problem(409, "hold_not_pending");
    }
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(app.history(&id).await.len(), 1);
}

async fn an_expired_hold_no_longer_counts_before_any_sweep_and_cannot_be_captured_or_voided(
    backend: Backend,
) {
    let app = app(backend).await;
    let id = app.create_wallet("buyer", "EUR", "100.00").await;
    let expiring = place(&app, &id, "80.00").await;
    let hold_id = expiring["id"].as_str().expect("id");
    place(&app, &id, "5.00").await;
    backdate(&app, hold_id).await;

    let w = wallet(&app, &id).await;
    assert_eq!(
        (&w["held"], &w["available"]),
        (&json!("5.00"), &json!("95.00"))
    );
    assert_eq!(
        app.get(&format!("/wallet/holds/{hold_id}")).await.body["status"],
        "expired"
    );
    let before = snapshot(&app).await;
    app.post(&format!("/wallet/holds/{hold_id}/capture"), json!({}))
        .await
        .assert_problem(409, "hold_not_pending");
    app.post(&format!("/wallet/holds/{hold_id}/void"), json!({}))
        .await
        .assert_problem(409, "hold_not_pending");
    assert_eq!(snapshot(&app).await, before);

    // The released money can be spent at once, by a withdrawal or by a new hold.
    let reply = app
        .post("/wallet/withdraw", json!({"id": id, "amount": "90.00"}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        (
            &reply.body["balance"],
            &reply.body["held"],
            &reply.body["available"]
        ),
        (&json!("10.00"), &json!("5.00"), &json!("5.00"))
    );
    place(&app, &id, "5.00").await;
    assert_eq!(wallet(&app, &id).await["available"], "0.00");
    assert_eq!(app.audit_findings().await, 0);
}

async fn the_sweep_marks_due_holds_expired_and_keeps_held_equal_to_the_pending_holds(
    backend: Backend,
) {
    let app = app(backend).await;
    let id = app.create_wallet("buyer", "EUR", "100.00").await;
    let due = place(&app, &id, "10.00").await;
    place(&app, &id, "20.00").await;
    backdate(&app, due["id"].as_str().expect("id")).await;
    assert_eq!(app.store.expire_holds().await.expect("sweep"), 1);
    assert_eq!(app.store.expire_holds().await.expect("sweep"), 0);
    let rows = app
        .text_pairs(
            "select status, cast(held as text) from holds join wallets on wallets.id = holds.wallet_id \
             where holds.id = $1",
            due["id"].as_str().expect("id").parse().expect("int"),
        )
        .await;
    assert_eq!(rows, [("expired".to_owned(), "2000".to_owned())]);
    assert_eq!(wallet(&app, &id).await["held"], "20.00");
    assert_eq!(app.audit_findings().await, 0);
}

async fn closing_a_wallet_with_a_pending_hold_is_409_until_it_is_released(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("buyer", "EUR", "100.00").await;
    let pending = place(&app, &id, "10.00").await;
    let expired = place(&app, &id, "10.00").await;
    backdate(&app, expired["id"].as_str().expect("id")).await;
    let before = snapshot(&app).await;
    app.delete(&format!("/wallet/{id}"))
        .await
        .assert_problem(409, "wallet_has_holds");
    assert_eq!(snapshot(&app).await, before);
    let void = app
        .post(
            &format!("/wallet/holds/{}/void", pending["id"].as_str().expect("id")),
            json!({}),
        )
        .await;
    assert_eq!(void.status, 200);
    // Only the expired hold is left: it does not keep the wallet open.
    assert_eq!(app.delete(&format!("/wallet/{id}")).await.status, 204);
    app.get(&format!("/wallet/{id}"))
        .await
        .assert_problem(404, "wallet_not_found");
    // Holds of a closed wallet are not found, whether this process still remembers placing them or not.
    for hold in [&pending, &expired] {
        let hold_id = hold["id"].as_str().expect("id");
        for action in ["capture", "void"] {
            app.post(&format!("/wallet/holds/{hold_id}/{action}"), json!({}))
                .await
                .assert_problem(404, "not_found");
        }
    }
    assert_eq!(app.audit_findings().await, 0);
}

async fn holds_page_newest_first_and_filter_by_status(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("buyer", "EUR", "100.00").await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            place(&app, &id, "1.00").await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    app.post(&format!("/wallet/holds/{}/void", ids[0]), json!({}))
        .await;
    backdate(&app, &ids[1]).await;
    let first = app.get(&format!("/wallet/{id}/holds?limit=2")).await;
    let listed: Vec<&str> = first
        .body
        .as_array()
        .expect("array")
        .iter()
        .map(|h| h["id"].as_str().expect("id"))
        .collect();
    assert_eq!(listed, [ids[4].as_str(), ids[3].as_str()]);
    let link = first.header("link").expect("a next page");
    assert_eq!(
        link,
        format!(
            "</wallet/{id}/holds?limit=2&before={}>; rel=\"next\"",
            ids[3]
        )
    );
    let pending = app.get(&format!("/wallet/{id}/holds?status=pending")).await;
    assert_eq!(pending.body.as_array().expect("array").len(), 3);
    let expired = app.get(&format!("/wallet/{id}/holds?status=expired")).await;
    assert_eq!(expired.body[0]["id"], ids[1].as_str());
    let voided = app.get(&format!("/wallet/{id}/holds?status=voided")).await;
    assert_eq!(voided.body[0]["id"], ids[0].as_str());
    assert!(voided.header("link").is_none());
}

async fn keyed_hold_capture_and_void_requests_replay_and_apply_once(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("buyer", "EUR", "100.00").await;
    let body = json!({"wallet_id": id, "amount": "10.00"});
    let first = app
        .post_with_key("/wallet/holds", "hold-1", body.clone())
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = app.post_with_key("/wallet/holds", "hold-1", body).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.text, first.text);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(wallet(&app, &id).await["held"], "10.00");

    let hold_id = first.body["id"].as_str().expect("id");
    let capture = format!("/wallet/holds/{hold_id}/capture");
    let captured = app
        .post_with_key(&capture, "cap-1", json!({"amount": "4.00"}))
        .await;
    assert_eq!(captured.status, 200, "{}", captured.text);
    let replayed = app
        .post_with_key(&capture, "cap-1", json!({"amount": "4.00"}))
        .await;
    assert_eq!(replayed.text, captured.text);
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    app.post_with_key(&capture, "cap-1", json!({"amount": "5.00"}))
        .await
        .assert_problem(422, "idempotency_key_reused");
    assert_eq!(app.balance(&id).await, "96.00");

    let other = place(&app, &id, "3.00").await;
    let void = format!("/wallet/holds/{}/void", other["id"].as_str().expect("id"));
    let voided = app.post_with_key(&void, "void-1", json!({})).await;
    assert_eq!(voided.status, 200);
    let replayed = app.post_with_key(&void, "void-1", json!({})).await;
    assert_eq!(
        (replayed.status, replayed.text.as_str()),
        (200, voided.text.as_str())
    );
    assert_eq!(app.history(&id).await.len(), 2);
    assert_eq!(app.audit_findings().await, 0);
}

async fn audit_names_a_wallet_whose_held_disagrees_with_its_holds(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("buyer", "EUR", "100.00").await;
    place(&app, &id, "10.00").await;
    assert_eq!(app.audit_findings().await, 0);
    app.execute(
        "update wallets set held = held + 1 where id = cast($1 as bigint)",
        &id,
    )
    .await;
    assert_eq!(app.audit_findings().await, 1);
    let (clean, output) = run_audit(&app.database.url);
    assert!(!clean);
    assert!(output.contains(&format!("wallet {id}")), "{output}");
    assert!(output.contains("held"), "{output}");
}

async fn thirty_concurrent_holds_of_ten_on_a_hundred_place_exactly_ten(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("busy", "EUR", "100.00").await;
    let replies = futures::future::join_all(
        (0..30).map(|_| app.post("/wallet/holds", json!({"wallet_id": id, "amount": "10.00"}))),
    )
    .await;
    let placed = replies.iter().filter(|r| r.status == 201).count();
    for refused in replies.iter().filter(|r| r.status != 201) {
        refused.assert_problem(409, "insufficient_funds");
    }
    assert_eq!(placed, 10);
    let w = wallet(&app, &id).await;
    assert_eq!(
        (&w["held"], &w["available"]),
        (&json!("100.00"), &json!("0.00"))
    );
    assert_eq!(app.audit_findings().await, 0);
}

async fn twenty_racing_captures_and_voids_of_one_hold_let_exactly_one_win(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("busy", "EUR", "100.00").await;
    let seller = app.create_wallet("seller", "EUR", "0").await;
    let hold = place(&app, &id, "50.00").await;
    let hold_id = hold["id"].as_str().expect("id");
    let app = &app;
    let requests = (0..20).map(|n| {
        let (path, body) = match n % 4 {
            0 => (format!("/wallet/holds/{hold_id}/void"), json!({})),
            1 => (
                format!("/wallet/holds/{hold_id}/capture"),
                json!({"to_id": seller}),
            ),
            2 => (
                format!("/wallet/holds/{hold_id}/capture"),
                json!({"amount": "10.00"}),
            ),
            _ => (format!("/wallet/holds/{hold_id}/capture"), json!({})),
        };
        async move { app.post(&path, body).await }
    });
    let replies = futures::future::join_all(requests).await;
    let winners: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    for refused in replies.iter().filter(|r| r.status != 200) {
        refused.assert_problem(409, "hold_not_pending");
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let final_hold = app.get(&format!("/wallet/holds/{hold_id}")).await.body;
    let taken = match final_hold["status"].as_str() {
        Some("voided") => 0,
        Some("captured") => cents(&final_hold["captured"]),
        other => panic!("unexpected status {other:?}"),
    };
    let w = wallet(app, &id).await;
    assert_eq!(cents(&w["balance"]), 10_000 - taken);
    assert_eq!(w["held"], "0.00");
    assert_eq!(app.history(&id).await.len(), if taken > 0 { 2 } else { 1 });
    assert_eq!(app.audit_findings().await, 0);
}

async fn mixed_concurrent_operations_keep_held_within_balance_and_audit_clean(backend: Backend) {
    let app = app(backend).await;
    let mut wallets = Vec::new();
    for n in 0..3 {
        wallets.push(app.create_wallet(&format!("w{n}"), "EUR", "50.00").await);
    }
    let mut holds = Vec::new();
    for w in &wallets {
        for _ in 0..4 {
            holds.push(
                place(&app, w, "5.00").await["id"]
                    .as_str()
                    .expect("id")
                    .to_owned(),
            );
        }
    }
    let app = &app;
    let requests = (0..120).map(|n| {
        let w = &wallets[n % 3];
        let other = &wallets[(n + 1) % 3];
        let hold = &holds[n % holds.len()];
        // Holds 0–3 are the first wallet's, 4–7 the second's, 8–11 the third's: pay into the next wallet.
        let payee = &wallets[(n % holds.len() / 4 + 1) % 3];
        let (path, body) = match n % 8 {
            0 => (
                "/wallet/holds".to_owned(),
                json!({"wallet_id": w, "amount": "7.00"}),
            ),
            1 => (
                format!("/wallet/holds/{hold}/capture"),
                json!({"amount": "3.00"}),
            ),
            2 => (format!("/wallet/holds/{hold}/void"), json!({})),
            3 => (
                "/wallet/withdraw".to_owned(),
                json!({"id": w, "amount": "6.00"}),
            ),
            4 => (
                "/wallet/deposit".to_owned(),
                json!({"id": w, "amount": "2.00"}),
            ),
            5 => (
                "/wallet/transfer".to_owned(),
                json!({"from_id": w, "to_id": other, "amount": "4.00"}),
            ),
            6 => (
                format!("/wallet/holds/{hold}/capture"),
                json!({"to_id": payee}),
            ),
            _ => (
                "/wallet/withdraw".to_owned(),
                json!({"id": w, "amount": "1.00"}),
            ),
        };
        async move { app.post(&path, body).await }
    });
    let replies = futures::future::join_all(requests).await;
    for reply in &replies {
        if reply.status >= 300 {
            let code = reply.body["code"].as_str().unwrap_or_default();
            assert!(
                reply.status == 409 && ["insufficient_funds", "hold_not_pending"].contains(&code),
                "{}",
                reply.text
            );
        }
        for wallet in [&reply.body, &reply.body["wallet"], &reply.body["from"]] {
            if let Some(available) = wallet.get("available") {
                assert!(
                    !available.as_str().unwrap_or_default().starts_with('-'),
                    "{}",
                    reply.text
                );
            }
        }
    }
    for w in &wallets {
        let state = wallet(app, w).await;
        assert!(cents(&state["held"]) <= cents(&state["balance"]), "{state}");
        assert_eq!(
            cents(&state["available"]),
            cents(&state["balance"]) - cents(&state["held"])
        );
        let pending = app
            .get(&format!("/wallet/{w}/holds?status=pending"))
            .await
            .body;
        let sum: i64 = pending
            .as_array()
            .expect("array")
            .iter()
            .map(|h| cents(&h["amount"]))
            .sum();
        assert_eq!(sum, cents(&state["held"]));
    }
    assert_eq!(app.audit_findings().await, 0);
}

/// One step of the model-based test.
#[derive(Debug, Clone)]
enum Step {
    Hold(i64),
    Capture { hold: usize, cents: Option<i64> },
    Void(usize),
    Expire(usize),
    Withdraw(i64),
    Deposit(i64),
    Sweep,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        3 => (1_i64..6000).prop_map(Step::Hold),
        2 => (0_usize..8, proptest::option::of(1_i64..6000))
            .prop_map(|(hold, cents)| Step::Capture { hold, cents }),
        2 => (0_usize..8).prop_map(Step::Void),
        1 => (0_usize..8).prop_map(Step::Expire),
        2 => (1_i64..6000).prop_map(Step::Withdraw),
        1 => (1_i64..3000).prop_map(Step::Deposit),
        1 => Just(Step::Sweep),
    ];
    proptest::collection::vec(step, 1..16)
}

fn euros(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ModelStatus {
    Pending,
    Captured(i64),
    Voided,
    Expired,
}

/// Runs one sequence on a fresh wallet and checks the API against the model after every step.
async fn run_model(app: &TestApp, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let id = app.create_wallet("model", "EUR", "100.00").await;
    let mut balance = 10_000_i64;
    let mut holds: Vec<(String, i64, ModelStatus)> = Vec::new();
    for step in steps {
        let held: i64 = holds
            .iter()
            .filter(|h| h.2 == ModelStatus::Pending)
            .map(|h| h.1)
            .sum();
        match step {
            Step::Hold(amount) => {
                let reply = app
                    .post(
                        "/wallet/holds",
                        json!({"wallet_id": id, "amount": euros(amount)}),
                    )
                    .await;
                if amount <= balance - held {
                    prop_assert_eq!(reply.status, 201, "{}", reply.text);
                    holds.push((
                        reply.body["id"].as_str().unwrap_or_default().to_owned(),
                        amount,
                        ModelStatus::Pending,
                    ));
                } else {
                    prop_assert_eq!(reply.status, 409, "{}", reply.text);
                }
            }
            Step::Capture { hold, cents } => {
                let Some(entry) = holds.get_mut(hold) else {
                    continue;
                };
                let body = cents.map_or(json!({}), |c| json!({"amount": euros(c)}));
                let reply = app
                    .post(&format!("/wallet/holds/{}/capture", entry.0), body)
                    .await;
                let take = cents.unwrap_or(entry.1);
                if entry.2 != ModelStatus::Pending {
                    prop_assert_eq!(reply.status, 409, "{}", reply.text);
                } else if take > entry.1 {
                    prop_assert_eq!(reply.status, 422, "{}", reply.text);
                } else {
                    prop_assert_eq!(reply.status, 200, "{}", reply.text);
                    entry.2 = ModelStatus::Captured(take);
                    balance -= take;
                }
            }
            Step::Void(hold) => {
                let Some(entry) = holds.get_mut(hold) else {
                    continue;
                };
                let reply = app
                    .post(&format!("/wallet/holds/{}/void", entry.0), json!({}))
                    .await;
                if entry.2 == ModelStatus::Pending {
                    prop_assert_eq!(reply.status, 200, "{}", reply.text);
                    entry.2 = ModelStatus::Voided;
                } else {
                    prop_assert_eq!(reply.status, 409, "{}", reply.text);
                }
            }
            Step::Expire(hold) => {
                let Some(entry) = holds.get_mut(hold) else {
                    continue;
                };
                if entry.2 == ModelStatus::Pending {
                    backdate(app, &entry.0).await;
                    entry.2 = ModelStatus::Expired;
                }
            }
            Step::Withdraw(amount) => {
                let reply = app
                    .post(
                        "/wallet/withdraw",
                        json!({"id": id, "amount": euros(amount)}),
                    )
                    .await;
                if amount <= balance - held {
                    prop_assert_eq!(reply.status, 200, "{}", reply.text);
                    balance -= amount;
                } else {
                    prop_assert_eq!(reply.status, 409, "{}", reply.text);
                }
            }
            Step::Deposit(amount) => {
                let reply = app
                    .post(
                        "/wallet/deposit",
                        json!({"id": id, "amount": euros(amount)}),
                    )
                    .await;
                prop_assert_eq!(reply.status, 200, "{}", reply.text);
                balance += amount;
            }
            Step::Sweep => {
                app.store
                    .expire_holds()
                    .await
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
        }
        let held: i64 = holds
            .iter()
            .filter(|h| h.2 == ModelStatus::Pending)
            .map(|h| h.1)
            .sum();
        let state = wallet(app, &id).await;
        prop_assert_eq!(cents(&state["balance"]), balance);
        prop_assert_eq!(cents(&state["held"]), held);
        prop_assert_eq!(cents(&state["available"]), balance - held);
        for (hold_id, _, status) in &holds {
            let hold = app.get(&format!("/wallet/holds/{hold_id}")).await.body;
            let expected = match status {
                ModelStatus::Pending => "pending",
                ModelStatus::Captured(_) => "captured",
                ModelStatus::Voided => "voided",
                ModelStatus::Expired => "expired",
            };
            prop_assert_eq!(hold["status"].as_str(), Some(expected));
            if let ModelStatus::Captured(c) = status {
                prop_assert_eq!(cents(&hold["captured"]), *c);
            }
        }
        prop_assert_eq!(app.audit_findings().await, 0);
    }
    Ok(())
}

async fn random_sequences_of_operations_match_a_simple_model(backend: Backend) {
    let app = app(backend).await;
    let handle = tokio::runtime::Handle::current();
    let config = proptest::test_runner::Config {
        cases: 12,
        max_shrink_iters: 64,
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    };
    let mut runner = proptest::test_runner::TestRunner::new(config);
    let result = tokio::task::block_in_place(|| {
        runner.run(&steps(), |steps| handle.block_on(run_model(&app, steps)))
    });
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

async fn kill_9_during_holds_and_captures_loses_no_acknowledged_operation(backend: Backend) {
    let database = TestDatabase::create(backend).await.expect("database");
    let mut process = Process::start(&database.url, &[]).await;
    let client = crate::helpers::admin_client();
    let id = process.create_wallet("crash").await;
    let funded = client
        .post(process.url("/wallet/deposit"))
        .json(&json!({"id": id, "amount": "1000000.00"}))
        .send()
        .await
        .expect("deposit");
    assert!(funded.status().is_success());

    // Writers place a hold, then capture half of it or void it, remembering each acknowledged answer.
    let acknowledged = Arc::new(Mutex::new(
        Vec::<(String, &'static str, Option<String>)>::new(),
    ));
    let mut writers = tokio::task::JoinSet::new();
    for n in 0..6 {
        let (client, base, id, acknowledged) = (
            client.clone(),
            process.url(""),
            id.clone(),
            acknowledged.clone(),
        );
        writers.spawn(async move {
            loop {
                let Ok(reply) = client
                    .post(format!("{base}/wallet/holds"))
                    .json(&json!({"wallet_id": id, "amount": "1.00"}))
                    .send()
                    .await
                else {
                    break;
                };
                let Ok(hold) = reply.json::<Value>().await else {
                    break;
                };
                let Some(hold_id) = hold["id"].as_str().map(str::to_owned) else {
                    continue;
                };
                acknowledged
                    .lock()
                    .await
                    .push((hold_id.clone(), "pending", None));
                let (path, body, status) = if n % 2 == 0 {
                    ("capture", json!({"amount": "0.50"}), "captured")
                } else {
                    ("void", json!({}), "voided")
                };
                let Ok(reply) = client
                    .post(format!("{base}/wallet/holds/{hold_id}/{path}"))
                    .json(&body)
                    .send()
                    .await
                else {
                    break;
                };
                if reply.status().is_success()
                    && let Ok(answer) = reply.json::<Value>().await
                {
                    let entry = answer["transaction"]["id"].as_str().map(str::to_owned);
                    acknowledged.lock().await.push((hold_id, status, entry));
                }
            }
        });
    }
    while acknowledged.lock().await.len() < 120 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    process.child.kill().expect("kill -9");
    process.child.wait().expect("reap");
    while writers.join_next().await.is_some() {}

    let restarted = Process::start(&database.url, &[]).await;
    let history: Vec<Value> = client
        .get(restarted.url(&format!("/wallet/{id}/transactions?limit=1000")))
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("json");
    let entries: std::collections::HashSet<&str> =
        history.iter().filter_map(|e| e["id"].as_str()).collect();
    for (hold_id, status, entry) in acknowledged.lock().await.iter() {
        let hold: Value = client
            .get(restarted.url(&format!("/wallet/holds/{hold_id}")))
            .send()
            .await
            .expect("hold")
            .json()
            .await
            .expect("json");
        if *status == "pending" {
            assert_ne!(
                hold["status"],
                Value::Null,
                "acknowledged hold {hold_id} is missing"
            );
        } else {
            assert_eq!(hold["status"], *status, "hold {hold_id} lost its {status}");
        }
        if let Some(entry) = entry {
            assert!(
                entries.contains(entry.as_str()),
                "acknowledged entry {entry} is missing"
            );
        }
    }
    drop(restarted);
    let (clean, output) = run_audit(&database.url);
    assert!(clean, "audit after kill -9: {output}");
}

/// A replica remembers the wallet and amount of the holds it placed, so that capturing or voiding one reads
/// nothing first; a hold another replica finished must still be refused as finished (409), whatever amount is
/// asked, and a pending one asked for more than it reserved is still 422.
async fn a_hold_finished_by_another_replica_is_refused_here_as_it_would_be_there(backend: Backend) {
    let app = app(backend).await;
    let other = Process::start(&app.database.url, &[]).await;
    let client = crate::helpers::admin_client();
    let id = app.create_wallet("buyer", "EUR", "100.00").await;
    let finished = place(&app, &id, "30.00").await;
    let pending = place(&app, &id, "20.00").await;
    let finished_id = finished["id"].as_str().expect("id");
    let voided = client
        .post(other.url(&format!("/wallet/holds/{finished_id}/void")))
        .json(&json!({}))
        .send()
        .await
        .expect("void on the other replica");
    assert_eq!(voided.status(), 200);
    let before = snapshot(&app).await;
    for body in [
        json!({}),
        json!({"amount": "30.01"}),
        json!({"amount": "5.00"}),
    ] {
        app.post(&format!("/wallet/holds/{finished_id}/capture"), body)
            .await
            .assert_problem(409, "hold_not_pending");
    }
    app.post(&format!("/wallet/holds/{finished_id}/void"), json!({}))
        .await
        .assert_problem(409, "hold_not_pending");
    let pending_id = pending["id"].as_str().expect("id");
    app.post(
        &format!("/wallet/holds/{pending_id}/capture"),
        json!({"amount": "20.01"}),
    )
    .await
    .assert_problem(422, "invalid_amount");
    assert_eq!(snapshot(&app).await, before);
    let captured = app
        .post(&format!("/wallet/holds/{pending_id}/capture"), json!({}))
        .await;
    assert_eq!(captured.status, 200, "{}", captured.text);
    let w = wallet(&app, &id).await;
    assert_eq!(
        (&w["balance"], &w["held"]),
        (&json!("80.00"), &json!("0.00"))
    );
    assert_eq!(app.audit_findings().await, 0);
}
