//! Start-up checks on what guards the gateway's credentials: the Gateway API `secret`, the
//! cluster `node_secret`, and the strength of key hashes.
//!
//! Tyk starts with a missing `secret` by falling back to the example value published in its
//! own sample configs, so `X-Tyk-Authorization: 352d20ee…` opens the Gateway API (and
//! certgate's dashboard sign-in). certgate refuses to start instead.

use subtle::ConstantTimeEq;

use super::{issue, Config, ConfigIssue, StorageKind};

/// Shortest `secret` / `node_secret` accepted, in characters.
pub const MIN_SECRET_LEN: usize = 16;

/// Tyk's built-in default `secret` (`config/config.go`) and the value of `tyk.conf.example`.
pub const TYK_DEFAULT_SECRET: &str = "352d20ee67be67f6340b4c0605b044b7";

/// Secrets published in sample configurations and guides, refused (ASCII case-insensitive)
/// whatever their length. Found in Tyk's repositories:
///
/// - `352d20ee67be67f6340b4c0605b044b7`: Tyk's default; `tyk.conf.example`, the CI and
///   install configs (`ci/install/data/tyk.*.conf`, `ci/auto/pro/tyk.conf`, as both `secret`
///   and `node_secret`), and tyk-gateway-docker's `tyk.standalone.conf`,
///   `tyk.with_dashboard.conf`, `tyk.local.conf`;
/// - `example_gateway_secret`: `ci/tests/specs/config/tyk.standalone.conf`;
/// - `12345`: `ci/images/hybrid/tyk/tyk.conf`, `ci/aws/hybrid/tyk_hybrid.conf`;
/// - `foo`: tyk-gateway-docker's `tyk.hybrid.conf` and its guide (`TYK_GW_SECRET=foo`);
/// - `supersecret`, `changeme`, `secret`: common placeholders in guides;
/// - `demo-secret-change-me`, `test-secret`, `bench-secret`: certgate's own earlier demo,
///   test and benchmark configurations.
///
/// The short ones are refused by length anyway; they are listed so the message says why.
pub const PUBLISHED_SECRETS: &[&str] = &[
    TYK_DEFAULT_SECRET,
    "example_gateway_secret",
    "12345",
    "foo",
    "supersecret",
    "changeme",
    "secret",
    "demo-secret-change-me",
    "test-secret",
    "bench-secret",
];

impl Config {
    /// Whether `given` is the gateway secret, compared in constant time. Both sides are
    /// hashed first so the time does not depend on the lengths either.
    pub fn secret_matches(&self, given: &[u8]) -> bool {
        let a = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, given);
        let b = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.secret.as_bytes());
        bool::from(a.as_ref().ct_eq(b.as_ref()))
    }

    /// What is wrong with `secret` and, when nodes share Redis (`storage.type` redis),
    /// `node_secret`: missing or empty, shorter than [`MIN_SECRET_LEN`], or a value in
    /// [`PUBLISHED_SECRETS`]. Empty when both are acceptable. [`Config::load`] reports these
    /// with the other problems; [`crate::app::start`] refuses to start on any.
    pub fn secret_issues(&self) -> Vec<ConfigIssue> {
        let mut out = Vec::new();
        if let Some(why) = secret_weakness(&self.secret) {
            out.push(issue(
                "secret",
                format!(
                    "{why}; it is the only credential of the Gateway API and the dashboard sign-in"
                ),
            ));
        }
        if self.storage.kind == StorageKind::Redis {
            if let Some(why) = secret_weakness(&self.node_secret) {
                out.push(issue(
                    "node_secret",
                    format!("{why}; nodes sharing Redis sign their notifications with it"),
                ));
            }
        }
        out
    }

    /// A warning when keys are stored under 32-bit murmur hashes: `hash_keys` on with an
    /// empty `hash_key_function` (legacy tokens) or `murmur32`. `None` otherwise.
    pub fn weak_key_hash_warning(&self) -> Option<String> {
        if !self.hash_keys || !matches!(self.hash_key_function.as_str(), "" | "murmur32") {
            return None;
        }
        let name = if self.hash_key_function.is_empty() {
            "empty"
        } else {
            "\"murmur32\""
        };
        Some(format!(
            "hash_keys is on with hash_key_function {name}: new keys are stored under 32-bit \
             murmur hashes, and anyone who sees a key hash (a key listing, Redis, a log) can \
             compute a token that matches it in milliseconds. Set hash_key_function to \
             \"sha256\" (or \"murmur128\"); keys already written keep working"
        ))
    }
}

/// Why `value` cannot serve as `secret` or `node_secret`, or `None` when it can.
pub fn secret_weakness(value: &str) -> Option<String> {
    let hint = format!(
        "set at least {MIN_SECRET_LEN} random characters (for example the output of `openssl rand -hex 16`)"
    );
    if value.trim().is_empty() {
        return Some(format!("is missing or empty: {hint}"));
    }
    if PUBLISHED_SECRETS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(value.trim()))
    {
        return Some(format!(
            "is a value published in sample configurations, known to anyone: {hint}"
        ));
    }
    let len = value.chars().count();
    if len < MIN_SECRET_LEN {
        return Some(format!("is only {len} characters long: {hint}"));
    }
    None
}
