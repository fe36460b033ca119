//! Route tests of the approvers' pages, through `warp::test` without a socket, on the real
//! service over a fresh in-memory store holding the demo data (users 1 to 3, templates 1 to 3,
//! request 1 for booking 1 whose step 1 awaits the sales manager).
//!
//! This module is the support the others share: a browser that keeps its cookies between
//! requests, and what a page answered.

mod forms;
mod pages;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Notify;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::test::request;

use super::routes;
use crate::app;
use crate::demo::{self, demo_data};
use crate::domain::model::{
    EntityId, EntityType, EventName, Instance, InstanceId, RoleName, TriggerRequest, User, UserId,
};
use crate::domain::ports::WorkflowUseCases;
use crate::outbound::memory::MemoryStore;

type Service = app::Service<MemoryStore>;

/// The pages over the demo data, and the service behind them.
pub struct Ui {
    routes: warp::filters::BoxedFilter<(Response,)>,
    pub service: Arc<Service>,
}

/// One answer: status, where it redirects, the cookies it sets, and the page's text.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub content_type: Option<String>,
    pub csp: Option<String>,
    pub set_cookies: Vec<String>,
    pub text: String,
}

/// A browser: the cookies it was given, sent back with each request.
#[derive(Default)]
pub struct Browser {
    cookies: BTreeMap<String, String>,
}

pub async fn ui() -> Ui {
    let store = Arc::new(MemoryStore::new());
    let service = Arc::new(app::service(store, Arc::new(Notify::new())));
    demo::load(&*service, &demo_data()).await.unwrap();
    Ui {
        routes: routes(Arc::clone(&service)),
        service,
    }
}

pub fn user(id: i64) -> UserId {
    UserId::new(id).unwrap()
}

impl Ui {
    async fn send(&self, browser: &mut Browser, req: warp::test::RequestBuilder) -> Page {
        let req = if browser.cookies.is_empty() {
            req
        } else {
            let cookie: Vec<String> = browser
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req.header("cookie", cookie.join("; "))
        };
        let response = req.reply(&self.routes).await;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        for cookie in &set_cookies {
            browser.take(cookie);
        }
        Page {
            status: response.status(),
            location: header("location"),
            content_type: header("content-type"),
            csp: header("content-security-policy"),
            set_cookies,
            text: String::from_utf8_lossy(response.body()).into_owned(),
        }
    }

    pub async fn get(&self, browser: &mut Browser, path: &str) -> Page {
        self.send(browser, request().method("GET").path(path)).await
    }

    /// Posts `fields` as a browser's form would (encoded, with its length).
    pub async fn post(&self, browser: &mut Browser, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).unwrap();
        let req = request()
            .method("POST")
            .path(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("content-length", body.len().to_string())
            .body(body);
        self.send(browser, req).await
    }

    /// A browser that has loaded a page (so it holds a CSRF token) and acts as `id`.
    pub async fn browser_acting_as(&self, id: i64) -> Browser {
        let mut browser = Browser::default();
        self.get(&mut browser, "/ui/act-as").await;
        let token = browser.token();
        let page = self
            .post(
                &mut browser,
                "/ui/act-as",
                &[("csrf", &token), ("user_id", &id.to_string())],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text);
        browser
    }

    /// Posts a decision on `step` of request `instance` from `browser`, with its token.
    pub async fn decide(
        &self,
        browser: &mut Browser,
        step: i64,
        instance: i64,
        verdict: &str,
        comment: &str,
    ) -> Page {
        let token = browser.token();
        let instance = instance.to_string();
        let fields = [
            ("csrf", token.as_str()),
            ("instance", instance.as_str()),
            ("verdict", verdict),
            ("comment", comment),
        ];
        self.post(browser, &format!("/ui/steps/{step}/decision"), &fields)
            .await
    }

    /// The request as the store has it.
    pub async fn instance(&self, id: i64) -> Instance {
        self.service
            .instance(InstanceId::new(id).unwrap())
            .await
            .unwrap()
    }

    /// Creates a user of the directory.
    pub async fn put_user(&self, id: i64, name: &str, role: &str, active: bool) {
        let user = User {
            id: user(id),
            name: name.to_owned(),
            roles: vec![RoleName::new(role).unwrap()],
            active,
        };
        self.service.put_user(user).await.unwrap();
    }

    /// Starts booking `booking`'s cancellation as the coordinator, with `context`.
    pub async fn request(&self, booking: i64, context: serde_json::Value) -> Instance {
        let trigger = TriggerRequest {
            event: EventName::new("booking.cancellation_requested").unwrap(),
            entity_type: EntityType::new("booking").unwrap(),
            entity_id: EntityId::new(booking).unwrap(),
            initiated_by: user(3),
            context: Some(context),
        };
        self.service
            .trigger(trigger, None)
            .await
            .unwrap()
            .unkeyed()
            .unwrap()
    }
}

impl Browser {
    /// Keeps (or, for `Max-Age=0`, forgets) the cookie of one `Set-Cookie` value.
    fn take(&mut self, set_cookie: &str) {
        let pair = set_cookie.split(';').next().unwrap_or_default();
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if set_cookie.contains("Max-Age=0") {
            self.cookies.remove(name);
        } else {
            self.cookies.insert(name.to_owned(), value.to_owned());
        }
    }

    /// The CSRF token its cookie holds.
    pub fn token(&self) -> String {
        self.cookies
            .get("approvals_csrf")
            .cloned()
            .expect("the browser has a CSRF token")
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }
}

/// The text of a page with its markup and entities left in, and the message box's text.
pub fn flash_of(page: &Page) -> Option<String> {
    let start = page.text.find("class=\"flash")?;
    let rest = &page.text[start..];
    let end = rest.find("</div>")?;
    Some(rest[..end].to_owned())
}
