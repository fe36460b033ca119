//! Route tests of the forms: the CSRF check, choosing who you act as, and decisions with every
//! refusal they can meet, each answered by a redirect (POST-redirect-GET) to a page that says
//! what happened.

use serde_json::json;
use warp::http::StatusCode;

use super::*;
use crate::domain::model::StepStatus;

/// Follows a redirect and returns the message shown there.
async fn shown(ui: &Ui, browser: &mut Browser, page: &Page) -> String {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
    let location = page.location.clone().expect("a Location");
    let next = ui.get(browser, &location).await;
    assert_eq!(next.status, StatusCode::OK, "{location}: {}", next.text);
    flash_of(&next).unwrap_or_else(|| panic!("no message on {location}: {}", next.text))
}

#[tokio::test]
async fn a_form_without_this_browsers_token_is_refused_and_changes_nothing() {
    let ui = ui().await;
    let mut browser = ui.browser_acting_as(1).await;
    let other = another_token(&browser);
    for fields in [
        vec![("verdict", "approve"), ("instance", "1")],
        vec![("csrf", ""), ("verdict", "approve"), ("instance", "1")],
        vec![
            ("csrf", other.as_str()),
            ("verdict", "approve"),
            ("instance", "1"),
        ],
    ] {
        let page = ui.post(&mut browser, "/ui/steps/1/decision", &fields).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{fields:?}");
        assert!(page.text.contains("This form has expired"), "{}", page.text);
        assert!(page.text.contains("Nothing was changed."));
    }
    let page = ui
        .post(&mut browser, "/ui/act-as", &[("user_id", "2")])
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.cookie("approvals_user"), Some("1"));
    assert_eq!(
        ui.instance(1).await.steps[0].status,
        StepStatus::AwaitingAction
    );
}

/// A token of the same shape as the browser's, one character off.
fn another_token(browser: &Browser) -> String {
    let mut token = browser.token().into_bytes();
    token[0] = if token[0] == b'A' { b'B' } else { b'A' };
    String::from_utf8(token).unwrap()
}

#[tokio::test]
async fn choosing_a_user_sets_the_cookie_and_redirects_to_the_inbox() {
    let ui = ui().await;
    let mut browser = Browser::default();
    ui.get(&mut browser, "/ui/act-as").await;
    let token = browser.token();
    let page = ui
        .post(
            &mut browser,
            "/ui/act-as",
            &[("csrf", &token), ("user_id", "2")],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/ui/inbox"));
    assert_eq!(browser.cookie("approvals_user"), Some("2"));
    let flash = shown(&ui, &mut browser, &page).await;
    assert!(flash.contains("You now act as Finance Manager."), "{flash}");
    for (user_id, text) in [
        ("9", "User 9 is not in the directory; choose another."),
        ("", "Choose one of the users."),
        ("x", "Choose one of the users."),
    ] {
        let page = ui
            .post(
                &mut browser,
                "/ui/act-as",
                &[("csrf", &token), ("user_id", user_id)],
            )
            .await;
        assert_eq!(page.location.as_deref(), Some("/ui/act-as"));
        let flash = shown(&ui, &mut browser, &page).await;
        assert!(flash.contains(text), "{user_id:?}: {flash}");
    }
    assert_eq!(browser.cookie("approvals_user"), Some("2"));
}

#[tokio::test]
async fn an_approval_redirects_to_the_request_which_shows_it() {
    let ui = ui().await;
    let mut browser = ui.browser_acting_as(1).await;
    let page = ui.decide(&mut browser, 1, 1, "approve", "Fee agreed").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location.as_deref(), Some("/ui/instances/1"));
    let next = ui.get(&mut browser, "/ui/instances/1").await;
    let flash = flash_of(&next).unwrap();
    assert!(
        flash.contains("You approved “Sales manager review”."),
        "{flash}"
    );
    assert!(flash.contains("role=\"status\""), "{flash}");
    assert!(
        next.text
            .contains("Approved by <strong>Sales Manager</strong> at")
    );
    assert!(next.text.contains("Fee agreed"));
    let stored = ui.instance(1).await;
    assert_eq!(stored.steps[0].status, StepStatus::Approved);
    assert_eq!(stored.steps[0].comment.as_deref(), Some("Fee agreed"));
}

#[tokio::test]
async fn a_reject_needs_a_comment_checked_on_the_server() {
    let ui = ui().await;
    let mut browser = ui.browser_acting_as(1).await;
    for comment in ["", "   "] {
        let page = ui.decide(&mut browser, 1, 1, "reject", comment).await;
        assert_eq!(page.location.as_deref(), Some("/ui/instances/1"));
        let flash = shown(&ui, &mut browser, &page).await;
        assert!(flash.contains("role=\"alert\""), "{flash}");
        assert!(
            flash.contains("A comment is required to reject"),
            "{comment:?}: {flash}"
        );
    }
    assert_eq!(
        ui.instance(1).await.steps[0].status,
        StepStatus::AwaitingAction
    );
    let long = "x".repeat(2001);
    let page = ui.decide(&mut browser, 1, 1, "reject", &long).await;
    let flash = shown(&ui, &mut browser, &page).await;
    assert!(
        flash.contains("The comment must be at most 2000 characters."),
        "{flash}"
    );
    let page = ui.decide(&mut browser, 1, 1, "maybe", "x").await;
    let flash = shown(&ui, &mut browser, &page).await;
    assert!(flash.contains("Choose Approve or Reject."), "{flash}");
    let page = ui.decide(&mut browser, 1, 1, "reject", "Too late").await;
    let flash = shown(&ui, &mut browser, &page).await;
    assert!(
        flash.contains("You rejected “Sales manager review”."),
        "{flash}"
    );
    assert_eq!(ui.instance(1).await.steps[0].status, StepStatus::Rejected);
}

#[tokio::test]
async fn the_lost_race_says_who_decided_first_and_when() {
    let ui = ui().await;
    ui.put_user(4, "Deputy Manager", "sales_manager", true)
        .await;
    let instance = ui.request(2, json!({})).await;
    let (id, step) = (instance.id.get(), instance.steps[0].id.get());
    let mut first = ui.browser_acting_as(1).await;
    let mut second = ui.browser_acting_as(4).await;
    let won = ui.decide(&mut first, step, id, "approve", "").await;
    assert_eq!(won.status, StatusCode::SEE_OTHER);
    let lost = ui.decide(&mut second, step, id, "approve", "").await;
    assert_eq!(
        lost.location.as_deref(),
        Some(format!("/ui/instances/{id}").as_str())
    );
    let flash = shown(&ui, &mut second, &lost).await;
    let at = ui.instance(id).await.steps[0].acted_at.unwrap();
    let expected = format!(
        "“Sales manager review” was already approved by Sales Manager at {}; your decision was not recorded.",
        at.format("%Y-%m-%d %H:%M UTC")
    );
    assert!(flash.contains(&expected), "{flash}");
}

#[tokio::test]
async fn someone_who_may_not_decide_is_told_so_in_words() {
    let ui = ui().await;
    let mut finance = ui.browser_acting_as(2).await;
    let page = ui.decide(&mut finance, 1, 1, "approve", "").await;
    let flash = shown(&ui, &mut finance, &page).await;
    assert!(
        flash.contains("You (Finance Manager) are not an approver of “Sales manager review”"),
        "{flash}"
    );
    // An inactive user, even one the step's snapshot holds.
    ui.put_user(1, "Sales Manager", "sales_manager", false)
        .await;
    let mut inactive = ui.browser_acting_as(1).await;
    let page = ui.decide(&mut inactive, 1, 1, "approve", "").await;
    let flash = shown(&ui, &mut inactive, &page).await;
    assert!(
        flash.contains("You are inactive in the directory"),
        "{flash}"
    );
    // A step that does not exist, and a step that is not open yet.
    let page = ui.decide(&mut finance, 99, 1, "approve", "").await;
    let flash = shown(&ui, &mut finance, &page).await;
    assert!(flash.contains("Step 99 was not found."), "{flash}");
    let page = ui.decide(&mut finance, 2, 1, "approve", "").await;
    let flash = shown(&ui, &mut finance, &page).await;
    assert!(
        flash.contains("“Finance manager approval” is not open yet"),
        "{flash}"
    );
    assert_eq!(
        ui.instance(1).await.steps[0].status,
        StepStatus::AwaitingAction
    );
}

#[tokio::test]
async fn deciding_as_nobody_leads_to_the_picker() {
    let ui = ui().await;
    let mut browser = Browser::default();
    ui.get(&mut browser, "/ui/act-as").await;
    let page = ui.decide(&mut browser, 1, 1, "approve", "").await;
    assert_eq!(page.location.as_deref(), Some("/ui/act-as"));
    let flash = shown(&ui, &mut browser, &page).await;
    assert!(flash.contains("Choose who you act as first."), "{flash}");
}

#[tokio::test]
async fn a_form_over_the_limit_is_a_page() {
    let ui = ui().await;
    let mut browser = ui.browser_acting_as(1).await;
    let comment = "x".repeat(40 * 1024);
    let page = ui.decide(&mut browser, 1, 1, "approve", &comment).await;
    assert_eq!(page.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(page.text.contains("Too much text"), "{}", page.text);
}
