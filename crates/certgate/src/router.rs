//! Routing: which API a request belongs to.
//!
//! Each API is mounted at its listen path and at `/{api_id}/` (Tyk
//! `api_loader.go`). Host constraints come from the API `domain` when
//! `enable_custom_domains` is on, else from the global `hostname`. Routes with a host
//! constraint are tried first, then longer listen paths before shorter ones, so the
//! most specific API wins. The table is built once per snapshot.

use regex::Regex;

use crate::apidef::ApiSpec;
use crate::config::Config;

/// How a route constrains the `Host` header.
#[derive(Debug, Clone)]
enum HostMatch {
    Any,
    Exact(String),
    Pattern(Regex),
}

impl HostMatch {
    fn new(domain: &str) -> Self {
        if domain.is_empty() {
            HostMatch::Any
        } else if domain.contains('{') {
            match host_template_regex(domain) {
                Some(re) => HostMatch::Pattern(re),
                // An unusable template can never match: fail closed.
                None => HostMatch::Exact(String::from("\0")),
            }
        } else {
            HostMatch::Exact(domain.to_ascii_lowercase())
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            HostMatch::Any => true,
            HostMatch::Exact(d) => d == host,
            HostMatch::Pattern(re) => re.is_match(host),
        }
    }

    fn constrained(&self) -> bool {
        !matches!(self, HostMatch::Any)
    }
}

/// Converts a gorilla/mux host template (`{name:pattern}`, `{?:a|b}`, `{name}`) into an
/// anchored regex.
pub(crate) fn host_template_regex(t: &str) -> Option<Regex> {
    let mut out = String::from("^(?i:");
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        out.push_str(&regex::escape(&rest[..open]));
        let after = &rest[open + 1..];
        // Braces may nest inside the pattern (e.g. `{n:[a-z]{2}}`).
        let mut depth = 1usize;
        let mut end = None;
        for (i, c) in after.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = end?;
        let var = &after[..end];
        match var.split_once(':') {
            Some((_, pat)) => {
                out.push_str("(?:");
                out.push_str(pat);
                out.push(')');
            }
            None => out.push_str("[^.]+"),
        }
        rest = &after[end + 1..];
    }
    out.push_str(&regex::escape(rest));
    out.push_str(")$");
    Regex::new(&out).ok()
}

#[derive(Debug)]
struct Route {
    api: usize,
    prefix: String,
    host: HostMatch,
}

/// A matched route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch<'a> {
    /// Index of the API in the snapshot.
    pub api: usize,
    /// The prefix that matched (the listen path or `/{api_id}/`).
    pub prefix: &'a str,
}

/// The routing table of one snapshot.
#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Builds the table for `apis` (indexes are positions in that slice).
    pub fn new(cfg: &Config, apis: &[&ApiSpec]) -> Self {
        let mut routes = Vec::with_capacity(apis.len() * 2);
        for (i, spec) in apis.iter().enumerate() {
            // Internal APIs are only reachable by Tyk's looping; APIs on another port
            // are not served on this one.
            if spec.internal || (spec.listen_port != 0 && spec.listen_port != cfg.listen_port) {
                continue;
            }
            let host =
                if cfg.enable_custom_domains && !spec.domain.is_empty() && !spec.domain_disabled {
                    HostMatch::new(&spec.domain)
                } else {
                    HostMatch::new(&cfg.hostname)
                };
            routes.push(Route {
                api: i,
                prefix: spec.listen_path.clone(),
                host: host.clone(),
            });
            if !spec.api_id.is_empty() {
                routes.push(Route {
                    api: i,
                    prefix: format!("/{}/", spec.api_id),
                    host,
                });
            }
        }
        // Stable: among equals, load order (file name order) decides, as in Tyk.
        routes.sort_by(|a, b| {
            b.host
                .constrained()
                .cmp(&a.host.constrained())
                .then(b.prefix.len().cmp(&a.prefix.len()))
        });
        Self { routes }
    }

    /// Finds the API for `host` (without port, any case) and `path`.
    pub fn find(&self, host: &str, path: &str) -> Option<RouteMatch<'_>> {
        let host = host.to_ascii_lowercase();
        self.routes
            .iter()
            .find(|r| r.host.matches(&host) && path_matches(&r.prefix, path))
            .map(|r| RouteMatch {
                api: r.api,
                prefix: &r.prefix,
            })
    }
}

/// gorilla's `PathPrefix`: a plain string prefix; a listen path with a trailing slash
/// also matches the path without it.
fn path_matches(prefix: &str, path: &str) -> bool {
    path.starts_with(prefix)
        || (prefix.len() > 1 && prefix.ends_with('/') && path == &prefix[..prefix.len() - 1])
}

/// The path to send upstream: the request path with the matched prefix removed when
/// the API strips its listen path (always for the `/{api_id}/` mount, as Tyk does).
pub fn upstream_path<'a>(spec: &ApiSpec, matched_prefix: &str, path: &'a str) -> &'a str {
    let mounted_by_id = matched_prefix != spec.listen_path;
    if !(spec.strip_listen_path || mounted_by_id) {
        return path;
    }
    let strip = matched_prefix.trim_end_matches('/');
    match path.strip_prefix(strip) {
        Some(rest) if rest.starts_with('/') => rest,
        Some("") => "/",
        Some(rest) => rest,
        None => path,
    }
}

/// The host part of a `Host` header or authority (no port, no brackets).
pub fn host_without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_templates() {
        let re = host_template_regex("{?:host1|host2}").unwrap();
        assert!(re.is_match("host1"));
        assert!(re.is_match("HOST2"));
        assert!(!re.is_match("host3"));
        let re = host_template_regex("{sub}.example.com").unwrap();
        assert!(re.is_match("api.example.com"));
        assert!(!re.is_match("a.b.example.com"));
        let re = host_template_regex("{n:[a-z]{2}}.x").unwrap();
        assert!(re.is_match("ab.x"));
        assert!(host_template_regex("{unclosed").is_none());
    }

    #[test]
    fn path_prefix_rules() {
        assert!(path_matches("/test/", "/test/a"));
        assert!(path_matches("/test/", "/test"));
        assert!(!path_matches("/test/", "/testing"));
        assert!(path_matches("/test", "/testing"));
        assert!(path_matches("/", "/anything"));
    }

    #[test]
    fn host_port_split() {
        assert_eq!(host_without_port("a.example:8443"), "a.example");
        assert_eq!(host_without_port("a.example"), "a.example");
        assert_eq!(host_without_port("[::1]:80"), "::1");
        assert_eq!(host_without_port("127.0.0.1"), "127.0.0.1");
    }
}
