//! Driving adapter, pages: one module per page (or per form's target), each with its handler and
//! its view. A handler reads what it needs through the driving port, and answers with a page,
//! or, for a form, a redirect that carries a one-time message (POST-redirect-GET). A refusal is
//! always a sentence on a page, never a bare status.

pub mod act_as;
pub mod decision;
pub mod errors;
pub mod inbox;
pub mod instance;
pub mod templates;

use maud::{Markup, html};
use warp::reply::Response;

use super::browser::{Browser, Flash};
use super::form::Form;
use super::page::{Page, Section, see_other};
use super::wording::{failure_status, refusal};
use crate::domain::WorkflowError;
use crate::domain::model::User;
use crate::domain::ports::WorkflowUseCases;

/// Who the browser acts as, from the directory: `None` when it chose nobody, or a user the
/// directory no longer has.
async fn acting<S: WorkflowUseCases>(
    service: &S,
    browser: &Browser,
) -> Result<Option<User>, WorkflowError> {
    let Some(id) = browser.user else {
        return Ok(None);
    };
    match service.user(id).await {
        Ok(user) => Ok(Some(user)),
        Err(WorkflowError::NotFound { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// The page for a read that failed: the refusal in words, with the matching status.
fn failure(browser: &Browser, acting: Option<User>, error: &WorkflowError) -> Response {
    let body = html! {
        h1 { "That did not work" }
        p.refusal role="alert" { (refusal(error)) }
        p { a href="/ui/inbox" { "Back to your inbox" } }
    };
    Page::new("That did not work", Section::Other, body)
        .status(failure_status(error))
        .acting(acting)
        .render(browser)
}

/// The hidden field that every form carries: the browser's CSRF token.
fn csrf_field(browser: &Browser) -> Markup {
    html! { input type="hidden" name="csrf" value=(browser.token.as_str()); }
}

/// Reads a posted form and checks its CSRF token: `Err` is the page (boxed: it is large) that refuses it (400 for a
/// body that is no form, 403 for a missing or wrong token, with a way to start again).
fn checked_form(browser: &Browser, body: &[u8]) -> Result<Form, Box<Response>> {
    let Some(form) = Form::parse(body) else {
        return Err(Box::new(errors::message_page(
            browser,
            warp::http::StatusCode::BAD_REQUEST,
            "This form could not be read",
            "The browser sent something that is not a form. Go back, reload the page and try again.",
        )));
    };
    if !form.carries(&browser.token) {
        return Err(Box::new(errors::message_page(
            browser,
            warp::http::StatusCode::FORBIDDEN,
            "This form has expired",
            "The form did not carry this browser's security token (it may be from an old page, \
             or from another site). Nothing was changed. Reload the page and try again.",
        )));
    }
    Ok(form)
}

/// The answer to a form that needs someone acting: to the picker, saying why.
fn choose_who_first() -> Response {
    see_other(
        "/ui/act-as",
        &[Flash::refused("Choose who you act as first.").cookie()],
    )
}
