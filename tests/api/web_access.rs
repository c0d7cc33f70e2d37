//! The web app's access control (SPEC §8, "Web app"): pages need a session started with an API key; the session
//! cookie is `HttpOnly`, `SameSite=Strict` and `Secure` behind HTTPS; sign-out, expiry and revocation end it; pages
//! show only what the key may see and the forms its role allows; the web app records the key as the actor.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{ADMIN_KEY, Backend, Reply, TestApp, cookie_of};

crate::on_both_backends!(
    pages_without_a_session_redirect_to_the_sign_in_page_and_change_nothing,
    a_bad_key_gets_the_sign_in_page_with_401_and_nothing_is_stored,
    the_session_cookie_is_http_only_strict_and_secure_only_behind_https,
    signing_out_ends_the_session,
    an_expired_session_is_refused_and_deleted_by_housekeeping,
    a_revoked_keys_session_is_refused,
    a_read_key_sees_no_forms_and_its_posts_are_403,
    an_owner_bound_key_sees_only_its_owners_wallets,
    the_web_app_records_the_key_as_the_actor_and_scopes_form_keys_per_key,
    with_authentication_off_every_page_works_without_signing_in,
);

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn(backend).await.expect("backend configured")
}

/// A new key made through the admin API: (id, secret).
async fn new_key(app: &TestApp, role: &str, owner: Option<&str>) -> (String, String) {
    let mut body = json!({"role": role, "name": format!("web {role}")});
    if let Some(owner) = owner {
        body["owner"] = json!(owner);
    }
    let created = app.post("/wallet/keys", body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let text = |field: &str| created.body[field].as_str().expect(field).to_owned();
    (text("id"), text("key"))
}

/// The stored sessions: (token hash, key id).
async fn sessions(app: &TestApp) -> Vec<(String, String)> {
    app.text_pairs(
        "select token_hash, key_id from web_sessions where $1 >= 0 order by token_hash",
        0,
    )
    .await
}

fn location(reply: &Reply) -> &str {
    reply.header("location").unwrap_or_default()
}

#[track_caller]
fn assert_sent_to_sign_in(reply: &Reply, next: &str) {
    assert_eq!(reply.status, 303, "{}", reply.text);
    let expected = if next.is_empty() {
        "/ui/sign-in".to_owned()
    } else {
        format!("/ui/sign-in?next={next}")
    };
    assert_eq!(location(reply), expected);
}

/// The value of `revwallet_auth_failures_total{reason}` (0 before the first failure of that reason).
async fn failures(app: &TestApp, reason: &str) -> f64 {
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let series = format!("revwallet_auth_failures_total{{reason=\"{reason}\"}} ");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn pages_without_a_session_redirect_to_the_sign_in_page_and_change_nothing(backend: Backend) {
    let app = app(backend).await;
    let id = app.create_wallet("Ada", "EUR", "5.00").await;
    let before = app.snapshot().await;

    assert_sent_to_sign_in(&app.page_as("", "/").await, "");
    assert_sent_to_sign_in(
        &app.page_as("", &format!("/ui/wallets/{id}?before=9")).await,
        &format!("%2Fui%2Fwallets%2F{id}%3Fbefore%3D9"),
    );
    assert_sent_to_sign_in(
        &app.page_as("", "/ui/nothing-here").await,
        "%2Fui%2Fnothing-here",
    );
    // A post without a session changes nothing, and is not remembered as a page to return to.
    let deposit = format!("/ui/wallets/{id}/deposit");
    assert_sent_to_sign_in(&app.post_page_as("", &deposit, "amount=1").await, "");
    let create = "owner=Eve&currency=EUR&initial_balance=1";
    assert_sent_to_sign_in(&app.post_page_as("", "/ui/wallets", create).await, "");
    // A made-up session is no session either; its cookie is cleared.
    let forged = format!("revwallet_session={}", "ab".repeat(32));
    let refused = app.page_as(&forged, "/").await;
    assert_sent_to_sign_in(&refused, "");
    assert!(
        refused
            .header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    assert_eq!(app.snapshot().await, before);

    // The sign-in page itself and the stylesheet are open.
    let sign_in = app
        .page_as("", "/ui/sign-in?next=%2Fui%2Fwallets%2F1")
        .await;
    assert_eq!(sign_in.status, 200);
    assert!(
        sign_in
            .text
            .contains(r#"<input type="hidden" name="next" value="/ui/wallets/1">"#)
    );
    let static_css = app.page("/").await;
    assert_eq!(static_css.status, 200);
    let css_url = static_css
        .text
        .split(r#"<link rel="stylesheet" href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("stylesheet link")
        .replace("&#x3d;", "=");
    assert_eq!(app.page_as("", &css_url).await.status, 200);

    // After signing in, the browser goes back to the page it asked for, but only to a page of this app.
    let next_page = |next: &str| {
        serde_urlencoded::to_string([("api_key", ADMIN_KEY), ("next", next)]).expect("form")
    };
    let back = app
        .post_page_as("", "/ui/sign-in", &next_page(&format!("/ui/wallets/{id}")))
        .await;
    assert_eq!(location(&back), format!("/ui/wallets/{id}"));
    for foreign in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let home = app
            .post_page_as("", "/ui/sign-in", &next_page(foreign))
            .await;
        assert_eq!(home.status, 303);
        assert_eq!(location(&home), "/", "{foreign}");
    }
    let shown = app.page_as("", "/ui/sign-in?next=%2F%2Fevil.example").await;
    assert!(
        shown.text.contains(r#"name="next" value="/">"#),
        "{}",
        shown.text
    );
}

async fn a_bad_key_gets_the_sign_in_page_with_401_and_nothing_is_stored(backend: Backend) {
    let app = app(backend).await;
    let (revoked_id, revoked) = new_key(&app, "write", None).await;
    let revoking = app.delete(&format!("/wallet/keys/{revoked_id}")).await;
    assert_eq!(revoking.status, 204, "{}", revoking.text);
    let unknown_before = failures(&app, "unknown").await;
    let malformed_before = failures(&app, "malformed").await;

    let unknown = format!("rw_{}", "0".repeat(40));
    for (key, says) in [
        ("", "Paste an API key."),
        ("not-a-key", "This is not an API key"),
        (&ADMIN_KEY[..20], "This is not an API key"),
        (unknown.as_str(), "unknown or has been revoked"),
        (revoked.as_str(), "unknown or has been revoked"),
    ] {
        let reply = app.post_sign_in(key, &[]).await;
        assert_eq!(reply.status, 401, "{key:?}: {}", reply.text);
        assert!(reply.text.contains(says), "{key:?}: {}", reply.text);
        assert!(reply.text.contains(r#"aria-invalid="true""#));
        assert!(reply.header("set-cookie").is_none(), "{key:?}");
        if !key.is_empty() {
            assert!(!reply.text.contains(key), "the key is never shown back");
        }
    }
    assert_eq!(sessions(&app).await, Vec::new(), "nothing stored");
    assert!(failures(&app, "unknown").await > unknown_before);
    assert!(failures(&app, "malformed").await > malformed_before);
}

async fn the_session_cookie_is_http_only_strict_and_secure_only_behind_https(backend: Backend) {
    let app = app(backend).await;

    let plain = app.post_sign_in(ADMIN_KEY, &[]).await;
    let https = app
        .post_sign_in(ADMIN_KEY, &[("x-forwarded-proto", "https")])
        .await;

    assert_eq!(plain.status, 303);
    assert_eq!(location(&plain), "/");
    let cookie = plain.header("set-cookie").expect("cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    let secure = https.header("set-cookie").expect("cookie");
    assert!(secure.contains("; Secure") && secure.contains("SameSite=Strict"));

    // The database keeps the token's SHA-256 and the key, never the token.
    let session = cookie_of(&plain);
    let token = session.strip_prefix("revwallet_session=").expect("token");
    assert_eq!(token.len(), 64);
    let stored = sessions(&app).await;
    assert_eq!(stored.len(), 2);
    let admin_id = revwallet::domain::KeySecret::parse(ADMIN_KEY)
        .expect("key")
        .id();
    let hash = revwallet::domain::hex(&Sha256::digest(token.as_bytes()));
    assert!(stored.contains(&(hash, admin_id)), "{stored:?}");
    assert!(stored.iter().all(|(hash, _)| hash != token));

    let home = app.page_as(&session, "/").await;
    assert_eq!(home.status, 200, "{}", home.text);
    assert!(home.text.contains("Signed in with key"));
}

async fn signing_out_ends_the_session(backend: Backend) {
    let app = app(backend).await;
    let session = app.sign_in(ADMIN_KEY).await;
    let other = app.sign_in(ADMIN_KEY).await;
    assert_eq!(app.page_as(&session, "/").await.status, 200);

    let out = app.post_page_as(&session, "/ui/sign-out", "").await;

    assert_eq!(out.status, 303);
    assert_eq!(location(&out), "/ui/sign-in");
    let cleared = out.header("set-cookie").expect("cookie");
    assert!(cleared.starts_with("revwallet_session=;") && cleared.contains("Max-Age=0"));
    assert_sent_to_sign_in(&app.page_as(&session, "/").await, "");
    assert_eq!(sessions(&app).await.len(), 1, "only that session ended");
    assert_eq!(app.page_as(&other, "/").await.status, 200);
    // A sign-out from another site is refused like any other forged form.
    let forged = page_post(&app, &other, "/ui/sign-out", "cross-site").await;
    assert_eq!(forged.status, 403);
    assert_eq!(app.page_as(&other, "/").await.status, 200);
}

/// Posts an empty form with `Sec-Fetch-Site: site`.
async fn page_post(app: &TestApp, cookie: &str, path: &str, site: &str) -> Reply {
    let request = crate::helpers::page_client()
        .post(app.url(path))
        .header("cookie", cookie)
        .header("sec-fetch-site", site)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("");
    Reply::read(request.send().await.expect("POST")).await
}

async fn an_expired_session_is_refused_and_deleted_by_housekeeping(backend: Backend) {
    let app = app(backend).await;
    let session = app.sign_in(ADMIN_KEY).await;
    let expired_before = failures(&app, "session_expired").await;
    let admin_id = revwallet::domain::KeySecret::parse(ADMIN_KEY)
        .expect("key")
        .id();

    app.execute(
        "update web_sessions set expires_at = created_at where key_id = $1",
        &admin_id,
    )
    .await;

    let refused = app.page_as(&session, "/").await;
    assert_sent_to_sign_in(&refused, "");
    assert!(
        refused
            .header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    assert!(failures(&app, "session_expired").await > expired_before);
    // Housekeeping deletes expired sessions (the server's own housekeeping may have been first).
    let deleted = app.store.expire_web_sessions().await.expect("expire");
    assert!(deleted <= 1);
    assert_eq!(sessions(&app).await, Vec::new());
}

async fn a_revoked_keys_session_is_refused(backend: Backend) {
    let app = app(backend).await;
    let (id, key) = new_key(&app, "write", None).await;
    let session = app.sign_in(&key).await;
    assert_eq!(app.page_as(&session, "/").await.status, 200);

    let revoked = app.delete(&format!("/wallet/keys/{id}")).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);

    assert_sent_to_sign_in(&app.page_as(&session, "/").await, "");
    let wallet = app.create_wallet("Ada", "EUR", "1.00").await;
    let before = app.snapshot().await;
    let posted = app
        .post_page_as(
            &session,
            &format!("/ui/wallets/{wallet}/deposit"),
            "amount=1",
        )
        .await;
    assert_sent_to_sign_in(&posted, "");
    assert_eq!(app.snapshot().await, before);
    assert_eq!(sessions(&app).await, Vec::new(), "its session is deleted");
}

async fn a_read_key_sees_no_forms_and_its_posts_are_403(backend: Backend) {
    let app = app(backend).await;
    let ada = app.create_wallet("Ada", "EUR", "10.00").await;
    let grace = app.create_wallet("Grace", "EUR", "0").await;
    let (_, read) = new_key(&app, "read", None).await;
    let (_, write) = new_key(&app, "write", None).await;
    let read = app.sign_in(&read).await;
    let write = app.sign_in(&write).await;

    let home = app.page_as(&read, "/").await;
    let page = app.page_as(&read, &format!("/ui/wallets/{ada}")).await;
    assert_eq!((home.status, page.status), (200, 200));
    assert!(home.text.contains(">Ada</a>") && home.text.contains(">Grace</a>"));
    assert!(home.text.contains("(read)"));
    for body in [&home.text, &page.text] {
        assert!(!body.contains(r#"action="/ui/wallets""#));
        assert!(!body.contains(r#"/deposit""#) && !body.contains(r#"/withdraw""#));
        assert!(!body.contains(r#"/transfer""#) && !body.contains(r#"/close""#));
        assert!(
            body.contains(r#"action="/ui/sign-out""#),
            "sign-out is offered"
        );
    }
    assert!(page.text.contains("10.00"));

    let before = app.snapshot().await;
    for (path, body) in [
        (
            "/ui/wallets".to_owned(),
            "owner=Eve&currency=EUR".to_owned(),
        ),
        (format!("/ui/wallets/{ada}/deposit"), "amount=1".to_owned()),
        (format!("/ui/wallets/{ada}/withdraw"), "amount=1".to_owned()),
        (
            format!("/ui/wallets/{ada}/transfer"),
            format!("to={grace}&amount=1"),
        ),
        (format!("/ui/wallets/{ada}/close"), "confirm=yes".to_owned()),
    ] {
        let reply = app.post_page_as(&read, &path, &body).await;
        assert_eq!(reply.status, 403, "{path}: {}", reply.text);
        assert!(reply.text.contains("Not allowed"), "{}", reply.text);
    }
    // A write key moves money but does not close wallets.
    let wallet_page = app.page_as(&write, &format!("/ui/wallets/{ada}")).await;
    assert!(wallet_page.text.contains(r#"/deposit""#));
    assert!(!wallet_page.text.contains(r#"/close""#));
    let close = format!("/ui/wallets/{ada}/close");
    let closing = app.post_page_as(&write, &close, "confirm=yes").await;
    assert_eq!(closing.status, 403);
    assert_eq!(app.snapshot().await, before);
}

async fn an_owner_bound_key_sees_only_its_owners_wallets(backend: Backend) {
    let app = app(backend).await;
    let alice = app.create_wallet("alice", "EUR", "10.00").await;
    let bob = app.create_wallet("bob", "EUR", "0").await;
    let (_, key) = new_key(&app, "write", Some("alice")).await;
    let session = app.sign_in(&key).await;

    let home = app.page_as(&session, "/").await;
    assert!(home.text.contains(">alice</a>"), "{}", home.text);
    assert!(!home.text.contains("bob"), "{}", home.text);
    assert!(home.text.contains("for alice"));
    let filtered = app.page_as(&session, "/?owner=bob").await;
    assert!(!filtered.text.contains("bob</a>"));

    let before = app.snapshot().await;
    let other = app.page_as(&session, &format!("/ui/wallets/{bob}")).await;
    assert_eq!(other.status, 404);
    assert!(other.text.contains("Wallet not found"));
    for form in ["deposit", "withdraw", "transfer"] {
        let body = format!("amount=1&to={alice}");
        let reply = app
            .post_page_as(&session, &format!("/ui/wallets/{bob}/{form}"), &body)
            .await;
        assert_eq!(reply.status, 404, "{form}: {}", reply.text);
    }
    let for_bob = "owner=bob&currency=EUR";
    let opened = app.post_page_as(&session, "/ui/wallets", for_bob).await;
    assert_eq!(opened.status, 403, "{}", opened.text);
    assert!(opened.text.contains("only for its own owner"));
    assert_eq!(app.snapshot().await, before);

    // Own wallets: shown with the forms; the transfer form asks for a number rather than listing others.
    let page = app.page_as(&session, &format!("/ui/wallets/{alice}")).await;
    assert!(
        page.text
            .contains(r#"<label for="transfer-to">To wallet number</label>"#)
    );
    assert!(!page.text.contains("bob"));
    let moved = app
        .post_page_as(
            &session,
            &format!("/ui/wallets/{alice}/transfer"),
            &format!("to={bob}&amount=4"),
        )
        .await;
    assert_eq!(moved.status, 303, "{}", moved.text);
    assert_eq!(app.balance(&bob).await, "4.00");
    let after = app.page_as(&session, &format!("/ui/wallets/{alice}")).await;
    assert!(after.text.contains(&format!("Transfer to #{bob}")));
    assert!(
        !after.text.contains("bob"),
        "the other side shows only its id"
    );
    let own = app
        .post_page_as(&session, "/ui/wallets", "owner=alice&currency=EUR")
        .await;
    assert_eq!(own.status, 303, "{}", own.text);
}

async fn the_web_app_records_the_key_as_the_actor_and_scopes_form_keys_per_key(backend: Backend) {
    let app = app(backend).await;
    let wallet = app.create_wallet("Ada", "EUR", "0").await;
    let (first_id, first) = new_key(&app, "write", None).await;
    let (second_id, second) = new_key(&app, "write", None).await;
    let first = app.sign_in(&first).await;
    let second = app.sign_in(&second).await;
    let deposit = format!("/ui/wallets/{wallet}/deposit");
    let form = "key=f47ac10b-58cc-4372-a567-0e02b2c3d479&amount=2.00";

    for session in [&first, &first, &second] {
        let reply = app.post_page_as(session, &deposit, form).await;
        assert_eq!(reply.status, 303, "{}", reply.text);
    }

    // The same form key from two keys: each applied once.
    assert_eq!(app.balance(&wallet).await, "4.00");
    let history = app.history(&wallet).await;
    let actors: Vec<&Value> = history
        .iter()
        .filter(|entry| entry["type"] == "deposit")
        .map(|entry| &entry["actor"])
        .collect();
    assert_eq!(actors, [&json!(second_id), &json!(first_id)]);
    let page = app.page_as(&first, &format!("/ui/wallets/{wallet}")).await;
    assert!(page.text.contains("By key"));
    assert!(page.text.contains(&format!("<code>{first_id}</code>")));
    assert!(page.text.contains(&format!("<code>{second_id}</code>")));
}

async fn with_authentication_off_every_page_works_without_signing_in(backend: Backend) {
    let app = TestApp::spawn_open(backend)
        .await
        .expect("backend configured");
    let wallet = app.create_wallet("Ada", "EUR", "1.00").await;

    let home = app.page_as("", "/").await;
    let deposited = app
        .post_page_as("", &format!("/ui/wallets/{wallet}/deposit"), "amount=1")
        .await;
    let page = app.page_as("", &format!("/ui/wallets/{wallet}")).await;
    let sign_in = app.page_as("", "/ui/sign-in").await;

    assert_eq!(home.status, 200);
    assert!(home.text.contains(r#"action="/ui/wallets""#));
    assert!(!home.text.contains("Sign out"));
    assert_eq!(deposited.status, 303);
    assert_eq!(app.balance(&wallet).await, "2.00");
    assert!(page.text.contains(r#"/close""#), "every form, as before");
    assert!(!page.text.contains("By key"));
    assert_eq!(sign_in.status, 303);
    assert_eq!(location(&sign_in), "/");
}
