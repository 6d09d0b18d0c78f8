//! Settings that protect the edge: how long a client may take to send a request body,
//! how long a response write may stall, and which identity headers a client may not
//! pass to the upstream.

use std::time::Duration;

use http::HeaderName;

use super::{Reader, SecurityConfig};
use crate::body::BodyLimits;

/// nginx's `client_body_timeout` default (seconds between two successive reads).
pub const DEFAULT_BODY_READ_TIMEOUT: u64 = 60;
/// Apache `mod_reqtimeout`'s default body `MinRate` (bytes per second).
pub const DEFAULT_MIN_BODY_RATE: u64 = 500;
/// Upper bound for the timeouts (a day), so deadlines never overflow.
const MAX_SECS: u64 = 86_400;

/// Headers that carry a client identity when a trusted proxy sets them: a client that
/// sends them itself must not be believed by the upstream, so they are removed.
pub const DEFAULT_IDENTITY_HEADERS: &[&str] = &[
    "x-ssl-client-cert",
    "x-ssl-client-verify",
    "x-ssl-client-s-dn",
    "x-ssl-client-i-dn",
    "x-ssl-client-dn",
    "x-ssl-client-serial",
    "x-ssl-client-fingerprint",
    "ssl-client-cert",
    "ssl-client-verify",
    "x-client-cert",
    "x-client-verify",
    "x-client-dn",
    "x-forwarded-client-cert",
    "client-cert",
    "client-cert-chain",
];

/// A timeout in whole seconds, 0 meaning `default` (Tyk's convention).
fn secs(r: &mut Reader<'_>, path: &str, default: u64) -> Duration {
    let v = match r.u64(path, default) {
        0 => default,
        v => v,
    };
    if v > MAX_SECS {
        r.fail(path, format!("{v} is more than a day ({MAX_SECS} seconds)"));
    }
    Duration::from_secs(v.min(MAX_SECS))
}

/// `http_server_options.read_timeout` (whole request, default 120 s),
/// `certgate_body_read_timeout` and `certgate_min_body_rate`.
pub(super) fn body_limits(r: &mut Reader<'_>) -> BodyLimits {
    BodyLimits {
        total: secs(r, "http_server_options.read_timeout", 120),
        between_reads: secs(
            r,
            "http_server_options.certgate_body_read_timeout",
            DEFAULT_BODY_READ_TIMEOUT,
        ),
        min_rate: r.u64(
            "http_server_options.certgate_min_body_rate",
            DEFAULT_MIN_BODY_RATE,
        ),
    }
}

/// `http_server_options.write_timeout` (default 120 s): a response write that makes no
/// progress for this long closes the connection.
pub(super) fn write_timeout(r: &mut Reader<'_>) -> Duration {
    secs(r, "http_server_options.write_timeout", 120)
}

/// Default of `security.certgate_client_cert_not_before_skew` (seconds).
pub const DEFAULT_NOT_BEFORE_SKEW: u64 = 60;
/// Upper bound of that allowance: an hour is generous for a drifting clock; more would
/// make notBefore meaningless.
const MAX_NOT_BEFORE_SKEW: u64 = 3_600;

/// The loader's defaults (the skew is not zero).
impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            allow_unsafe_dynamic_mtls_token: false,
            control_api_use_mutual_tls: false,
            private_certificate_encoding_secret: String::new(),
            certificates_apis: Vec::new(),
            certificates_control_api: Vec::new(),
            client_cert_not_before_skew: DEFAULT_NOT_BEFORE_SKEW as i64,
        }
    }
}

/// `security.certgate_client_cert_not_before_skew`: a client certificate whose
/// notBefore is at most this many seconds ahead of this node's clock is accepted
/// (0 = none), 0 to 3600.
pub(super) fn not_before_skew(r: &mut Reader<'_>) -> i64 {
    const PATH: &str = "security.certgate_client_cert_not_before_skew";
    let v = r.u64(PATH, DEFAULT_NOT_BEFORE_SKEW);
    if v > MAX_NOT_BEFORE_SKEW {
        r.fail(
            PATH,
            format!("{v} is more than an hour ({MAX_NOT_BEFORE_SKEW} seconds)"),
        );
        return DEFAULT_NOT_BEFORE_SKEW as i64;
    }
    v as i64
}

/// `strip_client_identity_headers`: absent means [`DEFAULT_IDENTITY_HEADERS`]; `[]`
/// strips none of them (the gateway secret header and the dashboard cookie are always
/// stripped).
pub(super) fn identity_headers(r: &mut Reader<'_>) -> Vec<HeaderName> {
    const PATH: &str = "strip_client_identity_headers";
    let names: Vec<String> = if r.lookup(PATH).is_some() {
        r.strings(PATH)
    } else {
        DEFAULT_IDENTITY_HEADERS
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    };
    let mut out = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        match HeaderName::from_bytes(n.trim().as_bytes()) {
            Ok(h) => out.push(h),
            Err(_) => r.fail(
                &format!("{PATH}[{i}]"),
                format!("\"{n}\" is not a valid header name"),
            ),
        }
    }
    out
}
