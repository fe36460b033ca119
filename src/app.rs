//! Composition root: wires a store and a callback sink into the service, the HTTP server (the API
//! and the approvers' pages), the callback dispatcher (which also fans each event out to the
//! webhook subscriptions), the webhook dispatcher, the key janitor and the overdue scheduler,
//! and stops them together. Used by the binary and by the tests.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use warp::Filter;

use crate::domain::WorkflowService;
use crate::domain::dispatcher::{DispatchConfig, Dispatcher};
use crate::domain::janitor::{KeyJanitor, PURGE_INTERVAL};
use crate::domain::overdue::OverdueScheduler;
use crate::domain::ports::{Callbacks, NoCallbacks, RoleResolver, WorkflowRepository};
use crate::domain::webhooks::WebhookService;
use crate::domain::webhooks::dispatcher::{WebhookDispatchConfig, WebhookDispatcher, hand_off};
use crate::domain::webhooks::ports::WebhookStore;
use crate::inbound::{http, ui};
use crate::outbound::clock::SystemClock;
use crate::outbound::conditions::CelConditions;
use crate::outbound::webhooks::{AddressGuard, HttpSender, WebhookFanOut, WebhookSettings};

/// A running server, dispatcher, key janitor and overdue scheduler.
pub struct App {
    /// The address the server listens on (useful when bound to port 0).
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    dispatcher: JoinHandle<()>,
    webhook_dispatcher: Option<JoinHandle<()>>,
    janitor: JoinHandle<()>,
    overdue: JoinHandle<()>,
}

/// The service type the binary and tests use; `K` the event adapters whose readiness it reports
/// (none for a service that only loads data).
pub type Service<S, K = NoCallbacks> = WorkflowService<S, S, SystemClock, CelConditions, K>;

/// A service over `store` (which is both repository and role resolver).
pub fn service<S>(store: Arc<S>, outbox_signal: Arc<Notify>) -> Service<S>
where
    S: WorkflowRepository + RoleResolver,
{
    WorkflowService::new(
        Arc::clone(&store),
        store,
        Arc::new(SystemClock),
        Arc::new(CelConditions),
        outbox_signal,
    )
}

/// Starts serving on `listener` (within `connections`), dispatching callbacks to `callbacks`
/// and to the webhook subscriptions (sent as `webhooks` says), with metrics on.
pub fn start<S, K>(
    store: Arc<S>,
    callbacks: Arc<K>,
    listener: TcpListener,
    dispatch: DispatchConfig,
    connections: http::ConnectionLimits,
    webhooks: WebhookSettings,
) -> App
where
    S: WorkflowRepository + RoleResolver + WebhookStore,
    K: Callbacks,
{
    let metrics = Arc::new(http::metrics::Metrics::new());
    start_with_metrics(
        store,
        callbacks,
        listener,
        dispatch,
        connections,
        metrics,
        webhooks,
    )
}

/// As [`start`], counting requests in `metrics` (which may be switched off).
pub fn start_with_metrics<S, K>(
    store: Arc<S>,
    callbacks: Arc<K>,
    listener: TcpListener,
    dispatch: DispatchConfig,
    connections: http::ConnectionLimits,
    metrics: Arc<http::metrics::Metrics>,
    webhooks: WebhookSettings,
) -> App
where
    S: WorkflowRepository + RoleResolver + WebhookStore,
    K: Callbacks,
{
    let addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let outbox_signal = Arc::new(Notify::new());
    let service = Arc::new(
        service(Arc::clone(&store), Arc::clone(&outbox_signal))
            .with_callbacks(Arc::clone(&callbacks)),
    );
    let (shutdown, watcher) = watch::channel(false);

    let janitor = KeyJanitor::new(Arc::clone(&store), Arc::new(SystemClock));
    let janitor = tokio::spawn(janitor.run(PURGE_INTERVAL, watcher.clone()));
    let overdue = OverdueScheduler::new(
        Arc::clone(&store),
        Arc::clone(&store),
        Arc::new(SystemClock),
        Arc::clone(&outbox_signal),
    );
    let overdue = tokio::spawn(overdue.run(dispatch.overdue_poll_interval, watcher.clone()));
    let hooks_wake = Arc::new(Notify::new());
    let (hand_off, handed) = hand_off();
    // After commit, each round of events becomes webhook deliveries (one write), handed to this
    // process's webhook dispatcher, then goes to `callbacks`.
    let fan_out = Arc::new(WebhookFanOut::new(
        Arc::clone(&store),
        Arc::new(SystemClock),
        webhooks.lease(),
        hand_off,
    ));
    let webhook_dispatcher =
        match HttpSender::new(webhooks.timeout, webhooks.allow_private_networks) {
            Ok(sender) => {
                let config = WebhookDispatchConfig {
                    lease: webhooks.lease(),
                    schedule: webhooks.schedule.clone(),
                    poll_interval: webhooks.poll_interval,
                    try_timeout: webhooks.timeout,
                    ..WebhookDispatchConfig::default()
                };
                let dispatcher = WebhookDispatcher::new(
                    Arc::clone(&store),
                    Arc::new(sender),
                    Arc::new(SystemClock),
                    config,
                );
                Some(tokio::spawn(dispatcher.run(
                    handed,
                    Arc::clone(&hooks_wake),
                    watcher.clone(),
                )))
            }
            Err(e) => {
                // Deliveries wait in the store for a process that can send them: with the queue
                // dropped the hand-off finds nobody to take them, and they are claimed when
                // their lease ends.
                drop(handed);
                tracing::error!(error = %e, "webhooks will not be sent by this process");
                None
            }
        };
    let hooks = Arc::new(WebhookService::new(
        Arc::clone(&store),
        Arc::new(AddressGuard::new(webhooks.allow_private_networks)),
        Arc::new(SystemClock),
        hooks_wake,
    ));
    let dispatcher =
        Dispatcher::new(store, callbacks, Arc::new(SystemClock), dispatch).with_fan_out(fan_out);
    let dispatcher = tokio::spawn(dispatcher.run(outbox_signal, watcher.clone()));

    let mut server_watcher = watcher;
    // The pages answer everything under /ui; the API everything else.
    let routes =
        ui::routes(Arc::clone(&service)).or(http::api_with_webhooks(service, hooks, metrics));
    let server = tokio::spawn(http::serve(listener, routes, connections, async move {
        let _ = server_watcher.wait_for(|stop| *stop).await;
    }));
    App {
        addr,
        shutdown,
        server,
        dispatcher,
        webhook_dispatcher,
        janitor,
        overdue,
    }
}

impl App {
    /// Stops accepting requests, lets in-flight ones finish, and stops the dispatcher.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        let _ = self.dispatcher.await;
        if let Some(webhook_dispatcher) = self.webhook_dispatcher {
            let _ = webhook_dispatcher.await;
        }
        let _ = self.janitor.await;
        let _ = self.overdue.await;
    }
}
