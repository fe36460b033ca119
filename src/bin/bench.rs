//! `approvals-bench`: the load generator and report behind `scripts/bench.sh` (built with the
//! `bench` feature). Given an empty, migrated and seeded database and the release server
//! binary, it preloads data with bulk SQL, starts the server, drives it over HTTP with
//! keep-alive clients, runs pgbench on the same SQL in the same run as the baseline, and prints
//! one table. It is a harness, not part of the service: it talks to the database directly.

use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use hdrhistogram::Histogram;
use serde_json::json;

/// Run sizes.
struct Plan {
    seconds: f64,
    clients: Vec<usize>,
    /// Instances preloaded per decision range (service, pgbench same SQL, pgbench ceiling).
    decision_range: i64,
    inbox_instances: i64,
    inbox_requests: usize,
    contention_rounds: usize,
}

impl Plan {
    fn full() -> Self {
        Self {
            seconds: 8.0,
            clients: vec![1, 8, 32],
            decision_range: 100_000,
            inbox_instances: 1_000_000,
            inbox_requests: 5_000,
            contention_rounds: 10,
        }
    }

    fn quick() -> Self {
        Self {
            seconds: 0.5,
            clients: vec![1, 8],
            decision_range: 3_000,
            inbox_instances: 10_000,
            inbox_requests: 200,
            contention_rounds: 2,
        }
    }
}

struct Args {
    database_url: String,
    server_bin: String,
    sql_dir: String,
    quick: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut database_url = None;
    let mut server_bin = "target/release/approvals".to_owned();
    let mut sql_dir = "scripts/bench".to_owned();
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--database-url" => database_url = args.next(),
            "--server" => server_bin = args.next().ok_or("--server needs a path")?,
            "--sql-dir" => sql_dir = args.next().ok_or("--sql-dir needs a path")?,
            "--quick" => quick = true,
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(Args {
        database_url: database_url.ok_or("--database-url is required")?,
        server_bin,
        sql_dir,
        quick,
    })
}

#[derive(QueryableByName)]
struct One {
    #[diesel(sql_type = BigInt)]
    v: i64,
}

async fn scalar(conn: &mut AsyncPgConnection, sql: &str) -> Result<i64, String> {
    diesel::sql_query(sql)
        .get_result::<One>(conn)
        .await
        .map(|r| r.v)
        .map_err(|e| format!("{sql}: {e}"))
}

async fn exec(conn: &mut AsyncPgConnection, sql: &str) -> Result<(), String> {
    conn.batch_execute(sql)
        .await
        .map_err(|e| format!("{e}\n{sql}"))
}

/// Where the decision benchmark's instances are: three ranges of `range` instances, each step 1
/// of instance `first_instance + k` being step id `first_step + 3k`.
struct DecisionLayout {
    first_instance: i64,
    first_step: i64,
    range: i64,
}

async fn preload_decisions(
    conn: &mut AsyncPgConnection,
    range: i64,
) -> Result<DecisionLayout, String> {
    let total = range * 3;
    exec(
        conn,
        "INSERT INTO workflow_templates (id, name, event, entity_type, version, is_active)
         VALUES (100, 'Bench decisions', 'bench.decision', 'booking', 1, true);
         INSERT INTO workflow_template_steps (template_id, step_order, name, approver_user_id)
         VALUES (100, 1, 'First', 1), (100, 2, 'Second', 2), (100, 3, 'Third', 1);",
    )
    .await?;
    exec(
        conn,
        &format!(
            "INSERT INTO workflow_instances
                 (template_id, template_version, event, entity_type, entity_id, initiated_by,
                  status, created_at, updated_at)
             SELECT 100, 1, 'bench.decision', 'booking', g, 3, 'in_progress', now(), now()
             FROM generate_series(1, {total}) AS g ORDER BY g;
             INSERT INTO workflow_instance_steps
                 (instance_id, step_order, name, approver_user_id, eligible_user_ids, status,
                  activated_at)
             SELECT i.id, o, 'Step ' || o, CASE o WHEN 2 THEN 2 ELSE 1 END,
                    ARRAY[CASE o WHEN 2 THEN 2 ELSE 1 END]::bigint[],
                    CASE o WHEN 1 THEN 'awaiting_action' ELSE 'pending' END,
                    CASE o WHEN 1 THEN now() END
             FROM workflow_instances AS i CROSS JOIN generate_series(1, 3) AS o
             WHERE i.event = 'bench.decision'
             ORDER BY i.id, o;
             INSERT INTO workflow_audit_log (instance_id, step_id, action, actor_user_id, at)
             SELECT s.instance_id, CASE a WHEN 2 THEN s.id END,
                    (ARRAY['instance_created', 'step_activated'])[a], CASE a WHEN 1 THEN 3 END, now()
             FROM workflow_instance_steps AS s
             JOIN workflow_instances AS i ON i.id = s.instance_id AND i.event = 'bench.decision'
             CROSS JOIN generate_series(1, 2) AS a
             WHERE s.step_order = 1
             ORDER BY s.instance_id, a;
             ANALYZE;"
        ),
    )
    .await?;
    let first_instance = scalar(
        conn,
        "SELECT min(id) AS v FROM workflow_instances WHERE event = 'bench.decision'",
    )
    .await?;
    let first_step = scalar(
        conn,
        &format!(
            "SELECT min(id) AS v FROM workflow_instance_steps WHERE instance_id = {first_instance}"
        ),
    )
    .await?;
    let spread = scalar(
        conn,
        "SELECT (max(s.id) - min(s.id) + 1) - count(*) AS v FROM workflow_instance_steps s
         JOIN workflow_instances i ON i.id = s.instance_id WHERE i.event = 'bench.decision'",
    )
    .await?;
    if spread != 0 {
        return Err("preloaded step ids are not contiguous".to_owned());
    }
    // pgbench has no shared counter: the ceiling and trigger scripts draw distinct steps and
    // entities from these inside their one statement (an init-plan, evaluated once).
    exec(
        conn,
        "CREATE SEQUENCE bench_ceiling_seq; CREATE SEQUENCE bench_entity_seq START 2000000000;",
    )
    .await?;
    Ok(DecisionLayout {
        first_instance,
        first_step,
        range,
    })
}

async fn preload_inbox(conn: &mut AsyncPgConnection, instances: i64) -> Result<(), String> {
    // 1,000 users in 200 teams of 5; every instance has two team steps and one direct step.
    exec(
        conn,
        &format!(
            "INSERT INTO users (id, name) SELECT u, 'Inbox user ' || u FROM generate_series(10001, 11000) u;
             INSERT INTO roles (name) SELECT 'team_' || t FROM generate_series(0, 199) t;
             INSERT INTO user_roles (role, user_id)
                 SELECT 'team_' || ((u - 10001) / 5), u FROM generate_series(10001, 11000) u;
             INSERT INTO workflow_templates (id, name, event, entity_type, version, is_active)
                 VALUES (102, 'Bench inbox', 'bench.inbox', 'unit', 1, true);
             INSERT INTO workflow_template_steps (template_id, step_order, name, approver_role, approver_user_id)
                 VALUES (102, 1, 'Team review', 'team_0', NULL), (102, 2, 'Second team', 'team_1', NULL),
                        (102, 3, 'Owner', NULL, 10001);
             -- Status mix by g % 10: 0-2 at step 1, 3-4 at step 2, 5 at step 3 (in progress);
             -- 6-7 approved; 8-9 rejected at step 2.
             INSERT INTO workflow_instances
                 (template_id, template_version, event, entity_type, entity_id, initiated_by,
                  status, created_at, updated_at, completed_at)
             SELECT 102, 1, 'bench.inbox', 'unit', g, 10001 + (g % 1000),
                    CASE WHEN g % 10 <= 5 THEN 'in_progress' WHEN g % 10 <= 7 THEN 'approved' ELSE 'rejected' END,
                    now() - make_interval(secs => g), now() - make_interval(secs => g),
                    CASE WHEN g % 10 >= 6 THEN now() - make_interval(secs => g) END
             FROM generate_series(1, {instances}) AS g ORDER BY g;
             ALTER TABLE workflow_instance_steps DISABLE TRIGGER workflow_inbox_sync;
             INSERT INTO workflow_instance_steps
                 (instance_id, step_order, name, approver_user_id, approver_role, eligible_user_ids,
                  status, acted_by_user_id, acted_at, activated_at)
             SELECT i.id, o, 'Step ' || o,
                    CASE o WHEN 3 THEN 10001 + (i.entity_id % 1000) END,
                    CASE o WHEN 1 THEN 'team_' || (i.entity_id % 200)
                           WHEN 2 THEN 'team_' || ((i.entity_id * 7 + 3) % 200) END,
                    CASE o WHEN 1 THEN ARRAY(SELECT 10001 + (i.entity_id % 200) * 5 + k FROM generate_series(0, 4) k)
                           WHEN 2 THEN ARRAY(SELECT 10001 + ((i.entity_id * 7 + 3) % 200) * 5 + k FROM generate_series(0, 4) k)
                           ELSE ARRAY[10001 + (i.entity_id % 1000)] END::bigint[],
                    st.status,
                    CASE WHEN st.status IN ('approved', 'rejected') THEN 10001 END,
                    CASE WHEN st.status IN ('approved', 'rejected') THEN i.created_at END,
                    CASE WHEN st.status <> 'pending' THEN i.created_at END
             FROM workflow_instances AS i
             CROSS JOIN generate_series(1, 3) AS o
             CROSS JOIN LATERAL (SELECT CASE
                 WHEN i.entity_id % 10 <= 2 THEN (ARRAY['awaiting_action', 'pending', 'pending'])[o]
                 WHEN i.entity_id % 10 <= 4 THEN (ARRAY['approved', 'awaiting_action', 'pending'])[o]
                 WHEN i.entity_id % 10 = 5 THEN (ARRAY['approved', 'approved', 'awaiting_action'])[o]
                 WHEN i.entity_id % 10 <= 7 THEN 'approved'
                 ELSE (ARRAY['approved', 'rejected', 'cancelled'])[o] END AS status) AS st
             WHERE i.event = 'bench.inbox'
             ORDER BY i.id, o;
             ALTER TABLE workflow_instance_steps ENABLE TRIGGER workflow_inbox_sync;
             INSERT INTO workflow_inbox (user_id, activated_at, step_id)
             SELECT DISTINCT u, s.activated_at, s.id
             FROM workflow_instance_steps s
             JOIN workflow_instances i ON i.id = s.instance_id AND i.event = 'bench.inbox'
             CROSS JOIN LATERAL unnest(s.eligible_user_ids) AS u
             WHERE s.status = 'awaiting_action';
             ANALYZE;"
        ),
    )
    .await
}

/// The release server as a child process.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(bin: &str, database_url: &str, pool: usize) -> Result<Self, String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        drop(listener);
        let child = Command::new(bin)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("BIND_ADDR", addr.to_string())
            .env("DATABASE_POOL_SIZE", pool.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("can't start {bin}: {e}"))?;
        let server = Self {
            child,
            base: format!("http://{addr}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = client.get(format!("{}/healthz", server.base)).send().await
                && r.status().is_success()
            {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("the server did not become healthy".to_owned())
    }

    /// Peak resident set size so far, in KiB (VmHWM).
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Throughput and latency of one HTTP load run.
struct Measured {
    ok: u64,
    errors: u64,
    per_second: f64,
    histogram: Histogram<u64>,
}

impl Measured {
    fn ms(&self, quantile: f64) -> f64 {
        self.histogram.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Runs `clients` keep-alive clients for `seconds`; `request(i)` builds the i-th request
/// (numbered across all clients) and `expect` is the status that counts as success.
async fn drive<F>(clients: usize, seconds: f64, expect: u16, request: F) -> Measured
where
    F: Fn(&reqwest::Client, u64) -> Option<reqwest::RequestBuilder> + Send + Sync + 'static,
{
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds");
    let request = Arc::new(request);
    let counter = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, request, counter) =
            (client.clone(), Arc::clone(&request), Arc::clone(&counter));
        tasks.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let (mut ok, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let Some(builder) = request(&client, n) else {
                    break;
                };
                let t = Instant::now();
                match builder.send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let _ = r.bytes().await;
                        if status == expect {
                            ok += 1;
                            histogram.saturating_record(t.elapsed().as_micros() as u64);
                        } else {
                            errors += 1;
                        }
                    }
                    Err(_) => errors += 1,
                }
            }
            (ok, errors, histogram)
        }));
    }
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let (mut ok, mut errors) = (0, 0);
    for task in tasks {
        let (o, e, h) = task.await.expect("client task");
        ok += o;
        errors += e;
        total.add(h).expect("histograms add");
    }
    let elapsed = started.elapsed().as_secs_f64();
    Measured {
        ok,
        errors,
        per_second: ok as f64 / elapsed,
        histogram: total,
    }
}

/// Runs pgbench with `script` and returns transactions per second.
fn pgbench(
    database_url: &str,
    script: &str,
    clients: usize,
    seconds: f64,
    vars: &[(&str, i64)],
) -> Result<f64, String> {
    let mut command = Command::new("pgbench");
    // The same session settings as the service's pooled connections, so both get the same plans.
    let options = approvals::outbound::postgres::SESSION_SETTINGS
        .split(';')
        .filter_map(|s| s.trim().strip_prefix("SET "))
        .map(|s| format!("-c {}", s.replace(" = ", "=").replace('\'', "")))
        .collect::<Vec<_>>()
        .join(" ");
    command
        .env("PGOPTIONS", options)
        .args(["-n", "-M", "prepared", "-f", script])
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
        ])
        .args(["-T", &(seconds.ceil() as u64).max(1).to_string()]);
    for (name, value) in vars {
        command.args(["-D", &format!("{name}={value}")]);
    }
    let output = command
        .arg(database_url)
        .output()
        .map_err(|e| format!("can't run pgbench: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let failed = stdout
        .lines()
        .find(|l| l.starts_with("number of failed transactions"))
        .and_then(|l| l.split_whitespace().nth(4))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    if !output.status.success() || failed > 0 {
        return Err(format!(
            "pgbench {script} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    stdout
        .lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no tps in pgbench output:\n{stdout}"))
}

struct Row {
    label: String,
    service: Option<Measured>,
    same_sql: Option<f64>,
    ceiling: Option<f64>,
    note: String,
}

impl Row {
    /// A service run beside its two pgbench baselines.
    fn compared(label: String, service: Measured, same_sql: f64, ceiling: f64) -> Self {
        Self {
            label,
            note: if service.errors > 0 {
                format!("{} errors", service.errors)
            } else {
                String::new()
            },
            service: Some(service),
            same_sql: Some(same_sql),
            ceiling: Some(ceiling),
        }
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<24} {:>10} {:>8} {:>8} {:>8} {:>10} {:>10} {:>9} {:>9}  note",
        "workload",
        "svc/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "same-SQL/s",
        "1-RT/s",
        "svc/same",
        "svc/1-RT",
    );
    for row in rows {
        let (rate, p50, p95, p99) = match &row.service {
            Some(m) => (
                if m.per_second > 0.0 {
                    format!("{:.0}", m.per_second)
                } else {
                    "-".into()
                },
                format!("{:.2}", m.ms(0.50)),
                format!("{:.2}", m.ms(0.95)),
                format!("{:.2}", m.ms(0.99)),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        let ratio = |base: Option<f64>| match (&row.service, base) {
            (Some(m), Some(b)) if b > 0.0 => format!("{:.2}", m.per_second / b),
            _ => "-".into(),
        };
        let fmt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
        println!(
            "{:<24} {:>10} {:>8} {:>8} {:>8} {:>10} {:>10} {:>9} {:>9}  {}",
            row.label,
            rate,
            p50,
            p95,
            p99,
            fmt(row.same_sql),
            fmt(row.ceiling),
            ratio(row.same_sql),
            ratio(row.ceiling),
            row.note
        );
    }
}

async fn run(args: Args) -> Result<bool, String> {
    let plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    let mut conn = AsyncPgConnection::establish(&args.database_url)
        .await
        .map_err(|e| format!("can't connect: {e}"))?;
    let script = |name: &str| format!("{}/{name}.pgbench", args.sql_dir);

    eprintln!("preloading {} decision instances", plan.decision_range * 3);
    let layout = preload_decisions(&mut conn, plan.decision_range).await?;
    let max_clients = plan.clients.iter().copied().max().unwrap_or(1);
    let server = Server::start(&args.server_bin, &args.database_url, max_clients.max(8)).await?;
    let mut rows = Vec::new();
    let mut errors = 0u64;

    // Decisions: the service takes distinct step-1 ids from the first range, in order.
    let next_service_step = Arc::new(AtomicUsize::new(0));
    for &clients in &plan.clients {
        let base = server.base.clone();
        let (first_step, range) = (layout.first_step, layout.range);
        let cursor = Arc::clone(&next_service_step);
        let service = drive(clients, plan.seconds, 200, move |client, _| {
            let k = cursor.fetch_add(1, Ordering::Relaxed) as i64;
            (k < range).then(|| {
                client
                    .post(format!(
                        "{base}/api/v1/workflow/steps/{}/approve",
                        first_step + 3 * k
                    ))
                    .json(&json!({"acted_by_user_id": 1}))
            })
        })
        .await;
        errors += service.errors;
        let vars = [
            ("count", layout.range),
            ("first_step", layout.first_step + 3 * layout.range),
            ("first_instance", layout.first_instance + layout.range),
        ];
        let same = pgbench(
            &args.database_url,
            &script("decide_same_sql"),
            clients,
            plan.seconds,
            &vars,
        )?;
        let ceiling_vars = [
            ("count", layout.range),
            ("first_step", layout.first_step + 6 * layout.range),
        ];
        exec(&mut conn, "SELECT setval('bench_ceiling_seq', 1, false)").await?;
        let ceiling = pgbench(
            &args.database_url,
            &script("decide_one_round_trip"),
            clients,
            plan.seconds,
            &ceiling_vars,
        )?;
        rows.push(Row::compared(
            format!("approve, {clients} clients"),
            service,
            same,
            ceiling,
        ));
    }

    // Triggers: distinct entities for the service; sequences for pgbench.
    let entity = Arc::new(AtomicU64::new(3_000_000_000));
    for &clients in &plan.clients {
        let base = server.base.clone();
        let entity = Arc::clone(&entity);
        let service = drive(clients, plan.seconds, 201, move |client, _| {
            let id = entity.fetch_add(1, Ordering::Relaxed);
            Some(
                client
                    .post(format!("{base}/api/v1/workflow/instances"))
                    .json(&json!({
                        "event": "unit.price_update_requested", "entity_type": "unit",
                        "entity_id": id, "initiated_by": 1
                    })),
            )
        })
        .await;
        errors += service.errors;
        let same = pgbench(
            &args.database_url,
            &script("trigger_same_sql"),
            clients,
            plan.seconds,
            &[],
        )?;
        let ceiling = pgbench(
            &args.database_url,
            &script("trigger_one_round_trip"),
            clients,
            plan.seconds,
            &[],
        )?;
        rows.push(Row::compared(
            format!("trigger, {clients} clients"),
            service,
            same,
            ceiling,
        ));
    }

    // Contention: 64 approvers on one step, several rounds.
    exec(
        &mut conn,
        "INSERT INTO users (id, name) SELECT u, 'Contender ' || u FROM generate_series(5001, 5064) u;
         INSERT INTO roles (name) VALUES ('bench_contender');
         INSERT INTO user_roles (role, user_id) SELECT 'bench_contender', u FROM generate_series(5001, 5064) u;
         INSERT INTO workflow_templates (id, name, event, entity_type, version, is_active)
             VALUES (101, 'Bench contention', 'bench.contention', 'booking', 1, true);
         INSERT INTO workflow_template_steps (template_id, step_order, name, approver_role, approver_user_id)
             VALUES (101, 1, 'Anyone of 64', 'bench_contender', NULL), (101, 2, 'Finance', NULL, 2);",
    )
    .await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| e.to_string())?;
    let mut losers = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut winners_per_round = Vec::new();
    for round in 0..plan.contention_rounds {
        let created: serde_json::Value = client
            .post(format!("{}/api/v1/workflow/instances", server.base))
            .json(&json!({"event": "bench.contention", "entity_type": "booking", "entity_id": round + 1, "initiated_by": 1}))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let step = created["steps"][0]["id"]
            .as_i64()
            .ok_or("contention trigger failed")?;
        let tasks: Vec<_> = (0..64)
            .map(|n| {
                let client = client.clone();
                let url = format!("{}/api/v1/workflow/steps/{step}/approve", server.base);
                tokio::spawn(async move {
                    let t = Instant::now();
                    let status = client
                        .post(url)
                        .json(&json!({"acted_by_user_id": 5001 + n}))
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    (status, t.elapsed())
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            let (status, elapsed) = task.await.map_err(|e| e.to_string())?;
            match status {
                200 => winners += 1,
                409 => losers.saturating_record(elapsed.as_micros() as u64),
                _ => errors += 1,
            }
        }
        winners_per_round.push(winners);
    }
    let contention_ok = winners_per_round.iter().all(|w| *w == 1);
    rows.push(Row {
        label: "64 on one step (409s)".into(),
        note: format!("winners per round {winners_per_round:?}; p50/p95/p99 are the losers' 409"),
        service: Some(Measured {
            ok: losers.len(),
            errors: 0,
            per_second: 0.0,
            histogram: losers,
        }),
        same_sql: None,
        ceiling: None,
    });

    // Inbox at scale.
    eprintln!("preloading {} inbox instances", plan.inbox_instances);
    preload_inbox(&mut conn, plan.inbox_instances).await?;
    let total_instances = scalar(&mut conn, "SELECT count(*) AS v FROM workflow_instances").await?;
    let base = server.base.clone();
    let requests = plan.inbox_requests as u64;
    let inbox = drive(1, 3600.0, 200, move |client, n| {
        (n < requests).then(|| {
            let user = 10001 + (n * 7919) % 1000;
            client.get(format!(
                "{base}/api/v1/workflow/steps/pending?user_id={user}&limit=50"
            ))
        })
    })
    .await;
    errors += inbox.errors;
    let items_seen = scalar(
        &mut conn,
        "SELECT count(*) AS v FROM (SELECT 1 FROM workflow_inbox WHERE user_id = 10001 LIMIT 50) AS t",
    )
    .await?;
    rows.push(Row {
        label: "inbox GET, 1 client".into(),
        note: format!(
            "{total_instances} instances, {} requests, {items_seen} items a page",
            inbox.ok
        ),
        service: Some(inbox),
        same_sql: None,
        ceiling: None,
    });

    #[derive(QueryableByName)]
    struct PlanLine {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        line: String,
    }
    let plan_lines: Vec<PlanLine> = diesel::sql_query(
        "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
         SELECT s.id, s.step_order, s.name, s.approver_user_id, s.approver_role, s.activated_at,
                i.id, i.event, i.entity_type, i.entity_id
         FROM workflow_inbox b
         JOIN workflow_instance_steps s ON s.id = b.step_id
         JOIN workflow_instances i ON i.id = s.instance_id
         WHERE b.user_id = 10001 ORDER BY b.activated_at, b.step_id LIMIT 50",
    )
    .load(&mut conn)
    .await
    .map_err(|e| e.to_string())?;

    let peak = server.peak_rss_kib();
    println!();
    println!(
        "approvals bench, {} ({} cores), {}; {}s per run",
        chrono::Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if args.quick { "quick" } else { "full" },
        plan.seconds
    );
    print_table(&rows);
    println!();
    println!("inbox query plan (user 10001):");
    for line in &plan_lines {
        println!("  {}", line.line);
    }
    println!();
    println!(
        "server peak RSS: {}",
        peak.map_or("unknown".to_owned(), |k| format!(
            "{:.1} MB",
            k as f64 / 1024.0
        ))
    );
    println!(
        "round trips per approval: 4 (BEGIN; both row-lock reads pipelined; one write; COMMIT)"
    );
    println!("errors during the run: {errors}");
    Ok(errors == 0 && contention_ok)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "usage: approvals-bench --database-url URL [--server BIN] [--sql-dir DIR] [--quick]\n{e}"
            );
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("the run had errors or a contention round without exactly one winner");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}
