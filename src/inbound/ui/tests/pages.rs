//! Route tests of the pages that only show: the picker, the inbox, a request, the templates,
//! the stylesheet, and the pages that explain a wrong address or method.

use serde_json::json;
use warp::http::StatusCode;

use super::*;

#[tokio::test]
async fn the_picker_says_authentication_is_out_of_scope_and_hands_out_a_token() {
    let ui = ui().await;
    let mut browser = Browser::default();
    let page = ui.get(&mut browser, "/ui/act-as").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert!(page.csp.as_deref().unwrap().contains("form-action 'self'"));
    assert!(page.text.contains("Authentication is out of scope."));
    for name in ["Sales Manager", "Finance Manager", "Sales Coordinator"] {
        assert!(page.text.contains(name), "{name}");
    }
    let token = browser.token();
    assert!(page.text.contains(&format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{token}\">"
    )));
    // A browser that has its token keeps it.
    let again = ui.get(&mut browser, "/ui/act-as").await;
    assert!(
        !again
            .set_cookies
            .iter()
            .any(|c| c.starts_with("approvals_csrf")),
        "{:?}",
        again.set_cookies
    );
    assert_eq!(browser.token(), token);
}

#[tokio::test]
async fn someone_acting_as_nobody_is_sent_to_the_picker() {
    let ui = ui().await;
    let mut browser = Browser::default();
    let home = ui.get(&mut browser, "/ui").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location.as_deref(), Some("/ui/inbox"));
    let inbox = ui.get(&mut browser, "/ui/inbox").await;
    assert_eq!(inbox.status, StatusCode::SEE_OTHER);
    assert_eq!(inbox.location.as_deref(), Some("/ui/act-as"));
    let picker = ui.get(&mut browser, "/ui/act-as").await;
    let flash = flash_of(&picker).expect("a message");
    assert!(flash.contains("role=\"alert\""), "{flash}");
    assert!(
        flash.contains("Choose who you act as to see an inbox."),
        "{flash}"
    );
    // Shown once.
    let again = ui.get(&mut browser, "/ui/act-as").await;
    assert_eq!(flash_of(&again), None);
}

#[tokio::test]
async fn the_inbox_lists_the_steps_awaiting_the_user_with_a_count() {
    let ui = ui().await;
    ui.request(2, json!({})).await;
    let mut browser = ui.browser_acting_as(1).await;
    let page = ui.get(&mut browser, "/ui/inbox").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("Inbox of Sales Manager"));
    assert!(page.text.contains("2 steps wait for you."), "{}", page.text);
    for entity in ["booking 1", "booking 2"] {
        assert!(page.text.contains(entity), "{entity}");
    }
    assert!(page.text.contains("<a href=\"/ui/instances/1\">"));
    assert!(page.text.contains("1. Sales manager review"));
    assert!(page.text.contains("booking.cancellation_requested"));
    assert!(page.text.contains(" UTC</time>"));
    // The finance manager has nothing yet.
    let mut finance = ui.browser_acting_as(2).await;
    let page = ui.get(&mut finance, "/ui/inbox").await;
    assert!(
        page.text.contains("Nothing waits for you."),
        "{}",
        page.text
    );
}

#[tokio::test]
async fn a_delegates_inbox_marks_the_steps_it_decides_for_someone_else() {
    let ui = ui().await;
    // The sales coordinator stands in for the sales manager (step 1 of booking 1) for a day.
    ui.service
        .put_delegation(
            crate::domain::model::UserId::new(1).unwrap(),
            crate::domain::model::UserId::new(3).unwrap(),
            chrono::Utc::now() + chrono::Duration::days(1),
            None,
        )
        .await
        .unwrap();
    let mut browser = ui.browser_acting_as(3).await;
    let page = ui.get(&mut browser, "/ui/inbox").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("1 step waits for you."), "{}", page.text);
    assert!(page.text.contains("1. Sales manager review"));
    assert!(page.text.contains("on behalf of user 1"), "{}", page.text);
    // The delegator's own inbox marks nothing.
    let mut manager = ui.browser_acting_as(1).await;
    let own = ui.get(&mut manager, "/ui/inbox").await;
    assert!(own.text.contains("1. Sales manager review"));
    assert!(!own.text.contains("on behalf of"), "{}", own.text);
}

#[tokio::test]
async fn the_inbox_pages_on_from_where_the_last_page_ended() {
    let ui = ui().await;
    // Request 1 (booking 1) and 59 more: 60 steps await the sales manager, a page and 10.
    for booking in 2..=60 {
        ui.request(booking, json!({})).await;
    }
    let mut browser = ui.browser_acting_as(1).await;
    let first = ui.get(&mut browser, "/ui/inbox").await;
    assert!(
        first.text.contains("More than 50 steps wait for you"),
        "{}",
        first.text
    );
    assert_eq!(
        first.text.matches("<tr>").count(),
        51,
        "a heading row and 50"
    );
    assert!(first.text.contains(">booking 50<"), "{}", first.text);
    assert!(!first.text.contains(">booking 51<"));
    assert!(
        !first.text.contains("First page"),
        "the first page links to no first page"
    );
    let next = first
        .text
        .split("href=\"/ui/inbox?after=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a next-page link")
        .to_owned();

    let second = ui
        .get(&mut browser, &format!("/ui/inbox?after={next}"))
        .await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(
        second.text.contains("A later page: 10 more steps"),
        "{}",
        second.text
    );
    for booking in 51..=60 {
        assert!(
            second.text.contains(&format!(">booking {booking}<")),
            "{booking}"
        );
    }
    assert!(!second.text.contains(">booking 50<"));
    assert!(
        second.text.contains("href=\"/ui/inbox\""),
        "a first-page link"
    );
    assert!(
        !second.text.contains("Next page"),
        "the last page has no next"
    );

    // A link that names no page: back to the first page, with a message.
    let bad = ui.get(&mut browser, "/ui/inbox?after=nope").await;
    assert_eq!(bad.status, StatusCode::SEE_OTHER);
    assert_eq!(bad.location.as_deref(), Some("/ui/inbox"));
    let shown = ui.get(&mut browser, "/ui/inbox").await;
    assert!(
        shown.text.contains("doesn&#39;t name a page of the inbox")
            || shown.text.contains("doesn't name a page of the inbox"),
        "{}",
        shown.text
    );
}

#[tokio::test]
async fn a_request_shows_its_steps_history_and_context_escaped() {
    let ui = ui().await;
    let instance = ui
        .request(
            3,
            json!({"reason": "<script>alert(1)</script>", "refund_cents": 125000}),
        )
        .await;
    let mut browser = ui.browser_acting_as(1).await;
    let page = ui
        .get(&mut browser, &format!("/ui/instances/{}", instance.id))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let text = &page.text;
    assert!(
        text.contains("Requested by</dt><dd>Sales Coordinator"),
        "{text}"
    );
    assert!(text.contains("1. Sales manager review"));
    assert!(text.contains("Awaiting decision"));
    assert!(text.contains("Not yet open"));
    assert!(text.contains("Request created"));
    assert!(text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!text.contains("<script>"));
    assert!(text.contains("<code>125000</code>"));
    // The sales manager may decide step 1; the form is there, once.
    assert_eq!(text.matches("<form class=\"decision\"").count(), 1);
    let step = instance.steps[0].id;
    assert!(text.contains(&format!("action=\"/ui/steps/{step}/decision\"")));
    // The coordinator may not: no form.
    let mut coordinator = ui.browser_acting_as(3).await;
    let page = ui
        .get(&mut coordinator, &format!("/ui/instances/{}", instance.id))
        .await;
    assert_eq!(page.text.matches("<form class=\"decision\"").count(), 0);
}

#[tokio::test]
async fn the_templates_show_their_steps_and_approvers() {
    let ui = ui().await;
    let mut browser = Browser::default();
    let page = ui.get(&mut browser, "/ui/templates").await;
    assert_eq!(page.status, StatusCode::OK);
    for text in [
        "Booking cancellation",
        "Unit price update",
        "Commission approval",
        "Sales manager review</strong>: role <code>sales_manager</code> (now: Sales Manager)",
        "Finance sign-off</strong>: Finance Manager (user 2)",
    ] {
        assert!(page.text.contains(text), "{text}: {}", page.text);
    }
}

#[tokio::test]
async fn wrong_addresses_and_methods_are_pages_not_json() {
    let ui = ui().await;
    let mut browser = Browser::default();
    let cases = [
        ("GET", "/ui/nowhere", StatusCode::NOT_FOUND, "No such page"),
        (
            "GET",
            "/ui/instances/999",
            StatusCode::NOT_FOUND,
            "Request 999 was not found.",
        ),
        (
            "GET",
            "/ui/instances/01",
            StatusCode::NOT_FOUND,
            "Request '01' was not found.",
        ),
        (
            "POST",
            "/ui/inbox",
            StatusCode::METHOD_NOT_ALLOWED,
            "can't be used that way",
        ),
    ];
    for (method, path, status, text) in cases {
        let page = ui
            .send(&mut browser, request().method(method).path(path))
            .await;
        assert_eq!(page.status, status, "{method} {path}");
        assert_eq!(
            page.content_type.as_deref(),
            Some("text/html; charset=utf-8"),
            "{method} {path}"
        );
        assert!(page.text.contains(text), "{method} {path}: {}", page.text);
    }
}

#[tokio::test]
async fn the_stylesheet_is_served() {
    let ui = ui().await;
    let page = ui.get(&mut Browser::default(), "/ui/style.css").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.content_type.as_deref(),
        Some("text/css; charset=utf-8")
    );
    assert!(page.text.contains("ol.timeline"));
}

#[tokio::test]
async fn a_step_with_a_due_date_shows_when_it_is_due() {
    use crate::domain::model::{DueIn, DueRule, OnOverdue, TemplateId, TemplateUpdate};

    let ui = ui().await;
    let id = TemplateId::new(1).unwrap();
    let mut steps = ui.service.template(id).await.unwrap().steps;
    steps[0].due = Some(DueRule {
        due_in: DueIn::parse("PT48H").unwrap(),
        on_overdue: OnOverdue::Notify,
    });
    let update = TemplateUpdate {
        name: None,
        is_active: None,
        forbid_self_approval: None,
        steps: Some(steps),
    };
    ui.service.publish_version(id, update, None).await.unwrap();
    let instance = ui.request(3, json!({})).await;
    let due_at = instance.steps[0].due_at.expect("step 1 has a due date");
    let mut browser = ui.browser_acting_as(1).await;
    let page = ui
        .get(&mut browser, &format!("/ui/instances/{}", instance.id))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let shown = crate::inbound::ui::wording::time(due_at).into_string();
    assert!(
        page.text
            .contains(&format!("<p class=\"due\">Due by {shown}.</p>")),
        "{}",
        page.text
    );
    // The demo's request 1 has no due date: no such line.
    let page = ui.get(&mut browser, "/ui/instances/1").await;
    assert!(!page.text.contains("Due by"), "{}", page.text);
}

#[tokio::test]
async fn a_quorum_step_shows_how_many_approved_and_who() {
    use crate::domain::model::{Quorum, TemplateId, TemplateUpdate};

    let ui = ui().await;
    ui.put_user(4, "Second Sales", "sales_manager", true).await;
    let id = TemplateId::new(1).unwrap();
    let mut steps = ui.service.template(id).await.unwrap().steps;
    steps[0].quorum = Quorum::Count(2);
    let update = TemplateUpdate {
        name: None,
        is_active: None,
        forbid_self_approval: None,
        steps: Some(steps),
    };
    ui.service.publish_version(id, update, None).await.unwrap();
    let instance = ui.request(4, json!({})).await;
    let path = format!("/ui/instances/{}", instance.id);
    let mut browser = ui.browser_acting_as(4).await;
    let page = ui.get(&mut browser, &path).await;
    assert!(page.text.contains("0 of 2 approvals."), "{}", page.text);

    let step = instance.steps[0].id.get();
    let decided = ui
        .decide(&mut browser, step, instance.id.get(), "approve", "")
        .await;
    assert!(decided.status.is_redirection(), "{decided:?}");
    let page = ui.get(&mut browser, &path).await;
    assert!(
        page.text
            .contains("1 of 2 approvals: <strong>Second Sales</strong> at "),
        "{}",
        page.text
    );
    // The demo's request 1 has a plain step: no count.
    let page = ui.get(&mut browser, "/ui/instances/1").await;
    assert!(!page.text.contains("approvals"), "{}", page.text);
}

#[tokio::test]
async fn a_delegate_gets_the_decision_form_for_their_delegator() {
    let ui = ui().await;
    // The finance manager stands in for the sales manager, who may decide step 1 of request 1.
    ui.service
        .put_delegation(
            crate::domain::model::UserId::new(1).unwrap(),
            crate::domain::model::UserId::new(2).unwrap(),
            chrono::Utc::now() + chrono::Duration::days(1),
            None,
        )
        .await
        .unwrap();
    let mut delegate = ui.browser_acting_as(2).await;
    let page = ui.get(&mut delegate, "/ui/instances/1").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(
        page.text.matches("<form class=\"decision\"").count(),
        1,
        "{}",
        page.text
    );
    assert!(
        page.text.contains("You decide this step for"),
        "{}",
        page.text
    );
    // Without the delegation, the finance manager sees no form on step 1.
    let other = super::ui().await;
    let mut finance = other.browser_acting_as(2).await;
    let page = other.get(&mut finance, "/ui/instances/1").await;
    assert_eq!(page.text.matches("<form class=\"decision\"").count(), 0);
}
