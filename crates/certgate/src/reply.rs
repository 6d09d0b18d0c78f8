//! Control-plane answers in Tyk's shapes, shared by the Gateway API and the dashboard:
//! Go-encoded JSON bodies, `{"status":"error","message":…}`, `{"key":…,"status":"ok",…}`,
//! and request bodies read within a bound.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

use crate::gocompat::json::go_json;

/// Largest Gateway API request body (API definitions can be large OAS documents).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// A JSON response with Go's encoding.
pub(crate) fn json_response<T: Serialize + ?Sized>(status: StatusCode, v: &T) -> Response {
    let mut r = Response::new(Body::from(go_json(v)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Tyk's `{"status":"error","message":…}`.
pub(crate) fn error(status: StatusCode, message: impl AsRef<str>) -> Response {
    json_response(
        status,
        &json!({"status": "error", "message": message.as_ref()}),
    )
}

/// Tyk's `{"key":…,"status":"ok","action":…}`.
pub(crate) fn modified(key: &str, action: &str) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"key": key, "status": "ok", "action": action}),
    )
}

/// An error answer of a handler.
#[derive(Debug)]
pub(crate) struct ApiError(StatusCode, String);

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self(status, message.into())
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store operation failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("storage unavailable: {e}"),
        )
    }
}

/// Reads a request body up to [`MAX_BODY`]; larger bodies are 413, a client's body
/// fault ([`crate::body::BodyFault`]: not sent in time, malformed, incomplete) the
/// client's error its side and kind choose ([`crate::errors::ProxyFailure`]).
pub(crate) async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY).await.map_err(|e| {
        if let Some(fault) = crate::body::BodyFault::find(&e) {
            let f = crate::errors::ProxyFailure::Downstream(fault);
            return ApiError::new(f.status(), f.message());
        }
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Request body is larger than {MAX_BODY} bytes"),
        )
    })
}
