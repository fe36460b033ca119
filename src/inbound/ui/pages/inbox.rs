//! Driving adapter, pages: the inbox (`GET /ui/inbox[?after=..]`), the steps awaiting the user
//! you act as, the longest waiting first, a page at a time (the API's cursor names where the next
//! page starts, so a page costs the same however long the inbox is).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use warp::reply::Response;

use super::{acting, failure};
use crate::domain::model::{InboxCursor, InboxPage, User};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::http::{decode_inbox_cursor, encode_inbox_cursor};
use crate::inbound::ui::INBOX_PAGE_SIZE;
use crate::inbound::ui::browser::{Browser, Flash};
use crate::inbound::ui::page::{Page, Section, see_other};
use crate::inbound::ui::wording::{time, waited};

/// `GET /ui/inbox`
pub async fn page<S: WorkflowUseCases>(
    service: Arc<S>,
    browser: Browser,
    query: Vec<(String, String)>,
) -> Response {
    let after = match page_start(&query) {
        Ok(after) => after,
        Err(()) => {
            return see_other(
                "/ui/inbox",
                &[Flash::refused(
                    "That link doesn't name a page of the inbox; here is its first page.",
                )
                .cookie()],
            );
        }
    };
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
    match service.pending_steps(user.id, INBOX_PAGE_SIZE, after).await {
        Ok(steps) => {
            let body = view(&user, &steps, after.is_some(), Utc::now());
            Page::new("Inbox", Section::Inbox, body)
                .acting(Some(user))
                .render(&browser)
        }
        Err(e) => failure(&browser, Some(user), &e),
    }
}

/// Where the page starts: `None` for the first; `Err` for an `after` that is no cursor of ours
/// (or a parameter the page doesn't take).
fn page_start(query: &[(String, String)]) -> Result<Option<InboxCursor>, ()> {
    let mut after = None;
    for (key, value) in query {
        match key.as_str() {
            "after" => after = Some(decode_inbox_cursor(value).map_err(|_| ())?),
            _ => return Err(()),
        }
    }
    Ok(after)
}

/// The count in words: "2 steps wait for you", or that more wait than are shown; a later page
/// says which it is.
fn count(shown: usize, more: bool, later: bool) -> String {
    let page = INBOX_PAGE_SIZE as usize;
    match (later, shown, more) {
        (false, 0, _) => "Nothing waits for you.".to_owned(),
        (false, 1, false) => "1 step waits for you.".to_owned(),
        (false, n, false) => format!("{n} steps wait for you."),
        (false, _, true) => {
            format!("More than {page} steps wait for you; the {page} waiting longest are shown.")
        }
        (true, 0, _) => "No more steps wait for you beyond the previous pages.".to_owned(),
        (true, n, more) => format!(
            "A later page: {n} more step{} waiting less long than those before{}.",
            if n == 1 { "" } else { "s" },
            if more { ", and more after them" } else { "" }
        ),
    }
}

fn view(user: &User, page: &InboxPage, later: bool, now: DateTime<Utc>) -> Markup {
    let shown = &page.items;
    html! {
        h1 { "Inbox of " (user.name) }
        p #count role="status" { (count(shown.len(), page.next.is_some(), later)) }
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
                                td {
                                    (step.step_order) ". " (step.name)
                                    // A delegate decides it for its delegator.
                                    @if let Some(delegator) = step.on_behalf_of {
                                        br; span.detail.on-behalf-of { "on behalf of user " (delegator) }
                                    }
                                }
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
        @if later || page.next.is_some() {
            nav aria-label="Inbox pages" {
                ul.pager {
                    @if later {
                        li { a href="/ui/inbox" { "First page" } }
                    }
                    @if let Some(next) = page.next {
                        li {
                            a #next-page rel="next" href={ "/ui/inbox?after=" (encode_inbox_cursor(next)) } {
                                "Next page"
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
        assert_eq!(count(0, false, false), "Nothing waits for you.");
        assert_eq!(count(1, false, false), "1 step waits for you.");
        assert_eq!(count(50, false, false), "50 steps wait for you.");
        assert!(count(50, true, false).starts_with("More than 50 steps"));
        assert_eq!(
            count(2, false, true),
            "A later page: 2 more steps waiting less long than those before."
        );
        assert!(count(50, true, true).ends_with(", and more after them."));
        assert!(count(0, false, true).starts_with("No more steps"));
    }

    #[test]
    fn only_a_cursor_of_ours_starts_a_page() {
        let pairs = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert_eq!(page_start(&[]), Ok(None));
        assert_eq!(page_start(&pairs("after", "nope")), Err(()));
        assert_eq!(page_start(&pairs("page", "2")), Err(()));
        let position = InboxCursor {
            activated_at: DateTime::from_timestamp_nanos(1_795_720_209_775_908_522),
            step_id: crate::domain::model::StepId::new(42).unwrap(),
        };
        assert_eq!(
            page_start(&pairs("after", &encode_inbox_cursor(position))),
            Ok(Some(position))
        );
    }
}
