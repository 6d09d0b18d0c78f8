//! The one body type used on both sides of the proxy, so requests and responses stream
//! through without boxing on the hot path.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Limited;
use hyper::body::Incoming;

/// Boxed error type of [`GwBody`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request or response body.
#[derive(Debug)]
pub enum GwBody {
    /// A complete, in-memory body (or nothing).
    Full(Option<Bytes>),
    /// A body streamed from a peer.
    Incoming(Incoming),
    /// A streamed body with a size cap (413 handling sits with the caller).
    Limited(Limited<Incoming>),
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
            GwBody::Limited(b) => Pin::new(b).poll_frame(cx),
            GwBody::Axum(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GwBody::Full(b) => b.is_none(),
            GwBody::Incoming(b) => b.is_end_stream(),
            GwBody::Limited(b) => b.is_end_stream(),
            GwBody::Axum(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GwBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            GwBody::Incoming(b) => b.size_hint(),
            GwBody::Limited(b) => b.size_hint(),
            GwBody::Axum(b) => b.size_hint(),
        }
    }
}
