#!/usr/bin/env bash
# Races many approvers on one step across two server processes sharing one fresh database, and
# checks that the database decides each step exactly once. In each round a psql session holds
# the instance's row lock while the racers queue behind it, then lets them all go at once.
# Cancel rounds race the initiator's cancel against approvals of the last step: one outcome.
# Quorum rounds race every racer's approval of a step that needs 3: exactly 3 count.
# Prints one line per check and "N passed, M failed" last; exits non-zero when a check fails.
# Uses $DATABASE_URL (or a local/private server, see lib.sh) only to create and drop its own
# database; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
# shellcheck source=scripts/invariants.sh
source scripts/invariants.sh

ROUNDS=5         # approval-only rounds
MIXED_ROUNDS=2   # approvals and rejections racing
CANCEL_ROUNDS=2  # the initiator cancelling while approvals of the last step race
QUORUM_ROUNDS=2  # approvals of a quorum-3 step racing
QUORUM=3
RACERS=60        # concurrent decisions per round, spread over both servers
QUEUE_TIMEOUT=15 # seconds to wait for the racers to queue on the lock
MAX_POOL=40      # connections per server at most

need_tools curl jq psql
pg_provision
pg_create_db approvals_race

sql() { psql "$DB_URL" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }

# Every racer holds a pooled connection while it waits on the lock, so each server needs about
# half the racers plus a few; the server must have room for both pools and our psql sessions.
max_conn=$(sql "SELECT current_setting('max_connections')::int
                       - current_setting('superuser_reserved_connections')::int")
in_use=$(sql "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
POOL=$(( (max_conn - in_use - 6) / 2 ))
[ "$POOL" -gt "$MAX_POOL" ] && POOL=$MAX_POOL
need=$(( RACERS / 2 + 4 ))
[ "$POOL" -ge "$need" ] \
  || die "PostgreSQL has $((max_conn - in_use)) free connections (max_connections $max_conn, $in_use in use); two pools of $need are needed"
log "pool size $POOL per server (max_connections $max_conn, $in_use in use)"

log "cargo build --release --bin approvals (a no-op when up to date)"
cargo build --quiet --release --bin approvals
target_dir

log "migrating and seeding $DB_NAME"
DATABASE_URL=$DB_URL RUST_LOG=warn "$(release_bin approvals)" migrate
DATABASE_URL=$DB_URL RUST_LOG=warn "$(release_bin approvals)" seed
# Racers 101..100+RACERS hold sales_manager (step 1 of a booking cancellation) before any
# instance is triggered: eligibility is a snapshot taken at trigger time.
sql "INSERT INTO users (id, name) SELECT g, 'Racer ' || g FROM generate_series(101, 100 + $RACERS) g;
     INSERT INTO user_roles (role, user_id) SELECT 'sales_manager', g FROM generate_series(101, 100 + $RACERS) g;"

WORK=$(mktemp -d /tmp/approvals-race.XXXXXX)
on_exit "rm -rf '$WORK'"
PORTS=()
for n in 1 2; do
  port=$(free_port)
  log "starting server $n on port $port (log: $WORK/server$n.log)"
  start_server "$port" "$WORK/server$n.log" DATABASE_URL="$DB_URL" DATABASE_POOL_SIZE="$POOL" RUST_LOG=warn
  PORTS+=("$port")
done

# The lock holder: one psql session fed through a fifo, kept open for the whole run.
mkfifo "$WORK/locker.in"
PGAPPNAME=race_locker psql "$DB_URL" -qAtX <"$WORK/locker.in" >"$WORK/locker.out" 2>&1 &
LOCKER_PID=$!
on_exit "kill $LOCKER_PID 2>/dev/null; wait $LOCKER_PID 2>/dev/null"
exec 3>"$WORK/locker.in"
on_exit "exec 3>&-"

# wait_for SECONDS SQL EXPECTED: polls until SQL returns EXPECTED (or more); prints the last value.
wait_for() {
  local deadline=$((SECONDS + $1)) value
  while :; do
    value=$(sql "$2")
    if [ "$value" -ge "$3" ] || [ "$SECONDS" -ge "$deadline" ]; then
      printf '%s' "$value"
      return
    fi
    sleep 0.05
  done
}

hold_lock() {
  printf 'BEGIN;\nSELECT id FROM workflow_instances WHERE id = %s FOR UPDATE;\n' "$1" >&3
  local held
  held=$(wait_for 10 "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'race_locker'
                      AND datname = current_database() AND state = 'idle in transaction'
                      AND query LIKE '%FOR UPDATE%'" 1)
  [ "$held" -ge 1 ] || die "the psql session did not get the lock on instance $1: $(cat "$WORK/locker.out")"
}
release_lock() { printf 'COMMIT;\n' >&3; }

# fire OUT PORT STEP KIND USER: one decision; the status goes to OUT.status, the body to OUT.body.
fire() {
  local out=$1 port=$2 step=$3 kind=$4 user=$5 body
  if [ "$kind" = approve ]; then
    body="{\"acted_by_user_id\":$user,\"comment\":\"approved by $user\"}"
  else
    body="{\"acted_by_user_id\":$user,\"comment\":\"rejected by $user\"}"
  fi
  curl -s -o "$out.body" -w '%{http_code}' --max-time 25 -H 'Content-Type: application/json' \
    --data-binary "$body" "http://127.0.0.1:$port/api/v1/workflow/steps/$step/$kind" \
    >"$out.status" 2>/dev/null || true
}

trigger() { # ENTITY_ID [EVENT]: creates a booking cancellation (or EVENT); sets INST, STEP1, STEP2.
  local resp
  resp=$(curl -sS --max-time 10 -H 'Content-Type: application/json' \
    --data-binary "{\"event\":\"${2:-booking.cancellation_requested}\",\"entity_type\":\"booking\",\"entity_id\":$1,\"initiated_by\":3}" \
    "http://127.0.0.1:${PORTS[0]}/api/v1/workflow/instances")
  INST=$(jq -r '.id // empty' <<<"$resp")
  STEP1=$(jq -r '.steps[0].id // empty' <<<"$resp")
  STEP2=$(jq -r '.steps[1].id // empty' <<<"$resp")
  if [ -z "$INST" ] || [ -z "$STEP1" ] || [ -z "$STEP2" ]; then
    die "triggering booking $1 failed: $resp"
  fi
}

# race LABEL MODE: one round on a fresh instance. MODE approve: every racer approves; mixed-0
# and mixed-1: approvals and rejections alternate, the first racer approving (mixed-0) or
# rejecting (mixed-1). Sets WIN_KIND and WIN_USER (empty: no winner).
race() {
  local label=$1 mode=$2 dir i kind user pids=() queued
  trigger "$ENTITY"
  ENTITY=$((ENTITY + 1))
  dir="$WORK/$label"
  mkdir -p "$dir"
  check "$label: instance $INST step 1 eligible for all $RACERS racers" "$RACERS" \
    "$(sql "SELECT cardinality(eligible_user_ids) - 1 FROM workflow_instance_steps WHERE id = $STEP1")"
  hold_lock "$INST"
  for ((i = 1; i <= RACERS; i++)); do
    kind=approve
    [ "$mode" = "mixed-$((i % 2))" ] && kind=reject
    user=$((100 + i))
    printf '%s %s\n' "$kind" "$user" >"$dir/$i.who"
    fire "$dir/$i" "${PORTS[$((i % 2))]}" "$STEP1" "$kind" "$user" &
    pids+=($!)
  done
  queued=$(wait_for "$QUEUE_TIMEOUT" "SELECT count(*) FROM pg_stat_activity
                                       WHERE datname = current_database() AND wait_event_type = 'Lock'" "$RACERS")
  check "$label: all $RACERS racers queued on the lock" "$RACERS" "$queued"
  release_lock
  wait "${pids[@]}"

  local n200=0 n409=0 n5xx=0 n000=0 other=0 status code
  WIN_KIND="" WIN_USER=""
  for ((i = 1; i <= RACERS; i++)); do
    status=$(cat "$dir/$i.status" 2>/dev/null || true)
    case "${status:-000}" in
      200)
        n200=$((n200 + 1))
        read -r WIN_KIND WIN_USER <"$dir/$i.who"
        ;;
      409)
        code=$(jq -r '.error.code' "$dir/$i.body" 2>/dev/null || true)
        if [ "$code" = step_not_actionable ]; then n409=$((n409 + 1)); else other=$((other + 1)); fi
        ;;
      5??) n5xx=$((n5xx + 1)) ;;
      000) n000=$((n000 + 1)) ;;
      *) other=$((other + 1)) ;;
    esac
  done
  check "$label: exactly one 200" 1 "$n200"
  check "$label: every other response is 409 step_not_actionable" $((RACERS - 1)) "$n409"
  check "$label: no 5xx" 0 "$n5xx"
  check "$label: no timeouts" 0 "$n000"
  check "$label: no other status" 0 "$other"
  check "$label: one decision audit entry for step 1" 1 \
    "$(sql "SELECT count(*) FROM workflow_audit_log WHERE step_id = $STEP1 AND action IN ('step_approved', 'step_rejected')")"
}

ENTITY=1001

for ((round = 1; round <= ROUNDS; round++)); do
  label="round $round"
  log "$label: $RACERS approvals of one step over two servers"
  race "$label" approve
  check "$label: the winner approved step 1" "approved $WIN_USER" \
    "$(sql "SELECT status || ' ' || coalesce(acted_by_user_id::text, '') FROM workflow_instance_steps WHERE id = $STEP1")"
  check "$label: one step_approved audit entry, by the winner" "1 $WIN_USER" \
    "$(sql "SELECT count(*) || ' ' || coalesce(max(actor_user_id)::text, '') FROM workflow_audit_log
            WHERE step_id = $STEP1 AND action = 'step_approved'")"
  check "$label: step 2 activated once" 1 \
    "$(sql "SELECT count(*) FROM workflow_audit_log WHERE step_id = $STEP2 AND action = 'step_activated'")"
  check "$label: step 2 awaiting_action, instance in_progress" "awaiting_action in_progress" \
    "$(sql "SELECT s.status || ' ' || i.status FROM workflow_instance_steps s
            JOIN workflow_instances i ON i.id = s.instance_id WHERE s.id = $STEP2")"
done

for ((round = 1; round <= MIXED_ROUNDS; round++)); do
  label="mixed round $round"
  log "$label: $((RACERS / 2)) approvals and $((RACERS / 2)) rejections of one step"
  race "$label" "mixed-$((round % 2))"
  log "$label: the winning decision: ${WIN_KIND:-none} by user ${WIN_USER:-none}"
  state=$(sql "SELECT i.status || ' ' || (i.completed_at IS NOT NULL) || ' ' || s1.status || ' '
                      || coalesce(s1.acted_by_user_id::text, '-') || ' ' || coalesce(s1.comment, '-') || ' ' || s2.status
               FROM workflow_instances i
               JOIN workflow_instance_steps s1 ON s1.id = $STEP1
               JOIN workflow_instance_steps s2 ON s2.id = $STEP2
               WHERE i.id = $INST")
  if [ "$WIN_KIND" = reject ]; then
    check "$label: the reject won: instance rejected, step 1 rejected with its comment, step 2 cancelled" \
      "rejected true rejected $WIN_USER rejected by $WIN_USER cancelled" "$state"
    check "$label: one instance_rejected audit entry" 1 \
      "$(sql "SELECT count(*) FROM workflow_audit_log WHERE instance_id = $INST AND action = 'instance_rejected'")"
  else
    check "$label: the approve won: instance in_progress, step 1 approved with its comment, step 2 awaiting_action" \
      "in_progress false approved $WIN_USER approved by $WIN_USER awaiting_action" "$state"
    check "$label: step 2 activated once" 1 \
      "$(sql "SELECT count(*) FROM workflow_audit_log WHERE step_id = $STEP2 AND action = 'step_activated'")"
  fi
done

# cancel_race LABEL CANCEL_AT: one round on a fresh instance at its last step (step 1 approved
# first): RACERS-1 approvals of step 2 by its approver (user 2) and, as racer CANCEL_AT, the
# initiator's (user 3) cancel, all queued on the held instance lock, over both servers. Sets
# WIN_KIND (approve or cancel; empty: no winner).
cancel_race() {
  local label=$1 cancel_at=$2 dir i pids=() queued resp
  trigger "$ENTITY"
  ENTITY=$((ENTITY + 1))
  dir="$WORK/$label"
  mkdir -p "$dir"
  resp=$(curl -sS --max-time 10 -H 'Content-Type: application/json' \
    --data-binary '{"acted_by_user_id":101}' "http://127.0.0.1:${PORTS[1]}/api/v1/workflow/steps/$STEP1/approve")
  check "$label: instance $INST at its last step" "in_progress awaiting_action" \
    "$(jq -r '"\(.status) \(.steps[1].status)"' <<<"$resp")"
  hold_lock "$INST"
  for ((i = 1; i <= RACERS; i++)); do
    if [ "$i" -eq "$cancel_at" ]; then
      # The lock queue is first come, first served: the cancel joins it after every earlier
      # racer has, so that the rounds see it win (queued first) and lose (queued last).
      if [ "$i" -gt 1 ]; then
        queued=$(wait_for "$QUEUE_TIMEOUT" "SELECT count(*) FROM pg_stat_activity
                                             WHERE datname = current_database() AND wait_event_type = 'Lock'" $((i - 1)))
        check "$label: the $((i - 1)) racers before the cancel queued" $((i - 1)) "$queued"
      fi
      echo cancel >"$dir/$i.who"
      curl -s -o "$dir/$i.body" -w '%{http_code}' --max-time 25 -H 'Content-Type: application/json' \
        --data-binary '{"acted_by_user_id":3,"reason":"withdrawn during the race"}' \
        "http://127.0.0.1:${PORTS[$((i % 2))]}/api/v1/workflow/instances/$INST/cancel" \
        >"$dir/$i.status" 2>/dev/null &
    else
      echo approve >"$dir/$i.who"
      fire "$dir/$i" "${PORTS[$((i % 2))]}" "$STEP2" approve 2 &
    fi
    pids+=($!)
    if [ "$i" -eq "$cancel_at" ]; then
      queued=$(wait_for "$QUEUE_TIMEOUT" "SELECT count(*) FROM pg_stat_activity
                                           WHERE datname = current_database() AND wait_event_type = 'Lock'" "$i")
      check "$label: the cancel queued as racer $i" "$i" "$queued"
    fi
  done
  queued=$(wait_for "$QUEUE_TIMEOUT" "SELECT count(*) FROM pg_stat_activity
                                       WHERE datname = current_database() AND wait_event_type = 'Lock'" "$RACERS")
  check "$label: all $RACERS racers queued on the lock" "$RACERS" "$queued"
  release_lock
  wait "${pids[@]}" || true

  local n200=0 n409=0 n5xx=0 n000=0 other=0 status code who expected
  WIN_KIND=""
  for ((i = 1; i <= RACERS; i++)); do
    status=$(cat "$dir/$i.status" 2>/dev/null || true)
    who=$(cat "$dir/$i.who")
    case "${status:-000}" in
      200)
        n200=$((n200 + 1))
        WIN_KIND=$who
        ;;
      409)
        code=$(jq -r '.error.code' "$dir/$i.body" 2>/dev/null || true)
        expected=step_not_actionable
        [ "$who" = cancel ] && expected=instance_not_active
        if [ "$code" = "$expected" ]; then n409=$((n409 + 1)); else other=$((other + 1)); fi
        ;;
      5??) n5xx=$((n5xx + 1)) ;;
      000) n000=$((n000 + 1)) ;;
      *) other=$((other + 1)) ;;
    esac
  done
  check "$label: exactly one 200" 1 "$n200"
  check "$label: every other response is 409 (step_not_actionable, or instance_not_active for the cancel)" \
    $((RACERS - 1)) "$n409"
  check "$label: no 5xx" 0 "$n5xx"
  check "$label: no timeouts" 0 "$n000"
  check "$label: no other status" 0 "$other"
  check "$label: one ending audit entry for the instance" 1 \
    "$(sql "SELECT count(*) FROM workflow_audit_log WHERE instance_id = $INST
            AND action IN ('instance_approved', 'instance_rejected', 'instance_cancelled')")"
  check "$label: one outcome event in the outbox for the instance" 1 \
    "$(sql "SELECT count(*) FROM workflow_callback_outbox WHERE instance_id = $INST AND kind LIKE 'on\_%'")"
  check "$label: step 2 left the inbox" 0 \
    "$(sql "SELECT count(*) FROM workflow_inbox WHERE step_id = $STEP2")"
}

for ((round = 1; round <= CANCEL_ROUNDS; round++)); do
  label="cancel round $round"
  # The cancel queues first in odd rounds, last in even ones.
  cancel_at=$RACERS
  [ $((round % 2)) -eq 1 ] && cancel_at=1
  log "$label: the initiator's cancel and $((RACERS - 1)) approvals of the last step over two servers"
  cancel_race "$label" "$cancel_at"
  log "$label: the winning request: ${WIN_KIND:-none}"
  state=$(sql "SELECT i.status || ' ' || (i.completed_at IS NOT NULL) || ' ' || s1.status || ' ' || s2.status || ' '
                      || coalesce(s2.acted_by_user_id::text, '-') || ' '
                      || (SELECT count(*) FROM workflow_audit_log a WHERE a.step_id = $STEP2 AND a.action = 'step_approved') || ' '
                      || (SELECT string_agg(kind, ',') FROM workflow_callback_outbox o WHERE o.instance_id = $INST AND o.kind LIKE 'on\_%')
               FROM workflow_instances i
               JOIN workflow_instance_steps s1 ON s1.id = $STEP1
               JOIN workflow_instance_steps s2 ON s2.id = $STEP2
               WHERE i.id = $INST")
  if [ "$WIN_KIND" = cancel ]; then
    check "$label: the cancel won: instance cancelled, step 1 kept approved, step 2 cancelled, no approval, on_cancelled" \
      "cancelled true approved cancelled - 0 on_cancelled" "$state"
    check "$label: the cancel is audited as the initiator's, with its reason" "3 withdrawn during the race" \
      "$(sql "SELECT actor_user_id || ' ' || comment FROM workflow_audit_log WHERE instance_id = $INST AND action = 'instance_cancelled'")"
  else
    check "$label: an approval won: instance approved, both steps approved once, on_approved" \
      "approved true approved approved 2 1 on_approved" "$state"
  fi
done

# A template whose first step needs QUORUM of the sales managers (every racer is one), then
# user 2: the racers all approve step 1 at once and exactly QUORUM of them count.
resp=$(curl -sS --max-time 10 -H 'Content-Type: application/json' \
  --data-binary "{\"name\":\"Board review\",\"event\":\"booking.board_review_requested\",\"entity_type\":\"booking\",
                  \"steps\":[{\"name\":\"Sales managers\",\"approver\":{\"type\":\"role\",\"role\":\"sales_manager\"},\"quorum\":$QUORUM},
                             {\"name\":\"Finance\",\"approver\":{\"type\":\"user\",\"user_id\":2}}]}" \
  "http://127.0.0.1:${PORTS[0]}/api/v1/workflow/templates")
check "the quorum template is created with quorum $QUORUM" "$QUORUM" "$(jq -r '.steps[0].quorum' <<<"$resp")"

# quorum_race LABEL: every racer approves step 1 of a fresh quorum instance, all queued on the
# held instance lock, over both servers.
quorum_race() {
  local label=$1 dir i user pids=() queued
  trigger "$ENTITY" booking.board_review_requested
  ENTITY=$((ENTITY + 1))
  dir="$WORK/$label"
  mkdir -p "$dir"
  hold_lock "$INST"
  for ((i = 1; i <= RACERS; i++)); do
    user=$((100 + i))
    echo "$user" >"$dir/$i.who"
    fire "$dir/$i" "${PORTS[$((i % 2))]}" "$STEP1" approve "$user" &
    pids+=($!)
  done
  queued=$(wait_for "$QUEUE_TIMEOUT" "SELECT count(*) FROM pg_stat_activity
                                       WHERE datname = current_database() AND wait_event_type = 'Lock'" "$RACERS")
  check "$label: all $RACERS racers queued on the lock" "$RACERS" "$queued"
  release_lock
  wait "${pids[@]}"

  local n200=0 n409=0 n5xx=0 n000=0 other=0 status code winners=()
  for ((i = 1; i <= RACERS; i++)); do
    status=$(cat "$dir/$i.status" 2>/dev/null || true)
    case "${status:-000}" in
      200)
        n200=$((n200 + 1))
        winners+=("$(cat "$dir/$i.who")")
        ;;
      409)
        code=$(jq -r '.error.code' "$dir/$i.body" 2>/dev/null || true)
        if [ "$code" = step_not_actionable ]; then n409=$((n409 + 1)); else other=$((other + 1)); fi
        ;;
      5??) n5xx=$((n5xx + 1)) ;;
      000) n000=$((n000 + 1)) ;;
      *) other=$((other + 1)) ;;
    esac
  done
  check "$label: exactly $QUORUM answered 200" "$QUORUM" "$n200"
  check "$label: every other response is 409 step_not_actionable" $((RACERS - QUORUM)) "$n409"
  check "$label: no 5xx" 0 "$n5xx"
  check "$label: no timeouts" 0 "$n000"
  check "$label: no other status" 0 "$other"
  check "$label: the step records exactly the answered approvals" \
    "$(printf '%s\n' "${winners[@]}" | sort -n | paste -sd, -)" \
    "$(sql "SELECT string_agg(e->>'user_id', ',' ORDER BY (e->>'user_id')::int)
            FROM workflow_instance_steps, jsonb_array_elements(approvals) e WHERE id = $STEP1")"
  check "$label: $QUORUM approval_recorded audit entries" "$QUORUM" \
    "$(sql "SELECT count(*) FROM workflow_audit_log WHERE step_id = $STEP1 AND action = 'approval_recorded'")"
  check "$label: step 1 approved once" "1 approved" \
    "$(sql "SELECT (SELECT count(*) FROM workflow_audit_log WHERE step_id = $STEP1 AND action = 'step_approved')
                   || ' ' || (SELECT status FROM workflow_instance_steps WHERE id = $STEP1)")"
  check "$label: step 2 activated once, awaiting_action" "1 awaiting_action" \
    "$(sql "SELECT (SELECT count(*) FROM workflow_audit_log WHERE step_id = $STEP2 AND action = 'step_activated')
                   || ' ' || (SELECT status FROM workflow_instance_steps WHERE id = $STEP2)")"
  check "$label: the audit trail verifies" true \
    "$(curl -sS --max-time 10 "http://127.0.0.1:${PORTS[1]}/api/v1/workflow/instances/$INST/audit/verify" | jq -r .valid)"
}

for ((round = 1; round <= QUORUM_ROUNDS; round++)); do
  label="quorum round $round"
  log "$label: $RACERS approvals of a quorum-$QUORUM step over two servers"
  quorum_race "$label"
done

check_invariants

for n in 1 2; do
  grep -q 'panicked' "$WORK/server$n.log" && panicked=yes || panicked=no
  check "server $n log has no panic" no "$panicked"
done

check_summary
