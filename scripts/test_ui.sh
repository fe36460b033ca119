#!/usr/bin/env bash
# Browser checks of the approvers' pages (/ui) in real Chromium, driven by Playwright for Python
# (scripts/ui_checks.py), against the release binary: once on a fresh PostgreSQL database and
# once on the in-memory store. Installs Debian's chromium when it is missing (as root) and
# Playwright into a virtual environment under the target directory; the system's chromium is
# used, so nothing downloads a browser of its own. Screenshots go to target/ui-screenshots/.
# Prints one line per check and "N passed, M failed" last; exits non-zero when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# The Playwright release the checks are written against.
PLAYWRIGHT_VERSION=1.65.2

need_tools curl jq psql python3
chromium_bin() { command -v chromium || command -v chromium-browser || true; }
if [ -z "$(chromium_bin)" ]; then
  _apt_install chromium
fi
CHROMIUM=$(chromium_bin)
[ -n "$CHROMIUM" ] || die "chromium is still missing after installing it"
log "using $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"

target_dir
VENV="$TARGET_DIR/ui-venv"
python_venv "$VENV" playwright "$PLAYWRIGHT_VERSION"

log "cargo build --release --bin approvals (a no-op when up to date)"
cargo build --quiet --release --bin approvals

SHOTS="$TARGET_DIR/ui-screenshots"
mkdir -p "$SHOTS"
WORK=$(mktemp -d /tmp/approvals-ui.XXXXXX)
on_exit "rm -rf '$WORK'"

# run_checks STORE BASE_URL: the browser checks against one server; adds their counts to ours.
run_checks() {
  local store=$1 base=$2 counts="$WORK/counts-$1"
  log "browser checks on the $store store ($base)"
  "$VENV/bin/python" scripts/ui_checks.py --base "$base" --store "$store" \
    --chromium "$CHROMIUM" --screenshots "$SHOTS" --counts "$counts" \
    || log "the $store checks stopped early (see above)"
  if [ -s "$counts" ]; then
    read -r passed failed <"$counts"
    CHECKS_PASSED=$((CHECKS_PASSED + passed))
    CHECKS_FAILED=$((CHECKS_FAILED + failed))
  else
    check "the $store checks ran to the end" "yes" "no"
  fi
}

pg_provision
pg_create_db approvals_ui
log "migrating and seeding $DB_NAME"
DATABASE_URL=$DB_URL RUST_LOG=warn "$(release_bin approvals)" migrate
DATABASE_URL=$DB_URL RUST_LOG=warn "$(release_bin approvals)" seed
PORT=$(free_port)
start_server "$PORT" "$WORK/postgres.log" DATABASE_URL="$DB_URL" RUST_LOG=warn
run_checks postgres "http://127.0.0.1:$PORT"

PORT=$(free_port)
start_server "$PORT" "$WORK/memory.log" -u DATABASE_URL RUST_LOG=warn
run_checks memory "http://127.0.0.1:$PORT"

log "screenshots in $SHOTS"
check_summary
