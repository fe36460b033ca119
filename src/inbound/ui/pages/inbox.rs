//! Driving adapter, pages: the inbox (`GET /ui/inbox`), the steps awaiting the user you act as,
//! the longest waiting first, one page of them at most.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use warp::reply::Response;

use super::{acting, failure};
use crate::domain::model::{PendingStep, User};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::ui::INBOX_PAGE_SIZE;
use crate::inbound::ui::browser::{Browser, Flash};
use crate::inbound::ui::page::{Page, Section, see_other};
use crate::inbound::ui::wording::{time, waited};

/// `GET /ui/inbox`
pub async fn page<S: WorkflowUseCases>(service: Arc<S>, browser: Browser) -> Response {
    let user = match acting(&*service, &browser).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            return see_other(
                "/ui/act-as",
                &[Flash::refused("Choose who you act as to see an inbox.").cookie()],
            );
        }
        Err(e) => return failure(&browser, None, &e),
    };
    // One more than a page, to know whether more are waiting without counting them all.
    match service.pending_steps(user.id, INBOX_PAGE_SIZE + 1).await {
        Ok(steps) => {
            let body = view(&user, &steps, Utc::now());
            Page::new("Inbox", Section::Inbox, body)
                .acting(Some(user))
                .render(&browser)
        }
        Err(e) => failure(&browser, Some(user), &e),
    }
}

/// The count in words: "2 steps wait for you", or that more wait than are shown.
fn count(steps: usize) -> String {
    let page = INBOX_PAGE_SIZE as usize;
    match steps {
        0 => "Nothing waits for you.".to_owned(),
        1 => "1 step waits for you.".to_owned(),
        n if n <= page => format!("{n} steps wait for you."),
        _ => format!("More than {page} steps wait for you; the {page} waiting longest are shown."),
    }
}

fn view(user: &User, steps: &[PendingStep], now: DateTime<Utc>) -> Markup {
    let shown = &steps[..steps.len().min(INBOX_PAGE_SIZE as usize)];
    html! {
        h1 { "Inbox of " (user.name) }
        p #count role="status" { (count(steps.len())) }
        @if !shown.is_empty() {
            div.scroll {
                table {
                    caption { "Steps awaiting your decision, the longest waiting first" }
                    thead {
                        tr {
                            th scope="col" { "Request" }
                            th scope="col" { "Event" }
                            th scope="col" { "Step" }
                            th scope="col" { "Waiting since" }
                        }
                    }
                    tbody {
                        @for step in shown {
                            tr {
                                td {
                                    a href={ "/ui/instances/" (step.instance_id) } {
                                        (step.entity_type) " " (step.entity_id)
                                    }
                                    span.detail { " (request " (step.instance_id) ")" }
                                }
                                td { code { (step.event) } }
                                td { (step.step_order) ". " (step.name) }
                                td {
                                    @if let Some(since) = step.activated_at {
                                        (time(since)) br; span.detail { (waited(since, now)) }
                                    } @else {
                                        "not recorded"
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_says_when_more_wait_than_shown() {
        assert_eq!(count(0), "Nothing waits for you.");
        assert_eq!(count(1), "1 step waits for you.");
        assert_eq!(count(50), "50 steps wait for you.");
        assert!(count(51).starts_with("More than 50 steps"));
    }
}
