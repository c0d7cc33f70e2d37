//! In-process tests of the web app: the whole router on a fresh SQLite file, driven with `oneshot`, signed in
//! with an admin key. The browser tests (`tests/ui/`) cover the same journeys in a real Chromium; these pin
//! statuses, headers and edge cases quickly. Sessions, roles and owners are tested end to end in
//! `tests/api/web_access.rs`.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use tower::ServiceExt;

use crate::config::ServeArgs;
use crate::domain::{KeySecret, Role};
use crate::state::AppState;
use crate::store::Store;

struct TestApp {
    router: Router,
    /// The `Cookie` header of the admin session every request is sent with.
    cookie: String,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

impl TestApp {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("web.db").display());
        let settings = ServeArgs::default();
        let store = Store::connect(&url, &settings.database.store_options()).expect("store");
        store.migrate().await.expect("migrations");
        let secret = KeySecret::generate();
        let key = crate::auth::new_key(&secret, Role::Admin, None, "web tests").expect("key");
        store.insert_api_key(&key).await.expect("insert key");
        let mut app = Self {
            router: crate::app::router(AppState::new(store, settings)),
            cookie: String::new(),
            _dir: dir,
        };
        let body = serde_urlencoded::to_string([("api_key", secret.reveal())]).expect("form");
        let signed_in = app
            .send(
                Request::post("/ui/sign-in")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(body))
                    .expect("request"),
            )
            .await;
        assert_eq!(
            signed_in.status,
            StatusCode::SEE_OTHER,
            "{}",
            signed_in.body
        );
        let cookie = signed_in.headers[header::SET_COOKIE]
            .to_str()
            .expect("cookie")
            .split(';')
            .next()
            .expect("name=value")
            .to_owned();
        app.cookie = cookie;
        app
    }

    /// Sends a request in the admin session (unless it carries its own `Cookie`).
    async fn send(&self, mut request: Request<Body>) -> Answer {
        if !self.cookie.is_empty() && !request.headers().contains_key(header::COOKIE) {
            let cookie = header::HeaderValue::from_str(&self.cookie).expect("cookie");
            request.headers_mut().insert(header::COOKIE, cookie);
        }
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible router");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.send(Request::get(uri).body(Body::empty()).expect("request"))
            .await
    }

    async fn post_form(&self, uri: &str, fields: &[(&str, &str)]) -> Answer {
        let body = serde_urlencoded::to_string(fields).expect("form encoding");
        let request = Request::post(uri)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("request");
        self.send(request).await
    }

    /// Creates a wallet through the form and returns its page's path.
    async fn create(&self, owner: &str, currency: &str, initial: &str) -> String {
        let answer = self
            .post_form(
                "/ui/wallets",
                &[
                    ("owner", owner),
                    ("currency", currency),
                    ("initial_balance", initial),
                ],
            )
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let location = answer.location();
        location
            .strip_suffix("?notice=created")
            .expect("notice in location")
            .to_owned()
    }

    async fn balance(&self, wallet: &str) -> String {
        let page = self.get(wallet).await;
        assert_eq!(page.status, StatusCode::OK);
        let start = page
            .body
            .find(r#"id="balance">"#)
            .expect("balance on the page");
        let rest = &page.body[start + r#"id="balance">"#.len()..];
        rest[..rest.find("&nbsp;").expect("balance ends")].to_owned()
    }
}

#[tokio::test]
async fn the_home_page_lists_wallets_offers_the_create_form_and_links_to_grafana_and_prometheus() {
    let app = TestApp::new().await;
    app.create("Ada Lovelace", "EUR", "10.00").await;

    let home = app.get("/").await;

    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(home.body.contains("Ada Lovelace"));
    assert!(home.body.contains(r#"action="/ui/wallets""#));
    assert!(
        home.body.contains(r#"<option value="KWD""#),
        "every ISO 4217 currency is offered"
    );
    assert!(
        home.body.contains(r#"href="/grafana/""#) && home.body.contains(r#"href="/prometheus/""#)
    );
}

#[tokio::test]
async fn creating_a_wallet_redirects_to_its_page_which_shows_a_fixed_notice_and_the_balance() {
    let app = TestApp::new().await;

    let wallet = app.create("  Grace Hopper ", "jpy", "1500").await;
    let page = app.get(&format!("{wallet}?notice=created")).await;

    assert_eq!(wallet, "/ui/wallets/1");
    assert!(page.body.contains("Wallet created."));
    assert!(page.body.contains("Grace Hopper"));
    assert_eq!(app.balance(&wallet).await, "1,500");
}

#[tokio::test]
async fn a_refused_create_form_answers_422_with_the_errors_beside_the_fields_and_the_typed_values()
{
    let app = TestApp::new().await;

    let answer = app
        .post_form(
            "/ui/wallets",
            &[
                ("owner", "Ada"),
                ("currency", "EUR"),
                ("initial_balance", "12.345"),
            ],
        )
        .await;

    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.body.contains("<title>Error: Wallets"));
    assert!(answer.body.contains(r#"id="initial_balance-error""#));
    assert!(answer.body.contains("EUR allows at most 2 decimal places."));
    assert!(answer.body.contains(r#"value="12.345""#));
    assert!(answer.body.contains(r#"value="Ada""#));
    assert!(answer.body.contains(r#"<option value="EUR" selected>"#));
}

#[tokio::test]
async fn an_unknown_currency_and_an_empty_owner_are_both_reported() {
    let app = TestApp::new().await;

    let answer = app
        .post_form("/ui/wallets", &[("owner", "   "), ("currency", "XXX")])
        .await;

    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.body.contains("Enter the owner’s name."));
    assert!(answer.body.contains("Choose a currency from the list."));
    assert_eq!(
        answer.body.matches(" autofocus").count(),
        1,
        "only the first refused field takes the focus"
    );
}

#[tokio::test]
async fn a_deposit_posts_and_redirects_and_a_reload_of_the_redirect_changes_nothing() {
    let app = TestApp::new().await;
    let wallet = app.create("Ada", "EUR", "").await;

    let answer = app
        .post_form(&format!("{wallet}/deposit"), &[("amount", "25.5")])
        .await;

    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), format!("{wallet}?notice=deposited"));
    let page = app.get(answer.location()).await;
    assert!(page.body.contains("Deposit recorded."));
    assert!(page.body.contains("+25.50"));
    assert_eq!(app.balance(&wallet).await, "25.50");
}

#[tokio::test]
async fn an_amount_with_too_many_decimals_is_refused_with_422_and_the_typed_value_kept() {
    let app = TestApp::new().await;
    let wallet = app.create("Ada", "EUR", "1.00").await;

    let answer = app
        .post_form(&format!("{wallet}/deposit"), &[("amount", "1.001")])
        .await;

    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.body.contains(r#"id="deposit-amount-error""#));
    assert!(answer.body.contains("EUR allows at most 2 decimal places."));
    assert!(answer.body.contains(r#"value="1.001""#));
    assert!(
        answer
            .body
            .contains(r#"aria-describedby="deposit-amount-hint deposit-amount-error""#)
    );
    assert_eq!(app.balance(&wallet).await, "1.00");
}

#[tokio::test]
async fn an_overdraft_is_refused_with_409_and_changes_nothing() {
    let app = TestApp::new().await;
    let wallet = app.create("Ada", "EUR", "10.00").await;

    let answer = app
        .post_form(&format!("{wallet}/withdraw"), &[("amount", "10.01")])
        .await;

    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(
        answer
            .body
            .contains("Insufficient funds: this wallet holds 10.00 EUR.")
    );
    assert!(answer.body.contains(r#"value="10.01""#));
    assert_eq!(app.balance(&wallet).await, "10.00");
}

#[tokio::test]
async fn a_transfer_moves_money_to_another_wallet_of_the_same_currency() {
    let app = TestApp::new().await;
    let from = app.create("Ada", "EUR", "100.00").await;
    let to = app.create("Grace", "EUR", "").await;
    let page = app.get(&from).await;
    assert!(
        page.body
            .contains(r#"<option value="2">#2 — Grace</option>"#),
        "same-currency wallets are offered"
    );

    let answer = app
        .post_form(
            &format!("{from}/transfer"),
            &[("to", "2"), ("amount", "40")],
        )
        .await;

    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), format!("{from}?notice=transferred"));
    assert_eq!(app.balance(&from).await, "60.00");
    assert_eq!(app.balance(&to).await, "40.00");
    assert!(app.get(&to).await.body.contains("Transfer from #1"));
}

#[tokio::test]
async fn a_transfer_to_another_currency_an_unknown_wallet_or_itself_is_refused_beside_the_field() {
    let app = TestApp::new().await;
    let from = app.create("Ada", "EUR", "100.00").await;
    app.create("Yen", "JPY", "").await;

    let other_currency = app
        .post_form(&format!("{from}/transfer"), &[("to", "2"), ("amount", "1")])
        .await;
    let unknown = app
        .post_form(
            &format!("{from}/transfer"),
            &[("to", "99"), ("amount", "1")],
        )
        .await;
    let itself = app
        .post_form(&format!("{from}/transfer"), &[("to", "1"), ("amount", "1")])
        .await;

    assert_eq!(other_currency.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(other_currency.body.contains("Wallet #2 holds JPY"));
    assert_eq!(
        unknown.status,
        StatusCode::NOT_FOUND,
        "the API answers an unknown wallet with 404 too"
    );
    assert!(unknown.body.contains("There is no open wallet #99."));
    assert_eq!(itself.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(itself.body.contains("a wallet cannot transfer to itself"));
    assert_eq!(app.balance(&from).await, "100.00");
}

#[tokio::test]
async fn closing_needs_the_confirmation_then_redirects_home_and_the_wallet_page_is_a_404() {
    let app = TestApp::new().await;
    let wallet = app.create("Ada", "EUR", "5.00").await;

    let unconfirmed = app.post_form(&format!("{wallet}/close"), &[]).await;
    let closed = app
        .post_form(&format!("{wallet}/close"), &[("confirm", "yes")])
        .await;
    let page = app.get(&wallet).await;
    let home = app.get("/?notice=closed").await;

    assert_eq!(unconfirmed.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unconfirmed.body.contains("Tick the box to confirm"));
    assert_eq!(closed.status, StatusCode::SEE_OTHER);
    assert_eq!(closed.location(), "/?notice=closed");
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        page.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/html")
    );
    assert!(page.body.contains("Wallet not found"));
    assert!(home.body.contains("Wallet closed."));
    assert!(!home.body.contains("Ada"));
    let again = app
        .post_form(&format!("{wallet}/deposit"), &[("amount", "1")])
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn posting_the_same_form_twice_runs_it_once_and_redirects_both_times() {
    let app = TestApp::new().await;
    let wallet = app.create("Ada", "EUR", "").await;
    let fields = [
        ("key", "f47ac10b-58cc-4372-a567-0e02b2c3d479"),
        ("amount", "7.00"),
    ];

    let first = app.post_form(&format!("{wallet}/deposit"), &fields).await;
    let second = app.post_form(&format!("{wallet}/deposit"), &fields).await;

    assert_eq!(first.status, StatusCode::SEE_OTHER);
    assert_eq!(second.status, StatusCode::SEE_OTHER);
    assert_eq!(second.location(), first.location());
    assert_eq!(app.balance(&wallet).await, "7.00");
}

#[tokio::test]
async fn a_refused_form_frees_its_key_so_the_corrected_form_goes_through() {
    let app = TestApp::new().await;
    let wallet = app.create("Ada", "EUR", "1.00").await;
    let key = "0b5d3a7e-0000-4000-8000-000000000001";

    let refused = app
        .post_form(
            &format!("{wallet}/withdraw"),
            &[("key", key), ("amount", "2.00")],
        )
        .await;
    let accepted = app
        .post_form(
            &format!("{wallet}/withdraw"),
            &[("key", key), ("amount", "0.50")],
        )
        .await;

    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(accepted.status, StatusCode::SEE_OTHER);
    assert_eq!(app.balance(&wallet).await, "0.50");
}

#[tokio::test]
async fn notices_are_fixed_texts_chosen_by_name_and_the_query_is_never_echoed() {
    let app = TestApp::new().await;

    let page = app
        .get("/?notice=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await;

    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("alert(1)"));
    assert!(!page.body.contains(r#"class="notice""#));
}

#[tokio::test]
async fn what_people_type_is_escaped_and_pages_carry_no_script() {
    let app = TestApp::new().await;
    let wallet = app.create("<script>alert(1)</script>", "EUR", "").await;

    let home = app.get("/").await;
    let page = app.get(&wallet).await;
    let refused = app
        .post_form(&format!("{wallet}/deposit"), &[("amount", "\"><b>x</b>")])
        .await;

    for body in [&home.body, &page.body, &refused.body] {
        assert!(!body.contains("<script"), "{body}");
        assert!(!body.contains("<b>x</b>"));
    }
    assert!(page.body.contains("&#60;script&#62;") || page.body.contains("&lt;script&gt;"));
    assert!(page.body.contains(
        r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'self';"#
    ));
    assert!(
        !page.headers.contains_key(header::CONTENT_SECURITY_POLICY),
        "the edge sends its own header"
    );
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(page.headers[header::X_FRAME_OPTIONS], "SAMEORIGIN");
}

#[tokio::test]
async fn forms_must_be_urlencoded() {
    let app = TestApp::new().await;
    let wallet = app.create("Ada", "EUR", "").await;
    let request = Request::post(format!("{wallet}/deposit"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"amount":"1"}"#))
        .expect("request");

    let answer = app.send(request).await;

    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(answer.body.contains("Unsupported form"));
}

#[tokio::test]
async fn unknown_pages_and_malformed_wallet_ids_under_ui_are_html_404_pages() {
    let app = TestApp::new().await;

    for uri in [
        "/ui/nothing-here",
        "/ui/wallets/abc",
        "/ui/wallets/0",
        "/ui/wallets/99",
    ] {
        let answer = app.get(uri).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(answer.body.contains("<h1"), "{uri}");
    }
}

#[tokio::test]
async fn addresses_that_are_not_utf8_are_html_404_pages_never_plain_text() {
    let app = TestApp::new().await;
    let wallet = app.create("Ada", "EUR", "10.00").await;

    for uri in ["/ui/wallets/%FF", "/ui/wallets/%FF/deposit", "/static/%FF"] {
        let answer = app.get(uri).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(answer.body.contains("<h1"), "{uri}: {}", answer.body);
    }
    let posted = app
        .post_form("/ui/wallets/%FF/deposit", &[("amount", "1.00")])
        .await;
    assert_eq!(posted.status, StatusCode::NOT_FOUND);
    assert!(posted.body.contains("<h1"), "{}", posted.body);
    assert_eq!(app.balance(&wallet).await, "10.00");
}

#[tokio::test]
async fn a_get_on_a_form_address_goes_back_to_the_wallet_page() {
    let app = TestApp::new().await;

    let answer = app.get("/ui/wallets/3/deposit").await;

    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), "/ui/wallets/3");
}

#[tokio::test]
async fn the_stylesheet_comes_from_the_binary_cached_for_good_under_its_hash() {
    let app = TestApp::new().await;
    let css_url = super::assets::css_url();

    let css = app.get(css_url).await;
    let etag = css.headers[header::ETAG]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    let revalidated = app
        .send(
            Request::get(css_url)
                .header(header::IF_NONE_MATCH, &etag)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    let missing = app.get("/static/nothing.css").await;

    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(
        css.headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap_or_default()
            .contains("immutable")
    );
    assert!(css.body.contains("tabular-nums"));
    assert_eq!(revalidated.status, StatusCode::NOT_MODIFIED);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_wallet_list_and_the_history_are_paged() {
    let app = TestApp::new().await;
    for n in 0..22 {
        app.create(&format!("owner {n}"), "EUR", "").await;
    }
    let wallet = "/ui/wallets/1";
    for _ in 0..21 {
        let answer = app
            .post_form(&format!("{wallet}/deposit"), &[("amount", "1")])
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
    }

    let first = app.get("/").await;
    let second = app.get("/?after=20").await;
    let newest = app.get(wallet).await;
    let older = app.get(&format!("{wallet}?before=3")).await;

    assert!(first.body.contains(r#"href="/?after=20""#));
    assert!(!first.body.contains("owner 20</a>"));
    assert!(second.body.contains("owner 20</a>") && second.body.contains("owner 21</a>"));
    assert!(second.body.contains("First page"));
    assert!(newest.body.contains("Older entries"));
    assert_eq!(newest.body.matches("entry-label").count(), 20);
    assert!(older.body.contains("Opening balance") && older.body.contains("Newest entries"));
}

#[tokio::test]
async fn the_owner_filter_shows_only_that_owners_wallets() {
    let app = TestApp::new().await;
    app.create("Ada", "EUR", "").await;
    app.create("Grace", "EUR", "").await;

    let page = app.get("/?owner=Grace").await;

    assert!(page.body.contains(">Grace</a>"));
    assert!(!page.body.contains(">Ada</a>"));
    assert!(page.body.contains("Show all"));
}

#[tokio::test]
async fn a_form_posted_from_another_site_is_refused_with_403_and_changes_nothing() {
    let app = TestApp::new().await;
    let wallet = app.create("Ada", "EUR", "").await;
    let forged = |site: &'static str| {
        Request::post(format!("{wallet}/deposit"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("sec-fetch-site", site)
            .body(Body::from("amount=5"))
            .expect("request")
    };

    let cross = app.send(forged("cross-site")).await;
    let same = app.send(forged("same-origin")).await;

    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    assert!(cross.body.contains("Form refused"));
    assert_eq!(same.status, StatusCode::SEE_OTHER);
    assert_eq!(app.balance(&wallet).await, "5.00");
}

#[tokio::test]
async fn without_a_session_pages_redirect_to_the_sign_in_page_and_static_files_do_not() {
    let app = TestApp::new().await;
    let wallet = app.create("Ada", "EUR", "5.00").await;
    let signed_out = |request: axum::http::request::Builder, body: &'static str| {
        request
            .header(header::COOKIE, "theme=dark")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("request")
    };

    let home = app.send(signed_out(Request::get("/"), "")).await;
    let page = app
        .send(signed_out(Request::get(format!("{wallet}?before=3")), ""))
        .await;
    let post = app
        .send(signed_out(
            Request::post(format!("{wallet}/deposit")),
            "amount=1",
        ))
        .await;
    let css = app
        .send(signed_out(Request::get(super::assets::css_url()), ""))
        .await;
    let sign_in = app.send(signed_out(Request::get("/ui/sign-in"), "")).await;

    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/ui/sign-in");
    assert_eq!(home.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(home.headers[header::X_FRAME_OPTIONS], "SAMEORIGIN");
    assert_eq!(
        page.location(),
        "/ui/sign-in?next=%2Fui%2Fwallets%2F1%3Fbefore%3D3"
    );
    assert_eq!(post.status, StatusCode::SEE_OTHER);
    assert_eq!(post.location(), "/ui/sign-in");
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(sign_in.status, StatusCode::OK);
    assert!(
        sign_in
            .body
            .contains(r#"<label for="api_key">API key</label>"#)
    );
    assert!(sign_in.body.contains(r#"type="password""#));
    assert!(!sign_in.body.contains("Sign out"));
    assert_eq!(app.balance(&wallet).await, "5.00");
}

#[tokio::test]
async fn the_header_names_the_signed_in_key_and_offers_sign_out_and_the_history_its_actor() {
    let app = TestApp::new().await;
    let wallet = app.create("Ada", "EUR", "5.00").await;

    let page = app.get(&wallet).await;

    assert!(page.body.contains("Signed in with key"), "{}", page.body);
    assert!(page.body.contains("(admin)"));
    assert!(page.body.contains(r#"action="/ui/sign-out""#));
    assert!(page.body.contains("<th scope=\"col\">By key</th>"));
    let key_id = page
        .body
        .split(r#"<code class="account__key">"#)
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("key id in the header");
    assert!(
        page.body
            .contains(&format!("<td class=\"actor\"><code>{key_id}</code></td>"))
    );
}
