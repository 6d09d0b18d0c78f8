//! The trust check: static allow lists (Tyk's CertificateCheckMW, §1.6): `use_mutual_tls_auth` with
//! `client_certificates`, plus the global `security.certificates.apis`.
//!
//! Resolved once per snapshot from the certificate store (or file paths / inline PEM),
//! so the request path only hashes nothing and looks up a fingerprint. Changes are
//! announced (a reload follows), and every node also re-reads its lists periodically
//! ([`AllowList::is_current`]), so a certificate removed without an announcement (e.g.
//! by a Tyk node, which publishes nothing for certificates) stops being allowed too.
//!
//! Where Tyk's code contradicts its documented promise we keep the promise
//! (docs/compatibility.md): only the presented **leaf** is matched — a client cannot
//! pass by appending a public copy of an allow-listed certificate to its own chain —
//! and CA entries verify the leaf's chain (the client's other certificates are only
//! intermediates) with the clientAuth key usage.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;

use super::PeerCert;
use crate::certs::{CertManager, StoredCert};
use crate::errors::{ProxyError, Refusal};

/// A resolved allow list.
#[derive(Debug, Default)]
pub struct AllowList {
    /// SHA-256 of each entry's certificate (its ID certificate) → its NotAfter.
    fingerprints: HashMap<[u8; 32], i64>,
    /// Verifies a leaf against the CA entries (None when there are none).
    ca_verifier: Option<Arc<dyn ClientCertVerifier>>,
    /// Trust anchors for a handshake-level pool (Tyk's CA pool rule, §3.7).
    pub pool: Vec<CertificateDer<'static>>,
    /// The entries, as configured.
    entries: Vec<String>,
    /// Per entry, a digest of what it resolved to (None: not loaded).
    resolved: Vec<Option<[u8; 32]>>,
}

/// SHA-256 over an entry's certificates and NotAfter: equal digests, equal entries.
fn digest(cert: &StoredCert) -> [u8; 32] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for c in &cert.chain {
        ctx.update(&(c.len() as u64).to_be_bytes());
        ctx.update(c);
    }
    ctx.update(&cert.not_after.to_be_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

impl AllowList {
    /// Resolves `entries` (store IDs, file paths or inline PEM). Entries that cannot
    /// be loaded are skipped, as Tyk does.
    pub async fn resolve(certs: &CertManager, entries: &[String]) -> Self {
        let mut list = AllowList {
            entries: entries.to_vec(),
            ..AllowList::default()
        };
        let mut cas: Vec<CertificateDer<'static>> = Vec::new();
        for entry in entries {
            let Some(cert) = load_entry(certs, entry).await else {
                tracing::warn!(entry = %short(entry), "allow-list entry cannot be loaded; skipped");
                list.resolved.push(None);
                continue;
            };
            list.resolved.push(Some(digest(&cert)));
            if cert.chain.is_empty() {
                continue; // a public key is not a client certificate
            }
            list.fingerprints.insert(cert.leaf_sha256, cert.not_after);
            list.pool.extend(cert.trust_anchors());
            cas.extend(ca_anchors(&cert));
        }
        if !cas.is_empty() {
            let mut roots = rustls::RootCertStore::empty();
            for ca in cas {
                let _ = roots.add(ca);
            }
            list.ca_verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), super::provider())
                    .build()
                    .ok();
        }
        list
    }

    /// Whether every entry still resolves to what it did when the list was built:
    /// `Some(false)` when one changed (a reload is due), `None` when the certificate
    /// store cannot answer now (nothing is concluded). Logs nothing.
    /// `memo` holds what entries resolved to in this pass (lists share entries).
    pub async fn is_current(
        &self,
        certs: &CertManager,
        memo: &mut HashMap<String, Option<[u8; 32]>>,
    ) -> Option<bool> {
        for (entry, was) in self.entries.iter().zip(&self.resolved) {
            let now = match memo.get(entry) {
                Some(d) => *d,
                None => {
                    let d = match certs.resolve(entry).await {
                        Ok(found) => found.as_ref().map(digest),
                        Err(e) if e.is_client_error() => None,
                        Err(_) => return None,
                    };
                    memo.insert(entry.clone(), d);
                    d
                }
            };
            if now != *was {
                return Some(false);
            }
        }
        Some(true)
    }

    /// True if nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty() && self.ca_verifier.is_none()
    }

    /// CertificateCheckMW: the request's TLS state and client certificate against
    /// this list at `now` (unix seconds). A certificate whose notBefore is more than
    /// `skew` seconds ahead is refused as not yet valid (Tyk ignores notBefore on a
    /// fingerprint match).
    pub fn check(
        &self,
        tls: bool,
        peer: Option<&PeerCert>,
        now: i64,
        skew: i64,
    ) -> Result<(), ProxyError> {
        if !tls {
            return Err(ProxyError::from(Refusal::TlsNotEnabled));
        }
        let Some(peer) = peer else {
            return Err(ProxyError::from(Refusal::ClientTlsRequired));
        };
        let early = peer.not_yet_valid(now, skew);
        if let Some(&not_after) = self.fingerprints.get(&peer.sha256) {
            if now > not_after {
                return Err(ProxyError::from(Refusal::CertificateExpired));
            }
            if early {
                return Err(ProxyError::from(Refusal::CertificateNotYetValid));
            }
            return Ok(());
        }
        if let Some(v) = &self.ca_verifier {
            // A leaf not valid yet is judged at its notBefore (never earlier than
            // now): allowed then ⇒ "not yet valid" (or, within the allowance, allowed
            // now), else "not allowed".
            let at = now.max(peer.not_before).max(0) as u64;
            let unix = UnixTime::since_unix_epoch(std::time::Duration::from_secs(at));
            if v.verify_client_cert(&peer.der, &peer.chain, unix).is_ok() {
                if early {
                    return Err(ProxyError::from(Refusal::CertificateNotYetValid));
                }
                return Ok(());
            }
        }
        Err(Refusal::CertificateNotAllowed(peer.sha256_hex.to_string()).into())
    }
}

/// The certificates of an entry that act as CAs for a leaf: a single certificate with
/// the CA flag, or the CA-flagged certificates after the first in a stored chain.
fn ca_anchors(cert: &StoredCert) -> Vec<CertificateDer<'static>> {
    if cert.chain.len() == 1 {
        if cert.is_ca {
            return cert.chain.clone();
        }
        return Vec::new();
    }
    cert.trust_anchors()
}

/// An entry is a store ID, inline PEM or a file path (resolved in Tyk's order).
async fn load_entry(certs: &CertManager, entry: &str) -> Option<StoredCert> {
    match certs.resolve(entry).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e, "allow-list entry could not be loaded");
            None
        }
    }
}

fn short(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
