//! The measured workloads, in the order the run performs them: approvals and triggers at each
//! client count beside their pgbench baselines (at 8 clients, the approvals' same-SQL baseline
//! taken in turns with each group of the service's runs), 64 approvers racing on one step, and
//! the inbox read at scale. Each adds its rows to the table and counts the requests that failed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use diesel_async::AsyncPgConnection;
use serde_json::json;

use crate::Plan;
use crate::db::{exec, scalar};
use crate::load::{Measured, drive, histogram};
use crate::pgbench::{checkpoint, pgbench};
use crate::preload::{self, DecisionLayout};
use crate::receiver::Receiver;
use crate::report::Row;
use crate::server::Server;

/// What the scenarios add up to.
#[derive(Default)]
pub struct Tally {
    pub rows: Vec<Row>,
    /// Requests that failed or got an unexpected status, over all scenarios.
    pub errors: u64,
}

impl Tally {
    /// Adds a row, and shows it on stderr at once with the time it was measured, so that a
    /// long run's progress (and when each row ran) can be followed.
    pub fn push(&mut self, row: Row) {
        crate::report::progress(&row);
        self.rows.push(row);
    }
}

/// Length of the unmeasured run before a server's first measured run at a client count.
const WARM_UP: f64 = 1.0;

/// Where pgbench connects and finds its scripts.
pub struct Sql<'a> {
    pub database_url: &'a str,
    pub dir: &'a str,
}

impl Sql<'_> {
    /// Runs `scripts/bench/NAME.pgbench`, from a checkpoint; see [`pgbench`].
    fn pgbench(
        &self,
        name: &str,
        clients: usize,
        seconds: f64,
        vars: &[(&str, i64)],
    ) -> Result<f64, String> {
        let script = format!("{}/{name}.pgbench", self.dir);
        checkpoint(self.database_url)?;
        pgbench(self.database_url, &script, clients, seconds, vars)
    }

    /// The same SQL as the service's approvals, on the second range of the layout (pgbench
    /// draws its steps from a sequence, so each run goes on where the last one stopped).
    fn same_sql(
        &self,
        layout: &DecisionLayout,
        clients: usize,
        seconds: f64,
    ) -> Result<f64, String> {
        let vars = [
            ("count", layout.range),
            ("first_step", layout.first_step + 3 * layout.range),
            ("first_instance", layout.first_instance + layout.range),
        ];
        self.pgbench("decide_same_sql", clients, seconds, &vars)
    }
}

/// The server as it runs by default (metrics on), and the same binary with `METRICS=off`.
#[derive(Clone, Copy)]
pub struct Servers<'a> {
    pub metrics_on: &'a Server,
    pub metrics_off: &'a Server,
}

/// Approving step 1 of preloaded instances: the service over HTTP beside pgbench on the same
/// SQL and the ceiling, each on its own range of the layout. At 8 clients also with an
/// `Idempotency-Key`, with metrics off and on, and with webhooks off and on.
///
/// Each group of the service's runs is compared with same-SQL runs taken in turn with it (one
/// after each turn of the group), not with one baseline measured once: this machine's rate
/// drifts over a run, and a baseline measured minutes away from the runs it divides would turn
/// that drift into a ratio.
pub async fn approvals(
    tally: &mut Tally,
    conn: &mut AsyncPgConnection,
    servers: Servers<'_>,
    sql: &Sql<'_>,
    plan: &Plan,
    layout: &DecisionLayout,
) -> Result<(), String> {
    // The service takes distinct step-1 ids from the first range, in order, across all client
    // counts: a step approved once can't be approved again.
    let next_service_step = Arc::new(AtomicUsize::new(0));
    let server = servers.metrics_on;
    for &clients in &plan.clients {
        let approve = Approvals {
            database_url: sql.database_url,
            layout,
            cursor: &next_service_step,
            clients,
            seconds: plan.seconds,
        };
        let same_sql = || sql.same_sql(layout, clients, plan.seconds);
        // Unmeasured warm-up of both servers at this client count: their pools open the
        // connections it needs and prepare their statements, as pgbench connects before its
        // clock starts (its rate excludes the initial connection time).
        for server in [servers.metrics_on, servers.metrics_off] {
            let warm = approve.run_for(server, WARM_UP, false).await;
            tally.errors += warm.errors;
        }
        let service = approve.run(server, false).await?;
        tally.errors += service.errors;
        let same = same_sql()?;
        // The ceiling script draws its steps from this sequence: every client count starts it
        // again at the first step of the third range.
        exec(conn, "SELECT setval('bench_ceiling_seq', 1, false)").await?;
        let ceiling_vars = [
            ("count", layout.range),
            ("first_step", layout.first_step + 6 * layout.range),
        ];
        let ceiling = sql.pgbench(
            "decide_one_round_trip",
            clients,
            plan.seconds,
            &ceiling_vars,
        )?;
        tally.push(Row::compared(
            format!("approve, {clients} clients"),
            service,
            same,
            ceiling,
        ));
        if clients != 8 {
            continue;
        }
        // The same approvals again with an Idempotency-Key each: the cost of keeping answers.
        let keyed = approve.run(server, true).await?;
        tally.errors += keyed.errors;
        let same = same_sql()?;
        tally.push(Row::compared(
            format!("approve keyed, {clients} clients"),
            keyed,
            same,
            ceiling,
        ));
        // The metrics' overhead: off and on in turns (twice each), so that drift in the
        // machine's load falls on both alike.
        let (mut off, mut on, mut same) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..2 {
            off.push(approve.run(servers.metrics_off, false).await?);
            on.push(approve.run(servers.metrics_on, false).await?);
            same.push(same_sql()?);
        }
        let (on, off) = (merged(on), merged(off));
        tally.errors += on.errors + off.errors;
        let ratio = on.per_second / off.per_second.max(f64::MIN_POSITIVE);
        let mut off_row = Row::compared(
            format!("approve metrics off, {clients}"),
            off,
            mean(&same),
            ceiling,
        );
        off_row.note = format!("{}{}", off_row.note, turns(&same));
        tally.push(off_row);
        let mut on_row = Row::compared(
            format!("approve metrics on, {clients}"),
            on,
            mean(&same),
            ceiling,
        );
        on_row.note = format!("{}on/off {ratio:.3}", on_row.note);
        tally.push(on_row);
        // Webhooks' cost and latency: with a subscription to every event and without, in
        // turns, each turn followed by a same-SQL run.
        let runs = webhook_runs(conn, server, &approve, &same_sql).await?;
        tally.errors += runs.on.errors + runs.off.errors + runs.latency.errors;
        let ratio = runs.on.per_second / runs.off.per_second.max(f64::MIN_POSITIVE);
        let mut off_row = Row::compared(
            format!("approve webhooks off, {clients}"),
            runs.off,
            mean(&runs.same),
            ceiling,
        );
        off_row.note = format!("{}{}", off_row.note, turns(&runs.same));
        tally.push(off_row);
        let mut on_row = Row::compared(
            format!("approve webhooks on, {clients}"),
            runs.on,
            mean(&runs.same),
            ceiling,
        );
        on_row.note = format!("{}on/off {ratio:.3}", on_row.note);
        tally.push(on_row);
        let note = format!(
            "occurred_at to receipt, during and after the webhooks-on runs; {} events, {} deliveries{}",
            runs.events,
            runs.latency.ok,
            if runs.latency.errors > 0 {
                format!(", {} never arrived", runs.latency.errors)
            } else {
                String::new()
            }
        );
        tally.push(Row {
            label: format!("event delivery, {clients}"),
            service: Some(runs.latency),
            same_sql: None,
            ceiling: None,
            note,
        });
    }
    Ok(())
}

/// The mean of some pgbench rates.
fn mean(rates: &[f64]) -> f64 {
    rates.iter().sum::<f64>() / rates.len().max(1) as f64
}

/// The same-SQL runs a row's baseline is the mean of, for its note: `same SQL in turns 1012,
/// 1083/s`, so the spread between them shows.
fn turns(rates: &[f64]) -> String {
    let rates: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
    format!("same SQL in turns {}/s", rates.join(", "))
}

/// Approvals with and without a webhook subscription, and the events' delivery latency.
struct WebhookRuns {
    on: Measured,
    off: Measured,
    /// The same-SQL runs taken after each turn.
    same: Vec<f64>,
    /// Latency only (`per_second` 0): `ok` deliveries received, `errors` events that never were.
    latency: Measured,
    /// Distinct events received.
    events: usize,
}

/// Every event type, subscribed to for the webhooks-on runs.
const EVENT_TYPES: [&str; 5] = [
    "step.awaiting_action",
    "step.overdue",
    "instance.approved",
    "instance.rejected",
    "instance.cancelled",
];

/// Three turns of: approvals with no subscription; then with one subscription to every event
/// type (a receiver in this process answering 204), waiting until the receiver has every event
/// the run wrote (each approval of a step 1 writes one, the notification of its step 2) and
/// every delivery is marked; then the same SQL. The outbox is drained before each run, so no
/// run pays for the one before it.
async fn webhook_runs(
    conn: &mut AsyncPgConnection,
    server: &Server,
    approve: &Approvals<'_>,
    same_sql: &dyn Fn() -> Result<f64, String>,
) -> Result<WebhookRuns, String> {
    let receiver = Receiver::start()?;
    let http = reqwest::Client::new();
    let (mut on, mut off, mut same) = (Vec::new(), Vec::new(), Vec::new());
    let mut latencies = histogram();
    let (mut missing, mut events) = (0u64, 0usize);
    // Three turns, not two: a pair of 8 s runs half a minute apart can differ by a fifth on
    // this machine, and the bar is on these rows' ratio.
    for _ in 0..3 {
        outbox_drained(conn).await?;
        off.push(approve.run(server, false).await?);
        outbox_drained(conn).await?;
        let subscription = subscribe(&http, server, &receiver.url).await?;
        receiver.reset();
        let run = approve.run(server, false).await?;
        let expected = run.ok as usize;
        let deadline = Instant::now() + std::time::Duration::from_secs(120);
        while receiver.distinct() < expected && Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let received = receiver.distinct();
        missing += expected.saturating_sub(received) as u64;
        events += received;
        let _ = latencies.add(receiver.latencies());
        http.delete(format!(
            "{}/api/v1/workflow/subscriptions/{subscription}",
            server.base
        ))
        .send()
        .await
        .map_err(|e| format!("unsubscribing: {e}"))?;
        on.push(run);
        deliveries_marked(conn).await?;
        same.push(same_sql()?);
    }
    let deliveries = latencies.len();
    Ok(WebhookRuns {
        on: merged(on),
        off: merged(off),
        same,
        latency: Measured {
            ok: deliveries,
            errors: missing,
            per_second: 0.0,
            histogram: latencies,
        },
        events,
    })
}

/// Subscribes `url` to every event type; returns the subscription's id.
async fn subscribe(http: &reqwest::Client, server: &Server, url: &str) -> Result<i64, String> {
    let response = http
        .post(format!("{}/api/v1/workflow/subscriptions", server.base))
        .json(&json!({"url": url, "event_types": EVENT_TYPES}))
        .send()
        .await
        .map_err(|e| format!("subscribing: {e}"))?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| format!("subscribing: {e}"))?;
    body["id"]
        .as_i64()
        .ok_or_else(|| format!("subscribing answered {status}: {body}"))
}

/// Waits (up to a minute) until every outbox event has been handed to the adapters.
async fn outbox_drained(conn: &mut AsyncPgConnection) -> Result<(), String> {
    settled(
        conn,
        "SELECT count(*) AS v FROM workflow_callback_outbox WHERE delivered_at IS NULL",
        "outbox events still undelivered",
    )
    .await
}

/// Waits (up to a minute) until every webhook delivery has been marked, so that the run after
/// doesn't share the machine with the last marks.
async fn deliveries_marked(conn: &mut AsyncPgConnection) -> Result<(), String> {
    settled(
        conn,
        "SELECT count(*) AS v FROM webhook_deliveries WHERE status IN ('pending', 'failed')",
        "webhook deliveries still unmarked",
    )
    .await
}

/// Polls `count` (a `SELECT count(*) AS v`) until it is 0, for up to a minute.
async fn settled(conn: &mut AsyncPgConnection, count: &str, left_what: &str) -> Result<(), String> {
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let left = scalar(conn, count).await?;
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("{left} {left_what} after a minute"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Runs of one workload as one: every request counted, the mean of their rates.
fn merged(runs: Vec<Measured>) -> Measured {
    let count = runs.len().max(1) as f64;
    let mut runs = runs.into_iter();
    let mut all = runs.next().expect("at least one run");
    let mut rate = all.per_second;
    for run in runs {
        all.ok += run.ok;
        all.errors += run.errors;
        rate += run.per_second;
        // Both histograms have the same bounds (`load::histogram`).
        let _ = all.histogram.add(&run.histogram);
    }
    all.per_second = rate / count;
    all
}

/// Approvals by a number of clients over HTTP, each on the next unused step 1 of the first
/// range of the layout.
struct Approvals<'a> {
    /// Where the checkpoint before each measured run is asked for.
    database_url: &'a str,
    layout: &'a DecisionLayout,
    cursor: &'a Arc<AtomicUsize>,
    clients: usize,
    seconds: f64,
}

impl Approvals<'_> {
    /// One measured run, from a checkpoint; `keyed` sends a distinct `Idempotency-Key` with
    /// each approval.
    async fn run(&self, server: &Server, keyed: bool) -> Result<Measured, String> {
        checkpoint(self.database_url)?;
        Ok(self.run_for(server, self.seconds, keyed).await)
    }

    async fn run_for(&self, server: &Server, seconds: f64, keyed: bool) -> Measured {
        let base = server.base.clone();
        let (first_step, range) = (self.layout.first_step, self.layout.range);
        let cursor = Arc::clone(self.cursor);
        drive(self.clients, seconds, 200, move |client, _| {
            let k = cursor.fetch_add(1, Ordering::Relaxed) as i64;
            (k < range).then(|| {
                let step = first_step + 3 * k;
                let request = client
                    .post(format!("{base}/api/v1/workflow/steps/{step}/approve"))
                    .json(&json!({"acted_by_user_id": 1}));
                if keyed {
                    request.header("idempotency-key", format!("bench-approve-{step}"))
                } else {
                    request
                }
            })
        })
        .await
    }
}

/// Approving quorum-3 steps at 8 clients: users 1, 2 and 3 approve step 1 of each preloaded
/// instance in turn (the third approval approves the step and activates step 2), so the three
/// approvals of one step often queue on its instance's lock. Every approval is a request.
pub async fn quorum(
    tally: &mut Tally,
    conn: &mut AsyncPgConnection,
    server: &Server,
    plan: &Plan,
) -> Result<(), String> {
    const CLIENTS: usize = 8;
    let layout = preload::quorum(conn, plan.decision_range).await?;
    let base = server.base.clone();
    let (first_step, range) = (layout.first_step, layout.range);
    let measured = drive(CLIENTS, plan.seconds, 200, move |client, n| {
        let n = n as i64;
        (n / 3 < range).then(|| {
            client
                .post(format!(
                    "{base}/api/v1/workflow/steps/{}/approve",
                    first_step + 2 * (n / 3)
                ))
                .json(&json!({"acted_by_user_id": 1 + n % 3}))
        })
    })
    .await;
    tally.errors += measured.errors;
    let approved = scalar(
        conn,
        "SELECT count(*) AS v FROM workflow_instance_steps s
         JOIN workflow_instances i ON i.id = s.instance_id
         WHERE i.event = 'bench.quorum' AND s.step_order = 1 AND s.status = 'approved'",
    )
    .await?;
    tally.push(Row {
        label: format!("approve quorum-3, {CLIENTS} clients"),
        note: format!("each approval a request; {approved} steps reached their quorum"),
        service: Some(measured),
        same_sql: None,
        ceiling: None,
    });
    Ok(())
}

/// Triggering new instances: the service over HTTP, then pgbench on the same SQL and the
/// ceiling.
pub async fn triggers(
    tally: &mut Tally,
    server: &Server,
    sql: &Sql<'_>,
    plan: &Plan,
) -> Result<(), String> {
    // Distinct entities for the service; the pgbench scripts draw theirs from a sequence.
    let entity = Arc::new(AtomicU64::new(3_000_000_000));
    for &clients in &plan.clients {
        let base = server.base.clone();
        let entity = Arc::clone(&entity);
        checkpoint(sql.database_url)?;
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
        tally.errors += service.errors;
        let same = sql.pgbench("trigger_same_sql", clients, plan.seconds, &[])?;
        let ceiling = sql.pgbench("trigger_one_round_trip", clients, plan.seconds, &[])?;
        tally.push(Row::compared(
            format!("trigger, {clients} clients"),
            service,
            same,
            ceiling,
        ));
    }
    Ok(())
}

/// 64 approvers on one step, several rounds; returns whether every round had exactly one
/// winner. The losers' latency is what a user waits to learn someone else decided first.
pub async fn contention(
    tally: &mut Tally,
    conn: &mut AsyncPgConnection,
    server: &Server,
    plan: &Plan,
) -> Result<bool, String> {
    preload::contention(conn).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| e.to_string())?;
    let mut losers = histogram();
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
                _ => tally.errors += 1,
            }
        }
        winners_per_round.push(winners);
    }
    let contention_ok = winners_per_round.iter().all(|w| *w == 1);
    tally.push(Row {
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
    Ok(contention_ok)
}

/// One client reading inbox pages of the preloaded users, after the inbox preload has grown
/// the database to its full size.
pub async fn inbox(
    tally: &mut Tally,
    conn: &mut AsyncPgConnection,
    server: &Server,
    plan: &Plan,
) -> Result<(), String> {
    eprintln!("preloading {} inbox instances", plan.inbox_instances);
    preload::inbox(conn, plan.inbox_instances).await?;
    let total_instances = scalar(conn, "SELECT count(*) AS v FROM workflow_instances").await?;
    let base = server.base.clone();
    let requests = plan.inbox_requests as u64;
    // A fixed number of requests rather than a time: the deadline is only a backstop.
    let inbox = drive(1, 3600.0, 200, move |client, n| {
        (n < requests).then(|| {
            // 7919 is prime, so n * 7919 % 1000 visits all 1,000 users in a scattered order.
            let user = 10001 + (n * 7919) % 1000;
            client.get(format!(
                "{base}/api/v1/workflow/steps/pending?user_id={user}&limit=50"
            ))
        })
    })
    .await;
    tally.errors += inbox.errors;
    let items_seen = scalar(
        conn,
        "SELECT count(*) AS v FROM (SELECT 1 FROM workflow_inbox WHERE user_id = 10001 LIMIT 50) AS t",
    )
    .await?;
    tally.push(Row {
        label: "inbox GET, 1 client".into(),
        note: format!(
            "{total_instances} instances, {} requests, {items_seen} items a page",
            inbox.ok
        ),
        service: Some(inbox),
        same_sql: None,
        ceiling: None,
    });

    // The approver's inbox page (/ui/inbox, HTML, a page of 50) for the busiest approver:
    // the first page, then the page that starts after their 5,000th step (its cursor found by
    // paging through the API), so that the page's cost shows not to grow with its depth.
    preload::busy_approver(conn, plan.busy_inbox_steps).await?;
    let busy = preload::BUSY_APPROVER;
    let waiting = scalar(
        conn,
        &format!("SELECT count(*) AS v FROM workflow_inbox WHERE user_id = {busy}"),
    )
    .await?;
    let deep = cursor_after(server, busy, plan.busy_inbox_steps / 2).await?;
    for (label, query) in [("first", String::new()), ("deep", format!("?after={deep}"))] {
        let url = format!("{}/ui/inbox{query}", server.base);
        let page = drive(1, 3600.0, 200, move |client, n| {
            (n < requests).then(|| {
                client
                    .get(&url)
                    .header("cookie", format!("approvals_user={busy}"))
            })
        })
        .await;
        tally.errors += page.errors;
        let which = match label {
            "first" => "its first page".to_owned(),
            _ => format!("the page after step {}", plan.busy_inbox_steps / 2),
        };
        tally.push(Row {
            label: format!("ui inbox {label} page"),
            note: format!(
                "user {busy} with {waiting} steps waiting, {which}; {} pages",
                page.ok
            ),
            service: Some(page),
            same_sql: None,
            ceiling: None,
        });
    }
    Ok(())
}

/// The cursor of `user`'s inbox just after their `steps`-th step, by paging through the API.
async fn cursor_after(server: &Server, user: i64, steps: i64) -> Result<String, String> {
    let client = reqwest::Client::new();
    let mut after: Option<String> = None;
    for _ in 0..steps / 500 {
        let mut url = format!(
            "{}/api/v1/workflow/steps/pending?user_id={user}&limit=500",
            server.base
        );
        if let Some(cursor) = &after {
            url.push_str(&format!("&after={cursor}"));
        }
        let page: serde_json::Value = client
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("inbox page: {e}"))?
            .json()
            .await
            .map_err(|e| format!("inbox page: {e}"))?;
        after = page["next"].as_str().map(str::to_owned);
        if after.is_none() {
            return Err(format!("user {user}'s inbox ended before step {steps}"));
        }
    }
    after.ok_or_else(|| format!("no cursor for user {user}'s inbox"))
}
