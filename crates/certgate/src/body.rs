//! The one body type used on both sides of the proxy, so requests and responses stream
//! through without boxing on the hot path, and [`ReqBody`], a client's request body read
//! under deadlines so a client that stalls its body cannot hold a connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
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
    /// A client's request body, read under [`BodyLimits`] (and a size cap, if any).
    Request(ReqBody),
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

    /// Where a client's request body records its fault (None for other bodies).
    pub fn fault_slot(&self) -> Option<&FaultSlot> {
        match self {
            GwBody::Request(b) => Some(b.fault_slot()),
            _ => None,
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
            GwBody::Axum(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GwBody::Full(b) => b.is_none(),
            GwBody::Incoming(b) => b.is_end_stream(),
            GwBody::Request(b) => b.is_end_stream(),
            GwBody::Axum(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GwBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            GwBody::Incoming(b) => b.size_hint(),
            GwBody::Request(b) => b.size_hint(),
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

/// Why a client's request body could not be read: always the client's side
/// ([`crate::errors::Side::Downstream`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BodyFault {
    /// Not sent in time ([`BodyLimits`]): 408, connection closed.
    Timeout = 1,
    /// Over `max_request_body_size`: 413.
    TooLarge = 2,
    /// Invalid framing (a bad chunk size or trailer): 400.
    Malformed = 3,
    /// Ended or reset before it was complete: 400.
    Incomplete = 4,
}

impl BodyFault {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Timeout,
            2 => Self::TooLarge,
            3 => Self::Malformed,
            4 => Self::Incomplete,
            _ => return None,
        })
    }

    /// Classifies an error of the peer's body stream: invalid input or data anywhere in
    /// its chain (hyper's chunked decoder) is malformed, anything else (early EOF, a
    /// reset stream, a broken connection) incomplete.
    fn of_peer_error(e: &(dyn std::error::Error + 'static)) -> Self {
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if matches!(
                    io.kind(),
                    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
                ) {
                    return Self::Malformed;
                }
            }
            cur = err.source();
        }
        Self::Incomplete
    }

    /// The fault behind `e`, if `e` (or an error it wraps) came from a [`ReqBody`].
    pub fn find(e: &(dyn std::error::Error + 'static)) -> Option<Self> {
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(c) = err.downcast_ref::<ClientBodyError>() {
                return Some(c.fault);
            }
            cur = err.source();
        }
        None
    }
}

/// The error a [`ReqBody`] yields: its fault and the peer's error behind it, if any.
#[derive(Debug, thiserror::Error)]
#[error("client request body: {fault:?}")]
pub struct ClientBodyError {
    /// What went wrong.
    pub fault: BodyFault,
    #[source]
    source: Option<BoxError>,
}

/// Where a [`ReqBody`] records its fault, for whoever sent it on (the upstream client
/// does not always hand a body's error back: over h2 it only resets the stream).
#[derive(Debug, Clone, Default)]
pub struct FaultSlot(Arc<AtomicU8>);

impl FaultSlot {
    fn set(&self, fault: BodyFault) {
        // The first fault wins.
        let _ = self
            .0
            .compare_exchange(0, fault as u8, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The recorded fault, if the body failed.
    pub fn get(&self) -> Option<BodyFault> {
        BodyFault::from_u8(self.0.load(Ordering::Acquire))
    }
}

/// A client's request body read under [`BodyLimits`] and an optional size cap. Only time
/// the gateway spends waiting on the client counts against the between-reads and rate
/// limits (not time the upstream takes to accept what was read); the total limit counts
/// from the headers. The timer is allocated only when the gateway first has to wait.
/// Every error is a [`ClientBodyError`], also recorded in its [`FaultSlot`]; once failed,
/// the body keeps failing (it never ends cleanly after an error).
#[derive(Debug)]
pub struct ReqBody<B = Incoming> {
    inner: B,
    limits: BodyLimits,
    /// Most bytes accepted (`max_request_body_size`; None: no cap).
    max_len: Option<u64>,
    start: Instant,
    /// When the current wait on the client began (None: not waiting).
    waiting_since: Option<Instant>,
    /// Time spent waiting on the client in earlier waits.
    waited: Duration,
    bytes: u64,
    timer: Option<Pin<Box<Sleep>>>,
    failed: Option<BodyFault>,
    slot: FaultSlot,
}

impl<B> ReqBody<B> {
    /// Wraps a body whose headers have just been read.
    pub fn new(inner: B, limits: BodyLimits) -> Self {
        Self {
            inner,
            limits,
            max_len: None,
            start: Instant::now(),
            waiting_since: None,
            waited: Duration::ZERO,
            bytes: 0,
            timer: None,
            failed: None,
            slot: FaultSlot::default(),
        }
    }

    /// Refuses the body ([`BodyFault::TooLarge`]) once it goes over `max` bytes.
    pub fn max_len(mut self, max: u64) -> Self {
        self.max_len = Some(max);
        self
    }

    /// Where this body records its fault.
    pub fn fault_slot(&self) -> &FaultSlot {
        &self.slot
    }

    fn fail(&mut self, fault: BodyFault, source: Option<BoxError>) -> BoxError {
        self.failed = Some(fault);
        self.slot.set(fault);
        Box::new(ClientBodyError { fault, source })
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
        if let Some(fault) = this.failed {
            return Poll::Ready(Some(Err(Box::new(ClientBodyError {
                fault,
                source: None,
            }))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(since) = this.waiting_since.take() {
                    this.waited += since.elapsed();
                }
                match frame {
                    Some(Ok(f)) => {
                        if let Some(d) = f.data_ref() {
                            this.bytes += d.len() as u64;
                            if this.max_len.is_some_and(|max| this.bytes > max) {
                                return Poll::Ready(Some(
                                    Err(this.fail(BodyFault::TooLarge, None)),
                                ));
                            }
                        }
                        Poll::Ready(Some(Ok(f)))
                    }
                    Some(Err(e)) => {
                        let e: BoxError = e.into();
                        let fault = BodyFault::of_peer_error(e.as_ref());
                        Poll::Ready(Some(Err(this.fail(fault, Some(e)))))
                    }
                    None => Poll::Ready(None),
                }
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
                    return Poll::Ready(Some(Err(this.fail(BodyFault::Timeout, None))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed.is_none() && self.inner.is_end_stream()
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
        matches!(r, Some(Err(e)) if BodyFault::find(e.as_ref()) == Some(BodyFault::Timeout))
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

    /// A body that yields one chunk, then `err`.
    struct Failing(Option<Bytes>, Option<std::io::Error>);

    impl Body for Failing {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            if let Some(b) = self.0.take() {
                return Poll::Ready(Some(Ok(Frame::data(b))));
            }
            Poll::Ready(self.1.take().map(Err))
        }
    }

    #[tokio::test]
    async fn faults_are_typed_recorded_and_sticky() {
        use std::io::{Error, ErrorKind};
        let limits = BodyLimits {
            total: SECS(100),
            between_reads: SECS(100),
            min_rate: 0,
        };
        let chunk = || Some(Bytes::from_static(b"0123456789"));
        for (err, max, fault) in [
            (ErrorKind::InvalidInput, None, BodyFault::Malformed),
            (ErrorKind::UnexpectedEof, None, BodyFault::Incomplete),
            (ErrorKind::InvalidInput, Some(9), BodyFault::TooLarge),
        ] {
            let mut b = ReqBody::new(Failing(chunk(), Some(Error::new(err, "x"))), limits);
            if let Some(max) = max {
                b = b.max_len(max);
            }
            let slot = b.fault_slot().clone();
            if max.is_none() {
                assert!(b.frame().await.unwrap().is_ok());
                assert_eq!(slot.get(), None);
            }
            for _ in 0..2 {
                let e = b.frame().await.unwrap().unwrap_err();
                assert_eq!(BodyFault::find(e.as_ref()), Some(fault), "{err:?}");
            }
            assert_eq!(slot.get(), Some(fault));
            assert!(!b.is_end_stream());
        }
        // Exactly at the cap is fine.
        let mut b = ReqBody::new(Failing(chunk(), None), limits).max_len(10);
        assert!(b.frame().await.unwrap().is_ok());
        assert!(b.frame().await.is_none());
        assert_eq!(b.fault_slot().get(), None);
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
