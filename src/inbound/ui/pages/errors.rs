//! Driving adapter, pages: pages that explain a refusal by the framework (no such page, wrong
//! method, a form too large) or by the form check, in words and with the right status.

use std::convert::Infallible;

use maud::html;
use warp::Rejection;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::inbound::ui::MAX_FORM_BYTES;
use crate::inbound::ui::browser::{Browser, NoRandomness};
use crate::inbound::ui::page::{Page, Section};

/// A page with a title and one sentence, and a way back.
pub fn message_page(browser: &Browser, status: StatusCode, title: &str, text: &str) -> Response {
    message(status, title, text).render(browser)
}

fn message(status: StatusCode, title: &str, text: &str) -> Page {
    let body = html! {
        h1 { (title) }
        p.refusal role="alert" { (text) }
        p { a href="/ui/inbox" { "Go to your inbox" } " or " a href="/ui/act-as" { "choose who you act as" } }
    };
    Page::new(title, Section::Other, body).status(status)
}

/// Turns the framework's rejections under `/ui` into pages. The browser's cookies are not at
/// hand here, so these pages show no one-time message and set no cookie.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let (status, title, text) = if rejection.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            "No such page",
            "There is no page at this address. Check the link.".to_owned(),
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "Not a way to use this page",
            "This page can't be used that way; open it from a link or a form.".to_owned(),
        )
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "Too much text",
            format!(
                "The form sent more than {} KiB; shorten the comment and try again.",
                MAX_FORM_BYTES / 1024
            ),
        )
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        (
            StatusCode::LENGTH_REQUIRED,
            "This form could not be read",
            "The browser did not say how long the form is; try again.".to_owned(),
        )
    } else {
        if rejection.find::<NoRandomness>().is_none() {
            tracing::error!(?rejection, "unhandled rejection");
        }
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Something went wrong on our side; it has been logged. Try again.".to_owned(),
        )
    };
    Ok(message(status, title, &text).render_bare())
}
