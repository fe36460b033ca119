//! Test harness, zero2prod style: a fresh, uniquely named PostgreSQL database per test (dropped
//! afterwards, also when the test panics), the demo loaded the way the binary loads it, the app
//! served on port 0 over either store, and a small HTTP client. `TEST_LOG=1` turns logging on
//! (filtered by `RUST_LOG`, default `info`); without it tests stay quiet.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use approvals::app::{self, App};
use approvals::config::LogFormat;
use approvals::demo::{self, DemoData, demo_data};
use approvals::domain::dispatcher::DispatchConfig;
use approvals::domain::ports::{Callbacks, RoleResolver, WorkflowRepository};
use approvals::domain::webhooks::model::RetrySchedule;
use approvals::domain::webhooks::ports::WebhookStore;
use approvals::inbound::http::ConnectionLimits;
use approvals::outbound::callbacks::RecordingCallbacks;
use approvals::outbound::memory::MemoryStore;
use approvals::outbound::postgres::{self, PgConfig, PgStore};
use approvals::outbound::webhooks::WebhookSettings;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Installs the log subscriber once per test binary, and only when `TEST_LOG` is set.
static LOGGING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var_os("TEST_LOG").is_some() {
        let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
        approvals::telemetry::init(&filter, LogFormat::Text);
    }
});

/// Switches logging on if `TEST_LOG` asks for it; every entry point of the harness calls it.
pub fn init_logging() {
    LazyLock::force(&LOGGING);
}

/// Where tests create their databases: `TEST_DATABASE_URL` (any database on the server, used
/// only to create and drop others), else the local server.
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The URL of database `name` on the same server as `admin`.
fn url_for(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin, None),
    };
    let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    name: String,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    /// Creates an empty database with the schema applied.
    pub async fn create() -> TestDb {
        init_logging();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "approvals_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            nanos
        );
        let mut admin = AsyncPgConnection::establish(&admin_url()).await.expect(
            "PostgreSQL must be reachable at TEST_DATABASE_URL (scripts/test.sh provides one)",
        );
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let db = TestDb {
            url: url_for(&admin_url(), &name),
            name,
        };
        postgres::run_migrations(&db.url)
            .await
            .expect("migrations apply");
        db
    }

    /// A store on this database.
    pub async fn store(&self) -> Arc<PgStore> {
        let config = PgConfig {
            pool_size: 40,
            ..PgConfig::default()
        };
        Arc::new(PgStore::connect(&self.url, &config).await.unwrap())
    }

    /// A raw connection, for what the API can't do (holding locks, bypassing the adapter).
    pub async fn connection(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside any async context we can rely on: use a private runtime on a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut admin) = AsyncPgConnection::establish(&admin_url()).await {
                    let _ =
                        diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .execute(&mut admin)
                            .await;
                }
            });
        })
        .join();
    }
}

/// Dispatcher settings that make tests fast: quick polls and retries.
pub fn fast_dispatch() -> DispatchConfig {
    DispatchConfig {
        poll_interval: Duration::from_millis(50),
        first_retry: Duration::from_millis(50),
        max_retry: Duration::from_millis(200),
        ..DispatchConfig::default()
    }
}

/// Webhooks as the tests send them: to the receivers they start on 127.0.0.1, with a short
/// time-out and schedule.
pub fn test_webhooks() -> WebhookSettings {
    WebhookSettings {
        allow_private_networks: true,
        timeout: Duration::from_secs(2),
        schedule: RetrySchedule::parse("100ms,100ms,100ms").unwrap(),
        poll_interval: Duration::from_millis(50),
    }
}

/// The app served on a free port, with a recording callback sink.
pub struct TestApp {
    pub base: String,
    pub callbacks: Arc<RecordingCallbacks>,
    pub client: reqwest::Client,
    pub app: Option<App>,
    /// Kept so the database outlives the app; `None` for the in-memory store.
    pub db: Option<TestDb>,
}

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// Serves `store` (already loaded) on a free port.
pub async fn serve<S>(store: Arc<S>, db: Option<TestDb>) -> TestApp
where
    S: WorkflowRepository + RoleResolver + WebhookStore,
{
    serve_within(store, db, ConnectionLimits::default()).await
}

/// Serves `store` (already loaded) on a free port, with these connection limits.
pub async fn serve_within<S>(store: Arc<S>, db: Option<TestDb>, limits: ConnectionLimits) -> TestApp
where
    S: WorkflowRepository + RoleResolver + WebhookStore,
{
    init_logging();
    let callbacks = Arc::new(RecordingCallbacks::new());
    let app = app::start(
        store,
        Arc::clone(&callbacks),
        listener().await,
        fast_dispatch(),
        limits,
        test_webhooks(),
    );
    TestApp {
        base: format!("http://{}", app.addr),
        callbacks,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        app: Some(app),
        db,
    }
}

/// Serves `store` (already loaded) on a free port, delivering events to `callbacks` instead of
/// a recording sink (the returned app's `callbacks` then stays empty).
pub async fn serve_to<S, K>(store: Arc<S>, db: Option<TestDb>, callbacks: Arc<K>) -> TestApp
where
    S: WorkflowRepository + RoleResolver + WebhookStore,
    K: Callbacks,
{
    init_logging();
    let app = app::start(
        store,
        callbacks,
        listener().await,
        fast_dispatch(),
        ConnectionLimits::default(),
        test_webhooks(),
    );
    TestApp {
        base: format!("http://{}", app.addr),
        callbacks: Arc::new(RecordingCallbacks::new()),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        app: Some(app),
        db,
    }
}

/// Loads the demo into an empty store through the use cases, as the binary does: users, then
/// templates (ids 1 to 3), then the sample instance (id 1, steps 1 and 2).
pub async fn load_demo<S>(store: &Arc<S>) -> DemoData
where
    S: WorkflowRepository + RoleResolver,
{
    let demo = demo_data();
    let service = app::service(Arc::clone(store), Arc::new(Notify::new()));
    let fresh = demo::load(&service, &demo).await.expect("demo data loads");
    assert!(fresh, "the store starts empty");
    demo
}

/// Loads the demo into an empty PostgreSQL store, property records included (after the users:
/// commissions refer to their agent).
pub async fn load_pg_demo(store: &Arc<PgStore>) -> DemoData {
    let demo = load_demo(store).await;
    store
        .load_property_records(&demo.properties)
        .await
        .expect("property records load");
    demo
}

/// The in-memory store with the demo data, served.
pub async fn spawn_memory() -> TestApp {
    init_logging();
    let store = Arc::new(MemoryStore::new());
    load_demo(&store).await;
    serve(store, None).await
}

/// A fresh PostgreSQL database with the demo data, served.
pub async fn spawn_pg() -> TestApp {
    let db = TestDb::create().await;
    let store = db.store().await;
    load_pg_demo(&store).await;
    serve(store, Some(db)).await
}

/// A response: status and JSON body (`Value::Null` when the body is not JSON).
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<none>")
    }
}

impl TestApp {
    fn url(&self, path: &str) -> String {
        if path.starts_with('/') {
            format!("{}{}", self.base, path)
        } else {
            format!("{}/api/v1/workflow/{}", self.base, path)
        }
    }

    /// Sends a request built by the caller.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("request completes");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Reply {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
        }
    }

    /// GET `path` (relative to the API root unless it starts with '/').
    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path))).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.client.post(self.url(path)).json(&body))
            .await
    }

    /// Any method with a raw body and optional content type.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method.parse().unwrap(), self.url(path))
            .body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        self.send(request).await
    }

    /// Triggers `event` for an entity.
    pub async fn trigger(&self, event: &str, entity_type: &str, entity_id: i64, by: i64) -> Reply {
        self.post(
            "instances",
            json!({"event": event, "entity_type": entity_type, "entity_id": entity_id, "initiated_by": by}),
        )
        .await
    }

    /// Approves a step.
    pub async fn approve(&self, step: i64, by: i64) -> Reply {
        self.post(
            &format!("steps/{step}/approve"),
            json!({"acted_by_user_id": by}),
        )
        .await
    }

    /// Rejects a step with a comment.
    pub async fn reject(&self, step: i64, by: i64, comment: &str) -> Reply {
        self.post(
            &format!("steps/{step}/reject"),
            json!({"acted_by_user_id": by, "comment": comment}),
        )
        .await
    }

    /// Stops the server and dispatcher, keeping the database.
    pub async fn stop(&mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }
}

/// The id of step `order` (1-based) of an instance body.
pub fn step_id(instance: &Value, order: usize) -> i64 {
    instance["steps"][order - 1]["id"].as_i64().unwrap()
}

/// The audit actions of an instance body, in order.
pub fn actions(instance: &Value) -> Vec<String> {
    instance["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls `check` until it holds or `timeout` passes; returns whether it held.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
