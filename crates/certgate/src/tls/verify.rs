//! The client-certificate verifiers of the handshake, and the CA names their
//! CertificateRequest announces.
//!
//! Go announces the Subject of every certificate in `tls.Config.ClientCAs` whenever it
//! asks for a client certificate, whatever the mode; Tyk fills `ClientCAs` with the
//! static allow lists that apply to the SNI (§1.3). Clients holding several
//! certificates choose by these names, so they are sent on *request* connections too.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

/// The most bytes of CA names a CertificateRequest carries. The names share a 16-bit
/// length with the other fields of the message; a list that would not fit is not
/// announced at all (every client then offers its certificate), rather than cut.
pub const MAX_HINT_BYTES: usize = 32 * 1024;

/// The DER Subject names of `pool`, in pool order, each once: what Go announces for
/// `ClientCAs`. Unparsable entries are skipped; a list longer than
/// [`MAX_HINT_BYTES`] gives none.
pub fn hint_subjects(pool: &[CertificateDer<'_>]) -> Vec<Vec<u8>> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut bytes = 0usize;
    for c in pool {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(c.as_ref()) else {
            continue;
        };
        let raw = cert.subject().as_raw().to_vec();
        if raw.is_empty() || !seen.insert(raw.clone()) {
            continue;
        }
        bytes += 2 + raw.len();
        out.push(raw);
    }
    if bytes > MAX_HINT_BYTES {
        tracing::warn!(
            names = out.len(),
            bytes,
            "client CA names too long for a CertificateRequest; none announced"
        );
        return Vec::new();
    }
    out
}

fn names(hints: &[Vec<u8>]) -> Vec<DistinguishedName> {
    hints
        .iter()
        .map(|h| DistinguishedName::from(h.clone()))
        .collect()
}

fn bad_encoding() -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
}

/// A verifier with Go's `RequestClientCert` semantics: offer client auth, never require
/// it, accept any well-formed chain, but always verify the handshake signature.
#[derive(Debug)]
pub(super) struct RequestAnyClientCert {
    provider: Arc<CryptoProvider>,
    hints: Vec<DistinguishedName>,
}

impl RequestAnyClientCert {
    pub(super) fn new(provider: Arc<CryptoProvider>, hints: &[Vec<u8>]) -> Self {
        Self {
            provider,
            hints: names(hints),
        }
    }
}

impl ClientCertVerifier for RequestAnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Trust is decided per request; an unparsable leaf is refused here because no
        // request could ever be authorised with it (fail closed).
        if x509_parser::parse_x509_certificate(end_entity.as_ref()).is_err() {
            return Err(bad_encoding());
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Go's `RequireAndVerifyClientCert` over a pool: a leaf that *is* a pool entry (an
/// allow-listed certificate, CA-issued or self-signed) is accepted while valid; any
/// other leaf must chain to a pool entry with clientAuth usage. A leaf whose notBefore
/// is at most `skew` seconds ahead is treated as valid (Go has no allowance).
#[derive(Debug)]
pub(super) struct PoolVerifier {
    exact: HashSet<Vec<u8>>,
    chain: Arc<dyn ClientCertVerifier>,
    hints: Vec<DistinguishedName>,
    skew: i64,
}

impl PoolVerifier {
    pub(super) fn new(
        pool: &[CertificateDer<'static>],
        chain: Arc<dyn ClientCertVerifier>,
        hints: &[Vec<u8>],
        skew: i64,
    ) -> Self {
        Self {
            exact: pool.iter().map(|c| c.as_ref().to_vec()).collect(),
            chain,
            hints: names(hints),
            skew,
        }
    }
}

impl ClientCertVerifier for PoolVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let (_, cert) =
            x509_parser::parse_x509_certificate(end_entity.as_ref()).map_err(|_| bad_encoding())?;
        let t = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        let v = cert.validity();
        let not_before = v.not_before.timestamp();
        if not_before > t.saturating_add(self.skew) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidYet,
            ));
        }
        if self.exact.contains(end_entity.as_ref()) {
            if t > v.not_after.timestamp() {
                return Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Expired,
                ));
            }
            return Ok(ClientCertVerified::assertion());
        }
        // Within the allowance the chain is judged at the leaf's notBefore (later than
        // now, so nothing that has expired by now passes).
        let at = if not_before > t {
            UnixTime::since_unix_epoch(Duration::from_secs(not_before.max(0) as u64))
        } else {
            now
        };
        self.chain.verify_client_cert(end_entity, intermediates, at)
    }

    // Signature checks are the webpki verifier's (the same provider's algorithms).
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// Requires a client certificate and accepts none (an empty allow list).
#[derive(Debug)]
pub(super) struct RefuseAll;

impl ClientCertVerifier for RefuseAll {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ))
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "no client certificate is accepted".into(),
        ))
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General(
            "no client certificate is accepted".into(),
        ))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        super::provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.self_signed(&key).unwrap().der().clone()
    }

    fn subject(c: &CertificateDer<'_>) -> Vec<u8> {
        let (_, x) = x509_parser::parse_x509_certificate(c.as_ref()).unwrap();
        x.subject().as_raw().to_vec()
    }

    #[test]
    fn hints_are_pool_subjects_once_in_order() {
        let (a, b, a2) = (cert("a"), cert("b"), cert("a"));
        let bad = CertificateDer::from(vec![1u8, 2, 3]);
        let got = hint_subjects(&[b.clone(), bad, a.clone(), b.clone(), a2]);
        assert_eq!(got, vec![subject(&b), subject(&a)]);
        assert!(hint_subjects(&[]).is_empty());
    }

    #[test]
    fn hints_that_cannot_fit_a_certificate_request_are_not_sent() {
        let long = "x".repeat(60);
        let pool: Vec<_> = (0..(MAX_HINT_BYTES / 60 + 1))
            .map(|i| cert(&format!("{long}{i}")))
            .collect();
        assert!(hint_subjects(&pool).is_empty());
        assert_eq!(hint_subjects(&pool[..10]).len(), 10);
    }
}
