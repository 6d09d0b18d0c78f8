//! Errors become HTTP responses here, and only here.
//!
//! Two formats exist and must not be confused (spec §0):
//! - the data plane writes Tyk's error template: `{` LF, four spaces,
//!   `"error": "<msg>"`, LF, `}` — no trailing newline — with
//!   `Content-Type: application/json` and `X-Generator: tyk.io`;
//! - the Gateway API writes compact JSON plus one `\n`, with `<`, `>` and `&` escaped
//!   as Go's encoder does.

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Response, StatusCode};

use crate::body::{BodyFault, GwBody};
use crate::gocompat::go_html_escape_string;
use crate::gocompat::json::escape_json_template;

/// Messages of the data plane, exactly Tyk's.
pub mod msg {
    /// No token on a token-auth API.
    pub const AUTH_FIELD_MISSING: &str = "Authorization field missing";
    /// Unknown key, unknown certificate, API not in access rights.
    pub const DISALLOWED: &str = "Access to this API has been disallowed";
    /// Certificate-auth API, no client certificate.
    pub const CERT_REQUIRED: &str = "Client certificate required";
    /// Expired client certificate.
    pub const CERT_EXPIRED: &str = "Certificate has expired";
    /// **certgate**: a client certificate whose notBefore is still ahead (beyond the
    /// clock-skew allowance); Tyk never checks notBefore.
    pub const CERT_NOT_YET_VALID: &str = "Certificate is not yet valid";
    /// Static allow list on a plain-HTTP request.
    pub const TLS_NOT_ENABLED: &str = "TLS not enabled";
    /// Static allow list, TLS without a client certificate.
    pub const CLIENT_TLS_REQUIRED: &str = "Client TLS certificate is required";
    /// The request's Host selects another client-certificate policy than the SNI did.
    pub const MISDIRECTED: &str =
        "Misdirected Request: the Host header does not match the TLS server name";
    /// Versioned API, no version in the request and no default.
    pub const VERSION_NOT_FOUND: &str = "Version information not found";
    /// Versioned API, unknown version.
    pub const VERSION_UNKNOWN: &str = "This API version does not seem to exist";
    /// A version's black list, or a white list that does not list the endpoint.
    pub const ENDPOINT_FORBIDDEN: &str = "Requested endpoint is forbidden";
    /// The requested version's `expires` has passed.
    pub const VERSION_EXPIRED: &str =
        "Api Version has expired, please check documentation or contact administrator";
    /// The API's `expiration` has passed (APIs that are not versioned).
    pub const API_EXPIRED: &str =
        "API has expired, please check documentation or contact administrator";
    /// `allowed_urls` does not allow this method and path.
    pub const RESOURCE_DISALLOWED: &str = "Access to this resource has been disallowed";
    /// `is_inactive` session.
    pub const KEY_INACTIVE: &str = "Key is inactive, please renew";
    /// Session past `expires`.
    pub const KEY_EXPIRED: &str = "Key has expired, please renew";
    /// A version present but unreadable, or given twice with different readings.
    pub const VERSION_AMBIGUOUS: &str = "Version information is duplicated or unreadable";
    /// A canonical path that is not a valid URI path.
    pub const MALFORMED_PATH: &str = "Malformed request path";
    /// A request over its rate limit.
    pub const RATE_LIMITED: &str = "Rate Limit Exceeded";
    /// A request over its API's `global_rate_limit`.
    pub const API_RATE_LIMITED: &str = "API Rate Limit Exceeded";
    /// A request over its quota.
    pub const QUOTA_EXCEEDED: &str = "Quota exceeded";
    /// Upstream refused or failed.
    pub const PROXY_FAILED: &str = "There was a problem proxying the request";
    /// Upstream did not answer in time.
    pub const UPSTREAM_TIMEOUT: &str = "Upstream service reached hard timeout.";
    /// The request body is larger than allowed.
    pub const BODY_TOO_LARGE: &str = "Request is too large";
    /// **certgate**: the client did not send its request body in time (408).
    pub const BODY_TIMEOUT: &str = "Request body was not received in time";
    /// **certgate**: the request body's framing is invalid (a bad chunk) (400).
    pub const BODY_MALFORMED: &str = "Malformed request body";
    /// **certgate**: the client ended or reset its request body early (400).
    pub const BODY_INCOMPLETE: &str = "Request body is incomplete";
    /// The store could not be read (fail closed).
    pub const STORE_UNAVAILABLE: &str = "Service temporarily unavailable";
}

/// A refusal or failure on the data plane: a status and one of Tyk's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyError {
    /// HTTP status.
    pub status: StatusCode,
    /// Message placed in the error template.
    pub message: String,
    /// `X-RateLimit-*` values to send with the error (rate limit and quota refusals).
    pub rate_headers: Option<crate::limits::RateHeaders>,
}

impl ProxyError {
    /// A new error. Private: every data-plane error is made from a [`Refusal`], the one
    /// place a status is chosen.
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            rate_headers: None,
        }
    }
}

/// Which side of the proxy a failure belongs to (pingora's `ErrorSource`): the side
/// chooses the status class, so a client's bad input is never blamed on the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The client (its request body): 4xx.
    Downstream,
    /// The upstream: 502, or 504 when it did not answer in time.
    Upstream,
    /// The gateway itself: 500 (503 when its store does not answer).
    Internal,
}

/// How the upstream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFault {
    /// No connection could be made (refused, unreachable, TLS failure).
    Connect,
    /// The connection failed or the answer was not HTTP.
    Failed,
    /// No answer within `proxy_default_timeout`.
    Timeout,
}

/// A failure while proxying a request, tagged with the side that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyFailure {
    /// The client's request body could not be read.
    Downstream(BodyFault),
    /// The upstream could not be reached or failed.
    Upstream(UpstreamFault),
    /// The gateway could not send the request it built.
    Internal,
}

impl ProxyFailure {
    /// The side that failed.
    pub const fn side(self) -> Side {
        match self {
            Self::Downstream(_) => Side::Downstream,
            Self::Upstream(_) => Side::Upstream,
            Self::Internal => Side::Internal,
        }
    }

    /// The status, derived here and only here from the side and the kind.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::Downstream(BodyFault::Timeout) => StatusCode::REQUEST_TIMEOUT,
            Self::Downstream(BodyFault::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Downstream(BodyFault::Malformed | BodyFault::Incomplete) => {
                StatusCode::BAD_REQUEST
            }
            Self::Upstream(UpstreamFault::Timeout) => StatusCode::GATEWAY_TIMEOUT,
            Self::Upstream(UpstreamFault::Connect | UpstreamFault::Failed) => {
                StatusCode::BAD_GATEWAY
            }
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message of the error template.
    pub const fn message(self) -> &'static str {
        match self {
            Self::Downstream(BodyFault::Timeout) => msg::BODY_TIMEOUT,
            Self::Downstream(BodyFault::TooLarge) => msg::BODY_TOO_LARGE,
            Self::Downstream(BodyFault::Malformed) => msg::BODY_MALFORMED,
            Self::Downstream(BodyFault::Incomplete) => msg::BODY_INCOMPLETE,
            Self::Upstream(UpstreamFault::Timeout) => msg::UPSTREAM_TIMEOUT,
            Self::Upstream(_) | Self::Internal => msg::PROXY_FAILED,
        }
    }
}

impl From<ProxyFailure> for ProxyError {
    fn from(f: ProxyFailure) -> Self {
        Refusal::Proxy(f).into()
    }
}

impl From<ProxyFailure> for Refusal {
    fn from(f: ProxyFailure) -> Self {
        Refusal::Proxy(f)
    }
}

/// Why the data plane refused or failed a request: the only place a data-plane status
/// (and Tyk's message for it) is chosen. Phases return one; [`ProxyError`] renders it.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The path the normaliser refused (its reason is the message): 400.
    BadPath(String),
    /// A canonical path that does not make a valid URI: 400.
    MalformedPath,
    /// The Host selects another client-certificate policy than the SNI: 421.
    Misdirected,
    /// VersionCheck: the version is duplicated or unreadable: 400.
    VersionAmbiguous,
    /// VersionCheck: no version and no default: 403.
    VersionNotFound,
    /// VersionCheck: unknown version: 403.
    VersionUnknown,
    /// VersionCheck: the API's `expiration` has passed: 403.
    ApiExpired,
    /// VersionCheck: the version's `expires` has passed: 403.
    VersionExpired,
    /// VersionCheck: a black list, or a white list without the endpoint: 403.
    EndpointForbidden,
    /// CertificateCheck: a plain-HTTP request to an allow-listed API: 403.
    TlsNotEnabled,
    /// CertificateCheck or Certificate Authentication: TLS without a client certificate
    /// where the allow list requires one: 403.
    ClientTlsRequired,
    /// The client certificate has expired: 403.
    CertificateExpired,
    /// The client certificate's notBefore is still ahead: 403.
    CertificateNotYetValid,
    /// CertificateCheck: the leaf (hex SHA-256) is not allowed: 403.
    CertificateNotAllowed(String),
    /// Certificate Authentication without a client certificate: 401.
    CertificateRequired,
    /// Certificate Authentication: no session for the certificate: 401 "disallowed".
    CertificateUnknown,
    /// AuthKey: no token: 401.
    AuthFieldMissing,
    /// Unknown key, API not granted, an auth method not implemented: 403 "disallowed".
    Disallowed,
    /// KeyExpired: `is_inactive`: 403.
    KeyInactive,
    /// KeyExpired: past `expires`: 401.
    KeyExpired,
    /// AccessRights: `allowed_urls` does not allow the method and path: 403.
    ResourceDisallowed,
    /// RateLimitAndQuota or the API-global rate limit.
    Limit(crate::limits::Verdict),
    /// The store did not answer: 503.
    StoreUnavailable,
    /// Proxying failed on one side ([`ProxyFailure`] picks the status).
    Proxy(ProxyFailure),
}

impl Refusal {
    /// The status.
    pub const fn status(&self) -> StatusCode {
        use crate::limits::Verdict;
        match self {
            Self::BadPath(_) | Self::MalformedPath | Self::VersionAmbiguous => {
                StatusCode::BAD_REQUEST
            }
            Self::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            Self::VersionNotFound
            | Self::VersionUnknown
            | Self::ApiExpired
            | Self::VersionExpired
            | Self::EndpointForbidden
            | Self::TlsNotEnabled
            | Self::ClientTlsRequired
            | Self::CertificateExpired
            | Self::CertificateNotYetValid
            | Self::CertificateNotAllowed(_)
            | Self::Disallowed
            | Self::KeyInactive
            | Self::ResourceDisallowed
            | Self::Limit(Verdict::QuotaExceeded) => StatusCode::FORBIDDEN,
            Self::CertificateRequired
            | Self::CertificateUnknown
            | Self::AuthFieldMissing
            | Self::KeyExpired => StatusCode::UNAUTHORIZED,
            Self::Limit(Verdict::RateLimited | Verdict::ApiRateLimited) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Proxy(f) => f.status(),
        }
    }

    /// Tyk's message for the error template.
    pub fn message(&self) -> std::borrow::Cow<'static, str> {
        use crate::limits::Verdict;
        let m = match self {
            Self::BadPath(reason) => return reason.clone().into(),
            Self::CertificateNotAllowed(sha256_hex) => {
                return format!("Certificate with SHA256 {sha256_hex} not allowed").into()
            }
            Self::MalformedPath => msg::MALFORMED_PATH,
            Self::Misdirected => msg::MISDIRECTED,
            Self::VersionAmbiguous => msg::VERSION_AMBIGUOUS,
            Self::VersionNotFound => msg::VERSION_NOT_FOUND,
            Self::VersionUnknown => msg::VERSION_UNKNOWN,
            Self::ApiExpired => msg::API_EXPIRED,
            Self::VersionExpired => msg::VERSION_EXPIRED,
            Self::EndpointForbidden => msg::ENDPOINT_FORBIDDEN,
            Self::TlsNotEnabled => msg::TLS_NOT_ENABLED,
            Self::ClientTlsRequired => msg::CLIENT_TLS_REQUIRED,
            Self::CertificateExpired => msg::CERT_EXPIRED,
            Self::CertificateNotYetValid => msg::CERT_NOT_YET_VALID,
            Self::CertificateRequired => msg::CERT_REQUIRED,
            Self::CertificateUnknown | Self::Disallowed => msg::DISALLOWED,
            Self::AuthFieldMissing => msg::AUTH_FIELD_MISSING,
            Self::KeyInactive => msg::KEY_INACTIVE,
            Self::KeyExpired => msg::KEY_EXPIRED,
            Self::ResourceDisallowed => msg::RESOURCE_DISALLOWED,
            Self::Limit(Verdict::RateLimited) => msg::RATE_LIMITED,
            Self::Limit(Verdict::ApiRateLimited) => msg::API_RATE_LIMITED,
            Self::Limit(Verdict::QuotaExceeded) => msg::QUOTA_EXCEEDED,
            Self::StoreUnavailable => msg::STORE_UNAVAILABLE,
            Self::Proxy(f) => f.message(),
        };
        m.into()
    }

    /// The side the refusal belongs to: the client's request for every refusal, the
    /// gateway for an unavailable store, the failing side for a proxy failure.
    pub const fn side(&self) -> Side {
        match self {
            Self::Proxy(f) => f.side(),
            Self::StoreUnavailable => Side::Internal,
            _ => Side::Downstream,
        }
    }
}

impl From<Refusal> for ProxyError {
    fn from(r: Refusal) -> Self {
        ProxyError::new(r.status(), r.message())
    }
}

impl From<crate::limits::Verdict> for Refusal {
    fn from(v: crate::limits::Verdict) -> Self {
        Refusal::Limit(v)
    }
}

/// Renders a data-plane error. `request_content_type` picks the XML template for XML
/// requests, as Tyk does.
pub fn proxy_error_response(
    err: &ProxyError,
    request_content_type: Option<&HeaderValue>,
    hide_generator: bool,
) -> Response<GwBody> {
    let xml = request_content_type
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|ct| {
            matches!(
                ct.as_str(),
                "application/xml" | "text/xml" | "application/soap+xml"
            )
        });
    let (body, ct) = match &xml {
        Some(ct) => (
            format!(
                "<?xml version = \"1.0\" encoding = \"UTF-8\"?>\n<error>{}</error>\n",
                go_html_escape_string(&err.message)
            ),
            HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/xml")),
        ),
        None => {
            let mut b = String::with_capacity(err.message.len() + 24);
            b.push_str("{\n    \"error\": \"");
            escape_json_template(&err.message, &mut b);
            b.push_str("\"\n}");
            (b, HeaderValue::from_static("application/json"))
        }
    };
    let mut resp = Response::new(GwBody::full(Bytes::from(body)));
    *resp.status_mut() = err.status;
    resp.headers_mut().insert(CONTENT_TYPE, ct);
    if !hide_generator {
        resp.headers_mut()
            .insert("x-generator", HeaderValue::from_static("tyk.io"));
    }
    if let Some(h) = &err.rate_headers {
        set_rate_headers(resp.headers_mut(), h);
    }
    resp
}

/// Writes `X-RateLimit-Limit`, `-Remaining` and `-Reset`.
pub fn set_rate_headers(headers: &mut http::HeaderMap, h: &crate::limits::RateHeaders) {
    // Names built once at compile time: no parsing or hashing of a `&str` per request.
    const LIMIT: http::HeaderName = http::HeaderName::from_static("x-ratelimit-limit");
    const REMAINING: http::HeaderName = http::HeaderName::from_static("x-ratelimit-remaining");
    const RESET: http::HeaderName = http::HeaderName::from_static("x-ratelimit-reset");
    headers.insert(LIMIT, HeaderValue::from(h.limit));
    headers.insert(REMAINING, HeaderValue::from(h.remaining));
    headers.insert(RESET, HeaderValue::from(h.reset));
}

/// The plain-text 404 for a request that matches no API.
pub fn not_found() -> Response<GwBody> {
    let mut resp = Response::new(GwBody::full(Bytes::from_static(b"Not Found")));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_bytes(r: Response<GwBody>) -> Vec<u8> {
        r.into_body().collect().await.unwrap().to_bytes().to_vec()
    }

    #[tokio::test]
    async fn data_plane_error_bytes_are_tyks() {
        let e = ProxyError::new(StatusCode::UNAUTHORIZED, msg::CERT_REQUIRED);
        let r = proxy_error_response(&e, None, false);
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.headers()["x-generator"], "tyk.io");
        assert_eq!(
            body_bytes(r).await,
            b"{\n    \"error\": \"Client certificate required\"\n}"
        );
        let e = ProxyError::new(StatusCode::FORBIDDEN, "a \"q\" \\ <b>");
        let r = proxy_error_response(&e, None, true);
        assert!(r.headers().get("x-generator").is_none());
        assert_eq!(
            body_bytes(r).await,
            b"{\n    \"error\": \"a \\\"q\\\" \\\\ <b>\"\n}"
        );
    }

    #[tokio::test]
    async fn xml_requests_get_the_xml_template() {
        let e = ProxyError::new(StatusCode::FORBIDDEN, "a<b");
        let ct = HeaderValue::from_static("text/xml; charset=utf-8");
        let r = proxy_error_response(&e, Some(&ct), false);
        assert_eq!(r.headers()["content-type"], "text/xml");
        assert_eq!(
            body_bytes(r).await,
            b"<?xml version = \"1.0\" encoding = \"UTF-8\"?>\n<error>a&lt;b</error>\n"
        );
    }

    #[test]
    fn the_side_chooses_the_status_class() {
        use BodyFault::*;
        for f in [Timeout, TooLarge, Malformed, Incomplete] {
            let f = ProxyFailure::Downstream(f);
            assert_eq!(f.side(), Side::Downstream);
            assert!(f.status().is_client_error(), "{f:?}");
        }
        let status = |f: ProxyFailure| f.status().as_u16();
        assert_eq!(status(ProxyFailure::Downstream(Timeout)), 408);
        assert_eq!(status(ProxyFailure::Downstream(TooLarge)), 413);
        assert_eq!(status(ProxyFailure::Downstream(Malformed)), 400);
        assert_eq!(status(ProxyFailure::Downstream(Incomplete)), 400);
        assert_eq!(status(ProxyFailure::Upstream(UpstreamFault::Connect)), 502);
        assert_eq!(status(ProxyFailure::Upstream(UpstreamFault::Failed)), 502);
        assert_eq!(status(ProxyFailure::Upstream(UpstreamFault::Timeout)), 504);
        assert_eq!(status(ProxyFailure::Internal), 500);
        assert_eq!(ProxyFailure::Internal.side(), Side::Internal);
        let e = ProxyError::from(ProxyFailure::Downstream(Malformed));
        assert_eq!(
            (e.status.as_u16(), e.message.as_str()),
            (400, msg::BODY_MALFORMED)
        );
        let e = ProxyError::from(ProxyFailure::Upstream(UpstreamFault::Connect));
        assert_eq!(e.message, msg::PROXY_FAILED);
    }

    #[test]
    fn each_refusal_has_its_status_message_and_side() {
        use crate::limits::Verdict;
        let cases = [
            (Refusal::Disallowed, 403, msg::DISALLOWED),
            (Refusal::CertificateUnknown, 401, msg::DISALLOWED),
            (Refusal::CertificateRequired, 401, msg::CERT_REQUIRED),
            (Refusal::AuthFieldMissing, 401, msg::AUTH_FIELD_MISSING),
            (Refusal::KeyInactive, 403, msg::KEY_INACTIVE),
            (Refusal::KeyExpired, 401, msg::KEY_EXPIRED),
            (Refusal::Misdirected, 421, msg::MISDIRECTED),
            (Refusal::VersionAmbiguous, 400, msg::VERSION_AMBIGUOUS),
            (
                Refusal::Limit(Verdict::RateLimited),
                429,
                "Rate Limit Exceeded",
            ),
            (
                Refusal::Limit(Verdict::ApiRateLimited),
                429,
                "API Rate Limit Exceeded",
            ),
            (
                Refusal::Limit(Verdict::QuotaExceeded),
                403,
                "Quota exceeded",
            ),
            (Refusal::StoreUnavailable, 503, msg::STORE_UNAVAILABLE),
        ];
        for (r, status, message) in cases {
            let e = ProxyError::from(r.clone());
            assert_eq!(
                (e.status.as_u16(), e.message.as_str()),
                (status, message),
                "{r:?}"
            );
        }
        let e = ProxyError::from(Refusal::CertificateNotAllowed("ab12".into()));
        assert_eq!(e.message, "Certificate with SHA256 ab12 not allowed");
        assert_eq!(Refusal::Disallowed.side(), Side::Downstream);
        assert_eq!(Refusal::StoreUnavailable.side(), Side::Internal);
        let upstream = Refusal::Proxy(ProxyFailure::Upstream(UpstreamFault::Timeout));
        assert_eq!(
            (upstream.side(), upstream.status().as_u16()),
            (Side::Upstream, 504)
        );
    }
}
