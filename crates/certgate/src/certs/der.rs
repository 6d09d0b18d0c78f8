//! Just enough DER to recognise private-key containers (PKCS#1, PKCS#8, SEC1) and read a
//! SubjectPublicKeyInfo, without trusting any length in the input.
//!
//! Go's `tls.X509KeyPair` (which Tyk uses to accept a certificate with its key) ignores the PEM
//! label and tries PKCS#1, then PKCS#8, then SEC1 on the bytes; and Tyk stores every key under
//! the label `ENCRYPTED PRIVATE KEY` whatever its format. The format therefore has to be
//! recognised from the DER itself, which this module does structurally. The cryptographic
//! checks (is this a valid key, what is its public half) are left to aws-lc-rs.

/// `rsaEncryption` 1.2.840.113549.1.1.1
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// `id-ecPublicKey` 1.2.840.10045.2.1
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// `prime256v1` 1.2.840.10045.3.1.7
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `secp384r1` 1.3.132.0.34
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// `secp521r1` 1.3.132.0.35
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
/// `id-Ed25519` 1.3.101.112
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

const TAG_INTEGER: u8 = 0x02;
const TAG_BIT_STRING: u8 = 0x03;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_NULL: u8 = 0x05;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_CONTEXT_0: u8 = 0xa0;

/// A cursor over a sequence of DER TLVs.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub fn new(input: &'a [u8]) -> Self {
        Reader(input)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The tag of the next element, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.0.first().copied()
    }

    /// Reads the next element, whatever its tag: `(tag, contents)`.
    pub fn any(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        if tag & 0x1f == 0x1f {
            return None; // multi-byte tag numbers never occur here
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return None; // indefinite or absurd lengths
            }
            let (bytes, after) = (rest.get(..n)?, rest.get(n..)?);
            rest = after;
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        let contents = rest.get(..len)?;
        self.0 = rest.get(len..)?;
        Some((tag, contents))
    }

    /// Reads the next element, which must have tag `tag`.
    pub fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.any()? {
            (t, contents) if t == tag => Some(contents),
            _ => None,
        }
    }

    /// Reads an optional element with tag `tag`.
    pub fn optional(&mut self, tag: u8) -> Option<Option<&'a [u8]>> {
        if self.peek_tag() == Some(tag) {
            self.expect(tag).map(Some)
        } else {
            Some(None)
        }
    }
}

/// The contents of a single top-level SEQUENCE spanning all of `der`.
fn whole_sequence(der: &[u8]) -> Option<Reader<'_>> {
    let mut outer = Reader::new(der);
    let seq = outer.expect(TAG_SEQUENCE)?;
    outer.is_empty().then(|| Reader::new(seq))
}

/// A big-endian unsigned integer without leading zero bytes.
pub(crate) fn strip_leading_zeros(int: &[u8]) -> &[u8] {
    let start = int.iter().position(|&b| b != 0).unwrap_or(int.len());
    &int[start..]
}

/// An elliptic curve Go (and aws-lc-rs) supports for ECDSA keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn from_oid(oid: &[u8]) -> Option<Curve> {
        match oid {
            OID_P256 => Some(Curve::P256),
            OID_P384 => Some(Curve::P384),
            OID_P521 => Some(Curve::P521),
            _ => None,
        }
    }
}

/// The container format and algorithm of a private key, recognised from its DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFormat {
    /// `RSAPrivateKey` (PKCS#1); the modulus length in bytes (leading zeros stripped).
    Pkcs1Rsa { modulus_len: usize },
    /// PKCS#8 `PrivateKeyInfo` wrapping an RSA key.
    Pkcs8Rsa { modulus_len: usize },
    /// PKCS#8 wrapping an ECDSA key.
    Pkcs8Ec(Curve),
    /// PKCS#8 wrapping an Ed25519 key.
    Pkcs8Ed25519,
    /// `ECPrivateKey` (SEC1 / RFC 5915) naming its curve.
    Sec1Ec(Curve),
}

/// Why a private key's DER was not recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFormatError {
    /// Not PKCS#1, PKCS#8 or SEC1 (or a curve Go does not know).
    Unparseable,
    /// Well-formed PKCS#8 of an algorithm Go's TLS stack does not accept (Go:
    /// "tls: found unknown private key type in PKCS#8 wrapping").
    UnknownPkcs8Algorithm,
}

/// `RSAPrivateKey ::= SEQUENCE { version, n, e, d, p, q, dp, dq, qinv, ... }`: the length of n.
fn pkcs1_modulus_len(der: &[u8]) -> Option<usize> {
    let mut seq = whole_sequence(der)?;
    let _version = seq.expect(TAG_INTEGER)?;
    let n = seq.expect(TAG_INTEGER)?;
    for _ in 0..7 {
        seq.expect(TAG_INTEGER)?;
    }
    Some(strip_leading_zeros(n).len())
}

/// `ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING, [0] params, [1] pub }`:
/// the curve named by the parameters (or by `outer_curve` from a PKCS#8 wrapper).
fn sec1_curve(der: &[u8], outer_curve: Option<Curve>) -> Option<Curve> {
    let mut seq = whole_sequence(der)?;
    if seq.expect(TAG_INTEGER)? != [1] {
        return None;
    }
    seq.expect(TAG_OCTET_STRING)?;
    let named = match seq.optional(TAG_CONTEXT_0)? {
        Some(params) => {
            let mut p = Reader::new(params);
            Some(Curve::from_oid(p.expect(TAG_OID)?)?)
        }
        None => None,
    };
    match (named, outer_curve) {
        (Some(a), Some(b)) if a != b => None,
        (a, b) => a.or(b),
    }
}

/// Algorithm parameters: `(tag, contents)` of the optional element.
type Params<'a> = Option<(u8, &'a [u8])>;

/// `AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPTIONAL }`.
fn algorithm_identifier(contents: &[u8]) -> Option<(&[u8], Params<'_>)> {
    let mut r = Reader::new(contents);
    let oid = r.expect(TAG_OID)?;
    let params = if r.is_empty() { None } else { Some(r.any()?) };
    r.is_empty().then_some((oid, params))
}

/// PKCS#8 `PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, OCTET STRING, ... }`.
fn pkcs8_format(der: &[u8]) -> Option<Result<KeyFormat, KeyFormatError>> {
    let mut seq = whole_sequence(der)?;
    let version = seq.expect(TAG_INTEGER)?;
    if version != [0] && version != [1] {
        return None;
    }
    let (oid, params) = algorithm_identifier(seq.expect(TAG_SEQUENCE)?)?;
    let inner = seq.expect(TAG_OCTET_STRING)?;
    Some(match oid {
        OID_RSA => match pkcs1_modulus_len(inner) {
            Some(modulus_len) => Ok(KeyFormat::Pkcs8Rsa { modulus_len }),
            None => Err(KeyFormatError::Unparseable),
        },
        OID_EC => {
            let curve = match params {
                Some((TAG_OID, c)) => Curve::from_oid(c),
                _ => None,
            };
            match curve.and_then(|c| sec1_curve(inner, Some(c))) {
                Some(c) => Ok(KeyFormat::Pkcs8Ec(c)),
                None => Err(KeyFormatError::Unparseable),
            }
        }
        OID_ED25519 => match Reader::new(inner).expect(TAG_OCTET_STRING) {
            Some(seed) if seed.len() == 32 => Ok(KeyFormat::Pkcs8Ed25519),
            _ => Err(KeyFormatError::Unparseable),
        },
        _ => Err(KeyFormatError::UnknownPkcs8Algorithm),
    })
}

/// Recognises a private key's container, in Go's order: PKCS#1, PKCS#8, SEC1.
pub(crate) fn private_key_format(der: &[u8]) -> Result<KeyFormat, KeyFormatError> {
    if let Some(modulus_len) = pkcs1_modulus_len(der) {
        return Ok(KeyFormat::Pkcs1Rsa { modulus_len });
    }
    if let Some(result) = pkcs8_format(der) {
        return result;
    }
    match sec1_curve(der, None) {
        Some(curve) => Ok(KeyFormat::Sec1Ec(curve)),
        None => Err(KeyFormatError::Unparseable),
    }
}

/// The public key of a SubjectPublicKeyInfo, as far as key matching needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SpkiKey<'a> {
    /// RSA modulus and exponent, leading zeros stripped.
    Rsa { n: &'a [u8], e: &'a [u8] },
    /// An EC point (X9.62 encoding) on a known curve.
    Ec { curve: Curve, point: &'a [u8] },
    /// An Ed25519 public key.
    Ed25519(&'a [u8]),
    /// Any other algorithm (or an EC curve Go does not support).
    Other,
}

/// Parses `SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }`, which must
/// span all of `der`. `None` if it is malformed.
pub(crate) fn parse_spki(der: &[u8]) -> Option<SpkiKey<'_>> {
    let mut seq = whole_sequence(der)?;
    let (oid, params) = algorithm_identifier(seq.expect(TAG_SEQUENCE)?)?;
    let bits = seq.expect(TAG_BIT_STRING)?;
    if !seq.is_empty() {
        return None;
    }
    let (&unused, key) = bits.split_first()?;
    if unused != 0 {
        return None;
    }
    Some(match oid {
        OID_RSA => {
            if !matches!(params, None | Some((TAG_NULL, []))) {
                return None;
            }
            let mut rsa = whole_sequence(key)?;
            let n = strip_leading_zeros(rsa.expect(TAG_INTEGER)?);
            let e = strip_leading_zeros(rsa.expect(TAG_INTEGER)?);
            if !rsa.is_empty() || n.is_empty() || e.is_empty() {
                return None;
            }
            SpkiKey::Rsa { n, e }
        }
        OID_EC => match params {
            Some((TAG_OID, c)) => match Curve::from_oid(c) {
                Some(curve) => SpkiKey::Ec { curve, point: key },
                None => SpkiKey::Other,
            },
            _ => return None,
        },
        OID_ED25519 if key.len() == 32 => SpkiKey::Ed25519(key),
        OID_ED25519 => return None,
        _ => SpkiKey::Other,
    })
}

/// For tests: the inner key of a PKCS#8 `PrivateKeyInfo` (PKCS#1 for RSA, SEC1 for EC).
#[cfg(test)]
pub(crate) fn pkcs8_inner(der: &[u8]) -> Option<&[u8]> {
    let mut seq = whole_sequence(der)?;
    seq.expect(TAG_INTEGER)?;
    seq.expect(TAG_SEQUENCE)?;
    seq.expect(TAG_OCTET_STRING)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_rejects_bad_lengths() {
        assert!(Reader::new(&[0x30]).any().is_none());
        assert!(Reader::new(&[0x30, 0x80, 0, 0]).any().is_none());
        assert!(Reader::new(&[0x30, 0x85, 1, 1, 1, 1, 1]).any().is_none());
        assert!(Reader::new(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff])
            .any()
            .is_none());
        assert!(Reader::new(&[0x30, 0x03, 1]).any().is_none());
        assert!(Reader::new(&[0x1f, 0x01, 0]).any().is_none());
        assert_eq!(
            Reader::new(&[0x04, 0x81, 0x01, 7]).any(),
            Some((TAG_OCTET_STRING, &[7u8][..]))
        );
    }

    #[test]
    fn garbage_is_not_a_key() {
        for junk in [
            &b""[..],
            b"a",
            b"\x30\x00",
            b"\x30\x03\x02\x01\x00",
            &[0xff; 64],
        ] {
            assert_eq!(private_key_format(junk), Err(KeyFormatError::Unparseable));
            assert_eq!(parse_spki(junk), None);
        }
    }
}
