#!/usr/bin/env bash
# End-to-end checks of the HTTP API against the release binary on a fresh PostgreSQL database:
# the three business scenarios (see README), then every error status and code.
# Prints one line per check and "N passed, M failed" last; exits non-zero when a check fails.
# Uses $DATABASE_URL (or a local/private server, see lib.sh) only to create and drop its own
# database; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

need_tools curl jq psql
pg_provision
pg_create_db approvals_api

log "cargo build --release --bin approvals (a no-op when up to date)"
cargo build --quiet --release --bin approvals
target_dir

log "migrating and seeding $DB_NAME"
DATABASE_URL=$DB_URL RUST_LOG=warn "$(release_bin approvals)" migrate
DATABASE_URL=$DB_URL RUST_LOG=warn "$(release_bin approvals)" seed

WORK=$(mktemp -d /tmp/approvals-api.XXXXXX)
on_exit "rm -rf '$WORK'"
PORT=$(free_port)
log "starting the server on port $PORT (log: $WORK/server.log)"
start_server "$PORT" "$WORK/server.log" DATABASE_URL="$DB_URL" RUST_LOG=warn NATS_URL=
BASE="http://127.0.0.1:$PORT"
API="/api/v1/workflow"

# ---- helpers ----------------------------------------------------------------------------------

# call METHOD PATH [CURL_ARGS...]: one request; sets STATUS (000 when no answer) and CTX.
call() {
  local method=$1 path=$2
  shift 2
  STATUS=$(curl -sS -o "$WORK/body" -w '%{http_code}' --max-time 10 -X "$method" "$@" "$BASE$path") || true
  STATUS=${STATUS:-000}
}
post_json() { call POST "$1" -H 'Content-Type: application/json' --data-binary "$2"; }
put_json() { call PUT "$1" -H 'Content-Type: application/json' --data-binary "$2"; }

# j FILTER: the last response body through jq (strings raw, the rest compact JSON, keys sorted).
j() { jq -Scr "$1" "$WORK/body" 2>/dev/null || printf '<not JSON>'; }

# expect DESCRIPTION STATUS: checks the status of the last response; later `field` lines
# are labelled with DESCRIPTION.
expect() {
  CTX=$1
  check "$1 -> $2" "$2" "$STATUS"
}
# field FILTER EXPECTED: checks one value of the last response body.
field() { check "$CTX: $1 = $2" "$2" "$(j "$1")"; }
# expect_error DESCRIPTION STATUS CODE: the status, and the error body with that code and a message.
expect_error() {
  expect "$1" "$2"
  check "$1: error code $3 with a message" "$3" \
    "$(j 'if (.error.message | type) == "string" and (.error.message | length) > 0
          then .error.code else "no error message" end')"
}

sql() { psql "$DB_URL" -qAt -v ON_ERROR_STOP=1 -c "$1"; }

trigger_body() { # EVENT ENTITY_TYPE ENTITY_ID INITIATED_BY [CONTEXT]
  printf '{"event":"%s","entity_type":"%s","entity_id":%s,"initiated_by":%s%s}' \
    "$1" "$2" "$3" "$4" "${5:+,\"context\":$5}"
}
approve() { post_json "$API/steps/$1/approve" "$2"; }
reject() { post_json "$API/steps/$1/reject" "$2"; }

# ---- scenario 1: a booking cancellation approved by both steps -------------------------------
log "scenario 1: booking cancellation, approved by both steps"
post_json "$API/instances" "$(trigger_body booking.cancellation_requested booking 2 3 '{"reason":"customer moved abroad"}')"
expect "trigger booking 2" 201
field .status in_progress
field .template_id 1
field .event booking.cancellation_requested
field '[.entity_type, .entity_id, .initiated_by]' '["booking",2,3]'
field .context '{"reason":"customer moved abroad"}'
field .completed_at null
field '[.steps[] | .status]' '["awaiting_action","pending"]'
field '[.steps[] | .eligible_user_ids]' '[[1],[2]]'
field '.steps[0].approver' '{"role":"sales_manager","type":"role"}'
field '.steps[0].activated_at != null' true
field '[.steps[] | .acted_by_user_id]' '[null,null]'
field '[.audit[] | [.action, .actor_user_id]]' '[["instance_created",3],["step_activated",null]]'
B_INST=$(j .id)
B_S1=$(j '.steps[0].id')
B_S2=$(j '.steps[1].id')

call GET "$API/instances/$B_INST"
expect "get booking instance $B_INST" 200
field .id "$B_INST"
field '[.steps[] | .status]' '["awaiting_action","pending"]'

call GET "$API/steps/pending?user_id=1"
expect "pending steps of user 1" 200
field "[.items[] | select(.step_id == $B_S1) | [.instance_id, .event, .entity_type, .entity_id, .step_order]]" \
  "[[$B_INST,\"booking.cancellation_requested\",\"booking\",2,1]]"
call GET "$API/steps/pending?user_id=1&limit=1"
expect "the first page of user 1's inbox, one step a page" 200
field '[(.items | length), (.next | type)]' '[1,"string"]'
FIRST_STEP=$(j ".items[0].step_id")
call GET "$API/steps/pending?user_id=1&limit=1&after=$(j .next)"
expect "the next page of user 1's inbox" 200
field "[(.items | length), (.items[0].step_id != $FIRST_STEP)]" "[1,true]"
call GET "$API/steps/pending?user_id=1&after=bm90LWEtY3Vyc29y"
expect_error "pending steps with an after that is no cursor" 422 validation_failed
call GET "$API/steps/pending?user_id=2"
expect "pending steps of user 2 before step 1 is decided" 200
field "[.items[] | select(.step_id == $B_S2)] | length" 0

approve "$B_S1" '{"acted_by_user_id":1,"comment":"Cancellation fee agreed"}'
expect "approve booking step 1 as user 1" 200
field .status in_progress
field .completed_at null
field '.steps[0] | [.status, .acted_by_user_id, .comment]' '["approved",1,"Cancellation fee agreed"]'
field '.steps[0].acted_at != null' true
field '.steps[1].status' awaiting_action
field '.steps[1].activated_at != null' true
field '[.audit[2:][] | [.action, .step_id, .actor_user_id, .comment]]' \
  "[[\"step_approved\",$B_S1,1,\"Cancellation fee agreed\"],[\"step_activated\",$B_S2,null,null]]"

call GET "$API/steps/pending?user_id=2"
expect "pending steps of user 2" 200
field "[.items[] | select(.step_id == $B_S2) | .instance_id]" "[$B_INST]"

approve "$B_S2" '{"acted_by_user_id":2}'
expect "approve booking step 2 as user 2" 200
field .status approved
field '.completed_at != null' true
field '[.steps[] | .status]' '["approved","approved"]'
field '.steps[1] | [.acted_by_user_id, .comment]' '[2,null]'
field '.steps[1].acted_at != null' true
field '[.audit[] | .action]' '["instance_created","step_activated","step_approved","step_activated","step_approved","instance_approved"]'
field '[.audit[-2:][] | [.action, .actor_user_id]]' '[["step_approved",2],["instance_approved",2]]'

call GET "$API/instances/$B_INST"
expect "get the approved booking instance" 200
field '[.status, (.completed_at != null), (.audit | length)]' '["approved",true,6]'
call GET "$API/steps/pending?user_id=2"
expect "pending steps of user 2 after the booking ended" 200
field "[.items[] | select(.instance_id == $B_INST)] | length" 0

# ---- scenario 2: a unit price update approved, then rejected ---------------------------------
log "scenario 2: unit price update, approved then rejected"
post_json "$API/instances" "$(trigger_body unit.price_update_requested unit 3 1 '{"new_price_cents":31500000}')"
expect "trigger unit 3 price update" 201
field .status in_progress
field .template_id 2
field '[.steps[] | .approver]' '[{"role":"sales_manager","type":"role"},{"type":"user","user_id":2}]'
field '[.steps[] | .eligible_user_ids]' '[[1],[2]]'
U_INST=$(j .id)
U_S1=$(j '.steps[0].id')
U_S2=$(j '.steps[1].id')

approve "$U_S1" '{"acted_by_user_id":1,"comment":"In line with the market"}'
expect "approve unit step 1 as user 1" 200
field .status in_progress
field '[.steps[] | .status]' '["approved","awaiting_action"]'

reject "$U_S2" '{"acted_by_user_id":2,"comment":"Below the floor price"}'
expect "reject unit step 2 as user 2" 200
field .status rejected
field '.completed_at != null' true
field '.steps[1] | [.status, .acted_by_user_id, .comment]' '["rejected",2,"Below the floor price"]'
field '.steps[0].status' approved
field '[.audit[-2:][] | [.action, .step_id, .actor_user_id, .comment]]' \
  "[[\"step_rejected\",$U_S2,2,\"Below the floor price\"],[\"instance_rejected\",null,2,null]]"

call GET "$API/instances/$U_INST"
expect "get the rejected unit instance" 200
field '[.status, (.completed_at != null)]' '["rejected",true]'
field '[.audit[] | .action]' '["instance_created","step_activated","step_approved","step_activated","step_rejected","instance_rejected"]'

# ---- scenario 3: a commission through its direct-user step -----------------------------------
log "scenario 3: commission, role step then direct-user step"
post_json "$API/instances" "$(trigger_body commission.approval_requested commission 1 3)"
expect "trigger commission 1" 201
field .context null
field '[.steps[] | .approver]' '[{"role":"finance_manager","type":"role"},{"type":"user","user_id":1}]'
field '[.steps[] | .eligible_user_ids]' '[[2],[1]]'
C_INST=$(j .id)
C_S1=$(j '.steps[0].id')
C_S2=$(j '.steps[1].id')

approve "$C_S1" '{"acted_by_user_id":2,"comment":"Amount checked"}'
expect "approve commission step 1 as user 2" 200
field '[.steps[] | .status]' '["approved","awaiting_action"]'

call GET "$API/steps/pending?user_id=1"
expect "pending steps of user 1 (direct approver)" 200
field "[.items[] | select(.step_id == $C_S2) | [.instance_id, .entity_type, .entity_id, .approver.type]]" \
  "[[$C_INST,\"commission\",1,\"user\"]]"

approve "$C_S2" '{"acted_by_user_id":1,"comment":"Pay it"}'
expect "approve commission step 2 as user 1" 200
field .status approved
field '.completed_at != null' true
field '.steps[1] | [.status, .acted_by_user_id, .comment]' '["approved",1,"Pay it"]'
field '[.audit[] | [.action, .actor_user_id]] | .[2:]' '[["step_approved",2],["step_activated",null],["step_approved",1],["instance_approved",1]]'

# ---- finding instances: GET /instances with filters, newest first, a page at a time -----------
log "finding instances"
call GET "$API/instances?entity_type=booking&entity_id=2"
expect "search booking 2's instances" 200
field '[.items[] | .id]' "[$B_INST]"
field '.items[0] | [.event, .entity_type, .entity_id, .status]' '["booking.cancellation_requested","booking",2,"approved"]'
field '.items[0] | [(.steps | length), has("audit")]' '[2,false]'
field .next null
call GET "$API/instances?entity_type=unit&status=rejected&initiated_by=1"
expect "search rejected unit instances initiated by user 1" 200
field "[.items[] | .id] | index($U_INST) != null" true
field '[.items[] | [.entity_type, .status, .initiated_by]] | unique' '[["unit","rejected",1]]'
call GET "$API/instances?event=commission.approval_requested&status=approved"
expect "search approved commission instances" 200
field "[.items[] | .id]" "[$C_INST]"
call GET "$API/instances?entity_type=booking&entity_id=999999"
expect "search an entity without instances" 200
field . '{"items":[],"next":null}'
call GET "$API/instances"
expect "search without filters" 200
field '[.items[] | .id] | . == (sort | reverse)' true
check "search without filters lists every instance" "$(sql "SELECT count(*) FROM workflow_instances")" "$(j '.items | length')"
SEARCH_IDS=()
SEARCH_AFTER=""
SEARCH_PAGES=0
while :; do
  call GET "$API/instances?limit=1${SEARCH_AFTER:+&after=$SEARCH_AFTER}"
  [ "$STATUS" = 200 ] || break
  SEARCH_IDS+=($(j '.items[].id'))
  SEARCH_AFTER=$(j '.next // empty')
  SEARCH_PAGES=$((SEARCH_PAGES + 1))
  [ -n "$SEARCH_AFTER" ] && [ "$SEARCH_PAGES" -lt 100 ] || break
done
check "paging with limit=1 until next is null visits every instance once, newest first" \
  "$(sql "SELECT string_agg(id::text, ' ' ORDER BY id DESC) FROM workflow_instances")" "${SEARCH_IDS[*]}"
call GET "$API/instances?limit=1"
SEARCH_CURSOR=$(j .next)
check "the first page of one has a cursor" yes "$([ -n "$SEARCH_CURSOR" ] && [ "$SEARCH_CURSOR" != null ] && echo yes || echo no)"
call GET "$API/instances?limit=0"
expect_error "search with limit=0" 422 validation_failed
check "  the message names limit" yes "$(j 'if (.error.message | contains("limit")) then "yes" else . end')"
call GET "$API/instances?limit=501"
expect_error "search with limit=501" 422 validation_failed
call GET "$API/instances?limit=ten"
expect_error "search with limit=ten" 422 validation_failed
call GET "$API/instances?status=open"
expect_error "search with status=open" 422 validation_failed
check "  the message names status" yes "$(j 'if (.error.message | contains("status")) then "yes" else . end')"
call GET "$API/instances?entity_id=2"
expect_error "search with entity_id but no entity_type" 422 validation_failed
check "  the message names entity_id" yes "$(j 'if (.error.message | contains("entity_id")) then "yes" else . end')"
call GET "$API/instances?after=not-a-cursor"
expect_error "search with a malformed cursor" 422 validation_failed
check "  the message names after" yes "$(j 'if (.error.message | contains("after")) then "yes" else . end')"
# A cursor starts with "dj" (base64 of "v1"); one character changed is refused.
call GET "$API/instances?after=e${SEARCH_CURSOR:1}"
expect_error "search with a tampered cursor" 422 validation_failed
call GET "$API/instances?entity_type=booking&page=2"
expect_error "search with an unknown parameter" 422 validation_failed
check "  the message names page" yes "$(j 'if (.error.message | contains("page")) then "yes" else . end')"
call GET "$API/instances?entity_type=booking&entity_id=two"
expect_error "search with entity_id=two" 422 validation_failed
call GET "$API/instances?initiated_by=-1"
expect_error "search with initiated_by=-1" 422 validation_failed
call GET "$API/instances?entity_type=Booking"
expect_error "search with entity_type=Booking" 422 validation_failed

# ---- error paths ------------------------------------------------------------------------------
log "error paths"
# The demo's sample instance 1: booking 1, step 1 awaiting user 1, step 2 not reached.
call GET "$API/instances/1"
expect "get sample instance 1" 200
S_S1=$(j '.steps[0].id')
S_S2=$(j '.steps[1].id')
field '[.status, .steps[0].status, .steps[1].status]' '["in_progress","awaiting_action","pending"]'

# 403
approve "$S_S1" '{"acted_by_user_id":3}'
expect_error "approve sample step 1 as user 3 (not eligible)" 403 not_an_approver
reject "$S_S1" '{"acted_by_user_id":2,"comment":"not mine"}'
expect_error "reject sample step 1 as user 2 (not eligible)" 403 not_an_approver
call GET "$API/instances/1"
expect "sample instance 1 after the refused decisions" 200
field '[.steps[0].status, .steps[0].acted_by_user_id, (.audit | length)]' '["awaiting_action",null,2]'

# 404
call GET "$API/instances/999999"
expect_error "get unknown instance 999999" 404 not_found
call GET "$API/instances/abc"
expect_error "get instance 'abc'" 404 not_found
call GET "$API/instances/0"
expect_error "get instance 0" 404 not_found
call GET "$API/templates/999"
expect_error "get unknown template 999" 404 not_found
approve 999999 '{"acted_by_user_id":1}'
expect_error "approve unknown step 999999" 404 not_found
approve -5 '{"acted_by_user_id":1}'
expect_error "approve step -5" 404 not_found
call GET "$API/no-such-thing"
expect_error "unknown route" 404 not_found

# 405
call DELETE "$API/instances/1"
expect_error "DELETE an instance" 405 method_not_allowed
call PUT "$API/instances"
expect_error "PUT the instances path" 405 method_not_allowed
call GET "$API/steps/$S_S1/approve"
expect_error "GET an approve path" 405 method_not_allowed
call POST /readyz
expect_error "POST /readyz" 405 method_not_allowed

# 409 step_not_actionable: already decided, and not reached yet
approve "$B_S1" '{"acted_by_user_id":1}'
expect_error "approve the already approved booking step 1" 409 step_not_actionable
reject "$U_S2" '{"acted_by_user_id":2,"comment":"again"}'
expect_error "reject the already rejected unit step 2" 409 step_not_actionable
approve "$S_S2" '{"acted_by_user_id":2}'
expect_error "approve sample step 2 before step 1 is decided" 409 step_not_actionable
# 409 instance_already_active
post_json "$API/instances" "$(trigger_body booking.cancellation_requested booking 1 3)"
expect_error "trigger booking 1 again while sample instance 1 is active" 409 instance_already_active
check "no second active instance for booking 1" 1 \
  "$(sql "SELECT count(*) FROM workflow_instances WHERE entity_type='booking' AND entity_id=1")"
# 409 template_in_use, and a change that is allowed once nothing uses the template
put_json "$API/templates/1" '{"name":"Booking cancellation v2"}'
expect_error "rename template 1 while sample instance 1 is active" 409 template_in_use
call GET "$API/templates/1"
expect "get template 1" 200
field '[.name != "Booking cancellation v2", .version, .is_active]' '[true,1,true]'
put_json "$API/templates/2" '{"name":"Unit price update v2"}'
expect "rename template 2 (no active instance)" 200
field '[.name, .version, (.steps | length)]' '["Unit price update v2",2,2]'

# ---- cancel (withdraw) an instance: every refusal, then the initiator's cancel ----------------
log "cancel an instance"
cancel_instance() { post_json "$API/instances/$1/cancel" "$2"; }
names() { check "  the message names $1" yes "$(j "if (.error.message | contains(\"$1\")) then \"yes\" else . end")"; }
post_json "$API/instances" "$(trigger_body booking.cancellation_requested booking 6 3)"
expect "trigger booking 6, to be cancelled by its initiator (user 3)" 201
X_INST=$(j .id)
X_S1=$(j '.steps[0].id')
X_S2=$(j '.steps[1].id')
cancel_instance "$X_INST" '{"acted_by_user_id":1,"reason":"not mine to withdraw"}'
expect_error "cancel booking 6 as user 1 (an approver, not the initiator)" 403 not_the_initiator
cancel_instance 999999 '{"acted_by_user_id":3}'
expect_error "cancel unknown instance 999999" 404 not_found
cancel_instance abc '{"acted_by_user_id":3}'
expect_error "cancel instance 'abc'" 404 not_found
cancel_instance "$X_INST" '{}'
expect_error "cancel without acted_by_user_id" 422 validation_failed
names acted_by_user_id
cancel_instance "$X_INST" '{"acted_by_user_id":"3"}'
expect_error "cancel with a string acted_by_user_id" 422 validation_failed
names acted_by_user_id
cancel_instance "$X_INST" '{"acted_by_user_id":3,"comment":"wrong field"}'
expect_error "cancel with an unknown field" 422 validation_failed
names comment
cancel_instance "$X_INST" '{"acted_by_user_id":3,"reason":"   "}'
expect_error "cancel with a blank reason" 422 validation_failed
names reason
cancel_instance "$X_INST" '{"acted_by_user_id":999}'
expect_error "cancel booking 6 as unknown user 999" 422 unknown_user
names acted_by_user_id
cancel_instance "$X_INST" '{"acted_by_user_id":3,'
expect_error "cancel with truncated JSON" 400 invalid_json
call POST "$API/instances/$X_INST/cancel" -H 'Content-Type: text/plain' --data-binary '{"acted_by_user_id":3}'
expect_error "cancel with Content-Type text/plain" 415 unsupported_media_type
call GET "$API/instances/$X_INST/cancel"
expect_error "GET a cancel path" 405 method_not_allowed
call GET "$API/instances/$X_INST"
expect "booking 6 after the refused cancels" 200
field '[.status, [.steps[] | .status], (.audit | length)]' '["in_progress",["awaiting_action","pending"],2]'
check "booking 6's step 1 is in the inbox table" 1 "$(sql "SELECT count(*) FROM workflow_inbox WHERE step_id = $X_S1")"
cancel_instance "$X_INST" '{"acted_by_user_id":3,"reason":"Customer kept the booking"}'
expect "cancel booking 6 as its initiator, user 3" 200
field .status cancelled
field '.completed_at != null' true
field '.updated_at == .completed_at' true
field '[.steps[] | .status]' '["cancelled","cancelled"]'
field '[.steps[] | .acted_by_user_id]' '[null,null]'
field '[.audit[] | .action]' '["instance_created","step_activated","instance_cancelled"]'
field '.audit[-1] | [.step_id, .actor_user_id, .comment]' '[null,3,"Customer kept the booking"]'
call GET "$API/instances/$X_INST"
expect "get the cancelled booking instance" 200
field '[.status, [.steps[] | .status], (.audit | length)]' '["cancelled",["cancelled","cancelled"],3]'
call GET "$API/steps/pending?user_id=1"
expect "pending steps of user 1 after the cancel" 200
field "[.items[] | select(.instance_id == $X_INST)] | length" 0
check "the cancelled steps left the inbox table" 0 \
  "$(sql "SELECT count(*) FROM workflow_inbox WHERE step_id IN ($X_S1, $X_S2)")"
check "one outcome event for booking 6 in the outbox, on_cancelled" "1 on_cancelled" \
  "$(sql "SELECT count(*) || ' ' || string_agg(kind, ',') FROM workflow_callback_outbox WHERE instance_id = $X_INST AND kind LIKE 'on\_%'")"
check "one instance_cancelled audit row for booking 6, by user 3" "1 3" \
  "$(sql "SELECT count(*) || ' ' || max(actor_user_id) FROM workflow_audit_log WHERE instance_id = $X_INST AND action = 'instance_cancelled'")"
cancel_instance "$X_INST" '{"acted_by_user_id":3}'
expect_error "cancel the cancelled booking 6 again" 409 instance_not_active
names cancelled
approve "$X_S1" '{"acted_by_user_id":1}'
expect_error "approve step 1 of the cancelled booking 6" 409 step_not_actionable
cancel_instance "$B_INST" '{"acted_by_user_id":3}'
expect_error "cancel the approved booking instance $B_INST" 409 instance_not_active
names approved

# ---- idempotency keys: a retry gets the first answer, another request with the key is 422 ---
log "idempotency keys"
# keyed PATH KEY BODY: a POST with an Idempotency-Key (curl sends an empty header as "Name;").
keyed() {
  local header="Idempotency-Key: $2"
  [ -n "$2" ] || header="Idempotency-Key;"
  call POST "$1" -H 'Content-Type: application/json' -H "$header" --data-binary "$3"
}
header_of() { curl -sS -D - -o /dev/null --max-time 10 -X POST "$BASE$1" -H 'Content-Type: application/json' \
  -H "Idempotency-Key: $2" --data-binary "$3" | tr -d '\r' | awk -F': ' 'tolower($1) == tolower("'"$4"'") {print $2}'; }
K_BODY="$(trigger_body booking.cancellation_requested booking 8 3)"
keyed "$API/instances" "trigger-booking-8" "$K_BODY"
expect "keyed trigger of booking 8" 201
K_FIRST=$(j .)
K_INST=$(j .id)
K_S1=$(j '.steps[0].id')
keyed "$API/instances" "trigger-booking-8" "$K_BODY"
expect "the same keyed trigger again" 201
check "  the retry's body is the first answer" "$K_FIRST" "$(j .)"
check "  the retry is marked Idempotent-Replayed: true" true \
  "$(header_of "$API/instances" "trigger-booking-8" "$K_BODY" Idempotent-Replayed)"
check "one instance for booking 8" 1 \
  "$(sql "SELECT count(*) FROM workflow_instances WHERE entity_type = 'booking' AND entity_id = 8")"
keyed "$API/steps/$K_S1/approve" "approve-booking-8" '{"acted_by_user_id":1}'
expect "keyed approval of booking 8's step 1" 200
K_APPROVED=$(j .)
keyed "$API/steps/$K_S1/approve" "approve-booking-8" '{ "acted_by_user_id" : 1 }'
expect "the same keyed approval again (spacing differs)" 200
check "  the retry's body is the first answer, not a 409" "$K_APPROVED" "$(j .)"
check "one approval of booking 8's step 1" 1 \
  "$(sql "SELECT count(*) FROM workflow_audit_log WHERE step_id = $K_S1 AND action = 'step_approved'")"
keyed "$API/steps/$K_S1/approve" "approve-booking-8" '{"acted_by_user_id":1,"comment":"other"}'
expect_error "the key again with another body" 422 idempotency_key_reused
keyed "$API/steps/$K_S1/reject" "approve-booking-8" '{"acted_by_user_id":1,"comment":"no"}'
expect_error "the key again on another path" 422 idempotency_key_reused
keyed "$API/instances/$K_INST/cancel" "" '{"acted_by_user_id":3}'
expect_error "cancel with an empty Idempotency-Key" 422 validation_failed
check "  the message names Idempotency-Key" yes "$(j 'if (.error.message | contains("Idempotency-Key")) then "yes" else . end')"
keyed "$API/instances/$K_INST/cancel" "$(printf 'k%.0s' $(seq 256))" '{"acted_by_user_id":3}'
expect_error "cancel with a 256-character Idempotency-Key" 422 validation_failed
call POST "$API/instances/$K_INST/cancel" -H 'Content-Type: application/json' -H 'Idempotency-Key: a' \
  -H 'Idempotency-Key: b' --data-binary '{"acted_by_user_id":3}'
expect_error "cancel with Idempotency-Key sent twice" 422 validation_failed
keyed "$API/instances/$K_INST/cancel" "cancel-booking-8" '{"acted_by_user_id":3,'
expect_error "keyed cancel with truncated JSON" 400 invalid_json
keyed "$API/instances/$K_INST/cancel" "cancel-booking-8" '{"acted_by_user_id":1}'
expect_error "keyed cancel by user 1 (not the initiator)" 403 not_the_initiator
keyed "$API/instances/$K_INST/cancel" "cancel-booking-8" '{"acted_by_user_id":3}'
expect "the same key, now by the initiator: a refusal kept nothing" 200
field .status cancelled
check "one key kept per successful keyed request" 3 \
  "$(sql "SELECT count(*) FROM idempotency_keys WHERE key IN ('trigger-booking-8','approve-booking-8','cancel-booking-8')")"

# ---- templates: authoring, versions while instances run, one active per event, self-approval --
log "templates: authoring and versions"
tmpl_names() { check "  the message names $1" yes "$(j "if (.error.message | contains(\"$1\")) then \"yes\" else . end")"; }
REFUND_STEPS='[{"name":"Sales review","approver":{"type":"role","role":"sales_manager"}},{"name":"Finance approval","approver":{"type":"role","role":"finance_manager"}}]'
post_json "$API/templates" "{\"name\":\"Booking refund\",\"event\":\"booking.refund_requested\",\"entity_type\":\"booking\",\"steps\":$REFUND_STEPS}"
expect "create a booking refund template" 201
field '[.name, .event, .entity_type, .version, .is_active, .forbid_self_approval]' '["Booking refund","booking.refund_requested","booking",1,true,false]'
field '[.steps[] | [.step_order, .name, .approver.role]]' '[[1,"Sales review","sales_manager"],[2,"Finance approval","finance_manager"]]'
R_T=$(j .id)
check "the new template's version 1 is stored" 1 \
  "$(sql "SELECT count(*) FROM workflow_template_versions WHERE template_id = $R_T AND version = 1")"
call GET "$API/templates"
expect "list all templates" 200
field "[.items[] | .id] | (. == sort) and (index($R_T) != null)" true
field '[.items[] | .id] | .[:3]' '[1,2,3]'
call GET "$API/templates?event=booking.refund_requested"
expect "list the templates of booking.refund_requested" 200
field '[.items[] | [.id, .version, (.steps | length)]]' "[[$R_T,1,2]]"
call GET "$API/templates?is_active=false"
expect "list inactive templates" 200
field '[.items[] | select(.is_active)] | length' 0
call GET "$API/templates?event=booking.refund_requested&is_active=false"
expect "list inactive templates of booking.refund_requested" 200
field . '{"items":[]}'
post_json "$API/instances" "$(trigger_body booking.refund_requested booking 3 3)"
expect "trigger booking 3's refund on version 1" 201
field '[.template_id, .template_version, (.steps | length)]' "[$R_T,1,2]"
R_INST=$(j .id)
R_S1=$(j '.steps[0].id')
R_S2=$(j '.steps[1].id')
put_json "$API/templates/$R_T" '{"name":"Booking refund v2"}'
expect_error "PUT the refund template while booking 3's refund runs" 409 template_in_use
post_json "$API/templates/$R_T/versions" '{"name":"Booking refund v2","steps":[{"name":"Finance only","approver":{"type":"role","role":"finance_manager"}}]}'
expect "publish version 2 of the refund template while booking 3's refund runs" 201
field '[.id, .name, .version, .is_active, (.steps | length)]' "[$R_T,\"Booking refund v2\",2,true,1]"
call GET "$API/templates/$R_T/versions/1"
expect "read version 1 of the refund template" 200
field '[.id, .name, .version, .is_active, .forbid_self_approval]' "[$R_T,\"Booking refund\",1,true,false]"
field '[.steps[] | [.step_order, .name, .approver.role]]' '[[1,"Sales review","sales_manager"],[2,"Finance approval","finance_manager"]]'
call GET "$API/templates/$R_T/versions/2"
expect "read version 2 of the refund template" 200
field '[.name, .version, (.steps | length)]' '["Booking refund v2",2,1]'
call GET "$API/templates/$R_T"
expect "get the refund template" 200
field '.version' 2
approve "$R_S1" '{"acted_by_user_id":1}'
expect "approve step 1 of booking 3's refund (version 1) as user 1" 200
field '[.status, .steps[1].status]' '["in_progress","awaiting_action"]'
approve "$R_S2" '{"acted_by_user_id":2}'
expect "approve step 2 of booking 3's refund as user 2: it ends on version 1's steps" 200
field '[.status, .template_version, (.steps | length)]' '["approved",1,2]'
post_json "$API/instances" "$(trigger_body booking.refund_requested booking 4 3)"
expect "trigger booking 4's refund after version 2" 201
field '[.template_version, (.steps | length), .steps[0].eligible_user_ids]' '[2,1,[2]]'
# 409 template_conflict: a second active template for the event, by create, PUT and version
post_json "$API/templates" "{\"name\":\"Refund, other\",\"event\":\"booking.refund_requested\",\"entity_type\":\"booking\",\"steps\":$REFUND_STEPS}"
expect_error "create a second active refund template" 409 template_conflict
tmpl_names booking.refund_requested
check "no second refund template was stored" 1 \
  "$(sql "SELECT count(*) FROM workflow_templates WHERE event = 'booking.refund_requested'")"
post_json "$API/templates" "{\"name\":\"Refund, other\",\"event\":\"booking.refund_requested\",\"entity_type\":\"booking\",\"is_active\":false,\"steps\":$REFUND_STEPS}"
expect "create a second, inactive refund template" 201
field '[.version, .is_active]' '[1,false]'
R_T2=$(j .id)
put_json "$API/templates/$R_T2" '{"is_active":true}'
expect_error "activate the second refund template by PUT" 409 template_conflict
post_json "$API/templates/$R_T2/versions" '{"is_active":true}'
expect_error "activate the second refund template by a new version" 409 template_conflict
call GET "$API/templates/$R_T2"
expect "the second refund template after the refused activations" 200
field '[.version, .is_active]' '[1,false]'
check "no version 2 of the second refund template was stored" 0 \
  "$(sql "SELECT count(*) FROM workflow_template_versions WHERE template_id = $R_T2 AND version > 1")"
# Segregation of duties: the initiator is never eligible on a template that forbids it.
post_json "$API/templates/$R_T/versions" '{"forbid_self_approval":true}'
expect "publish version 3 of the refund template, forbidding self-approval" 201
field '[.version, .forbid_self_approval, (.steps | length)]' '[3,true,1]'
post_json "$API/instances" "$(trigger_body booking.refund_requested booking 5 2)"
expect_error "trigger a refund as user 2, the only finance manager" 422 no_eligible_approver
tmpl_names self-approval
check "no instance was created for booking 5's refund" 0 \
  "$(sql "SELECT count(*) FROM workflow_instances WHERE event = 'booking.refund_requested' AND entity_id = 5")"
sql "INSERT INTO user_roles (role, user_id) VALUES ('finance_manager', 1)"
post_json "$API/instances" "$(trigger_body booking.refund_requested booking 5 2)"
expect "trigger a refund as user 2 once user 1 is a finance manager too" 201
field '[.template_version, .steps[0].eligible_user_ids]' '[3,[1]]'
R_SELF=$(j '.steps[0].id')
approve "$R_SELF" '{"acted_by_user_id":2}'
expect_error "user 2 approves its own refund" 403 not_an_approver
approve "$R_SELF" '{"acted_by_user_id":1}'
expect "user 1 approves user 2's refund" 200
field .status approved
sql "DELETE FROM user_roles WHERE role = 'finance_manager' AND user_id = 1"
call GET "$API/templates/1"
expect "the demo's template 1 still allows self-approval" 200
field .forbid_self_approval false
# 404
call GET "$API/templates/999999/versions/1"
expect_error "read a version of unknown template 999999" 404 not_found
call GET "$API/templates/$R_T/versions/99"
expect_error "read unknown version 99 of the refund template" 404 not_found
call GET "$API/templates/abc/versions/1"
expect_error "read a version of template 'abc'" 404 not_found
call GET "$API/templates/$R_T/versions/abc"
expect_error "read version 'abc' of the refund template" 404 not_found
call GET "$API/templates/$R_T/versions/0"
expect_error "read version 0 of the refund template" 404 not_found
post_json "$API/templates/999999/versions" '{"name":"X"}'
expect_error "publish a version of unknown template 999999" 404 not_found
post_json "$API/templates/abc/versions" '{"name":"X"}'
expect_error "publish a version of template 'abc'" 404 not_found
# 405
call PUT "$API/templates"
expect_error "PUT the template list" 405 method_not_allowed
call GET "$API/templates/$R_T/versions"
expect_error "GET the versions path" 405 method_not_allowed
# 422 validation_failed
post_json "$API/templates" "{\"name\":\"X\",\"entity_type\":\"booking\",\"steps\":$REFUND_STEPS}"
expect_error "create a template without event" 422 validation_failed
tmpl_names event
post_json "$API/templates" '{"name":"X","event":"booking.x_requested","entity_type":"booking"}'
expect_error "create a template without steps" 422 validation_failed
tmpl_names steps
post_json "$API/templates" "{\"name\":5,\"event\":\"booking.x_requested\",\"entity_type\":\"booking\",\"steps\":$REFUND_STEPS}"
expect_error "create a template with a numeric name" 422 validation_failed
tmpl_names name
post_json "$API/templates" "{\"name\":\"X\",\"event\":\"booking.x_requested\",\"entity_type\":\"booking\",\"is_active\":\"yes\",\"steps\":$REFUND_STEPS}"
expect_error "create a template with a string is_active" 422 validation_failed
tmpl_names is_active
post_json "$API/templates" "{\"name\":\"X\",\"event\":\"booking.x_requested\",\"entity_type\":\"booking\",\"forbid_self_approval\":1,\"steps\":$REFUND_STEPS}"
expect_error "create a template with a numeric forbid_self_approval" 422 validation_failed
tmpl_names forbid_self_approval
post_json "$API/templates" "{\"name\":\"X\",\"event\":\"booking.x_requested\",\"entity_type\":\"booking\",\"version\":3,\"steps\":$REFUND_STEPS}"
expect_error "create a template with an unknown field" 422 validation_failed
tmpl_names version
post_json "$API/templates" '{"name":"X","event":"booking.x_requested","entity_type":"booking","steps":[]}'
expect_error "create a template with no steps" 422 validation_failed
tmpl_names steps
post_json "$API/templates" '{"name":"X","event":"booking.x_requested","entity_type":"booking","steps":[{"name":"A"}]}'
expect_error "create a template with a step without approver" 422 validation_failed
tmpl_names 'steps[0].approver'
post_json "$API/templates" '{"name":"X","event":"booking.x_requested","entity_type":"booking","steps":[{"name":"A","approver":{"type":"group","group":"x"}}]}'
expect_error "create a template with an unknown approver field" 422 validation_failed
tmpl_names 'steps[0].approver.group'
check "no template was created by the refused bodies" 0 \
  "$(sql "SELECT count(*) FROM workflow_templates WHERE event = 'booking.x_requested'")"
post_json "$API/templates/$R_T/versions" '{}'
expect_error "publish a version with an empty body" 422 validation_failed
tmpl_names body
post_json "$API/templates/$R_T/versions" '{"steps":[]}'
expect_error "publish a version with no steps" 422 validation_failed
tmpl_names steps
post_json "$API/templates/$R_T/versions" '{"name":"X","priority":1}'
expect_error "publish a version with an unknown field" 422 validation_failed
tmpl_names priority
call GET "$API/templates?is_active=yes"
expect_error "list templates with is_active=yes" 422 validation_failed
tmpl_names is_active
call GET "$API/templates?event=Booking"
expect_error "list templates with event=Booking" 422 validation_failed
tmpl_names event
call GET "$API/templates?page=2"
expect_error "list templates with an unknown parameter" 422 validation_failed
tmpl_names page
# 400, 415
post_json "$API/templates" '{"name":"X",'
expect_error "create a template with truncated JSON" 400 invalid_json
post_json "$API/templates/$R_T/versions" '[1]'
expect_error "publish a version with a JSON array" 400 invalid_json
call POST "$API/templates" -H 'Content-Type: text/plain' --data-binary '{"name":"X"}'
expect_error "create a template with Content-Type text/plain" 415 unsupported_media_type
call POST "$API/templates/$R_T/versions" --data-binary '{"name":"X"}' -H 'Content-Type:'
expect_error "publish a version without a content type" 415 unsupported_media_type
call GET "$API/templates/$R_T"
expect "the refund template after the refused requests" 200
field '.version' 3

# 413
head -c 70000 /dev/zero | tr '\0' 'x' | sed 's/^/{"event":"/; s/$/"}/' >"$WORK/big.json"
call POST "$API/instances" -H 'Content-Type: application/json' --data-binary "@$WORK/big.json"
expect_error "trigger with a 70 KB body" 413 payload_too_large

# 415
call POST "$API/instances" -H 'Content-Type: text/plain' \
  --data-binary "$(trigger_body booking.cancellation_requested booking 3 3)"
expect_error "trigger with Content-Type text/plain" 415 unsupported_media_type
call POST "$API/steps/$S_S1/approve" --data-binary '{"acted_by_user_id":1}' -H 'Content-Type:'
expect_error "approve without a content type" 415 unsupported_media_type

# 400
post_json "$API/instances" '{"event":"booking.cancellation_requested",'
expect_error "trigger with truncated JSON" 400 invalid_json
post_json "$API/instances" '[1,2,3]'
expect_error "trigger with a JSON array" 400 invalid_json
approve "$S_S1" 'acted_by_user_id=1'
expect_error "approve with a form body sent as JSON" 400 invalid_json

# 422 validation_failed
post_json "$API/instances" '{"event":"booking.cancellation_requested","entity_type":"booking","initiated_by":3}'
expect_error "trigger without entity_id" 422 validation_failed
check "  the message names entity_id" yes "$(j 'if (.error.message | contains("entity_id")) then "yes" else . end')"
post_json "$API/instances" "$(trigger_body booking.cancellation_requested booking '"four"' 3)"
expect_error "trigger with a string entity_id" 422 validation_failed
post_json "$API/instances" "$(trigger_body booking.cancellation_requested booking -4 3)"
expect_error "trigger with entity_id -4" 422 validation_failed
post_json "$API/instances" '{"event":"booking.cancellation_requested","entity_type":"booking","entity_id":4,"initiated_by":3,"colour":"red"}'
expect_error "trigger with an unknown field" 422 validation_failed
check "  the message names colour" yes "$(j 'if (.error.message | contains("colour")) then "yes" else . end')"
post_json "$API/instances" "$(trigger_body booking.cancellation_requested booking 4 3 '"not an object"')"
expect_error "trigger with a string context" 422 validation_failed
reject "$S_S1" '{"acted_by_user_id":1}'
expect_error "reject without a comment" 422 validation_failed
approve "$S_S1" '{"acted_by_user_id":"1"}'
expect_error "approve with a string acted_by_user_id" 422 validation_failed
call GET "$API/steps/pending?user_id=abc"
expect_error "pending steps with user_id=abc" 422 validation_failed
call GET "$API/steps/pending"
expect_error "pending steps without user_id" 422 validation_failed
call GET "$API/steps/pending?user_id=1&limit=501"
expect_error "pending steps with limit=501" 422 validation_failed
put_json "$API/templates/2" '{}'
expect_error "update template 2 with an empty body" 422 validation_failed
# 422 no_active_template
post_json "$API/instances" "$(trigger_body unit.demolition_requested unit 1 1)"
expect_error "trigger an event without a template" 422 no_active_template
# 422 unknown_user
post_json "$API/instances" "$(trigger_body booking.cancellation_requested booking 4 999)"
expect_error "trigger initiated by unknown user 999" 422 unknown_user
approve "$S_S1" '{"acted_by_user_id":999}'
expect_error "approve sample step 1 as unknown user 999" 422 unknown_user
# 422 no_eligible_approver: nobody holds finance_manager any more
sql "DELETE FROM user_roles WHERE role = 'finance_manager'"
post_json "$API/instances" "$(trigger_body commission.approval_requested commission 2 3)"
expect_error "trigger commission 2 with nobody in finance_manager" 422 no_eligible_approver
check "no instance was created for commission 2" 0 \
  "$(sql "SELECT count(*) FROM workflow_instances WHERE entity_type='commission' AND entity_id=2")"

# The sample instance: a rejection at step 1 cancels step 2.
reject "$S_S1" '{"acted_by_user_id":1,"comment":"Customer withdrew the request"}'
expect "reject sample step 1 as user 1" 200
field '[.status, .steps[0].status, .steps[1].status]' '["rejected","rejected","cancelled"]'
field '[.steps[1].acted_by_user_id, .steps[1].acted_at]' '[null,null]'
field '[.audit[-2:][] | .action]' '["step_rejected","instance_rejected"]'
approve "$S_S2" '{"acted_by_user_id":2}'
expect_error "approve the cancelled sample step 2" 409 step_not_actionable

# ---- the user directory: PUT/GET /users, and inactive users ---------------------------------
log "the user directory and inactive users"
user_names() { check "  the message names $1" yes "$(j "if (.error.message | contains(\"$1\")) then \"yes\" else . end")"; }
call GET "$API/users/1"
expect "get user 1" 200
field . '{"active":true,"id":1,"name":"Sales Manager","roles":["sales_manager"]}'
call GET "$API/users?role=sales_manager"
expect "list the sales managers" 200
field '[.items[] | .id]' '[1]'
call GET "$API/users"
expect "list every user" 200
field '[.items[] | .id] | (. == sort) and (.[:3] == [1,2,3])' true
put_json "$API/users/41" '{"name":"Dana Finance","roles":["finance_manager","auditor","finance_manager"]}'
expect "create user 41 with a role listed twice" 201
field . '{"active":true,"id":41,"name":"Dana Finance","roles":["auditor","finance_manager"]}'
put_json "$API/users/41" '{"name":"Dana Finance","roles":["finance_manager"]}'
expect "replace user 41" 200
field '[.roles, .active]' '[["finance_manager"],true]'
call GET "$API/users/41"
expect "get user 41" 200
field '[.id, .name, .roles, .active]' '[41,"Dana Finance",["finance_manager"],true]'
call GET "$API/users?role=finance_manager"
expect "list the finance managers" 200
field '[.items[] | .id] | index(41) != null' true
field '[.items[] | select(.roles | index("finance_manager") | not)] | length' 0
post_json "$API/instances" "$(trigger_body commission.approval_requested commission 41 3)"
expect "trigger commission 41 with user 41 a finance manager" 201
field '.steps[0].eligible_user_ids | index(41) != null' true
D_INST=$(j .id)
D_S1=$(j '.steps[0].id')
put_json "$API/users/41" '{"name":"Dana Finance","roles":["finance_manager"],"active":false}'
expect "deactivate user 41" 200
field '[.roles, .active]' '[["finance_manager"],false]'
approve "$D_S1" '{"acted_by_user_id":41}'
expect_error "approve commission 41 step 1 as inactive user 41 (in its snapshot)" 403 user_inactive
reject "$D_S1" '{"acted_by_user_id":41,"comment":"No"}'
expect_error "reject commission 41 step 1 as inactive user 41" 403 user_inactive
approve 999999 '{"acted_by_user_id":41}'
expect_error "approve unknown step 999999 as inactive user 41 (404 first)" 404 not_found
call GET "$API/instances/$D_INST"
expect "commission 41 after the refused decisions" 200
field '[.steps[0].status, (.steps[0].eligible_user_ids | index(41) != null), (.audit | length)]' '["awaiting_action",true,2]'
# Nobody else holds finance_manager since it was emptied above: the inactive user is left out.
post_json "$API/instances" "$(trigger_body commission.approval_requested commission 42 3)"
expect_error "trigger commission 42 while its only finance manager (41) is inactive" 422 no_eligible_approver
put_json "$API/users/42" '{"name":"Idle Initiator","roles":[],"active":false}'
expect "create inactive user 42" 201
field .active false
post_json "$API/instances" "$(trigger_body booking.cancellation_requested booking 42 42)"
expect_error "trigger booking 42 initiated by inactive user 42" 403 user_inactive
check "no instance was created for commission 42 or booking 42" 0 \
  "$(sql "SELECT count(*) FROM workflow_instances WHERE entity_id=42")"
put_json "$API/users/41" '{"name":"Dana Finance","roles":["finance_manager"]}'
expect "reactivate user 41" 200
reject "$D_S1" '{"acted_by_user_id":41,"comment":"Commission not due"}'
expect "reject commission 41 step 1 as reactivated user 41" 200
field '[.status, .steps[0].acted_by_user_id]' '["rejected",41]'
put_json "$API/users/41" '{"name":"Dana Finance","roles":[],"active":false}'
expect "retire user 41 (no roles, inactive)" 200
# 404
call GET "$API/users/999999"
expect_error "get unknown user 999999" 404 not_found
call GET "$API/users/abc"
expect_error "get user 'abc'" 404 not_found
put_json "$API/users/0" '{"name":"X","roles":[]}'
expect_error "put user 0" 404 not_found
# 405
call DELETE "$API/users/41"
expect_error "DELETE a user" 405 method_not_allowed
# 422 validation_failed
put_json "$API/users/43" '{"roles":[]}'
expect_error "put user 43 without a name" 422 validation_failed
user_names name
put_json "$API/users/43" '{"name":"X"}'
expect_error "put user 43 without roles" 422 validation_failed
user_names roles
put_json "$API/users/43" '{"name":5,"roles":[]}'
expect_error "put user 43 with a numeric name" 422 validation_failed
user_names name
put_json "$API/users/43" '{"name":"X","roles":"auditor"}'
expect_error "put user 43 with a string roles" 422 validation_failed
user_names roles
put_json "$API/users/43" '{"name":"X","roles":[],"active":"yes"}'
expect_error "put user 43 with a string active" 422 validation_failed
user_names active
put_json "$API/users/43" '{"name":"X","roles":["Finance Manager"]}'
expect_error "put user 43 with a bad role name" 422 validation_failed
user_names 'roles[0]'
put_json "$API/users/43" '{"name":"X","roles":[],"email":"x@example.com"}'
expect_error "put user 43 with an unknown field" 422 validation_failed
user_names email
call GET "$API/users?role=Finance"
expect_error "list users with role=Finance" 422 validation_failed
user_names role
call GET "$API/users?page=2"
expect_error "list users with an unknown parameter" 422 validation_failed
user_names page
# 400, 415
put_json "$API/users/43" '{"name":"X",'
expect_error "put user 43 with truncated JSON" 400 invalid_json
call PUT "$API/users/43" -H 'Content-Type: text/plain' --data-binary '{"name":"X","roles":[]}'
expect_error "put user 43 with Content-Type text/plain" 415 unsupported_media_type
check "user 43 was never created" 0 "$(sql "SELECT count(*) FROM users WHERE id = 43")"

# ---- input that means less than it seems: repeated keys, fields the object lacks, invisible text
log "repeated keys, unknown nested fields, invisible text"
post_json "$API/instances" "$(trigger_body unit.price_update_requested unit 51 3)"
expect "trigger unit 51" 201
G_S1=$(j '.steps[0].id')
G_INST=$(j .id)
approve "$G_S1" '{"acted_by_user_id":3,"acted_by_user_id":1}'
expect_error "approve with acted_by_user_id given twice" 422 validation_failed
names "'acted_by_user_id' is given more than once"
post_json "$API/templates" '{"name":"T","event":"dup.keys","entity_type":"unit","steps":[{"name":"A","approver":{"type":"user","type":"role","role":"sales_manager"}}]}'
expect_error "create a template whose approver gives type twice" 422 validation_failed
names 'steps[0].approver.type'
post_json "$API/instances" '{"event":"booking.cancellation_requested","entity_type":"booking","entity_id":52,"initiated_by":3,"context":{"a":1,"a":2}}'
expect_error "trigger with a context that gives a key twice" 422 validation_failed
names 'context.a'
post_json "$API/templates" '{"name":"T","event":"extra.field","entity_type":"unit","steps":[{"name":"A","approver":{"type":"role","role":"sales_manager","user_id":1}}]}'
expect_error "create a template whose role approver also has user_id" 422 validation_failed
names 'steps[0].approver.user_id'
reject "$G_S1" "$(printf '{"acted_by_user_id":1,"comment":"%s"}' ' \u200b\u200c\u200d\u2060\ufeff ')"
expect_error "reject with a comment of zero-width characters only" 422 validation_failed
names comment
cancel_instance "$G_INST" '{"acted_by_user_id":3,"reason":"\u200b"}'
expect_error "cancel with a reason of one zero-width space" 422 validation_failed
names reason
put_json "$API/users/44" '{"name":"\ufeff\u2060","roles":[]}'
expect_error "put user 44 with a name of format characters only" 422 validation_failed
names name
check "the refused writes changed nothing: unit 51 still awaits its first step" \
  "in_progress awaiting_action 1" \
  "$(sql "SELECT i.status || ' ' || s.status || ' ' || (SELECT count(*) FROM workflow_audit_log a WHERE a.instance_id = i.id AND a.action = 'instance_created')
          FROM workflow_instances i JOIN workflow_instance_steps s ON s.instance_id = i.id AND s.step_order = 1 WHERE i.id = $G_INST")"
check "nothing was made by the refused writes" "0 0 0" \
  "$(sql "SELECT (SELECT count(*) FROM workflow_templates WHERE event IN ('dup.keys','extra.field')) || ' ' ||
                 (SELECT count(*) FROM users WHERE id = 44) || ' ' ||
                 (SELECT count(*) FROM workflow_instances WHERE entity_type = 'booking' AND entity_id = 52)")"

# ---- audit you can prove: the hash chain and its verification ---------------------------------
log "audit hash chain: verify, tampering, a 1,000-entry trail"
call GET "$API/instances/$G_INST"
expect "get unit 51's instance" 200
field '[.audit[] | .hash | test("^[0-9a-f]{64}$")] | all' true
call GET "$API/instances/$G_INST/audit/verify"
expect "verify unit 51's audit trail" 200
field . "{\"entries\":$(sql "SELECT count(*) FROM workflow_audit_log WHERE instance_id = $G_INST"),\"valid\":true}"
call GET "$API/instances/999999/audit/verify"
expect_error "verify the trail of unknown instance 999999" 404 not_found
TAMPERED=$(sql "SELECT min(id) FROM workflow_audit_log WHERE instance_id = $G_INST")
sql "SET session_replication_role = replica; UPDATE workflow_audit_log SET comment = 'edited' WHERE id = $TAMPERED" >/dev/null
call GET "$API/instances/$G_INST/audit/verify"
expect "verify unit 51's trail after a superuser edited entry $TAMPERED" 200
field . "{\"first_bad_entry_id\":$TAMPERED,\"valid\":false}"
LONG_STEPS=$(for n in $(seq 1 500); do printf '{"name":"Step %d","approver":{"type":"user","user_id":1}}\n' "$n"; done | jq -sc .)
post_json "$API/templates" "{\"name\":\"Long trail\",\"event\":\"long.trail\",\"entity_type\":\"unit\",\"steps\":$LONG_STEPS}"
expect "create a 500-step template" 201
post_json "$API/instances" "$(trigger_body long.trail unit 1 3)"
expect "trigger the 500-step template" 201
L_INST=$(j .id)
failed_approvals=0
for step in $(j '.steps[].id'); do
  approve "$step" '{"acted_by_user_id":1}'
  [ "$STATUS" = 200 ] || failed_approvals=$((failed_approvals + 1))
done
check "500 approvals in a row succeed" 0 "$failed_approvals"
call GET "$API/instances/$L_INST/audit/verify"
expect "verify the 1,002-entry trail" 200
field . '{"entries":1002,"valid":true}'
best=$(for _ in 1 2 3 4 5 6 7; do
  curl -sS -o /dev/null -w '%{time_total}\n' "$BASE$API/instances/$L_INST/audit/verify"
done | sort -n | head -n 1)
check "verifying 1,002 entries takes under 10 ms (best of 7: ${best}s)" yes \
  "$(awk -v s="$best" 'BEGIN { print (s < 0.010) ? "yes" : "no" }')"

log "quorum steps"
for u in 61 62 63; do
  put_json "$API/users/$u" "{\"name\":\"Board member $u\",\"roles\":[\"board\"]}"
  expect "create board member $u" 201
done
board_steps() { # QUORUM (JSON): the board's step with that quorum, then user 2
  printf '[{"name":"Board","approver":{"type":"role","role":"board"},"quorum":%s},{"name":"Finance","approver":{"type":"user","user_id":2}}]' "$1"
}
for bad in 0 -1 1.5 '"most"' true '[2]'; do
  post_json "$API/templates" "{\"name\":\"Board\",\"event\":\"booking.board_x\",\"entity_type\":\"booking\",\"steps\":$(board_steps "$bad")}"
  expect_error "a template step with quorum $bad" 422 validation_failed
  names "steps[0].quorum"
done
post_json "$API/templates" '{"name":"Board","event":"booking.board_x","entity_type":"booking","steps":[{"name":"Owner","approver":{"type":"user","user_id":2},"quorum":2}]}'
expect_error "a quorum of 2 on a step approved by one named user" 422 validation_failed
names "steps[0].quorum"
post_json "$API/templates" "{\"name\":\"Board of four\",\"event\":\"booking.board_four\",\"entity_type\":\"booking\",\"steps\":$(board_steps 4)}"
expect "create a template needing 4 of the 3 board members" 201
post_json "$API/instances" "$(trigger_body booking.board_four booking 1 3)"
expect_error "trigger it: a quorum larger than the snapshot" 422 no_eligible_approver
post_json "$API/templates" "{\"name\":\"Whole board\",\"event\":\"booking.board_all\",\"entity_type\":\"booking\",\"steps\":$(board_steps '"all"')}"
expect "create a template needing the whole board" 201
field '.steps | map(.quorum)' '["all",1]'
post_json "$API/instances" "$(trigger_body booking.board_all booking 1 3)"
expect "trigger the whole-board template" 201
field '.steps | map(.quorum)' '[3,1]'
post_json "$API/templates" "{\"name\":\"Board of two\",\"event\":\"booking.board_two\",\"entity_type\":\"booking\",\"steps\":$(board_steps 2)}"
expect "create a template needing 2 board members" 201
post_json "$API/instances" "$(trigger_body booking.board_two booking 1 3)"
expect "trigger the quorum-2 template" 201
Q_INST=$(j .id)
Q_STEP=$(j '.steps[0].id')
approve "$Q_STEP" '{"acted_by_user_id":61,"comment":"yes"}'
expect "board member 61 approves" 200
field '[.status, .steps[0].status, (.steps[0].approvals | map([.user_id, .comment])), .audit[-1].action]' \
  '["in_progress","awaiting_action",[[61,"yes"]],"approval_recorded"]'
approve "$Q_STEP" '{"acted_by_user_id":61}'
expect_error "board member 61 approves again" 409 already_approved
reject "$Q_STEP" '{"acted_by_user_id":61,"comment":"changed my mind"}'
expect_error "board member 61 rejects after approving" 409 already_approved
approve "$Q_STEP" '{"acted_by_user_id":62}'
expect "board member 62 approves: the quorum is reached" 200
field '[.steps[0].status, .steps[0].acted_by_user_id, (.steps[0].approvals | length), .steps[1].status]' \
  '["approved",62,2,"awaiting_action"]'
field '[.audit[-3:][] | .action]' '["approval_recorded","step_approved","step_activated"]'
approve "$Q_STEP" '{"acted_by_user_id":63}'
expect_error "board member 63 comes too late" 409 step_not_actionable
call GET "$API/instances/$Q_INST/audit/verify"
expect "verify the quorum instance's trail" 200
field .valid true

log "delegation"
for u in 71 72 74; do
  put_json "$API/users/$u" "{\"name\":\"Deputy $u\",\"roles\":[]}"
  expect "create user $u" 201
done
put_json "$API/users/73" '{"name":"Retired deputy","roles":[],"active":false}'
expect "create user 73, inactive" 201
UNTIL=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
DELEG="$API/users/74/delegation"
delegate_body() { printf '{"to_user_id":%s,"until":"%s"%s}' "$1" "$2" "${3:+,$3}"; }
put_json "$DELEG" '{"to_user_id":71,'
expect_error "a delegation with malformed JSON" 400 invalid_json
put_json "$DELEG" "$(delegate_body 71 "$UNTIL" '"note":"x"')"
expect_error "a delegation with an unknown field" 422 validation_failed
names note
put_json "$DELEG" "{\"to_user_id\":\"71\",\"until\":\"$UNTIL\"}"
expect_error "a delegation with a string to_user_id" 422 validation_failed
names to_user_id
put_json "$DELEG" '{"to_user_id":71,"until":1893456000}'
expect_error "a delegation with a numeric until" 422 validation_failed
names until
put_json "$DELEG" '{"to_user_id":71,"until":"next week"}'
expect_error "a delegation with an until that is no RFC 3339 time" 422 validation_failed
names until
put_json "$DELEG" '{"to_user_id":71}'
expect_error "a delegation without until" 422 validation_failed
names until
put_json "$DELEG" "$(delegate_body 71 2020-01-01T00:00:00Z)"
expect_error "a delegation ending in the past" 422 validation_failed
names until
put_json "$DELEG" "$(delegate_body 71 "$UNTIL" '"reason":" "')"
expect_error "a delegation with a blank reason" 422 validation_failed
names reason
put_json "$DELEG" "$(delegate_body 74 "$UNTIL")"
expect_error "user 74 delegates to themself" 422 validation_failed
names to_user_id
put_json "$DELEG" "$(delegate_body 73 "$UNTIL")"
expect_error "user 74 delegates to inactive user 73" 422 validation_failed
names to_user_id
put_json "$DELEG" "$(delegate_body 999999 "$UNTIL")"
expect_error "user 74 delegates to unknown user 999999" 422 unknown_user
names to_user_id
put_json "$API/users/999999/delegation" "$(delegate_body 71 "$UNTIL")"
expect_error "unknown user 999999 delegates" 404 not_found
call DELETE "$DELEG"
expect_error "end user 74's delegation when none runs" 404 not_found
call DELETE "$API/users/999999/delegation"
expect_error "end unknown user 999999's delegation" 404 not_found
call GET "$DELEG"
expect_error "GET a delegation (read it on the user)" 405 method_not_allowed
check "the refusals stored no delegation" 0 "$(sql "SELECT count(*) FROM workflow_delegations")"
put_json "$DELEG" "$(delegate_body 71 "$UNTIL" '"reason":"Holiday"')"
expect "user 74 delegates to user 71 until tomorrow" 200
field '[.user_id, .to_user_id, .reason, (.until | startswith("'"${UNTIL%Z}"'"))]' '[74,71,"Holiday",true]'
call GET "$API/users/74"
expect "read user 74" 200
field '[.delegation.to_user_id, .delegation.reason]' '[71,"Holiday"]'
call GET "$API/users/71"
expect "read user 71" 200
field 'has("delegation")' false
put_json "$API/users/71/delegation" "$(delegate_body 74 "$UNTIL")"
expect_error "user 71 delegates back to user 74" 409 delegation_cycle
put_json "$API/users/71/delegation" "$(delegate_body 72 "$UNTIL")"
expect "user 71 delegates to user 72 (a chain, no cycle)" 200
post_json "$API/templates" '{"name":"Owner sign-off","event":"booking.owner_sign_off","entity_type":"booking","steps":[{"name":"Owner","approver":{"type":"user","user_id":74}}]}'
expect "create a template approved by user 74 alone" 201
post_json "$API/instances" "$(trigger_body booking.owner_sign_off booking 71 3)"
expect "trigger it for booking 71" 201
D_INST=$(j .id)
D_STEP=$(j '.steps[0].id')
call GET "$API/steps/pending?user_id=71"
expect "user 71's inbox" 200
field "[.items[] | select(.step_id == $D_STEP) | .on_behalf_of]" '[74]'
call GET "$API/steps/pending?user_id=74"
expect "user 74's own inbox" 200
field "[.items[] | select(.step_id == $D_STEP) | has(\"on_behalf_of\")]" '[false]'
approve "$D_STEP" '{"acted_by_user_id":72}'
expect_error "user 72 (71's delegate) acts for user 74: not transitive" 403 not_an_approver
approve "$D_STEP" '{"acted_by_user_id":71,"comment":"for the owner"}'
expect "user 71 approves for user 74" 200
field '[.status, .steps[0].acted_by_user_id, .steps[0].approvals[0].user_id, .steps[0].approvals[0].acted_by_user_id]' '["approved",71,74,71]'
field '[.audit[] | select(.on_behalf_of != null) | [.action, .actor_user_id, .on_behalf_of]]' \
  '[["step_approved",71,74],["instance_approved",71,74]]'
call GET "$API/instances/$D_INST/audit/verify"
expect "verify the delegated instance's trail" 200
field .valid true
check "the SQL chain (workflow_audit_first_bad) agrees" "" "$(sql "SELECT workflow_audit_first_bad($D_INST)")"
call DELETE "$DELEG"
expect "end user 74's delegation" 204
call DELETE "$DELEG"
expect_error "end it again" 404 not_found
call GET "$API/users/74"
expect "read user 74 once its delegation ended" 200
field 'has("delegation")' false
post_json "$API/instances" "$(trigger_body booking.owner_sign_off booking 72 3)"
expect "trigger it for booking 72" 201
approve "$(j '.steps[0].id')" '{"acted_by_user_id":71}'
expect_error "user 71 acts for user 74 after the delegation ended" 403 not_an_approver

log "conditional steps"
call GET "$API/templates/4"
expect "the demo's discount template" 200
field '[.event, .entity_type, (.steps | map([.approver.role, .when]))]' \
  '["unit.discount_requested","unit",[["sales_manager",null],["finance_manager","context.discount_percent > 10"]]]'
cond_steps() { # WHEN (JSON): a sales step, then a finance step with that condition
  printf '[{"name":"Sales","approver":{"type":"role","role":"sales_manager"}},{"name":"Finance","approver":{"type":"role","role":"finance_manager"},"when":%s}]' "$1"
}
post_json "$API/templates" "{\"name\":\"Cond\",\"event\":\"unit.cond_x\",\"entity_type\":\"unit\",\"steps\":$(cond_steps '"context.discount_percent >"')}"
expect_error "POST a template whose condition does not parse" 422 validation_failed
names "steps[1].when"
names "step 2 ('Finance')"
names "line 1"
put_json "$API/templates/$R_T" "{\"steps\":$(cond_steps '"context.x ++"')}"
expect_error "PUT a template whose condition does not parse" 422 validation_failed
names "steps[1].when"
post_json "$API/templates/$R_T/versions" "{\"steps\":$(cond_steps '"(context.x"')}"
expect_error "POST a version whose condition does not parse" 422 validation_failed
names "steps[1].when"
for bad in 5 true '"  "' '{"x":1}'; do
  post_json "$API/templates" "{\"name\":\"Cond\",\"event\":\"unit.cond_x\",\"entity_type\":\"unit\",\"steps\":$(cond_steps "$bad")}"
  expect_error "a template step with when $bad" 422 validation_failed
  names "steps[1].when"
done
post_json "$API/templates" "{\"name\":\"Cond\",\"event\":\"unit.cond_ok\",\"entity_type\":\"unit\",\"is_active\":false,\"steps\":$(cond_steps '"context.amount >= 100 && context.kind == '"'"'resale'"'"'"')}"
expect "create a template with a condition" 201
C_T=$(j .id)
field '.steps | map(.when)' '[null,"context.amount >= 100 && context.kind == '"'"'resale'"'"'"]'
call GET "$API/templates/$C_T/versions/1"
expect "its version 1 keeps the condition" 200
field '.steps[1].when' "context.amount >= 100 && context.kind == 'resale'"
# Nobody holds finance_manager since the no_eligible_approver checks: a skipped step needs nobody.
post_json "$API/instances" "$(trigger_body unit.discount_requested unit 1 3 '{"discount_percent":5}')"
expect "trigger a 5% discount on unit 1 (nobody is a finance manager: step 2 needs nobody)" 201
D_INST=$(j .id)
D_STEP=$(j '.steps[0].id')
field '[.status, (.steps | map(.status))]' '["in_progress",["awaiting_action","skipped"]]'
field '[.audit[] | .action]' '["instance_created","step_activated","step_skipped"]'
field '.audit[2].comment' 'condition is false: context.discount_percent > 10'
call GET "$API/steps/pending?user_id=2"
expect "finance's inbox after the 5% discount" 200
field "[.items[] | select(.instance_id == $D_INST)] | length" 0
approve "$D_STEP" '{"acted_by_user_id":1}'
expect "sales approves the 5% discount: nothing is left to ask" 200
field '[.status, (.steps | map(.status)), .audit[-1].action]' '["approved",["approved","skipped"],"instance_approved"]'
call GET "$API/instances/$D_INST/audit/verify"
expect "verify the skipped step's trail" 200
field .valid true
put_json "$API/users/2" '{"name":"Finance Manager","roles":["finance_manager"]}'
expect "user 2 is a finance manager again" 200
post_json "$API/instances" "$(trigger_body unit.discount_requested unit 2 3 '{"discount_percent":20}')"
expect "trigger a 20% discount on unit 2: two steps" 201
field '[.status, (.steps | map(.status))]' '["in_progress",["awaiting_action","pending"]]'
post_json "$API/instances" "$(trigger_body unit.discount_requested unit 3 3 '{"reason":"loyal customer"}')"
expect "trigger a discount without discount_percent: the step is kept" 201
field '[.status, (.steps | map(.status))]' '["in_progress",["awaiting_action","pending"]]'
post_json "$API/instances" "$(trigger_body unit.discount_requested unit 4 3 '{"discount_percent":"twenty"}')"
expect "trigger a discount whose discount_percent is text: the step is kept" 201
field '.steps | map(.status)' '["awaiting_action","pending"]'
ALL_SKIP='[{"name":"Sales","approver":{"type":"role","role":"sales_manager"},"when":"context.amount > 100"},{"name":"Finance","approver":{"type":"role","role":"finance_manager"},"when":"context.amount > 1000"}]'
post_json "$API/templates" "{\"name\":\"Small refunds\",\"event\":\"booking.small_refund\",\"entity_type\":\"booking\",\"steps\":$ALL_SKIP}"
expect "create a template whose steps are both conditional" 201
post_json "$API/instances" "$(trigger_body booking.small_refund booking 1 3 '{"amount":40}')"
expect "trigger it with both conditions false: approved at once" 201
S_INST=$(j .id)
field '[.status, (.completed_at != null), (.steps | map(.status))]' '["approved",true,["skipped","skipped"]]'
field '[.audit[] | [.action, .actor_user_id]]' '[["instance_created",3],["step_skipped",null],["step_skipped",null],["instance_approved",null]]'
check "its instance.approved event is in the outbox" 1 \
  "$(sql "SELECT count(*) FROM workflow_callback_outbox WHERE instance_id = $S_INST AND kind = 'on_approved'")"

log "due dates"
due_steps() { # FIELDS (JSON object members): user 2's step with those fields added
  printf '[{"name":"Review","approver":{"type":"user","user_id":2}%s}]' "$1"
}
due_template() { # EVENT FIELDS: POST a template for EVENT (entity type unit) whose step has FIELDS
  post_json "$API/templates" "{\"name\":\"Due\",\"event\":\"$1\",\"entity_type\":\"unit\",\"steps\":$(due_steps "$2")}"
}
for bad in '"48 hours"' '"P1M"' '"P1W"' '"PT0S"' '"PT"' '"pt2h"' '"PT1.5H"' 48 true; do
  due_template unit.due_x ",\"due_in\":$bad"
  expect_error "a template step with due_in $bad" 422 validation_failed
  names "steps[0].due_in"
done
due_template unit.due_x ',"due_in":"PT1H","on_overdue":"shout"'
expect_error "a template step with on_overdue \"shout\"" 422 validation_failed
names "steps[0].on_overdue"
due_template unit.due_x ',"due_in":"PT1H","on_overdue":3'
expect_error "a template step with on_overdue 3" 422 validation_failed
names "steps[0].on_overdue"
due_template unit.due_x ',"on_overdue":"reject"'
expect_error "a template step with on_overdue but no due_in" 422 validation_failed
names "steps[0].due_in"
due_template unit.due_x ',"due_in":"PT1H","on_overdue":"escalate"'
expect_error "a template step that escalates without escalate_to" 422 validation_failed
names "steps[0].escalate_to"
due_template unit.due_x ',"due_in":"PT1H","on_overdue":"reject","escalate_to":{"user_id":2}'
expect_error "a template step with escalate_to but on_overdue reject" 422 validation_failed
names "steps[0].escalate_to"
due_template unit.due_x ',"due_in":"PT1H","escalate_to":{"user_id":2}'
expect_error "a template step with escalate_to but on_overdue notify (the default)" 422 validation_failed
names "steps[0].escalate_to"
due_template unit.due_x ',"due_in":"PT1H","on_overdue":"escalate","escalate_to":{"user_id":2,"role":"director"}'
expect_error "escalate_to with both user_id and role" 422 validation_failed
names "steps[0].escalate_to"
due_template unit.due_x ',"due_in":"PT1H","on_overdue":"escalate","escalate_to":{}'
expect_error "escalate_to with neither user_id nor role" 422 validation_failed
names "steps[0].escalate_to"
due_template unit.due_x ',"due_in":"PT1H","on_overdue":"escalate","escalate_to":{"type":"role","user_id":2}'
expect_error "escalate_to of type role with a user_id" 422 validation_failed
names "steps[0].escalate_to.user_id"
due_template unit.due_x ',"due_in":"PT1H","on_overdue":"escalate","escalate_to":{"role":"director","team":1}'
expect_error "escalate_to with an unknown field" 422 validation_failed
names "steps[0].escalate_to.team"
due_template unit.due_x ',"due_in":"PT1H","on_overdue":"escalate","escalate_to":"director"'
expect_error "escalate_to that is not an object" 422 validation_failed
names "steps[0].escalate_to"
due_template unit.due_x ',"due":"PT1H"'
expect_error "a template step with an unknown field due" 422 validation_failed
names "steps[0].due"
post_json "$API/templates/$R_T/versions" "{\"steps\":$(due_steps ',"due_in":"2 days"')}"
expect_error "POST a version whose due_in is not a duration" 422 validation_failed
names "steps[0].due_in"
put_json "$API/users/91" '{"name":"Director","roles":["director"]}'
expect "create director 91" 201
due_template unit.due_escalate ',"due_in":"PT2S","on_overdue":"escalate","escalate_to":{"role":"director"}'
expect "create a template whose step escalates to the directors after 2 s" 201
E_T=$(j .id)
field '.steps[0] | [.due_in, .on_overdue, .escalate_to.role]' '["PT2S","escalate","director"]'
call GET "$API/templates/$E_T/versions/1"
expect "its version 1 keeps the due date rule" 200
field '.steps[0] | [.due_in, .on_overdue, .escalate_to.type, .escalate_to.role]' '["PT2S","escalate","role","director"]'
due_template unit.due_reject ',"due_in":"PT2S","on_overdue":"reject"'
expect "create a template whose step is rejected after 2 s" 201
field '.steps[0] | [.due_in, .on_overdue, has("escalate_to")]' '["PT2S","reject",false]'
post_json "$API/instances" "$(trigger_body unit.due_escalate unit 1 3)"
expect "trigger the escalating template" 201
E_INST=$(j .id)
field '.steps[0] | ((.due_at | sub("\\.[0-9]+"; "") | fromdate) - (.activated_at | sub("\\.[0-9]+"; "") | fromdate) | floor | tostring)' '2'
post_json "$API/instances" "$(trigger_body unit.due_reject unit 1 3)"
expect "trigger the rejecting template" 201
R_INST=$(j .id)
# The scheduler polls every second (OVERDUE_POLL_INTERVAL): both are handled within 8 s.
for _ in $(seq 1 32); do
  call GET "$API/instances/$R_INST"
  [ "$(j .status)" = rejected ] && break
  sleep 0.25
done
expect "the rejecting instance, once overdue" 200
field '[.status, .steps[0].status, .steps[0].acted_by_user_id, .steps[0].comment]' '["rejected","rejected",null,"overdue"]'
field '[.audit[-2:][] | [.action, .actor_user_id, .comment]]' '[["step_rejected",null,"overdue"],["instance_rejected",null,"overdue"]]'
call GET "$API/instances/$E_INST"
expect "the escalating instance, once overdue" 200
field '[.status, .steps[0].eligible_user_ids]' '["in_progress",[2,91]]'
field '.audit[-1] | [.action, .actor_user_id, .comment]' '["step_escalated",null,"added users 91"]'
for inst in "$E_INST" "$R_INST"; do
  call GET "$API/instances/$inst/audit/verify"
  expect "verify overdue instance $inst's trail" 200
  field .valid true
done
check "one step.overdue event per overdue instance" 2 \
  "$(sql "SELECT count(*) FROM workflow_callback_outbox WHERE instance_id IN ($E_INST, $R_INST) AND kind = 'step_overdue'")"
call GET "$API/steps/pending?user_id=91"
expect "director 91's inbox after the escalation" 200
field "[.items[] | select(.instance_id == $E_INST)] | length" 1
approve "$(j '.items[0].step_id')" '{"acted_by_user_id":91}'
expect "director 91 approves the escalated step" 200
field .status approved

# Webhooks: subscriptions, their refusals, and the delivery endpoints. This server does not
# allow private networks, so a loopback, private or metadata URL is refused.
sub_body() { printf '{"url":"%s","event_types":%s}' "$1" "$2"; }
post_json "$API/subscriptions" "$(sub_body ftp://example.com/ '["instance.approved"]')"
expect_error "subscribe an ftp URL" 422 validation_failed
post_json "$API/subscriptions" "$(sub_body 'not a url' '["instance.approved"]')"
expect_error "subscribe something that is no URL" 422 validation_failed
post_json "$API/subscriptions" "$(sub_body https://user:pw@example.com/ '["instance.approved"]')"
expect_error "subscribe a URL with credentials" 422 validation_failed
post_json "$API/subscriptions" "$(sub_body http://127.0.0.1:9/hook '["instance.approved"]')"
expect_error "subscribe a loopback URL" 422 validation_failed
post_json "$API/subscriptions" "$(sub_body http://localhost/hook '["instance.approved"]')"
expect_error "subscribe a name that resolves to loopback" 422 validation_failed
post_json "$API/subscriptions" "$(sub_body http://10.1.2.3/hook '["instance.approved"]')"
expect_error "subscribe a private URL" 422 validation_failed
post_json "$API/subscriptions" "$(sub_body http://169.254.169.254/latest/meta-data '["instance.approved"]')"
expect_error "subscribe the cloud metadata address" 422 validation_failed
post_json "$API/subscriptions" "$(sub_body 'http://[fd00:ec2::254]/' '["instance.approved"]')"
expect_error "subscribe an IPv6 unique-local (metadata) address" 422 validation_failed
post_json "$API/subscriptions" "$(sub_body https://192.0.2.10/hook '[]')"
expect_error "subscribe to no event type" 422 validation_failed
post_json "$API/subscriptions" "$(sub_body https://192.0.2.10/hook '["instance.exploded"]')"
expect_error "subscribe to an unknown event type" 422 validation_failed
post_json "$API/subscriptions" '{"url":"https://192.0.2.10/hook"}'
expect_error "subscribe without event_types" 422 validation_failed
post_json "$API/subscriptions" "$(sub_body https://192.0.2.10/hook '["step.awaiting_action"]')"
expect "subscribe a public address to step.awaiting_action" 201
SUB=$(j .id)
check "  the secret is whsec_ and base64" yes "$(j 'if (.secret | test("^whsec_[A-Za-z0-9+/=]{32,}$")) then "yes" else . end')"
call GET "$API/subscriptions"
expect "list subscriptions" 200
check "  listed without secrets" 0 "$(j '[.items[] | select(has("secret"))] | length')"
call GET "$API/subscriptions/$SUB/deliveries?status="
expect "deliveries with an empty status (no filter)" 200
call GET "$API/subscriptions/$SUB/deliveries?status=lost"
expect_error "deliveries with an unknown status" 422 validation_failed
call GET "$API/subscriptions/$SUB/deliveries?state=dead"
expect_error "deliveries with an unknown parameter" 422 validation_failed
call GET "$API/subscriptions/999999/deliveries"
expect_error "deliveries of an unknown subscription" 404 not_found
call POST "$API/deliveries/999999/retry"
expect_error "retry an unknown delivery" 404 not_found
call POST "$API/deliveries/x/retry"
expect_error "retry a delivery whose id is no number" 404 not_found
post_json "$API/instances" "$(trigger_body booking.cancellation_requested booking 7 3)"
expect "trigger booking 7: a step.awaiting_action for the subscription" 201
DELIVERY=
for _ in $(seq 1 40); do
  call GET "$API/subscriptions/$SUB/deliveries"
  DELIVERY=$(j '.items[0].id // empty')
  [[ -n $DELIVERY ]] && break
  sleep 0.25
done
check "  the event fanned out to one delivery" yes "$([[ -n $DELIVERY ]] && echo yes || echo no)"
call POST "$API/deliveries/$DELIVERY/retry"
expect_error "retry a delivery that is pending (or being sent)" 409 delivery_not_retryable
call DELETE "$API/subscriptions/999999"
expect_error "delete an unknown subscription" 404 not_found
call DELETE "$API/subscriptions/$SUB"
expect "delete the subscription" 204
call GET "$API/subscriptions/$SUB/deliveries"
expect_error "deliveries of the deleted subscription" 404 not_found

# The audit log refuses changes, even from the table owner.
if sql "DELETE FROM workflow_audit_log" >/dev/null 2>&1; then refused=no; else refused=yes; fi
check "the database refuses DELETE on the audit log" yes "$refused"

# Readiness: the database, and NATS when it is configured. A second server on the same database
# is pointed at a port where no NATS listens: it starts anyway, is alive but not ready.
call GET /readyz
expect "readyz" 200
field . '{"checks":{"database":"ok"},"status":"ready"}'
NO_NATS_PORT=$(free_port)
PORT2=$(free_port)
log "starting a server with NATS_URL on port $NO_NATS_PORT, where nothing listens"
start_server "$PORT2" "$WORK/server-nats.log" DATABASE_URL="$DB_URL" RUST_LOG=warn \
  NATS_URL="nats://127.0.0.1:$NO_NATS_PORT" NATS_TIMEOUT=500ms
MAIN_BASE=$BASE
BASE="http://127.0.0.1:$PORT2"
call GET /healthz
expect "healthz with NATS down" 200
call GET /readyz
expect_error "readyz with NATS down" 503 unavailable
check "  the message names the nats check" yes \
  "$(j 'if (.error.message | contains("nats: unavailable")) then "yes" else . end')"
check "  and the database check as ok" yes \
  "$(j 'if (.error.message | contains("database: ok")) then "yes" else . end')"
BASE=$MAIN_BASE

grep -q 'panicked' "$WORK/server.log" "$WORK/server-nats.log" && panicked=yes || panicked=no
check "the server logs have no panic" no "$panicked"

check_summary
