//! Concurrent requests behave like some serial order: nothing lost, no overdraft, no deadlock.

use rand::Rng;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

crate::on_both_backends!(
    two_hundred_concurrent_deposits_lose_nothing,
    two_hundred_concurrent_withdrawals_never_overdraw,
    random_concurrent_transfers_keep_the_total_and_never_deadlock,
    concurrent_mixed_operations_on_one_wallet_each_answer_their_own_balance,
    concurrent_keyed_writes_across_wallets_keep_their_own_answers_and_replay_them,
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

async fn concurrent_mixed_operations_on_one_wallet_each_answer_their_own_balance(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("hot", "EUR", "5.00").await;
    // Deposits of 1.00 and withdrawals of 3.00, racing: PostgreSQL coalesces queued ones into one transaction.
    let requests = (0..150).map(|n| {
        let (route, amount) = if n % 3 == 0 {
            ("/wallet/withdraw", "3.00")
        } else {
            ("/wallet/deposit", "1.00")
        };
        app.post(route, json!({"id": id, "amount": amount}))
    });
    let replies = futures::future::join_all(requests).await;
    let mut expected_cents = 500_i64;
    let mut entry_ids = std::collections::HashSet::new();
    for reply in &replies {
        if reply.status != 200 {
            reply.assert_problem(409, "insufficient_funds");
            continue;
        }
        let entry = &reply.body["transaction"];
        assert_eq!(
            reply.body["balance"], entry["balance_after"],
            "an answer shows another operation's balance"
        );
        assert!(entry_ids.insert(entry["id"].as_str().expect("entry id").to_owned()));
        let cents: i64 = entry["amount"]
            .as_str()
            .expect("amount")
            .replace('.', "")
            .parse()
            .expect("digits");
        expected_cents += if entry["type"] == "withdrawal" {
            -cents
        } else {
            cents
        };
    }
    let balance = app.balance(&id).await;
    assert_eq!(
        balance.replace('.', "").parse::<i64>().expect("digits"),
        expected_cents
    );
    assert_eq!(app.history(&id).await.len(), 1 + entry_ids.len());
    assert_eq!(app.audit_findings().await, 0);
}

async fn concurrent_keyed_writes_across_wallets_keep_their_own_answers_and_replay_them(
    backend: Backend,
) {
    let app = app(backend).await;
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(app.create_wallet(&format!("k{n}"), "EUR", "2.00").await);
    }
    // Keyed deposits and withdrawals racing across six wallets (group commit batches them across wallets), a
    // few into a wallet that does not exist: each answers for itself, and its key replays that answer.
    let requests: Vec<(String, &str, Value)> = (0..180)
        .map(|n| {
            let route = if n % 4 == 3 {
                "/wallet/withdraw"
            } else {
                "/wallet/deposit"
            };
            let id = if n % 45 == 44 {
                "999999999".to_owned()
            } else {
                ids[n % ids.len()].clone()
            };
            (
                format!("race-{n}"),
                route,
                json!({"id": id, "amount": "1.50"}),
            )
        })
        .collect();
    let first = futures::future::join_all(
        requests
            .iter()
            .map(|(key, route, body)| app.post_with_key(route, key, body.clone())),
    )
    .await;
    let mut moved_cents: std::collections::HashMap<String, i64> = Default::default();
    for ((_, route, body), reply) in requests.iter().zip(&first) {
        match reply.status {
            200 => {
                let entry = &reply.body["transaction"];
                assert_eq!(reply.body["balance"], entry["balance_after"]);
                assert_eq!(reply.body["id"], body["id"]);
                let sign = if *route == "/wallet/withdraw" { -1 } else { 1 };
                let wallet = body["id"].as_str().expect("id").to_owned();
                *moved_cents.entry(wallet).or_default() += sign * 150;
            }
            404 => reply.assert_problem(404, "wallet_not_found"),
            _ => reply.assert_problem(409, "insufficient_funds"),
        }
    }
    assert!(first.iter().any(|r| r.status == 404));
    let again = futures::future::join_all(
        requests
            .iter()
            .map(|(key, route, body)| app.post_with_key(route, key, body.clone())),
    )
    .await;
    for (reply, replayed) in first.iter().zip(&again) {
        assert_eq!(
            (reply.status, &reply.text),
            (replayed.status, &replayed.text)
        );
    }
    for id in &ids {
        let cents: i64 = app
            .balance(id)
            .await
            .replace('.', "")
            .parse()
            .expect("digits");
        assert_eq!(
            cents,
            200 + moved_cents.get(id).copied().unwrap_or(0),
            "wallet {id}"
        );
        assert!(cents >= 0);
    }
    assert_eq!(app.audit_findings().await, 0);
}
