//! Events (SPEC §11): the outbox every change writes in its own transaction, and the feed that serves it in a
//! safe order (docs/adr/0120-events-outbox-and-feed.md).

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

crate::on_both_backends!(a_deposit_appears_in_the_feed_as_transaction_created,);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn(backend).await.expect("backend configured")
}

/// The numeric id of an event.
fn id_of(event: &Value) -> i64 {
    event["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("numeric id")
}

fn type_of(event: &Value) -> &str {
    event["type"].as_str().expect("type")
}

/// Every event after `after`, following the feed's cursor page by page (no waiting).
async fn feed_after(app: &TestApp, mut after: i64) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let reply = app
            .get(&format!("/wallet/events?after={after}&limit=1000"))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let page = reply.body.as_array().expect("array").clone();
        let Some(last) = page.last() else { return all };
        after = last["id"]
            .as_str()
            .expect("id")
            .parse()
            .expect("numeric id");
        all.extend(page);
    }
}

/// Waits (long-polling) until the feed has served at least `n` events after `after`.
async fn feed_until(app: &TestApp, after: i64, n: usize) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut cursor = after;
    for _ in 0..60 {
        let reply = app
            .get(&format!("/wallet/events?after={cursor}&limit=1000&wait=5"))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        for event in reply.body.as_array().expect("array") {
            cursor = event["id"]
                .as_str()
                .expect("id")
                .parse()
                .expect("numeric id");
            all.push(event.clone());
        }
        if all.len() >= n {
            return all;
        }
    }
    panic!(
        "the feed served {} events, expected {n}: {all:?}",
        all.len()
    );
}

async fn a_deposit_appears_in_the_feed_as_transaction_created(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("alice", "EUR", "10.00").await;
    let opened = feed_until(&app, 0, 2).await;
    let types: Vec<&str> = opened.iter().map(type_of).collect();
    assert_eq!(types, ["wallet.opened", "transaction.created"]);
    assert_eq!(opened[0]["data"]["balance"], "10.00");
    assert_eq!(opened[0]["wallet_id"], id.as_str());
    let cursor = id_of(&opened[1]);

    let reply = app
        .post("/wallet/deposit", json!({"id": id, "amount": "5.00"}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let events = feed_until(&app, cursor, 1).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event["type"], "transaction.created");
    assert_eq!(event["wallet_id"], id.as_str());
    assert_eq!(event["data"], reply.body["transaction"]);
    assert!(event["created_at"].is_string());
    assert_eq!(feed_after(&app, 0).await.len(), 3);
}
