#!/usr/bin/env bash
# Runs every check: formatting, lints, all cargo tests on real PostgreSQL and NATS, the
# end-to-end API, browser (Chromium) and concurrency scripts, and the quick benchmark. Provisions
# PostgreSQL and NATS itself (see lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

need_tools curl jq
pg_provision
export TEST_DATABASE_URL=$PG_ADMIN_URL
# The cargo tests that may share a NATS server use NATS_TEST_URL; those that stop and restart
# one start their own.
nats_provision
# The cargo tests create their own databases; the server URL must not leak into them.
unset DATABASE_URL
# The scripts' servers publish to NATS only when a check asks for it.
unset NATS_URL

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy --workspace --all-targets --all-features -- -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings
log "cargo test --workspace"
cargo test --workspace --all-targets -- --test-threads 4

log "release build"
cargo build --release --bin approvals
for script in test_api.sh test_events.sh test_ui.sh test_concurrency.sh test_connections.sh test_openapi.sh test_chaos.sh; do
  if [ -x "scripts/$script" ]; then
    log "scripts/$script"
    DATABASE_URL=$PG_ADMIN_URL "scripts/$script"
  fi
done
if [ -x scripts/bench.sh ]; then
  log "scripts/bench.sh --quick"
  DATABASE_URL=$PG_ADMIN_URL scripts/bench.sh --quick
fi
log "all checks passed"
