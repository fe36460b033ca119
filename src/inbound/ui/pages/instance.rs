//! Driving adapter, pages: one request (`GET /ui/instances/{id}`): its header, its steps as a
//! timeline with who decided what and when, the decision form on a step the user you act as
//! may decide, the audit with times, and the context it was started with.

use std::collections::HashMap;
use std::sync::Arc;

use maud::{Markup, html};
use warp::reply::Response;

use super::{acting, csrf_field, failure};
use crate::domain::WorkflowError;
use crate::domain::model::{Instance, InstanceId, InstanceStep, StepId, StepStatus, User, UserId};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::ui::browser::Browser;
use crate::inbound::ui::form::canonical_id;
use crate::inbound::ui::names::Names;
use crate::inbound::ui::page::{Page, Section};
use crate::inbound::ui::wording::{
    approver, audit_action, instance_status, step_status, time, waited,
};

/// `GET /ui/instances/{id}`
pub async fn page<S: WorkflowUseCases>(
    raw_id: String,
    service: Arc<S>,
    browser: Browser,
) -> Response {
    let acting = match acting(&*service, &browser).await {
        Ok(acting) => acting,
        Err(e) => return failure(&browser, None, &e),
    };
    let Some(id) = canonical_id(&raw_id).and_then(|id| InstanceId::new(id).ok()) else {
        let e = WorkflowError::not_found(format!("request '{raw_id}'"));
        return failure(&browser, acting, &e);
    };
    let instance = match service.instance(id).await {
        Ok(instance) => instance,
        Err(WorkflowError::NotFound { .. }) => {
            return failure(
                &browser,
                acting,
                &WorkflowError::not_found(format!("request {id}")),
            );
        }
        Err(e) => return failure(&browser, acting, &e),
    };
    let delegated = match delegated_steps(&*service, &instance, acting.as_ref()).await {
        Ok(delegated) => delegated,
        Err(e) => return failure(&browser, acting, &e),
    };
    let mut ids = mentioned(&instance);
    ids.extend(delegated.values().copied());
    let names = match Names::load(&*service, ids).await {
        Ok(names) => names,
        Err(e) => return failure(&browser, acting, &e),
    };
    let body = view(&instance, &names, acting.as_ref(), &delegated, &browser);
    let title = format!(
        "Request {}: {} {}",
        instance.id, instance.entity_type, instance.entity_id
    );
    Page::new(title, Section::Other, body)
        .acting(acting)
        .render(&browser)
}

/// Most inbox pages read to find the steps of this request the user decides as a delegate.
const MAX_INBOX_PAGES: usize = 20;

/// The awaiting steps of `instance` that `acting` may decide as a delegate, each with the
/// delegator it acts for: the user's inbox says so (the service's own rule, the same the
/// decision applies). Read only when an awaiting step does not list the user itself.
async fn delegated_steps<S: WorkflowUseCases>(
    service: &S,
    instance: &Instance,
    acting: Option<&User>,
) -> Result<HashMap<StepId, UserId>, WorkflowError> {
    let mut found = HashMap::new();
    let Some(user) = acting else {
        return Ok(found);
    };
    let asks_others = instance
        .steps
        .iter()
        .any(|s| s.status == StepStatus::AwaitingAction && !s.eligible_user_ids.contains(&user.id));
    if !asks_others || !instance.status.is_active() {
        return Ok(found);
    }
    let mut after = None;
    for _ in 0..MAX_INBOX_PAGES {
        let page = service.pending_steps(user.id, 500, after).await?;
        for item in &page.items {
            if let (true, Some(delegator)) = (item.instance_id == instance.id, item.on_behalf_of) {
                found.insert(item.step_id, delegator);
            }
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(found)
}

/// Every user the page names.
fn mentioned(instance: &Instance) -> Vec<UserId> {
    let mut ids = vec![instance.initiated_by];
    for step in &instance.steps {
        ids.extend(step.acted_by_user_id);
        ids.extend(step.eligible_user_ids.iter().copied());
        ids.extend(step.approvals.iter().map(|a| a.user_id));
        ids.extend(step.approvals.iter().filter_map(|a| a.acted_by));
        if let crate::domain::model::Approver::User { user_id } = step.approver {
            ids.push(user_id);
        }
    }
    ids.extend(instance.audit.iter().filter_map(|e| e.actor_user_id));
    ids
}

/// The status's word, preceded by a symbol that repeats it for the eye (colour repeats it too).
fn badge(class: &str, word: &str) -> Markup {
    let symbol = match class {
        "approved" => "✓",
        "rejected" => "✗",
        "cancelled" => "⊘",
        "awaiting_action" | "in_progress" => "…",
        _ => "○",
    };
    html! {
        strong class={ "status status-" (class) } {
            span aria-hidden="true" { (symbol) " " } (word)
        }
    }
}

fn view(
    instance: &Instance,
    names: &Names,
    acting: Option<&User>,
    delegated: &HashMap<StepId, UserId>,
    browser: &Browser,
) -> Markup {
    html! {
        h1 { "Request " (instance.id) ": " (instance.entity_type) " " (instance.entity_id) }
        p.lead {
            "Status: " (badge(instance.status.as_str(), instance_status(instance.status)))
        }
        dl.facts {
            dt { "Event" } dd { code { (instance.event) } }
            dt { "About" } dd { (instance.entity_type) " " (instance.entity_id) }
            dt { "Requested by" } dd { (names.of(instance.initiated_by)) }
            dt { "Started" } dd { (time(instance.created_at)) }
            @if let Some(done) = instance.completed_at {
                dt { "Finished" } dd { (time(done)) }
            }
            dt { "Template" }
            dd {
                a href={ "/ui/templates#template-" (instance.template_id) } {
                    "template " (instance.template_id)
                }
                ", version " (instance.template_version)
            }
        }
        h2 { "Steps" }
        ol.timeline {
            @for step in &instance.steps {
                (step_item(instance, step, names, acting, delegated.get(&step.id).copied(), browser))
            }
        }
        h2 { "History" }
        (history(instance, names))
        h2 { "Context" }
        (context(instance.context.as_ref()))
    }
}

fn step_item(
    instance: &Instance,
    step: &InstanceStep,
    names: &Names,
    acting: Option<&User>,
    on_behalf_of: Option<UserId>,
    browser: &Browser,
) -> Markup {
    let may_decide = step.status == StepStatus::AwaitingAction
        && (acting.is_some_and(|u| step.eligible_user_ids.contains(&u.id))
            || on_behalf_of.is_some());
    let eligible: Vec<String> = step
        .eligible_user_ids
        .iter()
        .map(|id| names.of(*id))
        .collect();
    html! {
        li class={ "step step-" (step.status.as_str()) } id={ "step-" (step.id) } {
            h3 { (step.step_order) ". " (step.name) }
            p { (badge(step.status.as_str(), step_status(step.status))) }
            p.detail {
                "Approver: " (approver(&step.approver, names))
                @if !eligible.is_empty() { ". May decide: " (eligible.join(", ")) }
                "."
            }
            @match (step.status, step.acted_by_user_id, step.acted_at) {
                (StepStatus::Approved | StepStatus::Rejected, Some(by), Some(at)) => {
                    p {
                        (step_status(step.status)) " by " strong { (names.of(by)) } " at " (time(at))
                    }
                }
                (StepStatus::Rejected, None, Some(at)) => {
                    // Nobody acted: the engine rejected the step when it was overdue.
                    p { "Rejected by the system at " (time(at)) "." }
                }
                (StepStatus::AwaitingAction, _, _) => {
                    @if let Some(since) = step.activated_at {
                        p { "Waiting since " (time(since)) " (" (waited(since, chrono::Utc::now())) ")." }
                    }
                    @if let Some(due) = step.due_at {
                        p.due { "Due by " (time(due)) "." }
                    }
                }
                (StepStatus::Pending, _, _) => p.detail { "Opens when the steps before it are approved." },
                (StepStatus::Cancelled, _, _) => p.detail { "Closed: the request was cancelled." },
                _ => {}
            }
            @if step.quorum > 1 {
                p.quorum {
                    (step.approvals.len()) " of " (step.quorum) " approvals"
                    @if !step.approvals.is_empty() { ": " }
                    @for (i, given) in step.approvals.iter().enumerate() {
                        @if i > 0 { ", " }
                        strong { (names.of(given.user_id)) }
                        @if let Some(delegate) = given.acted_by {
                            " (by " (names.of(delegate)) ", their delegate)"
                        }
                        " at " (time(given.at))
                    }
                    "."
                }
            }
            @if let Some(comment) = &step.comment {
                blockquote { p { (comment) } }
            }
            @if let (Some(delegator), true) = (on_behalf_of, may_decide && instance.status.is_active()) {
                p.delegate { "You decide this step for " strong { (names.of(delegator)) } ", as their delegate." }
            }
            @if may_decide && instance.status.is_active() {
                (decision_form(instance, step, browser))
            }
        }
    }
}

fn decision_form(instance: &Instance, step: &InstanceStep, browser: &Browser) -> Markup {
    let field = format!("comment-{}", step.id);
    let hint = format!("comment-hint-{}", step.id);
    html! {
        form.decision method="post" action={ "/ui/steps/" (step.id) "/decision" } {
            (csrf_field(browser))
            input type="hidden" name="instance" value=(instance.id);
            label for=(field) { "Comment" }
            p.detail id=(hint) { "Optional to approve; required to reject (say why)." }
            textarea id=(field) name="comment" rows="3" maxlength="2000"
                aria-describedby=(hint) {}
            div.buttons {
                button type="submit" name="verdict" value="approve" { "Approve" }
                button.reject type="submit" name="verdict" value="reject" { "Reject" }
            }
        }
    }
}

fn history(instance: &Instance, names: &Names) -> Markup {
    let step_name = |id| {
        instance
            .steps
            .iter()
            .find(|s| Some(s.id) == id)
            .map(|s| format!("{}. {}", s.step_order, s.name))
    };
    html! {
        ol.audit {
            @for entry in &instance.audit {
                li {
                    (time(entry.at)) " — " strong { (audit_action(entry.action)) }
                    @if let Some(step) = step_name(entry.step_id) { " (" (step) ")" }
                    @if let Some(actor) = entry.actor_user_id { " by " (names.of(actor)) }
                    @if let Some(comment) = &entry.comment { ": “" (comment) "”" }
                }
            }
        }
    }
}

fn context(context: Option<&serde_json::Value>) -> Markup {
    html! {
        @match context {
            None | Some(serde_json::Value::Null) => p { "No context was given." },
            Some(serde_json::Value::Object(fields)) if !fields.is_empty() => {
                dl.facts {
                    @for (key, value) in fields {
                        dt { (key) }
                        dd {
                            @match value {
                                serde_json::Value::String(text) => (text),
                                other => code { (other) },
                            }
                        }
                    }
                }
            }
            Some(other) => pre { code { (serde_json::to_string_pretty(other).unwrap_or_default()) } },
        }
    }
}
