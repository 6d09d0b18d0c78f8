//! A small PKI generated at run time (rcgen): the demo's CA, server and client
//! certificates, and the test suites' certificates. Nothing here is ever committed.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// A generated certificate and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    /// Certificate PEM.
    pub cert_pem: String,
    /// PKCS#8 private key PEM.
    pub key_pem: String,
    /// Certificate DER.
    pub der: Vec<u8>,
}

impl Issued {
    /// Lowercase hex SHA-256 of the DER (Tyk's certificate fingerprint).
    pub fn sha256_hex(&self) -> String {
        hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &self.der,
        ))
    }
}

/// A certificate authority able to issue server and client certificates.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    /// The CA's own certificate.
    pub cert: Issued,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

/// Errors from certificate generation.
pub type PkiResult<T> = Result<T, rcgen::Error>;

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "certgate");
    dn
}

impl Ca {
    /// A new self-signed ECDSA P-256 CA valid for ten years.
    pub fn new(cn: &str) -> PkiResult<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name = dn(cn);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::days(1);
        params.not_after = now + Duration::days(3650);
        let cert = params.self_signed(&key)?;
        let issued = Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        };
        Ok(Self {
            params,
            key,
            cert: issued,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn issue_with(
        &self,
        key: KeyPair,
        cn: &str,
        sans: Vec<String>,
        eku: ExtendedKeyUsagePurpose,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> PkiResult<Issued> {
        let mut params = CertificateParams::new(sans)?;
        params.distinguished_name = dn(cn);
        params.extended_key_usages = vec![eku];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = not_before;
        params.not_after = not_after;
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        })
    }

    fn issue(
        &self,
        cn: &str,
        sans: Vec<String>,
        eku: ExtendedKeyUsagePurpose,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> PkiResult<Issued> {
        self.issue_with(KeyPair::generate()?, cn, sans, eku, not_before, not_after)
    }

    /// A client certificate with an RSA-2048 key, valid for a year.
    pub fn client_rsa(&self, cn: &str) -> PkiResult<Issued> {
        let now = OffsetDateTime::now_utc();
        self.issue_with(
            KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)?,
            cn,
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
            now - Duration::days(1),
            now + Duration::days(365),
        )
    }

    /// A server certificate for `names` (DNS names or IP literals), valid for a year.
    pub fn server(&self, names: &[&str]) -> PkiResult<Issued> {
        let now = OffsetDateTime::now_utc();
        self.issue(
            names.first().copied().unwrap_or("localhost"),
            names.iter().map(|s| s.to_string()).collect(),
            ExtendedKeyUsagePurpose::ServerAuth,
            now - Duration::days(1),
            now + Duration::days(365),
        )
    }

    /// A client certificate with common name `cn`, valid for a year.
    pub fn client(&self, cn: &str) -> PkiResult<Issued> {
        let now = OffsetDateTime::now_utc();
        self.client_valid(cn, now - Duration::days(1), now + Duration::days(365))
    }

    /// A client certificate with an explicit validity period (e.g. already expired).
    pub fn client_valid(
        &self,
        cn: &str,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
    ) -> PkiResult<Issued> {
        self.issue(
            cn,
            Vec::new(),
            ExtendedKeyUsagePurpose::ClientAuth,
            not_before,
            not_after,
        )
    }
}

/// A self-signed client certificate (not issued by any CA), valid from `not_before`
/// to `not_after`.
pub fn self_signed_client(
    cn: &str,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> PkiResult<Issued> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = dn(cn);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = not_before;
    params.not_after = not_after;
    let cert = params.self_signed(&key)?;
    Ok(Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    })
}
