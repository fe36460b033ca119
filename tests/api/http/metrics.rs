//! `GET /metrics` over a real socket, on both stores: a decision moves the request and decision
//! counters; PostgreSQL reports its pool and the outbox backlog.

use crate::helpers::TestApp;

on_both_stores!(a_decision_moves_the_counters);

async fn scrape(app: &TestApp) -> String {
    let response = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

/// The value of the sample `series` (name and labels, exactly), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn a_decision_moves_the_counters(app: &TestApp) {
    let approved = r#"approvals_decisions_total{verdict="approve",status="200"}"#;
    let requests = r#"approvals_http_requests_total{method="POST",route="/api/v1/workflow/steps/{id}/approve",status="200"}"#;
    let before = scrape(app).await;
    assert_eq!(sample(&before, approved), 0.0);

    let reply = app.approve(1, 1).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let refused = app.approve(1, 1).await;
    assert_eq!(refused.status, 409);

    let after = scrape(app).await;
    assert_eq!(sample(&after, approved), 1.0, "{after}");
    assert_eq!(sample(&after, requests), 1.0);
    assert_eq!(
        sample(
            &after,
            r#"approvals_decisions_total{verdict="approve",status="409"}"#
        ),
        1.0
    );
    // The earlier scrape is itself counted, under its route template.
    assert!(
        sample(
            &after,
            r#"approvals_http_requests_total{method="GET",route="/metrics",status="200"}"#
        ) >= 1.0
    );
    assert!(after.contains("approvals_http_request_duration_seconds_bucket{"));
    assert!(after.contains("approvals_outbox_backlog "));
    assert!(after.contains("approvals_db_pool_connections_in_use "));
}
