//! References, descriptions and metadata (SPEC §10): stored on the entries and holds of every money-moving POST,
//! returned wherever those appear, refused with 422 when they break a rule (changing nothing), and part of the
//! idempotency fingerprint.

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};

crate::on_both_backends!(
    every_money_moving_post_stores_and_returns_its_reference_description_and_metadata,
    each_memo_rule_is_refused_with_422_on_every_post_and_changes_nothing,
    a_repeated_key_with_another_memo_is_a_reused_key_not_a_replay,
    concurrent_deposits_on_one_wallet_each_keep_their_own_memo,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn(backend).await.expect("backend configured")
}

fn memo(reference: &str) -> Value {
    json!({
        "reference": reference,
        "description": "rent, \"May\"\nsecond line",
        "metadata": {"order": reference, "ünïcode": "✓"},
    })
}

fn with(mut body: Value, extra: &Value) -> Value {
    for (key, value) in extra.as_object().expect("object") {
        body[key] = value.clone();
    }
    body
}

#[track_caller]
fn assert_memo(item: &Value, reference: &str) {
    assert_eq!(item["reference"], reference, "{item}");
    assert_eq!(item["description"], "rent, \"May\"\nsecond line", "{item}");
    assert_eq!(
        item["metadata"],
        json!({"order": reference, "ünïcode": "✓"}),
        "{item}"
    );
}

async fn every_money_moving_post_stores_and_returns_its_reference_description_and_metadata(
    backend: Backend,
) {
    let app = app(backend).await;
    let opened = app
        .post(
            "/wallet/",
            with(
                json!({"owner": "memo", "currency": "EUR", "initial_balance": "100.00"}),
                &memo("open-1"),
            ),
        )
        .await;
    assert_eq!(opened.status, 201, "{}", opened.text);
    assert_memo(&opened.body["transaction"], "open-1");
    let a = opened.body["id"].as_str().expect("id").to_owned();
    let b = app.create_wallet("memo", "EUR", "0").await;

    let deposit = app
        .post(
            "/wallet/deposit",
            with(json!({"id": a, "amount": "10.00"}), &memo("dep-1")),
        )
        .await;
    assert_eq!(deposit.status, 200, "{}", deposit.text);
    assert_memo(&deposit.body["transaction"], "dep-1");
    let withdrawal = app
        .post(
            "/wallet/withdraw",
            with(json!({"id": a, "amount": "5.00"}), &memo("wd-1")),
        )
        .await;
    assert_eq!(withdrawal.status, 200, "{}", withdrawal.text);
    assert_memo(&withdrawal.body["transaction"], "wd-1");
    let transfer = app
        .post(
            "/wallet/transfer",
            with(
                json!({"from_id": a, "to_id": b, "amount": "1.00"}),
                &memo("tr-1"),
            ),
        )
        .await;
    assert_eq!(transfer.status, 200, "{}", transfer.text);
    assert_memo(&transfer.body["from"]["transaction"], "tr-1");
    assert_memo(&transfer.body["to"]["transaction"], "tr-1");

    let hold = app
        .post(
            "/wallet/holds",
            with(json!({"wallet_id": a, "amount": "3.00"}), &memo("hold-1")),
        )
        .await;
    assert_eq!(hold.status, 201, "{}", hold.text);
    assert_memo(&hold.body, "hold-1");
    let hold_id = hold.body["id"].as_str().expect("id").to_owned();
    let fetched = app.get(&format!("/wallet/holds/{hold_id}")).await;
    assert_memo(&fetched.body, "hold-1");
    let listed = app.get(&format!("/wallet/{a}/holds")).await;
    assert_memo(&listed.body[0], "hold-1");
    let capture = app
        .post(
            &format!("/wallet/holds/{hold_id}/capture"),
            with(json!({"amount": "2.00"}), &memo("cap-1")),
        )
        .await;
    assert_eq!(capture.status, 200, "{}", capture.text);
    assert_memo(&capture.body["transaction"], "cap-1");
    assert_memo(&capture.body["hold"], "hold-1");

    let second = app
        .post("/wallet/holds", json!({"wallet_id": a, "amount": "1.00"}))
        .await;
    let second_id = second.body["id"].as_str().expect("id").to_owned();
    assert!(second.body.get("reference").is_none(), "{}", second.text);
    let into = app
        .post(
            &format!("/wallet/holds/{second_id}/capture"),
            with(json!({"to_id": b}), &memo("cap-2")),
        )
        .await;
    assert_eq!(into.status, 200, "{}", into.text);
    assert_memo(&into.body["transaction"], "cap-2");
    assert_memo(&into.body["to"]["transaction"], "cap-2");

    // The history returns every field as stored, newest first.
    let history = app.history(&a).await;
    let references: Vec<&str> = history
        .iter()
        .map(|e| e["reference"].as_str().expect("reference"))
        .collect();
    assert_eq!(
        references,
        ["cap-2", "cap-1", "tr-1", "wd-1", "dep-1", "open-1"]
    );
    for entry in &history {
        assert_memo(entry, entry["reference"].as_str().expect("reference"));
    }
    let received = app.history(&b).await;
    assert_memo(&received[0], "cap-2");
    assert_memo(&received[1], "tr-1");
    assert!(
        received[2].get("reference").is_none(),
        "an entry without a memo has none"
    );

    // The event feed carries them too: each entry's event as the history shows it, the hold's with its own.
    let mut events = Vec::new();
    for _ in 0..100 {
        let feed = app.get("/wallet/events?after=0&limit=1000").await;
        assert_eq!(feed.status, 200, "{}", feed.text);
        events = feed.body.as_array().expect("events").clone();
        let entries = events
            .iter()
            .filter(|e| e["type"] == "transaction.created")
            .count();
        if entries == history.len() + received.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for entry in history.iter().chain(&received) {
        let event = events
            .iter()
            .find(|e| e["type"] == "transaction.created" && e["data"]["id"] == entry["id"])
            .unwrap_or_else(|| panic!("an event for {entry} in {events:?}"));
        assert_eq!(&event["data"], entry);
    }
    let placed = events
        .iter()
        .find(|e| e["type"] == "hold.created" && e["data"]["id"] == hold_id.as_str())
        .expect("hold.created");
    assert_memo(&placed["data"], "hold-1");
}

/// Every way a memo can break a rule.
fn bad_memos() -> Vec<(&'static str, Value)> {
    let keys = |n: usize| -> Value {
        Value::Object((0..n).map(|i| (format!("k{i}"), json!("v"))).collect())
    };
    let big = Value::Object(
        (0..20)
            .map(|i| (format!("key{i}"), json!("x".repeat(450))))
            .collect(),
    );
    vec![
        ("33 metadata keys", json!({"metadata": keys(33)})),
        ("a non-string value", json!({"metadata": {"n": 1}})),
        (
            "a 65-character key",
            json!({"metadata": {"k".repeat(65): "v"}}),
        ),
        ("metadata not an object", json!({"metadata": ["a", "b"]})),
        ("metadata a string", json!({"metadata": "{}"})),
        ("8 KiB+ metadata", json!({"metadata": big})),
        (
            "a 129-character reference",
            json!({"reference": "r".repeat(129)}),
        ),
        ("an empty reference", json!({"reference": ""})),
        (
            "a control character in a reference",
            json!({"reference": "a\u{7}b"}),
        ),
        ("edge whitespace in a reference", json!({"reference": " r"})),
        ("a non-string reference", json!({"reference": 42})),
        (
            "a control character in a description",
            json!({"description": "a\u{1b}[31m"}),
        ),
        (
            "a 501-character description",
            json!({"description": "d".repeat(501)}),
        ),
        (
            "a control character in a metadata value",
            json!({"metadata": {"k": "\u{0}"}}),
        ),
    ]
}

async fn each_memo_rule_is_refused_with_422_on_every_post_and_changes_nothing(backend: Backend) {
    let app = app(backend).await;
    let a = app.create_wallet("rules", "EUR", "50.00").await;
    let b = app.create_wallet("rules", "EUR", "0").await;
    let hold = app
        .post("/wallet/holds", json!({"wallet_id": a, "amount": "5.00"}))
        .await;
    let hold_id = hold.body["id"].as_str().expect("id").to_owned();
    let posts: Vec<(String, Value)> = vec![
        (
            "/wallet/".into(),
            json!({"owner": "rules", "currency": "EUR", "initial_balance": "1.00"}),
        ),
        ("/wallet/deposit".into(), json!({"id": a, "amount": "1.00"})),
        (
            "/wallet/withdraw".into(),
            json!({"id": a, "amount": "1.00"}),
        ),
        (
            "/wallet/transfer".into(),
            json!({"from_id": a, "to_id": b, "amount": "1.00"}),
        ),
        (
            "/wallet/holds".into(),
            json!({"wallet_id": a, "amount": "1.00"}),
        ),
        (
            format!("/wallet/holds/{hold_id}/capture"),
            json!({"amount": "1.00"}),
        ),
    ];
    let before = app.snapshot().await;
    let holds_before = app.get(&format!("/wallet/{a}/holds")).await.body;
    for (rule, bad) in bad_memos() {
        for (path, body) in &posts {
            let reply = app.post(path, with(body.clone(), &bad)).await;
            assert_eq!(reply.status, 422, "{rule} on {path}: {}", reply.text);
            reply.assert_problem(422, "invalid_request");
        }
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused memo changed nothing"
    );
    assert_eq!(
        app.get(&format!("/wallet/{a}/holds")).await.body,
        holds_before
    );
    // The limits themselves are allowed: 32 keys, 64-character keys, 128-character references, 500 characters.
    let edge = json!({
        "reference": "é".repeat(128),
        "description": "d".repeat(500),
        "metadata": Value::Object((0..32).map(|i| (format!("{i:0>64}"), json!("v"))).collect()),
    });
    let reply = app
        .post(
            "/wallet/deposit",
            with(json!({"id": a, "amount": "1.00"}), &edge),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["transaction"]["reference"], "é".repeat(128));
}

async fn a_repeated_key_with_another_memo_is_a_reused_key_not_a_replay(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("keyed", "EUR", "0").await;
    let first = json!({"id": id, "amount": "1.00", "description": "first"});
    let reply = app
        .post_with_key("/wallet/deposit", "memo-key", first.clone())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let replay = app
        .post_with_key("/wallet/deposit", "memo-key", first)
        .await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body["transaction"]["description"], "first");
    let other = json!({"id": id, "amount": "1.00", "description": "second"});
    let reused = app
        .post_with_key("/wallet/deposit", "memo-key", other)
        .await;
    reused.assert_problem(422, "idempotency_key_reused");
    let metadata =
        json!({"id": id, "amount": "1.00", "description": "first", "metadata": {"a": "b"}});
    let reused = app
        .post_with_key("/wallet/deposit", "memo-key", metadata)
        .await;
    reused.assert_problem(422, "idempotency_key_reused");
    assert_eq!(app.balance(&id).await, "1.00");
}

/// Concurrent deposits on one wallet share one transaction (group commit): each keeps its own memo.
async fn concurrent_deposits_on_one_wallet_each_keep_their_own_memo(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("busy", "EUR", "0").await;
    let deposits = (1..=24).map(|i| {
        let body = json!({"id": id, "amount": format!("{i}.00"), "reference": format!("c-{i}"),
            "description": format!("deposit {i}"), "metadata": {"i": i.to_string()}});
        let app = &app;
        async move { app.post("/wallet/deposit", body).await }
    });
    for reply in futures::future::join_all(deposits).await {
        assert_eq!(reply.status, 200, "{}", reply.text);
        let entry = &reply.body["transaction"];
        let i = entry["metadata"]["i"].as_str().expect("i");
        assert_eq!(entry["reference"], format!("c-{i}"));
        assert_eq!(entry["amount"], format!("{i}.00"));
    }
    for entry in app
        .history(&id)
        .await
        .iter()
        .filter(|e| e["type"] == "deposit")
    {
        let i = entry["metadata"]["i"].as_str().expect("i");
        assert_eq!(entry["reference"], format!("c-{i}"));
        assert_eq!(entry["description"], format!("deposit {i}"));
        assert_eq!(entry["amount"], format!("{i}.00"));
    }
}
