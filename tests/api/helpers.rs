//! Test harness: starts the whole app on 127.0.0.1:0 with its own database (a fresh SQLite file, or a fresh
//! PostgreSQL database when LATCHKEY_TEST_POSTGRES_URL is set) and talks HTTP to it.
use latchkey::config::Config;
use latchkey::startup;
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub db: app::state::Db,
    pub config: Config,
    /// The running app's state, for calling background jobs directly.
    pub state: app::state::AppState,
    /// `http://addr` of the separate `/metrics` listener when `--metrics-bind` is set.
    pub metrics_base: Option<String>,
    _dir: tempfile::TempDir,
}

pub fn postgres_url() -> Option<String> {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL").ok().filter(|s| !s.is_empty())
}

pub fn client() -> Client {
    Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A config for a new, empty database of `backend`, or `None` when that backend is not configured.
pub async fn config(backend: Backend) -> Option<(Config, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display()),
        Backend::Postgres => {
            let base = postgres_url()?;
            let name = format!("lk_test_{}", ulid::Ulid::new().to_string().to_lowercase());
            let mut conn = sqlx::PgConnection::connect(&base).await.expect("connect to LATCHKEY_TEST_POSTGRES_URL");
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
            let mut url = url::Url::parse(&base).unwrap();
            url.set_path(&name);
            url.to_string()
        }
    };
    let config = Config {
        bind: "127.0.0.1:0".into(),
        database_url,
        public_url: None,
        key_file: dir.path().join("latchkey.key"),
        allow_private_idp: false,
        allow_private_webhooks: false,
        dns_server: None,
        domain_check_unit_ms: 60_000,
        site_root: "target/site".into(),
        trusted_proxies: vec![],
        sso_rate_limit: 60,
        audit_retention_days: 365,
        metrics_bind: None,
        webhook_retry_unit_ms: 20,
        google_issuer: "https://accounts.google.com".into(),
        log_format: "text".into(),
        command: None,
    };
    Some((config, dir))
}

pub async fn spawn_with(config: Config, dir: tempfile::TempDir) -> TestApp {
    let app = startup::build(config.clone()).await.expect("app builds");
    let base = format!("http://{}", app.addr);
    let db = app.state.db.clone();
    let state = app.state.clone();
    let metrics_base = app.metrics.as_ref().map(|(_, a)| format!("http://{a}"));
    tokio::spawn(startup::run(app));
    TestApp { base, client: client(), db, config, state, metrics_base, _dir: dir }
}

/// Starts the app on `backend`; `None` (test skipped, with a note) when PostgreSQL is not configured.
pub async fn spawn(backend: Backend) -> Option<TestApp> {
    match config(backend).await {
        Some((config, dir)) => Some(spawn_with(config, dir).await),
        None => {
            eprintln!("skipped on PostgreSQL: LATCHKEY_TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// Like `spawn`, with `--allow-private-idp` so the app may talk to IdPs the tests run on 127.0.0.1.
pub async fn spawn_sso(backend: Backend) -> Option<TestApp> {
    spawn_adjusted(backend, |c| c.allow_private_idp = true).await
}

/// An app whose webhooks may go to the tests' receivers on 127.0.0.1 (`--allow-private-webhooks`).
pub async fn spawn_webhooks(backend: Backend) -> Option<TestApp> {
    spawn_adjusted(backend, |c| c.allow_private_webhooks = true).await
}

/// Like `spawn_sso`, with domain checks against `dns` (`ip:port`) on a schedule unit of `unit_ms`.
pub async fn spawn_dns(backend: Backend, dns: &str, unit_ms: i64) -> Option<TestApp> {
    spawn_adjusted(backend, |c| {
        c.allow_private_idp = true;
        c.dns_server = Some(dns.to_string());
        c.domain_check_unit_ms = unit_ms;
    })
    .await
}

pub async fn spawn_adjusted(backend: Backend, adjust: impl FnOnce(&mut Config)) -> Option<TestApp> {
    let Some((mut config, dir)) = config(backend).await else {
        eprintln!("skipped on PostgreSQL: LATCHKEY_TEST_POSTGRES_URL is not set");
        return None;
    };
    adjust(&mut config);
    Some(spawn_with(config, dir).await)
}

/// Runs a test body on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both {
    ($name:ident, $body:expr) => {
        $crate::both!(@with spawn, $name, $body);
    };
    (sso $name:ident, $body:expr) => {
        $crate::both!(@with spawn_sso, $name, $body);
    };
    (webhooks $name:ident, $body:expr) => {
        $crate::both!(@with spawn_webhooks, $name, $body);
    };
    (@with $spawn:ident, $name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn sqlite() {
                if let Some(app) = $crate::helpers::$spawn($crate::helpers::Backend::Sqlite).await {
                    ($body)(app).await;
                }
            }
            #[tokio::test]
            async fn postgres() {
                if let Some(app) = $crate::helpers::$spawn($crate::helpers::Backend::Postgres).await {
                    ($body)(app).await;
                }
            }
        }
    };
}

pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    pub async fn from(r: Response) -> Self {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
        let a = Answer { status, body, headers };
        a.assert_envelope();
        a
    }
    /// Every answer has the envelope's five fields, consistent with the HTTP status.
    fn assert_envelope(&self) {
        let b = &self.body;
        assert_eq!(b["status"], self.status.as_u16(), "envelope status: {b}");
        assert_eq!(b["success"], self.status.is_success(), "envelope success: {b}");
        assert!(b["code"].is_string() && b["message"].is_string(), "envelope code/message: {b}");
        assert!(b.get("data").is_some(), "envelope data: {b}");
        if self.status.is_success() {
            assert_eq!(b["code"], "OK");
        }
    }
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or_default()
    }
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }
    pub fn expect(self, status: u16, code: &str) -> Self {
        assert_eq!((self.status.as_u16(), self.code()), (status, code), "unexpected answer: {}", self.body);
        self
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
    pub async fn get(&self, path: &str) -> Answer {
        Answer::from(self.client.get(self.url(path)).send().await.unwrap()).await
    }
    pub async fn post(&self, path: &str, body: Value) -> Answer {
        Answer::from(self.client.post(self.url(path)).json(&body).send().await.unwrap()).await
    }
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        Answer::from(req.send().await.unwrap()).await
    }
    /// A new browser (its own cookie jar) against the same server.
    pub fn browser(&self) -> Client {
        client()
    }
    pub async fn as_client(&self, c: &Client, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = c.request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        Answer::from(req.send().await.unwrap()).await
    }

    /// Signs up a user with this app's own client; returns its id.
    pub async fn sign_up(&self, email: &str) -> String {
        let a = self
            .post("/api/auth/signup", json!({"email": email, "password": "correct horse battery", "name": "Test User"}))
            .await
            .expect(201, "OK");
        a.data()["id"].as_str().unwrap().to_string()
    }
    /// Signs up a user in a separate browser and returns that browser.
    pub async fn other_user(&self, email: &str) -> (Client, String) {
        let c = self.browser();
        let a = self
            .as_client(&c, reqwest::Method::POST, "/api/auth/signup", Some(json!({"email": email, "password": "correct horse battery", "name": "Other"})))
            .await
            .expect(201, "OK");
        (c, a.data()["id"].as_str().unwrap().to_string())
    }
    pub async fn create_org(&self, name: &str, slug: &str) -> String {
        let a = self.post("/api/user/organizations", json!({"name": name, "slug": slug})).await.expect(201, "OK");
        a.data()["id"].as_str().unwrap().to_string()
    }
    /// Arranges a membership directly through the repository (invitations arrive with later features).
    pub async fn add_member(&self, org_id: &str, user_id: &str, role: &str) {
        app::repo::orgs::insert_membership(&self.db, org_id, user_id, role, "active", app::service::now_ms()).await.unwrap();
    }
    /// Arranges `domain` as verified by `org_id` directly in the database, for tests about what a verified
    /// domain allows (the DNS proof itself is tested against a real BIND in `domains.rs`).
    pub async fn arrange_verified_domain(&self, org_id: &str, domain: &str) {
        let now = app::service::now_ms();
        sqlx::query(
            "INSERT INTO domains (id, org_id, name, status, token, auto_join, attempts, next_check_at, pending_since, verified_at, created_at, updated_at) \
             VALUES ($1, $2, $3, 'verified', 'arranged', 'off', 0, $4, $5, $5, $5, $5)",
        )
        .bind(ulid::Ulid::new().to_string())
        .bind(org_id)
        .bind(domain)
        .bind(now + 86_400_000)
        .bind(now)
        .execute(&self.db)
        .await
        .unwrap();
    }
    /// The role of the member with `email` in `org_id` (`None`: not a member).
    pub async fn role_of(&self, org_id: &str, email: &str) -> Option<String> {
        sqlx::query_scalar("SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND u.email = $2")
            .bind(org_id)
            .bind(email)
            .fetch_optional(&self.db)
            .await
            .unwrap()
    }
    pub async fn audit_actions(&self, org_id: &str) -> Vec<String> {
        app::repo::audit::list_for_org(&self.db, org_id, 100).await.unwrap().into_iter().map(|e| e.action).collect()
    }
}
