//! Driving adapter, pages: the templates (`GET /ui/templates`), each with its steps in order and
//! who approves them: a named user, or a role with the users who hold it now (a request takes
//! its snapshot of them when it starts).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures_util::future::join_all;
use maud::{Markup, html};
use warp::reply::Response;

use super::{acting, failure};
use crate::domain::WorkflowError;
use crate::domain::model::{Approver, RoleName, Template, TemplateFilter, User};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::ui::browser::Browser;
use crate::inbound::ui::names::Names;
use crate::inbound::ui::page::{Page, Section};

/// `GET /ui/templates`
pub async fn page<S: WorkflowUseCases>(service: Arc<S>, browser: Browser) -> Response {
    let acting = match acting(&*service, &browser).await {
        Ok(acting) => acting,
        Err(e) => return failure(&browser, None, &e),
    };
    match load(&*service).await {
        Ok((templates, names, members)) => {
            let body = view(&templates, &names, &members);
            Page::new("Templates", Section::Templates, body)
                .acting(acting)
                .render(&browser)
        }
        Err(e) => failure(&browser, acting, &e),
    }
}

type Members = BTreeMap<RoleName, Vec<User>>;

async fn load<S: WorkflowUseCases>(
    service: &S,
) -> Result<(Vec<Template>, Names, Members), WorkflowError> {
    let templates = service.templates(TemplateFilter::default()).await?;
    let approvers = templates
        .iter()
        .flat_map(|t| t.steps.iter().map(|s| &s.approver));
    let mut users = BTreeSet::new();
    let mut roles = BTreeSet::new();
    for approver in approvers {
        match approver {
            Approver::User { user_id } => {
                users.insert(*user_id);
            }
            Approver::Role { role } => {
                roles.insert(role.clone());
            }
        }
    }
    let names = Names::load(service, users).await?;
    let held = join_all(roles.iter().map(|role| service.users(Some(role.clone())))).await;
    let mut members = Members::new();
    for (role, users) in roles.into_iter().zip(held) {
        members.insert(role, users?);
    }
    Ok((templates, names, members))
}

fn view(templates: &[Template], names: &Names, members: &Members) -> Markup {
    html! {
        h1 { "Templates" }
        p { "What each event asks for, step by step. A request keeps the steps and approvers of the version it started with." }
        @if templates.is_empty() {
            p { "There are no templates yet." }
        }
        @for template in templates {
            section.template id={ "template-" (template.id) } aria-labelledby={ "template-title-" (template.id) } {
                h2 id={ "template-title-" (template.id) } { (template.name) }
                p {
                    strong class={ "status status-" (if template.is_active { "approved" } else { "cancelled" }) } {
                        @if template.is_active { "Active" } @else { "Inactive" }
                    }
                    " · template " (template.id) ", version " (template.version)
                    " · event " code { (template.event) } " on " (template.entity_type)
                    @if template.forbid_self_approval { " · the requester may not approve" }
                }
                ol.steps {
                    @for step in &template.steps {
                        li {
                            strong { (step.name) } ": "
                            @match &step.approver {
                                Approver::User { user_id } => { (names.of(*user_id)) " (user " (user_id) ")" }
                                Approver::Role { role } => {
                                    "role " code { (role) }
                                    (holders(members.get(role).map(Vec::as_slice).unwrap_or_default()))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn holders(users: &[User]) -> Markup {
    let active: Vec<&str> = users
        .iter()
        .filter(|u| u.active)
        .map(|u| u.name.as_str())
        .collect();
    html! {
        @if active.is_empty() {
            " (nobody holds it now)"
        } @else {
            " (now: " (active.join(", ")) ")"
        }
    }
}
