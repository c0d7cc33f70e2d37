//! The test harness: each test gets its own freshly migrated database (SQLite file or PostgreSQL database,
//! dropped afterwards) and a revwallet serving it on a random loopback port.

use std::net::SocketAddr;

use revwallet::app;
use revwallet::auth::{AuthMode, BootstrapKey, ensure_start_keys};
use revwallet::config::{Hidden, ServeArgs};
use revwallet::state::AppState;
use revwallet::store::Store;
use serde_json::{Value, json};
use sqlx::Connection;

pub const POSTGRES_ENV: &str = "REVWALLET_TEST_POSTGRES_URL";

/// The admin key every test server is bootstrapped with (the suite runs with authentication on).
pub const ADMIN_KEY: &str = "rw_test_admin_0123456789abcdef0123456789abcdef";

tokio::task_local! {
    /// Set by `also_with_auth_off!`: `TestApp::spawn` then serves the original open API (`--auth off`).
    pub static AUTH_OFF: bool;
}

fn auth_off() -> bool {
    AUTH_OFF.try_with(|off| *off).unwrap_or(false)
}

/// Where the test admin key's `Idempotency-Key`s live in the key table (unscoped with authentication off).
pub fn admin_scoped(key: &str) -> String {
    if auth_off() {
        return key.to_owned();
    }
    let secret = revwallet::domain::KeySecret::parse(ADMIN_KEY).expect("test key");
    format!("k:{}:{key}", secret.id())
}

/// A client that sends the test admin key on every request.
pub fn admin_client() -> reqwest::Client {
    admin_client_builder().build().expect("client")
}

pub fn admin_client_builder() -> reqwest::ClientBuilder {
    client_builder_with_key(ADMIN_KEY)
}

pub fn client_with_key(key: &str) -> reqwest::Client {
    client_builder_with_key(key).build().expect("client")
}

fn client_builder_with_key(key: &str) -> reqwest::ClientBuilder {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {key}")).expect("header"),
    );
    reqwest::Client::builder().default_headers(headers)
}
pub const REQUIRE_POSTGRES_ENV: &str = "REVWALLET_REQUIRE_POSTGRES";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The admin URL of a PostgreSQL server where tests may create databases, or `None` after saying loudly
/// that the PostgreSQL tests did not run. With `REVWALLET_REQUIRE_POSTGRES=1` (as `.ci/run` sets) a missing
/// server is a failure instead.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            let required = std::env::var(REQUIRE_POSTGRES_ENV).is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_ENV} is not set"
            );
            // Written straight to stderr, past the test harness's output capture, once per process.
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "\n!!! POSTGRESQL TESTS DID NOT RUN: set {POSTGRES_ENV} to a server where tests may create \
                     databases (`make test` does this for you) !!!\n"
                );
            });
            None
        }
    }
}

/// A database that exists for one test and is dropped when the guard goes.
pub struct TestDatabase {
    pub url: String,
    dropper: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                Some(Self {
                    url,
                    dropper: None,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                let admin = postgres_admin_url()?;
                let name = format!("revwallet_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .expect("connect to the test PostgreSQL");
                sqlx::query(&format!("create database {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create the test database");
                conn.close().await.ok();
                let (base, _) = admin
                    .rsplit_once('/')
                    .expect("admin URL has a database path");
                let url = format!("{base}/{name}");
                Some(Self {
                    url,
                    dropper: Some((admin, name)),
                    _dir: None,
                })
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin, name)) = self.dropper.take() else {
            return;
        };
        // Drop runs outside async: use a thread with its own small runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await?;
                sqlx::query(&format!("drop database if exists {name} with (force)"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop a test database: {dropped:?}");
        }
    }
}

/// A client for the web app's pages: no API key, and redirects are not followed (a test sees the 303s).
pub fn page_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The `Cookie` header value of a `Set-Cookie` answer (`revwallet_session=<token>`).
pub fn cookie_of(reply: &Reply) -> String {
    let set_cookie = reply.header("set-cookie").expect("Set-Cookie");
    set_cookie.split(';').next().expect("name=value").to_owned()
}

/// revwallet serving a fresh database on a random port, in this process.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub store: Store,
    /// The admin key's web session, started by the first `page` or `post_page`.
    admin_session: tokio::sync::OnceCell<String>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    // Declared last: dropped after the server has stopped.
    pub database: TestDatabase,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<Self> {
        if auth_off() {
            return Self::spawn_open(backend).await;
        }
        let database = TestDatabase::create(backend).await?;
        Some(Self::spawn_on(database, ServeArgs::default()).await)
    }

    /// The original open API (`--auth off`).
    pub async fn spawn_open(backend: Backend) -> Option<Self> {
        let database = TestDatabase::create(backend).await?;
        let settings = ServeArgs {
            auth: AuthMode::Off,
            ..ServeArgs::default()
        };
        Some(Self::spawn_on(database, settings).await)
    }

    pub async fn spawn_on(database: TestDatabase, mut settings: ServeArgs) -> Self {
        settings.database.database_url = Some(database.url.clone());
        let store =
            Store::connect(&database.url, &settings.database.store_options()).expect("store");
        store.migrate().await.expect("migrate");
        Self::serve(database, store, settings).await
    }

    /// Serves an already-connected store (fault tests connect through a proxy).
    pub async fn serve(database: TestDatabase, store: Store, mut settings: ServeArgs) -> Self {
        let client = match settings.auth {
            AuthMode::Off => reqwest::Client::new(),
            AuthMode::ApiKey => {
                let bootstrap = settings
                    .bootstrap_admin_key
                    .get_or_insert_with(|| Hidden(ADMIN_KEY.to_owned()));
                let key = BootstrapKey::parse(&bootstrap.0).expect("bootstrap key");
                ensure_start_keys(&store, Some(&key))
                    .await
                    .expect("bootstrap key");
                client_with_key(&bootstrap.0)
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let state = AppState::new(store.clone(), settings);
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let stop = async move {
                let _ = stop.await;
            };
            app::serve(listener, state, stop)
                .await
                .expect("server runs");
        });
        Self {
            address,
            client,
            store,
            admin_session: tokio::sync::OnceCell::new(),
            shutdown: Some(shutdown),
            server: Some(server),
            database,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Posts the sign-in form (as a browser would, from this app's own page).
    pub async fn post_sign_in(&self, key: &str, headers: &[(&str, &str)]) -> Reply {
        let body = serde_urlencoded::to_string([("api_key", key)]).expect("form");
        let mut request = page_client()
            .post(self.url("/ui/sign-in"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Reply::read(request.send().await.expect("POST sign-in")).await
    }

    /// Signs in to the web app with `key` and returns the `Cookie` header of the session (empty with
    /// authentication off, where no sign-in is needed).
    pub async fn sign_in(&self, key: &str) -> String {
        if auth_off() {
            return String::new();
        }
        let reply = self.post_sign_in(key, &[]).await;
        assert_eq!(reply.status, 303, "sign-in: {}", reply.text);
        cookie_of(&reply)
    }

    async fn admin_session(&self) -> &str {
        self.admin_session
            .get_or_init(|| self.sign_in(ADMIN_KEY))
            .await
    }

    /// GETs a web page in `cookie`'s session, without following redirects.
    pub async fn page_as(&self, cookie: &str, path: &str) -> Reply {
        let mut request = page_client().get(self.url(path));
        if !cookie.is_empty() {
            request = request.header("cookie", cookie);
        }
        Reply::read(request.send().await.expect("GET page")).await
    }

    /// Posts a urlencoded form in `cookie`'s session, without following the redirect that answers it.
    pub async fn post_page_as(&self, cookie: &str, path: &str, body: &str) -> Reply {
        let mut request = page_client()
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if !cookie.is_empty() {
            request = request.header("cookie", cookie);
        }
        Reply::read(request.send().await.expect("POST form")).await
    }

    /// GETs a web page signed in with the test admin key.
    pub async fn page(&self, path: &str) -> Reply {
        let cookie = self.admin_session().await.to_owned();
        self.page_as(&cookie, path).await
    }

    /// Posts a web form signed in with the test admin key.
    pub async fn post_page(&self, path: &str, body: &str) -> Reply {
        let cookie = self.admin_session().await.to_owned();
        self.post_page_as(&cookie, path, body).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        Reply::read(self.client.get(self.url(path)).send().await.expect("GET")).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        Reply::read(
            self.client
                .post(self.url(path))
                .json(&body)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    pub async fn post_with_key(&self, path: &str, key: &str, body: Value) -> Reply {
        let request = self
            .client
            .post(self.url(path))
            .header("Idempotency-Key", key)
            .json(&body);
        Reply::read(request.send().await.expect("POST")).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut request = self.client.post(self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        Reply::read(request.send().await.expect("POST")).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        Reply::read(
            self.client
                .delete(self.url(path))
                .send()
                .await
                .expect("DELETE"),
        )
        .await
    }

    /// Creates a wallet and returns its id.
    pub async fn create_wallet(&self, owner: &str, currency: &str, initial: &str) -> String {
        let reply = self
            .post(
                "/wallet/",
                json!({"owner": owner, "currency": currency, "initial_balance": initial}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["id"].as_str().expect("id").to_owned()
    }

    pub async fn balance(&self, id: &str) -> String {
        let reply = self.get(&format!("/wallet/{id}")).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["balance"].as_str().expect("balance").to_owned()
    }

    pub async fn history(&self, id: &str) -> Vec<Value> {
        let reply = self
            .get(&format!("/wallet/{id}/transactions?limit=1000"))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body.as_array().expect("array").clone()
    }

    /// Every wallet's balance and history, to prove that a refused request changed nothing.
    pub async fn snapshot(&self) -> Value {
        let wallets = self.get("/wallet/?limit=1000").await.body;
        let mut histories = Vec::new();
        for wallet in wallets.as_array().expect("array") {
            let id = wallet["id"].as_str().expect("id");
            histories.push(json!(self.history(id).await));
        }
        json!({"wallets": wallets, "histories": histories})
    }

    /// Runs one SQL statement with one text parameter straight on the test database (to set up or break things).
    pub async fn execute(&self, statement: &str, parameter: &str) {
        let mut conn = self.raw_connection().await;
        sqlx::query(statement)
            .bind(parameter)
            .execute(&mut conn)
            .await
            .expect("statement");
    }

    /// Rows of two text columns for a query with one integer parameter, straight from the test database.
    pub async fn text_pairs(&self, query: &str, parameter: i64) -> Vec<(String, String)> {
        let mut conn = self.raw_connection().await;
        sqlx::query_as(query)
            .bind(parameter)
            .fetch_all(&mut conn)
            .await
            .expect("query")
    }

    async fn raw_connection(&self) -> sqlx::AnyConnection {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        sqlx::AnyConnection::connect(&self.database.url)
            .await
            .expect("connect")
    }

    pub async fn audit_findings(&self) -> usize {
        self.store.audit().await.expect("audit").len()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// A response read whole: status, headers and the body as JSON (or `Value::Null`).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem-JSON answer with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "expected {status} {code}, got {}",
            self.text
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.text
        );
        assert_eq!(self.body["code"], code, "{}", self.text);
        assert_eq!(self.body["status"], status);
        assert_eq!(self.body["type"], "about:blank");
        assert!(self.body["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(self.body["detail"].is_string());
    }
}

/// Declares each listed `async fn name(backend: Backend)` test once per backend:
/// `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if $crate::helpers::postgres_admin_url().is_none() {
                        return;
                    }
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// `on_both_backends!`, and each test once more on SQLite with `--auth off` as `auth_off::name`: the original
/// open contract keeps holding.
#[macro_export]
macro_rules! on_both_backends_and_auth_off {
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!($($name),*);
        mod auth_off {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    $crate::helpers::AUTH_OFF
                        .scope(true, super::$name($crate::helpers::Backend::Sqlite))
                        .await;
                }
            )*
        }
    };
}

/// The real `revwallet` binary running as a child process (for crash, signal and log tests).
pub struct Process {
    pub child: std::process::Child,
    pub address: SocketAddr,
    pub stdout: std::path::PathBuf,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Process {
    pub async fn start(database_url: &str, extra_env: &[(&str, &str)]) -> Self {
        Self::spawn(database_url, extra_env, &[]).await
    }

    pub async fn start_with_args(database_url: &str, args: &[&str]) -> Self {
        Self::spawn(database_url, &[], args).await
    }

    async fn spawn(database_url: &str, extra_env: &[(&str, &str)], args: &[&str]) -> Self {
        let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let stdout =
            std::env::temp_dir().join(format!("revwallet-{}.log", uuid::Uuid::new_v4().simple()));
        let log = std::fs::File::create(&stdout).expect("log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_revwallet"))
            .arg("serve")
            .args(args)
            .env("DATABASE_URL", database_url)
            .env("REVWALLET_LISTEN", address.to_string())
            .env("REVWALLET_BOOTSTRAP_ADMIN_KEY", ADMIN_KEY)
            .envs(extra_env.iter().copied())
            .stdout(log)
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start revwallet");
        let process = Self {
            child,
            address,
            stdout,
        };
        process.wait_until_healthy().await;
        process
    }

    async fn wait_until_healthy(&self) {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(response) = client
                .get(format!("http://{}/healthz", self.address))
                .send()
                .await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("revwallet did not become healthy at {}", self.address);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Opens a wallet over HTTP and returns its id.
    pub async fn create_wallet(&self, owner: &str) -> String {
        let created: Value = admin_client()
            .post(self.url("/wallet/"))
            .json(&json!({"owner": owner, "currency": "EUR"}))
            .send()
            .await
            .expect("create")
            .json()
            .await
            .expect("json");
        created["id"].as_str().expect("id").to_owned()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stdout);
    }
}

/// Runs `revwallet audit` on a database and returns its exit success and output.
pub fn run_audit(database_url: &str) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_revwallet"))
        .arg("audit")
        .env("DATABASE_URL", database_url)
        .output()
        .expect("run revwallet audit");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// Waits until no other session is connected to a PostgreSQL database: a closed connection's server process
/// leaves a moment after the client does, and finishes a COMMIT in flight first. Nothing to wait for on SQLite.
pub async fn wait_until_unused(backend: Backend, database_url: &str) {
    if backend == Backend::Sqlite {
        return;
    }
    let mut conn = sqlx::PgConnection::connect(database_url)
        .await
        .expect("connect");
    for _ in 0..200 {
        let others: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity \
             where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("sessions");
        if others == 0 {
            conn.close().await.ok();
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("other sessions stay connected to {database_url}");
}
