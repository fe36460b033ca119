# shellcheck shell=bash
# The SQL invariants every script that drives the server hard checks over its whole database
# afterwards; source it after lib.sh and define `sql SQL` (prints the result of one statement).
# Provides: check_invariants (one `check` line per invariant; sets INVARIANTS to their count).

check_invariants() {
  local before=$((CHECKS_PASSED + CHECKS_FAILED))
  log "invariants over the whole database"
  check "at most one awaiting_action step per instance" 0 \
    "$(sql "SELECT count(*) FROM (SELECT instance_id FROM workflow_instance_steps
            WHERE status = 'awaiting_action' GROUP BY instance_id HAVING count(*) > 1) x")"
  check "no awaiting_action step under an ended instance" 0 \
    "$(sql "SELECT count(*) FROM workflow_instance_steps s JOIN workflow_instances i ON i.id = s.instance_id
            WHERE s.status = 'awaiting_action' AND i.status NOT IN ('pending', 'in_progress')")"
  check "every decided step has exactly one matching audit entry" 0 \
    "$(sql "SELECT count(*) FROM workflow_instance_steps s WHERE s.status IN ('approved', 'rejected')
            AND (SELECT count(*) FROM workflow_audit_log a
                 WHERE a.step_id = s.id AND a.action = 'step_' || s.status) <> 1")"
  check "no decision audit entry contradicts its step (action or actor)" 0 \
    "$(sql "SELECT count(*) FROM workflow_audit_log a JOIN workflow_instance_steps s ON s.id = a.step_id
            WHERE a.action IN ('step_approved', 'step_rejected')
            AND (a.action <> 'step_' || s.status OR a.actor_user_id IS DISTINCT FROM s.acted_by_user_id)")"
  check "no approved instance with an undecided step" 0 \
    "$(sql "SELECT count(*) FROM workflow_instances i WHERE i.status = 'approved'
            AND EXISTS (SELECT 1 FROM workflow_instance_steps s WHERE s.instance_id = i.id AND s.status <> 'approved')")"
  check "every step activated at most once" 0 \
    "$(sql "SELECT count(*) FROM (SELECT step_id FROM workflow_audit_log WHERE action = 'step_activated'
            GROUP BY step_id HAVING count(*) > 1) x")"
  check "every ended instance has exactly one ending audit entry, matching its status" 0 \
    "$(sql "SELECT count(*) FROM workflow_instances i WHERE i.status IN ('approved', 'rejected', 'cancelled')
            AND ((SELECT count(*) FROM workflow_audit_log a WHERE a.instance_id = i.id
                  AND a.action IN ('instance_approved', 'instance_rejected', 'instance_cancelled')) <> 1
                 OR NOT EXISTS (SELECT 1 FROM workflow_audit_log a WHERE a.instance_id = i.id
                                AND a.action = 'instance_' || i.status))")"
  check "no active instance has an ending audit entry" 0 \
    "$(sql "SELECT count(*) FROM workflow_instances i WHERE i.status IN ('pending', 'in_progress')
            AND EXISTS (SELECT 1 FROM workflow_audit_log a WHERE a.instance_id = i.id
                        AND a.action IN ('instance_approved', 'instance_rejected', 'instance_cancelled'))")"
  check "every ended instance has exactly one outcome event in the outbox, of its outcome's kind" 0 \
    "$(sql "SELECT count(*) FROM workflow_instances i WHERE i.status IN ('approved', 'rejected', 'cancelled')
            AND (SELECT count(*) || ' ' || coalesce(string_agg(kind, ','), '-') FROM workflow_callback_outbox o
                 WHERE o.instance_id = i.id AND o.kind LIKE 'on\_%') <> '1 on_' || i.status")"
  check "no outcome event in the outbox for an active instance" 0 \
    "$(sql "SELECT count(*) FROM workflow_callback_outbox o JOIN workflow_instances i ON i.id = o.instance_id
            WHERE i.status IN ('pending', 'in_progress') AND o.kind LIKE 'on\_%'")"
  check "every step that awaited action has one step.awaiting_action event, plus one per escalation that added users" 0 \
    "$(sql "SELECT count(*) FROM workflow_instance_steps s WHERE s.activated_at IS NOT NULL
            AND (SELECT count(*) FROM workflow_callback_outbox o WHERE o.instance_id = s.instance_id
                 AND o.kind = 'step_awaiting_action' AND (o.payload -> 'step' ->> 'id')::bigint = s.id)
                <> 1 + (SELECT count(*) FROM workflow_audit_log a WHERE a.step_id = s.id
                        AND a.action = 'step_escalated' AND a.comment LIKE 'added users %')")"
  check "every step handled as overdue has exactly one step.overdue event" 0 \
    "$(sql "SELECT count(*) FROM workflow_instance_steps s
            WHERE (SELECT count(*) FROM workflow_callback_outbox o WHERE o.instance_id = s.instance_id
                   AND o.kind = 'step_overdue' AND (o.payload -> 'step' ->> 'id')::bigint = s.id)
                  <> CASE WHEN s.overdue_at IS NULL THEN 0 ELSE 1 END")"
  check "an approved step holds exactly its quorum of approvals" 0 \
    "$(sql "SELECT count(*) FROM workflow_instance_steps
            WHERE status = 'approved' AND jsonb_array_length(approvals) <> quorum")"
  check "a step awaiting action holds fewer approvals than its quorum" 0 \
    "$(sql "SELECT count(*) FROM workflow_instance_steps
            WHERE status = 'awaiting_action' AND jsonb_array_length(approvals) >= quorum")"
  check "each approval on a quorum step has its approval_recorded audit entry" 0 \
    "$(sql "SELECT count(*) FROM workflow_instance_steps s WHERE s.quorum > 1
            AND jsonb_array_length(s.approvals) <> (SELECT count(*) FROM workflow_audit_log a
                WHERE a.step_id = s.id AND a.action = 'approval_recorded')")"
  check "each instance's events are numbered 1 to n without gaps" 0 \
    "$(sql "SELECT count(*) FROM (SELECT instance_id FROM workflow_callback_outbox GROUP BY instance_id
            HAVING min(sequence) <> 1 OR max(sequence) <> count(*)) x")"
  check "each instance's last event number is the number of its events" 0 \
    "$(sql "SELECT count(*) FROM workflow_instances i WHERE i.last_event_sequence <>
            (SELECT count(*) FROM workflow_callback_outbox o WHERE o.instance_id = i.id)")"
  check "no cancelled instance with an open step, nor an approval after its cancel" 0 \
    "$(sql "SELECT count(*) FROM workflow_instances i WHERE i.status = 'cancelled'
            AND (EXISTS (SELECT 1 FROM workflow_instance_steps s WHERE s.instance_id = i.id
                         AND s.status IN ('pending', 'awaiting_action'))
                 OR EXISTS (SELECT 1 FROM workflow_audit_log a WHERE a.instance_id = i.id
                            AND a.action IN ('step_approved', 'step_rejected') AND a.at > i.completed_at))")"
  INVARIANTS=$((CHECKS_PASSED + CHECKS_FAILED - before))
}
