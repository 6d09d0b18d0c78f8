//! TLS termination: server certificates chosen by SNI, the client-certificate policy
//! decided per ClientHello, and the peer certificate facts computed once per connection.
//!
//! rustls picks the *certificate* through [`ResolvesServerCert`], but whether to ask for
//! a client certificate cannot depend on SNI there, so the listener reads the
//! ClientHello first (`LazyConfigAcceptor`) and then hands the handshake one of the
//! prebuilt [`ServerConfig`]s of the current [`TlsSettings`]. Nothing is built per
//! connection.
//!
//! Certificate Authentication only *requests* a client certificate (Tyk's
//! `RequestClientCert`): the chain is not verified in the handshake — the decision is
//! made per request against the certificate store — but the client's CertificateVerify
//! signature is always checked, so a peer certificate on a connection proves possession
//! of its private key.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::config::{Config, TLS12, TLS13};

pub mod policy;
pub mod trust;
mod verify;

pub use policy::{ClientAuthTable, Decision, HandshakeAuth};
pub use verify::{hint_subjects, MAX_HINT_BYTES};
use verify::{PoolVerifier, RefuseAll, RequestAnyClientCert};

/// Why TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("{what} {path}: {source}")]
    Read {
        /// What the file is.
        what: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// PEM data holds no usable certificate or key.
    #[error("{0}")]
    Pem(String),
    /// rustls refused the certificate/key pair or the settings.
    #[error("{0}")]
    Rustls(String),
}

/// The process-wide crypto provider (aws-lc-rs), passed explicitly to every config.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// Facts about the client certificate, computed once when the handshake completes and
/// shared by every request on the connection.
#[derive(Debug)]
pub struct PeerCert {
    /// DER of the leaf certificate.
    pub der: CertificateDer<'static>,
    /// DER of the rest of the chain the client sent.
    pub chain: Vec<CertificateDer<'static>>,
    /// SHA-256 of the leaf DER.
    pub sha256: [u8; 32],
    /// Lowercase hex of `sha256`.
    pub sha256_hex: String,
    /// NotAfter, unix seconds.
    pub not_after: i64,
    /// NotBefore, unix seconds.
    pub not_before: i64,
    /// Subject DN as text.
    pub subject: String,
}

impl PeerCert {
    /// True if the certificate's notBefore is more than `skew` seconds after `now`
    /// (unix seconds): it is not valid yet, even allowing for clock skew.
    pub fn not_yet_valid(&self, now: i64, skew: i64) -> bool {
        self.not_before > now.saturating_add(skew)
    }
}

impl PeerCert {
    /// Parses the leaf of a chain the handshake accepted. `None` if it cannot be parsed
    /// (the verifier already refuses such chains, so this is defensive).
    pub fn from_chain(chain: &[CertificateDer<'_>]) -> Option<Self> {
        let (leaf, rest) = chain.split_first()?;
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf.as_ref());
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(digest.as_ref());
        Some(Self {
            der: leaf.clone().into_owned(),
            chain: rest.iter().map(|c| c.clone().into_owned()).collect(),
            sha256,
            sha256_hex: hex::encode(sha256),
            not_after: cert.validity().not_after.timestamp(),
            not_before: cert.validity().not_before.timestamp(),
            subject: cert.subject().to_string(),
        })
    }
}

/// Server certificates by SNI name, with Go's selection rules: exact (lower-cased)
/// name, then `*.parent` wildcard, then the first certificate.
#[derive(Debug, Default)]
pub struct CertStore {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    all: Vec<Arc<CertifiedKey>>,
}

impl CertStore {
    /// Adds a certificate, registered under `names` (lower-cased) in addition to being a
    /// fallback candidate.
    pub fn add(&mut self, key: Arc<CertifiedKey>, names: &[String]) {
        for n in names {
            if !n.is_empty() {
                self.by_name
                    .entry(n.to_ascii_lowercase())
                    .or_insert_with(|| key.clone());
            }
        }
        self.all.push(key);
    }

    /// True if there is no certificate at all.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The certificate for `sni`.
    pub fn lookup(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = sni {
            let name = name.to_ascii_lowercase();
            if let Some(k) = self.by_name.get(&name) {
                return Some(k.clone());
            }
            if let Some((_, parent)) = name.split_once('.') {
                if let Some(k) = self.by_name.get(&format!("*.{parent}")) {
                    return Some(k.clone());
                }
            }
        }
        self.all.first().cloned()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.lookup(hello.server_name())
    }
}

/// Loads a PEM certificate chain and private key into a rustls [`CertifiedKey`], and
/// returns the names (CN and DNS SANs of the leaf) it can be selected by.
pub fn certified_key_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<(Arc<CertifiedKey>, Vec<String>), TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem(format!("malformed certificate PEM: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError::Pem("no CERTIFICATE block found".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| TlsError::Pem(format!("no usable private key: {e}")))?;
    let signing = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Rustls(format!("unsupported private key: {e}")))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match()
        .map_err(|e| TlsError::Rustls(format!("certificate and private key do not match: {e}")))?;
    let names = leaf_names(&ck.cert[0]);
    Ok((Arc::new(ck), names))
}

/// A server certificate from the certificate store (it must hold a private key).
pub fn certified_key_from_stored(
    stored: &crate::certs::StoredCert,
) -> Option<(Arc<CertifiedKey>, Vec<String>)> {
    let key = stored.private_key.as_ref()?.clone_key();
    let signing = provider().key_provider.load_private_key(key).ok()?;
    let ck = CertifiedKey::new(stored.chain.clone(), signing);
    ck.keys_match().ok()?;
    let names = leaf_names(ck.cert.first()?);
    Some((Arc::new(ck), names))
}

fn leaf_names(leaf: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf.as_ref()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push((*d).to_owned());
            }
        }
    }
    names
}

/// Everything the listener needs for handshakes, rebuilt with each snapshot.
pub struct TlsSettings {
    certs: Arc<CertStore>,
    provider: Arc<CryptoProvider>,
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
    alpn: Vec<Vec<u8>>,
    session_storage: Arc<dyn rustls::server::StoresServerSessions>,
    resumption: bool,
    not_before_skew: i64,
    no_client_auth: Arc<ServerConfig>,
    request_client_cert: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings").finish_non_exhaustive()
    }
}

impl TlsSettings {
    /// Builds the server configs from the configured server certificates.
    /// `session_storage` is shared across snapshots so reloads keep resumption working.
    pub fn build(
        cfg: &Config,
        certs: CertStore,
        session_storage: Arc<dyn rustls::server::StoresServerSessions>,
    ) -> Result<Self, TlsError> {
        let opts = &cfg.http_server_options;
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
            (TLS12, &rustls::version::TLS12),
            (TLS13, &rustls::version::TLS13),
        ]
        .into_iter()
        .filter(|(n, _)| *n >= opts.min_version && *n <= opts.max_version)
        .map(|(_, v)| v)
        .collect();
        let alpn: Vec<Vec<u8>> = if opts.enable_http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        let provider = filtered_provider(&opts.ssl_ciphers);
        let mut s = Self {
            certs: Arc::new(certs),
            request_client_cert: placeholder(),
            no_client_auth: placeholder(),
            provider,
            versions,
            alpn,
            session_storage,
            resumption: opts.session_resumption,
            not_before_skew: cfg.security.client_cert_not_before_skew,
        };
        s.no_client_auth = s.make(None)?;
        let request: Arc<dyn ClientCertVerifier> =
            Arc::new(RequestAnyClientCert::new(s.provider.clone(), &[]));
        s.request_client_cert = s.make(Some(request))?;
        Ok(s)
    }

    fn make(
        &self,
        verifier: Option<Arc<dyn ClientCertVerifier>>,
    ) -> Result<Arc<ServerConfig>, TlsError> {
        let builder = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&self.versions)
            .map_err(|e| TlsError::Rustls(e.to_string()))?;
        let builder = match verifier {
            Some(v) => builder.with_client_cert_verifier(v),
            None => builder.with_no_client_auth(),
        };
        let mut sc = builder.with_cert_resolver(self.certs.clone());
        sc.alpn_protocols = self.alpn.clone();
        if self.resumption {
            sc.session_storage = self.session_storage.clone();
        } else {
            sc.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            sc.send_tls13_tickets = 0;
        }
        Ok(Arc::new(sc))
    }

    /// A config that requests any client certificate (Go's `RequestClientCert`) and
    /// announces `hints` (DER Subject names, see [`hint_subjects`]) as acceptable CAs.
    pub fn request_config(&self, hints: &[Vec<u8>]) -> Arc<ServerConfig> {
        if hints.is_empty() {
            return self.request_client_cert.clone();
        }
        let verifier: Arc<dyn ClientCertVerifier> =
            Arc::new(RequestAnyClientCert::new(self.provider.clone(), hints));
        // Building cannot fail once the defaults built (same provider and versions).
        self.make(Some(verifier))
            .unwrap_or_else(|_| self.request_client_cert.clone())
    }

    /// A config that requires a client certificate chaining to `pool` (a self-signed
    /// allow-listed certificate is its own anchor), with clientAuth usage. An empty
    /// pool refuses every certificate. The CertificateRequest announces `hints`.
    pub fn require_config(
        &self,
        pool: &[CertificateDer<'static>],
        hints: &[Vec<u8>],
    ) -> Arc<ServerConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in pool {
            let _ = roots.add(c.clone());
        }
        let verifier: Arc<dyn ClientCertVerifier> = if roots.is_empty() {
            Arc::new(RefuseAll)
        } else {
            let b = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                self.provider.clone(),
            );
            match b.build() {
                Ok(v) => Arc::new(PoolVerifier::new(pool, v, hints, self.not_before_skew)),
                Err(e) => {
                    tracing::error!(error = %e, "client CA pool unusable; refusing all certificates");
                    Arc::new(RefuseAll)
                }
            }
        };
        // Building cannot fail once the defaults built (same provider and versions).
        self.make(Some(verifier))
            .unwrap_or_else(|_| self.no_client_auth.clone())
    }

    /// The server config for a handshake decision.
    pub fn server_config(&self, auth: &HandshakeAuth) -> Arc<ServerConfig> {
        match auth {
            HandshakeAuth::None => self.no_client_auth.clone(),
            HandshakeAuth::Request(c) | HandshakeAuth::Require(c) => c.clone(),
        }
    }

    /// True if a handshake for `sni` would find a server certificate.
    pub fn has_certificate_for(&self, sni: Option<&str>) -> bool {
        self.certs.lookup(sni).is_some()
    }
}

/// A stand-in config used only while [`TlsSettings::build`] fills in the real ones.
fn placeholder() -> Arc<ServerConfig> {
    Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            // Invariant: aws-lc-rs implements every default protocol version.
            .expect("aws-lc-rs supports the default TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(CertStore::default())),
    )
}

/// A provider restricted to the named cipher suites (Go names; unknown names are
/// skipped as Tyk does). An empty list, or a list with no known name, keeps the
/// defaults.
fn filtered_provider(names: &[String]) -> Arc<CryptoProvider> {
    let base = provider();
    if names.is_empty() {
        return base;
    }
    let wanted: Vec<String> = names.iter().map(|n| n.to_ascii_uppercase()).collect();
    // Go applies the list to TLS 1.2 only; TLS 1.3 suites always stay.
    let suites: Vec<_> = base
        .cipher_suites
        .iter()
        .filter(|s| {
            let name = format!("{:?}", s.suite());
            s.version() == &rustls::version::TLS13 || wanted.contains(&name)
        })
        .copied()
        .collect();
    if !suites
        .iter()
        .any(|s| s.version() == &rustls::version::TLS12)
    {
        return base;
    }
    let mut p = (*base).clone();
    p.cipher_suites = suites;
    Arc::new(p)
}

/// A fatal `unrecognized_name` alert record (TLS 1.2 framing, accepted by 1.3
/// clients before encryption starts): sent when no server certificate exists for a
/// handshake, as Go answers.
pub const UNRECOGNIZED_NAME_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70];

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(names: &[&str]) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn certificate_selection_follows_go() {
        let (c1, k1) = self_signed(&["a.example"]);
        let (c2, k2) = self_signed(&["*.wild.example"]);
        let mut store = CertStore::default();
        let (a, an) = certified_key_from_pem(c1.as_bytes(), k1.as_bytes()).unwrap();
        let (w, wn) = certified_key_from_pem(c2.as_bytes(), k2.as_bytes()).unwrap();
        assert!(an.contains(&"a.example".to_string()));
        store.add(a.clone(), &an);
        store.add(w.clone(), &wn);
        assert!(Arc::ptr_eq(&store.lookup(Some("A.Example")).unwrap(), &a));
        assert!(Arc::ptr_eq(
            &store.lookup(Some("x.wild.example")).unwrap(),
            &w
        ));
        assert!(Arc::ptr_eq(&store.lookup(Some("other")).unwrap(), &a));
        assert!(Arc::ptr_eq(&store.lookup(None).unwrap(), &a));
        assert!(CertStore::default().lookup(Some("a")).is_none());
    }

    #[test]
    fn mismatched_key_is_refused() {
        let (c1, _) = self_signed(&["a"]);
        let (_, k2) = self_signed(&["b"]);
        let err = certified_key_from_pem(c1.as_bytes(), k2.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("do not match"), "{err}");
        let err = certified_key_from_pem(b"garbage", k2.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("no CERTIFICATE"), "{err}");
    }

    #[test]
    fn peer_cert_facts() {
        let (c, _) = self_signed(&["client"]);
        let der = CertificateDer::from_pem_slice(c.as_bytes()).unwrap();
        let p = PeerCert::from_chain(std::slice::from_ref(&der)).unwrap();
        assert_eq!(p.sha256_hex.len(), 64);
        assert!(p.not_after > p.not_before);
        // notBefore with an allowance: at most `skew` seconds early is valid.
        assert!(!p.not_yet_valid(p.not_before, 0));
        assert!(p.not_yet_valid(p.not_before - 1, 0));
        assert!(!p.not_yet_valid(p.not_before - 60, 60));
        assert!(p.not_yet_valid(p.not_before - 61, 60));
        assert!(!p.not_yet_valid(i64::MAX, i64::MAX));
        assert!(PeerCert::from_chain(&[]).is_none());
        assert!(PeerCert::from_chain(&[CertificateDer::from(vec![1u8, 2, 3])]).is_none());
    }
}
