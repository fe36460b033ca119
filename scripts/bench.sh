#!/usr/bin/env bash
# Benchmark: decision and trigger throughput and latency of the service against pgbench running
# the same SQL and a one-round-trip ceiling, in the same run; the inbox and the instance search
# (latency and query plans) at scale; 64 approvers contending on one step; the server's peak
# RSS. Creates its own database and drops it.
#   scripts/bench.sh           the full run (minutes; 1M instances for the inbox)
#   scripts/bench.sh --quick   small sizes, seconds (run by scripts/test.sh so it can't rot)
#   scripts/bench.sh --approvals-only
#                              only the approvals at 8 clients (plain, keyed, metrics off and
#                              on, webhooks off and on) beside their baselines, in a few minutes
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

mode=()
case "${1:-}" in
  "") ;;
  --quick) mode=(--quick) ;;
  --approvals-only) mode=(--approvals-only) ;;
  *) die "usage: scripts/bench.sh [--quick | --approvals-only]" ;;
esac

need_tools psql pgbench
if ! ls /usr/lib/postgresql/*/bin/pgbench >/dev/null 2>&1; then
  _apt_install postgresql
fi
pg_provision
pg_create_db approvals_bench

log "building release binaries"
cargo build --release --quiet --bin approvals
cargo build --release --quiet -p approvals-bench
target_dir
server=$(release_bin approvals)

log "migrate and seed"
DATABASE_URL=$DB_URL "$server" migrate >/dev/null
DATABASE_URL=$DB_URL "$server" seed >/dev/null

log "running the benchmark ${mode[*]:-(full)}"
"$(release_bin approvals-bench)" --database-url "$DB_URL" --server "$server" \
  --sql-dir scripts/bench "${mode[@]}"
