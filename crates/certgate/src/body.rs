//! The one body type used on both sides of the proxy, so requests and responses stream
//! through without boxing on the hot path, and [`ReqBody`], a client's request body read
//! under deadlines so a client that stalls its body cannot hold a connection.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Limited;
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

/// Boxed error type of [`GwBody`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request or response body.
#[derive(Debug)]
pub enum GwBody {
    /// A complete, in-memory body (or nothing).
    Full(Option<Bytes>),
    /// A body streamed from a peer.
    Incoming(Incoming),
    /// A client's request body, read under [`BodyLimits`].
    Request(ReqBody),
    /// A client's request body with a size cap (413 handling sits with the caller).
    Limited(Limited<ReqBody>),
    /// A body produced by the Gateway API router.
    Axum(axum::body::Body),
}

impl GwBody {
    /// An empty body.
    pub fn empty() -> Self {
        GwBody::Full(None)
    }

    /// A complete body.
    pub fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        if b.is_empty() {
            GwBody::Full(None)
        } else {
            GwBody::Full(Some(b))
        }
    }
}

impl Body for GwBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            GwBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            GwBody::Incoming(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            GwBody::Request(b) => Pin::new(b).poll_frame(cx),
            GwBody::Limited(b) => Pin::new(b).poll_frame(cx),
            GwBody::Axum(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GwBody::Full(b) => b.is_none(),
            GwBody::Incoming(b) => b.is_end_stream(),
            GwBody::Request(b) => b.is_end_stream(),
            GwBody::Limited(b) => b.is_end_stream(),
            GwBody::Axum(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GwBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            GwBody::Incoming(b) => b.size_hint(),
            GwBody::Request(b) => b.size_hint(),
            GwBody::Limited(b) => b.size_hint(),
            GwBody::Axum(b) => b.size_hint(),
        }
    }
}

/// How long a client may take to send a request body (`http_server_options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// The whole body must have arrived this long after the request's headers (Tyk's
    /// `read_timeout`, Go's `http.Server.ReadTimeout`).
    pub total: Duration,
    /// Longest wait for the next bytes while the gateway is asking for them (nginx's
    /// `client_body_timeout`; `certgate_body_read_timeout`).
    pub between_reads: Duration,
    /// Slowest average rate, in bytes per second of the time spent waiting on the
    /// client, once `between_reads` of waiting has passed (0 = no floor;
    /// `certgate_min_body_rate`, as Apache's `RequestReadTimeout body=…,MinRate=…`).
    pub min_rate: u64,
}

/// The client did not send its request body in time (answered 408, connection closed).
#[derive(Debug, thiserror::Error)]
#[error("the client did not send the request body in time")]
pub struct BodyTimeout;

/// True if `e` (or an error it wraps) is a [`BodyTimeout`].
pub fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimeout>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// A client's request body read under [`BodyLimits`]. Only time the gateway spends
/// waiting on the client counts against the between-reads and rate limits (not time the
/// upstream takes to accept what was read); the total limit counts from the headers.
/// The timer is allocated only when the gateway first has to wait.
#[derive(Debug)]
pub struct ReqBody<B = Incoming> {
    inner: B,
    limits: BodyLimits,
    start: Instant,
    /// When the current wait on the client began (None: not waiting).
    waiting_since: Option<Instant>,
    /// Time spent waiting on the client in earlier waits.
    waited: Duration,
    bytes: u64,
    timer: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
}

impl<B> ReqBody<B> {
    /// Wraps a body whose headers have just been read.
    pub fn new(inner: B, limits: BodyLimits) -> Self {
        Self {
            inner,
            limits,
            start: Instant::now(),
            waiting_since: None,
            waited: Duration::ZERO,
            bytes: 0,
            timer: None,
            timed_out: false,
        }
    }

    /// When the current wait (begun at `since`) runs out.
    fn deadline(&self, since: Instant) -> Instant {
        let l = &self.limits;
        let mut d = (self.start + l.total).min(since + l.between_reads);
        // Allowed waiting so far: the grace plus one second per `min_rate` bytes.
        if let Some(secs) = self.bytes.checked_div(l.min_rate) {
            // Capped: never beyond the total limit, and never an overflowing instant.
            let allowed = (l.between_reads + Duration::from_secs(secs.min(86_400))).min(l.total);
            d = d.min(since + allowed.saturating_sub(self.waited));
        }
        d
    }
}

impl<B> Body for ReqBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.timed_out {
            return Poll::Ready(Some(Err(BodyTimeout.into())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(since) = this.waiting_since.take() {
                    this.waited += since.elapsed();
                }
                if let Some(Ok(f)) = &frame {
                    if let Some(d) = f.data_ref() {
                        this.bytes += d.len() as u64;
                    }
                }
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let now = Instant::now();
                let since = *this.waiting_since.get_or_insert(now);
                let deadline = this.deadline(since);
                let timer = match &mut this.timer {
                    Some(t) => {
                        if t.deadline() != deadline {
                            t.as_mut().reset(deadline);
                        }
                        t
                    }
                    None => this
                        .timer
                        .insert(Box::pin(tokio::time::sleep_until(deadline))),
                };
                if now >= deadline || timer.as_mut().poll(cx).is_ready() {
                    this.timed_out = true;
                    return Poll::Ready(Some(Err(BodyTimeout.into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::BodyExt;
    use tokio::sync::mpsc;

    use super::*;

    /// A body fed by the test.
    struct Chan(mpsc::UnboundedReceiver<Bytes>);

    impl Body for Chan {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            self.0.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b))))
        }
    }

    fn body(limits: BodyLimits) -> (mpsc::UnboundedSender<Bytes>, ReqBody<Chan>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx, ReqBody::new(Chan(rx), limits))
    }

    fn timed_out(r: Option<Result<Frame<Bytes>, BoxError>>) -> bool {
        matches!(r, Some(Err(e)) if is_body_timeout(e.as_ref()))
    }

    const SECS: fn(u64) -> Duration = Duration::from_secs;

    #[tokio::test(start_paused = true)]
    async fn only_waiting_on_the_client_counts_between_reads() {
        let (tx, mut b) = body(BodyLimits {
            total: SECS(100),
            between_reads: SECS(1),
            min_rate: 0,
        });
        tx.send(Bytes::from_static(b"a")).unwrap();
        assert!(b.frame().await.unwrap().is_ok());
        // The gateway does not ask for 10 s (the upstream is slow to take the body).
        tokio::time::advance(SECS(10)).await;
        tx.send(Bytes::from_static(b"b")).unwrap();
        assert!(b.frame().await.unwrap().is_ok());
        // Now it asks, and the client sends nothing.
        let start = Instant::now();
        assert!(timed_out(b.frame().await));
        assert_eq!(start.elapsed(), SECS(1));
        // It stays failed.
        tx.send(Bytes::from_static(b"c")).unwrap();
        assert!(timed_out(b.frame().await));
    }

    #[tokio::test(start_paused = true)]
    async fn the_total_and_the_rate_bound_a_trickle() {
        for (limits, cut_after) in [
            // 1 byte/s never waits 10 s between reads, but the body is due in 5 s.
            (
                BodyLimits {
                    total: SECS(5),
                    between_reads: SECS(10),
                    min_rate: 0,
                },
                5,
            ),
            // 1 byte/s is below 100 bytes/s: cut once 2 s of waiting are used up.
            (
                BodyLimits {
                    total: SECS(100),
                    between_reads: SECS(2),
                    min_rate: 100,
                },
                2,
            ),
        ] {
            let (tx, mut b) = body(limits);
            let feeder = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(900)).await;
                    if tx.send(Bytes::from_static(b"x")).is_err() {
                        return;
                    }
                }
            });
            let start = Instant::now();
            loop {
                let f = b.frame().await;
                if timed_out(f) {
                    break;
                }
            }
            assert_eq!(start.elapsed(), SECS(cut_after));
            feeder.abort();
        }
    }
}
