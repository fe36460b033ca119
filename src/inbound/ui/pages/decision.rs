//! Driving adapter, pages: the decision form's target (`POST /ui/steps/{id}/decision`, with
//! `verdict` = `approve` or `reject`, `comment`, and `instance` to return to). It always
//! answers with a redirect to the request's page, carrying what happened in words; a lost race
//! says who decided the step first, and when.

use std::sync::Arc;

use bytes::Bytes;
use warp::reply::Response;

use super::{acting, checked_form, choose_who_first};
use crate::domain::WorkflowError;
use crate::domain::model::{
    Comment, DecisionRequest, Instance, InstanceId, StepId, StepStatus, User, Verdict,
};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::ui::browser::{Browser, Flash};
use crate::inbound::ui::form::{Form, canonical_id};
use crate::inbound::ui::names::Names;
use crate::inbound::ui::page::see_other;
use crate::inbound::ui::pages::errors::message_page;
use crate::inbound::ui::wording::{clock, refusal, step_status};

/// `POST /ui/steps/{id}/decision`
pub async fn decide<S: WorkflowUseCases>(
    raw_id: String,
    service: Arc<S>,
    browser: Browser,
    body: Bytes,
) -> Response {
    let form = match checked_form(&browser, &body) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let Some(step) = canonical_id(&raw_id).and_then(|id| StepId::new(id).ok()) else {
        return message_page(
            &browser,
            warp::http::StatusCode::NOT_FOUND,
            "No such step",
            "There is no step at this address. Check the link.",
        );
    };
    let user = match acting(&*service, &browser).await {
        Ok(Some(user)) => user,
        Ok(None) => return choose_who_first(),
        Err(e) => return back_to(None, refusal(&e)),
    };
    // The page to return to; a step's own request is known only once it has been decided.
    let instance = form
        .get("instance")
        .and_then(canonical_id)
        .and_then(|id| InstanceId::new(id).ok());
    let verdict = match verdict(&form) {
        Ok(verdict) => verdict,
        Err(text) => return back_to(instance, text),
    };
    let approving = matches!(verdict, Verdict::Approve { .. });
    let request = DecisionRequest {
        step_id: step,
        acted_by: user.id,
        verdict,
    };
    match service
        .decide(request, None)
        .await
        .and_then(|done| done.unkeyed())
    {
        Ok(decided) => {
            let name = step_name(&decided, step);
            let text = if approving {
                format!("You approved {name}.")
            } else {
                format!("You rejected {name}.")
            };
            see_other(
                &format!("/ui/instances/{}", decided.id),
                &[Flash::done(text).cookie()],
            )
        }
        Err(error) => {
            let text = explain(&*service, &error, step, instance, &user).await;
            back_to(instance, text)
        }
    }
}

/// The verdict the form asks for: a reject needs a comment, checked here (the page does not
/// rely on the browser to check it).
fn verdict(form: &Form) -> Result<Verdict, String> {
    let comment = form.get("comment").unwrap_or_default();
    let comment = if comment.trim().is_empty() {
        None
    } else {
        Some(Comment::new(comment).map_err(|e| refusal(&e))?)
    };
    match (form.get("verdict"), comment) {
        (Some("approve"), comment) => Ok(Verdict::Approve { comment }),
        (Some("reject"), Some(comment)) => Ok(Verdict::Reject { comment }),
        (Some("reject"), None) => Err(
            "A comment is required to reject: say why the request is refused, then reject again."
                .to_owned(),
        ),
        _ => Err("Choose Approve or Reject.".to_owned()),
    }
}

fn step_name(instance: &Instance, step: StepId) -> String {
    instance
        .steps
        .iter()
        .find(|s| s.id == step)
        .map_or_else(|| format!("step {step}"), |s| format!("“{}”", s.name))
}

/// A refusal in words. For a step that is no longer open, the request is read again to say who
/// decided it and when ("already approved by Sales Manager at 10:42"); for a user who may not
/// decide, which step it was.
async fn explain<S: WorkflowUseCases>(
    service: &S,
    error: &WorkflowError,
    step: StepId,
    instance: Option<InstanceId>,
    user: &User,
) -> String {
    let read = match (error, instance) {
        (
            WorkflowError::StepNotActionable { .. } | WorkflowError::NotAnApprover { .. },
            Some(id),
        ) => service.instance(id).await.ok(),
        _ => None,
    };
    let Some(current) = read
        .as_ref()
        .and_then(|i| i.steps.iter().find(|s| s.id == step))
    else {
        return refusal(error);
    };
    match error {
        WorkflowError::NotAnApprover { .. } => format!(
            "You ({}) are not an approver of “{}”: only the users it was assigned to may decide it.",
            user.name, current.name
        ),
        _ => match (current.status, current.acted_by_user_id, current.acted_at) {
            (StepStatus::Approved | StepStatus::Rejected, Some(by), Some(at)) => {
                let names = Names::load(service, [by]).await.unwrap_or_default();
                format!(
                    "“{}” was already {} by {} at {}; your decision was not recorded.",
                    current.name,
                    step_status(current.status).to_lowercase(),
                    names.of(by),
                    clock(at)
                )
            }
            (StepStatus::Cancelled, ..) => format!(
                "“{}” was closed because the request was cancelled; your decision was not recorded.",
                current.name
            ),
            (StepStatus::Pending, ..) => format!(
                "“{}” is not open yet: the steps before it must be approved first.",
                current.name
            ),
            _ => refusal(error),
        },
    }
}

/// Back to the request's page (or the inbox when it is not known), with a refusal.
fn back_to(instance: Option<InstanceId>, text: String) -> Response {
    let location = instance.map_or_else(
        || "/ui/inbox".to_owned(),
        |id| format!("/ui/instances/{id}"),
    );
    see_other(&location, &[Flash::refused(text).cookie()])
}
