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

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use serde_json::json;
use tower::ServiceExt;

use crate::config::Config;
use crate::gateway::Gateway;
pub use crate::reply::MAX_BODY;
pub(crate) use crate::reply::{error, json_response, modified, read_body, ApiError};

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

/// Serves one Gateway API request, once the control plane ([`crate::control`]) has chosen
/// the Gateway API: `X-Tyk-Authorization` must be the secret; a trailing slash is
/// dropped as Tyk does; then the handlers.
pub(crate) async fn handle(gw: Arc<Gateway>, mut req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if !authorised(&gw.config, req.headers().get("x-tyk-authorization")) {
        return error(
            StatusCode::FORBIDDEN,
            "Attempted administrative access with invalid or missing key!",
        );
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
    dispatch(gw, req).await
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
    given.is_some_and(|v| cfg.secret_matches(v.as_bytes()))
}

/// The gateway of this request (inserted by [`dispatch`]).
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
