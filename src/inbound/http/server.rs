//! Driving adapter, HTTP transport: the server loop. It accepts TCP connections itself and
//! serves each with hyper's HTTP/1.1 connection (through hyper-util's Tokio I/O and timer)
//! instead of warp's own server, which has no time-outs and no cap: there, silent clients
//! could hold every file descriptor and lock everyone else out.
//!
//! The rules, with the book of connections (`connections`) recording what each one does:
//! - at most [`ConnectionLimits::max_connections`] are open; when a new client arrives at the
//!   cap, the connection idle the longest is closed to make room (only when every connection
//!   has a request in flight does the newcomer wait, in the kernel's backlog);
//! - a connection with no request for `idle_timeout` is closed, and so is one that begins a
//!   request and does not finish its headers within `header_read_timeout`;
//! - a connection told to close finishes the request it has in flight first;
//! - protocol errors (malformed requests, oversized headers, time-outs) end that connection
//!   and are logged at debug: a client can't fill the error log.
//!
//! HTTP/1.1 only: with HTTP/2 auto-detection a silent client would sit in version detection,
//! beyond hyper's header time-out.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower_service::Service;
use warp::http::Request;
use warp::reply::Response;
use warp::{Filter, Reply};

use super::connections::{Book, Connection, Entry, Watched};
use super::request_id::RequestIds;

/// How many connections the server keeps, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Time to finish a request's headers once its first byte has arrived.
    pub header_read_timeout: Duration,
    /// Time a connection may go without a request (since it opened, or since its last answer).
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: crate::config::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: crate::config::DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// How long a connection told to close must have had no request in flight before it is
/// dropped: enough for hyper to flush an answer it has just been handed.
const QUIET_BEFORE_DROP: Duration = Duration::from_millis(50);

/// Serves `routes` on `listener` until `shutdown` completes; then stops accepting, lets the
/// requests in flight finish, and returns once every connection is closed.
pub async fn serve<F>(
    listener: TcpListener,
    routes: F,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: Reply,
{
    let (stop, mut stopping) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let book = Book::new();
    let service = RequestIds::new(warp::service(routes));
    let mut accept_errors = AcceptErrors::default();
    loop {
        let accepted = tokio::select! {
            _ = stopping.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors (or a client gone before it was accepted): make
                // room, and pause so that the loop does not spin on the same error.
                book.close_idlest();
                accept_errors.note(&error);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(slot) = take_slot(&slots, &book, &mut stopping).await else {
            break;
        };
        let entry = book.register();
        tokio::spawn(connection(stream, entry, slot, service.clone(), limits));
    }
    drop(listener);
    book.close_all();
    // Every connection holds a slot until it ends.
    let _ = slots
        .acquire_many(u32::try_from(max).unwrap_or(u32::MAX))
        .await;
}

/// A slot for a new connection: free, or made free by closing the idlest connection; when
/// every connection is busy, the first to finish. `None` when the server is stopping.
async fn take_slot(
    slots: &Arc<Semaphore>,
    book: &Book,
    stopping: &mut watch::Receiver<bool>,
) -> Option<OwnedSemaphorePermit> {
    loop {
        if let Ok(slot) = Arc::clone(slots).try_acquire_owned() {
            return Some(slot);
        }
        book.close_idlest();
        tokio::select! {
            slot = Arc::clone(slots).acquire_owned() => return slot.ok(),
            // A busy connection may have gone idle meanwhile: look again.
            () = tokio::time::sleep(QUIET_BEFORE_DROP) => {}
            _ = stopping.wait_for(|stop| *stop) => return None,
        }
    }
}

/// Accept errors, logged at most once a minute: under a flood they would come by thousands.
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<Instant>,
    since: u64,
}

impl AcceptErrors {
    fn note(&mut self, error: &std::io::Error) {
        self.since += 1;
        if self
            .last_logged
            .is_some_and(|at| at.elapsed() < Duration::from_secs(60))
        {
            return;
        }
        tracing::warn!(%error, count = self.since, "accepting connections failed");
        self.last_logged = Some(Instant::now());
        self.since = 0;
    }
}

/// Serves one connection until it ends, is told to close, or outstays a time-out.
async fn connection<S>(
    stream: TcpStream,
    entry: Entry,
    _slot: OwnedSemaphorePermit,
    service: S,
    limits: ConnectionLimits,
) where
    S: Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let state = Arc::clone(&entry.connection);
    let io = TokioIo::new(Watched::new(stream, Arc::clone(&state)));
    let service = TowerToHyperService::new(Counted {
        inner: service,
        connection: Arc::clone(&state),
    });
    let mut builder = http1::Builder::new();
    // hyper's own header time-out runs from the moment it waits for a request, idle time
    // included: a backstop, well behind the finer rules of `Connection::check`.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(2 * (limits.idle_timeout + limits.header_read_timeout));
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);

    let mut told = false;
    let mut quiet_checks = 0;
    loop {
        let next_look = if told {
            Instant::now() + QUIET_BEFORE_DROP
        } else {
            match state.check(limits.idle_timeout, limits.header_read_timeout) {
                Ok(at) => at,
                Err(expiry) => {
                    tracing::debug!(?expiry, "closing a connection that outstayed its time-out");
                    state.mark_told();
                    if state.never_used() {
                        return;
                    }
                    conn.as_mut().graceful_shutdown();
                    told = true;
                    continue;
                }
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(error) = result {
                    // A client's fault (or its going away), never the server's: debug only.
                    tracing::debug!(%error, "connection ended with a protocol error");
                }
                return;
            }
            () = state.closing(), if !told => {
                // hyper would wait for the first request of a connection that never had one:
                // there is nothing to finish, so it is dropped at once.
                if state.never_used() {
                    return;
                }
                // Ends an idle keep-alive connection at once, else after its request.
                conn.as_mut().graceful_shutdown();
                told = true;
            }
            () = tokio::time::sleep_until(next_look) => {
                // Should hyper still wait for something after a graceful shutdown, the socket
                // is closed once it has had nothing in flight for a moment.
                if told {
                    quiet_checks = if state.is_quiet() { quiet_checks + 1 } else { 0 };
                    if quiet_checks >= 2 {
                        return;
                    }
                }
            }
        }
    }
}

/// The routes' service, counting the requests in flight on its connection.
#[derive(Clone)]
struct Counted<S> {
    inner: S,
    connection: Arc<Connection>,
}

impl<S, B> Service<Request<B>> for Counted<S>
where
    S: Service<Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let in_flight = self.connection.begin();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let answer = answer.await;
            drop(in_flight);
            answer
        })
    }
}
