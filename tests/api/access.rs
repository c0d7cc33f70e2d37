//! Access control (SPEC §8): roles on every route, owner-bound keys, credentials of every bad shape, revocation
//! across processes, the bootstrap and first-start keys, the actor on entries, idempotency per API key.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_KEY, Backend, Process, Reply, TestApp, TestDatabase, client_with_key};

crate::on_both_backends!(
    each_role_may_use_exactly_its_routes,
    an_owner_bound_key_sees_and_acts_only_on_its_owners_wallets,
    a_transfer_into_another_owners_wallet_shows_only_its_id,
    bad_credentials_of_every_shape_are_401_problem_json_and_change_nothing,
    every_entry_records_the_key_that_caused_it,
    the_same_idempotency_key_from_two_api_keys_applies_twice,
    keys_are_managed_through_the_admin_api_and_never_show_their_secret_again,
    a_key_revoked_through_one_server_stops_working_on_another_within_seconds,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn(backend).await.expect("backend configured")
}

/// Creates a key through the admin API; returns its id and secret.
async fn create_key(app: &TestApp, role: &str, owner: Option<&str>) -> (String, String) {
    let mut body = json!({"role": role, "name": format!("{role} key")});
    if let Some(owner) = owner {
        body["owner"] = json!(owner);
    }
    let reply = app.post("/wallet/keys", body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let id = reply.body["id"].as_str().expect("id").to_owned();
    let secret = reply.body["key"].as_str().expect("key").to_owned();
    assert!(secret.starts_with("rw_") && secret.len() >= 35);
    (id, secret)
}

/// One request with an explicit key (or none) and any headers.
async fn send(
    app: &TestApp,
    key: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let client = reqwest::Client::new();
    let mut request = client.request(method, app.url(path));
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    Reply::read(request.send().await.expect("request")).await
}

async fn each_role_may_use_exactly_its_routes(backend: Backend) {
    let app = app(backend).await;
    let (_, read) = create_key(&app, "read", None).await;
    let (_, write) = create_key(&app, "write", None).await;
    let (_, admin) = create_key(&app, "admin", None).await;
    let a = app.create_wallet("roles", "EUR", "100").await;
    let b = app.create_wallet("roles", "EUR", "0").await;
    // (method, path, body, the lowest role allowed, the success status)
    let routes: Vec<(Method, String, Option<Value>, &str, u16)> = vec![
        (Method::GET, "/wallet/".into(), None, "read", 200),
        (Method::GET, "/wallet".into(), None, "read", 200),
        (Method::GET, format!("/wallet/{a}"), None, "read", 200),
        (
            Method::GET,
            format!("/wallet/balance/{a}"),
            None,
            "read",
            200,
        ),
        (
            Method::GET,
            format!("/wallet/{a}/transactions"),
            None,
            "read",
            200,
        ),
        (
            Method::GET,
            "/wallet/openapi.json".into(),
            None,
            "read",
            200,
        ),
        (
            Method::POST,
            "/wallet/".into(),
            Some(json!({"owner": "roles", "currency": "EUR"})),
            "write",
            201,
        ),
        (
            Method::POST,
            "/wallet/deposit".into(),
            Some(json!({"id": a, "amount": "1"})),
            "write",
            200,
        ),
        (
            Method::POST,
            "/wallet/withdraw".into(),
            Some(json!({"id": a, "amount": "1"})),
            "write",
            200,
        ),
        (
            Method::POST,
            "/wallet/transfer".into(),
            Some(json!({"from_id": a, "to_id": b, "amount": "1"})),
            "write",
            200,
        ),
        (Method::GET, format!("/wallet/{a}/holds"), None, "read", 200),
        (
            Method::POST,
            "/wallet/holds".into(),
            Some(json!({"wallet_id": a, "amount": "1"})),
            "write",
            201,
        ),
        (Method::GET, "/wallet/keys".into(), None, "admin", 200),
        (
            Method::POST,
            "/wallet/keys".into(),
            Some(json!({"role": "read"})),
            "admin",
            201,
        ),
        (
            Method::DELETE,
            "/wallet/keys/0000000000000000".into(),
            None,
            "admin",
            404,
        ),
    ];
    let rank = |role: &str| ["read", "write", "admin"].iter().position(|r| *r == role);
    for (role, key) in [("read", &read), ("write", &write), ("admin", &admin)] {
        for (method, path, body, lowest, success) in &routes {
            let reply = send(&app, Some(key), method.clone(), path, body.clone()).await;
            if rank(role) >= rank(lowest) {
                assert_eq!(
                    reply.status, *success,
                    "{role} {method} {path}: {}",
                    reply.text
                );
            } else {
                reply.assert_problem(403, "forbidden");
            }
        }
    }
    // Closing needs admin; a refused close changes nothing.
    let before = app.snapshot().await;
    for key in [&read, &write] {
        send(
            &app,
            Some(key),
            Method::DELETE,
            &format!("/wallet/{b}"),
            None,
        )
        .await
        .assert_problem(403, "forbidden");
    }
    assert_eq!(app.snapshot().await, before);
    let closed = send(
        &app,
        Some(&admin),
        Method::DELETE,
        &format!("/wallet/{b}"),
        None,
    )
    .await;
    assert_eq!(closed.status, 204, "{}", closed.text);
    // 403 never says whether a wallet exists: the same answer for a wallet that never was.
    let unknown = send(
        &app,
        Some(&read),
        Method::POST,
        "/wallet/deposit",
        Some(json!({"id": "999", "amount": "1"})),
    )
    .await;
    unknown.assert_problem(403, "forbidden");
    // The operations endpoints need no key.
    for path in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(
            send(&app, None, Method::GET, path, None).await.status,
            200,
            "{path}"
        );
    }
}

async fn an_owner_bound_key_sees_and_acts_only_on_its_owners_wallets(backend: Backend) {
    let app = app(backend).await;
    let (_, alice) = create_key(&app, "write", Some("alice")).await;
    let (_, alice_reader) = create_key(&app, "read", Some("alice")).await;
    let own = app.create_wallet("alice", "EUR", "50").await;
    let other = app.create_wallet("bob", "EUR", "70").await;
    let untouched = app.snapshot().await;
    // Another owner's wallet is as absent as one that never existed, on every route.
    let missing: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/wallet/{other}"), None),
        (Method::GET, format!("/wallet/balance/{other}"), None),
        (Method::GET, format!("/wallet/{other}/transactions"), None),
        (
            Method::POST,
            "/wallet/deposit".into(),
            Some(json!({"id": other, "amount": "1"})),
        ),
        (
            Method::POST,
            "/wallet/withdraw".into(),
            Some(json!({"id": other, "amount": "1"})),
        ),
        (
            Method::POST,
            "/wallet/transfer".into(),
            Some(json!({"from_id": other, "to_id": own, "amount": "1"})),
        ),
    ];
    for (method, path, body) in &missing {
        let theirs = send(&app, Some(&alice), method.clone(), path, body.clone()).await;
        theirs.assert_problem(404, "wallet_not_found");
        let nowhere = path.replace(&format!("/{other}"), "/999");
        let body = body.as_ref().map(|b| {
            serde_json::from_str::<Value>(
                &b.to_string().replace(&format!("\"{other}\""), "\"999\""),
            )
            .expect("json")
        });
        let never = send(&app, Some(&alice), method.clone(), &nowhere, body).await;
        assert_eq!(
            (theirs.status, theirs.body["code"].clone()),
            (never.status, never.body["code"].clone()),
            "{method} {path}: another owner's wallet must read as a missing one"
        );
    }
    assert_eq!(app.snapshot().await, untouched, "refusals changed nothing");
    // Holds of another owner's wallet are as absent as missing ones; their wallet cannot be held.
    let bobs_hold = app
        .post("/wallet/holds", json!({"wallet_id": other, "amount": "5"}))
        .await;
    assert_eq!(bobs_hold.status, 201, "{}", bobs_hold.text);
    let hold = bobs_hold.body["id"].as_str().expect("hold id").to_owned();
    let before = app.snapshot().await;
    for (method, path, body) in [
        (Method::GET, format!("/wallet/holds/{hold}"), None),
        (
            Method::POST,
            format!("/wallet/holds/{hold}/capture"),
            Some(json!({})),
        ),
        (
            Method::POST,
            format!("/wallet/holds/{hold}/void"),
            Some(json!({})),
        ),
    ] {
        let theirs = send(&app, Some(&alice), method.clone(), &path, body.clone()).await;
        let never = send(
            &app,
            Some(&alice),
            method,
            &path.replace(&hold, "999999"),
            body,
        )
        .await;
        assert_eq!(theirs.status, 404, "{path}: {}", theirs.text);
        assert_eq!(theirs.body["code"], never.body["code"], "{path}");
    }
    send(
        &app,
        Some(&alice),
        Method::POST,
        "/wallet/holds",
        Some(json!({"wallet_id": other, "amount": "1"})),
    )
    .await
    .assert_problem(404, "wallet_not_found");
    send(
        &app,
        Some(&alice),
        Method::GET,
        &format!("/wallet/{other}/holds"),
        None,
    )
    .await
    .assert_problem(404, "wallet_not_found");
    assert_eq!(app.snapshot().await, before, "refusals changed nothing");
    // Opening a wallet for another owner is forbidden; for its own owner it works.
    send(
        &app,
        Some(&alice),
        Method::POST,
        "/wallet/",
        Some(json!({"owner": "bob", "currency": "EUR"})),
    )
    .await
    .assert_problem(403, "forbidden");
    assert_eq!(app.snapshot().await, before, "refusals changed nothing");
    let opened = send(
        &app,
        Some(&alice),
        Method::POST,
        "/wallet/",
        Some(json!({"owner": " alice ", "currency": "EUR"})),
    )
    .await;
    assert_eq!(opened.status, 201, "{}", opened.text);
    // Listing shows its owner's wallets only, whatever the filter asks for.
    for path in ["/wallet/", "/wallet/?owner=alice", "/wallet/?owner=bob"] {
        let listed = send(&app, Some(&alice_reader), Method::GET, path, None).await;
        assert_eq!(listed.status, 200);
        let owners: Vec<&str> = listed
            .body
            .as_array()
            .expect("array")
            .iter()
            .map(|w| w["owner"].as_str().expect("owner"))
            .collect();
        assert!(owners.iter().all(|o| *o == "alice"), "{path}: {owners:?}");
        if path.ends_with("bob") {
            assert!(owners.is_empty());
        } else {
            assert_eq!(owners.len(), 2);
        }
    }
    // Its own wallets work as usual.
    let moved = send(
        &app,
        Some(&alice),
        Method::POST,
        "/wallet/deposit",
        Some(json!({"id": own, "amount": "5"})),
    )
    .await;
    assert_eq!(moved.body["balance"], "55.00", "{}", moved.text);
    assert_eq!(app.balance(&other).await, "70.00");
}

async fn a_transfer_into_another_owners_wallet_shows_only_its_id(backend: Backend) {
    let app = app(backend).await;
    let (_, alice) = create_key(&app, "write", Some("alice")).await;
    let own = app.create_wallet("alice", "EUR", "50").await;
    let second = app.create_wallet("alice", "EUR", "0").await;
    let bobs = app.create_wallet("bob", "EUR", "70").await;
    let paid = send(
        &app,
        Some(&alice),
        Method::POST,
        "/wallet/transfer",
        Some(json!({"from_id": own, "to_id": bobs, "amount": "20"})),
    )
    .await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    assert_eq!(paid.body["from"]["balance"], "30.00");
    assert_eq!(
        paid.body["to"],
        json!({"id": bobs}),
        "neither owner nor balance of bob's wallet"
    );
    assert!(
        !paid.text.contains("bob") && !paid.text.contains("90.00"),
        "{}",
        paid.text
    );
    assert_eq!(app.balance(&bobs).await, "90.00");
    // Between its own wallets it sees both sides.
    let inside = send(
        &app,
        Some(&alice),
        Method::POST,
        "/wallet/transfer",
        Some(json!({"from_id": own, "to_id": second, "amount": "5"})),
    )
    .await;
    assert_eq!(inside.body["to"]["balance"], "5.00", "{}", inside.text);
    assert_eq!(app.audit_findings().await, 0);
}

async fn bad_credentials_of_every_shape_are_401_problem_json_and_change_nothing(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("creds", "EUR", "10").await;
    let (revoked_id, revoked) = create_key(&app, "write", None).await;
    assert_eq!(
        app.delete(&format!("/wallet/keys/{revoked_id}"))
            .await
            .status,
        204
    );
    let before = app.snapshot().await;
    let valid_shape_unknown = format!("rw_{}", "0".repeat(64));
    let headers: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("empty", Some(String::new())),
        ("scheme only", Some("Bearer".to_owned())),
        ("empty key", Some("Bearer ".to_owned())),
        (
            "wrong prefix",
            Some(format!("Bearer sk_{}", "a".repeat(64))),
        ),
        ("truncated", Some(format!("Bearer {}", &ADMIN_KEY[..20]))),
        (
            "10 KB",
            Some(format!("Bearer rw_{}", "a".repeat(10 * 1024))),
        ),
        ("another scheme", Some(format!("Basic {ADMIN_KEY}"))),
        ("unknown", Some(format!("Bearer {valid_shape_unknown}"))),
        ("revoked", Some(format!("Bearer {revoked}"))),
        (
            "admin key with a byte changed",
            Some(format!("Bearer {}x", &ADMIN_KEY[..ADMIN_KEY.len() - 1])),
        ),
    ];
    for (shape, header) in &headers {
        for (method, path, body) in [
            (Method::GET, format!("/wallet/{id}"), None),
            (
                Method::POST,
                "/wallet/withdraw".to_owned(),
                Some(json!({"id": id, "amount": "10"})),
            ),
            (Method::GET, "/wallet/nowhere/at/all".to_owned(), None),
        ] {
            let mut request = reqwest::Client::new().request(method.clone(), app.url(&path));
            if let Some(header) = header {
                request = request.header("authorization", header);
            }
            if let Some(body) = body {
                request = request.json(&body);
            }
            let reply = Reply::read(request.send().await.expect("request")).await;
            reply.assert_problem(401, "unauthenticated");
            assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{shape}");
            assert!(
                !reply.text.contains(ADMIN_KEY) && !reply.text.contains(&revoked),
                "{shape}"
            );
        }
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "no bad credential changed anything"
    );
    let metrics = app.get("/metrics").await.text;
    for reason in ["missing", "malformed", "unknown", "revoked"] {
        assert!(
            metrics.contains(&format!(
                "revwallet_auth_failures_total{{reason=\"{reason}\"}}"
            )),
            "{reason} counted"
        );
    }
}

async fn every_entry_records_the_key_that_caused_it(backend: Backend) {
    let app = app(backend).await;
    let (writer_id, writer) = create_key(&app, "write", None).await;
    let admin_id = revwallet::domain::KeySecret::parse(ADMIN_KEY)
        .expect("key")
        .id();
    let id = app.create_wallet("actors", "EUR", "10").await;
    let other = app.create_wallet("actors", "EUR", "0").await;
    let as_writer = client_with_key(&writer);
    for (path, body) in [
        ("/wallet/deposit", json!({"id": id, "amount": "5"})),
        ("/wallet/withdraw", json!({"id": id, "amount": "1"})),
        (
            "/wallet/transfer",
            json!({"from_id": id, "to_id": other, "amount": "2"}),
        ),
    ] {
        let reply = as_writer
            .post(app.url(path))
            .json(&body)
            .send()
            .await
            .expect("post");
        assert_eq!(reply.status(), 200);
    }
    let history = app.history(&id).await;
    let actors: Vec<(&str, &str)> = history
        .iter()
        .map(|e| {
            (
                e["type"].as_str().expect("type"),
                e["actor"].as_str().expect("actor"),
            )
        })
        .collect();
    assert_eq!(
        actors,
        vec![
            ("transfer_out", writer_id.as_str()),
            ("withdrawal", writer_id.as_str()),
            ("deposit", writer_id.as_str()),
            ("opening", admin_id.as_str()),
        ]
    );
    assert_eq!(
        app.history(&other).await[0]["actor"],
        writer_id.as_str(),
        "both legs"
    );
    // A captured hold's withdrawal is the capturing key's entry.
    let held = as_writer
        .post(app.url("/wallet/holds"))
        .json(&json!({"wallet_id": id, "amount": "1"}))
        .send()
        .await
        .expect("hold");
    let hold: Value = held.json().await.expect("json");
    let hold_id = hold["id"].as_str().expect("hold id");
    let captured = app
        .post(&format!("/wallet/holds/{hold_id}/capture"), json!({}))
        .await;
    assert_eq!(captured.status, 200, "{}", captured.text);
    assert_eq!(captured.body["transaction"]["actor"], admin_id.as_str());
    // Closing by the admin is the admin's entry.
    assert_eq!(app.delete(&format!("/wallet/{other}")).await.status, 204);
    let stored = app
        .text_pairs(
            "select kind, actor from transactions where wallet_id = $1 order by id",
            other.parse().expect("id"),
        )
        .await;
    assert_eq!(
        stored
            .last()
            .map(|(kind, actor)| (kind.as_str(), actor.as_str())),
        Some(("closing", admin_id.as_str()))
    );
}

async fn the_same_idempotency_key_from_two_api_keys_applies_twice(backend: Backend) {
    let app = app(backend).await;
    let (_, first) = create_key(&app, "write", None).await;
    let (_, second) = create_key(&app, "write", None).await;
    let id = app.create_wallet("shared-key", "EUR", "0").await;
    let body = json!({"id": id, "amount": "3"});
    for key in [&first, &second, &first] {
        client_with_key(key)
            .post(app.url("/wallet/deposit"))
            .header("Idempotency-Key", "same-key")
            .json(&body)
            .send()
            .await
            .expect("post");
    }
    // Two clients, two deposits; the third request was the first client's replay.
    assert_eq!(app.balance(&id).await, "6.00");
    let replay = client_with_key(&second)
        .post(app.url("/wallet/deposit"))
        .header("Idempotency-Key", "same-key")
        .json(&body)
        .send()
        .await
        .expect("post");
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    // Another client's key with another body is its own: not "reused".
    let other = client_with_key(&first)
        .post(app.url("/wallet/withdraw"))
        .header("Idempotency-Key", "fresh")
        .json(&body)
        .send()
        .await
        .expect("post");
    assert_eq!(other.status(), 200);
    let theirs = client_with_key(&second)
        .post(app.url("/wallet/deposit"))
        .header("Idempotency-Key", "fresh")
        .json(&json!({"id": id, "amount": "1"}))
        .send()
        .await
        .expect("post");
    assert_eq!(theirs.status(), 200);
    assert_eq!(app.balance(&id).await, "4.00");
}

async fn keys_are_managed_through_the_admin_api_and_never_show_their_secret_again(
    backend: Backend,
) {
    let app = app(backend).await;
    let (id, secret) = create_key(&app, "write", Some("carol")).await;
    let listed = app.get("/wallet/keys").await;
    assert_eq!(listed.status, 200);
    assert!(
        !listed.text.contains(&secret) && !listed.text.contains("\"key\""),
        "{}",
        listed.text
    );
    let entry = listed
        .body
        .as_array()
        .expect("array")
        .iter()
        .find(|k| k["id"] == id.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(
        (entry["role"].clone(), entry["owner"].clone()),
        (json!("write"), json!("carol"))
    );
    // The database holds only a hash.
    let stored = app
        .text_pairs("select id, secret_hash from api_keys where 1 = $1", 1)
        .await;
    assert!(
        stored
            .iter()
            .all(|(_, hash)| hash.len() == 64 && !hash.contains("rw_"))
    );
    assert!(stored.iter().any(|(stored_id, _)| *stored_id == id));
    // Bad key requests are 422 and create nothing.
    for body in [
        json!({"role": "root"}),
        json!({"role": "admin", "owner": "carol"}),
        json!({"role": "read", "owner": ""}),
        json!({"role": "read", "owner": "a\u{0}b"}),
        json!({"role": "read", "name": "x".repeat(201)}),
        json!({"role": "read", "extra": 1}),
    ] {
        app.post("/wallet/keys", body)
            .await
            .assert_problem(422, "invalid_request");
    }
    assert_eq!(
        app.get("/wallet/keys").await.body.as_array().map(Vec::len),
        listed.body.as_array().map(Vec::len)
    );
    // Revoking: 204, again 204, unknown 404; the key then fails.
    assert_eq!(app.delete(&format!("/wallet/keys/{id}")).await.status, 204);
    assert_eq!(app.delete(&format!("/wallet/keys/{id}")).await.status, 204);
    app.delete("/wallet/keys/ffffffffffffffff")
        .await
        .assert_problem(404, "not_found");
    send(&app, Some(&secret), Method::GET, "/wallet/", None)
        .await
        .assert_problem(401, "unauthenticated");
    let revoked = app.get("/wallet/keys").await;
    assert!(
        revoked
            .body
            .as_array()
            .expect("array")
            .iter()
            .any(|k| k["id"] == id.as_str() && k["revoked_at"].is_string())
    );
}

/// Replicas share nothing but the database: a key revoked through one is refused by the other within seconds.
async fn a_key_revoked_through_one_server_stops_working_on_another_within_seconds(
    backend: Backend,
) {
    let app = app(backend).await;
    let (id, secret) = create_key(&app, "read", None).await;
    let replica = Process::start(&app.database.url, &[]).await;
    let client = client_with_key(&secret);
    let status = async || {
        client
            .get(replica.url("/wallet/"))
            .send()
            .await
            .expect("get")
            .status()
            .as_u16()
    };
    assert_eq!(status().await, 200, "the replica has the key cached now");
    assert_eq!(app.delete(&format!("/wallet/keys/{id}")).await.status, 204);
    // The contract's bound: 5 seconds. Poll, so a quick machine finishes at once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut last = 200;
    while std::time::Instant::now() < deadline {
        last = status().await;
        if last == 401 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        last, 401,
        "the replica still accepted a key revoked elsewhere after 5 s"
    );
    let logs = replica.logs();
    assert!(logs.contains("/wallet/"), "the replica logged its requests");
    assert!(!logs.contains(&secret), "a secret reached the logs");
}

/// `REVWALLET_BOOTSTRAP_ADMIN_KEY` is ensured at every start; a revoked bootstrap key stays revoked.
#[tokio::test]
async fn the_bootstrap_key_is_ensured_at_start_and_its_revocation_stands() {
    let database = TestDatabase::create(Backend::Sqlite)
        .await
        .expect("database");
    let key = format!("rw_{}", "b".repeat(40));
    let first = Process::start(&database.url, &[("REVWALLET_BOOTSTRAP_ADMIN_KEY", &key)]).await;
    let as_bootstrap = client_with_key(&key);
    let keys = as_bootstrap
        .get(first.url("/wallet/keys"))
        .send()
        .await
        .expect("get");
    assert_eq!(keys.status(), 200, "the bootstrap key is an admin key");
    let id = revwallet::domain::KeySecret::parse(&key).expect("key").id();
    drop(first);
    // Started again with the same key: still one key of that id, still working.
    let second = Process::start(&database.url, &[("REVWALLET_BOOTSTRAP_ADMIN_KEY", &key)]).await;
    let listed: Vec<Value> = as_bootstrap
        .get(second.url("/wallet/keys"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(listed.iter().filter(|k| k["id"] == id.as_str()).count(), 1);
    let revoked = as_bootstrap
        .delete(second.url(&format!("/wallet/keys/{id}")))
        .send()
        .await
        .expect("delete");
    assert_eq!(revoked.status(), 204);
    drop(second);
    let third = Process::start(&database.url, &[("REVWALLET_BOOTSTRAP_ADMIN_KEY", &key)]).await;
    let refused = as_bootstrap
        .get(third.url("/wallet/"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        refused.status(),
        401,
        "a restart does not bring a revoked bootstrap key back"
    );
}

/// With no key at all and none given, the first start creates an admin key and prints it once; later starts don't.
#[tokio::test]
async fn the_first_start_prints_one_admin_key_once() {
    let database = TestDatabase::create(Backend::Sqlite)
        .await
        .expect("database");
    let start = || {
        let port = crate::helpers::free_port();
        let stderr = tempfile::NamedTempFile::new().expect("stderr file");
        let stdout = tempfile::NamedTempFile::new().expect("stdout file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_revwallet"))
            .arg("serve")
            .env("DATABASE_URL", &database.url)
            .env("REVWALLET_LISTEN", format!("127.0.0.1:{port}"))
            .env_remove("REVWALLET_BOOTSTRAP_ADMIN_KEY")
            .stdout(stdout.reopen().expect("reopen"))
            .stderr(stderr.reopen().expect("reopen"))
            .spawn()
            .expect("start");
        (child, port, stderr, stdout)
    };
    let wait_healthy = async |port: u16| {
        for _ in 0..200 {
            if reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("not healthy");
    };
    let (mut child, port, stderr, logs) = start();
    wait_healthy(port).await;
    let printed = std::fs::read_to_string(stderr.path()).expect("stderr");
    let key = printed
        .split_whitespace()
        .find(|word| word.starts_with("rw_") && word.len() > 40)
        .unwrap_or_else(|| panic!("no key printed: {printed}"))
        .trim_end_matches('\'')
        .to_owned();
    assert!(
        printed.contains("Authorization: Bearer"),
        "with how to use it: {printed}"
    );
    let works = client_with_key(&key)
        .get(format!("http://127.0.0.1:{port}/wallet/keys"))
        .send()
        .await
        .expect("get");
    assert_eq!(works.status(), 200, "the printed key is an admin key");
    let logged = std::fs::read_to_string(logs.path()).expect("stdout");
    assert!(logged.contains("first admin API key"), "{logged}");
    assert!(
        !logged.contains(&key),
        "the key was printed on stderr only, never logged"
    );
    child.kill().expect("kill");
    child.wait().expect("wait");
    let (mut again, port, stderr, _logs) = start();
    wait_healthy(port).await;
    let second = std::fs::read_to_string(stderr.path()).expect("stderr");
    assert!(
        !second.contains("rw_"),
        "a key is printed only once: {second}"
    );
    again.kill().expect("kill");
    again.wait().expect("wait");
}
