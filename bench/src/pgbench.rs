//! The baseline: pgbench running the SQL scripts in `scripts/bench/` (the statements the
//! PostgreSQL adapter sends, and a one-round-trip ceiling) with the same session settings the
//! service uses, in the same run and on the same database as the service's measurements.

use std::process::Command;

/// The session settings the service applies to each of its pooled connections. This must match
/// `SESSION_SETTINGS` of the PostgreSQL adapter (`src/outbound/postgres/`), or pgbench would run
/// with other plans than the service; it is a copy so the bench doesn't link the service.
const SESSION_SETTINGS: &str = "SET plan_cache_mode = force_generic_plan; \
     SET max_parallel_workers_per_gather = 0; SET statement_timeout = '25s'";

/// [`SESSION_SETTINGS`] as `PGOPTIONS` (`-c name=value ...`), which pgbench's libpq sessions
/// apply at connect time.
fn pgoptions() -> String {
    SESSION_SETTINGS
        .split(';')
        .filter_map(|s| s.trim().strip_prefix("SET "))
        .map(|s| format!("-c {}", s.replace(" = ", "=").replace('\'', "")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Asks for a checkpoint (psql, as the bench's superuser), so that the run after it starts
/// from one: runs of a few seconds otherwise land at random points of PostgreSQL's own
/// checkpoint cycle, which it starts every few hundred megabytes of WAL, and the runs just
/// after one start pay a full-page image for every page they touch first. Both sides of every
/// comparison (the service's runs and pgbench's) start from one alike.
pub fn checkpoint(database_url: &str) -> Result<(), String> {
    let output = Command::new("psql")
        .args(["-X", "-q", "-c", "CHECKPOINT", database_url])
        .output()
        .map_err(|e| format!("can't run psql: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "CHECKPOINT failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// Runs pgbench with `script` and returns transactions per second. `vars` become pgbench
/// variables (`-D name=value`). A failed transaction fails the run: a baseline that skipped
/// work would flatter itself.
pub fn pgbench(
    database_url: &str,
    script: &str,
    clients: usize,
    seconds: f64,
    vars: &[(&str, i64)],
) -> Result<f64, String> {
    let mut command = Command::new("pgbench");
    command
        .env("PGOPTIONS", pgoptions())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pgoptions_carry_every_session_setting() {
        assert_eq!(
            pgoptions(),
            "-c plan_cache_mode=force_generic_plan -c max_parallel_workers_per_gather=0 \
             -c statement_timeout=25s"
        );
    }
}
