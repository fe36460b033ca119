//! Composition root: wires a store and a callback sink into the service, the HTTP server (the API
//! and the approvers' pages), the callback dispatcher and the key janitor, and stops them
//! together. Used by the binary and by the tests.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use warp::Filter;

use crate::domain::WorkflowService;
use crate::domain::dispatcher::{DispatchConfig, Dispatcher};
use crate::domain::janitor::{KeyJanitor, PURGE_INTERVAL};
use crate::domain::ports::{Callbacks, NoCallbacks, RoleResolver, WorkflowRepository};
use crate::inbound::{http, ui};
use crate::outbound::clock::SystemClock;
use crate::outbound::conditions::CelConditions;

/// A running server, dispatcher and key janitor.
pub struct App {
    /// The address the server listens on (useful when bound to port 0).
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
    dispatcher: JoinHandle<()>,
    janitor: JoinHandle<()>,
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

/// Starts serving on `listener` (within `connections`) and dispatching callbacks to
/// `callbacks`, with metrics on.
pub fn start<S, K>(
    store: Arc<S>,
    callbacks: Arc<K>,
    listener: TcpListener,
    dispatch: DispatchConfig,
    connections: http::ConnectionLimits,
) -> App
where
    S: WorkflowRepository + RoleResolver,
    K: Callbacks,
{
    let metrics = Arc::new(http::metrics::Metrics::new());
    start_with_metrics(store, callbacks, listener, dispatch, connections, metrics)
}

/// As [`start`], counting requests in `metrics` (which may be switched off).
pub fn start_with_metrics<S, K>(
    store: Arc<S>,
    callbacks: Arc<K>,
    listener: TcpListener,
    dispatch: DispatchConfig,
    connections: http::ConnectionLimits,
    metrics: Arc<http::metrics::Metrics>,
) -> App
where
    S: WorkflowRepository + RoleResolver,
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
    let dispatcher = Dispatcher::new(store, callbacks, Arc::new(SystemClock), dispatch);
    let dispatcher = tokio::spawn(dispatcher.run(outbox_signal, watcher.clone()));

    let mut server_watcher = watcher;
    // The pages answer everything under /ui; the API everything else.
    let routes = ui::routes(Arc::clone(&service)).or(http::api(service, metrics));
    let server = tokio::spawn(http::serve(listener, routes, connections, async move {
        let _ = server_watcher.wait_for(|stop| *stop).await;
    }));
    App {
        addr,
        shutdown,
        server,
        dispatcher,
        janitor,
    }
}

impl App {
    /// Stops accepting requests, lets in-flight ones finish, and stops the dispatcher.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        let _ = self.server.await;
        let _ = self.dispatcher.await;
        let _ = self.janitor.await;
    }
}
