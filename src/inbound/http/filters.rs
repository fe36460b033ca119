//! Driving adapter, HTTP routing: one filter per route, combined in [`routes`], with the service
//! (any implementation of the driving port) injected by [`with_shared`].
//!
//! Each route matches its path before its method, so that an unknown path is a 404 and a known
//! path with the wrong method a 405; bodies are read only once both match.

use std::convert::Infallible;
use std::sync::Arc;

use warp::{Filter, Rejection, Reply};

use super::body::json_body;
use super::errors;
use super::handlers;
use super::idempotency::key_header;
use super::metrics::Metrics;
use crate::domain::ports::WorkflowUseCases;
use crate::domain::webhooks::ports::WebhookUseCases;

/// Every route of the API, with framework rejections rendered as JSON errors, and metrics of
/// their own (for tests; the service uses [`api`] with the metrics it serves).
pub fn routes<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    api(service, Arc::new(Metrics::new()))
}

/// Every route of the API, with framework rejections rendered as JSON errors; each answered
/// request is counted in `metrics`, which `GET /metrics` serves.
pub fn api<S: WorkflowUseCases>(
    service: Arc<S>,
    metrics: Arc<Metrics>,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let observed = Arc::clone(&metrics);
    endpoints(service, metrics)
        .recover(errors::recover)
        .with(warp::log::custom(move |info| observe(&observed, &info)))
}

/// As [`api`], with the webhook endpoints of `hooks`, and `GET /metrics` showing the webhook
/// deliveries by status.
pub fn api_with_webhooks<S: WorkflowUseCases, H: WebhookUseCases>(
    service: Arc<S>,
    hooks: Arc<H>,
    metrics: Arc<Metrics>,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let observed = Arc::clone(&metrics);
    webhooks(Arc::clone(&service), hooks, Arc::clone(&metrics))
        .or(endpoints(service, metrics))
        .recover(errors::recover)
        .with(warp::log::custom(move |info| observe(&observed, &info)))
}

fn observe(metrics: &Metrics, info: &warp::log::Info<'_>) {
    metrics.observe(
        info.method().as_str(),
        info.path(),
        info.status().as_u16(),
        info.elapsed(),
    );
}

/// The workflow's routes, before rejections are rendered.
fn endpoints<S: WorkflowUseCases>(
    service: Arc<S>,
    metrics: Arc<Metrics>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    trigger(Arc::clone(&service))
        .or(search_instances(Arc::clone(&service)))
        .or(instance_reads(Arc::clone(&service)))
        .or(cancel(Arc::clone(&service)))
        .or(template(Arc::clone(&service)))
        .or(update_template(Arc::clone(&service)))
        .or(templates(Arc::clone(&service)))
        .or(create_template(Arc::clone(&service)))
        .or(publish_version(Arc::clone(&service)))
        .or(template_version(Arc::clone(&service)))
        .or(pending_steps(Arc::clone(&service)))
        .or(directory(Arc::clone(&service)))
        .or(approve(Arc::clone(&service)))
        .or(reject(Arc::clone(&service)))
        .or(operations(service, metrics))
}

/// The webhook routes, and `GET /metrics` with the deliveries (tried before the plain one).
fn webhooks<S: WorkflowUseCases, H: WebhookUseCases>(
    service: Arc<S>,
    hooks: Arc<H>,
    metrics: Arc<Metrics>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let create = warp::path!("api" / "v1" / "workflow" / "subscriptions")
        .and(warp::post())
        .and(with_shared(Arc::clone(&hooks)))
        .and(key_header())
        .and(json_body())
        .then(handlers::webhooks::create_subscription::<H>);
    let list = warp::path!("api" / "v1" / "workflow" / "subscriptions")
        .and(warp::get())
        .and(with_shared(Arc::clone(&hooks)))
        .then(handlers::webhooks::subscriptions::<H>);
    let delete = warp::path!("api" / "v1" / "workflow" / "subscriptions" / String)
        .and(warp::delete())
        .and(with_shared(Arc::clone(&hooks)))
        .then(handlers::webhooks::delete_subscription::<H>);
    let deliveries =
        warp::path!("api" / "v1" / "workflow" / "subscriptions" / String / "deliveries")
            .and(warp::get())
            .and(with_shared(Arc::clone(&hooks)))
            .and(warp::query::<Vec<(String, String)>>())
            .then(handlers::webhooks::deliveries::<H>);
    let retry = warp::path!("api" / "v1" / "workflow" / "deliveries" / String / "retry")
        .and(warp::post())
        .and(with_shared(Arc::clone(&hooks)))
        .and(key_header())
        .then(handlers::webhooks::retry_delivery::<H>);
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(with_shared(service))
        .and(with_shared(hooks))
        .and(with_shared(metrics))
        .then(handlers::webhooks::metrics::<S, H>);
    create
        .or(list)
        .unify()
        .or(delete)
        .unify()
        .or(deliveries)
        .unify()
        .or(retry)
        .unify()
        .or(metrics)
        .unify()
}

/// Hands each request its own handle on `shared` (the service, the metrics).
pub fn with_shared<T: Send + Sync + 'static>(
    shared: Arc<T>,
) -> impl Filter<Extract = (Arc<T>,), Error = Infallible> + Clone {
    warp::any().map(move || Arc::clone(&shared))
}

/// `POST /api/v1/workflow/instances`
pub fn trigger<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "instances")
        .and(warp::post())
        .and(with_shared(service))
        .and(key_header())
        .and(json_body())
        .then(handlers::trigger::trigger::<S>)
}

/// `GET /api/v1/workflow/instances?entity_type=..&entity_id=..&event=..&status=..
/// &initiated_by=..&limit=..&after=..`. The path ends at `instances` (`path!` adds the end), so
/// `GET /instances/{id}` is not this route; the same path with POST is the trigger, tried first.
pub fn search_instances<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "instances")
        .and(warp::get())
        .and(with_shared(service))
        // The raw pairs, typed by the handler as the inbox's are.
        .and(warp::query::<Vec<(String, String)>>())
        .then(handlers::search::search_instances::<S>)
}

/// An instance's read routes, combined so that they add one level to the nesting of `routes`
/// (see `directory`).
fn instance_reads<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    instance(Arc::clone(&service)).or(verify_audit(service))
}

/// `GET /api/v1/workflow/instances/{id}/audit/verify`
pub fn verify_audit<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "instances" / String / "audit" / "verify")
        .and(warp::get())
        .and(with_shared(service))
        .then(handlers::audit::verify_audit::<S>)
}

/// `GET /api/v1/workflow/instances/{id}`
pub fn instance<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "instances" / String)
        .and(warp::get())
        .and(with_shared(service))
        .then(handlers::instances::instance::<S>)
}

/// `POST /api/v1/workflow/instances/{id}/cancel`
pub fn cancel<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "instances" / String / "cancel")
        .and(warp::post())
        .and(with_shared(service))
        .and(key_header())
        .and(json_body())
        .then(handlers::cancel::cancel::<S>)
}

/// `GET /api/v1/workflow/templates/{id}`
pub fn template<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "templates" / String)
        .and(warp::get())
        .and(with_shared(service))
        .then(handlers::templates::template::<S>)
}

/// `PUT /api/v1/workflow/templates/{id}`
pub fn update_template<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "templates" / String)
        .and(warp::put())
        .and(with_shared(service))
        .and(json_body())
        .then(handlers::templates::update_template::<S>)
}

/// `GET /api/v1/workflow/templates?event=E&is_active=B`
pub fn templates<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "templates")
        .and(warp::get())
        .and(with_shared(service))
        // The raw pairs: the handler types them, as the inbox's do.
        .and(warp::query::<Vec<(String, String)>>())
        .then(handlers::template_authoring::templates::<S>)
}

/// `POST /api/v1/workflow/templates`
pub fn create_template<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "templates")
        .and(warp::post())
        .and(with_shared(service))
        .and(key_header())
        .and(json_body())
        .then(handlers::template_authoring::create_template::<S>)
}

/// `POST /api/v1/workflow/templates/{id}/versions`
pub fn publish_version<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "templates" / String / "versions")
        .and(warp::post())
        .and(with_shared(service))
        .and(key_header())
        .and(json_body())
        .then(handlers::template_versions::publish_version::<S>)
}

/// `GET /api/v1/workflow/templates/{id}/versions/{version}`
pub fn template_version<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "templates" / String / "versions" / String)
        .and(warp::get())
        .and(with_shared(service))
        .then(handlers::template_versions::template_version::<S>)
}

/// `GET /api/v1/workflow/steps/pending?user_id=N&limit=M`
pub fn pending_steps<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "steps" / "pending")
        .and(warp::get())
        .and(with_shared(service))
        // The raw pairs: the handler types them (see `inbox::PendingQuery` for why by hand).
        .and(warp::query::<Vec<(String, String)>>())
        .then(handlers::inbox::pending_steps::<S>)
}

/// The user directory's routes, combined here so that they add one level, not three, to the
/// nesting of `routes` (each `or` nests the type one deeper, and the compiler's limit is near).
fn directory<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    put_user(Arc::clone(&service))
        .or(user(Arc::clone(&service)))
        .or(users(Arc::clone(&service)))
        .or(put_delegation(Arc::clone(&service)))
        .or(end_delegation(service))
}

/// `PUT /api/v1/workflow/users/{id}/delegation`
pub fn put_delegation<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "users" / String / "delegation")
        .and(warp::put())
        .and(with_shared(service))
        .and(json_body())
        .then(handlers::delegation::put_delegation::<S>)
}

/// `DELETE /api/v1/workflow/users/{id}/delegation`
pub fn end_delegation<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "users" / String / "delegation")
        .and(warp::delete())
        .and(with_shared(service))
        .then(handlers::delegation::end_delegation::<S>)
}

/// `PUT /api/v1/workflow/users/{id}`
pub fn put_user<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "users" / String)
        .and(warp::put())
        .and(with_shared(service))
        .and(json_body())
        .then(handlers::users::put_user::<S>)
}

/// `GET /api/v1/workflow/users/{id}`
pub fn user<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "users" / String)
        .and(warp::get())
        .and(with_shared(service))
        .then(handlers::users::user::<S>)
}

/// `GET /api/v1/workflow/users?role=R`
pub fn users<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "users")
        .and(warp::get())
        .and(with_shared(service))
        // The raw pairs: the handler types them, as the inbox's are.
        .and(warp::query::<Vec<(String, String)>>())
        .then(handlers::users::users::<S>)
}

/// `POST /api/v1/workflow/steps/{id}/approve`
pub fn approve<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "steps" / String / "approve")
        .and(warp::post())
        .and(with_shared(service))
        .and(key_header())
        .and(json_body())
        .then(handlers::decide::approve::<S>)
}

/// `POST /api/v1/workflow/steps/{id}/reject`
pub fn reject<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "workflow" / "steps" / String / "reject")
        .and(warp::post())
        .and(with_shared(service))
        .and(key_header())
        .and(json_body())
        .then(handlers::decide::reject::<S>)
}

/// The operator's routes, combined to add one level to the nesting of `api`.
fn operations<S: WorkflowUseCases>(
    service: Arc<S>,
    metrics: Arc<Metrics>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    health(Arc::clone(&service))
        .or(ready(Arc::clone(&service)))
        .or(metrics_route(service, metrics))
        .or(openapi())
}

/// `GET /api/v1/openapi.json`
pub fn openapi() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("api" / "v1" / "openapi.json")
        .and(warp::get())
        .then(handlers::openapi::openapi)
}

/// `GET /metrics`
pub fn metrics_route<S: WorkflowUseCases>(
    service: Arc<S>,
    metrics: Arc<Metrics>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("metrics")
        .and(warp::get())
        .and(with_shared(service))
        .and(with_shared(metrics))
        .then(handlers::metrics::metrics::<S>)
}

/// `GET /readyz`
pub fn ready<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("readyz")
        .and(warp::get())
        .and(with_shared(service))
        .then(handlers::ready::ready::<S>)
}

/// `GET /healthz`
pub fn health<S: WorkflowUseCases>(
    service: Arc<S>,
) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    warp::path!("healthz")
        .and(warp::get())
        .and(with_shared(service))
        .then(handlers::health::health::<S>)
}
