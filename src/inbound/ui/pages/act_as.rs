//! Driving adapter, pages: choosing who you act as (`GET` and `POST /ui/act-as`). There is no
//! sign-in: the choice is kept in a cookie, and the page says so.

use std::sync::Arc;

use bytes::Bytes;
use maud::{Markup, html};
use warp::reply::Response;

use super::{acting, checked_form, csrf_field, failure};
use crate::domain::WorkflowError;
use crate::domain::model::{User, UserId};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::ui::browser::{Browser, Flash, acting_cookie};
use crate::inbound::ui::form::canonical_id;
use crate::inbound::ui::page::{Page, Section, see_other};
use crate::inbound::ui::wording::refusal;

/// `GET /ui/act-as`: the users of the directory to choose from.
pub async fn page<S: WorkflowUseCases>(service: Arc<S>, browser: Browser) -> Response {
    let acting = match acting(&*service, &browser).await {
        Ok(acting) => acting,
        Err(e) => return failure(&browser, None, &e),
    };
    match service.users(None).await {
        Ok(users) => {
            let body = view(&browser, acting.as_ref().map(|u| u.id), &users);
            Page::new("Act as", Section::ActAs, body)
                .acting(acting)
                .render(&browser)
        }
        Err(e) => failure(&browser, acting, &e),
    }
}

fn view(browser: &Browser, current: Option<UserId>, users: &[User]) -> Markup {
    html! {
        h1 { "Who do you act as?" }
        p.note {
            strong { "Authentication is out of scope." }
            " There is no sign-in: choose a user of the directory and these pages act as that user \
              until you choose another. The choice is kept in a cookie of this browser only."
        }
        @if users.is_empty() {
            p { "The directory has no users yet. Add some with the API first." }
        } @else {
            form method="post" action="/ui/act-as" {
                (csrf_field(browser))
                fieldset {
                    legend { "Users of the directory" }
                    @for user in users {
                        @let id = format!("user-{}", user.id);
                        div.choice {
                            input type="radio" name="user_id" id=(id) value=(user.id)
                                checked[current == Some(user.id)];
                            label for=(id) {
                                (user.name)
                                span.detail {
                                    " (user " (user.id)
                                    @if !user.roles.is_empty() {
                                        "; "
                                        @for (i, role) in user.roles.iter().enumerate() {
                                            @if i > 0 { ", " }
                                            (role)
                                        }
                                    }
                                    @if !user.active { "; inactive: can look, not decide" }
                                    ")"
                                }
                            }
                        }
                    }
                }
                button type="submit" { "Act as this user" }
            }
        }
    }
}

/// `POST /ui/act-as` with `user_id`: remembers the choice and goes to the inbox.
pub async fn choose<S: WorkflowUseCases>(
    service: Arc<S>,
    browser: Browser,
    body: Bytes,
) -> Response {
    let form = match checked_form(&browser, &body) {
        Ok(form) => form,
        Err(refused) => return *refused,
    };
    let back = |text: String| see_other("/ui/act-as", &[Flash::refused(text).cookie()]);
    let Some(id) = form
        .get("user_id")
        .and_then(canonical_id)
        .and_then(|id| UserId::new(id).ok())
    else {
        return back("Choose one of the users.".to_owned());
    };
    match service.user(id).await {
        Ok(user) => {
            let mut text = format!("You now act as {}.", user.name);
            if !user.active {
                text.push_str(" This user is inactive: you can look, but not decide.");
            }
            see_other(
                "/ui/inbox",
                &[acting_cookie(user.id), Flash::done(text).cookie()],
            )
        }
        Err(WorkflowError::NotFound { .. }) => back(format!(
            "User {id} is not in the directory; choose another."
        )),
        Err(e) => back(refusal(&e)),
    }
}
