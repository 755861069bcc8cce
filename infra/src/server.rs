//! The HTTP server every service runs: axum's router on hyper, with the connection-level limits that
//! `axum::serve` does not have.
//!
//! A public endpoint must not let a client hold resources for free. Three limits, all from
//! [`tailor_core::config::HttpConfig`]:
//! - **header read timeout**: from the moment the server waits for a request (a new connection, or
//!   the end of the previous response on a kept-alive one) to the end of that request's headers
//!   (hyper's `header_read_timeout`). A client trickling its headers (slowloris) is cut off here.
//! - **idle timeout**: a connection with no request in progress and no byte moving either way for
//!   this long is closed. It also covers what the header timer does not: a request whose body or
//!   response stalls in the middle (the request timeout of each router covers the handler).
//! - **connection cap**: at most `max_connections` connections are served at once. One more is
//!   accepted and closed at once (counted in `tailor_http_connections_total{outcome="refused"}`),
//!   so a flood of connections costs the server one accept each instead of its memory, and a
//!   client learns at once instead of hanging in the kernel's backlog.
//!
//! Shutdown is graceful: on the signal the listener stops accepting and every connection finishes
//! its request in progress and closes.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tailor_core::config::HttpConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::ServiceExt;

/// Serves `router` on `listener` until `shutdown` resolves, within the limits of `config`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let stop = tokio_util::sync::CancellationToken::new();
    let header_read = Duration::from_millis(config.header_read_timeout_ms);
    let idle = Duration::from_millis(config.idle_timeout_ms);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            metrics::counter!("tailor_http_connections_total", "outcome" => "refused").increment(1);
            drop(stream);
            continue;
        };
        metrics::counter!("tailor_http_connections_total", "outcome" => "accepted").increment(1);
        let router = router.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            connection(stream, peer, router, header_read, idle, stop).await;
            drop(slot);
        });
    }
    stop.cancel();
    // Wait for the connections to finish their requests (each holds a slot until it is done).
    let _all = slots
        .acquire_many(config.max_connections as u32)
        .await
        .expect("the semaphore is never closed");
    Ok(())
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    header_read: Duration,
    idle: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        io: stream,
        activity: activity.clone(),
    });
    let in_flight = activity.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let guard = InFlight::start(in_flight.clone());
        let router = router.clone();
        async move {
            let response = router.oneshot(req).await;
            drop(guard);
            response
        }
    });
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read)
        .keep_alive(true);
    let conn = builder.serve_connection_with_upgrades(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        let idle_until = activity.idle_deadline(idle);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "connection closed with an error");
                }
                return;
            }
            _ = stop.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep_until(idle_until) => {
                if activity.is_idle(idle) {
                    metrics::counter!("tailor_http_connections_closed_total", "reason" => "idle").increment(1);
                    return;
                }
            }
        }
    }
}

/// What the idle timer watches: when bytes last moved, and how many requests are in progress.
struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last read or write that moved bytes.
    last_ms: AtomicU64,
    requests: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            requests: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    fn idle_deadline(&self, idle: Duration) -> Instant {
        self.last() + idle
    }

    /// No request in progress and nothing moved for `idle`.
    fn is_idle(&self, idle: Duration) -> bool {
        self.requests.load(Ordering::Relaxed) == 0 && self.last() + idle <= Instant::now()
    }
}

/// Counts a request as in progress until dropped (also when its future is dropped half-way).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(a: Arc<Activity>) -> Self {
        a.requests.fetch_add(1, Ordering::Relaxed);
        InFlight(a)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.requests.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A stream that records when bytes last moved.
struct Tracked<IO> {
    io: IO,
    activity: Arc<Activity>,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    //! Over loopback TCP with a raw socket, as a hostile client would talk. Bounds are generous (a
    //! limit of ~0.3 s must act within 10 s): they prove the connection is closed, not how fast.
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const WITHIN: Duration = Duration::from_secs(10);

    async fn start(config: HttpConfig) -> (SocketAddr, tokio_util::sync::CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        let router = Router::new().route("/", get(|| async { "ok" }));
        tokio::spawn(async move { serve(listener, router, &config, s.cancelled_owned()).await });
        (addr, stop)
    }

    /// Sends one keep-alive request and reads its answer.
    async fn request(c: &mut TcpStream) -> bool {
        if c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .is_err()
        {
            return false;
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.ends_with(b"ok") {
            match tokio::time::timeout(WITHIN, c.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => return false,
            }
        }
        got.starts_with(b"HTTP/1.1 200")
    }

    /// Whether the server closed `c` (EOF or reset) within `within`.
    async fn closed_within(c: &mut TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(within, c.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    fn limits(header_read_ms: u64, idle_ms: u64, max: usize) -> HttpConfig {
        HttpConfig {
            header_read_timeout_ms: header_read_ms,
            idle_timeout_ms: idle_ms,
            max_connections: max,
        }
    }

    #[tokio::test]
    async fn a_client_trickling_its_headers_is_cut_off() {
        let (addr, stop) = start(limits(300, 60_000, 16)).await;
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n").await.unwrap();
        // One header line every 50 ms, never the blank line that ends them: bytes keep moving, so
        // only the header timer can end this.
        let deadline = Instant::now() + WITHIN;
        let mut closed = false;
        while Instant::now() < deadline {
            if c.write_all(b"x-slow: 1\r\n").await.is_err()
                || closed_within(&mut c, Duration::from_millis(50)).await
            {
                closed = true;
                break;
            }
        }
        assert!(closed, "a slow-header connection stayed open");
        // The server still serves others.
        assert!(request(&mut TcpStream::connect(addr).await.unwrap()).await);
        stop.cancel();
    }

    #[tokio::test]
    async fn an_idle_kept_alive_connection_is_closed() {
        let (addr, stop) = start(limits(60_000, 300, 16)).await;
        let mut c = TcpStream::connect(addr).await.unwrap();
        assert!(request(&mut c).await);
        assert!(
            closed_within(&mut c, WITHIN).await,
            "an idle connection stayed open"
        );
        stop.cancel();
    }

    #[tokio::test]
    async fn the_connection_cap_holds_and_frees_its_slots() {
        let (addr, stop) = start(limits(60_000, 60_000, 2)).await;
        let mut a = TcpStream::connect(addr).await.unwrap();
        let mut b = TcpStream::connect(addr).await.unwrap();
        // Served, so both hold a slot.
        assert!(request(&mut a).await && request(&mut b).await);
        for _ in 0..3 {
            let mut extra = TcpStream::connect(addr).await.unwrap();
            assert!(
                closed_within(&mut extra, WITHIN).await,
                "a connection beyond the cap was kept"
            );
        }
        assert!(request(&mut a).await, "the capped ones keep working");
        drop(b);
        // Once a slot is free a new client is served (the slot is freed when the server notices).
        let deadline = Instant::now() + WITHIN;
        loop {
            let mut c = TcpStream::connect(addr).await.unwrap();
            if request(&mut c).await {
                break;
            }
            assert!(Instant::now() < deadline, "a freed slot was never reused");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        stop.cancel();
    }
}
