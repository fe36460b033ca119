# shellcheck shell=bash
# Shared helpers for the project's scripts; source it, don't run it.
# Provides: log, die, need_tools, target_dir (sets TARGET_DIR), release_bin, pg_provision (sets
# PG_ADMIN_URL), pg_private, pg_private_ctl, pg_url_for, on_exit, pg_create_db, nats_provision
# (exports NATS_TEST_URL), nats_private, start_server, python_venv, free_port, check,
# check_summary.

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Cleanup actions run in reverse order of registration when the script exits, however it exits.
_cleanups=()
on_exit() { _cleanups+=("$1"); }
_run_cleanups() {
  local status=$?
  local i
  for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
    eval "${_cleanups[$i]}" || true
  done
  exit "$status"
}
trap _run_cleanups EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

_apt_updated=0
_apt_install() {
  if [ "$(id -u)" -ne 0 ]; then
    die "missing $*; install it (Debian package: $*) or run this script as root"
  fi
  command -v apt-get >/dev/null || die "missing $* and no apt-get to install it"
  if [ "$_apt_updated" -eq 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    _apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# need_tools TOOL...: installs the Debian package of each missing tool (as root), else stops.
need_tools() {
  local tool pkg
  for tool in "$@"; do
    command -v "$tool" >/dev/null && continue
    case "$tool" in
      psql | pg_isready) pkg=postgresql-client ;;
      pgbench) pkg=postgresql ;;
      *) pkg=$tool ;;
    esac
    _apt_install "$pkg"
    command -v "$tool" >/dev/null || die "$tool is still missing after installing $pkg"
  done
}

# target_dir: sets TARGET_DIR to cargo's target directory, asking cargo the first time only.
# It is ./target only by default: CARGO_TARGET_DIR or a cargo config can put it anywhere.
TARGET_DIR=""
target_dir() {
  [ -n "$TARGET_DIR" ] && return
  need_tools jq
  TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
  [ -n "$TARGET_DIR" ] && [ "$TARGET_DIR" != null ] || die "cargo metadata named no target directory"
}

# release_bin NAME: prints the path of the release build of binary NAME. Call target_dir first
# in the script itself: inside $(...) a TARGET_DIR found here would be lost with the subshell.
release_bin() {
  target_dir
  printf '%s/release/%s' "$TARGET_DIR" "$1"
}

# pg_url_for URL NAME: the URL of database NAME on the server of URL.
pg_url_for() {
  local url=$1 name=$2 base query=""
  base=${url%%\?*}
  [ "$base" != "$url" ] && query="?${url#*\?}"
  printf '%s/%s%s' "${base%/*}" "$name" "$query"
}

_pg_answers() { psql "$1" -Atqc 'SELECT 1' >/dev/null 2>&1; }

# The version directories are plain numbers, so ls | sort -V is safe here.
# shellcheck disable=SC2012
_pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
    _apt_install postgresql
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  fi
  [ -x "$dir/initdb" ] || die "no PostgreSQL server binaries found under /usr/lib/postgresql"
  printf '%s' "$dir"
}

# pg_provision: finds or starts a PostgreSQL server and sets PG_ADMIN_URL to a database on it
# that may be used to create and drop others. Order: $DATABASE_URL if set, else a server on
# 127.0.0.1:5432 if one answers, else a private cluster started here and removed on exit.
pg_provision() {
  need_tools psql
  if [ -n "${DATABASE_URL:-}" ]; then
    _pg_answers "$DATABASE_URL" || die "DATABASE_URL is set but the database does not answer"
    PG_ADMIN_URL=$DATABASE_URL
    log "using PostgreSQL from DATABASE_URL"
    return
  fi
  if _pg_answers "postgres://postgres@127.0.0.1:5432/postgres"; then
    PG_ADMIN_URL="postgres://postgres@127.0.0.1:5432/postgres"
    log "using PostgreSQL on 127.0.0.1:5432"
    return
  fi
  pg_private
}

# pg_private: starts a private PostgreSQL cluster, removed on exit, and sets PG_ADMIN_URL to it;
# pg_private_ctl ARGS... runs its pg_ctl (e.g. `pg_private_ctl -m fast -w restart`).
PG_PRIVATE_DIR=""
_pg_run_as=(env)
pg_private() {
  local bin port
  bin=$(_pg_bin)
  PG_PRIVATE_DIR=$(mktemp -d /tmp/approvals-pg.XXXXXX)
  _PG_CTL="$bin/pg_ctl"
  port=$(free_port)
  if [ "$(id -u)" -eq 0 ]; then
    # initdb refuses to run as root: the cluster belongs to the postgres user.
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
    chown postgres "$PG_PRIVATE_DIR"
    _pg_run_as=(runuser -u postgres --)
  fi
  log "starting a private PostgreSQL cluster in $PG_PRIVATE_DIR on port $port"
  "${_pg_run_as[@]}" "$bin/initdb" -D "$PG_PRIVATE_DIR/data" -U postgres --auth=trust -E UTF8 \
    >"$PG_PRIVATE_DIR/initdb.log" 2>&1 || { cat "$PG_PRIVATE_DIR/initdb.log" >&2; die "initdb failed"; }
  on_exit "${_pg_run_as[*]} '$_PG_CTL' -D '$PG_PRIVATE_DIR/data' -m immediate -w stop >/dev/null 2>&1; rm -rf '$PG_PRIVATE_DIR'"
  pg_private_ctl -l "$PG_PRIVATE_DIR/server.log" -w \
    -o "-p $port -k $PG_PRIVATE_DIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off" start >/dev/null \
    || { cat "$PG_PRIVATE_DIR/server.log" >&2; die "the private PostgreSQL cluster did not start"; }
  PG_ADMIN_URL="postgres://postgres@127.0.0.1:$port/postgres"
}
pg_private_ctl() { "${_pg_run_as[@]}" "$_PG_CTL" -D "$PG_PRIVATE_DIR/data" "$@"; }

# _nats_answers URL: whether a NATS server with JetStream answers at URL (the first address of a
# comma-separated list; nats://, tls:// or host:port): its greeting (INFO) says jetstream.
_nats_answers() {
  local addr=${1%%,*} host port
  addr=${addr#*://}
  addr=${addr##*@}
  addr=${addr%%/*}
  if [[ $addr == *:* ]]; then
    host=${addr%:*} port=${addr##*:}
  else
    host=$addr port=4222
  fi
  timeout 3 bash -c "exec 3<>/dev/tcp/$host/$port && head -n 1 <&3" 2>/dev/null |
    grep -q '"jetstream":true'
}

# _nats_bin: the nats-server binary (Debian installs it in /usr/sbin, often not on PATH).
_nats_bin() {
  local bin
  bin=$(command -v nats-server || true)
  if [ -z "$bin" ] && [ -x /usr/sbin/nats-server ]; then
    bin=/usr/sbin/nats-server
  fi
  if [ -z "$bin" ]; then
    _apt_install nats-server
    bin=$(command -v nats-server || printf '/usr/sbin/nats-server')
  fi
  [ -x "$bin" ] || die "nats-server is still missing after installing the nats-server package"
  printf '%s' "$bin"
}

# nats_provision: finds or starts a NATS server with JetStream and exports NATS_TEST_URL (for
# the cargo tests that may share a server). Order: $NATS_URL if set, else a server on
# 127.0.0.1:4222 (NATS_LOCAL_URL overrides that address) if one answers, else a private
# `nats-server -js` on a free port with a temporary store, stopped and removed on exit.
nats_provision() {
  local local_url=${NATS_LOCAL_URL:-nats://127.0.0.1:4222}
  if [ -n "${NATS_URL:-}" ]; then
    _nats_answers "$NATS_URL" || die "NATS_URL is set but no NATS server with JetStream answers there"
    NATS_TEST_URL=$NATS_URL
    log "using NATS from NATS_URL"
  elif _nats_answers "$local_url"; then
    NATS_TEST_URL=$local_url
    log "using NATS on $local_url"
  else
    nats_private
  fi
  export NATS_TEST_URL
}

# nats_private: starts a private `nats-server -js`, stopped and removed on exit, and sets
# NATS_TEST_URL to it.
nats_private() {
  local bin dir port pid i
  bin=$(_nats_bin)
  [ -n "$bin" ] || exit 1
  dir=$(mktemp -d /tmp/approvals-nats.XXXXXX)
  port=$(free_port)
  log "starting a private nats-server -js in $dir on port $port"
  "$bin" -js -a 127.0.0.1 -p "$port" -sd "$dir/store" >"$dir/server.log" 2>&1 &
  pid=$!
  on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf '$dir'"
  NATS_TEST_URL="nats://127.0.0.1:$port"
  for i in $(seq 1 100); do
    _nats_answers "$NATS_TEST_URL" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$dir/server.log" >&2
  die "the private nats-server did not start"
}

# pg_create_db PREFIX: creates a uniquely named database, drops it on exit; sets DB_NAME, DB_URL.
pg_create_db() {
  DB_NAME="${1}_$$_$(date +%s%N)"
  psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $DB_NAME" >/dev/null
  on_exit "psql '$PG_ADMIN_URL' -qc 'DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)' >/dev/null 2>&1"
  # shellcheck disable=SC2034 # for the caller
  DB_URL=$(pg_url_for "$PG_ADMIN_URL" "$DB_NAME")
  log "created database $DB_NAME"
}

# start_server PORT LOGFILE [ENV...]: starts the release binary in the background, stops it
# on exit, waits until /healthz answers; sets SERVER_PID.
start_server() {
  local port=$1 logfile=$2
  shift 2
  target_dir
  env "$@" BIND_ADDR="127.0.0.1:$port" "$(release_bin approvals)" serve >"$logfile" 2>&1 &
  SERVER_PID=$!
  on_exit "kill $SERVER_PID 2>/dev/null; wait $SERVER_PID 2>/dev/null"
  local i
  for i in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$logfile" >&2; die "the server on port $port exited"; }
    sleep 0.1
  done
  cat "$logfile" >&2
  die "the server on port $port did not become healthy"
}

# python_venv DIR PACKAGE VERSION: a Python virtual environment in DIR holding PACKAGE at
# VERSION, made (or made again) only when DIR doesn't hold that version yet.
python_venv() {
  local dir=$1 package=$2 version=$3
  if [ "$("$dir/bin/python" -m pip show "$package" 2>/dev/null | sed -n 's/^Version: //p')" = "$version" ]; then
    log "using $package $version from $dir"
    return
  fi
  # Debian's python3 lacks venv until python3-venv is installed.
  if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then
    _apt_install python3-venv
  fi
  log "creating $dir with $package $version"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$package==$version"
}

# free_port: a TCP port nothing listens on, below the kernel's ephemeral range: a port in that
# range can be the local end of any outgoing connection (to PostgreSQL, say), which no probe
# sees and which makes a later bind fail with "Address already in use".
free_port() {
  local port low=32768 _high
  read -r low _high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
  (( low > 11024 )) || low=32768
  while :; do
    port=$(( 10000 + RANDOM % (low - 10000) ))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { printf '%s' "$port"; return; }
  done
}

# Check bookkeeping for the test scripts: one line per check, a summary line at the end.
CHECKS_PASSED=0
CHECKS_FAILED=0
# check DESCRIPTION EXPECTED ACTUAL: passes when ACTUAL equals EXPECTED.
check() {
  if [ "$2" = "$3" ]; then
    CHECKS_PASSED=$((CHECKS_PASSED + 1))
    printf 'ok   - %s\n' "$1"
  else
    CHECKS_FAILED=$((CHECKS_FAILED + 1))
    printf 'FAIL - %s (expected %s, got %s)\n' "$1" "$2" "$3"
  fi
}
# check_summary: prints "N passed, M failed"; returns non-zero when a check failed.
check_summary() {
  printf '%d passed, %d failed\n' "$CHECKS_PASSED" "$CHECKS_FAILED"
  [ "$CHECKS_FAILED" -eq 0 ]
}
