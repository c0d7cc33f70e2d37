//! Events (SPEC §11): the outbox every change writes in its own transaction, and the feed that serves it in a
//! safe order (docs/adr/0120-events-outbox-and-feed.md).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sqlx::Connection as _;

use crate::helpers::{
    Backend, Process, TestApp, TestDatabase, client_with_key, postgres_admin_url, wait_until_unused,
};

crate::on_both_backends!(
    every_kind_of_change_writes_exactly_its_events,
    a_change_that_fails_writes_no_event,
    coalesced_concurrent_deposits_write_one_event_per_entry,
    a_consumer_tailing_the_feed_sees_every_event_once_in_order_while_16_clients_write,
    a_long_poll_returns_with_the_event_once_one_commits,
    a_long_poll_with_nothing_new_answers_an_empty_page_after_wait,
    malformed_feed_parameters_are_422_and_pages_link_the_next,
    owner_bound_keys_see_only_their_wallets_events,
    kill_9_during_deposits_leaves_exactly_one_event_per_entry,
    sigterm_answers_a_waiting_long_poll_and_exits_0,
    events_written_are_counted_by_type,
);

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

/// Every event after `after` that the feed serves right now, following the cursor page by page.
async fn feed_after(client: &reqwest::Client, base: &str, mut after: i64) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let reply = client
            .get(format!("{base}/wallet/events?after={after}&limit=1000"))
            .send()
            .await
            .expect("GET events");
        assert_eq!(reply.status(), 200);
        let page: Vec<Value> = reply.json().await.expect("json");
        let Some(last) = page.last() else { return all };
        after = id_of(last);
        all.extend(page);
    }
}

/// Rows of the events table straight from the database, in feed order where numbered: (position, "type:ref"),
/// the ref being the entry, hold or wallet the event points to.
async fn table(url: &str) -> Vec<(String, String)> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    sqlx::query_as(
        "select cast(coalesce(position, 0) as text), type || ':' || \
                cast(coalesce(entry_id, hold_id, wallet_id) as text) \
         from events order by coalesce(position, 9223372036854775807), id",
    )
    .fetch_all(&mut conn)
    .await
    .expect("events table")
}

/// An event as (id, "type:ref"), to compare with `table`.
fn as_row(event: &Value) -> (String, String) {
    let reference = event["data"]["id"].as_str().expect("data.id");
    (
        event["id"].as_str().expect("id").to_owned(),
        format!("{}:{reference}", type_of(event)),
    )
}

/// The whole feed once every committed event has been numbered: it then serves exactly the table's rows.
async fn settled_feed(app: &TestApp) -> Vec<Value> {
    let base = app.url("");
    for _ in 0..400 {
        let rows = table(&app.database.url).await;
        let served = feed_after(&app.client, &base, 0).await;
        if served.len() == rows.len() {
            return served;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the feed never caught up with the events table");
}

/// The events written since `cursor` (settled), as sorted (type, wallet_id) pairs; moves the cursor past them.
async fn new_events(app: &TestApp, cursor: &mut usize) -> Vec<Value> {
    let all = settled_feed(app).await;
    let new = all[*cursor..].to_vec();
    *cursor = all.len();
    new
}

fn kinds(events: &[Value]) -> Vec<(String, String)> {
    let mut kinds: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                type_of(e).to_owned(),
                e["wallet_id"].as_str().expect("wallet_id").to_owned(),
            )
        })
        .collect();
    kinds.sort();
    kinds
}

fn expected(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(t, w)| ((*t).to_owned(), (*w).to_owned()))
        .collect();
    pairs.sort();
    pairs
}

fn find<'a>(events: &'a [Value], kind: &str) -> &'a Value {
    events
        .iter()
        .find(|e| type_of(e) == kind)
        .unwrap_or_else(|| panic!("no {kind} in {events:?}"))
}

async fn ok(reply: crate::helpers::Reply, status: u16) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text);
    reply.body
}

/// Moves a pending hold's expiry into the past (no sweep runs unless the test calls it).
async fn backdate(app: &TestApp, hold_id: &str) {
    app.execute(
        "update holds set expires_at = '2000-01-01T00:00:00+00:00' where id = cast($1 as bigint)",
        hold_id,
    )
    .await;
}

async fn every_kind_of_change_writes_exactly_its_events(backend: Backend) {
    let app = app(backend).await;
    let mut cursor = 0;

    let a = app.create_wallet("alice", "EUR", "100.00").await;
    let events = new_events(&app, &mut cursor).await;
    assert_eq!(
        kinds(&events),
        expected(&[("wallet.opened", &a), ("transaction.created", &a)])
    );
    let opened = find(&events, "wallet.opened");
    assert_eq!(opened["data"]["balance"], "100.00");
    assert_eq!(opened["data"]["held"], "0.00");
    assert_eq!(opened["data"]["owner"], "alice");
    assert_eq!(
        find(&events, "transaction.created")["data"]["type"],
        "opening"
    );
    // Events are in the order they were written within a change, and ids increase.
    assert!(id_of(&events[0]) < id_of(&events[1]));
    assert_eq!(type_of(&events[0]), "wallet.opened");

    let b = app.create_wallet("bob", "EUR", "0").await;
    assert_eq!(
        kinds(&new_events(&app, &mut cursor).await),
        expected(&[("wallet.opened", &b), ("transaction.created", &b)])
    );

    let deposit = ok(
        app.post("/wallet/deposit", json!({"id": a, "amount": "10.00"}))
            .await,
        200,
    )
    .await;
    let events = new_events(&app, &mut cursor).await;
    assert_eq!(kinds(&events), expected(&[("transaction.created", &a)]));
    assert_eq!(events[0]["data"], deposit["transaction"]);
    assert_eq!(
        events[0]["created_at"],
        deposit["transaction"]["created_at"]
    );

    let withdrawal = ok(
        app.post("/wallet/withdraw", json!({"id": a, "amount": "5.00"}))
            .await,
        200,
    )
    .await;
    let events = new_events(&app, &mut cursor).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"], withdrawal["transaction"]);

    let transfer = ok(
        app.post(
            "/wallet/transfer",
            json!({"from_id": a, "to_id": b, "amount": "20.00"}),
        )
        .await,
        200,
    )
    .await;
    let events = new_events(&app, &mut cursor).await;
    assert_eq!(
        kinds(&events),
        expected(&[("transaction.created", &a), ("transaction.created", &b)])
    );
    let legs: Vec<&Value> = events.iter().map(|e| &e["data"]).collect();
    assert!(legs.contains(&&transfer["from"]["transaction"]));
    assert!(legs.contains(&&transfer["to"]["transaction"]));

    // A hold placed, then captured in part as a withdrawal.
    let h1 = ok(
        app.post("/wallet/holds", json!({"wallet_id": a, "amount": "10.00"}))
            .await,
        201,
    )
    .await;
    let events = new_events(&app, &mut cursor).await;
    assert_eq!(kinds(&events), expected(&[("hold.created", &a)]));
    assert_eq!(events[0]["data"], h1);
    let h1_id = h1["id"].as_str().expect("id");
    let capture = ok(
        app.post(
            &format!("/wallet/holds/{h1_id}/capture"),
            json!({"amount": "4.00"}),
        )
        .await,
        200,
    )
    .await;
    let events = new_events(&app, &mut cursor).await;
    assert_eq!(
        kinds(&events),
        expected(&[("hold.captured", &a), ("transaction.created", &a)])
    );
    assert_eq!(find(&events, "hold.captured")["data"], capture["hold"]);
    assert_eq!(
        find(&events, "transaction.created")["data"],
        capture["transaction"]
    );
    // The hold's creation still shows it as it was created: pending, nothing captured.
    let history = settled_feed(&app).await;
    let created = history
        .iter()
        .find(|e| type_of(e) == "hold.created" && e["data"]["id"] == h1["id"])
        .expect("hold.created");
    assert_eq!(created["data"], h1);

    // A hold captured into another wallet: both legs.
    let h2 = ok(
        app.post("/wallet/holds", json!({"wallet_id": a, "amount": "5.00"}))
            .await,
        201,
    )
    .await;
    let h2_id = h2["id"].as_str().expect("id");
    ok(
        app.post(
            &format!("/wallet/holds/{h2_id}/capture"),
            json!({"to_id": b}),
        )
        .await,
        200,
    )
    .await;
    let events = new_events(&app, &mut cursor).await;
    assert_eq!(
        kinds(&events),
        expected(&[
            ("hold.created", &a),
            ("hold.captured", &a),
            ("transaction.created", &a),
            ("transaction.created", &b),
        ])
    );

    // Voided.
    let h3 = ok(
        app.post("/wallet/holds", json!({"wallet_id": a, "amount": "3.00"}))
            .await,
        201,
    )
    .await;
    let h3_id = h3["id"].as_str().expect("id");
    let voided = ok(
        app.post(&format!("/wallet/holds/{h3_id}/void"), json!({}))
            .await,
        200,
    )
    .await;
    let events = new_events(&app, &mut cursor).await;
    assert_eq!(
        kinds(&events),
        expected(&[("hold.created", &a), ("hold.voided", &a)])
    );
    assert_eq!(find(&events, "hold.voided")["data"], voided);

    // Expired by the sweep.
    let h4 = ok(
        app.post("/wallet/holds", json!({"wallet_id": a, "amount": "1.00"}))
            .await,
        201,
    )
    .await;
    let h4_id = h4["id"].as_str().expect("id");
    backdate(&app, h4_id).await;
    assert_eq!(app.store.expire_holds().await.expect("sweep"), 1);
    let events = new_events(&app, &mut cursor).await;
    assert_eq!(
        kinds(&events),
        expected(&[("hold.created", &a), ("hold.expired", &a)])
    );
    let expired = find(&events, "hold.expired");
    assert_eq!(expired["data"]["status"], "expired");
    assert_eq!(expired["data"]["id"], h4["id"]);

    // Expired by a withdrawal that needed its money (the release at write time).
    let h5 = ok(
        app.post("/wallet/holds", json!({"wallet_id": a, "amount": "2.00"}))
            .await,
        201,
    )
    .await;
    backdate(&app, h5["id"].as_str().expect("id")).await;
    let available = app.get(&format!("/wallet/{a}")).await.body["available"].clone();
    ok(
        app.post("/wallet/withdraw", json!({"id": a, "amount": available}))
            .await,
        200,
    )
    .await;
    let events = new_events(&app, &mut cursor).await;
    assert_eq!(
        kinds(&events),
        expected(&[
            ("hold.created", &a),
            ("hold.expired", &a),
            ("transaction.created", &a),
        ])
    );

    // Closed with money in it (a closing entry), and closed empty (no entry).
    ok(app.delete(&format!("/wallet/{b}")).await, 204).await;
    let events = new_events(&app, &mut cursor).await;
    assert_eq!(
        kinds(&events),
        expected(&[("transaction.created", &b), ("wallet.closed", &b)])
    );
    assert_eq!(
        find(&events, "transaction.created")["data"]["type"],
        "closing"
    );
    let closed = find(&events, "wallet.closed");
    assert_eq!(closed["data"]["balance"], "0.00");
    assert_eq!(closed["data"]["id"], b.as_str());
    assert!(
        id_of(find(&events, "transaction.created")) < id_of(closed),
        "the payout comes before the closing"
    );
    ok(app.delete(&format!("/wallet/{a}")).await, 204).await;
    assert_eq!(
        kinds(&new_events(&app, &mut cursor).await),
        expected(&[("wallet.closed", &a)])
    );

    // A repeated keyed request changes nothing the second time, and writes nothing either.
    let c = app.create_wallet("carol", "EUR", "1.00").await;
    new_events(&app, &mut cursor).await;
    for _ in 0..2 {
        let reply = app
            .post_with_key(
                "/wallet/deposit",
                "once",
                json!({"id": c, "amount": "1.00"}),
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    assert_eq!(
        kinds(&new_events(&app, &mut cursor).await),
        expected(&[("transaction.created", &c)])
    );

    // The feed serves exactly the table, in order.
    let feed: Vec<(String, String)> = settled_feed(&app).await.iter().map(as_row).collect();
    assert_eq!(feed, table(&app.database.url).await);
}

async fn a_change_that_fails_writes_no_event(backend: Backend) {
    let app = app(backend).await;
    let a = app.create_wallet("alice", "EUR", "10.00").await;
    let usd = app.create_wallet("alice", "USD", "10.00").await;
    let gone = app.create_wallet("alice", "EUR", "0").await;
    ok(app.delete(&format!("/wallet/{gone}")).await, 204).await;
    let finished = ok(
        app.post("/wallet/holds", json!({"wallet_id": a, "amount": "1.00"}))
            .await,
        201,
    )
    .await;
    let finished = finished["id"].as_str().expect("id").to_owned();
    ok(
        app.post(&format!("/wallet/holds/{finished}/void"), json!({}))
            .await,
        200,
    )
    .await;
    let pending = ok(
        app.post("/wallet/holds", json!({"wallet_id": a, "amount": "1.00"}))
            .await,
        201,
    )
    .await;
    // Settled first, so that the table's rows are all numbered.
    let served = settled_feed(&app).await;
    let before = table(&app.database.url).await;

    let refused = [
        (
            "/wallet/withdraw",
            json!({"id": a, "amount": "100.00"}),
            409,
        ),
        (
            "/wallet/deposit",
            json!({"id": gone, "amount": "1.00"}),
            404,
        ),
        (
            "/wallet/transfer",
            json!({"from_id": a, "to_id": usd, "amount": "1.00"}),
            422,
        ),
        (
            "/wallet/transfer",
            json!({"from_id": a, "to_id": gone, "amount": "1.00"}),
            404,
        ),
        (
            "/wallet/holds",
            json!({"wallet_id": a, "amount": "50.00"}),
            409,
        ),
    ];
    for (path, body, status) in refused {
        let reply = app.post(path, body.clone()).await;
        assert_eq!(reply.status, status, "{path} {body}: {}", reply.text);
    }
    let capture = app
        .post(&format!("/wallet/holds/{finished}/capture"), json!({}))
        .await;
    capture.assert_problem(409, "hold_not_pending");
    let void = app
        .post(&format!("/wallet/holds/{finished}/void"), json!({}))
        .await;
    void.assert_problem(409, "hold_not_pending");
    let too_much = app
        .post(
            &format!(
                "/wallet/holds/{}/capture",
                pending["id"].as_str().expect("id")
            ),
            json!({"amount": "2.00"}),
        )
        .await;
    too_much.assert_problem(422, "invalid_amount");
    let close = app.delete(&format!("/wallet/{a}")).await;
    close.assert_problem(409, "wallet_has_holds");

    assert_eq!(table(&app.database.url).await, before);
    assert_eq!(settled_feed(&app).await, served);
}

async fn coalesced_concurrent_deposits_write_one_event_per_entry(backend: Backend) {
    let app = Arc::new(app(backend).await);
    let id = app.create_wallet("hot", "EUR", "0").await;
    let mut deposits = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let (app, id) = (app.clone(), id.clone());
        deposits.spawn(async move {
            app.post("/wallet/deposit", json!({"id": id, "amount": "0.01"}))
                .await
        });
    }
    while let Some(reply) = deposits.join_next().await {
        assert_eq!(reply.expect("task").status, 200);
    }
    let entries: Vec<Value> = app.history(&id).await;
    assert_eq!(entries.len(), 61);
    let feed = settled_feed(&app).await;
    let mut from_feed: Vec<Value> = feed
        .iter()
        .filter(|e| type_of(e) == "transaction.created")
        .map(|e| e["data"].clone())
        .collect();
    let mut from_history = entries;
    let key = |e: &Value| e["id"].as_str().expect("id").parse::<i64>().expect("id");
    from_feed.sort_by_key(key);
    from_history.sort_by_key(key);
    assert_eq!(from_feed, from_history);
}

/// Tails the feed with long polls until `stop` is set and it has caught up with the table.
async fn tail(
    client: reqwest::Client,
    base: String,
    url: String,
    stop: Arc<AtomicBool>,
) -> Vec<Value> {
    let mut served: Vec<Value> = Vec::new();
    let mut cursor = 0;
    loop {
        let reply = client
            .get(format!(
                "{base}/wallet/events?after={cursor}&limit=200&wait=2"
            ))
            .send()
            .await
            .expect("GET events");
        assert_eq!(reply.status(), 200);
        let page: Vec<Value> = reply.json().await.expect("json");
        for event in page {
            let id = id_of(&event);
            assert!(id > cursor, "event {id} served after {cursor}");
            cursor = id;
            served.push(event);
        }
        if stop.load(Ordering::SeqCst) && served.len() == table(&url).await.len() {
            return served;
        }
    }
}

async fn a_consumer_tailing_the_feed_sees_every_event_once_in_order_while_16_clients_write(
    backend: Backend,
) {
    let app = Arc::new(app(backend).await);
    let mut wallets = Vec::new();
    for n in 0..6 {
        wallets.push(app.create_wallet(&format!("o{n}"), "EUR", "1000.00").await);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = tokio::spawn(tail(
        app.client.clone(),
        app.url(""),
        app.database.url.clone(),
        stop.clone(),
    ));
    let wallets = Arc::new(wallets);
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..16_u64 {
        let (app, wallets) = (app.clone(), wallets.clone());
        clients.spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(client);
            let mut ops = 0;
            while ops < 125 {
                // Wallet 0 is hot: most operations land there, so PostgreSQL coalesces them.
                let pick = |rng: &mut rand::rngs::StdRng| {
                    wallets[if rng.random_bool(0.5) {
                        0
                    } else {
                        rng.random_range(0..wallets.len())
                    }]
                    .clone()
                };
                let w = pick(&mut rng);
                let amount = format!("{}.{:02}", rng.random_range(0..3), rng.random_range(1..100));
                match rng.random_range(0..6) {
                    0 | 1 => {
                        app.post("/wallet/deposit", json!({"id": w, "amount": amount}))
                            .await;
                    }
                    2 => {
                        app.post("/wallet/withdraw", json!({"id": w, "amount": amount}))
                            .await;
                    }
                    3 => {
                        let to = pick(&mut rng);
                        app.post(
                            "/wallet/transfer",
                            json!({"from_id": w, "to_id": to, "amount": amount}),
                        )
                        .await;
                    }
                    _ => {
                        let hold = app
                            .post("/wallet/holds", json!({"wallet_id": w, "amount": amount}))
                            .await;
                        ops += 1;
                        if let Some(id) = hold.body["id"].as_str() {
                            let finish = if rng.random_bool(0.5) {
                                "capture"
                            } else {
                                "void"
                            };
                            app.post(&format!("/wallet/holds/{id}/{finish}"), json!({}))
                                .await;
                        }
                    }
                }
                ops += 1;
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.expect("client");
    }
    stop.store(true, Ordering::SeqCst);
    let served = tokio::time::timeout(Duration::from_secs(120), consumer)
        .await
        .expect("the consumer caught up")
        .expect("consumer");

    // Exactly the table, in order: every event once, none skipped, ids increasing.
    let rows: Vec<(String, String)> = served.iter().map(as_row).collect();
    assert_eq!(rows, table(&app.database.url).await);
    // One transaction.created per ledger entry.
    let mut per_entry: HashMap<String, usize> = HashMap::new();
    for event in served
        .iter()
        .filter(|e| type_of(e) == "transaction.created")
    {
        *per_entry
            .entry(event["data"]["id"].as_str().expect("id").to_owned())
            .or_default() += 1;
    }
    let mut entries = 0;
    for wallet in wallets.iter() {
        for entry in app.history(wallet).await {
            entries += 1;
            assert_eq!(per_entry.get(entry["id"].as_str().expect("id")), Some(&1));
        }
    }
    assert_eq!(per_entry.len(), entries);
    assert!(entries > 1000, "only {entries} entries");
    // A wallet's events come in the order of its changes: its entries in id order, each balance continuing the last.
    let mut last: HashMap<String, (i64, i64)> = HashMap::new();
    for event in served
        .iter()
        .filter(|e| type_of(e) == "transaction.created")
    {
        let data = &event["data"];
        let wallet = data["wallet_id"].as_str().expect("wallet_id").to_owned();
        let entry: i64 = data["id"].as_str().expect("id").parse().expect("id");
        let cents = |field: &str| -> i64 {
            data[field]
                .as_str()
                .expect("amount")
                .replace('.', "")
                .parse()
                .expect("cents")
        };
        let signed = match data["type"].as_str().expect("type") {
            "opening" | "deposit" | "transfer_in" => cents("amount"),
            _ => -cents("amount"),
        };
        if let Some((previous_entry, previous_balance)) = last.get(&wallet) {
            assert!(
                entry > *previous_entry,
                "wallet {wallet}: entry {entry} after {previous_entry}"
            );
            assert_eq!(
                previous_balance + signed,
                cents("balance_after"),
                "wallet {wallet}"
            );
        }
        last.insert(wallet, (entry, cents("balance_after")));
    }
    assert_eq!(app.audit_findings().await, 0);
}

/// PostgreSQL, deterministically: an event inserted earlier (smaller insertion id) commits after a later one.
/// A reader paging by insertion id moves its cursor past the earlier one before it commits and never sees it;
/// the feed, which numbers events after they commit, serves both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_naive_insertion_id_cursor_skips_an_event_that_the_feed_serves() {
    if postgres_admin_url().is_none() {
        return;
    }
    let app = app(Backend::Postgres).await;
    let wallet = app.create_wallet("slow", "EUR", "1.00").await;
    let wallet_id: i64 = wallet.parse().expect("id");
    let served = settled_feed(&app).await;
    let feed_cursor = id_of(served.last().expect("events"));
    let mut reader = sqlx::PgConnection::connect(&app.database.url)
        .await
        .expect("connect");
    let naive_cursor: i64 = sqlx::query_scalar("select max(id) from events")
        .fetch_one(&mut reader)
        .await
        .expect("max id");

    // A slow writer: its event takes the next insertion id, and its transaction stays open.
    let mut slow = sqlx::PgConnection::connect(&app.database.url)
        .await
        .expect("connect");
    sqlx::query("begin")
        .execute(&mut slow)
        .await
        .expect("begin");
    let slow_id: i64 = sqlx::query_scalar(
        "insert into events (type, wallet_id, created_at) values ('wallet.opened', $1, now()) returning id",
    )
    .bind(wallet_id)
    .fetch_one(&mut slow)
    .await
    .expect("insert");

    // A deposit commits meanwhile, with a larger insertion id.
    let deposit = app
        .post("/wallet/deposit", json!({"id": wallet, "amount": "1.00"}))
        .await;
    assert_eq!(deposit.status, 200);
    let naive = |after: i64| {
        sqlx::query_scalar::<_, i64>("select id from events where id > $1 order by id").bind(after)
    };
    let first: Vec<i64> = naive(naive_cursor)
        .fetch_all(&mut reader)
        .await
        .expect("naive read");
    assert_eq!(first.len(), 1, "the naive reader sees the deposit's event");
    assert!(first[0] > slow_id);
    let naive_cursor = first[0];
    // The feed serves the deposit too.
    let feed_first = loop {
        let events = feed_after(&app.client, &app.url(""), feed_cursor).await;
        if !events.is_empty() {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(feed_first.len(), 1);
    assert_eq!(feed_first[0]["data"], deposit.body["transaction"]);

    // The slow writer commits: the naive cursor has passed its event for good.
    sqlx::query("commit")
        .execute(&mut slow)
        .await
        .expect("commit");
    let then: Vec<i64> = naive(naive_cursor)
        .fetch_all(&mut reader)
        .await
        .expect("naive read");
    assert!(
        then.is_empty(),
        "the naive reader never sees event {slow_id}"
    );
    // The feed numbers it after the deposit's, so its cursor reaches it.
    let feed_then = loop {
        let events = feed_after(&app.client, &app.url(""), id_of(&feed_first[0])).await;
        if !events.is_empty() {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(feed_then.len(), 1);
    assert_eq!(type_of(&feed_then[0]), "wallet.opened");
    assert_eq!(feed_then[0]["wallet_id"], wallet.as_str());
}

/// PostgreSQL with two replicas (this process and the real binary) on one database: both write, both sequence,
/// and a consumer of either replica sees every event once, in order; a long poll on one is woken by a commit on
/// the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_serve_one_feed_and_wake_each_others_readers() {
    if postgres_admin_url().is_none() {
        return;
    }
    let one = Arc::new(app(Backend::Postgres).await);
    let other = Process::start(&one.database.url, &[]).await;
    let client = crate::helpers::admin_client();
    let wallet = one.create_wallet("replicas", "EUR", "0").await;
    let cursor = id_of(settled_feed(&one).await.last().expect("events"));

    let waiting = tokio::spawn({
        let (client, url) = (
            client.clone(),
            other.url(&format!("/wallet/events?after={cursor}&wait=20")),
        );
        async move {
            let started = Instant::now();
            let page: Vec<Value> = client
                .get(url)
                .send()
                .await
                .expect("poll")
                .json()
                .await
                .expect("json");
            (page, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deposit = one
        .post("/wallet/deposit", json!({"id": wallet, "amount": "1.00"}))
        .await;
    assert_eq!(deposit.status, 200);
    let (page, elapsed) = waiting.await.expect("poll");
    assert_eq!(page.len(), 1, "{page:?}");
    assert_eq!(page[0]["data"], deposit.body["transaction"]);
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");

    // Both replicas write at once; a consumer of the other one sees exactly the table.
    let stop = Arc::new(AtomicBool::new(false));
    let consumer = tokio::spawn(tail(
        client.clone(),
        other.url(""),
        one.database.url.clone(),
        stop.clone(),
    ));
    let mut writers = tokio::task::JoinSet::new();
    for n in 0..8 {
        let base = if n % 2 == 0 {
            one.url("")
        } else {
            other.url("")
        };
        let (client, wallet) = (client.clone(), wallet.clone());
        writers.spawn(async move {
            for _ in 0..40 {
                let reply = client
                    .post(format!("{base}/wallet/deposit"))
                    .json(&json!({"id": wallet, "amount": "0.01"}))
                    .send()
                    .await
                    .expect("deposit");
                assert_eq!(reply.status(), 200);
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("writer");
    }
    stop.store(true, Ordering::SeqCst);
    let served = tokio::time::timeout(Duration::from_secs(120), consumer)
        .await
        .expect("the consumer caught up")
        .expect("consumer");
    let rows: Vec<(String, String)> = served.iter().map(as_row).collect();
    assert_eq!(rows, table(&one.database.url).await);
    assert_eq!(
        served
            .iter()
            .filter(|e| type_of(e) == "transaction.created")
            .count(),
        1 + 1 + 320
    );
}

async fn a_long_poll_returns_with_the_event_once_one_commits(backend: Backend) {
    let app = Arc::new(app(backend).await);
    let id = app.create_wallet("poll", "EUR", "0").await;
    let cursor = id_of(settled_feed(&app).await.last().expect("events"));
    let waiting = tokio::spawn({
        let app = app.clone();
        async move {
            let started = Instant::now();
            let reply = app
                .get(&format!("/wallet/events?after={cursor}&wait=20"))
                .await;
            (reply, started.elapsed())
        }
    });
    // Let the request start waiting (it answers with the event whenever it sees it, so this is no race).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deposit = app
        .post("/wallet/deposit", json!({"id": id, "amount": "1.00"}))
        .await;
    assert_eq!(deposit.status, 200);
    let (reply, elapsed) = waiting.await.expect("poll");
    assert_eq!(reply.status, 200, "{}", reply.text);
    let events = reply.body.as_array().expect("array");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["data"], deposit.body["transaction"]);
    assert!(
        elapsed < Duration::from_secs(20),
        "answered before the wait was up ({elapsed:?})"
    );
}

async fn a_long_poll_with_nothing_new_answers_an_empty_page_after_wait(backend: Backend) {
    let app = app(backend).await;
    app.create_wallet("quiet", "EUR", "0").await;
    let cursor = id_of(settled_feed(&app).await.last().expect("events"));
    let started = Instant::now();
    let reply = app
        .get(&format!("/wallet/events?after={cursor}&wait=1"))
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, json!([]));
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(reply.header("link").is_none());
}

async fn malformed_feed_parameters_are_422_and_pages_link_the_next(backend: Backend) {
    let app = app(backend).await;
    for query in [
        "wait=31",
        "wait=-1",
        "wait=1.5",
        "wait=x",
        "wait=",
        "after=-1",
        "after=x",
        "after=1.0",
        "limit=0",
        "limit=1001",
        "limit=x",
        "after=1&after=2",
    ] {
        let reply = app.get(&format!("/wallet/events?{query}")).await;
        reply.assert_problem(422, "invalid_request");
    }
    app.create_wallet("pages", "EUR", "1.00").await;
    app.create_wallet("pages", "EUR", "1.00").await;
    let all = settled_feed(&app).await;
    assert_eq!(all.len(), 4);
    let first = app.get("/wallet/events?limit=3").await;
    assert_eq!(first.body.as_array().expect("array").len(), 3);
    let last = id_of(&first.body[2]);
    assert_eq!(
        first.header("link"),
        Some(format!("</wallet/events?after={last}&limit=3>; rel=\"next\"").as_str())
    );
    let second = app
        .get(&format!("/wallet/events?after={last}&limit=3"))
        .await;
    assert_eq!(second.body.as_array().expect("array").len(), 1);
    assert!(second.header("link").is_none());
    // A cursor past the end is simply an empty page.
    let beyond = app.get("/wallet/events?after=999999").await;
    assert_eq!(beyond.body, json!([]));
}

async fn owner_bound_keys_see_only_their_wallets_events(backend: Backend) {
    let app = app(backend).await;
    let key = |role: &str, owner: &str| {
        let app = &app;
        let body = json!({"role": role, "owner": owner});
        async move {
            let reply = app.post("/wallet/keys", body).await;
            assert_eq!(reply.status, 201, "{}", reply.text);
            reply.body["key"].as_str().expect("key").to_owned()
        }
    };
    let alice_key = key("write", "alice").await;
    let bob_key = key("read", "bob").await;
    let alice = client_with_key(&alice_key);
    let bob = client_with_key(&bob_key);
    let a = app.create_wallet("alice", "EUR", "50.00").await;
    let b = app.create_wallet("bob", "EUR", "0").await;
    app.create_wallet("carol", "EUR", "5.00").await;
    // Alice pays Bob: her feed shows her leg, his shows his.
    let reply = alice
        .post(app.url("/wallet/transfer"))
        .json(&json!({"from_id": a, "to_id": b, "amount": "7.00"}))
        .send()
        .await
        .expect("transfer");
    assert_eq!(reply.status(), 200);
    let all = settled_feed(&app).await;
    let base = app.url("");
    for (client, owner, wallet) in [(&alice, "alice", &a), (&bob, "bob", &b)] {
        let seen = feed_after(client, &base, 0).await;
        let expected: Vec<&Value> = all
            .iter()
            .filter(|e| e["wallet_id"] == wallet.as_str())
            .collect();
        assert_eq!(seen.iter().collect::<Vec<_>>(), expected, "{owner}");
        assert!(!seen.is_empty());
        for event in &seen {
            assert_eq!(event["wallet_id"], wallet.as_str(), "{owner} sees {event}");
            if let Some(shown) = event["data"]["owner"].as_str() {
                assert_eq!(shown, owner);
            }
        }
        // Waiting shows nothing of the others either.
        let last = id_of(seen.last().expect("events"));
        let reply = client
            .get(format!("{base}/wallet/events?after={last}&wait=1"))
            .send()
            .await
            .expect("poll");
        assert_eq!(reply.json::<Value>().await.expect("json"), json!([]));
    }
    // The admin key sees everything.
    assert_eq!(feed_after(&app.client, &base, 0).await, all);
}

/// With authentication off every event is visible, as to an admin key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_authentication_off_the_feed_shows_every_owners_events() {
    let app = TestApp::spawn_open(Backend::Sqlite)
        .await
        .expect("backend configured");
    let a = app.create_wallet("alice", "EUR", "1.00").await;
    let b = app.create_wallet("bob", "EUR", "1.00").await;
    let feed = settled_feed(&app).await;
    let wallets: Vec<&str> = feed
        .iter()
        .map(|e| e["wallet_id"].as_str().expect("wallet_id"))
        .collect();
    assert_eq!(wallets, [a.as_str(), a.as_str(), b.as_str(), b.as_str()]);
    // Entries record no actor when nobody is authenticated.
    assert!(feed[1]["data"].get("actor").is_none());
}

async fn sigterm_answers_a_waiting_long_poll_and_exits_0(backend: Backend) {
    let database = TestDatabase::create(backend).await.expect("database");
    let mut process = Process::start(&database.url, &[]).await;
    let client = crate::helpers::admin_client();
    // Far past every event: nothing will arrive, so the request waits.
    let poll = tokio::spawn(
        client
            .get(process.url("/wallet/events?after=1000000&wait=30"))
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    process.signal("TERM");
    let reply = poll.await.expect("join").expect("answered, not cut off");
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.json::<Value>().await.expect("json"), json!([]));
    let status = tokio::task::spawn_blocking(move || process.child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "exit status after SIGTERM: {status}");
}

async fn events_written_are_counted_by_type(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("counted", "EUR", "1.00").await;
    app.post("/wallet/deposit", json!({"id": id, "amount": "1.00"}))
        .await;
    settled_feed(&app).await;
    let counted = |text: &str, kind: &str| -> f64 {
        let series = format!("revwallet_events_written_total{{type=\"{kind}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0.0)
    };
    // Numbered (and so counted) a moment after the feed serves them, at the latest on the next round.
    for _ in 0..200 {
        let text = app.get("/metrics").await.text;
        // The backlog gauge comes from housekeeping, which runs at start and every 5 s.
        if counted(&text, "transaction.created") >= 2.0
            && counted(&text, "wallet.opened") >= 1.0
            && text.contains("revwallet_events_unsequenced ")
        {
            // Every type is a series from the start, so a rate() sees it before its first event.
            assert!(text.contains("revwallet_events_written_total{type=\"hold.expired\"} "));
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("revwallet_events_written_total did not count the events");
}

async fn kill_9_during_deposits_leaves_exactly_one_event_per_entry(backend: Backend) {
    let database = TestDatabase::create(backend).await.expect("database");
    let mut process = Process::start(&database.url, &[]).await;
    let client = crate::helpers::admin_client();
    let id = process.create_wallet("crash").await;

    let acknowledged = Arc::new(tokio::sync::Mutex::new(Vec::<String>::new()));
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, url, id, acknowledged) = (
            client.clone(),
            process.url("/wallet/deposit"),
            id.clone(),
            acknowledged.clone(),
        );
        writers.spawn(async move {
            loop {
                let Ok(reply) = client
                    .post(&url)
                    .json(&json!({"id": id, "amount": "0.01"}))
                    .send()
                    .await
                else {
                    break;
                };
                if reply.status().is_success()
                    && let Ok(body) = reply.json::<Value>().await
                    && let Some(entry) = body["transaction"]["id"].as_str()
                {
                    acknowledged.lock().await.push(entry.to_owned());
                }
            }
        });
    }
    while acknowledged.lock().await.len() < 150 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    process.child.kill().expect("kill -9");
    process.child.wait().expect("reap");
    while writers.join_next().await.is_some() {}

    // In the database: exactly one event per entry, and no event without its entry.
    sqlx::any::install_default_drivers();
    // PostgreSQL finishes a COMMIT that was in flight when its client died: count once the killed process's
    // sessions are gone, or an entry may commit after the count.
    wait_until_unused(backend, &database.url).await;
    let mut conn = sqlx::AnyConnection::connect(&database.url)
        .await
        .expect("connect");
    let pairs: Vec<(String, String)> = sqlx::query_as(
        "select cast(t.id as text), cast((select count(*) from events e where e.entry_id = t.id) as text) \
         from transactions t",
    )
    .fetch_all(&mut conn)
    .await
    .expect("entries");
    for (entry, events) in &pairs {
        assert_eq!(events, "1", "entry {entry} has {events} events");
    }
    let orphans: Vec<(String, String)> = sqlx::query_as(
        "select cast(e.id as text), e.type from events e \
         where e.type = 'transaction.created' and not exists (select 1 from transactions t where t.id = e.entry_id)",
    )
    .fetch_all(&mut conn)
    .await
    .expect("orphans");
    assert_eq!(orphans, []);
    conn.close().await.ok();

    // After a restart, the feed serves one event per entry, acknowledged ones included.
    let restarted = Process::start(&database.url, &[]).await;
    let base = restarted.url("");
    let entries: std::collections::HashSet<String> = pairs.into_iter().map(|(e, _)| e).collect();
    let served = loop {
        let served = feed_after(&client, base.trim_end_matches('/'), 0).await;
        let created = served
            .iter()
            .filter(|e| type_of(e) == "transaction.created")
            .count();
        if created >= entries.len() {
            break served;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let from_feed: Vec<String> = served
        .iter()
        .filter(|e| type_of(e) == "transaction.created")
        .map(|e| e["data"]["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(from_feed.len(), entries.len());
    assert_eq!(
        from_feed
            .iter()
            .cloned()
            .collect::<std::collections::HashSet<_>>(),
        entries
    );
    for entry in acknowledged.lock().await.iter() {
        assert!(entries.contains(entry), "acknowledged entry {entry} lost");
    }
}
