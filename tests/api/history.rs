//! History filters, balances as of an instant, and CSV statements (SPEC §10).

use serde_json::{Value, json};

use crate::helpers::{Backend, Reply, TestApp, client_with_key};

crate::on_both_backends!(
    history_filters_alone_and_combined_page_across_their_results,
    from_and_to_select_a_period_and_as_of_gives_the_balance_then,
    malformed_filters_and_instants_are_422,
    period_filters_hold_when_entry_times_run_out_of_id_order_within_the_clock_slack,
    a_statement_of_several_pages_parses_back_to_exactly_the_ledger,
    a_statement_is_for_readers_of_the_wallet_only,
    the_web_app_records_descriptions_filters_the_history_and_links_the_statement,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn(backend).await.expect("backend configured")
}

async fn post_ok(app: &TestApp, path: &str, body: Value) -> Value {
    let reply = app.post(path, body).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    reply.body
}

/// The path of a `Link: <…>; rel="next"` header.
fn next_link(reply: &Reply) -> Option<String> {
    let link = reply.header("link")?;
    let start = link.find('<')? + 1;
    let end = link.find('>')?;
    Some(link[start..end].to_owned())
}

/// Every page of a listing, following `Link: rel="next"`; the ids in order.
async fn all_pages(app: &TestApp, first: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut path = Some(first.to_owned());
    while let Some(current) = path {
        let reply = app.get(&current).await;
        assert_eq!(reply.status, 200, "{current}: {}", reply.text);
        ids.extend(
            reply
                .body
                .as_array()
                .expect("array")
                .iter()
                .map(|e| e["id"].as_str().expect("id").to_owned()),
        );
        path = next_link(&reply);
    }
    ids
}

fn ids_where(history: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<String> {
    history
        .iter()
        .filter(|e| keep(e))
        .map(|e| e["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Which entries of a history a filter should keep.
type Keep = Box<dyn Fn(&Value) -> bool>;

async fn history_filters_alone_and_combined_page_across_their_results(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("filters", "EUR", "100.00").await;
    let other = app.create_wallet("filters", "EUR", "0").await;
    for i in 0..7 {
        let reference = if i % 2 == 0 { "even" } else { "odd" };
        let body = json!({"id": id, "amount": "1.00", "reference": reference});
        post_ok(&app, "/wallet/deposit", body).await;
        let body = json!({"id": id, "amount": "0.50", "reference": reference});
        post_ok(&app, "/wallet/withdraw", body).await;
    }
    let body = json!({"from_id": id, "to_id": other, "amount": "2.00", "reference": "even"});
    post_ok(&app, "/wallet/transfer", body).await;
    let history = app.history(&id).await;

    let cases: Vec<(&str, Keep)> = vec![
        ("type=deposit", Box::new(|e| e["type"] == "deposit")),
        (
            "type=transfer_out",
            Box::new(|e| e["type"] == "transfer_out"),
        ),
        ("reference=even", Box::new(|e| e["reference"] == "even")),
        (
            "type=withdrawal&reference=odd",
            Box::new(|e| e["type"] == "withdrawal" && e["reference"] == "odd"),
        ),
        ("type=closing", Box::new(|e| e["type"] == "closing")),
        ("reference=none-such", Box::new(|_| false)),
    ];
    for (query, keep) in cases {
        let expected = ids_where(&history, keep);
        // One page of everything, then pages of two following the Link header: the same entries, in order.
        let whole = all_pages(&app, &format!("/wallet/{id}/transactions?{query}")).await;
        assert_eq!(whole, expected, "{query}");
        let paged = all_pages(&app, &format!("/wallet/{id}/transactions?limit=2&{query}")).await;
        assert_eq!(paged, expected, "{query} in pages of two");
    }
    // The Link of a filtered page carries the filters.
    let reply = app
        .get(&format!(
            "/wallet/{id}/transactions?limit=1&type=deposit&reference=even"
        ))
        .await;
    let link = next_link(&reply).expect("a next page");
    assert!(
        link.contains("type=deposit") && link.contains("reference=even"),
        "{link}"
    );
}

/// Sleeps into the next whole second, so that entries before and after have different rendered instants.
async fn next_second() -> String {
    let now = chrono::Utc::now();
    let into = now.timestamp_subsec_millis();
    tokio::time::sleep(std::time::Duration::from_millis(u64::from(1050 - into))).await;
    let next = chrono::DateTime::from_timestamp(now.timestamp() + 1, 0).expect("instant");
    next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn from_and_to_select_a_period_and_as_of_gives_the_balance_then(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("periods", "EUR", "10.00").await;
    let created_at = app.get(&format!("/wallet/{id}")).await.body["created_at"]
        .as_str()
        .expect("created_at")
        .to_owned();
    post_ok(&app, "/wallet/deposit", json!({"id": id, "amount": "5.00"})).await;
    let boundary = next_second().await;
    post_ok(&app, "/wallet/deposit", json!({"id": id, "amount": "7.00"})).await;
    post_ok(
        &app,
        "/wallet/withdraw",
        json!({"id": id, "amount": "2.00"}),
    )
    .await;
    let history = app.history(&id).await;
    let (later, earlier): (Vec<&Value>, Vec<&Value>) = history
        .iter()
        .partition(|e| e["created_at"].as_str().expect("at") >= boundary.as_str());
    assert_eq!((later.len(), earlier.len()), (2, 2));

    let from = all_pages(&app, &format!("/wallet/{id}/transactions?from={boundary}")).await;
    assert_eq!(from, ids_where(&history, |e| later.contains(&e)));
    let to = all_pages(&app, &format!("/wallet/{id}/transactions?to={boundary}")).await;
    assert_eq!(to, ids_where(&history, |e| earlier.contains(&e)));
    let both = all_pages(
        &app,
        &format!("/wallet/{id}/transactions?from={created_at}&to={boundary}&type=deposit&limit=1"),
    )
    .await;
    assert_eq!(
        both,
        ids_where(&history, |e| earlier.contains(&e) && e["type"] == "deposit")
    );

    // as_of: 404 before the wallet existed, the balance after the last entry at or before the instant otherwise.
    let before = chrono::DateTime::parse_from_rfc3339(&created_at).expect("instant")
        - chrono::TimeDelta::seconds(1);
    let reply = app
        .get(&format!(
            "/wallet/{id}?as_of={}",
            before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ))
        .await;
    reply.assert_problem(404, "wallet_not_found");
    let between = app.get(&format!("/wallet/{id}?as_of={boundary}")).await;
    assert_eq!(between.status, 200, "{}", between.text);
    assert_eq!(between.body["balance"], "15.00");
    assert_eq!(between.body["as_of"], boundary);
    assert!(
        between.body.get("held").is_none(),
        "a past instant has no held"
    );
    let after = app
        .get(&format!("/wallet/{id}?as_of=2999-01-01T00:00:00Z"))
        .await;
    assert_eq!(after.body["balance"], "20.00");
    let balance_route = app
        .get(&format!("/wallet/balance/{id}?as_of={boundary}"))
        .await;
    assert_eq!(balance_route.body["balance"], "15.00");
    // An offset other than Z, written as %2B in a URL.
    let offset = boundary.replace('Z', "%2B00:00");
    let reply = app.get(&format!("/wallet/{id}?as_of={offset}")).await;
    assert_eq!(reply.body["balance"], "15.00", "{}", reply.text);

    // A statement of the later period opens with the balance at its start.
    let reply = app
        .client
        .get(app.url(&format!("/wallet/{id}/statement.csv?from={boundary}")))
        .send()
        .await
        .expect("GET");
    let rows = parse_csv(&reply.text().await.expect("body"));
    assert_eq!(rows[1][2], "opening_balance");
    assert_eq!(rows[1][4], "15.00");
    assert_eq!(rows.len(), 1 + 1 + 2 + 1);
    assert_eq!(rows[4][4], "20.00");
}

async fn malformed_filters_and_instants_are_422(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("malformed", "EUR", "1.00").await;
    let before = app.snapshot().await;
    for query in [
        "type=refund",
        "from=yesterday",
        "to=2026-13-01T00:00:00Z",
        "from=2026-11-26",
        "to=2026-11-26T19:00:00",
        "reference=%20padded",
        "before=0",
    ] {
        let reply = app.get(&format!("/wallet/{id}/transactions?{query}")).await;
        reply.assert_problem(422, "invalid_request");
    }
    for query in ["as_of=now", "as_of=2026-11-26", "as_of="] {
        let reply = app.get(&format!("/wallet/{id}?{query}")).await;
        reply.assert_problem(422, "invalid_request");
    }
    for query in ["from=soon", "to=1700000000"] {
        let reply = app
            .get(&format!("/wallet/{id}/statement.csv?{query}"))
            .await;
        reply.assert_problem(422, "invalid_request");
    }
    assert_eq!(app.snapshot().await, before);
}

fn parse_csv(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|row| {
            row.expect("RFC 4180 row")
                .iter()
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

async fn a_statement_of_several_pages_parses_back_to_exactly_the_ledger(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("statement", "EUR", "10.00").await;
    let other = app.create_wallet("statement", "EUR", "0").await;
    let tricky = "rent, \"May\"\nline two, with a comma\r\nand «unicode»";
    post_ok(
        &app,
        "/wallet/withdraw",
        json!({"id": id, "amount": "0.01", "reference": "w,1", "description": tricky}),
    )
    .await;
    post_ok(
        &app,
        "/wallet/transfer",
        json!({"from_id": id, "to_id": other, "amount": "1.00", "description": "to \"other\""}),
    )
    .await;
    // Two and a half pages of 1000 entries, fifty requests at a time.
    for round in 0..50 {
        let deposits = (0..50).map(|i| {
            let body = json!({"id": id, "amount": "0.01", "reference": format!("d-{round}-{i}")});
            let app = &app;
            async move { app.post("/wallet/deposit", body).await }
        });
        for reply in futures::future::join_all(deposits).await {
            assert_eq!(reply.status, 200, "{}", reply.text);
        }
    }
    let response = app
        .client
        .get(app.url(&format!("/wallet/{id}/statement.csv")))
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(header("content-type").starts_with("text/csv"));
    assert_eq!(
        header("content-disposition"),
        format!("attachment; filename=\"wallet-{id}-statement.csv\"")
    );
    let rows = parse_csv(&response.text().await.expect("body"));
    assert_eq!(
        rows[0],
        [
            "created_at",
            "entry_id",
            "type",
            "amount",
            "balance_after",
            "currency",
            "reference",
            "description"
        ]
    );
    // The ledger oldest first, whole, a page of 1000 at a time.
    let mut ledger = Vec::new();
    let mut path = Some(format!("/wallet/{id}/transactions?limit=1000"));
    while let Some(current) = path {
        let reply = app.get(&current).await;
        ledger.extend(reply.body.as_array().expect("array").iter().cloned());
        path = next_link(&reply);
    }
    ledger.reverse();
    assert_eq!(ledger.len(), 2503);

    let (opening, entries, closing) = (&rows[1], &rows[2..rows.len() - 1], &rows[rows.len() - 1]);
    assert_eq!(opening[2], "opening_balance");
    assert_eq!(opening[4], "0.00");
    assert_eq!(entries.len(), ledger.len());
    for (row, entry) in entries.iter().zip(&ledger) {
        let sign = match entry["type"].as_str().expect("type") {
            "withdrawal" | "transfer_out" | "closing" => "-",
            _ => "",
        };
        let expected = [
            entry["created_at"].as_str().expect("at").to_owned(),
            entry["id"].as_str().expect("id").to_owned(),
            entry["type"].as_str().expect("type").to_owned(),
            format!("{sign}{}", entry["amount"].as_str().expect("amount")),
            entry["balance_after"].as_str().expect("after").to_owned(),
            "EUR".to_owned(),
            entry["reference"].as_str().unwrap_or_default().to_owned(),
            entry["description"].as_str().unwrap_or_default().to_owned(),
        ];
        assert_eq!(row.as_slice(), expected.as_slice());
    }
    assert_eq!(entries[1][7], tricky, "a description round-trips");
    assert_eq!(closing[2], "closing_balance");
    assert_eq!(closing[4], app.balance(&id).await);
    assert_eq!(closing[4], "33.99");
}

async fn a_statement_is_for_readers_of_the_wallet_only(backend: Backend) {
    let app = app(backend).await;
    let mine = app.create_wallet("alice", "EUR", "1.00").await;
    let theirs = app.create_wallet("bob", "EUR", "1.00").await;
    let key = app
        .post(
            "/wallet/keys",
            json!({"role": "read", "name": "alice reads", "owner": "alice"}),
        )
        .await;
    assert_eq!(key.status, 201, "{}", key.text);
    let alice = client_with_key(key.body["key"].as_str().expect("key"));
    let get = |id: String| {
        let alice = alice.clone();
        let url = app.url(&format!("/wallet/{id}/statement.csv"));
        async move { Reply::read(alice.get(url).send().await.expect("GET")).await }
    };
    let own = get(mine).await;
    assert_eq!(own.status, 200, "{}", own.text);
    get(theirs).await.assert_problem(404, "wallet_not_found");
    get("999999".into())
        .await
        .assert_problem(404, "wallet_not_found");
    let anonymous = Reply::read(
        reqwest::Client::new()
            .get(app.url("/wallet/1/statement.csv"))
            .send()
            .await
            .expect("GET"),
    )
    .await;
    anonymous.assert_problem(401, "unauthenticated");
}

async fn the_web_app_records_descriptions_filters_the_history_and_links_the_statement(
    backend: Backend,
) {
    let app = app(backend).await;
    let id = app.create_wallet("web", "EUR", "10.00").await;
    let form = |pairs: &[(&str, &str)]| serde_urlencoded::to_string(pairs).expect("form");
    let deposit = form(&[
        ("key", "web-memo-1"),
        ("amount", "2.50"),
        ("reference", "  inv-7  "),
        ("description", "coffee, \"beans\"\r\nand <milk>"),
    ]);
    let reply = app
        .post_page(&format!("/ui/wallets/{id}/deposit"), &deposit)
        .await;
    assert_eq!(reply.status, 303, "{}", reply.text);
    let withdraw = form(&[("key", "web-memo-2"), ("amount", "1.00")]);
    let reply = app
        .post_page(&format!("/ui/wallets/{id}/withdraw"), &withdraw)
        .await;
    assert_eq!(reply.status, 303, "{}", reply.text);
    // Stored as typed (the reference trimmed), and shown escaped in the history.
    let entry = &app.history(&id).await[1];
    assert_eq!(entry["reference"], "inv-7");
    assert_eq!(entry["description"], "coffee, \"beans\"\r\nand <milk>");
    let page = app.page(&format!("/ui/wallets/{id}")).await;
    assert!(page.text.contains("<code>inv-7</code>"), "{}", page.text);
    assert!(
        page.text.contains("coffee, &#34;beans&#34;"),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("milk") && !page.text.contains("<milk>"),
        "escaped"
    );

    // A broken rule is refused beside its field, nothing changed.
    let long = "r".repeat(129);
    let bad = form(&[
        ("key", "web-memo-3"),
        ("amount", "1.00"),
        ("reference", &long),
    ]);
    let reply = app
        .post_page(&format!("/ui/wallets/{id}/deposit"), &bad)
        .await;
    assert_eq!(reply.status, 422);
    assert!(
        reply.text.contains("id=\"deposit-reference-error\""),
        "{}",
        reply.text
    );
    assert_eq!(app.balance(&id).await, "11.50");

    // The filter shows only withdrawals; the statement link carries the dates as instants.
    let filtered = app
        .page(&format!(
            "/ui/wallets/{id}?type=withdrawal&from=2000-01-01&to=2999-12-31"
        ))
        .await;
    assert_eq!(filtered.status, 200);
    assert!(!filtered.text.contains("<code>inv-7</code>"));
    assert!(filtered.text.contains("Withdrawal"));
    let link = format!(
        "/ui/wallets/{id}/statement.csv?from=2000-01-01T00%3A00%3A00Z&#38;to=3000-01-01T00%3A00%3A00Z"
    );
    assert!(filtered.text.contains(&link), "{}", filtered.text);
    let statement = app
        .page(&format!(
            "/ui/wallets/{id}/statement.csv?from=2000-01-01T00:00:00Z"
        ))
        .await;
    assert_eq!(statement.status, 200, "{}", statement.text);
    let rows = parse_csv(&statement.text);
    assert_eq!(rows.len(), 1 + 1 + 3 + 1);
    assert_eq!(rows[3][7], "coffee, \"beans\"\r\nand <milk>");
    // Without a session, the statement is the sign-in page, not the CSV.
    let anonymous = app
        .page_as("", &format!("/ui/wallets/{id}/statement.csv"))
        .await;
    assert_ne!(anonymous.status, 200);
}

/// `created_at` is read before a write waits for its wallet's lock, so a later entry may carry an earlier time
/// (by at most the clock slack the period's id range allows for). Entries appended straight into the ledger with
/// such times: every period still selects exactly the entries whose time lies in it.
async fn period_filters_hold_when_entry_times_run_out_of_id_order_within_the_clock_slack(
    backend: Backend,
) {
    let app = app(backend).await;
    let id = app.create_wallet("jitter", "EUR", "0").await;
    // In id order: +0 s, +40 s, +10 s, +100 s, +70 s, +130 s.
    app.execute(
        "insert into transactions (wallet_id, kind, amount, balance_after, created_at) values \
         (cast($1 as bigint), 'deposit', 1, 1, '2030-01-01T00:00:00+00:00'), \
         (cast($1 as bigint), 'deposit', 1, 2, '2030-01-01T00:00:40+00:00'), \
         (cast($1 as bigint), 'deposit', 1, 3, '2030-01-01T00:00:10+00:00'), \
         (cast($1 as bigint), 'deposit', 1, 4, '2030-01-01T00:01:40+00:00'), \
         (cast($1 as bigint), 'deposit', 1, 5, '2030-01-01T00:01:10+00:00'), \
         (cast($1 as bigint), 'deposit', 1, 6, '2030-01-01T00:02:10+00:00')",
        &id,
    )
    .await;
    let history = app.history(&id).await;
    for (from, to) in [
        (Some("2030-01-01T00:00:30Z"), None),
        (None, Some("2030-01-01T00:00:50Z")),
        (Some("2030-01-01T00:00:05Z"), Some("2030-01-01T00:01:20Z")),
        (Some("2030-01-01T00:01:00Z"), Some("2030-01-01T00:01:45Z")),
        (Some("2030-01-01T00:00:40Z"), Some("2030-01-01T00:00:41Z")),
    ] {
        let expected = ids_where(&history, |e| {
            let at = e["created_at"].as_str().expect("at");
            from.is_none_or(|from| at >= from) && to.is_none_or(|to| at < to)
        });
        let mut query = String::from("limit=1");
        query.extend(from.map(|f| format!("&from={f}")));
        query.extend(to.map(|t| format!("&to={t}")));
        let paged = all_pages(&app, &format!("/wallet/{id}/transactions?{query}")).await;
        assert_eq!(paged, expected, "{query}");
    }
}
