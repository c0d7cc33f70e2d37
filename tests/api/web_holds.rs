//! The web app's hold forms (issue 15): place a hold on the wallet page, capture it (in part, into another wallet
//! or as a withdrawal) or void it; each refused form shows the wallet page again with the message beside its
//! field and the refusal's status, and changes nothing.

use serde_json::Value;

use crate::helpers::{Backend, Reply, TestApp};

crate::on_both_backends!(
    a_hold_placed_captured_in_part_into_another_wallet_and_another_voided,
    a_hold_bigger_than_available_is_refused_beside_the_amount,
    a_capture_of_more_than_the_hold_is_refused_beside_its_amount,
    a_capture_after_a_void_is_refused_at_the_head_of_the_holds,
    invalid_hours_targets_and_currencies_are_refused_beside_their_fields,
    a_whole_capture_is_a_withdrawal_and_a_repeated_form_moves_money_once,
    a_hold_of_another_wallet_is_no_page,
    a_withdrawal_past_what_is_available_says_what_is_held,
    a_hold_and_its_capture_carry_their_reference_and_description,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn(backend).await.expect("backend configured")
}

/// Posts a web form as a signed-in browser would (an admin session), not following the redirect.
async fn post_form(app: &TestApp, path: &str, fields: &[(&str, &str)]) -> Reply {
    let body = serde_urlencoded::to_string(fields).expect("form encoding");
    app.post_page(path, &body).await
}

/// The wallet page as a signed-in browser gets it.
async fn page(app: &TestApp, wallet: &str) -> String {
    let reply = app.page(&format!("/ui/wallets/{wallet}")).await;
    assert_eq!(reply.status, 200);
    reply.text
}

async fn place(app: &TestApp, wallet: &str, amount: &str, hours: &str) -> Reply {
    let path = format!("/ui/wallets/{wallet}/holds");
    let key = uuid::Uuid::new_v4().to_string();
    let fields = [
        ("key", key.as_str()),
        ("amount", amount),
        ("expires_in_hours", hours),
    ];
    post_form(app, &path, &fields).await
}

/// Places a hold through the form and returns its id (the newest pending hold of the wallet).
async fn placed(app: &TestApp, wallet: &str, amount: &str) -> String {
    let reply = place(app, wallet, amount, "").await;
    assert_eq!(reply.status, 303, "{}", reply.text);
    assert_eq!(
        reply.header("location"),
        Some(format!("/ui/wallets/{wallet}?notice=held").as_str())
    );
    let holds = pending(app, wallet).await;
    holds[0]["id"].as_str().expect("hold id").to_owned()
}

async fn capture(app: &TestApp, wallet: &str, hold: &str, amount: &str, to: &str) -> Reply {
    let path = format!("/ui/wallets/{wallet}/holds/{hold}/capture");
    let key = uuid::Uuid::new_v4().to_string();
    let fields = [("key", key.as_str()), ("amount", amount), ("to", to)];
    post_form(app, &path, &fields).await
}

async fn void(app: &TestApp, wallet: &str, hold: &str) -> Reply {
    let path = format!("/ui/wallets/{wallet}/holds/{hold}/void");
    let key = uuid::Uuid::new_v4().to_string();
    post_form(app, &path, &[("key", key.as_str())]).await
}

/// The wallet's balance, held and available, from the JSON API.
async fn money(app: &TestApp, wallet: &str) -> [String; 3] {
    let reply = app.get(&format!("/wallet/{wallet}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    ["balance", "held", "available"].map(|name| reply.body[name].as_str().expect(name).to_owned())
}

async fn pending(app: &TestApp, wallet: &str) -> Vec<Value> {
    let reply = app
        .get(&format!("/wallet/{wallet}/holds?status=pending"))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body.as_array().expect("array").clone()
}

async fn hold(app: &TestApp, id: &str) -> Value {
    let reply = app.get(&format!("/wallet/holds/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body
}

/// Every wallet, history and hold of these wallets, to prove that a refused form changed nothing.
async fn snapshot(app: &TestApp, wallets: &[&str]) -> Value {
    let mut holds = Vec::new();
    for wallet in wallets {
        let reply = app.get(&format!("/wallet/{wallet}/holds")).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        holds.push(reply.body);
    }
    serde_json::json!({"ledger": app.snapshot().await, "holds": holds})
}

/// A refused form: the wallet page again with this status, the message, and the field marked invalid.
#[track_caller]
fn assert_refused(reply: &Reply, status: u16, field: &str, message: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        reply.headers
    );
    assert!(
        reply.text.contains(message),
        "{message:?} in {}",
        reply.text
    );
    assert!(
        reply.text.contains(&format!(r#"id="{field}-error""#)),
        "the message stands beside #{field}: {}",
        reply.text
    );
    assert!(reply.text.contains("<title>Error: "), "{}", reply.text);
}

async fn a_hold_placed_captured_in_part_into_another_wallet_and_another_voided(backend: Backend) {
    let app = app(backend).await;
    let ada = app.create_wallet("Ada", "EUR", "100.00").await;
    let grace = app.create_wallet("Grace", "EUR", "5.00").await;
    assert!(page(&app, &ada).await.contains("No pending holds."));

    // Place: available drops, the balance does not; the page lists the hold with its forms.
    let first = placed(&app, &ada, "30.00").await;
    assert_eq!(money(&app, &ada).await, ["100.00", "30.00", "70.00"]);
    let reply = place(&app, &ada, "20", "2").await;
    assert_eq!(reply.status, 303, "{}", reply.text);
    let second = pending(&app, &ada).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_ne!(first, second);
    assert_eq!(money(&app, &ada).await, ["100.00", "50.00", "50.00"]);
    let second_hold = hold(&app, &second).await;
    let created =
        chrono::DateTime::parse_from_rfc3339(second_hold["created_at"].as_str().expect("created"))
            .expect("created_at");
    let expires =
        chrono::DateTime::parse_from_rfc3339(second_hold["expires_at"].as_str().expect("expires"))
            .expect("expires_at");
    let lifetime = (expires - created).num_seconds();
    assert!(
        (7_140..=7_260).contains(&lifetime),
        "about 2 hours: {second_hold}"
    );
    let shown = page(&app, &ada).await;
    assert!(shown.contains(r#"id="held">50.00&nbsp;EUR"#), "{shown}");
    assert!(
        shown.contains(r#"id="available">50.00&nbsp;EUR"#),
        "{shown}"
    );
    for id in [&first, &second] {
        assert!(
            shown.contains(&format!("<strong>Hold #{id}</strong>")),
            "{shown}"
        );
        assert!(shown.contains(&format!(r#"action="/ui/wallets/{ada}/holds/{id}/capture""#)));
        assert!(shown.contains(&format!(r#"action="/ui/wallets/{ada}/holds/{id}/void""#)));
    }
    let notice = app.page(&format!("/ui/wallets/{ada}?notice=held")).await;
    assert!(notice.text.contains("Hold placed."));

    // Capture part of the first into Grace's wallet: the rest of it is released.
    let reply = capture(&app, &ada, &first, "12.50", &format!("#{grace}")).await;
    assert_eq!(reply.status, 303, "{}", reply.text);
    assert_eq!(
        reply.header("location"),
        Some(format!("/ui/wallets/{ada}?notice=captured").as_str())
    );
    assert_eq!(money(&app, &ada).await, ["87.50", "20.00", "67.50"]);
    assert_eq!(money(&app, &grace).await, ["17.50", "0.00", "17.50"]);
    let captured = hold(&app, &first).await;
    assert_eq!(captured["status"], "captured");
    assert_eq!(captured["captured"], "12.50");
    assert_eq!(app.history(&ada).await[0]["type"], "transfer_out");
    assert_eq!(app.history(&grace).await[0]["type"], "transfer_in");

    // Void the second: available is back to the balance.
    let reply = void(&app, &ada, &second).await;
    assert_eq!(reply.status, 303, "{}", reply.text);
    assert_eq!(
        reply.header("location"),
        Some(format!("/ui/wallets/{ada}?notice=voided").as_str())
    );
    assert_eq!(money(&app, &ada).await, ["87.50", "0.00", "87.50"]);
    assert_eq!(hold(&app, &second).await["status"], "voided");
    assert!(page(&app, &ada).await.contains("No pending holds."));
    assert_eq!(app.audit_findings().await, 0);
}

async fn a_hold_bigger_than_available_is_refused_beside_the_amount(backend: Backend) {
    let app = app(backend).await;
    let ada = app.create_wallet("Ada", "EUR", "100.00").await;
    placed(&app, &ada, "30.00").await;
    let before = snapshot(&app, &[&ada]).await;

    // More than available (though less than the balance): 409, the typed values kept.
    let reply = place(&app, &ada, "70.01", "5").await;
    assert_refused(
        &reply,
        409,
        "hold-amount",
        "Insufficient funds: 70.00 EUR of this wallet is available.",
    );
    assert!(reply.text.contains(r#"value="70.01""#), "{}", reply.text);
    assert!(reply.text.contains(r#"value="5""#), "{}", reply.text);
    assert!(reply.text.contains(r#"aria-invalid="true""#));
    // Malformed or too precise amounts: 422.
    for (amount, message) in [
        ("1.001", "EUR allows at most 2 decimal places."),
        ("", "Enter an amount."),
        ("0", "Enter an amount greater than zero."),
    ] {
        let reply = place(&app, &ada, amount, "").await;
        assert_refused(&reply, 422, "hold-amount", message);
    }
    assert_eq!(snapshot(&app, &[&ada]).await, before);
    assert_eq!(money(&app, &ada).await, ["100.00", "30.00", "70.00"]);
}

async fn a_capture_of_more_than_the_hold_is_refused_beside_its_amount(backend: Backend) {
    let app = app(backend).await;
    let ada = app.create_wallet("Ada", "EUR", "100.00").await;
    let grace = app.create_wallet("Grace", "EUR", "0.00").await;
    let id = placed(&app, &ada, "30.00").await;
    let before = snapshot(&app, &[&ada, &grace]).await;

    let reply = capture(&app, &ada, &id, "30.01", &grace).await;
    let field = format!("hold-{id}-amount");
    assert_refused(
        &reply,
        422,
        &field,
        &format!("Hold #{id} reserves 30.00 EUR: capture at most that."),
    );
    assert!(reply.text.contains(r#"value="30.01""#), "{}", reply.text);
    assert!(
        reply.text.contains(&format!(r#"value="{grace}""#)),
        "the target is kept: {}",
        reply.text
    );
    let reply = capture(&app, &ada, &id, "abc", "").await;
    assert_refused(&reply, 422, &field, "Enter an amount like 12.50");
    assert_eq!(snapshot(&app, &[&ada, &grace]).await, before);
    assert_eq!(hold(&app, &id).await["status"], "pending");
}

async fn a_capture_after_a_void_is_refused_at_the_head_of_the_holds(backend: Backend) {
    let app = app(backend).await;
    let ada = app.create_wallet("Ada", "EUR", "100.00").await;
    let id = placed(&app, &ada, "30.00").await;
    let reply = void(&app, &ada, &id).await;
    assert_eq!(reply.status, 303, "{}", reply.text);
    let before = snapshot(&app, &[&ada]).await;

    let message = format!("Hold #{id} was voided: it can no longer be captured or voided.");
    let reply = capture(&app, &ada, &id, "10.00", "").await;
    assert_refused(&reply, 409, "holds", &message);
    let reply = void(&app, &ada, &id).await;
    assert_refused(&reply, 409, "holds", &message);
    assert_eq!(snapshot(&app, &[&ada]).await, before);
    assert_eq!(money(&app, &ada).await, ["100.00", "0.00", "100.00"]);

    // And after a capture.
    let id = placed(&app, &ada, "10.00").await;
    assert_eq!(capture(&app, &ada, &id, "", "").await.status, 303);
    let before = snapshot(&app, &[&ada]).await;
    let reply = void(&app, &ada, &id).await;
    assert_refused(
        &reply,
        409,
        "holds",
        &format!("Hold #{id} was already captured"),
    );
    assert_eq!(snapshot(&app, &[&ada]).await, before);
}

async fn invalid_hours_targets_and_currencies_are_refused_beside_their_fields(backend: Backend) {
    let app = app(backend).await;
    let ada = app.create_wallet("Ada", "EUR", "100.00").await;
    let dollars = app.create_wallet("Dollars", "USD", "0.00").await;
    let id = placed(&app, &ada, "30.00").await;
    let before = snapshot(&app, &[&ada, &dollars]).await;

    for hours in ["0", "721", "1.5", "-1", "week"] {
        let reply = place(&app, &ada, "1.00", hours).await;
        assert_refused(
            &reply,
            422,
            "hold-hours",
            "Enter a whole number of hours from 1 to 720",
        );
    }
    let to = format!("hold-{id}-to");
    let reply = capture(&app, &ada, &id, "1.00", &dollars).await;
    assert_refused(
        &reply,
        422,
        &to,
        &format!(
            "Wallet #{dollars} holds USD; a capture into another wallet needs the same currency (EUR)."
        ),
    );
    let reply = capture(&app, &ada, &id, "", &ada).await;
    assert_refused(
        &reply,
        422,
        &to,
        "a hold is not captured into its own wallet",
    );
    let reply = capture(&app, &ada, &id, "", "twelve").await;
    assert_refused(&reply, 422, &to, "Enter a wallet number, like 12");
    let reply = capture(&app, &ada, &id, "", "999999").await;
    assert_refused(&reply, 404, &to, "There is no open wallet #999999.");
    assert_eq!(snapshot(&app, &[&ada, &dollars]).await, before);
}

async fn a_whole_capture_is_a_withdrawal_and_a_repeated_form_moves_money_once(backend: Backend) {
    let app = app(backend).await;
    let ada = app.create_wallet("Ada", "EUR", "100.00").await;
    let id = placed(&app, &ada, "30.00").await;
    let path = format!("/ui/wallets/{ada}/holds/{id}/capture");
    let fields = [
        ("key", "5eed0000-1111-2222-3333-444455556666"),
        ("amount", ""),
        ("to", ""),
    ];
    let first = post_form(&app, &path, &fields).await;
    assert_eq!(first.status, 303, "{}", first.text);
    let again = post_form(&app, &path, &fields).await;
    assert_eq!(
        again.status, 303,
        "a double submit is harmless: {}",
        again.text
    );
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(money(&app, &ada).await, ["70.00", "0.00", "70.00"]);
    let history = app.history(&ada).await;
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0]["type"], "withdrawal");
    assert_eq!(history[0]["amount"], "30.00");
    assert_eq!(hold(&app, &id).await["captured"], "30.00");
}

async fn a_hold_of_another_wallet_is_no_page(backend: Backend) {
    let app = app(backend).await;
    let ada = app.create_wallet("Ada", "EUR", "100.00").await;
    let grace = app.create_wallet("Grace", "EUR", "100.00").await;
    let id = placed(&app, &ada, "30.00").await;
    let before = snapshot(&app, &[&ada, &grace]).await;
    for path in [
        format!("/ui/wallets/{grace}/holds/{id}/capture"),
        format!("/ui/wallets/{grace}/holds/{id}/void"),
        format!("/ui/wallets/{ada}/holds/999999/void"),
        format!("/ui/wallets/{ada}/holds/0{id}/void"),
    ] {
        let reply = post_form(&app, &path, &[("key", "k")]).await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.text);
        assert!(reply.text.contains("Page not found"), "{}", reply.text);
    }
    let reply = post_form(&app, "/ui/wallets/999999/holds", &[("amount", "1")]).await;
    assert_eq!(reply.status, 404, "{}", reply.text);
    assert!(reply.text.contains("Wallet not found"), "{}", reply.text);
    assert_eq!(snapshot(&app, &[&ada, &grace]).await, before);
    // A GET on a form's address goes back to the wallet page.
    let reply = app
        .page(&format!("/ui/wallets/{ada}/holds/{id}/capture"))
        .await;
    assert_eq!(reply.status, 303);
    assert_eq!(
        reply.header("location"),
        Some(format!("/ui/wallets/{ada}").as_str())
    );
}

/// With money held, a refused withdrawal says what is available, not only the balance.
async fn a_withdrawal_past_what_is_available_says_what_is_held(backend: Backend) {
    let app = app(backend).await;
    let wallet = app.create_wallet("held-back", "EUR", "100.00").await;
    placed(&app, &wallet, "80.00").await;
    let key = uuid::Uuid::new_v4().to_string();
    let fields = [("key", key.as_str()), ("amount", "50.00")];
    let reply = post_form(&app, &format!("/ui/wallets/{wallet}/withdraw"), &fields).await;
    assert_eq!(reply.status, 409, "{}", reply.text);
    assert!(
        reply
            .text
            .contains("this wallet holds 100.00 EUR, of which 20.00 EUR is available"),
        "{}",
        reply.text
    );
    assert_eq!(money(&app, &wallet).await[0], "100.00");
}

// Issue 16 on the hold forms: what a hold was placed with is shown beside it, and a capture's reference and
// description land on the entry it writes; a bad one is refused beside its field and changes nothing.
async fn a_hold_and_its_capture_carry_their_reference_and_description(backend: Backend) {
    let app = app(backend).await;
    let ada = app.create_wallet("Ada", "EUR", "100.00").await;
    let path = format!("/ui/wallets/{ada}/holds");
    let key = uuid::Uuid::new_v4().to_string();
    let fields = [
        ("key", key.as_str()),
        ("amount", "30.00"),
        ("expires_in_hours", ""),
        ("reference", "booking-7"),
        ("description", "Room 12, two nights"),
    ];
    let reply = post_form(&app, &path, &fields).await;
    assert_eq!(reply.status, 303, "{}", reply.text);
    let placed = pending(&app, &ada).await[0].clone();
    assert_eq!(placed["reference"], "booking-7", "{placed}");
    let id = placed["id"].as_str().expect("id").to_owned();
    let shown = page(&app, &ada).await;
    assert!(shown.contains("<code>booking-7</code>"), "{shown}");
    assert!(shown.contains("Room 12, two nights"), "{shown}");

    let capture_path = format!("/ui/wallets/{ada}/holds/{id}/capture");
    let before = snapshot(&app, &[&ada]).await;
    let too_long = "r".repeat(129);
    let key = uuid::Uuid::new_v4().to_string();
    let fields = [
        ("key", key.as_str()),
        ("amount", ""),
        ("to", ""),
        ("reference", too_long.as_str()),
        ("description", ""),
    ];
    let reply = post_form(&app, &capture_path, &fields).await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert!(
        reply
            .text
            .contains(&format!(r#"id="hold-{id}-reference-error""#)),
        "{}",
        reply.text
    );
    assert_eq!(snapshot(&app, &[&ada]).await, before);

    let key = uuid::Uuid::new_v4().to_string();
    let fields = [
        ("key", key.as_str()),
        ("amount", ""),
        ("to", ""),
        ("reference", "checkout-7"),
        ("description", "Checkout, minibar \"extra\""),
    ];
    let reply = post_form(&app, &capture_path, &fields).await;
    assert_eq!(reply.status, 303, "{}", reply.text);
    let entry = app.history(&ada).await[0].clone();
    assert_eq!(entry["reference"], "checkout-7", "{entry}");
    assert_eq!(
        entry["description"], "Checkout, minibar \"extra\"",
        "{entry}"
    );
    assert_eq!(hold(&app, &id).await["status"], "captured");
    assert_eq!(app.audit_findings().await, 0);
}
