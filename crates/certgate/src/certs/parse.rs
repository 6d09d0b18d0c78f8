//! Turning PEM into a [`StoredCert`] (stored values and uploads) and a stored certificate into
//! Tyk's JSON shapes.

use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Map, Value};
use x509_parser::asn1_rs::Tag;
use x509_parser::extensions::GeneralName;
use x509_parser::x509::X509Name;

use super::{der, keys, CertError, MAX_PEM_BYTES};
use crate::gocompat::pem::{self, Block};

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) as unix seconds: the validity Tyk reports for
/// public-key entries.
pub const GO_ZERO_TIME: i64 = -62_135_596_800;

/// A distinguished name as Go's `crypto/x509/pkix.Name` holds it, for Tyk's JSON.
///
/// Go fills the typed fields from the well-known `2.5.4.x` attributes and lists every
/// attribute, in certificate order, in `Names`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistinguishedName {
    /// `C` (2.5.4.6).
    pub country: Vec<String>,
    /// `O` (2.5.4.10).
    pub organization: Vec<String>,
    /// `OU` (2.5.4.11).
    pub organizational_unit: Vec<String>,
    /// `L` (2.5.4.7).
    pub locality: Vec<String>,
    /// `ST` (2.5.4.8).
    pub province: Vec<String>,
    /// `street` (2.5.4.9).
    pub street_address: Vec<String>,
    /// `postalCode` (2.5.4.17).
    pub postal_code: Vec<String>,
    /// `serialNumber` (2.5.4.5); the last one wins, as in Go.
    pub serial_number: String,
    /// `CN` (2.5.4.3); the last one wins, as in Go.
    pub common_name: String,
    /// Every attribute: OID arcs and string value.
    pub names: Vec<(Vec<u64>, String)>,
}

/// A Go nil-able slice: `null` when empty.
fn go_slice(v: &[String]) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

impl DistinguishedName {
    fn from_x509(name: &X509Name<'_>) -> Self {
        let mut dn = DistinguishedName::default();
        for attr in name.iter_attributes() {
            let arcs: Vec<u64> = attr
                .attr_type()
                .iter()
                .map(|it| it.collect())
                .unwrap_or_default();
            let value = match attr.as_str() {
                Ok(s) => s.to_string(),
                Err(_) => decode_other_string(attr.attr_value().tag(), attr.as_slice()),
            };
            if let [2, 5, 4, t] = arcs[..] {
                match t {
                    3 => dn.common_name = value.clone(),
                    5 => dn.serial_number = value.clone(),
                    6 => dn.country.push(value.clone()),
                    7 => dn.locality.push(value.clone()),
                    8 => dn.province.push(value.clone()),
                    9 => dn.street_address.push(value.clone()),
                    10 => dn.organization.push(value.clone()),
                    11 => dn.organizational_unit.push(value.clone()),
                    17 => dn.postal_code.push(value.clone()),
                    _ => {}
                }
            }
            dn.names.push((arcs, value));
        }
        dn
    }

    /// The JSON Go's `encoding/json` produces for a `pkix.Name` (field order included).
    pub fn to_go_json(&self) -> Value {
        let names = if self.names.is_empty() {
            Value::Null
        } else {
            Value::Array(
                self.names
                    .iter()
                    .map(|(t, v)| json!({ "Type": t, "Value": v }))
                    .collect(),
            )
        };
        let mut m = Map::new();
        m.insert("Country".into(), go_slice(&self.country));
        m.insert("Organization".into(), go_slice(&self.organization));
        m.insert(
            "OrganizationalUnit".into(),
            go_slice(&self.organizational_unit),
        );
        m.insert("Locality".into(), go_slice(&self.locality));
        m.insert("Province".into(), go_slice(&self.province));
        m.insert("StreetAddress".into(), go_slice(&self.street_address));
        m.insert("PostalCode".into(), go_slice(&self.postal_code));
        m.insert("SerialNumber".into(), json!(self.serial_number));
        m.insert("CommonName".into(), json!(self.common_name));
        m.insert("Names".into(), names);
        m.insert("ExtraNames".into(), Value::Null);
        Value::Object(m)
    }
}

/// String types x509-parser's `as_str` leaves out: BMPString (UTF-16BE) and T61String (read
/// as Latin-1, like Go); anything else lossily as UTF-8.
fn decode_other_string(tag: Tag, bytes: &[u8]) -> String {
    match tag {
        Tag::BmpString => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        Tag::T61String => bytes.iter().map(|&b| char::from(b)).collect(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Formats unix seconds like Go's `time.Time` JSON for a UTC time with whole seconds.
pub fn go_time(unix: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(unix) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "0001-01-01T00:00:00Z".to_string(),
    }
}

/// Lowercase hex SHA-256.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha256(data))
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// What the store needs to know about one X.509 certificate.
#[derive(Debug, Clone)]
pub(crate) struct CertInfo {
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    pub issuer: DistinguishedName,
    pub subject: DistinguishedName,
    pub dns_names: Vec<String>,
    pub spki: Vec<u8>,
}

/// Parses one DER certificate (Go's `x509.ParseCertificate`, via x509-parser).
pub(crate) fn parse_certificate(der: &[u8]) -> Result<CertInfo, String> {
    let (rest, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err("trailing data".into());
    }
    let dns_names = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_string()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(format!("invalid subject alternative name: {e}")),
    };
    Ok(CertInfo {
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        is_ca: cert.is_ca(),
        issuer: DistinguishedName::from_x509(cert.issuer()),
        subject: DistinguishedName::from_x509(cert.subject()),
        dns_names,
        spki: cert.public_key().raw.to_vec(),
    })
}

/// A certificate-store entry, parsed: a certificate chain (optionally with its private key,
/// decrypted and kept in memory only) or a bare public key.
///
/// `Debug` never prints the private key, and no JSON produced from it contains key material.
pub struct StoredCert {
    /// The certificate ID (`org_id` + hex SHA-256), as it was looked up.
    pub id: String,
    /// The certificates in stored order; the first is the leaf. Empty for a public key.
    pub chain: Vec<CertificateDer<'static>>,
    /// The private key, when one was uploaded with the certificate.
    pub private_key: Option<PrivateKeyDer<'static>>,
    /// SubjectPublicKeyInfo DER, for a public-key-only entry.
    pub public_key_only: Option<Vec<u8>>,
    /// Tyk's cached fingerprint (§3.5): hex SHA-256 of the **last** certificate block; `""`
    /// for a public key. The static allow list compares presented certificates with it.
    pub fingerprint: String,
    /// SHA-256 of the first block's DER (the leaf certificate, or the public key).
    pub leaf_sha256: [u8; 32],
    /// Leaf NotBefore, unix seconds ([`GO_ZERO_TIME`] for a public key).
    pub not_before: i64,
    /// Leaf NotAfter, unix seconds ([`GO_ZERO_TIME`] for a public key).
    pub not_after: i64,
    /// Whether the leaf has basicConstraints `CA:TRUE`.
    pub is_ca: bool,
    /// Leaf issuer.
    pub issuer: DistinguishedName,
    /// Leaf subject (`CN=Public Key: <sha256>` for a public key, as Tyk reports it).
    pub subject: DistinguishedName,
    /// Leaf DNS subject alternative names.
    pub dns_names: Vec<String>,
    /// The CA flag of every certificate in `chain` (false where it does not parse).
    chain_is_ca: Vec<bool>,
}

impl Clone for StoredCert {
    fn clone(&self) -> Self {
        StoredCert {
            id: self.id.clone(),
            chain: self.chain.clone(),
            private_key: self.private_key.as_ref().map(|k| k.clone_key()),
            public_key_only: self.public_key_only.clone(),
            fingerprint: self.fingerprint.clone(),
            leaf_sha256: self.leaf_sha256,
            not_before: self.not_before,
            not_after: self.not_after,
            is_ca: self.is_ca,
            issuer: self.issuer.clone(),
            subject: self.subject.clone(),
            dns_names: self.dns_names.clone(),
            chain_is_ca: self.chain_is_ca.clone(),
        }
    }
}

impl std::fmt::Debug for StoredCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredCert")
            .field("id", &self.id)
            .field("chain_len", &self.chain.len())
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .field("public_key_only", &self.public_key_only.is_some())
            .field("fingerprint", &self.fingerprint)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("is_ca", &self.is_ca)
            .field("subject_cn", &self.subject.common_name)
            .finish_non_exhaustive()
    }
}

impl StoredCert {
    /// Whether a private key is stored with the certificate.
    pub fn has_private_key(&self) -> bool {
        self.private_key.is_some()
    }

    /// Lowercase hex of [`Self::leaf_sha256`]: the ID without its org prefix.
    pub fn leaf_sha256_hex(&self) -> String {
        hex::encode(self.leaf_sha256)
    }

    /// Tyk's `CertificateMeta` (`GET /tyk/certs/{id}`), fields in Tyk's order: `id`,
    /// `fingerprint`, `has_private`, `issuer`, `subject` (Go `pkix.Name` JSON), `not_before`,
    /// `not_after` (RFC 3339 like Go's `time.Time`), `dns_names` (omitted when empty), `is_ca`.
    pub fn meta_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("fingerprint".into(), json!(self.fingerprint));
        m.insert("has_private".into(), json!(self.has_private_key()));
        m.insert("issuer".into(), self.issuer.to_go_json());
        m.insert("subject".into(), self.subject.to_go_json());
        m.insert("not_before".into(), json!(go_time(self.not_before)));
        m.insert("not_after".into(), json!(go_time(self.not_after)));
        if !self.dns_names.is_empty() {
            m.insert("dns_names".into(), json!(self.dns_names));
        }
        m.insert("is_ca".into(), json!(self.is_ca));
        Value::Object(m)
    }

    /// Tyk's `CertificateBasics` (`GET /tyk/certs?mode=detailed`): `id`, `issuer_cn`,
    /// `subject_cn`, `dns_names` (array or `null`), `has_private`, `not_before`, `not_after`,
    /// `is_ca`.
    pub fn basics_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("issuer_cn".into(), json!(self.issuer.common_name));
        m.insert("subject_cn".into(), json!(self.subject.common_name));
        m.insert("dns_names".into(), go_slice(&self.dns_names));
        m.insert("has_private".into(), json!(self.has_private_key()));
        m.insert("not_before".into(), json!(go_time(self.not_before)));
        m.insert("not_after".into(), json!(go_time(self.not_after)));
        m.insert("is_ca".into(), json!(self.is_ca));
        Value::Object(m)
    }

    /// The certificates this entry contributes to a handshake CA pool or a CA-based static
    /// allow list (Tyk's `CertPool`, §3.7): nothing for a public key; a single certificate
    /// itself; for a chain, only the CA-flagged certificates after the first.
    pub fn trust_anchors(&self) -> Vec<CertificateDer<'static>> {
        match self.chain.len() {
            0 => Vec::new(),
            1 => self.chain.clone(),
            _ => self
                .chain
                .iter()
                .zip(&self.chain_is_ca)
                .skip(1)
                .filter(|(_, &ca)| ca)
                .map(|(c, _)| c.clone())
                .collect(),
        }
    }
}

/// Decodes PEM, turning bad base64 into a [`CertError`].
pub(crate) fn decode_pem(data: &[u8]) -> Result<Vec<Block>, CertError> {
    if data.len() > MAX_PEM_BYTES {
        return Err(CertError::TooLarge {
            size: data.len(),
            limit: MAX_PEM_BYTES,
        });
    }
    pem::decode_all(data).map_err(|e| CertError::Pem {
        index: e.index,
        block_type: e.typ,
        reason: e.reason,
    })
}

/// Parses any stored or uploaded PEM into a [`StoredCert`] with ID `id`, the way Tyk reads a
/// certificate-store value (`ParsePEMCertificate`): blocks with a `DEK-Info` header are
/// decrypted with `password` (and lose the `ENCRYPTED ` type prefix); `CERTIFICATE` blocks form
/// the chain and the last one sets the fingerprint; a `*PRIVATE KEY` block is the key; a
/// `PUBLIC KEY` block makes a public-key entry. Expiry is not checked here.
pub fn parse_stored(id: &str, pem: &[u8], password: &str) -> Result<StoredCert, CertError> {
    let mut chain: Vec<CertificateDer<'static>> = Vec::new();
    let mut key: Option<PrivateKeyDer<'static>> = None;
    let mut public: Option<Vec<u8>> = None;
    for mut block in decode_pem(pem)? {
        if keys::is_encrypted(&block) {
            block.bytes = keys::decrypt_pem_block(&block, password.as_bytes())?;
            block.typ = block.typ.replacen("ENCRYPTED ", "", 1);
        }
        if block.typ == "CERTIFICATE" {
            chain.push(CertificateDer::from(block.bytes));
        } else if block.typ.ends_with("PRIVATE KEY") {
            key = Some(keys::private_key_der(block.bytes)?);
        } else if block.typ == "PUBLIC KEY" {
            public = Some(block.bytes);
        }
    }
    match (chain.is_empty(), public) {
        (true, None) => Err(CertError::NoCertificateBlock),
        (false, Some(_)) => Err(CertError::PublicKeyWithCertificates),
        (true, Some(_)) if key.is_some() => Err(CertError::KeyWithoutCertificate),
        (true, Some(spki)) => public_key_entry(id, spki),
        (false, None) => certificate_entry(id, chain, key),
    }
}

fn public_key_entry(id: &str, spki: Vec<u8>) -> Result<StoredCert, CertError> {
    if der::parse_spki(&spki).is_none() {
        return Err(CertError::InvalidPublicKey);
    }
    let leaf_sha256 = sha256(&spki);
    let subject = DistinguishedName {
        common_name: format!("Public Key: {}", hex::encode(leaf_sha256)),
        ..DistinguishedName::default()
    };
    Ok(StoredCert {
        id: id.to_string(),
        chain: Vec::new(),
        private_key: None,
        public_key_only: Some(spki),
        fingerprint: String::new(),
        leaf_sha256,
        not_before: GO_ZERO_TIME,
        not_after: GO_ZERO_TIME,
        is_ca: false,
        issuer: DistinguishedName::default(),
        subject,
        dns_names: Vec::new(),
        chain_is_ca: Vec::new(),
    })
}

fn certificate_entry(
    id: &str,
    chain: Vec<CertificateDer<'static>>,
    private_key: Option<PrivateKeyDer<'static>>,
) -> Result<StoredCert, CertError> {
    let (Some(first), Some(last)) = (chain.first(), chain.last()) else {
        return Err(CertError::NoCertificateBlock);
    };
    let leaf = parse_certificate(first)
        .map_err(|reason| CertError::InvalidCertificate { index: 1, reason })?;
    let chain_is_ca = std::iter::once(leaf.is_ca)
        .chain(
            chain[1..]
                .iter()
                .map(|c| parse_certificate(c).is_ok_and(|i| i.is_ca)),
        )
        .collect();
    Ok(StoredCert {
        id: id.to_string(),
        fingerprint: sha256_hex(last),
        leaf_sha256: sha256(first),
        not_before: leaf.not_before,
        not_after: leaf.not_after,
        is_ca: leaf.is_ca,
        issuer: leaf.issuer,
        subject: leaf.subject,
        dns_names: leaf.dns_names,
        chain,
        private_key,
        public_key_only: None,
        chain_is_ca,
    })
}

/// The result of validating an upload: the ID without the org prefix and the value to store.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub id_hash: String,
    pub value: String,
}

/// Validates an upload exactly as Tyk's `GetCertIDAndChainPEM` does (same checks, same order,
/// same messages) and builds the stored value (§3.2). `now` is unix seconds.
pub(crate) fn prepare_upload(data: &[u8], secret: &str, now: i64) -> Result<Prepared, CertError> {
    let blocks = decode_pem(data)?;
    let mut key: Option<&Block> = None;
    let mut certs: Vec<(&Block, CertInfo)> = Vec::new();
    let mut public: Option<&Block> = None;
    for (i, block) in blocks.iter().enumerate() {
        if block.typ.ends_with("PRIVATE KEY") {
            if key.is_some() {
                return Err(CertError::MultiplePrivateKeys);
            }
            key = Some(block);
        } else if block.typ == "CERTIFICATE" {
            let info = parse_certificate(&block.bytes).map_err(|reason| {
                CertError::InvalidCertificate {
                    index: i + 1,
                    reason,
                }
            })?;
            if info.not_after < now {
                return Err(CertError::Expired);
            }
            certs.push((block, info));
        } else if block.typ == "PUBLIC KEY" {
            public = Some(block); // Go keeps the last one
        }
    }
    let Some((leaf_block, leaf)) = certs.first() else {
        let Some(public) = public else {
            return Err(CertError::NoCertificate);
        };
        if key.is_some() {
            return Err(CertError::KeyWithoutCertificate);
        }
        if der::parse_spki(&public.bytes).is_none() {
            return Err(CertError::InvalidPublicKey);
        }
        return Ok(Prepared {
            id_hash: sha256_hex(&public.bytes),
            value: pem::encode(&Block::new("PUBLIC KEY", public.bytes.clone())),
        });
    };
    if public.is_some() {
        return Err(CertError::PublicKeyWithCertificates);
    }
    // Certificates are re-encoded without headers (a stray DEK-Info header on a certificate
    // would make every reader try to decrypt it) and joined with a blank line.
    let mut value = certs
        .iter()
        .map(|(b, _)| pem::encode(&Block::new("CERTIFICATE", b.bytes.clone())))
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(key) = key {
        keys::check_key_pair(&leaf.spki, &key.bytes)?;
        let encrypted =
            keys::encrypt_pem_block("ENCRYPTED PRIVATE KEY", &key.bytes, secret.as_bytes())?;
        value.push('\n');
        value.push_str(&pem::encode(&encrypted));
    }
    Ok(Prepared {
        id_hash: sha256_hex(&leaf_block.bytes),
        value,
    })
}
