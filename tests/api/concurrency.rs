//! Concurrent requests behave like some serial order: nothing lost, no overdraft, no deadlock.

use rand::Rng;
use serde_json::json;

use crate::helpers::{Backend, TestApp};

crate::on_both_backends!(
    two_hundred_concurrent_deposits_lose_nothing,
    two_hundred_concurrent_withdrawals_never_overdraw,
    random_concurrent_transfers_keep_the_total_and_never_deadlock,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn(backend).await.expect("backend configured")
}

async fn two_hundred_concurrent_deposits_lose_nothing(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("busy", "EUR", "0").await;
    let replies = futures::future::join_all(
        (0..200).map(|_| app.post("/wallet/deposit", json!({"id": id, "amount": "1.01"}))),
    )
    .await;
    assert!(
        replies.iter().all(|r| r.status == 200),
        "{:?}",
        replies.iter().find(|r| r.status != 200)
    );
    assert_eq!(app.balance(&id).await, "202.00");
    assert_eq!(app.history(&id).await.len(), 201);
    assert_eq!(app.audit_findings().await, 0);
}

async fn two_hundred_concurrent_withdrawals_never_overdraw(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("drained", "EUR", "100.00").await;
    let replies = futures::future::join_all(
        (0..200).map(|_| app.post("/wallet/withdraw", json!({"id": id, "amount": "1.00"}))),
    )
    .await;
    let successes = replies.iter().filter(|r| r.status == 200).count();
    for refused in replies.iter().filter(|r| r.status != 200) {
        refused.assert_problem(409, "insufficient_funds");
    }
    assert_eq!(successes, 100);
    assert_eq!(app.balance(&id).await, "0.00");
    assert_eq!(app.audit_findings().await, 0);
}

async fn random_concurrent_transfers_keep_the_total_and_never_deadlock(backend: Backend) {
    let app = app(backend).await;
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(app.create_wallet(&format!("w{n}"), "EUR", "50.00").await);
    }
    let transfers: Vec<_> = (0..300)
        .map(|_| {
            let mut rng = rand::rng();
            let from = rng.random_range(0..ids.len());
            let to = (from + rng.random_range(1..ids.len())) % ids.len();
            let cents = rng.random_range(1..3000);
            json!({"from_id": ids[from], "to_id": ids[to], "amount": format!("{}.{:02}", cents / 100, cents % 100)})
        })
        .collect();
    let replies = futures::future::join_all(
        transfers
            .into_iter()
            .map(|body| app.post("/wallet/transfer", body)),
    )
    .await;
    for reply in &replies {
        if reply.status != 200 {
            reply.assert_problem(409, "insufficient_funds");
        }
    }
    assert!(replies.iter().any(|r| r.status == 200));
    let mut total_cents = 0_i64;
    for id in &ids {
        let balance = app.balance(id).await;
        let cents: i64 = balance.replace('.', "").parse().expect("balance digits");
        assert!(cents >= 0, "wallet {id} went negative: {balance}");
        total_cents += cents;
    }
    assert_eq!(total_cents, 10 * 5000, "money was created or destroyed");
    assert_eq!(app.audit_findings().await, 0);
}
