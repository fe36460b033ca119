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
start_server "$PORT" "$WORK/server.log" DATABASE_URL="$DB_URL" RUST_LOG=warn
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
call GET "$API/instances"
expect_error "GET the trigger path" 405 method_not_allowed
call GET "$API/steps/$S_S1/approve"
expect_error "GET an approve path" 405 method_not_allowed

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

# The audit log refuses changes, even from the table owner.
if sql "DELETE FROM workflow_audit_log" >/dev/null 2>&1; then refused=no; else refused=yes; fi
check "the database refuses DELETE on the audit log" yes "$refused"

grep -q 'panicked' "$WORK/server.log" && panicked=yes || panicked=no
check "the server log has no panic" no "$panicked"

check_summary
