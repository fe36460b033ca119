//! The printed result: one table row per workload, the service beside its two pgbench
//! baselines (same SQL, one-round-trip ceiling) and their ratios, then the inbox and search
//! query plans, the server's peak memory and the error count. The README's Performance figures come from
//! this output of a full run.

use crate::load::Measured;

/// One line of the table.
pub struct Row {
    pub label: String,
    pub service: Option<Measured>,
    pub same_sql: Option<f64>,
    pub ceiling: Option<f64>,
    pub note: String,
}

impl Row {
    /// A service run beside its two pgbench baselines.
    pub fn compared(label: String, service: Measured, same_sql: f64, ceiling: f64) -> Self {
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

/// Everything [`print`] shows besides what it computes itself.
pub struct Summary<'a> {
    pub quick: bool,
    pub seconds: f64,
    pub rows: &'a [Row],
    pub inbox_plan: &'a [String],
    pub search_plans: &'a [crate::search::SearchPlan],
    pub peak_rss_kib: Option<u64>,
    pub errors: u64,
}

/// Prints the whole report to stdout (progress went to stderr, so stdout is only the report).
pub fn print(summary: &Summary<'_>) {
    println!();
    println!(
        "approvals bench, {} ({} cores), {}; {}s per run",
        chrono::Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if summary.quick { "quick" } else { "full" },
        summary.seconds
    );
    print_table(summary.rows);
    // An --approvals-only run has no inbox plan to show.
    if !summary.inbox_plan.is_empty() {
        println!();
        println!("inbox query plan (user 10001):");
        for line in summary.inbox_plan {
            println!("  {line}");
        }
    }
    for plan in summary.search_plans {
        println!();
        println!("search query plan, {}:", plan.label);
        for line in &plan.lines {
            println!("  {line}");
        }
    }
    let peak = summary.peak_rss_kib.map_or("unknown".to_owned(), |k| {
        format!("{:.1} MB", k as f64 / 1024.0)
    });
    println!();
    println!("server peak RSS: {peak}");
    println!(
        "round trips per approval: 3 (BEGIN with both row-lock reads, the actor's active flag \
         and the last audit hash, pipelined; one write; COMMIT)"
    );
    println!("errors during the run: {}", summary.errors);
}

/// One measured row on stderr, with the time it ended: `12:01:02 approve, 8 clients: 1520/s,
/// same SQL 1783/s (0.85)`.
pub fn progress(row: &Row) {
    let rate = row.service.as_ref().map_or("-".to_owned(), |m| {
        if m.per_second > 0.0 {
            format!("{:.0}/s", m.per_second)
        } else {
            // A latency-only row (the contention losers).
            format!("p50 {:.2} ms", m.ms(0.50))
        }
    });
    let baseline = match (&row.service, row.same_sql) {
        (Some(m), Some(same)) if same > 0.0 => {
            format!(", same SQL {same:.0}/s ({:.2})", m.per_second / same)
        }
        _ => String::new(),
    };
    eprintln!(
        "{} {}: {rate}{baseline}",
        chrono::Utc::now().format("%H:%M:%S"),
        row.label
    );
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
            // A rate of 0 marks a row measured for latency only (the contention losers).
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
