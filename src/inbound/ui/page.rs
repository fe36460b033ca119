//! Driving adapter, pages: the layout every page shares (navigation, who you act as, the
//! one-time message, the note that authentication is out of scope), the headers every page
//! carries, and the redirect that ends every form post (POST-redirect-GET).

use maud::{DOCTYPE, Markup, html};
use warp::http::header::{HeaderValue, LOCATION, SET_COOKIE};
use warp::http::{HeaderMap, StatusCode, header};
use warp::reply::Response;

use super::browser::{Browser, Flash, Tone};
use crate::domain::model::User;

/// Which part of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Inbox,
    Templates,
    ActAs,
    Other,
}

/// A page to render: its status, title, place in the navigation, who is acting, and content.
pub struct Page {
    pub status: StatusCode,
    pub title: String,
    pub section: Section,
    pub acting: Option<User>,
    pub body: Markup,
}

impl Page {
    /// A 200 page.
    pub fn new(title: impl Into<String>, section: Section, body: Markup) -> Self {
        Self {
            status: StatusCode::OK,
            title: title.into(),
            section,
            acting: None,
            body,
        }
    }

    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn acting(mut self, acting: Option<User>) -> Self {
        self.acting = acting;
        self
    }

    /// The page for `browser`, with the cookies its visit calls for (a new CSRF token, the
    /// one-time message cleared once shown).
    pub fn render(self, browser: &Browser) -> Response {
        self.respond(browser.flash.as_ref(), &browser.cookies())
    }

    /// The page without a browser's state: no one-time message, no cookie (for answers given
    /// before the cookies were read, such as the framework's rejections).
    pub fn render_bare(self) -> Response {
        self.respond(None, &[])
    }

    fn respond(self, flash: Option<&Flash>, cookies: &[String]) -> Response {
        let markup = layout(&self, flash);
        let mut response = Response::new(markup.into_string().into());
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        secure(headers);
        add_cookies(headers, cookies);
        response
    }
}

fn nav_link(href: &str, label: &str, here: bool) -> Markup {
    html! {
        @if here {
            a href=(href) aria-current="page" { (label) }
        } @else {
            a href=(href) { (label) }
        }
    }
}

fn layout(page: &Page, flash: Option<&Flash>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (page.title) " · Approvals" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    nav aria-label="Main" {
                        (nav_link("/ui/inbox", "Inbox", page.section == Section::Inbox))
                        (nav_link("/ui/templates", "Templates", page.section == Section::Templates))
                        (nav_link("/ui/act-as", "Act as", page.section == Section::ActAs))
                    }
                    p.acting {
                        @match &page.acting {
                            Some(user) => { "Acting as " strong { (user.name) } " (user " (user.id) ")" }
                            None => { "Not acting as anyone: " a href="/ui/act-as" { "choose who you act as" } }
                        }
                    }
                }
                main #main {
                    @if let Some(flash) = flash {
                        @match flash.tone {
                            Tone::Done => div.flash.done role="status" { p { "✓ " (flash.text) } },
                            Tone::Refused => div.flash.refused role="alert" {
                                p { strong { "Not done: " } (flash.text) }
                            },
                        }
                    }
                    (page.body)
                }
                footer {
                    p {
                        "Authentication is out of scope: these pages trust whoever you choose to act as. "
                        "Put them behind your own sign-in before anyone else can reach them."
                    }
                }
            }
        }
    }
}

/// A 303 to `location` (a path this adapter built), setting `cookies`.
pub fn see_other(location: &str, cookies: &[String]) -> Response {
    let mut response = Response::new(Vec::new().into());
    *response.status_mut() = StatusCode::SEE_OTHER;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, value);
    }
    secure(headers);
    add_cookies(headers, cookies);
    response
}

fn add_cookies(headers: &mut HeaderMap, cookies: &[String]) {
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(cookie) {
            headers.append(SET_COOKIE, value);
        }
    }
}

/// Headers every page and redirect carries: nothing cached, no framing, no script, no inline
/// style, forms only to this site.
fn secure(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// The stylesheet of every page, written for them (no framework): `GET /ui/style.css`.
pub fn stylesheet() -> Response {
    let mut response = Response::new(include_str!("style.css").into());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
