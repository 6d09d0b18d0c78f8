//! Listeners, connections and the request pipeline.
//!
//! Per connection: accept → (TLS: read the ClientHello, pick the server config for its
//! SNI from the current snapshot, finish the handshake, all within one deadline) →
//! compute the peer certificate facts once → serve HTTP/1.1 or h2 with a watchdog that
//! drops clients that are slow to send headers and closes idle keep-alive connections.
//!
//! Per request ([`handle`]): canonical path ([`crate::path`]) → the control plane
//! ([`crate::control`]: Gateway API, dashboard, `/hello`) when this listener serves it → route → authenticate (+ post-auth checks) →
//! forward upstream. See `docs/architecture.md` for the phase chart.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

use crate::body::{BodyFault, GwBody, ReqBody};
use crate::control;
use crate::errors::{self, ProxyError, ProxyFailure, Refusal};
use crate::gateway::Gateway;
use crate::proxy;
use crate::router;
use crate::tls::PeerCert;

pub use crate::conn::{ConnInfo, Role};

/// Tracks live connections so shutdown can wait for them to drain.
#[derive(Debug, Default)]
pub struct Drain {
    live: AtomicUsize,
    idle: Notify,
}

impl Drain {
    fn enter(self: &Arc<Self>) -> DrainGuard {
        self.live.fetch_add(1, Ordering::AcqRel);
        DrainGuard(self.clone())
    }

    /// Number of open connections.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Waits until no connection is open.
    pub async fn wait(&self) {
        loop {
            let notified = self.idle.notified();
            if self.live() == 0 {
                return;
            }
            notified.await;
        }
    }
}

struct DrainGuard(Arc<Drain>);

impl Drop for DrainGuard {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Accepts connections on `listener` until `shutdown` turns true.
pub async fn serve(
    gw: Arc<Gateway>,
    listener: TcpListener,
    role: Role,
    mut shutdown: watch::Receiver<bool>,
    drain: Arc<Drain>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let (stream, remote) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let gw = gw.clone();
        let shutdown = shutdown.clone();
        let guard = drain.enter();
        tokio::spawn(async move {
            let _guard = guard;
            serve_conn(gw, stream, remote, role, shutdown).await;
        });
    }
}

async fn serve_conn(
    gw: Arc<Gateway>,
    stream: TcpStream,
    remote: SocketAddr,
    role: Role,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let opts = &gw.config.http_server_options;
    if !opts.use_ssl {
        let info = Arc::new(ConnInfo {
            remote,
            role,
            tls: false,
            sni: None,
            peer: None,
            cert_lookup: Default::default(),
        });
        serve_http(gw, stream, info, false, shutdown).await;
        return;
    }
    let deadline = tokio::time::Instant::now() + opts.read_header_timeout;
    let acceptor =
        tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let mut start = match tokio::time::timeout_at(deadline, acceptor).await {
        Ok(Ok(s)) => s,
        // Not TLS, or too slow: close without ceremony.
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "TLS ClientHello rejected");
            return;
        }
        Err(_) => return,
    };
    let snapshot = gw.snapshot();
    let Some(tls) = snapshot.tls.clone() else {
        return;
    };
    let sni = start.client_hello().server_name().map(str::to_owned);
    if !tls.has_certificate_for(sni.as_deref()) {
        let _ = start
            .io
            .write_all(&crate::tls::UNRECOGNIZED_NAME_ALERT)
            .await;
        return;
    }
    let decision = match role {
        Role::Gateway => snapshot.client_auth.decide(sni.as_deref()),
        Role::Control => snapshot.client_auth.control(),
    };
    let config = tls.server_config(&decision.auth);
    drop(snapshot);
    let tls_stream = match tokio::time::timeout_at(deadline, start.into_stream(config)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%remote, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    let h2 = tls_stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let peer = tls_stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(PeerCert::from_chain)
        .map(Arc::new);
    let info = Arc::new(ConnInfo {
        remote,
        role,
        tls: true,
        sni,
        peer,
        cert_lookup: Default::default(),
    });
    serve_http(gw, tls_stream, info, h2, shutdown).await;
}

/// Connection phases for the watchdog.
const IDLE: u8 = 0;
const HEADERS: u8 = 1;
const BUSY: u8 = 2;

/// What the watchdog needs to know about a connection: the phase and when it began,
/// packed into one atomic so the pair is always read consistently (the phase in the
/// top two bits, milliseconds since `epoch` below), and the requests in flight.
#[derive(Debug)]
struct Activity {
    state: AtomicU64,
    in_flight: AtomicUsize,
    /// When a write started to block (milliseconds since `epoch` plus one; 0: none).
    write_blocked: AtomicU64,
    epoch: Instant,
}

const PHASE_SHIFT: u32 = 62;
const SINCE_MASK: u64 = (1 << PHASE_SHIFT) - 1;

impl Activity {
    fn new() -> Self {
        Self {
            state: AtomicU64::new(u64::from(HEADERS) << PHASE_SHIFT),
            in_flight: AtomicUsize::new(0),
            write_blocked: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        (self.epoch.elapsed().as_millis() as u64) & SINCE_MASK
    }

    fn set(&self, phase: u8) {
        self.state.store(
            (u64::from(phase) << PHASE_SHIFT) | self.now_ms(),
            Ordering::Relaxed,
        );
    }

    /// (phase, since) as one consistent pair.
    fn load(&self) -> (u8, u64) {
        let s = self.state.load(Ordering::Relaxed);
        ((s >> PHASE_SHIFT) as u8, s & SINCE_MASK)
    }

    fn phase(&self) -> u8 {
        self.load().0
    }
}

/// IO wrapper that notices the first bytes of a new request on an idle connection
/// and keeps a connection that is still writing (a streamed response) from counting
/// as idle. On h2 connections (frames such as PINGs arrive between requests) reads
/// only keep the connection from counting as idle.
struct WatchedIo<T> {
    inner: T,
    activity: Arc<Activity>,
    h2: bool,
}

impl<T: AsyncRead + Unpin> AsyncRead for WatchedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before && self.activity.phase() == IDLE {
            if self.h2 {
                self.activity.set(IDLE);
            } else {
                self.activity.set(HEADERS);
            }
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WatchedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.wrote(&r);
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.blocked(r.is_pending());
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.wrote(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<T> WatchedIo<T> {
    /// A response still streaming keeps an idle connection alive.
    fn wrote(&self, r: &Poll<std::io::Result<usize>>) {
        if matches!(r, Poll::Ready(Ok(n)) if *n > 0) && self.activity.phase() == IDLE {
            self.activity.set(IDLE);
        }
        self.blocked(r.is_pending());
    }

    /// Notes when writes start or stop blocking (a client that does not read).
    fn blocked(&self, pending: bool) {
        let a = &self.activity;
        let was = a.write_blocked.load(Ordering::Relaxed);
        if pending && was == 0 {
            a.write_blocked.store(a.now_ms() + 1, Ordering::Relaxed);
        } else if !pending && was != 0 {
            a.write_blocked.store(0, Ordering::Relaxed);
        }
    }
}

/// Connection limits the watchdog enforces.
#[derive(Clone, Copy)]
struct Limits {
    header: Duration,
    idle: Duration,
    write_stall: Duration,
}

/// Resolves when the connection has been slow to send headers, idle too long, or has
/// had a response write blocked (the client not reading) for too long.
async fn watchdog(activity: Arc<Activity>, limits: Limits) {
    loop {
        let (phase, since_ms) = activity.load();
        let blocked = activity.write_blocked.load(Ordering::Relaxed);
        let mut deadline = match phase {
            HEADERS => Some(since_ms + limits.header.as_millis() as u64),
            IDLE if activity.in_flight.load(Ordering::Relaxed) == 0 => {
                Some(since_ms + limits.idle.as_millis() as u64)
            }
            _ => None,
        };
        if blocked != 0 {
            let d = blocked - 1 + limits.write_stall.as_millis() as u64;
            deadline = Some(deadline.map_or(d, |x| x.min(d)));
        }
        let Some(deadline) = deadline.map(Duration::from_millis) else {
            // Busy: look again in time to catch a write that starts to block.
            tokio::time::sleep(limits.header.min(limits.write_stall)).await;
            continue;
        };
        let elapsed = activity.epoch.elapsed();
        if elapsed >= deadline {
            // Re-check: the state may have changed since it was read.
            if activity.load() == (phase, since_ms)
                && activity.write_blocked.load(Ordering::Relaxed) == blocked
            {
                return;
            }
            continue;
        }
        // Never sleep past one write-stall period: a write that starts to block while
        // the watchdog waits for a later (header or idle) deadline is caught in time.
        tokio::time::sleep((deadline - elapsed).min(limits.write_stall)).await;
    }
}

async fn serve_http<T>(
    gw: Arc<Gateway>,
    io: T,
    info: Arc<ConnInfo>,
    h2: bool,
    mut shutdown: watch::Receiver<bool>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let opts = &gw.config.http_server_options;
    let limits = Limits {
        header: opts.read_header_timeout,
        idle: opts.idle_timeout,
        write_stall: opts.write_timeout,
    };
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(WatchedIo {
        inner: io,
        activity: activity.clone(),
        h2,
    });
    let remote = info.remote;
    let info_tls = info.tls;
    let svc_activity = activity.clone();
    let svc_gw = gw.clone();
    let svc = service_fn(move |req: Request<Incoming>| {
        let gw = svc_gw.clone();
        let info = info.clone();
        let activity = svc_activity.clone();
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.set(BUSY);
        // Boxed: hyper keeps the slot of a connection's request future for the
        // connection's lifetime, so an unboxed (large) future would be memory every idle
        // connection holds; boxed, it is allocated per request and freed after it.
        Box::pin(async move {
            let resp = handle(&gw, &info, req).await;
            if activity.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
                activity.set(IDLE);
            }
            Ok::<_, Infallible>(resp)
        })
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // h2 only when negotiated by ALPN, or as h2c prior knowledge when enabled.
    if !(h2 || (!info_tls && opts.enable_http2)) {
        builder = builder.http1_only();
    }
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256);
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let dog = watchdog(activity, limits);
    tokio::pin!(dog);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return;
        }
        _ = &mut dog => {
            tracing::debug!(%remote, "connection closed by the watchdog");
            return;
        }
        _ = shutdown.wait_for(|s| *s) => {
            conn.as_mut().graceful_shutdown();
        }
    }
    // Draining: in-flight requests finish within the grace period, and the watchdog
    // still closes a connection that makes no progress.
    tokio::select! {
        _ = tokio::time::timeout(gw.config.graceful_shutdown_timeout, conn) => {}
        _ = dog => tracing::debug!(%remote, "draining connection closed by the watchdog"),
    }
}

/// The request pipeline for one request.
pub async fn handle(
    gw: &Arc<Gateway>,
    conn: &ConnInfo,
    mut req: Request<Incoming>,
) -> Response<GwBody> {
    let cfg = &gw.config;
    if let Err(e) = canonical_path(&mut req) {
        let ct = req.headers().get(http::header::CONTENT_TYPE);
        return errors::proxy_error_response(&e, ct, cfg.hide_generator_header);
    }
    let path = req.uri().path();
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .map(router::host_without_port)
        .unwrap_or("")
        .to_owned();

    if control::answers(cfg, conn, &host, path) {
        return control::handle(gw.clone(), conn, req).await;
    }
    if conn.role == Role::Control {
        return errors::not_found();
    }

    let snapshot = gw.snapshot();
    // The Host must not select another client-certificate policy than the SNI the
    // handshake was decided on (a client cannot reach a certificate-protected host
    // through a connection opened for another one). No SNI: the APIs without a domain.
    if conn.tls {
        let table = &snapshot.client_auth;
        if table.decide(conn.sni.as_deref()).policy != table.decide(Some(&host)).policy {
            let e = ProxyError::from(Refusal::Misdirected);
            let ct = req.headers().get(http::header::CONTENT_TYPE);
            return errors::proxy_error_response(&e, ct, cfg.hide_generator_header);
        }
    }
    let Some(m) = snapshot.router.find(&host, path) else {
        // The Dashboard API shares the port with the APIs: served where no API matches.
        if control::answers_unrouted(cfg, conn, &host, path) {
            return control::handle(gw.clone(), conn, req).await;
        }
        return errors::not_found();
    };
    // The snapshot stays loaded for the whole request: borrow from it, no copies.
    let api = &snapshot.apis[m.api];
    let prefix = m.prefix;

    let (mut parts, body) = req.into_parts();
    let content_type = parts.headers.get(http::header::CONTENT_TYPE).cloned();
    let fail = |e: ProxyError| {
        errors::proxy_error_response(&e, content_type.as_ref(), cfg.hide_generator_header)
    };

    // Request size limit (Tyk's RequestSizeLimit runs before authentication).
    let limit = cfg.http_server_options.max_request_body_size;
    let mut body = ReqBody::new(body, cfg.http_server_options.body_limits);
    if limit > 0 {
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit) {
            return fail(ProxyFailure::Downstream(BodyFault::TooLarge).into());
        }
        body = body.max_len(limit);
    }
    let body = GwBody::Request(body);
    let upstream_path = router::upstream_path(api.spec(), prefix, parts.uri.path());
    if let Err(e) = crate::path::check_stripped(upstream_path) {
        return fail(ProxyError::from(Refusal::BadPath(e.to_string())));
    }
    let ctx = crate::pipeline::RequestCtx {
        cfg,
        store: &gw.store,
        certs: &gw.certs,
        caches: &gw.caches,
        policies: &snapshot.policy_set,
        cert_lookup: Some(&conn.cert_lookup),
        tls: conn.tls,
        peer: conn.peer.as_deref(),
    };
    let authorized = match crate::pipeline::authenticate(&ctx, api, &parts, upstream_path).await {
        Ok(a) => a,
        Err(e) => return fail(e),
    };

    // StripAuth: the credential does not reach the upstream.
    let spec = api.spec();
    let query = if spec.strips_auth() {
        crate::pipeline::strip::apply(&spec.auth_strip, &mut parts.headers, parts.uri.query())
    } else {
        parts.uri.query().map(std::borrow::Cow::Borrowed)
    };

    // Forward.
    let uri = match api.target.uri_for(upstream_path, query.as_deref()) {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    let original_host = parts.headers.get(http::header::HOST).cloned().or_else(|| {
        parts
            .uri
            .authority()
            .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
    });
    let mut up = Request::new(body);
    *up.method_mut() = parts.method;
    *up.uri_mut() = uri;
    *up.headers_mut() = parts.headers;
    proxy::forward_headers(
        up.headers_mut(),
        &api.target,
        conn.remote.ip(),
        conn.tls,
        original_host,
        &cfg.strip_client_identity_headers,
    );
    match gw.upstream.send(up).await {
        Ok(mut resp) => {
            if let Some(h) = &authorized.rate_headers {
                errors::set_rate_headers(resp.headers_mut(), h);
            }
            resp
        }
        Err(e) => fail(e),
    }
}

/// Replaces the request path with its canonical form ([`crate::path::normalise`]),
/// keeping the query as sent: every later phase (Gateway API and dashboard dispatch,
/// routing, versions, access rights, the upstream URI) reads this one path, and the
/// raw path is never forwarded. Dot segments are served at the canonical path, not
/// redirected as Tyk does (a POST body survives, nothing to follow). A path the
/// normaliser refuses is a 400 with its reason.
fn canonical_path<B>(req: &mut Request<B>) -> Result<(), ProxyError> {
    let raw = req.uri().path();
    let mut pq = match crate::path::normalise(raw) {
        Ok(p) if p == raw => return Ok(()),
        Ok(p) => p.into_owned(),
        Err(e) => return Err(ProxyError::from(Refusal::BadPath(e.to_string()))),
    };
    if let Some(q) = req.uri().query() {
        pq.push('?');
        pq.push_str(q);
    }
    let malformed = || ProxyError::from(Refusal::MalformedPath);
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.path_and_query = Some(http::uri::PathAndQuery::try_from(pq).map_err(|_| malformed())?);
    *req.uri_mut() = http::Uri::from_parts(parts).map_err(|_| malformed())?;
    Ok(())
}

/// Binds a listener (used by `main` and the tests).
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let addr: SocketAddr = tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("cannot resolve {addr}")))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Waits for `fut` but gives up after `limit`.
pub async fn within<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    tokio::time::timeout(limit, fut).await.ok()
}
