//! Driving adapter, HTTP routing: one filter per route, combined in [`routes`], with the service
//! (any implementation of the driving port) injected by [`with_service`].
//!
//! Each route matches its path before its method, so that an unknown path is a 404 and a known
//! path with the wrong method a 405; bodies are read only once both match.

use std::convert::Infallible;
use std::sync::Arc;

use warp::{Filter, Rejection, Reply};

use super::body::json_body;
use super::errors;
use super::handlers;
use crate::domain::ports::WorkflowUseCases;

/// Every route of the API, with framework rejections rendered as JSON errors.
pub fn routes<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    trigger(Arc::clone(&service))
        .or(instance(Arc::clone(&service)))
        .or(template(Arc::clone(&service)))
        .or(update_template(Arc::clone(&service)))
        .or(pending_steps(Arc::clone(&service)))
        .or(approve(Arc::clone(&service)))
        .or(reject(Arc::clone(&service)))
        .or(health(service))
        .recover(errors::recover)
        .with(warp::log::custom(|info| {
            tracing::debug!(
                method = %info.method(),
                path = info.path(),
                status = info.status().as_u16(),
                elapsed_us = info.elapsed().as_micros() as u64,
                "request"
            );
        }))
}

/// Hands each request its own handle on the service.
fn with_service<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (Arc<S>,), Error = Infallible> + Clone {
    warp::any().map(move || Arc::clone(&service))
}

/// `POST /api/v1/workflow/instances`
pub fn trigger<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "instances")
        .and(warp::post())
        .and(with_service(service))
        .and(json_body())
        .then(handlers::trigger::trigger::<S>)
}

/// `GET /api/v1/workflow/instances/{id}`
pub fn instance<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "instances" / String)
        .and(warp::get())
        .and(with_service(service))
        .then(handlers::instances::instance::<S>)
}

/// `GET /api/v1/workflow/templates/{id}`
pub fn template<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "templates" / String)
        .and(warp::get())
        .and(with_service(service))
        .then(handlers::templates::template::<S>)
}

/// `PUT /api/v1/workflow/templates/{id}`
pub fn update_template<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "templates" / String)
        .and(warp::put())
        .and(with_service(service))
        .and(json_body())
        .then(handlers::templates::update_template::<S>)
}

/// `GET /api/v1/workflow/steps/pending?user_id=N&limit=M`
pub fn pending_steps<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "steps" / "pending")
        .and(warp::get())
        .and(with_service(service))
        // The raw pairs: the handler types them (see `inbox::PendingQuery` for why by hand).
        .and(warp::query::<Vec<(String, String)>>())
        .then(handlers::inbox::pending_steps::<S>)
}

/// `POST /api/v1/workflow/steps/{id}/approve`
pub fn approve<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "steps" / String / "approve")
        .and(warp::post())
        .and(with_service(service))
        .and(json_body())
        .then(handlers::decide::approve::<S>)
}

/// `POST /api/v1/workflow/steps/{id}/reject`
pub fn reject<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "steps" / String / "reject")
        .and(warp::post())
        .and(with_service(service))
        .and(json_body())
        .then(handlers::decide::reject::<S>)
}

/// `GET /healthz`
pub fn health<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("healthz")
        .and(warp::get())
        .and(with_service(service))
        .then(handlers::health::health::<S>)
}
