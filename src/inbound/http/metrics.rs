//! Driving adapter, HTTP: the Prometheus metrics of the service and `GET /metrics`.
//!
//! Requests are counted by method, route template (never the raw path, whose ids would make
//! every instance a series of its own) and status, with a latency histogram per route; decisions
//! by verdict and status; the store's load (pool connections in use and waiting, the outbox
//! backlog) is sampled when scraped, through the driving port.

use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::domain::model::StoreLoad;
use crate::domain::webhooks::model::DeliveryCounts;

/// Every route template of the service, as `METHOD path`; a request on any other path is
/// counted under the route `unmatched`, so that stray paths can't add series.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/api/v1/workflow/instances"),
    ("GET", "/api/v1/workflow/instances"),
    ("GET", "/api/v1/workflow/instances/{id}"),
    ("GET", "/api/v1/workflow/instances/{id}/audit/verify"),
    ("POST", "/api/v1/workflow/instances/{id}/cancel"),
    ("GET", "/api/v1/workflow/templates"),
    ("POST", "/api/v1/workflow/templates"),
    ("GET", "/api/v1/workflow/templates/{id}"),
    ("PUT", "/api/v1/workflow/templates/{id}"),
    ("POST", "/api/v1/workflow/templates/{id}/versions"),
    ("GET", "/api/v1/workflow/templates/{id}/versions/{id}"),
    ("GET", "/api/v1/workflow/steps/pending"),
    ("POST", "/api/v1/workflow/steps/{id}/approve"),
    ("POST", "/api/v1/workflow/steps/{id}/reject"),
    ("GET", "/api/v1/workflow/users"),
    ("GET", "/api/v1/workflow/users/{id}"),
    ("PUT", "/api/v1/workflow/users/{id}"),
    ("PUT", "/api/v1/workflow/users/{id}/delegation"),
    ("DELETE", "/api/v1/workflow/users/{id}/delegation"),
    ("POST", "/api/v1/workflow/subscriptions"),
    ("GET", "/api/v1/workflow/subscriptions"),
    ("DELETE", "/api/v1/workflow/subscriptions/{id}"),
    ("GET", "/api/v1/workflow/subscriptions/{id}/deliveries"),
    ("POST", "/api/v1/workflow/deliveries/{id}/retry"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/api/v1/openapi.json"),
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    verdict: &'static str,
    status: u16,
}

/// The service's metrics.
pub struct Metrics {
    /// Off (`METRICS=off`): requests are not counted; the store's gauges are still sampled.
    enabled: bool,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    decisions: Family<DecisionLabels, Counter>,
    pool_in_use: Gauge,
    pool_idle: Gauge,
    pool_waiting: Gauge,
    outbox_backlog: Gauge,
    outbox_oldest_age: Gauge<f64, std::sync::atomic::AtomicU64>,
    deliveries: Family<DeliveryLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("approvals");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 0.5 ms to about 16 s.
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer, by method and route template",
            latency.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Decisions asked for, by verdict (approve, reject) and the status answered",
            decisions.clone(),
        );
        let pool_in_use = Gauge::default();
        registry.register(
            "db_pool_connections_in_use",
            "Database connections held by requests",
            pool_in_use.clone(),
        );
        let pool_idle = Gauge::default();
        registry.register(
            "db_pool_connections_idle",
            "Database connections open and free",
            pool_idle.clone(),
        );
        let pool_waiting = Gauge::default();
        registry.register(
            "db_pool_waiting",
            "Requests waiting for a database connection",
            pool_waiting.clone(),
        );
        let outbox_backlog = Gauge::default();
        registry.register(
            "outbox_backlog",
            "Events written but not yet handed to every adapter",
            outbox_backlog.clone(),
        );
        let outbox_oldest_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "outbox_oldest_age_seconds",
            "Age of the oldest event not yet handed on (0 when none)",
            outbox_oldest_age.clone(),
        );
        let deliveries = Family::<DeliveryLabels, Gauge>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by status (pending, failed, delivered, dead)",
            deliveries.clone(),
        );
        Self {
            enabled: true,
            registry,
            requests,
            latency,
            decisions,
            pool_in_use,
            pool_idle,
            pool_waiting,
            outbox_backlog,
            outbox_oldest_age,
            deliveries,
        }
    }

    /// Samples the webhook deliveries by status, for the next [`render`](Self::render).
    pub fn set_deliveries(&self, counts: &DeliveryCounts) {
        for (status, count) in counts.by_status() {
            self.deliveries
                .get_or_create(&DeliveryLabels {
                    status: status.as_str(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// Metrics that count no request (`METRICS=off`): `/metrics` then shows only the store's
    /// gauges.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::new()
        }
    }

    /// Records one answered request.
    pub fn observe(&self, method: &str, path: &str, status: u16, elapsed: Duration) {
        if !self.enabled {
            return;
        }
        let route = route_template(method, path);
        self.requests
            .get_or_create(&RequestLabels {
                method: method.to_owned(),
                route,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.to_owned(),
                route,
            })
            .observe(elapsed.as_secs_f64());
        let verdict = match route {
            "/api/v1/workflow/steps/{id}/approve" => "approve",
            "/api/v1/workflow/steps/{id}/reject" => "reject",
            _ => return,
        };
        self.decisions
            .get_or_create(&DecisionLabels { verdict, status })
            .inc();
    }

    /// The text exposition, with the store's `load` as sampled at `now`.
    pub fn render(&self, load: &StoreLoad, now: DateTime<Utc>) -> String {
        let (in_use, idle, waiting) = load
            .pool
            .map_or((0, 0, 0), |p| (p.in_use, p.idle, p.waiting));
        self.pool_in_use.set(i64::from(in_use));
        self.pool_idle.set(i64::from(idle));
        self.pool_waiting.set(i64::from(waiting));
        self.outbox_backlog
            .set(i64::try_from(load.outbox_backlog).unwrap_or(i64::MAX));
        let age = load
            .oldest_undelivered_at
            .map_or(0.0, |at| (now - at).as_seconds_f64().max(0.0));
        self.outbox_oldest_age.set(age);
        let mut text = String::new();
        // Writing to a String can't fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// Whether `path` is an instance of `template`: each segment that is not a literal of the
/// template matches `{id}`.
fn matches(template: &str, segments: &[&str]) -> bool {
    let parts: Vec<&str> = template.split('/').collect();
    parts.len() == segments.len()
        && parts
            .iter()
            .zip(segments)
            .all(|(part, segment)| part == segment || (*part == "{id}" && !segment.is_empty()))
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_end_matches('/').split('/').collect()
}

/// The route template `path` belongs to for `method`, or `unmatched`.
pub fn route_template(method: &str, path: &str) -> &'static str {
    let segments = segments(path);
    ROUTES
        .iter()
        .find(|(m, template)| *m == method && matches(template, &segments))
        .map_or("unmatched", |(_, template)| template)
}

/// The methods some route answers on `path` (what a 405's `Allow` header lists).
pub fn allowed_methods(path: &str) -> Vec<&'static str> {
    let segments = segments(path);
    let mut methods: Vec<&'static str> = ROUTES
        .iter()
        .filter(|(_, template)| matches(template, &segments))
        .map(|(method, _)| *method)
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::PoolUse;

    #[test]
    fn paths_map_to_their_route_templates() {
        assert_eq!(
            route_template("POST", "/api/v1/workflow/steps/17/approve"),
            "/api/v1/workflow/steps/{id}/approve"
        );
        assert_eq!(
            route_template("GET", "/api/v1/workflow/templates/3/versions/2"),
            "/api/v1/workflow/templates/{id}/versions/{id}"
        );
        assert_eq!(
            route_template("GET", "/api/v1/workflow/instances"),
            "/api/v1/workflow/instances"
        );
        assert_eq!(
            route_template("DELETE", "/api/v1/workflow/instances"),
            "unmatched"
        );
        assert_eq!(route_template("GET", "/wp-admin/setup.php"), "unmatched");
        assert_eq!(
            allowed_methods("/api/v1/workflow/templates/3"),
            ["GET", "PUT"]
        );
        assert!(allowed_methods("/nowhere").is_empty());
        assert_eq!(
            route_template("GET", "/api/v1/workflow/steps/1/approve"),
            "unmatched"
        );
    }

    #[test]
    fn switched_off_they_count_nothing() {
        let metrics = Metrics::disabled();
        metrics.observe(
            "POST",
            "/api/v1/workflow/steps/4/approve",
            200,
            Duration::from_millis(3),
        );
        let text = metrics.render(&StoreLoad::default(), Utc::now());
        assert!(!text.contains("approvals_decisions_total{"), "{text}");
        assert!(!text.contains("approvals_http_requests_total{"), "{text}");
        assert!(text.contains("approvals_outbox_backlog 0"), "{text}");
    }

    #[test]
    fn a_decision_moves_the_request_and_decision_counters() {
        let metrics = Metrics::new();
        let now = Utc::now();
        let before = metrics.render(&StoreLoad::default(), now);
        assert!(!before.contains("approvals_decisions_total{"), "{before}");
        metrics.observe(
            "POST",
            "/api/v1/workflow/steps/4/approve",
            200,
            Duration::from_millis(3),
        );
        metrics.observe(
            "POST",
            "/api/v1/workflow/steps/4/approve",
            409,
            Duration::from_millis(2),
        );
        metrics.observe(
            "POST",
            "/api/v1/workflow/steps/5/reject",
            200,
            Duration::from_millis(2),
        );
        let text = metrics.render(
            &StoreLoad {
                outbox_backlog: 7,
                oldest_undelivered_at: Some(now - chrono::Duration::milliseconds(2500)),
                pool: Some(PoolUse {
                    in_use: 3,
                    idle: 1,
                    waiting: 2,
                }),
            },
            now,
        );
        for line in [
            r#"approvals_decisions_total{verdict="approve",status="200"} 1"#,
            r#"approvals_decisions_total{verdict="approve",status="409"} 1"#,
            r#"approvals_decisions_total{verdict="reject",status="200"} 1"#,
            r#"approvals_http_requests_total{method="POST",route="/api/v1/workflow/steps/{id}/approve",status="200"} 1"#,
            r#"approvals_http_request_duration_seconds_count{method="POST",route="/api/v1/workflow/steps/{id}/approve"} 2"#,
            "approvals_db_pool_connections_in_use 3",
            "approvals_db_pool_waiting 2",
            "approvals_outbox_backlog 7",
            "approvals_outbox_oldest_age_seconds 2.5",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }
}
