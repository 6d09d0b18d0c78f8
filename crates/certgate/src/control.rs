//! The control plane's one entry point. It decides whether a request is the control
//! plane's at all ([`answers`], [`answers_unrouted`]), then which of the health check
//! (`/hello`), the dashboard ([`crate::dashboard`]) or the Gateway API
//! ([`crate::admin`]) answers it, after the check they share (the Gateway API's mTLS
//! allow list). The dashboard and the admin handlers know nothing of each other or of
//! the server: the dashboard runs its Gateway API calls through the function it is given.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::body::{GwBody, ReqBody};
use crate::config::Config;
use crate::conn::{ConnInfo, Role};
use crate::gateway::Gateway;
use crate::reply::{error, json_response};
use crate::{admin, dashboard};

/// True if `path` belongs to the control plane: the Gateway API, `/hello`, the dashboard.
pub fn is_control_path(cfg: &Config, path: &str) -> bool {
    path == "/tyk"
        || path.starts_with("/tyk/")
        || is_health_path(cfg, path)
        || dashboard::is_dashboard_path(path)
}

/// True for the health endpoint (`/hello`), which is also served on the gateway
/// port when the Gateway API has its own port.
pub fn is_health_path(cfg: &Config, path: &str) -> bool {
    path.strip_prefix('/')
        .map(|p| p.strip_suffix('/').unwrap_or(p))
        .is_some_and(|p| p == cfg.health_check_endpoint_name)
}

/// Whether the control plane answers this request before any API route is looked up:
/// on a listener that serves it, for the configured `control_api_hostname`, a control
/// path (and on the control port, the Dashboard API too).
pub fn answers(cfg: &Config, conn: &ConnInfo, host: &str, path: &str) -> bool {
    serves(cfg, conn, host, path)
        && (is_control_path(cfg, path)
            || (conn.role == Role::Control && dashboard::is_api_path(path)))
}

/// Whether the control plane answers a request that no API route matched: the Dashboard
/// API shares the gateway port with the APIs.
pub fn answers_unrouted(cfg: &Config, conn: &ConnInfo, host: &str, path: &str) -> bool {
    serves(cfg, conn, host, path) && dashboard::is_api_path(path)
}

fn serves(cfg: &Config, conn: &ConnInfo, host: &str, path: &str) -> bool {
    let serves_admin = match conn.role {
        Role::Control => true,
        Role::Gateway => cfg.control_api_port == 0 || is_health_path(cfg, path),
    };
    let admin_host =
        cfg.control_api_hostname.is_empty() || cfg.control_api_hostname.eq_ignore_ascii_case(host);
    serves_admin && admin_host
}

/// Serves one control-plane request: `/hello`, else (after the Gateway API mTLS allow
/// list) the dashboard or the Gateway API.
pub async fn handle(
    gw: Arc<Gateway>,
    conn: &ConnInfo,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<GwBody> {
    let cfg = &gw.config;
    let path = req.uri().path().to_owned();
    if is_health_path(cfg, &path) {
        let resp = health(&gw, req.method()).await;
        return resp.map(GwBody::Axum);
    }
    // Gateway API mTLS (security.control_api_use_mutual_tls): the same validation as a
    // static allow list, answered in the Gateway API's error shape.
    if let Some(list) = &gw.snapshot().control_allow_list {
        let now = crate::pipeline::now_unix();
        let skew = cfg.security.client_cert_not_before_skew;
        if let Err(e) = list.check(conn.tls, conn.peer.as_deref(), now, skew) {
            return error(StatusCode::FORBIDDEN, e.message).map(GwBody::Axum);
        }
    }
    let limits = cfg.http_server_options.body_limits;
    let req = req.map(|b| Body::new(ReqBody::new(b, limits)));
    // The dashboard and the Dashboard API authorise with their own sign-in (or the secret).
    let resp = if dashboard::is_dashboard_path(&path) || dashboard::is_api_path(&path) {
        dashboard::handle(gw, conn.tls, conn.remote.ip(), req, gateway_api).await
    } else {
        admin::handle(gw, req).await
    };
    resp.map(GwBody::Axum)
}

/// The Gateway API's handlers, as the dashboard runs its calls through them.
fn gateway_api(gw: Arc<Gateway>, req: Request) -> Pin<Box<dyn Future<Output = Response> + Send>> {
    Box::pin(admin::dispatch(gw, req))
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
