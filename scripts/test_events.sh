#!/usr/bin/env bash
# Events end to end: the release server on a fresh database sends its events as webhooks to a
# small receiver (python3's http.server) that verifies every Standard Webhooks signature and
# fails its first answer for each event (so every event is also retried). It walks the
# README's three business scenarios and a cancellation, then checks that every event arrived,
# each once after de-duplication by webhook-id, and in per-instance sequence order.
# Prints "N passed, M failed".
#
# Usage: scripts/test_events.sh   (DATABASE_URL optional: a database to create others on)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

need_tools curl jq psql python3
pg_provision
pg_create_db approvals_events

log "cargo build --release --bin approvals (a no-op when up to date)"
cargo build --quiet --release --bin approvals
target_dir

log "migrating and seeding $DB_NAME"
DATABASE_URL=$DB_URL RUST_LOG=warn "$(release_bin approvals)" migrate
DATABASE_URL=$DB_URL RUST_LOG=warn "$(release_bin approvals)" seed

WORK=$(mktemp -d /tmp/approvals-events.XXXXXX)
on_exit "rm -rf '$WORK'"

# The receiver: verifies each signature with the secret in $WORK/secret, appends one JSON line
# per request to $WORK/received.jsonl, and answers 500 to the first request of each webhook-id.
cat >"$WORK/receiver.py" <<'PY'
import base64, hashlib, hmac, json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

work, port = sys.argv[1], int(sys.argv[2])
seen = set()

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        msg_id = self.headers.get("webhook-id", "")
        ts = self.headers.get("webhook-timestamp", "")
        try:
            secret = open(f"{work}/secret").read().strip()
            key = base64.b64decode(secret.removeprefix("whsec_"))
            mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
            expected = "v1," + base64.b64encode(mac).decode()
            verified = any(hmac.compare_digest(expected, s)
                           for s in self.headers.get("webhook-signature", "").split())
        except OSError:
            verified = False
        first = msg_id not in seen
        seen.add(msg_id)
        with open(f"{work}/received.jsonl", "a") as out:
            out.write(json.dumps({"id": msg_id, "verified": verified, "first": first,
                                  "event": json.loads(body)}) + "\n")
        self.send_response(500 if first else 204)
        self.end_headers()

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
PY
RECEIVER_PORT=$(free_port)
python3 "$WORK/receiver.py" "$WORK" "$RECEIVER_PORT" &
RECEIVER_PID=$!
on_exit "kill $RECEIVER_PID 2>/dev/null; wait $RECEIVER_PID 2>/dev/null"
touch "$WORK/received.jsonl"
# The receiver must listen before any delivery is tried, or the first tries fail for nothing.
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$RECEIVER_PORT") 2>/dev/null && break
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$RECEIVER_PORT") 2>/dev/null || die "the receiver did not start"

PORT=$(free_port)
log "starting the server on port $PORT (log: $WORK/server.log)"
start_server "$PORT" "$WORK/server.log" DATABASE_URL="$DB_URL" RUST_LOG=warn \
  WEBHOOK_ALLOW_PRIVATE_NETWORKS=true WEBHOOK_RETRY_SCHEDULE=200ms,500ms,1s,2s,5s WEBHOOK_TIMEOUT=5s
BASE="http://127.0.0.1:$PORT"
API="/api/v1/workflow"

call() {
  local method=$1 path=$2
  shift 2
  STATUS=$(curl -sS -o "$WORK/body" -w '%{http_code}' --max-time 10 -X "$method" "$@" "$BASE$path") || true
  STATUS=${STATUS:-000}
}
post_json() { call POST "$1" -H 'Content-Type: application/json' --data-binary "$2"; }
j() { jq -Scr "$1" "$WORK/body" 2>/dev/null || printf '<not JSON>'; }
expect() { check "$1 -> $2" "$2" "$STATUS"; }
step() { j ".steps[$1].id"; }

post_json "$API/subscriptions" "{\"url\":\"http://127.0.0.1:$RECEIVER_PORT/hooks\",\"event_types\":[\"step.awaiting_action\",\"step.overdue\",\"instance.approved\",\"instance.rejected\",\"instance.cancelled\"]}"
expect "subscribe the receiver to every event type" 201
j .secret >"$WORK/secret"

# A booking cancellation, rejected at its second step: 2 notifications and the rejection.
post_json "$API/instances" '{"event":"booking.cancellation_requested","entity_type":"booking","entity_id":2,"initiated_by":3}'
expect "trigger booking 2's cancellation" 201
S1=$(step 0) S2=$(step 1)
post_json "$API/steps/$S1/approve" '{"acted_by_user_id":1,"comment":"Fine by sales"}'
expect "approve its step 1 as user 1" 200
post_json "$API/steps/$S2/reject" '{"acted_by_user_id":2,"comment":"Refund exceeds policy"}'
expect "reject its step 2 as user 2" 200

# A unit price update, approved: 2 notifications and the approval.
post_json "$API/instances" '{"event":"unit.price_update_requested","entity_type":"unit","entity_id":4,"initiated_by":1,"context":{"new_price_cents":31000000}}'
expect "trigger unit 4's price update" 201
S1=$(step 0) S2=$(step 1)
post_json "$API/steps/$S1/approve" '{"acted_by_user_id":1}'
expect "approve its step 1 as user 1" 200
post_json "$API/steps/$S2/approve" '{"acted_by_user_id":2,"comment":"Approved"}'
expect "approve its step 2 as user 2" 200

# A sales commission, approved: 2 notifications and the approval.
post_json "$API/instances" '{"event":"commission.approval_requested","entity_type":"commission","entity_id":2,"initiated_by":3}'
expect "trigger commission 2's approval" 201
S1=$(step 0) S2=$(step 1)
post_json "$API/steps/$S1/approve" '{"acted_by_user_id":2}'
expect "approve its step 1 as user 2" 200
post_json "$API/steps/$S2/approve" '{"acted_by_user_id":1}'
expect "approve its step 2 as user 1" 200

# A cancellation: 1 notification and the cancellation.
post_json "$API/instances" '{"event":"booking.cancellation_requested","entity_type":"booking","entity_id":3,"initiated_by":3}'
expect "trigger booking 3's cancellation" 201
CANCELLED=$(j .id)
post_json "$API/instances/$CANCELLED/cancel" '{"acted_by_user_id":3,"reason":"withdrawn"}'
expect "cancel it as its initiator" 200

# The demo's sample instance (1) had its event handed on before the subscription existed.
EXPECTED=$(psql "$DB_URL" -qAt -c "SELECT count(*) FROM workflow_callback_outbox WHERE instance_id > 1")
check "the walks wrote 11 events" 11 "$EXPECTED"

log "waiting for every event to be delivered (each fails once, then succeeds)"
for _ in $(seq 1 240); do
  delivered=$(jq -s '[.[] | select((.first | not) and .event.data.instance.id > 1)] | length' "$WORK/received.jsonl")
  [ "$delivered" -ge "$EXPECTED" ] && break
  sleep 0.25
done
sleep 1 # anything sent twice would arrive by now

R="$WORK/walks.jsonl"
jq -c 'select(.event.data.instance.id > 1)' "$WORK/received.jsonl" >"$R"
check "every request's signature verifies" 0 "$(jq -s '[.[] | select(.verified | not)] | length' "$R")"
check "every event arrived" "$EXPECTED" "$(jq -s 'map(.id) | unique | length' "$R")"
check "each event was retried once after its first 500, then delivered once" "$((EXPECTED * 2))" \
  "$(jq -s 'length' "$R")"
check "the events are the outbox's, by id" \
  "$(psql "$DB_URL" -qAt -c "SELECT string_agg(event_id, ',' ORDER BY event_id) FROM workflow_callback_outbox WHERE instance_id > 1")" \
  "$(jq -rs 'map(.id) | unique | join(",")' "$R")"
check "webhook-id is the envelope's id" 0 "$(jq -s '[.[] | select(.id != .event.id)] | length' "$R")"
# After de-duplication by webhook-id, each instance's sequence numbers are 1..n without gaps.
check "per instance, sequences are 1..n once each" true \
  "$(jq -s 'unique_by(.id) | group_by(.event.data.instance.id)
           | all(map(.event.data.instance.sequence) | sort == [range(1; length + 1)])' "$R")"
check "the event types by instance, in sequence order" \
  '[["step.awaiting_action","step.awaiting_action","instance.rejected"],["step.awaiting_action","step.awaiting_action","instance.approved"],["step.awaiting_action","step.awaiting_action","instance.approved"],["step.awaiting_action","instance.cancelled"]]' \
  "$(jq -cs 'unique_by(.id) | group_by(.event.data.instance.id)
            | map(sort_by(.event.data.instance.sequence) | map(.event.type))' "$R")"
# The receiver got the last answers before the server recorded them: wait for the records.
for _ in $(seq 1 120); do
  call GET "$API/subscriptions/1/deliveries?status=delivered"
  [ "$(j '.items | length')" -ge "$EXPECTED" ] && break
  sleep 0.25
done
call GET "$API/subscriptions/1/deliveries?status=delivered"
check "the API lists the walks' deliveries as delivered, after 2 attempts each" "$EXPECTED" \
  "$(j '[.items[] | select(.attempts == 2)] | length')"

grep -q 'panicked' "$WORK/server.log" && panicked=yes || panicked=no
check "the server log has no panic" no "$panicked"

check_summary
