//! Every route of the API doing its job, on both backends.

use serde_json::json;

use crate::helpers::{Backend, TestApp};

// Also with `--auth off`: the open mode keeps the original contract.
crate::on_both_backends_and_auth_off!(
    creating_a_wallet_answers_201_with_its_location_and_an_opening_entry,
    the_original_routes_keep_working,
    amounts_may_be_strings_or_numbers_and_add_up_exactly,
    currencies_use_their_own_number_of_decimals,
    deposits_and_withdrawals_write_ledger_entries_that_continue_the_balance,
    transfers_move_money_atomically_and_record_both_legs,
    listing_pages_with_link_headers_and_filters,
    history_is_newest_first_and_pages_with_before,
    closing_pays_out_the_balance_and_hides_the_wallet,
    operations_endpoints_answer,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn(backend).await.expect("backend configured")
}

async fn creating_a_wallet_answers_201_with_its_location_and_an_opening_entry(backend: Backend) {
    let app = app(backend).await;
    let reply = app
        .post(
            "/wallet/",
            json!({"owner": "  test2 ", "currency": "eur", "initial_balance": "999"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let id = reply.body["id"].as_str().expect("id as a string");
    assert_eq!(
        reply.header("location"),
        Some(format!("/wallet/{id}").as_str())
    );
    assert_eq!(reply.body["owner"], "test2");
    assert_eq!(reply.body["currency"], "EUR");
    assert_eq!(reply.body["balance"], "999.00");
    assert!(
        reply.body["created_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert_eq!(reply.body["transaction"]["type"], "opening");
    assert_eq!(reply.body["transaction"]["balance_after"], "999.00");

    let without_balance = app
        .post("/wallet", json!({"owner": "zero", "currency": "EUR"}))
        .await;
    assert_eq!(without_balance.status, 201);
    assert_eq!(without_balance.body["balance"], "0.00");
    assert_eq!(app.audit_findings().await, 0);
}

async fn the_original_routes_keep_working(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("test2", "EUR", "999.00").await;
    let balance = app.get(&format!("/wallet/balance/{id}")).await;
    assert_eq!(balance.status, 200);
    assert_eq!(balance.body["balance"], "999.00");
    assert_eq!(balance.body["id"], id.as_str());
    assert_eq!(app.get(&format!("/wallet/{id}")).await.body, balance.body);
    for collection in ["/wallet/", "/wallet"] {
        let list = app.get(collection).await;
        assert_eq!(list.status, 200);
        assert_eq!(list.body.as_array().map(Vec::len), Some(1), "{collection}");
    }
    let deposit = app
        .post("/wallet/deposit", json!({"id": id, "amount": "1"}))
        .await;
    assert_eq!(deposit.body["balance"], "1000.00");
    let withdraw = app
        .post(
            "/wallet/withdraw",
            json!({"id": id.parse::<i64>().expect("numeric"), "amount": 1}),
        )
        .await;
    assert_eq!(withdraw.body["balance"], "999.00");
    assert_eq!(app.delete(&format!("/wallet/{id}")).await.status, 204);
}

async fn amounts_may_be_strings_or_numbers_and_add_up_exactly(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("cents", "EUR", "0").await;
    app.post("/wallet/deposit", json!({"id": id, "amount": 0.1}))
        .await;
    app.post("/wallet/deposit", json!({"id": id, "amount": "0.1"}))
        .await;
    let third = app
        .post_raw(
            "/wallet/deposit",
            Some("application/json"),
            format!(r#"{{"id": {id}, "amount": 0.10}}"#),
        )
        .await;
    assert_eq!(third.status, 200, "{}", third.text);
    assert_eq!(app.balance(&id).await, "0.30");
    let amounts: Vec<_> = app
        .history(&id)
        .await
        .iter()
        .map(|e| e["amount"].clone())
        .collect();
    assert_eq!(
        amounts,
        vec![json!("0.10"), json!("0.10"), json!("0.10"), json!("0.00")]
    );
}

async fn currencies_use_their_own_number_of_decimals(backend: Backend) {
    let app = app(backend).await;
    let yen = app.create_wallet("yen", "JPY", "1000").await;
    assert_eq!(app.balance(&yen).await, "1000");
    let deposit = app
        .post("/wallet/deposit", json!({"id": yen, "amount": 5}))
        .await;
    assert_eq!(deposit.body["balance"], "1005");
    assert_eq!(deposit.body["transaction"]["amount"], "5");

    let dinar = app.create_wallet("dinar", "kwd", "1.5").await;
    assert_eq!(app.balance(&dinar).await, "1.500");
    let deposit = app
        .post("/wallet/deposit", json!({"id": dinar, "amount": "0.001"}))
        .await;
    assert_eq!(deposit.body["balance"], "1.501");
}

async fn deposits_and_withdrawals_write_ledger_entries_that_continue_the_balance(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("ledger", "EUR", "10.00").await;
    let deposit = app
        .post("/wallet/deposit", json!({"id": id, "amount": "5.25"}))
        .await;
    assert_eq!(deposit.status, 200);
    assert_eq!(deposit.body["balance"], "15.25");
    assert_eq!(deposit.body["transaction"]["type"], "deposit");
    assert_eq!(deposit.body["transaction"]["amount"], "5.25");
    assert_eq!(deposit.body["transaction"]["balance_after"], "15.25");
    let withdraw = app
        .post("/wallet/withdraw", json!({"id": id, "amount": "15.25"}))
        .await;
    assert_eq!(withdraw.status, 200);
    assert_eq!(withdraw.body["balance"], "0.00");
    assert_eq!(withdraw.body["transaction"]["type"], "withdrawal");
    let kinds: Vec<_> = app
        .history(&id)
        .await
        .iter()
        .map(|e| e["type"].clone())
        .collect();
    assert_eq!(
        kinds,
        vec![json!("withdrawal"), json!("deposit"), json!("opening")]
    );
    assert_eq!(app.audit_findings().await, 0);
}

async fn transfers_move_money_atomically_and_record_both_legs(backend: Backend) {
    let app = app(backend).await;
    let from = app.create_wallet("alice", "EUR", "100.00").await;
    let to = app.create_wallet("bob", "EUR", "1.00").await;
    let reply = app
        .post(
            "/wallet/transfer",
            json!({"from_id": from, "to_id": to, "amount": "25.50"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["from"]["balance"], "74.50");
    assert_eq!(reply.body["to"]["balance"], "26.50");
    assert_eq!(reply.body["from"]["transaction"]["type"], "transfer_out");
    assert_eq!(reply.body["to"]["transaction"]["type"], "transfer_in");
    assert_eq!(
        reply.body["from"]["transaction"]["counterparty_id"],
        to.as_str()
    );
    assert_eq!(app.balance(&from).await, "74.50");
    assert_eq!(app.balance(&to).await, "26.50");
    assert_eq!(app.history(&to).await[0]["counterparty_id"], from.as_str());
    assert_eq!(app.audit_findings().await, 0);
}

async fn listing_pages_with_link_headers_and_filters(backend: Backend) {
    let app = app(backend).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            app.create_wallet(if n % 2 == 0 { "even" } else { "odd" }, "EUR", "1")
                .await,
        );
    }
    app.create_wallet("even", "JPY", "1").await;

    let first = app.get("/wallet/?limit=2").await;
    assert_eq!(first.body.as_array().map(Vec::len), Some(2));
    let link = first.header("link").expect("a next link").to_owned();
    assert_eq!(
        link,
        format!("</wallet/?limit=2&after={}>; rel=\"next\"", ids[1])
    );
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .expect("target");
    let second = app.get(next).await;
    assert_eq!(second.body[0]["id"], ids[2].as_str());

    let last = app.get(&format!("/wallet/?limit=2&after={}", ids[3])).await;
    assert_eq!(last.body.as_array().map(Vec::len), Some(2));
    assert!(last.header("link").is_none(), "no link on the last page");

    let even_eur = app.get("/wallet/?owner=even&currency=eur").await;
    assert_eq!(even_eur.body.as_array().map(Vec::len), Some(3));
    let paged = app.get("/wallet/?owner=even&limit=1").await;
    assert!(
        paged
            .header("link")
            .is_some_and(|l| l.contains("owner=even"))
    );
}

async fn history_is_newest_first_and_pages_with_before(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("history", "EUR", "0").await;
    for n in 1..=5 {
        app.post(
            "/wallet/deposit",
            json!({"id": id, "amount": n.to_string()}),
        )
        .await;
    }
    let page = app.get(&format!("/wallet/{id}/transactions?limit=2")).await;
    let amounts: Vec<_> = page
        .body
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["amount"].clone())
        .collect();
    assert_eq!(amounts, vec![json!("5.00"), json!("4.00")]);
    let link = page.header("link").expect("next link");
    assert!(
        link.contains(&format!("/wallet/{id}/transactions?limit=2&before=")),
        "{link}"
    );
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .expect("target");
    let second = app.get(next).await;
    assert_eq!(second.body[0]["amount"], "3.00");
    let all = app.history(&id).await;
    assert_eq!(all.len(), 6);
    assert_eq!(all[0]["balance_after"], "15.00");
}

async fn closing_pays_out_the_balance_and_hides_the_wallet(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("closer", "EUR", "12.34").await;
    let other = app.create_wallet("other", "EUR", "1").await;
    assert_eq!(app.delete(&format!("/wallet/{id}")).await.status, 204);
    let ledger: Vec<(String, String)> = ledger_rows(&app, &id).await;
    assert_eq!(
        ledger.last(),
        Some(&("closing".to_owned(), "0".to_owned())),
        "{ledger:?}"
    );
    for reply in [
        app.get(&format!("/wallet/{id}")).await,
        app.get(&format!("/wallet/balance/{id}")).await,
        app.get(&format!("/wallet/{id}/transactions")).await,
        app.delete(&format!("/wallet/{id}")).await,
        app.post("/wallet/deposit", json!({"id": id, "amount": "1"}))
            .await,
        app.post("/wallet/withdraw", json!({"id": id, "amount": "1"}))
            .await,
        app.post(
            "/wallet/transfer",
            json!({"from_id": other, "to_id": id, "amount": "1"}),
        )
        .await,
        app.post(
            "/wallet/transfer",
            json!({"from_id": id, "to_id": other, "amount": "1"}),
        )
        .await,
    ] {
        reply.assert_problem(404, "wallet_not_found");
    }
    let listed: Vec<_> = app
        .get("/wallet/")
        .await
        .body
        .as_array()
        .expect("array")
        .iter()
        .map(|w| w["id"].clone())
        .collect();
    assert_eq!(listed, vec![json!(other)]);
    assert_eq!(app.balance(&other).await, "1.00");
    assert_eq!(app.audit_findings().await, 0);
}

/// The ledger of a wallet read straight from the database (the API hides closed wallets).
async fn ledger_rows(app: &TestApp, id: &str) -> Vec<(String, String)> {
    let query = "select kind, cast(balance_after as text) from transactions where wallet_id = $1 order by id";
    app.text_pairs(query, id.parse().expect("numeric id")).await
}

async fn operations_endpoints_answer(backend: Backend) {
    let app = app(backend).await;
    assert_eq!(app.get("/healthz").await.status, 200);
    assert_eq!(app.get("/readyz").await.status, 200);
    let doc = app.get("/wallet/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert!(
        doc.body["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    for path in [
        "/wallet/",
        "/wallet/{id}",
        "/wallet/balance/{id}",
        "/wallet/deposit",
        "/wallet/withdraw",
        "/wallet/transfer",
        "/wallet/{id}/transactions",
        "/wallet/{id}/statement.csv",
    ] {
        assert!(
            doc.body["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    let history = &doc.body["paths"]["/wallet/{id}/transactions"]["get"]["parameters"];
    let names: Vec<&str> = history
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    for name in ["type", "reference", "from", "to", "before", "limit"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}
