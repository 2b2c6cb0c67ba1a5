//! The HTTP server behind [`Gateway::serve_with`](super::Gateway::serve_with):
//! hyper's HTTP/1.1 connection loop with the limits a public endpoint needs,
//! applied before any Socket.IO work.
//!
//! - **Connection limits**, per node and per client IP: a connection over a
//!   limit is answered with a complete HTTP response (`503` / `429`) and
//!   closed, without reaching the router.
//! - **Header-read timeout**: a connection that does not send a complete
//!   request head within the timeout is closed. hyper starts this timer
//!   whenever it waits for a request head, so it bounds silent connections,
//!   half-sent request lines and idle keep-alive connections alike.
//! - **Body-read timeout**: a request body (a long-polling POST, say) that
//!   is not complete within the timeout fails, and the connection is
//!   closed: a client trickling one byte every few seconds cannot hold a
//!   connection and a task forever.
//! - **Slow consumers**: a write to the connection that stays blocked for
//!   the slow-consumer timeout (the client stopped reading and the kernel
//!   buffers are full) fails, which ends the connection: engine.io closes
//!   the session, socketioxide disconnects its sockets (rooms left, metadata
//!   gone, disconnect hooks run). Without it, engine.io's writer waits on the
//!   full socket forever and the heartbeat's close waits for the writer.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;
use tower::ServiceExt;

use super::log_throttle::LogThrottle;
use super::proxy::TrustedProxies;

/// Default header-read timeout: 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default body-read timeout (longest a request body may take to arrive
/// whole): 15 s.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Default slow-consumer timeout (longest a write may stay blocked): 5 s.
pub const DEFAULT_SLOW_CONSUMER_TIMEOUT: Duration = Duration::from_secs(5);
/// Default maximum of concurrent connections per node: 100,000.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;
/// Default maximum of concurrent connections per client IP: 1,000.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 1_000;

/// How long the refusal of a connection over a limit may take to write.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long open connections may take to finish after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The HTTP limits of a gateway (see [`ServerConfig`](super::ServerConfig)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpLimits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) body_read_timeout: Duration,
    pub(crate) slow_consumer_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_connections_per_ip: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            slow_consumer_timeout: DEFAULT_SLOW_CONSUMER_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
        }
    }
}

/// Connection counters of a gateway's HTTP server
/// ([`Gateway::http_stats`](super::Gateway::http_stats)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HttpStats {
    /// TCP connections open now.
    pub open_connections: u64,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections refused because the node had `max_connections` open
    /// (answered `503 Service Unavailable`).
    pub refused_node_limit: u64,
    /// Connections refused because their IP had `max_connections_per_ip`
    /// open (answered `429 Too Many Requests`).
    pub refused_ip_limit: u64,
    /// Connections closed because no complete request head arrived within
    /// the header-read timeout.
    pub header_timeouts: u64,
    /// Request bodies that did not arrive whole within the body-read
    /// timeout (their connections were closed).
    pub body_timeouts: u64,
    /// Connections closed because a write stayed blocked for the
    /// slow-consumer timeout.
    pub slow_consumers: u64,
    /// TLS handshakes that failed (a client that does not trust the
    /// certificate, or does not speak TLS); a handshake not finished within
    /// the header-read timeout counts in `header_timeouts`.
    pub tls_failures: u64,
}

#[derive(Debug, Default)]
pub(crate) struct HttpCounters {
    open: AtomicUsize,
    accepted: AtomicU64,
    refused_node: AtomicU64,
    refused_ip: AtomicU64,
    header_timeouts: AtomicU64,
    body_timeouts: AtomicU64,
    slow_consumers: AtomicU64,
    tls_failures: AtomicU64,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    refusal_log: LogThrottle,
    slow_log: LogThrottle,
    body_log: LogThrottle,
}

impl HttpCounters {
    pub(crate) fn snapshot(&self) -> HttpStats {
        HttpStats {
            open_connections: self.open.load(Ordering::Relaxed) as u64,
            accepted: self.accepted.load(Ordering::Relaxed),
            refused_node_limit: self.refused_node.load(Ordering::Relaxed),
            refused_ip_limit: self.refused_ip.load(Ordering::Relaxed),
            header_timeouts: self.header_timeouts.load(Ordering::Relaxed),
            body_timeouts: self.body_timeouts.load(Ordering::Relaxed),
            slow_consumers: self.slow_consumers.load(Ordering::Relaxed),
            tls_failures: self.tls_failures.load(Ordering::Relaxed),
        }
    }

    /// Takes a connection slot, and one for `ip` when it is given (not for
    /// a trusted proxy, whose requests take theirs per client), or says
    /// which limit refuses it.
    fn admit(self: &Arc<Self>, ip: Option<IpAddr>, limits: &HttpLimits) -> Result<Slot, Refusal> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        if self.open.load(Ordering::Relaxed) >= limits.max_connections {
            self.refused_node.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Node);
        }
        let ip = ip
            .map(|ip| self.take_ip(&mut per_ip, ip, limits))
            .transpose()?;
        self.open.fetch_add(1, Ordering::Relaxed);
        self.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            counters: self.clone(),
            _ip: ip,
        })
    }

    /// A place for one more connection of `ip` (the client behind a trusted
    /// proxy), or `Refusal::Ip`.
    fn admit_ip(self: &Arc<Self>, ip: IpAddr, limits: &HttpLimits) -> Result<IpSlot, Refusal> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        self.take_ip(&mut per_ip, ip, limits)
    }

    fn take_ip(
        self: &Arc<Self>,
        per_ip: &mut HashMap<IpAddr, usize>,
        ip: IpAddr,
        limits: &HttpLimits,
    ) -> Result<IpSlot, Refusal> {
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= limits.max_connections_per_ip {
            self.refused_ip.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Ip);
        }
        *count += 1;
        Ok(IpSlot {
            counters: self.clone(),
            ip,
        })
    }
}

/// One open connection's place in the node's count, given back on drop,
/// with its client's place in the per-IP count.
struct Slot {
    counters: Arc<HttpCounters>,
    _ip: Option<IpSlot>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counters.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One connection's place in the per-IP count, given back on drop (the
/// per-IP map only holds IPs with open connections, so it stays bounded).
struct IpSlot {
    counters: Arc<HttpCounters>,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut per_ip = self
            .counters
            .per_ip
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

/// The client slot of a connection from a trusted proxy: taken by its
/// requests for the client the forwarded headers name, kept while the
/// connection (or the WebSocket it was upgraded to) lives, and moved when a
/// pooled proxy connection carries another client's request.
type ProxiedClient = Arc<Mutex<Option<IpSlot>>>;

#[derive(Debug, Clone, Copy)]
enum Refusal {
    Node,
    Ip,
}

impl Refusal {
    /// The refusal as a response of the router's kind (for a request from
    /// a trusted proxy: the connection to the proxy stays open).
    fn http_response(self) -> axum::response::Response {
        let (status, body) = match self {
            Refusal::Node => (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "TOO_MANY_CONNECTIONS",
            ),
            Refusal::Ip => (
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_CONNECTIONS_PER_IP",
            ),
        };
        let mut response = axum::response::Response::new(axum::body::Body::from(body));
        *response.status_mut() = status;
        response.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("5"),
        );
        response
    }

    /// The complete HTTP response that refuses the connection.
    fn response(self) -> &'static [u8] {
        match self {
            Refusal::Node => {
                b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\nretry-after: 5\r\nconnection: close\r\ncontent-length: 20\r\n\r\nTOO_MANY_CONNECTIONS"
            }
            Refusal::Ip => {
                b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: text/plain\r\nretry-after: 5\r\nconnection: close\r\ncontent-length: 27\r\n\r\nTOO_MANY_CONNECTIONS_PER_IP"
            }
        }
    }
}

/// How TLS connections are accepted (feature `tls`).
#[cfg(feature = "tls")]
pub(crate) type Acceptor = tokio_rustls::TlsAcceptor;
/// Without the `tls` feature there is no acceptor.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub(crate) enum Acceptor {}

/// How the serve helpers take connections: the limits, the trusted
/// proxies, TLS, and the counters to keep.
pub(crate) struct Front {
    pub(crate) limits: HttpLimits,
    pub(crate) trusted: Arc<TrustedProxies>,
    pub(crate) tls: Option<Acceptor>,
    pub(crate) counters: Arc<HttpCounters>,
}

/// Serves `router` on `listener` with `front`'s limits until `shutdown` resolves;
/// then `close` runs (closing the upgraded WebSockets, which hyper does not
/// track), and open connections get [`SHUTDOWN_GRACE`] to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    front: Front,
    shutdown: impl Future<Output = ()> + Send + 'static,
    close: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let Front {
        limits,
        trusted,
        tls,
        counters,
    } = front;
    // Each connection holds a receiver: `closed()` tells when all are gone.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    // Out of descriptors and the like: wait instead of
                    // spinning (what axum::serve does too).
                    tracing::debug!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let proxied = trusted.contains(peer.ip());
        let slot = match counters.admit((!proxied).then_some(peer.ip()), &limits) {
            Ok(slot) => slot,
            Err(refusal) => {
                refuse(stream, peer, refusal, &counters);
                continue;
            }
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "cannot set TCP_NODELAY");
        }
        let client_slot: Option<ProxiedClient> = proxied.then(ProxiedClient::default);
        // The slot lives in the IO: an upgraded WebSocket outlives hyper's
        // connection future and still counts as open.
        let io = DeadlineIo::new(
            stream,
            limits.slow_consumer_timeout,
            slot,
            client_slot.clone(),
            peer,
        );
        let service = RequestService {
            router: router.clone(),
            limits,
            counters: counters.clone(),
            peer,
            proxied: client_slot.map(|slot| (slot, trusted.clone())),
        };
        let counters = counters.clone();
        let stop = stop_rx.clone();
        match tls.clone() {
            None => {
                tokio::spawn(serve_connection(io, service, limits, counters, peer, stop));
            }
            #[cfg(feature = "tls")]
            Some(acceptor) => {
                tokio::spawn(async move {
                    // The handshake counts as reading the request head: a
                    // client that never starts TLS is closed as late.
                    match tokio::time::timeout(limits.header_read_timeout, acceptor.accept(io))
                        .await
                    {
                        Ok(Ok(io)) => {
                            serve_connection(io, service, limits, counters, peer, stop).await
                        }
                        Ok(Err(err)) => {
                            counters.tls_failures.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%peer, %err, "TLS handshake failed: connection closed");
                        }
                        Err(_) => {
                            counters.header_timeouts.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%peer, "no TLS handshake in time: connection closed");
                        }
                    }
                });
            }
            #[cfg(not(feature = "tls"))]
            Some(never) => match never {},
        }
    }
    drop(listener);
    close.await;
    drop(stop_rx);
    let _ = stop_tx.send(());
    if tokio::time::timeout(SHUTDOWN_GRACE, stop_tx.closed())
        .await
        .is_err()
    {
        tracing::debug!("connections still open after the shutdown grace period");
    }
    Ok(())
}

/// Runs hyper's HTTP/1.1 connection on `io` (plain or TLS) until it ends or
/// the server stops.
async fn serve_connection<I, S>(
    io: I,
    service: S,
    limits: HttpLimits,
    counters: Arc<HttpCounters>,
    peer: SocketAddr,
    mut stop: tokio::sync::watch::Receiver<()>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            axum::http::Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let res = tokio::select! {
        res = conn.as_mut() => res,
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    drop(stop);
    if let Err(err) = res {
        if err.is_timeout() {
            counters.header_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "no complete request head in time: connection closed");
        } else {
            tracing::debug!(%peer, %err, "connection ended with an error");
        }
    }
}

/// Answers a connection over a limit with a complete HTTP response and
/// closes it (in its own task, bounded, so accepting goes on).
fn refuse(mut stream: TcpStream, peer: SocketAddr, refusal: Refusal, counters: &HttpCounters) {
    log_refusal(counters, peer, refusal);
    tokio::spawn(async move {
        let write = async {
            stream.write_all(refusal.response()).await?;
            stream.shutdown().await
        };
        let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, write).await;
    });
}

/// Logs a refusal by a connection limit, at most once per interval with the
/// count since the last line.
fn log_refusal(counters: &HttpCounters, peer: SocketAddr, refusal: Refusal) {
    if let Some(count) = counters.refusal_log.hit() {
        tracing::warn!(
            %peer,
            limit = ?refusal,
            count,
            "connection refused: over the connection limit ({count} refused since the last line)"
        );
    }
}

/// A TCP stream whose writes fail once one stayed blocked for `timeout`
/// (and every write after that).
struct DeadlineIo {
    inner: TcpStream,
    timeout: Duration,
    /// Armed while a write is blocked.
    blocked: Option<Pin<Box<Sleep>>>,
    failed: bool,
    /// The reader waiting for data, woken when the deadline fails the
    /// connection: engine.io's WebSocket writer only logs write errors, its
    /// reader is what ends the session, so the failure must reach it.
    read_waker: Option<std::task::Waker>,
    /// This connection's place in the counters.
    slot: Slot,
    /// Its client's place, when it comes from a trusted proxy.
    _client: Option<ProxiedClient>,
    peer: SocketAddr,
}

impl DeadlineIo {
    fn new(
        inner: TcpStream,
        timeout: Duration,
        slot: Slot,
        client: Option<ProxiedClient>,
        peer: SocketAddr,
    ) -> Self {
        Self {
            inner,
            timeout,
            blocked: None,
            failed: false,
            read_waker: None,
            slot,
            _client: client,
            peer,
        }
    }

    fn timed_out(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!(
                "a write was blocked for {} ms: the client does not read (slow consumer)",
                self.timeout.as_millis()
            ),
        )
    }

    /// `res` of a write-side poll, with the deadline applied.
    fn watch<T>(&mut self, cx: &mut Context<'_>, res: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if self.failed {
            return Poll::Ready(Err(self.timed_out()));
        }
        match res {
            Poll::Ready(res) => {
                self.blocked = None;
                Poll::Ready(res)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let sleep = self
                    .blocked
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(sleep.as_mut().poll(cx));
                self.failed = true;
                if let Some(reader) = self.read_waker.take() {
                    reader.wake();
                }
                let counters = &self.slot.counters;
                counters.slow_consumers.fetch_add(1, Ordering::Relaxed);
                if let Some(count) = counters.slow_log.hit() {
                    tracing::warn!(
                        peer = %self.peer,
                        count,
                        "slow consumer disconnected: a write was blocked for {} ms ({count} since the last line)",
                        timeout.as_millis()
                    );
                }
                Poll::Ready(Err(self.timed_out()))
            }
        }
    }
}

impl AsyncRead for DeadlineIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(Err(this.timed_out()));
        }
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        if res.is_pending() {
            this.read_waker = Some(cx.waker().clone());
        }
        res
    }
}

impl AsyncWrite for DeadlineIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, res)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, res)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, res)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The per-request service of one connection: records the client's
/// address (looked up behind a trusted proxy, where its per-IP slot is
/// taken too), bounds the body's read time, and calls the router.
#[derive(Clone)]
struct RequestService {
    router: Router,
    limits: HttpLimits,
    counters: Arc<HttpCounters>,
    peer: SocketAddr,
    /// The connection's client slot and the proxies, for a connection
    /// from a trusted proxy.
    proxied: Option<(ProxiedClient, Arc<TrustedProxies>)>,
}

impl RequestService {
    /// The client's address, after taking its per-IP slot when it is
    /// behind a trusted proxy; the refusal's response when that IP has
    /// its fill of connections.
    fn client(
        &self,
        headers: &axum::http::HeaderMap,
    ) -> Result<SocketAddr, Box<axum::response::Response>> {
        let Some((slot, trusted)) = &self.proxied else {
            return Ok(self.peer);
        };
        let ip = trusted.client(self.peer.ip(), headers);
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_none_or(|held| held.ip != ip) {
            // Give back the previous client's place first: a pooled proxy
            // connection now serves another client.
            *slot = None;
            match self.counters.admit_ip(ip, &self.limits) {
                Ok(taken) => *slot = Some(taken),
                Err(refusal) => {
                    log_refusal(&self.counters, SocketAddr::new(ip, 0), refusal);
                    return Err(Box::new(refusal.http_response()));
                }
            }
        }
        // Behind a proxy the client's port is not known.
        Ok(SocketAddr::new(ip, 0))
    }
}

impl tower::Service<axum::http::Request<Incoming>> for RequestService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::http::Request<Incoming>) -> Self::Future {
        let client = match self.client(req.headers()) {
            Ok(client) => client,
            Err(refused) => return Box::pin(std::future::ready(Ok(*refused))),
        };
        let (counters, timeout) = (self.counters.clone(), self.limits.body_read_timeout);
        let mut req = req
            .map(|body| axum::body::Body::new(TimeoutBody::new(body, timeout, counters, client)));
        req.extensions_mut().insert(ConnectInfo(client));
        Box::pin(self.router.clone().oneshot(req))
    }
}

/// A request body that fails once it has not arrived whole within the
/// body-read timeout, counted from its first read that had to wait (a body
/// that is already buffered never arms a timer). The failure reaches the
/// handler reading it, and hyper closes a connection whose request body
/// was not read to its end.
struct TimeoutBody<B> {
    inner: B,
    timeout: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    counters: Arc<HttpCounters>,
    peer: SocketAddr,
}

impl<B> TimeoutBody<B> {
    fn new(inner: B, timeout: Duration, counters: Arc<HttpCounters>, peer: SocketAddr) -> Self {
        Self {
            inner,
            timeout,
            deadline: None,
            counters,
            peer,
        }
    }
}

impl<B> hyper::body::Body for TimeoutBody<B>
where
    B: hyper::body::Body + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = B::Data;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let timeout = this.timeout;
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(deadline.as_mut().poll(cx));
                this.counters.body_timeouts.fetch_add(1, Ordering::Relaxed);
                if let Some(count) = this.counters.body_log.hit() {
                    tracing::warn!(
                        peer = %this.peer,
                        count,
                        "request body not complete within {} ms: connection closed ({count} since the last line)",
                        timeout.as_millis()
                    );
                }
                Poll::Ready(Some(Err(format!(
                    "the request body did not arrive whole within {} ms",
                    timeout.as_millis()
                )
                .into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
