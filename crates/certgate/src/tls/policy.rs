//! Which client-certificate policy a handshake gets (Tyk's `getTLSConfigForClient`,
//! §1.3), computed once per snapshot for every domain the APIs name.
//!
//! Per domain, Tyk's mode map: a static-mTLS API asks to *require and verify* (4), a
//! certificate-auth API to *request* (1), any other API marks "no certificate here"
//! (-1); mixing kinds on one domain downgrades to request. Require-and-verify is done
//! in the handshake only on connections that are not Gateway API connections (a
//! separate `control_api_port`, or a `control_api_hostname` other than the SNI);
//! otherwise the static allow list is enforced per request. The Gateway API itself
//! requires a verified certificate when `security.control_api_use_mutual_tls` is on.
//!
//! Whenever a certificate is asked for, the CertificateRequest names the Subjects of
//! the pool Tyk builds for the SNI (its `ClientCAs`, announced by Go in every mode):
//! the allow lists of the static APIs on that domain, or on no domain when none names
//! it; the Gateway API's list on its mTLS connections; nothing with
//! `skip_client_ca_announcement`.

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use regex::Regex;
use rustls::pki_types::CertificateDer;
use rustls::ServerConfig;

use super::{hint_subjects, TlsSettings};
use crate::apidef::ApiSpec;
use crate::config::Config;
use crate::router::host_template_regex;
use crate::tls::trust::AllowList;

/// What a handshake asks of the client.
#[derive(Debug, Clone)]
pub enum HandshakeAuth {
    /// No client certificate is requested.
    None,
    /// A certificate is requested; any (or none) is accepted; requests decide
    /// (prebuilt config, announcing the SNI's CA names).
    Request(Arc<ServerConfig>),
    /// A certificate chaining to the pool is required (prebuilt config).
    Require(Arc<ServerConfig>),
}

/// A handshake policy and an id that is equal for equal policies (used to refuse a
/// request whose Host selects another policy than the connection's SNI did).
#[derive(Debug, Clone)]
pub struct Decision {
    /// What the handshake asks.
    pub auth: HandshakeAuth,
    /// Equal for equal policies.
    pub policy: u64,
}

/// The per-snapshot table.
#[derive(Debug)]
pub struct ClientAuthTable {
    by_domain: HashMap<String, Decision>,
    templates: Vec<(Regex, Decision)>,
    default: Decision,
    control: Decision,
}

fn policy_id(kind: u8, pool: &[CertificateDer<'_>]) -> u64 {
    let mut h = DefaultHasher::new();
    kind.hash(&mut h);
    let set: BTreeSet<&[u8]> = pool.iter().map(|c| c.as_ref()).collect();
    set.hash(&mut h);
    h.finish()
}

impl ClientAuthTable {
    /// Builds the table for the APIs served on the gateway port. `tls` is None on a
    /// plain-HTTP gateway (then every decision is `None`).
    pub fn new(
        cfg: &Config,
        apis: &[(&ApiSpec, Option<&AllowList>)],
        control_pool: &[CertificateDer<'static>],
        tls: Option<&TlsSettings>,
    ) -> Self {
        let on_port: Vec<&(&ApiSpec, Option<&AllowList>)> = apis
            .iter()
            .filter(|(s, _)| s.listen_port == 0 || s.listen_port == cfg.listen_port)
            .collect();
        // Tyk's mode map (raw domain, even when disabled).
        let mut modes: HashMap<String, i8> = HashMap::new();
        for (spec, _) in &on_port {
            let m = modes.entry(spec.domain.to_ascii_lowercase()).or_insert(0);
            if spec.use_mutual_tls_auth {
                *m = if *m == 0 || *m == 4 { 4 } else { 1 };
            } else if spec.handshake_use_certificate {
                if *m < 1 {
                    *m = 1;
                }
            } else if *m <= 0 {
                *m = -1;
            } else {
                *m = 1;
            }
        }
        // The CA pool for an SNI: the static APIs on that exact domain, or, when none
        // names it, the static APIs without a domain.
        let pool_for = |domain: &str| -> Vec<CertificateDer<'static>> {
            let direct = on_port.iter().any(|(s, _)| {
                s.use_mutual_tls_auth && s.domain.eq_ignore_ascii_case(domain) && !domain.is_empty()
            });
            let mut pool = Vec::new();
            for (spec, list) in &on_port {
                let counts = if direct {
                    spec.domain.eq_ignore_ascii_case(domain)
                } else {
                    spec.domain.is_empty()
                };
                if spec.use_mutual_tls_auth && counts {
                    if let Some(l) = list {
                        pool.extend(l.pool.iter().cloned());
                    }
                }
            }
            pool
        };
        let opts = &cfg.http_server_options;
        let skip_hints = opts.skip_client_ca_announcement;
        let control_mtls = cfg.security.control_api_use_mutual_tls;
        let hints_of = |pool: &[CertificateDer<'static>]| -> Vec<Vec<u8>> {
            if skip_hints {
                Vec::new()
            } else {
                hint_subjects(pool)
            }
        };
        let none = Decision {
            auth: HandshakeAuth::None,
            policy: 0,
        };
        let require = |pool: Vec<CertificateDer<'static>>| -> Decision {
            match tls {
                Some(t) => Decision {
                    policy: policy_id(4, &pool),
                    auth: HandshakeAuth::Require(t.require_config(&pool, &hints_of(&pool))),
                },
                None => none.clone(),
            }
        };
        // Request configs differ only in their CA names; domains share them.
        let request_configs: RefCell<HashMap<Vec<Vec<u8>>, Arc<ServerConfig>>> = RefCell::default();
        let request = |sni: &str| -> Decision {
            let Some(t) = tls else {
                return none.clone();
            };
            let hints = hints_of(&pool_for(sni));
            let config = request_configs
                .borrow_mut()
                .entry(hints)
                .or_insert_with_key(|h| t.request_config(h))
                .clone();
            Decision {
                auth: HandshakeAuth::Request(config),
                policy: 1,
            }
        };
        // Gateway API connections on this port (§1.3 step 2).
        let is_control = |sni: &str| {
            cfg.control_api_port == 0
                && (cfg.control_api_hostname.is_empty()
                    || cfg.control_api_hostname.eq_ignore_ascii_case(sni))
        };
        let decide = |sni: &str, mode: i8| -> Decision {
            if is_control(sni) && control_mtls {
                return require(control_pool.to_vec());
            }
            if skip_hints && mode != 4 {
                return request(sni);
            }
            match mode {
                4 if is_control(sni) => request(sni),
                4 => require(pool_for(sni)),
                m if m >= 1 => request(sni),
                _ => none.clone(),
            }
        };
        let default_mode = modes.get("").copied().unwrap_or(0);
        let mut by_domain = HashMap::new();
        for (d, m) in &modes {
            if d.contains('{') {
                continue;
            }
            let mode = if *m == 0 { default_mode } else { *m };
            by_domain.insert(d.clone(), decide(d, mode));
        }
        let hostname = cfg.control_api_hostname.to_ascii_lowercase();
        if !hostname.is_empty() && !by_domain.contains_key(&hostname) {
            by_domain.insert(hostname.clone(), decide(&hostname, default_mode));
        }
        let templates = modes
            .iter()
            .filter(|(d, _)| d.contains('{'))
            .filter_map(|(d, m)| host_template_regex(d).map(|re| (re, decide(d, *m))))
            .collect();
        let control = if control_mtls {
            require(control_pool.to_vec())
        } else {
            none.clone()
        };
        Self {
            default: decide("", default_mode),
            by_domain,
            templates,
            control,
        }
    }

    /// The policy for a handshake on the gateway port with this SNI (no SNI: the
    /// APIs without a domain).
    pub fn decide(&self, sni: Option<&str>) -> &Decision {
        let Some(sni) = sni.filter(|s| !s.is_empty()) else {
            return &self.default;
        };
        if let Some(d) = self.by_domain.get(sni) {
            return d;
        }
        let lower = sni.to_ascii_lowercase();
        if let Some(d) = self.by_domain.get(&lower) {
            return d;
        }
        self.templates
            .iter()
            .filter(|(re, _)| re.is_match(&lower))
            .map(|(_, d)| d)
            .max_by_key(|d| match d.auth {
                HandshakeAuth::None => 0,
                HandshakeAuth::Request(_) => 1,
                HandshakeAuth::Require(_) => 2,
            })
            .unwrap_or(&self.default)
    }

    /// The policy for a handshake on the separate Gateway API port.
    pub fn control(&self) -> &Decision {
        &self.control
    }
}
