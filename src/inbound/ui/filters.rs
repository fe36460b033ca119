//! Driving adapter, pages: routing under `/ui`, one filter per page, combined in [`routes`] into
//! one boxed filter (so that it adds one level, not a dozen, to the server's route type).
//!
//! Everything under `/ui` is answered here, framework rejections included, as pages; any other
//! path is left to the API's routes.

use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::browser::browser;
use super::form::form_body;
use super::page::{see_other, stylesheet};
use super::pages::{act_as, decision, errors, inbox, instance, templates};
use crate::domain::ports::WorkflowUseCases;
use crate::inbound::http::with_shared;

/// Every page under `/ui`.
pub fn routes<S: WorkflowUseCases>(service: Arc<S>) -> BoxedFilter<(Response,)> {
    let pages = home()
        .or(style())
        .unify()
        .or(act_as_page(Arc::clone(&service)))
        .unify()
        .or(act_as(Arc::clone(&service)))
        .unify()
        .or(inbox_page(Arc::clone(&service)))
        .unify()
        .or(instance_page(Arc::clone(&service)))
        .unify()
        .or(decide(Arc::clone(&service)))
        .unify()
        .or(templates_page(service))
        .unify()
        .recover(errors::recover)
        .unify()
        .with(warp::log::custom(|info| {
            tracing::debug!(
                method = %info.method(),
                path = info.path(),
                status = info.status().as_u16(),
                elapsed_us = info.elapsed().as_micros() as u64,
                "page"
            );
        }))
        .map(Reply::into_response);
    warp::path("ui").and(pages).boxed()
}

/// `GET /ui`: to the inbox (which sends a browser that acts as nobody to the picker).
fn home() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path::end()
        .and(warp::get())
        .map(|| see_other("/ui/inbox", &[]))
}

/// `GET /ui/style.css`
fn style() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("style.css").and(warp::get()).map(stylesheet)
}

/// `GET /ui/act-as`
fn act_as_page<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("act-as")
        .and(warp::get())
        .and(with_shared(service))
        .and(browser())
        .then(act_as::page::<S>)
}

/// `POST /ui/act-as`
fn act_as<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("act-as")
        .and(warp::post())
        .and(with_shared(service))
        .and(browser())
        .and(form_body())
        .then(act_as::choose::<S>)
}

/// `GET /ui/inbox`
fn inbox_page<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("inbox")
        .and(warp::get())
        .and(with_shared(service))
        .and(browser())
        .and(warp::query::<Vec<(String, String)>>())
        .then(inbox::page::<S>)
}

/// `GET /ui/instances/{id}`
fn instance_page<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("instances" / String)
        .and(warp::get())
        .and(with_shared(service))
        .and(browser())
        .then(instance::page::<S>)
}

/// `POST /ui/steps/{id}/decision`
fn decide<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("steps" / String / "decision")
        .and(warp::post())
        .and(with_shared(service))
        .and(browser())
        .and(form_body())
        .then(decision::decide::<S>)
}

/// `GET /ui/templates`
fn templates_page<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("templates")
        .and(warp::get())
        .and(with_shared(service))
        .and(browser())
        .then(templates::page::<S>)
}
