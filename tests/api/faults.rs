//! Faults: the database going away, kill -9 in the middle of a stream of deposits, a corrupted balance,
//! and SIGTERM with requests in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use revwallet::config::ServeArgs;
use revwallet::store::Store;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

use sqlx::Connection;

use crate::helpers::{Backend, Process, TestApp, TestDatabase, postgres_admin_url, run_audit};

crate::on_both_backends!(
    kill_9_during_deposits_loses_no_acknowledged_operation,
    audit_names_a_wallet_whose_balance_was_corrupted,
    sigterm_lets_in_flight_requests_finish_and_exits_0,
    clients_hanging_up_mid_request_leave_nothing_locked,
);

/// PostgreSQL only: an embedded SQLite file cannot drop out from under the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_keyed_request_cut_off_by_an_outage_leaves_its_key_free_for_the_retry() {
    if postgres_admin_url().is_none() {
        return;
    }
    let database = TestDatabase::create(Backend::Postgres)
        .await
        .expect("database");
    let direct = reqwest::Url::parse(&database.url).expect("url");
    let (proxy, app) = Proxy::serve(database).await;
    let app = Arc::new(app);
    let id = app.create_wallet("outage", "EUR", "1.00").await;

    // Hold the wallet's row so the keyed deposit claims its key, then waits inside its transaction.
    let mut holder = sqlx::PgConnection::connect(direct.as_str())
        .await
        .expect("connect");
    sqlx::query("begin")
        .execute(&mut holder)
        .await
        .expect("begin");
    sqlx::query("select id from wallets where id = $1 for update")
        .bind(id.parse::<i64>().expect("id"))
        .execute(&mut holder)
        .await
        .expect("lock");
    let body = json!({"id": id, "amount": "5.00"});
    let first = tokio::spawn({
        let (app, body) = (app.clone(), body.clone());
        async move { app.post_with_key("/wallet/deposit", "outage-1", body).await }
    });
    let mut waiting = false;
    for _ in 0..1000 {
        let blocked: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()",
        )
        .fetch_one(&mut holder)
        .await
        .expect("pg_stat_activity");
        if blocked > 0 {
            waiting = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(waiting, "the deposit never reached the row lock");

    // The outage: the deposit's connection dies before COMMIT, and its key cannot be released.
    proxy.cut().await;
    let cut_off = first.await.expect("first request");
    cut_off.assert_problem(503, "service_unavailable");
    sqlx::query("rollback")
        .execute(&mut holder)
        .await
        .expect("rollback");
    // Outlast the release's own attempt (the pool's acquire timeout), so the claim is really left behind.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    proxy.restore();

    // The client retries as told (503: retry later) until the pool has replaced the connections the outage killed.
    let mut retry = app
        .post_with_key("/wallet/deposit", "outage-1", body.clone())
        .await;
    for _ in 0..100 {
        if retry.status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        retry = app
            .post_with_key("/wallet/deposit", "outage-1", body.clone())
            .await;
    }
    assert_eq!(retry.status, 200, "the retry ran: {}", retry.text);
    let again = app.post_with_key("/wallet/deposit", "outage-1", body).await;
    assert_eq!(again.status, 200);
    // The pool may still hold connections the outage killed; each is found on use (503: retry), as above.
    let mut read = app.get(&format!("/wallet/{id}")).await;
    for _ in 0..100 {
        if read.status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        read = app.get(&format!("/wallet/{id}")).await;
    }
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(
        read.body["balance"], "6.00",
        "applied exactly once: before the outage nothing was, after it the retry was"
    );
}

/// A TCP proxy in front of PostgreSQL that can be cut (connections dropped, new ones refused) and restored.
struct Proxy {
    address: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<tokio::task::JoinSet<()>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let address = listener.local_addr().expect("address");
        let up = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(Mutex::new(tokio::task::JoinSet::new()));
        let (flag, set) = (up.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close at once
                }
                let upstream = upstream.clone();
                set.lock().await.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self {
            address,
            up,
            connections,
        }
    }

    async fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.connections.lock().await.abort_all();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// A revwallet whose connections to `database` all go through a new proxy.
    async fn serve(database: TestDatabase) -> (Self, TestApp) {
        let direct = reqwest::Url::parse(&database.url).expect("url");
        let proxy = Self::start(format!(
            "{}:{}",
            direct.host_str().expect("host"),
            direct.port().unwrap_or(5432)
        ))
        .await;
        let mut proxied = direct.clone();
        proxied.set_port(Some(proxy.address.port())).expect("port");
        proxied.set_host(Some("127.0.0.1")).expect("host");
        let settings = ServeArgs::default();
        let store =
            Store::connect(proxied.as_str(), &settings.database.store_options()).expect("store");
        store.migrate().await.expect("migrate");
        (proxy, TestApp::serve(database, store, settings).await)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_unreachable_answers_503_fast_and_recovers_without_restart() {
    if postgres_admin_url().is_none() {
        return;
    }
    let database = TestDatabase::create(Backend::Postgres)
        .await
        .expect("database");
    let (proxy, app) = Proxy::serve(database).await;
    let id = app.create_wallet("fragile", "EUR", "1.00").await;

    proxy.cut().await;
    for path in ["/readyz", &format!("/wallet/{id}")] {
        let started = Instant::now();
        let reply = app.get(path).await;
        reply.assert_problem(503, "service_unavailable");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path} took {:?}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    app.post("/wallet/deposit", json!({"id": id, "amount": "1"}))
        .await
        .assert_problem(503, "service_unavailable");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        app.get("/healthz").await.status,
        200,
        "liveness does not depend on the database"
    );

    proxy.restore();
    let mut recovered = false;
    for _ in 0..100 {
        if app.get("/readyz").await.status == 200 {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "readyz did not recover");
    let deposit = app
        .post("/wallet/deposit", json!({"id": id, "amount": "1"}))
        .await;
    assert_eq!(deposit.status, 200, "{}", deposit.text);
    assert_eq!(
        app.balance(&id).await,
        "2.00",
        "the refused deposit was not applied"
    );
}

async fn kill_9_during_deposits_loses_no_acknowledged_operation(backend: Backend) {
    let database = TestDatabase::create(backend).await.expect("database");
    let mut process = Process::start(&database.url, &[]).await;
    let client = crate::helpers::admin_client();
    let id = process.create_wallet("crash").await;

    // Eight writers deposit as fast as they can and remember every acknowledged ledger entry.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
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
                let reply = client
                    .post(&url)
                    .json(&json!({"id": id, "amount": "0.01"}))
                    .send()
                    .await;
                let Ok(reply) = reply else { break };
                if reply.status().is_success()
                    && let Ok(body) = reply.json::<Value>().await
                {
                    let entry = body["transaction"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    acknowledged.lock().await.push(entry);
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

    let restarted = Process::start(&database.url, &[]).await;
    let history: Vec<Value> = client
        .get(restarted.url(&format!("/wallet/{id}/transactions?limit=1000")))
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("json");
    let in_ledger: std::collections::HashSet<String> = history
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let acknowledged = acknowledged.lock().await;
    for entry in acknowledged.iter() {
        assert!(
            in_ledger.contains(entry),
            "acknowledged entry {entry} is missing after kill -9"
        );
    }
    let deposits = history.iter().filter(|e| e["type"] == "deposit").count();
    assert!(deposits >= acknowledged.len());
    drop(restarted);
    let (clean, output) = run_audit(&database.url);
    assert!(clean, "audit after kill -9: {output}");
}

async fn audit_names_a_wallet_whose_balance_was_corrupted(backend: Backend) {
    let app = TestApp::spawn(backend).await.expect("backend configured");
    let healthy = app.create_wallet("healthy", "EUR", "10").await;
    let victim = app.create_wallet("victim", "EUR", "10").await;
    app.post("/wallet/deposit", json!({"id": victim, "amount": "5"}))
        .await;
    let (clean, output) = run_audit(&app.database.url);
    assert!(clean, "{output}");

    app.execute(
        "update wallets set balance = balance + 1 where id = cast($1 as bigint)",
        &victim,
    )
    .await;
    let (clean, output) = run_audit(&app.database.url);
    assert!(!clean, "audit must fail on a corrupted balance: {output}");
    assert!(output.contains(&format!("wallet {victim}:")), "{output}");
    assert!(!output.contains(&format!("wallet {healthy}:")), "{output}");
}

async fn sigterm_lets_in_flight_requests_finish_and_exits_0(backend: Backend) {
    let database = TestDatabase::create(backend).await.expect("database");
    let mut process = Process::start(&database.url, &[]).await;
    let client = crate::helpers::admin_client();
    let id = process.create_wallet("term").await;
    let in_flight: Vec<_> = (0..50)
        .map(|_| {
            client
                .post(process.url("/wallet/deposit"))
                .json(&json!({"id": id, "amount": "1"}))
                .send()
        })
        .collect();
    let requests = tokio::spawn(futures::future::join_all(in_flight));
    tokio::time::sleep(Duration::from_millis(20)).await;
    process.signal("TERM");
    let replies = requests.await.expect("join");
    for reply in replies.iter().flatten() {
        assert!(
            !reply.status().is_server_error(),
            "a request got {} during shutdown",
            reply.status()
        );
    }
    let status = tokio::task::spawn_blocking(move || process.child.wait())
        .await
        .expect("join")
        .expect("wait");
    assert!(status.success(), "exit status after SIGTERM: {status}");
    let (clean, output) = run_audit(&database.url);
    assert!(clean, "{output}");
}

async fn clients_hanging_up_mid_request_leave_nothing_locked(backend: Backend) {
    let app = TestApp::spawn(backend).await.expect("backend configured");
    // Enough that the bursts' withdrawals and transfers never drain it (batched SQLite writes are fast).
    let id = app.create_wallet("hangups", "EUR", "1000000.00").await;
    let other = app.create_wallet("other", "EUR", "0").await;
    // Bursts of 64 clients sending writes back to back, all cut off mid-request when the burst ends, the way a
    // load generator stops. A handler dropped inside a transaction used to leave SQLite's write lock held.
    for _ in 0..3 {
        let mut clients = tokio::task::JoinSet::new();
        for n in 0..64 {
            let (client, base, id, other) =
                (app.client.clone(), app.url(""), id.clone(), other.clone());
            clients.spawn(async move {
                loop {
                    let (path, body) = match n % 3 {
                        0 => ("/wallet/deposit", json!({"id": id, "amount": "1.00"})),
                        1 => ("/wallet/withdraw", json!({"id": id, "amount": "1.00"})),
                        _ => (
                            "/wallet/transfer",
                            json!({"from_id": id, "to_id": other, "amount": "1.00"}),
                        ),
                    };
                    let _ = client
                        .post(format!("{base}{path}"))
                        .json(&body)
                        .send()
                        .await;
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        clients.abort_all();
        while clients.join_next().await.is_some() {}
    }
    // Fresh connections: the cut ones are gone.
    let client = crate::helpers::admin_client();
    for (path, body) in [
        ("/wallet/deposit", json!({"id": id, "amount": "1.00"})),
        ("/wallet/withdraw", json!({"id": id, "amount": "1.00"})),
        (
            "/wallet/transfer",
            json!({"from_id": id, "to_id": other, "amount": "1.00"}),
        ),
    ] {
        let reply = crate::helpers::Reply::read(
            client
                .post(app.url(path))
                .json(&body)
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert_eq!(
            reply.status, 200,
            "{path} after the hang-ups: {}",
            reply.text
        );
    }
    assert_eq!(app.audit_findings().await, 0);
}
