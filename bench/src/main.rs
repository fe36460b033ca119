//! `approvals-bench`: the load generator and report behind `scripts/bench.sh`. Given an empty,
//! migrated and seeded database and the release server binary, it preloads data with bulk SQL,
//! starts the server, drives it over HTTP with keep-alive clients, runs pgbench on the same SQL
//! in the same run as the baseline, and prints one table. It is a harness, not part of the
//! service: it talks to the database directly and doesn't link the `approvals` library.
//!
//! This file holds the command line, the run sizes and the order of the run; the scenarios are
//! in [`scenarios`] and [`search`], their data in [`preload`], the table in [`report`].

mod db;
mod load;
mod pgbench;
mod preload;
mod receiver;
mod report;
mod scenarios;
mod search;
mod server;

use std::process::ExitCode;

use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::scenarios::{Sql, Tally};
use crate::server::Server;

/// Run sizes.
pub struct Plan {
    pub seconds: f64,
    pub clients: Vec<usize>,
    /// Instances preloaded per decision range (service, pgbench same SQL, pgbench ceiling).
    pub decision_range: i64,
    pub inbox_instances: i64,
    pub inbox_requests: usize,
    /// Steps awaiting the busiest approver, whose inbox page is timed.
    pub busy_inbox_steps: i64,
    /// Entity searches (`GET /instances?entity_type=..&entity_id=..`) timed, one client.
    pub search_requests: usize,
    pub contention_rounds: usize,
}

impl Plan {
    fn full() -> Self {
        Self {
            seconds: 8.0,
            clients: vec![1, 8, 32],
            decision_range: 250_000,
            inbox_instances: 1_000_000,
            inbox_requests: 5_000,
            busy_inbox_steps: 10_000,
            search_requests: 5_000,
            contention_rounds: 10,
        }
    }

    /// Small enough for `scripts/test.sh` to run on every check, so the bench can't rot.
    fn quick() -> Self {
        Self {
            seconds: 0.5,
            clients: vec![1, 8],
            decision_range: 20_000,
            inbox_instances: 10_000,
            inbox_requests: 200,
            busy_inbox_steps: 10_000,
            search_requests: 200,
            contention_rounds: 2,
        }
    }
}

struct Args {
    database_url: String,
    server_bin: String,
    sql_dir: String,
    quick: bool,
    /// Only the approvals at 8 clients (with their keyed, metrics and webhooks rows): the rows
    /// a change to the decision's path or to event delivery moves, in a few minutes.
    approvals_only: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut database_url = None;
    let mut server_bin = "target/release/approvals".to_owned();
    let mut sql_dir = "scripts/bench".to_owned();
    let mut quick = false;
    let mut approvals_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--database-url" => database_url = args.next(),
            "--server" => server_bin = args.next().ok_or("--server needs a path")?,
            "--sql-dir" => sql_dir = args.next().ok_or("--sql-dir needs a path")?,
            "--quick" => quick = true,
            "--approvals-only" => approvals_only = true,
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    Ok(Args {
        database_url: database_url.ok_or("--database-url is required")?,
        server_bin,
        sql_dir,
        quick,
        approvals_only,
    })
}

/// The whole run; `Ok(false)` when it finished but something failed on the way.
async fn run(args: Args) -> Result<bool, String> {
    let mut plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    if args.approvals_only {
        plan.clients = vec![8];
    }
    let mut conn = AsyncPgConnection::establish(&args.database_url)
        .await
        .map_err(|e| format!("can't connect: {e}"))?;
    let sql = Sql {
        database_url: &args.database_url,
        dir: &args.sql_dir,
    };

    eprintln!("preloading {} decision instances", plan.decision_range * 3);
    let layout = preload::decisions(&mut conn, plan.decision_range).await?;
    let max_clients = plan.clients.iter().copied().max().unwrap_or(1);
    // The webhook receiver listens on 127.0.0.1, which subscriptions refuse by default.
    let private = ("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true");
    let server = Server::start_with(
        &args.server_bin,
        &args.database_url,
        max_clients.max(8),
        &[private],
    )
    .await?;
    // The same server without request metrics, for their overhead at 8 clients.
    let metrics_off = Server::start_with(
        &args.server_bin,
        &args.database_url,
        max_clients.max(8),
        &[("METRICS", "off"), private],
    )
    .await?;
    let mut tally = Tally::default();

    let servers = scenarios::Servers {
        metrics_on: &server,
        metrics_off: &metrics_off,
    };
    scenarios::approvals(&mut tally, &mut conn, servers, &sql, &plan, &layout).await?;
    drop(metrics_off);
    // The rest of the run, unless only the approvals were asked for.
    let (mut contention_ok, mut plan_lines, mut search_plans) = (true, Vec::new(), Vec::new());
    if !args.approvals_only {
        scenarios::quorum(&mut tally, &mut conn, &server, &plan).await?;
        scenarios::triggers(&mut tally, &server, &sql, &plan).await?;
        contention_ok = scenarios::contention(&mut tally, &mut conn, &server, &plan).await?;
        scenarios::inbox(&mut tally, &mut conn, &server, &plan).await?;
        plan_lines = db::inbox_plan(&mut conn).await?;
        search::search(&mut tally, &mut conn, &server, &plan).await?;
        search_plans = search::plans(&mut conn, &plan).await?;
    }

    report::print(&report::Summary {
        quick: args.quick,
        seconds: plan.seconds,
        rows: &tally.rows,
        inbox_plan: &plan_lines,
        search_plans: &search_plans,
        peak_rss_kib: server.peak_rss_kib(),
        errors: tally.errors,
    });
    Ok(tally.errors == 0 && contention_ok)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "usage: approvals-bench --database-url URL [--server BIN] [--sql-dir DIR] [--quick] [--approvals-only]\n{e}"
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
