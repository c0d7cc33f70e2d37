//! Input rules (issue 14, docs/adr/0007-input-rules.md): text that reaches SQL is validated like the field it
//! filters on, every rejection (the framework's too) is problem JSON from the error table, owners cannot spoof
//! one another, ids have one spelling, and the web app's key prefix stays the web app's. Each refusal changes
//! nothing.

use serde_json::json;

use crate::helpers::{Backend, Reply, TestApp};

crate::on_both_backends!(invisible_and_bidi_owners_are_refused,);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn(backend).await.expect("backend configured")
}

/// Posts a web form as a browser's first request would, without following the redirect that answers it.
async fn post_form(app: &TestApp, path: &str, body: &str) -> Reply {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let request = client
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    Reply::read(request.send().await.expect("POST form")).await
}

// Item 9: zero-width, bidi and line-separator characters made two owners look alike.
async fn invisible_and_bidi_owners_are_refused(backend: Backend) {
    let app = app(backend).await;
    app.create_wallet("alice", "EUR", "1.00").await;
    let before = app.snapshot().await;
    for owner in [
        "ali\u{200B}ce",
        "ali\u{200D}ce",
        "\u{FEFF}alice",
        "alice\u{202E}gpj.exe",
        "ali\u{2028}ce",
        "ali\u{2029}ce",
    ] {
        app.post("/wallet/", json!({"owner": owner, "currency": "EUR"}))
            .await
            .assert_problem(422, "invalid_request");
        let form = serde_urlencoded::to_string([("owner", owner), ("currency", "EUR")])
            .expect("form encoding");
        let page = post_form(&app, "/ui/wallets", &form).await;
        assert_eq!(page.status, 422, "{owner:?}: {}", page.text);
        assert!(page.text.contains("Remove the invisible characters"));
    }
    assert_eq!(app.snapshot().await, before);
}
