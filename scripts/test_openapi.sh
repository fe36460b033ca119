#!/usr/bin/env bash
# Conformance fuzzing of the API against its own OpenAPI document with Schemathesis, on the
# release binary: once on a fresh PostgreSQL database (migrated and seeded) and once on the
# in-memory store. Every check runs (server errors, status codes, content types, headers,
# response schemas, negative and positive data, unsupported methods, ...), in every phase:
# the document's examples, the coverage phase, fuzzing, and the stateful phase that follows the
# document's links (from a trigger or an inbox to its steps' approve and reject). Installs
# Schemathesis into a virtual environment under the target directory once, and reuses it.
# Reports (JUnit) go to target/schemathesis/. Prints one line per store and
# "N passed, M failed" last; exits non-zero when Schemathesis found a failure.
#
# Examples per operation: scripts/schemathesis.toml (40, and 150 walks in the stateful phase);
# OPENAPI_MAX_EXAMPLES overrides both.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
ROOT=$(pwd)

# The Schemathesis release the run is written against.
SCHEMATHESIS_VERSION=4.32.5
examples=()
[ -n "${OPENAPI_MAX_EXAMPLES:-}" ] && examples=(--max-examples "$OPENAPI_MAX_EXAMPLES")

need_tools curl jq psql python3

target_dir
VENV="$TARGET_DIR/schemathesis/venv"
python_venv "$VENV" schemathesis "$SCHEMATHESIS_VERSION"

log "cargo build --release --bin approvals (a no-op when up to date)"
cargo build --quiet --release --bin approvals

REPORTS="$TARGET_DIR/schemathesis"
mkdir -p "$REPORTS"
WORK=$(mktemp -d /tmp/approvals-openapi.XXXXXX)
on_exit "rm -rf '$WORK'"

# fuzz STORE BASE_URL: Schemathesis against one server; one check line for the store.
fuzz() {
  local store=$1 base=$2 out="$WORK/$1.out" status=0
  log "schemathesis on the $store store ($base)"
  # --checks all: every check; the README says why none is excluded.
  # Run from the scratch directory: Schemathesis keeps a cache (.schemathesis/) where it runs.
  (cd "$WORK" && "$VENV/bin/schemathesis" --config-file "$ROOT/scripts/schemathesis.toml" \
    run "$base/api/v1/openapi.json" \
    --url "$base" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    "${examples[@]}" \
    --workers 1 \
    --request-timeout 10 \
    --suppress-health-check too_slow,filter_too_much \
    --report junit --report-junit-path "$REPORTS/junit-$store.xml" \
    --no-color) 2>&1 | tee "$out" || status=$?
  # The summary: "Test cases:" then "N generated, ...".
  local cases
  cases=$(grep -Eo '^ *[0-9]+ generated' "$out" | grep -Eo '[0-9]+' | head -n 1 || true)
  log "$store: ${cases:-?} test cases generated"
  CASES_TOTAL=$((CASES_TOTAL + ${cases:-0}))
  check "schemathesis finds no failure on the $store store (${cases:-?} cases)" 0 "$status"
  # The walk reached the decisions: the server counted approvals it applied, and rejections
  # asked for (applied or refused: the stateful walk rarely applies one; see the README).
  local metrics approved rejects
  metrics=$(curl -fsS "$base/metrics")
  approved=$(sample "$metrics" 'approvals_decisions_total{verdict="approve",status="200"}')
  rejects=$(printf '%s\n' "$metrics" | grep -F 'approvals_decisions_total{verdict="reject",' \
    | awk '{sum += $2} END {printf "%d", sum}')
  log "$store: $approved approvals applied, $rejects rejections asked for"
  check "the fuzzer applied approvals on the $store store" yes "$([ "$approved" -gt 0 ] && echo yes || echo no)"
  check "the fuzzer reached reject on the $store store" yes "$([ "$rejects" -gt 0 ] && echo yes || echo no)"
}

# sample TEXT SERIES: the value of one series of a Prometheus exposition, 0 when absent.
sample() {
  local value
  value=$(printf '%s\n' "$1" | grep -F "$2 " | awk '{print $2}' | head -n 1)
  printf '%d' "${value:-0}"
}
CASES_TOTAL=0

pg_provision
pg_create_db approvals_openapi
log "migrating and seeding $DB_NAME"
DATABASE_URL=$DB_URL RUST_LOG=warn "$(release_bin approvals)" migrate
DATABASE_URL=$DB_URL RUST_LOG=warn "$(release_bin approvals)" seed
PORT=$(free_port)
start_server "$PORT" "$WORK/postgres.log" DATABASE_URL="$DB_URL" RUST_LOG=warn
fuzz postgres "http://127.0.0.1:$PORT"
# Nothing the fuzzer sent may make the server log an error (a 500 is logged as one).
check "no error in the PostgreSQL server's log" 0 "$(grep -c '"ERROR"\| ERROR ' "$WORK/postgres.log" || true)"

PORT=$(free_port)
start_server "$PORT" "$WORK/memory.log" -u DATABASE_URL RUST_LOG=warn
fuzz memory "http://127.0.0.1:$PORT"
check "no error in the in-memory server's log" 0 "$(grep -c '"ERROR"\| ERROR ' "$WORK/memory.log" || true)"

log "$CASES_TOTAL test cases in all; JUnit reports in $REPORTS"
check_summary
