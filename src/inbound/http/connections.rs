//! Driving adapter, HTTP transport: the server's book of open connections. Each connection
//! records whether a request is in flight, since when it has been idle, and since when it has
//! been sending the headers of its next request; the server reads that to close connections
//! that sit idle or send their headers too slowly, and, when the cap on connections is
//! reached, to close the one idle the longest so that a new client gets in.
//!
//! Times are milliseconds since the book was opened, in atomics: the socket and the service
//! update them on every read and request without taking a lock.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// Every open connection, by a number of its own.
pub struct Book {
    opened: Instant,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
}

/// What the server knows of one connection.
pub struct Connection {
    in_flight: AtomicU32,
    /// Requests begun on this connection, ever.
    requests: AtomicU64,
    /// When the last request ended (or the connection opened); never 0.
    idle_since: AtomicU64,
    /// When the first byte after `idle_since` arrived; 0 while none has.
    head_since: AtomicU64,
    /// Told to close: shut down after the request in flight, or at once when there is none.
    close: Notify,
    /// Already told to close: not a candidate to make room any more.
    told: AtomicBool,
    opened: Instant,
}

/// A registered connection: leaving the book when dropped.
pub struct Entry {
    book: Arc<Book>,
    id: u64,
    pub connection: Arc<Connection>,
}

/// Why a connection is to be closed now.
#[derive(Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Nothing was sent for the idle time-out.
    Idle,
    /// A request's headers were begun and not finished within the header time-out.
    SlowHeaders,
}

impl Book {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            next: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Adds a connection opened now.
    pub fn register(self: &Arc<Self>) -> Entry {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            in_flight: AtomicU32::new(0),
            requests: AtomicU64::new(0),
            idle_since: AtomicU64::new(millis(self.opened)),
            head_since: AtomicU64::new(0),
            close: Notify::new(),
            told: AtomicBool::new(false),
            opened: self.opened,
        });
        self.lock().insert(id, Arc::clone(&connection));
        Entry {
            book: Arc::clone(self),
            id,
            connection,
        }
    }

    /// Asks the connection without a request in flight that has been idle the longest to
    /// close; returns false when every connection is busy.
    pub fn close_idlest(&self) -> bool {
        let open = self.lock();
        let idlest = open
            .values()
            .filter(|c| c.in_flight.load(Ordering::Acquire) == 0 && !c.told.load(Ordering::Relaxed))
            .min_by_key(|c| c.idle_since.load(Ordering::Relaxed));
        match idlest {
            Some(connection) => {
                connection.tell_to_close();
                true
            }
            None => false,
        }
    }

    /// Asks every connection to close (after its request in flight, if any).
    pub fn close_all(&self) {
        for connection in self.lock().values() {
            connection.tell_to_close();
        }
    }

    /// How many connections are open.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        // A panic while holding this lock leaves a map that is still whole.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.book.lock().remove(&self.id);
    }
}

/// Milliseconds from `opened` to now, at least 1 (0 means "not yet" in the atomics).
fn millis(opened: Instant) -> u64 {
    u64::try_from(opened.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

impl Connection {
    fn tell_to_close(&self) {
        self.mark_told();
        // `notify_one` keeps the wake-up for a connection not waiting right now.
        self.close.notify_one();
    }

    /// Notes that the connection is closing (on its own time-out), so that it is not chosen
    /// to make room.
    pub fn mark_told(&self) {
        self.told.store(true, Ordering::Relaxed);
    }

    /// No request in flight.
    pub fn is_quiet(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// No request ever begun: there is no answer to flush, and nothing is lost by dropping it.
    pub fn never_used(&self) -> bool {
        self.requests.load(Ordering::Relaxed) == 0 && self.is_quiet()
    }

    /// A request begins (its headers are in); the returned guard ends it when dropped, however
    /// the request ends.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Notes that bytes arrived: while no request is in flight, they begin the next one.
    fn read_some(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_since.load(Ordering::Relaxed) == 0
        {
            self.head_since
                .store(millis(self.opened), Ordering::Relaxed);
        }
    }

    /// Waits until the connection is told to close.
    pub async fn closing(&self) {
        self.close.notified().await;
    }

    /// Whether the connection has outstayed a time-out, and else when to look again.
    pub fn check(&self, idle: Duration, header: Duration) -> Result<Instant, Expiry> {
        let now = millis(self.opened);
        let at = |since: u64, limit: Duration| {
            since.saturating_add(u64::try_from(limit.as_millis()).unwrap_or(u64::MAX))
        };
        let (due, expiry) = if self.in_flight.load(Ordering::Acquire) > 0 {
            // Busy: the handler's own deadlines apply; look again later.
            (now.saturating_add(1000), None)
        } else {
            match self.head_since.load(Ordering::Relaxed) {
                0 => (
                    at(self.idle_since.load(Ordering::Relaxed), idle),
                    Some(Expiry::Idle),
                ),
                since => (at(since, header), Some(Expiry::SlowHeaders)),
            }
        };
        match expiry {
            Some(expiry) if due <= now => Err(expiry),
            // Headers may begin at any moment and must then end within `header`: look again
            // no later than that, whatever the idle deadline.
            _ => Ok(self.opened + Duration::from_millis(due.min(at(now, header)))),
        }
    }
}

/// A request in flight on a connection.
pub struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let connection = &self.0;
        connection
            .idle_since
            .store(millis(connection.opened), Ordering::Relaxed);
        connection.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A socket that tells its connection when bytes arrive.
pub struct Watched<T> {
    inner: T,
    connection: Arc<Connection>,
}

impl<T> Watched<T> {
    pub fn new(inner: T, connection: Arc<Connection>) -> Self {
        Self { inner, connection }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.connection.read_some();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_millis(300);
    const HEADER: Duration = Duration::from_millis(100);

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_expires_after_the_idle_time_out() {
        let book = Book::new();
        let entry = book.register();
        assert!(entry.connection.check(IDLE, HEADER).is_ok());
        tokio::time::advance(Duration::from_millis(310)).await;
        assert_eq!(entry.connection.check(IDLE, HEADER), Err(Expiry::Idle));
    }

    #[tokio::test(start_paused = true)]
    async fn a_begun_request_must_finish_its_headers_within_the_header_time_out() {
        let book = Book::new();
        let entry = book.register();
        tokio::time::advance(Duration::from_millis(50)).await;
        entry.connection.read_some();
        tokio::time::advance(Duration::from_millis(60)).await;
        // Later bytes don't move the start of the headers.
        entry.connection.read_some();
        tokio::time::advance(Duration::from_millis(50)).await;
        assert_eq!(
            entry.connection.check(IDLE, HEADER),
            Err(Expiry::SlowHeaders)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_looked_at_again_within_the_header_time_out() {
        let book = Book::new();
        let entry = book.register();
        let wait = entry.connection.check(IDLE, HEADER).unwrap() - Instant::now();
        // Times are whole milliseconds, counted from 1.
        assert!(
            wait >= HEADER && wait <= HEADER + Duration::from_millis(1),
            "{wait:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_never_expires_and_is_idle_again_after_its_request() {
        let book = Book::new();
        let entry = book.register();
        let request = entry.connection.begin();
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(entry.connection.check(IDLE, HEADER).is_ok());
        drop(request);
        assert!(entry.connection.check(IDLE, HEADER).is_ok());
        tokio::time::advance(Duration::from_millis(310)).await;
        assert_eq!(entry.connection.check(IDLE, HEADER), Err(Expiry::Idle));
    }

    #[tokio::test(start_paused = true)]
    async fn the_idlest_connection_without_a_request_is_the_one_closed() {
        let book = Book::new();
        let busy = book.register();
        let _request = busy.connection.begin();
        tokio::time::advance(Duration::from_millis(10)).await;
        let older = book.register();
        tokio::time::advance(Duration::from_millis(10)).await;
        let newer = book.register();
        assert!(book.close_idlest());
        // The wake-up is kept for the older one only.
        tokio::time::timeout(Duration::from_millis(1), older.connection.closing())
            .await
            .expect("the older idle connection is told to close");
        assert!(
            tokio::time::timeout(Duration::from_millis(1), newer.connection.closing())
                .await
                .is_err()
        );
        // A connection already told is not told again: the next one is the newer.
        assert!(book.close_idlest());
        tokio::time::timeout(Duration::from_millis(1), newer.connection.closing())
            .await
            .expect("the newer idle connection is told to close next");
        assert!(
            !book.close_idlest(),
            "only the busy connection is left untold"
        );
        assert_eq!(book.len(), 3);
        drop((older, newer));
        assert_eq!(book.len(), 1);
    }
}
