//! Webhooks: signed deliveries to real HTTP receivers on 127.0.0.1, retries recorded as attempts, the SSRF guard
//! at creation, one slow endpoint not holding up another, and two server processes delivering each event once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use revwallet::config::{ServeArgs, WebhookArgs};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{Backend, Process, TestApp, TestDatabase, admin_client, postgres_admin_url};

crate::on_both_backends!(
    deliveries_are_signed_and_retried_until_answered_with_every_attempt_listed,
    urls_on_internal_addresses_and_bad_lists_are_refused_unless_allowed,
    an_endpoint_that_never_answers_does_not_hold_up_another,
    the_admin_page_lists_webhooks_with_their_recent_deliveries,
    leases_fan_out_and_retention_hold_in_the_store,
);

/// What a receiver does with one request.
#[derive(Debug, Clone, Copy)]
enum Step {
    Answer(u16),
    /// Never answers.
    Hang,
}

#[derive(Debug, Clone)]
struct Received {
    event_id: String,
    signature: String,
    body: Bytes,
}

/// A real HTTP receiver on 127.0.0.1: it answers by script, then always with `then`, and records every request.
struct Receiver {
    address: SocketAddr,
    seen: Arc<Mutex<Vec<Received>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(script: Vec<Step>, then: Step) -> Self {
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script = Arc::new(Mutex::new(script.into_iter()));
        let handler = {
            let seen = seen.clone();
            move |headers: HeaderMap, body: Bytes| {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                seen.lock().expect("lock").push(Received {
                    event_id: header("revwallet-event-id"),
                    signature: header("revwallet-signature"),
                    body,
                });
                let step = script.lock().expect("lock").next().unwrap_or(then);
                async move {
                    match step {
                        Step::Answer(status) => StatusCode::from_u16(status).expect("status"),
                        Step::Hang => std::future::pending().await,
                    }
                }
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("receiver");
        });
        Self {
            address,
            seen,
            _server: server,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    fn seen(&self) -> Vec<Received> {
        self.seen.lock().expect("lock").clone()
    }

    /// Waits (a minute at most: a liveness bound, not a timing assertion) until `done` holds for what was seen.
    async fn wait_until(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..1200 {
            let seen = self.seen();
            if done(&seen) {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("receiver never saw {what}: {:?}", self.seen());
    }
}

/// Quick settings for tests: private addresses allowed, short timeout and retries.
fn quick(timeout_ms: u64) -> ServeArgs {
    ServeArgs {
        webhooks: WebhookArgs {
            webhook_allow_private: true,
            webhook_timeout_ms: timeout_ms,
            webhook_retry_first_ms: 50,
            webhook_retry_max_ms: 200,
            webhook_poll_ms: 50,
            ..WebhookArgs::default()
        },
        ..ServeArgs::default()
    }
}

async fn spawn(backend: Backend, settings: ServeArgs) -> Option<TestApp> {
    let database = TestDatabase::create(backend).await?;
    Some(TestApp::spawn_on(database, settings).await)
}

/// Recomputes the signature: `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
fn signature_verifies(secret: &str, header: &str, body: &[u8]) -> bool {
    let Some((t, v1)) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == v1
}

async fn deliveries_of(app: &TestApp, webhook: &str) -> Vec<Value> {
    let reply = app
        .get(&format!("/wallet/webhooks/{webhook}/deliveries"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body.as_array().expect("array").clone()
}

async fn deliveries_when(
    app: &TestApp,
    webhook: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..1200 {
        let deliveries = deliveries_of(app, webhook).await;
        if done(&deliveries) {
            return deliveries;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "deliveries never reached the expected state: {:?}",
        deliveries_of(app, webhook).await
    );
}

async fn deliveries_are_signed_and_retried_until_answered_with_every_attempt_listed(
    backend: Backend,
) {
    let Some(app) = spawn(backend, quick(500)).await else {
        return;
    };
    let receiver = Receiver::start(vec![Step::Answer(500), Step::Hang], Step::Answer(200)).await;
    let created = app
        .post(
            "/wallet/webhooks",
            json!({"url": receiver.url(), "events": ["wallet.opened"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let webhook = created.body["id"].as_str().expect("id").to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/wallet/webhooks/{webhook}").as_str())
    );
    let secret = created.body["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(created.body["events"], json!(["wallet.opened"]));

    let wallet = app.create_wallet("hooked", "EUR", "5.00").await;

    let seen = receiver
        .wait_until("three attempts", |seen| seen.len() >= 3)
        .await;
    let first = &seen[0];
    for attempt in &seen[..3] {
        assert_eq!(attempt.event_id, first.event_id, "the same event each time");
        assert_eq!(attempt.body, first.body, "the same body each time");
        assert!(
            signature_verifies(&secret, &attempt.signature, &attempt.body),
            "{attempt:?}"
        );
        assert!(!signature_verifies(
            "whsec_other",
            &attempt.signature,
            &attempt.body
        ));
    }
    let event: Value = serde_json::from_slice(&first.body).expect("JSON body");
    assert_eq!(event["id"].as_str(), Some(first.event_id.as_str()));
    assert_eq!(event["type"], "wallet.opened");
    assert_eq!(event["wallet_id"], wallet.as_str());
    // The event is what the feed serves.
    let feed = app.get("/wallet/events").await;
    assert_eq!(feed.status, 200, "{}", feed.text);
    let served = feed
        .body
        .as_array()
        .expect("array")
        .iter()
        .find(|e| e["id"] == event["id"])
        .cloned();
    assert_eq!(served, Some(event.clone()));
    let body_text = std::str::from_utf8(&first.body).expect("UTF-8");
    assert!(
        feed.text.contains(body_text),
        "byte for byte as the feed serves it"
    );

    let deliveries = deliveries_when(&app, &webhook, |d| {
        d.len() == 1 && d[0]["status"] == "delivered"
    })
    .await;
    let delivery = &deliveries[0];
    assert_eq!(delivery["event_id"].as_str(), Some(first.event_id.as_str()));
    assert_eq!(delivery["type"], "wallet.opened");
    let attempts = delivery["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 3, "{delivery}");
    assert_eq!(attempts[0]["outcome"], "failed");
    assert_eq!(attempts[0]["response_status"], 500);
    assert_eq!(attempts[1]["outcome"], "failed");
    assert!(attempts[1].get("response_status").is_none(), "{delivery}");
    assert!(
        attempts[1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no answer")),
        "{delivery}"
    );
    assert_eq!(attempts[2]["outcome"], "delivered");
    assert_eq!(attempts[2]["response_status"], 200);

    // The receiver example in docs/ verifies this very delivery, and refuses it tampered with or replayed late.
    let body_file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(body_file.path(), &first.body).expect("write body");
    let python = |header: &str, now: Option<String>| {
        let mut command = std::process::Command::new("python3");
        command
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/docs/webhook-receiver.py"
            ))
            .arg("verify")
            .arg(&secret)
            .arg(header)
            .arg(body_file.path());
        command.args(now);
        command.status().expect("python3").success()
    };
    assert!(python(&first.signature, None));
    let t: i64 = first.signature[2..first.signature.find(',').expect(",")]
        .parse()
        .expect("t");
    assert!(!python(&first.signature, Some((t + 3600).to_string())));
    let tampered = first.signature.replace("v1=", "v1=0");
    assert!(!python(&tampered, None));

    // Listed without the secret; deleted once.
    let listed = app.get("/wallet/webhooks").await;
    assert_eq!(
        listed.body.as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.text
    );
    assert!(listed.body[0].get("secret").is_none());
    assert!(!listed.text.contains(&secret));
    assert_eq!(
        app.delete(&format!("/wallet/webhooks/{webhook}"))
            .await
            .status,
        204
    );
    app.delete(&format!("/wallet/webhooks/{webhook}"))
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/wallet/webhooks/{webhook}/deliveries"))
        .await
        .assert_problem(404, "not_found");
}

async fn urls_on_internal_addresses_and_bad_lists_are_refused_unless_allowed(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:9/hook",
        "http://[::1]:9/hook",
        "http://[::ffff:127.0.0.1]:9/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
    ] {
        let reply = app.post("/wallet/webhooks", json!({"url": url})).await;
        reply.assert_problem(422, "invalid_request");
    }
    for body in [
        json!({"url": "ftp://hooks.example.com/"}),
        json!({"url": "not a url"}),
        json!({"url": "https://user:password@hooks.example.com/"}),
        json!({"url": format!("https://hooks.example.com/{}", "a".repeat(3000))}),
        json!({"url": "https://hooks.example.com/", "events": []}),
        json!({"url": "https://hooks.example.com/", "events": ["wallet.exploded"]}),
        json!({"url": "https://hooks.example.com/", "events": ["*", "wallet.opened"]}),
        json!({"url": "https://hooks.example.com/", "extra": 1}),
        json!({"events": ["wallet.opened"]}),
    ] {
        let reply = app.post("/wallet/webhooks", body.clone()).await;
        reply.assert_problem(422, "invalid_request");
    }
    let listed = app.get("/wallet/webhooks").await;
    assert_eq!(listed.body, json!([]), "nothing was created");
    app.get("/wallet/webhooks/abc/deliveries")
        .await
        .assert_problem(404, "not_found");

    // A key below admin may not manage webhooks.
    let write_key = app
        .post("/wallet/keys", json!({"role": "write"}))
        .await
        .body["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let as_writer = crate::helpers::client_with_key(&write_key)
        .get(app.url("/wallet/webhooks"))
        .send()
        .await
        .expect("GET");
    assert_eq!(as_writer.status(), 403);

    let Some(allowing) = spawn(backend, quick(1000)).await else {
        return;
    };
    let reply = allowing
        .post(
            "/wallet/webhooks",
            json!({"url": "http://127.0.0.1:9/hook"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        reply.body["events"],
        json!(["*"]),
        "omitted events mean all"
    );
}

async fn an_endpoint_that_never_answers_does_not_hold_up_another(backend: Backend) {
    // A minute per attempt: the stuck endpoint stays stuck for the whole test.
    let Some(app) = spawn(backend, quick(60_000)).await else {
        return;
    };
    let stuck = Receiver::start(Vec::new(), Step::Hang).await;
    let healthy = Receiver::start(Vec::new(), Step::Answer(204)).await;
    for receiver in [&stuck, &healthy] {
        let reply = app
            .post(
                "/wallet/webhooks",
                json!({"url": receiver.url(), "events": ["wallet.opened"]}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    const WALLETS: usize = 12;
    for n in 0..WALLETS {
        app.create_wallet(&format!("busy-{n}"), "EUR", "0").await;
    }
    let seen = healthy
        .wait_until("every event", |seen| distinct(seen).len() == WALLETS)
        .await;
    assert_eq!(seen.len(), WALLETS, "each event once");
    assert!(!stuck.seen().is_empty(), "the stuck endpoint was tried too");
}

fn distinct(seen: &[Received]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for received in seen {
        *counts.entry(received.event_id.clone()).or_insert(0) += 1;
    }
    counts
}

/// Two server processes on one PostgreSQL database: each event is delivered once, never attempted by both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_postgres_database_deliver_each_event_once() {
    if postgres_admin_url().is_none() {
        return;
    }
    let database = TestDatabase::create(Backend::Postgres)
        .await
        .expect("database");
    let env = [
        ("REVWALLET_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("REVWALLET_WEBHOOK_POLL_MS", "20"),
    ];
    let first = Process::start(&database.url, &env).await;
    let second = Process::start(&database.url, &env).await;
    let receiver = Receiver::start(Vec::new(), Step::Answer(200)).await;
    let created: Value = admin_client()
        .post(first.url("/wallet/webhooks"))
        .json(&json!({"url": receiver.url(), "events": ["wallet.opened", "transaction.created"]}))
        .send()
        .await
        .expect("create webhook")
        .json()
        .await
        .expect("json");
    let webhook = created["id"].as_str().expect("id").to_owned();

    const WALLETS: usize = 20;
    for n in 0..WALLETS {
        let process = if n % 2 == 0 { &first } else { &second };
        let id = process.create_wallet(&format!("replica-{n}")).await;
        let deposited = admin_client()
            .post(process.url("/wallet/deposit"))
            .json(&json!({"id": id, "amount": "1.00"}))
            .send()
            .await
            .expect("deposit");
        assert_eq!(deposited.status(), 200);
    }
    // Each wallet: `wallet.opened`, its opening entry and the deposit (`transaction.created`).
    let expected = 3 * WALLETS;
    receiver
        .wait_until("every event", |seen| distinct(seen).len() >= expected)
        .await;
    // Everything delivered: nothing further can arrive.
    let client = admin_client();
    let mut deliveries = Vec::new();
    for _ in 0..1200 {
        deliveries = client
            .get(second.url(&format!("/wallet/webhooks/{webhook}/deliveries?limit=1000")))
            .send()
            .await
            .expect("deliveries")
            .json::<Vec<Value>>()
            .await
            .expect("json");
        if deliveries.len() == expected && deliveries.iter().all(|d| d["status"] == "delivered") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(deliveries.len(), expected);
    for delivery in &deliveries {
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        assert_eq!(
            delivery["attempts"].as_array().map(Vec::len),
            Some(1),
            "{delivery}"
        );
    }
    let counts = distinct(&receiver.seen());
    assert_eq!(counts.len(), expected);
    assert!(
        counts.values().all(|n| *n == 1),
        "an event arrived twice: {counts:?}"
    );
}

async fn the_admin_page_lists_webhooks_with_their_recent_deliveries(backend: Backend) {
    let Some(app) = spawn(backend, quick(1000)).await else {
        return;
    };
    let receiver = Receiver::start(vec![Step::Answer(503)], Step::Answer(200)).await;
    let created = app
        .post(
            "/wallet/webhooks",
            json!({"url": receiver.url(), "events": ["wallet.opened"]}),
        )
        .await;
    let webhook = created.body["id"].as_str().expect("id").to_owned();
    app.create_wallet("paged", "EUR", "0").await;
    deliveries_when(&app, &webhook, |d| {
        d.len() == 1 && d[0]["status"] == "delivered"
    })
    .await;

    let home = app.page("/").await;
    assert_eq!(home.status, 200, "{}", home.text);
    assert!(
        home.text.contains(r#"href="/ui/webhooks""#),
        "admins are linked to the page"
    );
    let page = app.page("/ui/webhooks").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains(&receiver.url()), "{}", page.text);
    assert!(page.text.contains("wallet.opened"), "{}", page.text);
    assert!(page.text.contains(">delivered<"), "{}", page.text);
    assert!(page.text.contains("HTTP 200"), "{}", page.text);
    let secret = created.body["secret"].as_str().expect("secret");
    assert!(
        !page.text.contains(secret),
        "the secret is never shown again"
    );

    // Below admin: no link, and the page is refused.
    let reader = app
        .post("/wallet/keys", json!({"role": "write"}))
        .await
        .body["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let cookie = app.sign_in(&reader).await;
    let home = app.page_as(&cookie, "/").await;
    assert_eq!(home.status, 200);
    assert!(!home.text.contains("/ui/webhooks"));
    assert_eq!(app.page_as(&cookie, "/ui/webhooks").await.status, 403);
}

/// The store alone (no worker running): the dispatcher's compare-and-set, claims under a lease, a lapsed lease
/// taken over, and retention.
async fn leases_fan_out_and_retention_hold_in_the_store(backend: Backend) {
    use chrono::Utc;
    use revwallet::store::{
        AttemptRecord, FeedItem, NewWebhook, NextStep, SecretKind, Store, StoredSecret,
    };

    let Some(database) = TestDatabase::create(backend).await else {
        return;
    };
    let store = Store::connect(
        &database.url,
        &ServeArgs::default().database.store_options(),
    )
    .expect("store");
    store.migrate().await.expect("migrate");
    let new = |events: &[&str]| NewWebhook {
        url: "https://hooks.example.com/".to_owned(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        secret: StoredSecret {
            kind: SecretKind::Plain,
            value: "whsec_x".to_owned(),
        },
    };
    let all = store
        .create_webhook(&new(&["*"]), 2)
        .await
        .expect("create")
        .expect("created");
    let holds = store
        .create_webhook(&new(&["hold.created"]), 2)
        .await
        .expect("create")
        .expect("created");
    assert!(
        store
            .create_webhook(&new(&["*"]), 2)
            .await
            .expect("create")
            .is_none(),
        "the bound holds"
    );
    let item = |id: i64, kind: &str| FeedItem {
        event_id: id,
        event_type: kind.to_owned(),
        payload: format!(r#"{{"id":"{id}"}}"#),
    };
    let items = [item(1, "wallet.opened"), item(2, "hold.created")];
    assert!(store.fan_out(0, 2, &items).await.expect("fan out"));
    // A replica that read the old position changes nothing.
    assert!(!store.fan_out(0, 2, &items).await.expect("fan out"));
    assert_eq!(store.dispatch_position().await.expect("position"), 2);
    let count = |webhook: i64| {
        let store = store.clone();
        async move {
            store
                .list_deliveries(webhook, None, 100)
                .await
                .expect("list")
                .items
                .len()
        }
    };
    assert_eq!(count(all.id).await, 2);
    assert_eq!(count(holds.id).await, 1, "only the types it asked for");

    // Claimed until a lease: nobody else gets the deliveries meanwhile.
    let in_a_minute = Utc::now() + chrono::Duration::minutes(1);
    let claimed = store
        .claim_deliveries(10, 4, in_a_minute)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 3);
    assert!(
        store
            .claim_deliveries(10, 4, in_a_minute)
            .await
            .expect("claim")
            .is_empty()
    );
    let done = AttemptRecord {
        started_at: Utc::now(),
        finished_at: Utc::now(),
        response_status: Some(200),
        error: None,
        next: NextStep::Delivered,
    };
    for delivery in &claimed[1..] {
        assert!(store.finish_attempt(delivery, &done).await.expect("finish"));
    }

    // A replica that died: its lease lapses and another takes the delivery over; the dead one's late result is
    // not recorded.
    let lapsed = Utc::now() - chrono::Duration::seconds(1);
    let dead = store.claim_deliveries(10, 4, lapsed).await.expect("claim");
    assert!(dead.is_empty(), "still leased by the first claim");
    let stuck = &claimed[0];
    store
        .finish_attempt(
            stuck,
            &AttemptRecord {
                next: NextStep::RetryAt(Utc::now() - chrono::Duration::seconds(1)),
                response_status: Some(500),
                ..done.clone()
            },
        )
        .await
        .expect("finish");
    let crashed = store.claim_deliveries(10, 4, lapsed).await.expect("claim");
    assert_eq!(crashed.len(), 1);
    let survivor = store
        .claim_deliveries(10, 4, in_a_minute)
        .await
        .expect("claim");
    assert_eq!(survivor.len(), 1, "the lapsed lease is taken over");
    assert!(
        !store
            .finish_attempt(&crashed[0], &done)
            .await
            .expect("finish"),
        "lease lost"
    );
    assert!(
        store
            .finish_attempt(&survivor[0], &done)
            .await
            .expect("finish")
    );
    let stuck_delivery = store
        .list_deliveries(stuck.webhook_id, None, 100)
        .await
        .expect("list")
        .items
        .into_iter()
        .find(|d| d.id == stuck.id)
        .expect("delivery");
    assert_eq!(stuck_delivery.status, "delivered");
    assert_eq!(
        stuck_delivery.attempts.len(),
        2,
        "the 500, then the survivor's 200"
    );
    let backlog = store.delivery_backlog().await.expect("backlog");
    assert_eq!((backlog.pending, backlog.oldest_due), (0, None));

    // Retention: finished deliveries older than the cutoff go, with their attempts.
    assert_eq!(
        store
            .prune_deliveries(Utc::now() - chrono::Duration::hours(1), 1000)
            .await
            .expect("prune"),
        0
    );
    assert_eq!(
        revwallet::webhooks::prune(&store, std::time::Duration::ZERO)
            .await
            .expect("prune"),
        3
    );
    assert_eq!(count(all.id).await, 0);

    // Events every webhook has passed are pruned too, but never the newest: positions continue after it.
    if backend == Backend::Sqlite {
        // (SQLite numbers events as they are written; PostgreSQL's sequencer runs only in a server.)
        let eur = revwallet::domain::Currency::parse("EUR").expect("EUR");
        for owner in ["old-1", "old-2"] {
            store
                .create_wallet(
                    owner,
                    eur,
                    revwallet::domain::Amount::ZERO,
                    &revwallet::store::Memo::default(),
                    None,
                )
                .await
                .expect("wallet");
        }
        let top = store
            .events_after(0, 100, None)
            .await
            .expect("feed")
            .last()
            .expect("events")
            .id;
        assert!(store.fan_out(2, top, &[]).await.expect("advance"));
        revwallet::webhooks::prune(&store, std::time::Duration::ZERO)
            .await
            .expect("prune");
        let left = store.events_after(0, 100, None).await.expect("feed");
        assert_eq!(left.iter().map(|e| e.id).collect::<Vec<_>>(), vec![top]);
        store
            .create_wallet(
                "new",
                eur,
                revwallet::domain::Amount::ZERO,
                &revwallet::store::Memo::default(),
                None,
            )
            .await
            .expect("wallet");
        let next = store.events_after(top, 100, None).await.expect("feed");
        assert!(
            !next.is_empty() && next.iter().all(|e| e.id > top),
            "positions continue"
        );
    }
    assert!(store.delete_webhook(all.id).await.expect("delete"));
    assert!(!store.delete_webhook(all.id).await.expect("delete"));

    // With a webhook the dispatcher reads the feed; with none it only moves its cursor to the end.
    let position = store.dispatch_position().await.expect("position");
    assert!(!store.skip_unwatched_events(position).await.expect("skip"));
    assert!(store.delete_webhook(holds.id).await.expect("delete"));
    assert!(store.skip_unwatched_events(position).await.expect("skip"));
    let end = store
        .events_after(0, 1000, None)
        .await
        .expect("feed")
        .last()
        .map_or(position, |e| e.id);
    assert_eq!(
        store.dispatch_position().await.expect("position"),
        end.max(position)
    );
    store.close().await;
}
