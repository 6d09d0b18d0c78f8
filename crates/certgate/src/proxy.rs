//! Forwarding to the upstream: pooled connections (HTTP/1.1, and h2 over TLS by ALPN),
//! streaming bodies both ways, hop-by-hop headers removed, `X-Forwarded-*` set.

use std::net::IpAddr;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::body::{BodyFault, FaultSlot, GwBody};
use crate::errors::{ProxyError, ProxyFailure, Refusal, Side, UpstreamFault};

/// Why an API's `target_url` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// Not an absolute http(s) URL.
    #[error("target_url \"{0}\" must be an absolute http:// or https:// URL")]
    Invalid(String),
}

/// A parsed `proxy.target_url`.
#[derive(Debug, Clone)]
pub struct Target {
    scheme: Scheme,
    authority: Authority,
    /// Base path without a trailing slash ("" for the root).
    base_path: String,
    /// Query of the target URL, appended to every request's query.
    base_query: Option<String>,
    host_header: HeaderValue,
}

impl Target {
    /// Parses a target URL.
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let bad = || TargetError::Invalid(url.to_owned());
        let uri: Uri = url.parse().map_err(|_| bad())?;
        let scheme = uri.scheme().cloned().ok_or_else(bad)?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(bad());
        }
        let authority = uri.authority().cloned().ok_or_else(bad)?;
        if authority.host().is_empty() {
            return Err(bad());
        }
        let base_path = uri.path().trim_end_matches('/').to_owned();
        // Never forward credentials embedded in the target URL as the Host.
        let host_only = authority.as_str().rsplit('@').next().unwrap_or("");
        let host_header = HeaderValue::from_str(host_only).map_err(|_| bad())?;
        Ok(Self {
            scheme,
            authority,
            base_path,
            base_query: uri.query().map(str::to_owned),
            host_header,
        })
    }

    /// The upstream URI for a request path (already stripped) and query (Go's
    /// `singleJoiningSlash` and query join).
    pub fn uri_for(&self, path: &str, query: Option<&str>) -> Result<Uri, ProxyError> {
        let mut pq = String::with_capacity(self.base_path.len() + path.len() + 16);
        pq.push_str(&self.base_path);
        if !path.starts_with('/') {
            pq.push('/');
        }
        pq.push_str(path);
        let query = query.filter(|q| !q.is_empty());
        match (self.base_query.as_deref(), query) {
            (Some(a), Some(b)) if !b.is_empty() => {
                pq.push('?');
                pq.push_str(a);
                pq.push('&');
                pq.push_str(b);
            }
            (Some(a), _) => {
                pq.push('?');
                pq.push_str(a);
            }
            (None, Some(b)) => {
                pq.push('?');
                pq.push_str(b);
            }
            (None, None) => {}
        }
        let pq =
            PathAndQuery::try_from(pq).map_err(|_| ProxyError::from(Refusal::MalformedPath))?;
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(pq)
            .build()
            .map_err(|_| ProxyError::from(Refusal::MalformedPath))
    }
}

/// The pooled upstream client shared by every request.
#[derive(Clone, Debug)]
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, GwBody>,
    timeout: Duration,
}

impl Upstream {
    /// A client with keep-alive pools and the given per-request timeout.
    pub fn new(timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout.min(Duration::from_secs(10))));
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            // Invariant: aws-lc-rs implements every default protocol version.
            .expect("aws-lc-rs supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(https);
        Self { client, timeout }
    }

    /// Sends `req` upstream. A failure is tagged with its side ([`ProxyFailure`]): the
    /// client's request body failing is the client's error (4xx), whatever the upstream
    /// client reports; refused/unreachable is 502, no answer in time 504.
    pub async fn send(&self, req: Request<GwBody>) -> Result<Response<GwBody>, ProxyError> {
        let slot = req.body().fault_slot().cloned();
        let result = tokio::time::timeout(self.timeout, self.client.request(req)).await;
        let failure = match result {
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                return Ok(Response::from_parts(parts, GwBody::Incoming(body)));
            }
            Ok(Err(e)) => {
                let failure = classify(&e, slot.as_ref());
                if failure.side() != Side::Downstream {
                    tracing::warn!(error = %e, source = ?std::error::Error::source(&e), side = ?failure.side(), "upstream request failed");
                }
                failure
            }
            Err(_) => match slot.as_ref().and_then(FaultSlot::get) {
                Some(fault) => ProxyFailure::Downstream(fault),
                None => ProxyFailure::Upstream(UpstreamFault::Timeout),
            },
        };
        Err(failure.into())
    }
}

/// Which side made the upstream client fail: the client's request body if it recorded a
/// fault (or one is in the error chain), the gateway if hyper refused the request it was
/// given, else the upstream.
fn classify(e: &hyper_util::client::legacy::Error, slot: Option<&FaultSlot>) -> ProxyFailure {
    if let Some(fault) = slot.and_then(FaultSlot::get).or_else(|| BodyFault::find(e)) {
        return ProxyFailure::Downstream(fault);
    }
    if e.is_connect() {
        return ProxyFailure::Upstream(UpstreamFault::Connect);
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = cur {
        if err
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_user)
        {
            return ProxyFailure::Internal;
        }
        cur = err.source();
    }
    ProxyFailure::Upstream(UpstreamFault::Failed)
}

/// Headers that describe one hop and must not be forwarded (RFC 9110 §7.6.1), plus
/// any header named by `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Usually none is present: one pass over the (few) names finds out without hashing.
    const HOP: [HeaderName; 9] = [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        KEEP_ALIVE,
        PROXY_CONNECTION,
    ];
    if !headers.keys().any(|n| HOP.contains(n)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in HOP {
        headers.remove(n);
    }
}

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Prepares request headers for the upstream: hop-by-hop and method-override headers
/// removed, client identity headers (`identity`), the gateway secret and the dashboard
/// session removed (see [`strip_gateway_credentials`]), `Host` set to the target,
/// `X-Forwarded-For` appended, `X-Forwarded-Proto`/`-Host` set.
pub fn forward_headers(
    headers: &mut HeaderMap,
    target: &Target,
    client_ip: IpAddr,
    tls: bool,
    original_host: Option<HeaderValue>,
    identity: &[HeaderName],
) {
    strip_hop_by_hop(headers);
    // Method overrides are not forwarded: `allowed_urls` were checked for the request's
    // own method, and an upstream honouring an override would run another one.
    const METHOD_OVERRIDES: [HeaderName; 3] = [
        HeaderName::from_static("x-http-method-override"),
        HeaderName::from_static("x-http-method"),
        HeaderName::from_static("x-method-override"),
    ];
    for n in METHOD_OVERRIDES {
        headers.remove(n);
    }
    strip_gateway_credentials(headers, identity);
    // Every X-Forwarded-For the client sent, joined, then the client's address (Go).
    use std::fmt::Write as _;
    let mut xff = String::new();
    if headers.contains_key(&X_FORWARDED_FOR) {
        for v in headers.get_all(&X_FORWARDED_FOR) {
            if let Ok(v) = v.to_str() {
                if !v.is_empty() {
                    xff.push_str(v);
                    xff.push_str(", ");
                }
            }
        }
    }
    let _ = write!(xff, "{client_ip}");
    if let Ok(v) = HeaderValue::try_from(xff) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    headers.insert(
        X_FORWARDED_PROTO,
        HeaderValue::from_static(if tls { "https" } else { "http" }),
    );
    if let Some(h) = original_host {
        headers.insert(X_FORWARDED_HOST, h);
    }
    headers.insert(header::HOST, target.host_header.clone());
}

const X_TYK_AUTHORIZATION: HeaderName = HeaderName::from_static("x-tyk-authorization");

/// Removes what a client must not hand to an upstream: the headers in `identity` (a
/// client claiming a certificate a trusted proxy would vouch for), the Gateway API
/// secret (`X-Tyk-Authorization`), and the dashboard session cookie (other cookies
/// stay).
pub fn strip_gateway_credentials(headers: &mut HeaderMap, identity: &[HeaderName]) {
    // Usually none is present: one pass over the (few) names finds out without hashing.
    if headers
        .keys()
        .any(|n| *n == X_TYK_AUTHORIZATION || identity.contains(n))
    {
        headers.remove(X_TYK_AUTHORIZATION);
        for n in identity {
            headers.remove(n);
        }
    }
    strip_cookie(headers, DASHBOARD_COOKIE);
}

/// The dashboard's session cookie: never forwarded upstream.
pub const DASHBOARD_COOKIE: &str = "certgate_dashboard";

/// Removes every `name=…` pair from the `Cookie` headers, keeping the others.
pub(crate) fn strip_cookie(headers: &mut HeaderMap, name: &str) {
    if name.is_empty() {
        return;
    }
    let hit = |v: &HeaderValue| {
        v.as_bytes()
            .windows(name.len())
            .any(|w| w.eq_ignore_ascii_case(name.as_bytes()))
    };
    if !headers.get_all(header::COOKIE).iter().any(hit) {
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| {
            if !hit(v) {
                return Some(v.clone());
            }
            // A value that is not text cannot be split safely: drop it whole.
            let text = v.to_str().ok()?;
            let rest: Vec<&str> = text
                .split(';')
                .map(str::trim)
                .filter(|kv| !kv.is_empty() && kv.split('=').next().map(str::trim) != Some(name))
                .collect();
            (!rest.is_empty())
                .then(|| HeaderValue::from_str(&rest.join("; ")).ok())
                .flatten()
        })
        .collect();
    headers.remove(header::COOKIE);
    for v in kept {
        headers.append(header::COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_joins_paths_and_queries() {
        let t = Target::parse("http://up:8080/base/?k=1").unwrap();
        assert_eq!(
            t.uri_for("/a/b", Some("x=2")).unwrap(),
            "http://up:8080/base/a/b?k=1&x=2"
        );
        assert_eq!(t.uri_for("/", None).unwrap(), "http://up:8080/base/?k=1");
        let t = Target::parse("https://up").unwrap();
        assert_eq!(t.uri_for("/x", Some("q")).unwrap(), "https://up/x?q");
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("/relative").is_err());
        assert!(Target::parse("").is_err());
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        let t = Target::parse("http://up:1").unwrap();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        forward_headers(
            &mut h,
            &t,
            "127.0.0.1".parse().unwrap(),
            true,
            Some(HeaderValue::from_static("gw")),
            &[],
        );
        assert!(h.get("x-secret").is_none());
        assert!(h.get("keep-alive").is_none());
        assert!(h.get(header::TE).is_none());
        assert_eq!(h["x-keep"], "1");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "gw");
        assert_eq!(h[header::HOST], "up:1");
    }

    #[test]
    fn gateway_credentials_and_identity_headers_are_removed() {
        let mut h = HeaderMap::new();
        for n in ["x-ssl-client-cert", "client-cert", "x-tyk-authorization"] {
            h.insert(n, HeaderValue::from_static("forged"));
        }
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; certgate_dashboard=abc ;b=2"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("certgate_dashboard=x"),
        );
        h.append(
            header::COOKIE,
            HeaderValue::from_static("certgate_dashboardx=keep"),
        );
        h.insert("x-other", HeaderValue::from_static("1"));
        let identity = [
            HeaderName::from_static("x-ssl-client-cert"),
            HeaderName::from_static("client-cert"),
        ];
        strip_gateway_credentials(&mut h, &identity);
        assert!(h.get("x-ssl-client-cert").is_none());
        assert!(h.get("client-cert").is_none());
        assert!(h.get("x-tyk-authorization").is_none());
        let cookies: Vec<&str> = h
            .get_all(header::COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(cookies, ["a=1; b=2", "certgate_dashboardx=keep"]);
        assert_eq!(h["x-other"], "1");
    }
}
