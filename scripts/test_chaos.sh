#!/usr/bin/env bash
# Faults under load. Two servers share one database on a private PostgreSQL cluster (private so
# that it can be restarted) while workers trigger requests and race decisions on them over both
# servers, each write with an Idempotency-Key and retried with it on 503 or a lost connection, as
# the README tells clients to. Meanwhile: kill -9 of a server (restarted), PostgreSQL restarted
# fast then immediate, and both pools exhausted by requests stuck behind held row locks. Then:
# the SQL invariants, every audit chain verified, every acknowledged write present, and no answer
# but 2xx, 4xx or 503 unavailable/outcome_unknown.
# Prints one line per check and "N passed, M failed" last; exits non-zero when a check fails.
# About 90 s; --long runs the load for about ten minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=scripts/invariants.sh
source scripts/invariants.sh

WORKERS=6      # load loops, each triggering and racing on its own requests
POOL=8         # connections per server: small, so that held locks exhaust it
PHASE=8        # seconds of plain load between two faults
if [ "${1:-}" = --long ]; then
  WORKERS=8
  PHASE=90
fi

need_tools curl jq psql
# Always a private cluster, whatever answers on the usual port: this script restarts it.
pg_private
pg_create_db approvals_chaos
sql() { psql "$DB_URL" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }

log "cargo build --release --bin approvals (a no-op when up to date)"
cargo build --quiet --release --bin approvals
target_dir
DATABASE_URL=$DB_URL RUST_LOG=warn "$(release_bin approvals)" migrate
DATABASE_URL=$DB_URL RUST_LOG=warn "$(release_bin approvals)" seed
# Users 101..103 hold sales_manager (step 1 of a booking cancellation) before any trigger.
sql "INSERT INTO users (id, name) SELECT g, 'Chaos ' || g FROM generate_series(101, 103) g;
     INSERT INTO user_roles (role, user_id) SELECT 'sales_manager', g FROM generate_series(101, 103) g;"

WORK=$(mktemp -d /tmp/approvals-chaos.XXXXXX)
on_exit "rm -rf '$WORK'"
PORTS=("$(free_port)" "$(free_port)")
serve() { # N: (re)starts server N on its port, each run with a log of its own
  start_server "${PORTS[$1]}" "$WORK/server$1.$(date +%s%N).log" DATABASE_URL="$DB_URL" DATABASE_POOL_SIZE="$POOL" RUST_LOG=warn
  echo "$SERVER_PID" >"$WORK/server$1.pid"
}
serve 0
serve 1
log "servers on ports ${PORTS[*]} (logs in $WORK)"

# call TAG KEY METHOD PATH [BODY]: one request, retried with the same Idempotency-Key (up to 40
# times, alternating servers) while the answer is 503 or no answer at all. Every attempt's status
# and error code go to $WORK/attempts.TAG; sets STATUS (final; `unresolved` when retries ran out)
# and BODY.
call() {
  local tag=$1 key=$2 method=$3 path=$4 data=${5:-} attempt port code
  local out="$WORK/resp.$tag"
  for ((attempt = 0; attempt < 40; attempt++)); do
    rm -f "$out"
    port=${PORTS[$(((RANDOM + attempt) % 2))]}
    STATUS=$(curl -s -o "$out" -w '%{http_code}' --max-time 40 -X "$method" \
      -H 'Content-Type: application/json' -H "Idempotency-Key: chaos-$key" \
      ${data:+--data-binary "$data"} "http://127.0.0.1:$port/api/v1/workflow$path" 2>/dev/null) || true
    BODY=$(cat "$out" 2>/dev/null || true)
    code=$(jq -r '.error.code // "-"' <<<"$BODY" 2>/dev/null || echo unparsable)
    [ -n "$code" ] || code=-
    echo "$STATUS $code" >>"$WORK/attempts.$tag"
    case "$STATUS" in
      503 | 000) sleep 0.3 ;;
      *) return 0 ;;
    esac
  done
  STATUS=unresolved
}

# decide TAG KEY STEP VERB USER: a decision through `call`; a 200 is recorded as acknowledged.
decide() {
  local body="{\"acted_by_user_id\":$5,\"comment\":\"$4 by $5\"}"
  call "$1" "$2" POST "/steps/$3/$4" "$body"
  [ "$STATUS" = 200 ] && echo "$4,$3,$5" >>"$WORK/acks.$1"
  [ "$STATUS" = unresolved ] && echo "$4 $3" >>"$WORK/unresolved"
  return 0
}

# worker W: until $WORK/stop exists, triggers a booking cancellation, races three approvals of its
# step 1, then races on step 2: two approvals, or a rejection against the initiator's cancel.
worker() {
  local w=$1 n=0 inst step1 step2 u
  while [ ! -e "$WORK/stop" ]; do
    n=$((n + 1))
    call "w$w" "w$w-$n-trigger" POST /instances \
      "{\"event\":\"booking.cancellation_requested\",\"entity_type\":\"booking\",\"entity_id\":$((w * 1000000 + n)),\"initiated_by\":3}"
    if [ "$STATUS" != 201 ]; then
      echo "trigger w$w-$n: $STATUS $BODY" >>"$WORK/unresolved"
      continue
    fi
    read -r inst step1 step2 < <(jq -r '"\(.id) \(.steps[0].id) \(.steps[1].id)"' <<<"$BODY")
    echo "trigger,$inst,3" >>"$WORK/acks.w$w"
    for u in 101 102 103; do
      decide "w$w-$u" "w$w-$n-s1-$u" "$step1" approve "$u" &
    done
    wait
    if ((n % 2 == 0)); then
      decide "w$w-a" "w$w-$n-s2-a" "$step2" approve 2 &
      decide "w$w-b" "w$w-$n-s2-b" "$step2" approve 2 &
    else
      decide "w$w-a" "w$w-$n-s2-r" "$step2" reject 2 &
      (
        call "w$w-c" "w$w-$n-cancel" POST "/instances/$inst/cancel" '{"acted_by_user_id":3,"reason":"chaos"}'
        [ "$STATUS" = 200 ] && echo "cancel,$inst,3" >>"$WORK/acks.w$w-c"
        [ "$STATUS" = unresolved ] && echo "cancel $inst" >>"$WORK/unresolved"
        true
      ) &
    fi
    wait
  done
}

restarted_servers=0
kill_server() { # N
  local pid
  pid=$(cat "$WORK/server$1.pid")
  log "kill -9 server $1 (pid $pid) under load"
  kill -9 "$pid"
  wait "$pid" 2>/dev/null || true
  sleep 1
  serve "$1"
  restarted_servers=$((restarted_servers + 1))
}
pg_restarts=0
restart_pg() { # MODE
  log "PostgreSQL restart, -m $1, under load"
  pg_private_ctl -m "$1" -w restart >/dev/null
  pg_restarts=$((pg_restarts + 1))
}

# exhaust_pools: three requests' instances locked by a psql session; 20 approvals of their steps
# (over both servers, more than both pools hold) hold every pooled connection while they wait, so the
# load meanwhile gets 503s; the locks go after 8 s.
exhaust_pools() {
  local i inst step locked=() pids=()
  for i in 1 2 3; do
    call held "held-trigger-$i" POST /instances \
      "{\"event\":\"booking.cancellation_requested\",\"entity_type\":\"booking\",\"entity_id\":$((9000000 + i)),\"initiated_by\":3}"
    [ "$STATUS" = 201 ] || die "could not trigger the held instance $i: $STATUS $BODY"
    read -r inst step < <(jq -r '"\(.id) \(.steps[0].id)"' <<<"$BODY")
    echo "trigger,$inst,3" >>"$WORK/acks.held"
    locked+=("$inst:$step")
  done
  log "pools exhausted: 20 approvals wait behind row locks held for 8 s"
  mkfifo "$WORK/locker.in"
  psql "$DB_URL" -qAtX <"$WORK/locker.in" >"$WORK/locker.out" 2>&1 &
  local locker=$!
  exec 3>"$WORK/locker.in"
  printf 'BEGIN;\nSELECT id FROM workflow_instances WHERE id IN (%s) FOR UPDATE;\n' \
    "$(printf '%s\n' "${locked[@]}" | cut -d: -f1 | paste -sd,)" >&3
  sleep 1
  for i in $(seq 1 20); do
    step=${locked[$((i % 3))]#*:}
    decide "held-$i" "held-$i" "$step" approve $((101 + i % 3)) &
    pids+=($!)
  done
  sleep 8
  printf 'COMMIT;\n' >&3
  exec 3>&-
  wait "$locker" 2>/dev/null || true
  wait "${pids[@]}"
}

log "load: $WORKERS workers over both servers"
worker_pids=()
for ((w = 1; w <= WORKERS; w++)); do
  worker "$w" &
  worker_pids+=($!)
done
on_exit "touch '$WORK/stop'; kill ${worker_pids[*]} 2>/dev/null"

sleep "$PHASE"
kill_server 0
sleep "$PHASE"
restart_pg fast
sleep "$PHASE"
restart_pg immediate
sleep "$PHASE"
kill_server 1
sleep "$PHASE"
exhaust_pools
sleep "$PHASE"
touch "$WORK/stop"
log "stopping the load"
wait "${worker_pids[@]}"

log "answers (every attempt, by status and error code):"
cat "$WORK"/attempts.* | sort | uniq -c | sort -rn | sed 's/^/    /' >&2
total=$(cat "$WORK"/attempts.* | wc -l)
answered=$(grep -vc '^000 ' <(cat "$WORK"/attempts.*) || true)
log "$total attempts, $answered answered, $restarted_servers server kills, $pg_restarts PostgreSQL restarts survived"
check "the load made requests through the faults (more than 200 attempts)" yes "$([ "$total" -gt 200 ] && echo yes || echo "no: $total")"
check "no answer but 2xx, 4xx, or 503 unavailable/outcome_unknown" 0 \
  "$(cat "$WORK"/attempts.* | grep -Ecv '^(2[0-9][0-9] -|4[0-9][0-9] .+|503 unavailable|503 outcome_unknown|000 -)$' || true)"
# The load only races decisions against each other and a cancel, so its only refusals are the
# losers' 409s: any other 4xx would be the service (or this script) getting something wrong.
check "the only refusals are the losing racers' 409s" 0 \
  "$(cat "$WORK"/attempts.* | grep -E '^4' | grep -Ecv '^409 (step_not_actionable|instance_not_active)$' || true)"
check "no request left unresolved after its retries, no trigger refused" 0 "$(cat "$WORK/unresolved" 2>/dev/null | wc -l)"
check "some writes met a fault (a 503 or a lost connection, then settled by a retry)" yes \
  "$(grep -Eqh '^(503|000) ' "$WORK"/attempts.* && echo yes || echo no)"

log "acknowledged writes"
cat "$WORK"/acks.* >"$WORK/acks.csv"
sql "CREATE TABLE chaos_acks (kind text, id bigint, user_id bigint)"
psql "$DB_URL" -qAtX -v ON_ERROR_STOP=1 -c "\\copy chaos_acks FROM '$WORK/acks.csv' WITH (FORMAT csv)"
log "$(sql "SELECT string_agg(kind || ' ' || n, ', ') FROM (SELECT kind, count(*) n FROM chaos_acks GROUP BY kind ORDER BY kind) x")"
check "every acknowledged trigger's instance exists, triggered by its initiator" 0 \
  "$(sql "SELECT count(*) FROM chaos_acks a WHERE kind = 'trigger' AND NOT EXISTS
          (SELECT 1 FROM workflow_instances i WHERE i.id = a.id AND i.initiated_by = a.user_id)")"
check "every acknowledged approval is its step's decision, by its approver" 0 \
  "$(sql "SELECT count(*) FROM chaos_acks a WHERE kind = 'approve' AND NOT EXISTS
          (SELECT 1 FROM workflow_instance_steps s WHERE s.id = a.id AND s.status = 'approved' AND s.acted_by_user_id = a.user_id)")"
check "every acknowledged rejection is its step's decision, and its instance is rejected" 0 \
  "$(sql "SELECT count(*) FROM chaos_acks a WHERE kind = 'reject' AND NOT EXISTS
          (SELECT 1 FROM workflow_instance_steps s JOIN workflow_instances i ON i.id = s.instance_id
           WHERE s.id = a.id AND s.status = 'rejected' AND s.acted_by_user_id = a.user_id AND i.status = 'rejected')")"
check "every acknowledged cancel left its instance cancelled" 0 \
  "$(sql "SELECT count(*) FROM chaos_acks a WHERE kind = 'cancel' AND NOT EXISTS
          (SELECT 1 FROM workflow_instances i WHERE i.id = a.id AND i.status = 'cancelled')")"
check "no step acknowledged as decided twice" 0 \
  "$(sql "SELECT count(*) FROM (SELECT id FROM chaos_acks WHERE kind IN ('approve', 'reject')
          GROUP BY id HAVING count(*) > 1) x")"
check "no instance both cancelled and rejected by acknowledged requests" 0 \
  "$(sql "SELECT count(*) FROM chaos_acks c JOIN workflow_instance_steps s ON s.instance_id = c.id
          JOIN chaos_acks r ON r.kind = 'reject' AND r.id = s.id WHERE c.kind = 'cancel'")"
acked=$(sql "SELECT count(*) FROM chaos_acks")
sql "DROP TABLE chaos_acks"

check_invariants

log "verifying every instance's audit chain"
bad_chains=0
chains=0
for inst in $(sql "SELECT id FROM workflow_instances ORDER BY id"); do
  chains=$((chains + 1))
  valid=$(curl -s --max-time 10 "http://127.0.0.1:${PORTS[0]}/api/v1/workflow/instances/$inst/audit/verify" | jq -r '.valid')
  [ "$valid" = true ] || { bad_chains=$((bad_chains + 1)); log "instance $inst: audit chain $valid"; }
done
check "every instance's audit chain verifies ($chains chains)" 0 "$bad_chains"

grep -lq 'panicked' "$WORK"/server*.log && panicked=yes || panicked=no
check "no server log has a panic ($(find "$WORK" -name 'server*.log' | wc -l) runs)" no "$panicked"
log "figures: $total attempts; $restarted_servers kills and $pg_restarts PostgreSQL restarts survived; $INVARIANTS invariants; $acked acknowledged writes verified; $chains chains verified"
check_summary
