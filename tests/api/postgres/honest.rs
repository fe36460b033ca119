//! Honest answers under faults: a 503 `unavailable` promises that nothing was applied, so it is
//! given only while nothing that could commit has been sent; once the `COMMIT` (or a statement
//! that commits by itself) is on its way, a deadline that passes is 503 `outcome_unknown`, and a
//! retry with the same key settles it. Checked through a proxy between the service and
//! PostgreSQL that holds back one chosen message for longer than the service's deadline.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use approvals::outbound::postgres::{PgConfig, PgStore};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::count;
use crate::helpers::{TestDb, load_pg_demo, serve};

/// How long the service waits for a write in these tests.
const DEADLINE: Duration = Duration::from_secs(2);
/// How long the proxy holds the chosen message back: past the deadline.
const HOLD: Duration = Duration::from_secs(4);

/// Which message the proxy holds back: on a connection that has sent a message containing
/// `after` (any connection when empty), the first later message containing `target`.
#[derive(Clone, Default)]
struct Rule {
    after: Vec<u8>,
    target: Vec<u8>,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// A TCP proxy to PostgreSQL that holds back the message its rule picks (once), and the rest
/// of that connection's traffic behind it, as a slow network would.
async fn delaying_proxy(upstream: String, rule: Arc<Mutex<Option<Rule>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let upstream = upstream.clone();
            let rule = Arc::clone(&rule);
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                });
                let mut seen_after = false;
                let mut buffer = vec![0_u8; 64 * 1024];
                loop {
                    let n = match client_read.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let chunk = &buffer[..n];
                    let hold = {
                        let mut guard = rule.lock().unwrap();
                        match guard.as_ref() {
                            Some(r)
                                if (seen_after || r.after.is_empty())
                                    && contains(chunk, &r.target) =>
                            {
                                *guard = None;
                                true
                            }
                            Some(r) => {
                                seen_after |= !r.after.is_empty() && contains(chunk, &r.after);
                                false
                            }
                            None => false,
                        }
                    };
                    if hold {
                        tokio::time::sleep(HOLD).await;
                    }
                    if server_write.write_all(chunk).await.is_err() {
                        break;
                    }
                }
                // The client is gone: what it sent has been passed on; close our side too.
                let _ = server_write.shutdown().await;
            });
        }
    });
    port
}

/// `url` with its host and port replaced by the proxy's.
fn through(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, hostpath) = rest.rsplit_once('@').map_or(("", rest), |(u, h)| (u, h));
    let (hostport, path) = hostpath.split_once('/').unwrap_or((hostpath, ""));
    let upstream = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    let at = if userinfo.is_empty() { "" } else { "@" };
    (
        format!("{scheme}://{userinfo}{at}127.0.0.1:{port}/{path}"),
        upstream,
    )
}

struct Setup {
    db: TestDb,
    rule: Arc<Mutex<Option<Rule>>>,
    app: crate::helpers::TestApp,
}

/// The demo data loaded directly, then the service on a short deadline through the proxy.
async fn setup() -> Setup {
    let db = TestDb::create().await;
    load_pg_demo(&db.store().await).await;
    let rule = Arc::new(Mutex::new(None));
    let (_, upstream) = through(&db.url, 0);
    let port = delaying_proxy(upstream, Arc::clone(&rule)).await;
    let (proxied, _) = through(&db.url, port);
    let config = PgConfig {
        operation_timeout: DEADLINE,
        ..PgConfig::default()
    };
    let store = Arc::new(PgStore::connect(&proxied, &config).await.unwrap());
    let app = serve(store, None).await;
    Setup { db, rule, app }
}

impl Setup {
    fn hold(&self, after: &str, target: &str) {
        *self.rule.lock().unwrap() = Some(Rule {
            after: after.as_bytes().to_vec(),
            target: target.as_bytes().to_vec(),
        });
    }

    async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> (u16, bool, Value) {
        let mut request = self
            .app
            .client
            .post(format!("{}{path}", self.app.base))
            .json(body);
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v == "true");
        (
            status,
            replayed,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn count(&self, sql: &str) -> i64 {
        count(&mut self.db.connection().await, sql).await
    }
}

const APPROVE_1: &str = "/api/v1/workflow/steps/1/approve";
const STEP_1_APPROVED: &str =
    "SELECT count(*) AS n FROM workflow_instance_steps WHERE id = 1 AND status = 'approved'";

/// The decision's `COMMIT` is held back past the deadline: the answer can't be "nothing was
/// applied", because the commit is on its way; it commits, and the retry with the key gets the
/// kept answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_commit_held_back_past_the_deadline_is_an_unknown_outcome_settled_by_the_key() {
    let s = setup().await;
    s.hold("held-commit-1", "COMMIT");
    let body = json!({"acted_by_user_id": 1});
    let (status, _, answer) = s.post(APPROVE_1, Some("held-commit-1"), &body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (503, Some("outcome_unknown")),
        "{answer}"
    );

    tokio::time::sleep(HOLD).await;
    assert_eq!(
        s.count(STEP_1_APPROVED).await,
        1,
        "the held COMMIT went through"
    );
    let (status, replayed, answer) = s.post(APPROVE_1, Some("held-commit-1"), &body).await;
    assert_eq!((status, replayed), (200, true), "{answer}");
    assert_eq!(answer["steps"][0]["status"], "approved");
    let approvals = "SELECT count(*) AS n FROM workflow_audit_log WHERE step_id = 1 AND action = 'step_approved'";
    assert_eq!(s.count(approvals).await, 1, "applied once");
}

/// A trigger without a key is one statement that commits by itself: held back past the
/// deadline, its outcome is unknown, and indeed the instance appears afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_trigger_insert_held_back_past_the_deadline_is_an_unknown_outcome() {
    let s = setup().await;
    s.hold("", "held-trigger-insert");
    let body = json!({
        "event": "booking.cancellation_requested", "entity_type": "booking", "entity_id": 4,
        "initiated_by": 3, "context": {"marker": "held-trigger-insert"}
    });
    let (status, _, answer) = s.post("/api/v1/workflow/instances", None, &body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (503, Some("outcome_unknown")),
        "{answer}"
    );

    tokio::time::sleep(HOLD).await;
    let created = "SELECT count(*) AS n FROM workflow_instances WHERE entity_type = 'booking' AND entity_id = 4";
    assert_eq!(s.count(created).await, 1, "the held insert went through");
}

/// A message held back before anything could commit (here the key's claim): 503 `unavailable`
/// is then the truth. The abandoned transaction's connection is discarded, so when the held
/// message does arrive, nothing commits; the retry with the key runs afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn work_abandoned_before_its_commit_is_unavailable_and_never_applied() {
    let s = setup().await;
    s.hold("", "held-claim-1");
    let body = json!({"acted_by_user_id": 1});
    let (status, _, answer) = s.post(APPROVE_1, Some("held-claim-1"), &body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (503, Some("unavailable")),
        "{answer}"
    );

    tokio::time::sleep(HOLD + Duration::from_secs(1)).await;
    assert_eq!(s.count(STEP_1_APPROVED).await, 0, "nothing was applied");
    let keys = "SELECT count(*) AS n FROM idempotency_keys";
    assert_eq!(s.count(keys).await, 0, "the claim was rolled back");
    let (status, replayed, answer) = s.post(APPROVE_1, Some("held-claim-1"), &body).await;
    assert_eq!((status, replayed), (200, false), "{answer}");
}
