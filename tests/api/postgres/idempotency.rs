//! PostgreSQL idempotency keys under faults: a retry whose key is held by an attempt still in
//! flight waits for it to settle (then replays its answer, or runs if it rolled back); and a
//! retry after the server died between its commit and its answer gets the kept answer.

use std::process::Stdio;
use std::time::Duration;

use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

use super::count;
use crate::helpers::{TestDb, eventually, load_pg_demo, spawn_pg};

/// The digest the HTTP adapter keeps for a request (see the README: method, path, and the body
/// with its keys sorted).
fn digest(path: &str, body: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("POST {path}\n{body}").as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn send_keyed(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: &Value,
) -> reqwest::Result<(u16, bool, Value)> {
    let response = client
        .post(url)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    Ok((
        status,
        replayed,
        response.json().await.unwrap_or(Value::Null),
    ))
}

/// Another connection holds the key as an attempt in flight would (claimed, uncommitted); the
/// retry must wait for it: when it commits, the retry gets its answer; when it rolls back, the
/// retry runs itself. Without the claim, the retry would run at once in both cases.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_waits_for_the_attempt_holding_its_key() {
    let app = spawn_pg().await;
    let db = app.db.as_ref().unwrap();
    let path = "/api/v1/workflow/steps/1/approve";
    let url = format!("{}{path}", app.base);
    let body = json!({"acted_by_user_id": 1});

    for (key, settle) in [("committed", "COMMIT"), ("rolled-back", "ROLLBACK")] {
        let mut holder = db.connection().await;
        holder
            .batch_execute(&format!(
                "BEGIN; INSERT INTO idempotency_keys (key, request, status, body, created_at) \
                 VALUES ('{key}', '{}', 299, '{{\"first\":\"attempt\"}}', now())",
                digest(path, &body)
            ))
            .await
            .unwrap();
        let retry = {
            let (client, url, body, key) = (app.client.clone(), url.clone(), body.clone(), key);
            tokio::spawn(async move { send_keyed(&client, &url, key, &body).await.unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !retry.is_finished(),
            "{key}: the retry waits for the attempt"
        );
        holder.batch_execute(settle).await.unwrap();
        let (status, replayed, answer) = retry.await.unwrap();
        if settle == "COMMIT" {
            assert_eq!((status, replayed), (299, true), "{answer}");
            assert_eq!(answer, json!({"first": "attempt"}));
        } else {
            assert_eq!((status, replayed), (200, false), "{answer}");
            assert_eq!(answer["steps"][0]["status"], "approved");
        }
    }
    let mut conn = db.connection().await;
    let approvals = count(
        &mut conn,
        "SELECT count(*) AS n FROM workflow_audit_log WHERE action = 'step_approved'",
    )
    .await;
    assert_eq!(approvals, 1, "only the retry after the rollback approved");
}

/// The release-shaped binary, serving `db` on `port`.
fn server(db: &TestDb, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_approvals"))
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the server binary starts")
}

async fn until_up(client: &reqwest::Client, base: &str) {
    let up = eventually(Duration::from_secs(20), || async {
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    })
    .await;
    assert!(up, "the server answers /healthz");
}

/// A proxy for one connection that kills `server` with SIGKILL as soon as the server starts
/// answering, and passes nothing back: the server has committed (it answers only after), the
/// client never learns it.
async fn killing_proxy(mut server: Child, upstream: u16) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut client, _) = listener.accept().await.unwrap();
        let mut upstream = TcpStream::connect(("127.0.0.1", upstream)).await.unwrap();
        let mut buffer = vec![0_u8; 64 * 1024];
        let n = client.read(&mut buffer).await.unwrap();
        upstream.write_all(&buffer[..n]).await.unwrap();
        // The request fits one read here (a small JSON body); wait for the answer's first byte.
        let mut first = [0_u8; 1];
        upstream.read_exact(&mut first).await.unwrap();
        server.kill().await.unwrap();
        drop(client);
    });
    (port, task)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_after_the_server_died_between_commit_and_answer_gets_the_kept_answer() {
    let db = TestDb::create().await;
    load_pg_demo(&db.store().await).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let first = server(&db, port);
    until_up(&client, &base).await;

    let (proxy, proxying) = killing_proxy(first, port).await;
    let path = "/api/v1/workflow/steps/1/approve";
    let body = json!({"acted_by_user_id": 1, "comment": "fine"});
    let lost = send_keyed(
        &client,
        &format!("http://127.0.0.1:{proxy}{path}"),
        "k-1",
        &body,
    )
    .await;
    assert!(lost.is_err(), "the client got no answer: {lost:?}");
    proxying.await.unwrap();

    let mut conn = db.connection().await;
    let decided = "SELECT count(*) AS n FROM workflow_audit_log WHERE action = 'step_approved'";
    assert_eq!(count(&mut conn, decided).await, 1, "the approval committed");

    let _second = server(&db, port);
    until_up(&client, &base).await;
    let (status, replayed, answer) = send_keyed(&client, &format!("{base}{path}"), "k-1", &body)
        .await
        .unwrap();
    assert_eq!((status, replayed), (200, true), "{answer}");
    assert_eq!(answer["steps"][0]["status"], "approved");
    assert_eq!(answer["steps"][0]["comment"], "fine");
    assert_eq!(
        count(&mut conn, decided).await,
        1,
        "the retry changed nothing"
    );
}
