//! The Gateway API (`/tyk/...`, `/hello`), served by axum.
//!
//! Tyk's shapes: errors are `{"status":"error","message":…}`, changes answer
//! `{"key":…,"status":"ok","action":…}`, every body is compact JSON plus `\n` with Go's
//! escaping ([`go_json`]). `X-Tyk-Authorization` is compared in constant time.
//! Malformed input is always a 4xx naming the problem — also where Tyk answers 500 —
//! and nothing is written unless the whole request is valid.

mod apis;
mod certs;
mod keys;
mod oas_patch;
mod policies;
mod query;

pub(crate) use query::Query;

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use serde::Serialize;
use serde_json::json;
use subtle::ConstantTimeEq;
use tower::ServiceExt;

use crate::body::{GwBody, ReqBody};
use crate::config::Config;
use crate::gateway::Gateway;
use crate::gocompat::json::go_json;

/// Largest Gateway API request body (API definitions can be large OAS documents).
pub const MAX_BODY: usize = 4 * 1024 * 1024;

/// True if `path` belongs to the Gateway API.
pub fn is_admin_path(cfg: &Config, path: &str) -> bool {
    path == "/tyk"
        || path.starts_with("/tyk/")
        || is_health_path(cfg, path)
        || crate::dashboard::is_dashboard_path(path)
}

/// True for the health endpoint (`/hello`), which is also served on the gateway
/// port when the Gateway API has its own port.
pub fn is_health_path(cfg: &Config, path: &str) -> bool {
    path.strip_prefix('/')
        .map(|p| p.strip_suffix('/').unwrap_or(p))
        .is_some_and(|p| p == cfg.health_check_endpoint_name)
}

/// The router is built once per process; the gateway reaches handlers as a request
/// extension, so the router holds no reference to it.
fn router() -> Router {
    static ROUTER: OnceLock<Router> = OnceLock::new();
    ROUTER
        .get_or_init(|| {
            Router::new()
                .route("/tyk/reload", get(reload))
                .route("/tyk/reload/group", get(reload_group))
                .merge(apis::routes())
                .merge(certs::routes())
                .merge(keys::routes())
                .merge(policies::routes())
                .fallback(not_found)
                .method_not_allowed_fallback(method_not_allowed)
        })
        .clone()
}

/// Serves one Gateway API request.
pub async fn handle(
    gw: Arc<Gateway>,
    conn: &crate::server::ConnInfo,
    mut req: http::Request<hyper::body::Incoming>,
) -> http::Response<GwBody> {
    let cfg = &gw.config;
    let path = req.uri().path().to_owned();
    let hello = is_health_path(cfg, &path);
    if hello {
        let resp = health(&gw, req.method()).await;
        return resp.map(GwBody::Axum);
    }
    // Gateway API mTLS (security.control_api_use_mutual_tls): the same validation as a
    // static allow list, answered in the Gateway API's error shape.
    if let Some(list) = &gw.snapshot().control_allow_list {
        let now = crate::auth::now_unix();
        let skew = cfg.security.client_cert_not_before_skew;
        if let Err(e) = list.check(conn.tls, conn.peer.as_deref(), now, skew) {
            return error(StatusCode::FORBIDDEN, e.message).map(GwBody::Axum);
        }
    }
    // The dashboard and the Dashboard API authorise with their own sign-in (or the secret).
    if crate::dashboard::is_dashboard_path(&path) || crate::dashboard::is_api_path(&path) {
        return crate::dashboard::handle(gw, conn, req).await;
    }
    if !authorised(cfg, req.headers().get("x-tyk-authorization")) {
        return error(
            StatusCode::FORBIDDEN,
            "Attempted administrative access with invalid or missing key!",
        )
        .map(GwBody::Axum);
    }
    // Tyk strips trailing slashes on the Gateway API.
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let pq = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = pq.parse() {
            *req.uri_mut() = uri;
        }
    }
    let limits = cfg.http_server_options.body_limits;
    dispatch(gw, req.map(|b| Body::new(ReqBody::new(b, limits))))
        .await
        .map(GwBody::Axum)
}

/// Runs an authorised Gateway API request through its handlers.
pub(crate) async fn dispatch(gw: Arc<Gateway>, mut req: Request) -> Response {
    req.extensions_mut().insert(gw);
    match router().oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

fn authorised(cfg: &Config, given: Option<&HeaderValue>) -> bool {
    given.is_some_and(|v| secret_matches(cfg, v.as_bytes()))
}

/// Whether `given` is the gateway secret, compared in constant time. Both sides are
/// hashed first so the time does not depend on the lengths either.
pub(crate) fn secret_matches(cfg: &Config, given: &[u8]) -> bool {
    let a = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, given);
    let b = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, cfg.secret.as_bytes());
    bool::from(a.as_ref().ct_eq(b.as_ref()))
}

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

/// The gateway of this request (inserted by [`handle`]).
pub(crate) type Gw = Extension<Arc<Gateway>>;

async fn not_found(req: Request) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("Not found: {}", req.uri().path()),
    )
}

async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "Method not supported")
}

#[derive(serde::Deserialize)]
struct ReloadQuery {
    block: Option<String>,
}

/// `/tyk/reload/group`: every node (this one included) reloads.
async fn reload_group(Extension(gw): Gw) -> Response {
    gw.announce(crate::cluster::GROUP_RELOAD, "").await;
    json_response(StatusCode::OK, &json!({"status": "ok", "message": ""}))
}

async fn reload(Extension(gw): Gw, Query(q): Query<ReloadQuery>) -> Response {
    let block = q.block.as_deref().is_some_and(|b| b == "true" || b == "1");
    if block {
        gw.reload().await;
    } else {
        tokio::spawn(async move {
            gw.reload().await;
        });
    }
    json_response(StatusCode::OK, &json!({"status": "ok", "message": ""}))
}

async fn health(gw: &Gateway, method: &http::Method) -> Response {
    if method != http::Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let component = match gw.config.storage.kind {
        crate::config::StorageKind::Redis => "redis",
        crate::config::StorageKind::Embedded => "embedded",
    };
    let store_status = match gw.store.ping().await {
        Ok(()) => "pass",
        Err(e) => {
            tracing::warn!(error = %e, "health check: store unavailable");
            "fail"
        }
    };
    json_response(
        StatusCode::OK,
        &json!({
            "status": store_status,
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Tyk GW",
            "details": {
                component: {"status": store_status, "componentType": "datastore", "time": now}
            }
        }),
    )
}
