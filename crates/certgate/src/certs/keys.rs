//! Private keys: recognising them, checking one belongs to a certificate, and the legacy
//! OpenSSL PEM encryption Tyk stores them under.
//!
//! # Encryption at rest (Go's `x509.EncryptPEMBlock`)
//!
//! Tyk encrypts an uploaded private key with the deprecated RFC 1423 scheme Go still ships:
//! a random 16-byte IV; key = OpenSSL `EVP_BytesToKey(MD5, password, salt = IV[..8], 1 round)`
//! stretched to 32 bytes; AES-256-CBC with PKCS#7 padding over the key's original DER; PEM
//! headers `Proc-Type: 4,ENCRYPTED` and `DEK-Info: AES-256-CBC,<IV as hex>`. Go writes the IV
//! with `hex.EncodeToString`, i.e. **lowercase** hex (OpenSSL writes uppercase); we write
//! lowercase like Go and read either case. The block type is `ENCRYPTED PRIVATE KEY` even
//! though the body is not PKCS#8 `EncryptedPrivateKeyInfo`. The scheme is weak (one MD5 round)
//! but it is what Go gateways sharing the store read and write, so it is reproduced exactly.

use aws_lc_rs::cipher::{
    DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey, AES_128, AES_192, AES_256,
};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use md5::{Digest as _, Md5};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer, PrivatePkcs8KeyDer, PrivateSec1KeyDer};

use super::der::{self, Curve, KeyFormat, KeyFormatError, SpkiKey};
use super::CertError;
use crate::gocompat::pem::Block;

/// The PEM header marking an encrypted block.
const PROC_TYPE: &str = "Proc-Type";
/// The PEM header naming the cipher and IV.
const DEK_INFO: &str = "DEK-Info";
/// The cipher Tyk uses.
const TYK_CIPHER: &str = "AES-256-CBC";
/// Smallest and largest RSA moduli aws-lc-rs (and so rustls) can use, in bytes.
const RSA_MODULUS_BYTES: std::ops::RangeInclusive<usize> = 256..=1024;

fn format_error(e: KeyFormatError) -> CertError {
    match e {
        KeyFormatError::Unparseable => CertError::InvalidPrivateKey,
        KeyFormatError::UnknownPkcs8Algorithm => CertError::UnsupportedPrivateKeyType,
    }
}

/// Wraps private-key DER in the rustls type matching its container (PKCS#1, SEC1, PKCS#8),
/// recognised from the bytes; the PEM label is not trusted (Tyk stores every key as
/// `ENCRYPTED PRIVATE KEY`).
pub(crate) fn private_key_der(bytes: Vec<u8>) -> Result<PrivateKeyDer<'static>, CertError> {
    Ok(
        match der::private_key_format(&bytes).map_err(format_error)? {
            KeyFormat::Pkcs1Rsa { .. } => PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(bytes)),
            KeyFormat::Sec1Ec(_) => PrivateKeyDer::Sec1(PrivateSec1KeyDer::from(bytes)),
            KeyFormat::Pkcs8Rsa { .. } | KeyFormat::Pkcs8Ec(_) | KeyFormat::Pkcs8Ed25519 => {
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes))
            }
        },
    )
}

/// The public half of a validated private key.
enum PublicHalf {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Ec { curve: Curve, point: Vec<u8> },
    Ed25519(Vec<u8>),
}

fn ecdsa_alg(curve: Curve) -> &'static signature::EcdsaSigningAlgorithm {
    match curve {
        Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
    }
}

fn rsa_public(kp: &RsaKeyPair) -> Result<PublicHalf, CertError> {
    // RFC 8017 RSAPublicKey ::= SEQUENCE { n INTEGER, e INTEGER }
    let mut outer = der::Reader::new(kp.public_key().as_ref());
    let mut seq = outer
        .expect(0x30)
        .map(der::Reader::new)
        .ok_or(CertError::InvalidPrivateKey)?;
    let n = seq.expect(0x02).ok_or(CertError::InvalidPrivateKey)?;
    let e = seq.expect(0x02).ok_or(CertError::InvalidPrivateKey)?;
    Ok(PublicHalf::Rsa {
        n: der::strip_leading_zeros(n).to_vec(),
        e: der::strip_leading_zeros(e).to_vec(),
    })
}

fn check_rsa_size(modulus_len: usize) -> Result<(), CertError> {
    if RSA_MODULUS_BYTES.contains(&modulus_len) {
        Ok(())
    } else {
        Err(CertError::UnsupportedRsaKeySize {
            bits: modulus_len * 8,
        })
    }
}

/// Parses and validates a private key with aws-lc-rs (consistency checks included) and
/// returns its public half.
fn validated_public_half(key: &[u8]) -> Result<PublicHalf, CertError> {
    let invalid = |_| CertError::InvalidPrivateKey;
    match der::private_key_format(key).map_err(format_error)? {
        KeyFormat::Pkcs1Rsa { modulus_len } => {
            check_rsa_size(modulus_len)?;
            rsa_public(&RsaKeyPair::from_der(key).map_err(invalid)?)
        }
        KeyFormat::Pkcs8Rsa { modulus_len } => {
            check_rsa_size(modulus_len)?;
            rsa_public(&RsaKeyPair::from_pkcs8(key).map_err(invalid)?)
        }
        KeyFormat::Pkcs8Ec(curve) => {
            let kp = EcdsaKeyPair::from_pkcs8(ecdsa_alg(curve), key).map_err(invalid)?;
            Ok(PublicHalf::Ec {
                curve,
                point: kp.public_key().as_ref().to_vec(),
            })
        }
        KeyFormat::Sec1Ec(curve) => {
            let kp = EcdsaKeyPair::from_private_key_der(ecdsa_alg(curve), key).map_err(invalid)?;
            Ok(PublicHalf::Ec {
                curve,
                point: kp.public_key().as_ref().to_vec(),
            })
        }
        KeyFormat::Pkcs8Ed25519 => {
            let kp = Ed25519KeyPair::from_pkcs8_maybe_unchecked(key).map_err(invalid)?;
            Ok(PublicHalf::Ed25519(kp.public_key().as_ref().to_vec()))
        }
    }
}

/// Go's `tls.X509KeyPair` check: the private key `key` (DER, any supported container) belongs
/// to the certificate whose SubjectPublicKeyInfo is `leaf_spki`. Errors carry Go's messages.
pub(crate) fn check_key_pair(leaf_spki: &[u8], key: &[u8]) -> Result<(), CertError> {
    let public = validated_public_half(key)?;
    let leaf = der::parse_spki(leaf_spki).ok_or(CertError::UnknownPublicKeyAlgorithm)?;
    let matches = match (&leaf, &public) {
        (SpkiKey::Rsa { n, e }, PublicHalf::Rsa { n: kn, e: ke }) => n == kn && e == ke,
        (
            SpkiKey::Ec { curve, point },
            PublicHalf::Ec {
                curve: kc,
                point: kp,
            },
        ) => curve == kc && point == kp,
        (SpkiKey::Ed25519(pk), PublicHalf::Ed25519(kpk)) => pk == kpk,
        (SpkiKey::Other, _) => return Err(CertError::UnknownPublicKeyAlgorithm),
        _ => return Err(CertError::KeyTypeMismatch),
    };
    if matches {
        Ok(())
    } else {
        Err(CertError::KeyMismatch)
    }
}

/// OpenSSL's `EVP_BytesToKey` with MD5 and one round: D_i = MD5(D_{i-1} || password || salt),
/// concatenated until `len` bytes.
fn evp_bytes_to_key(password: &[u8], salt: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    let mut digest: Vec<u8> = Vec::new();
    while out.len() < len {
        let mut h = Md5::new();
        h.update(&digest);
        h.update(password);
        h.update(salt);
        digest = h.finalize().to_vec();
        out.extend_from_slice(&digest);
    }
    out.truncate(len);
    out
}

fn cipher_by_name(name: &str) -> Option<(&'static aws_lc_rs::cipher::Algorithm, usize)> {
    match name {
        "AES-256-CBC" => Some((&AES_256, 32)),
        "AES-192-CBC" => Some((&AES_192, 24)),
        "AES-128-CBC" => Some((&AES_128, 16)),
        _ => None,
    }
}

/// Go's `x509.EncryptPEMBlock(rand, block_type, data, password, PEMCipherAES256)`.
pub(crate) fn encrypt_pem_block(
    block_type: &str,
    data: &[u8],
    password: &[u8],
) -> Result<Block, CertError> {
    let mut iv = [0u8; 16];
    aws_lc_rs::rand::fill(&mut iv)
        .map_err(|_| CertError::Internal("random IV generation failed".into()))?;
    encrypt_with_iv(block_type, data, password, iv)
}

fn encrypt_with_iv(
    block_type: &str,
    data: &[u8],
    password: &[u8],
    iv: [u8; 16],
) -> Result<Block, CertError> {
    let internal = |_| CertError::Internal("AES-256-CBC encryption failed".into());
    let key = evp_bytes_to_key(password, &iv[..8], 32);
    let key = UnboundCipherKey::new(&AES_256, &key).map_err(internal)?;
    let key = PaddedBlockEncryptingKey::cbc_pkcs7(key).map_err(internal)?;
    let mut buf = data.to_vec();
    key.less_safe_encrypt(&mut buf, EncryptionContext::Iv128(iv.into()))
        .map_err(internal)?;
    Ok(Block {
        typ: block_type.to_string(),
        headers: vec![
            (PROC_TYPE.to_string(), "4,ENCRYPTED".to_string()),
            (
                DEK_INFO.to_string(),
                format!("{TYK_CIPHER},{}", hex::encode(iv)),
            ),
        ],
        bytes: buf,
    })
}

/// Whether `block` is encrypted (Go's `x509.IsEncryptedPEMBlock`: it has a `DEK-Info` header).
pub(crate) fn is_encrypted(block: &Block) -> bool {
    block.header(DEK_INFO).is_some()
}

/// Go's `x509.DecryptPEMBlock` for the AES modes; the IV hex may be in either case.
pub(crate) fn decrypt_pem_block(block: &Block, password: &[u8]) -> Result<Vec<u8>, CertError> {
    let bad = |what: &str| CertError::Encryption(what.to_string());
    let dek = block
        .header(DEK_INFO)
        .ok_or_else(|| bad("no DEK-Info header in block"))?;
    let (mode, iv_hex) = dek
        .split_once(',')
        .ok_or_else(|| bad("malformed DEK-Info header"))?;
    let (alg, key_len) = cipher_by_name(mode.trim())
        .ok_or_else(|| bad("unsupported encryption mode (AES-128/192/256-CBC are supported)"))?;
    let iv: [u8; 16] = hex::decode(iv_hex.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| bad("incorrect IV size"))?;
    if block.bytes.is_empty() || !block.bytes.len().is_multiple_of(16) {
        return Err(bad(
            "encrypted PEM data is not a multiple of the block size",
        ));
    }
    let key = evp_bytes_to_key(password, &iv[..8], key_len);
    let internal = |_| CertError::Internal("AES-CBC decryption setup failed".into());
    let key = UnboundCipherKey::new(alg, &key).map_err(internal)?;
    let key = PaddedBlockDecryptingKey::cbc_pkcs7(key).map_err(internal)?;
    let mut buf = block.bytes.clone();
    // A wrong password shows up as bad padding (or, rarely, as a key that does not parse).
    let plain = key
        .decrypt(&mut buf, DecryptionContext::Iv128(iv.into()))
        .map_err(|_| CertError::WrongPassword)?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evp_bytes_to_key_matches_openssl() {
        // D1 = MD5(password || salt), D2 = MD5(D1 || password || salt), key = D1 || D2.
        let salt = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let key = evp_bytes_to_key(b"password", &salt, 32);
        let d1 = Md5::digest([&b"password"[..], &salt].concat());
        let d2 = Md5::digest([&d1[..], b"password", &salt].concat());
        assert_eq!(&key[..16], &d1[..]);
        assert_eq!(&key[16..], &d2[..]);
        assert_eq!(evp_bytes_to_key(b"", &salt, 16).len(), 16);
        // Known answer from `openssl enc -aes-256-cbc -k password -S 0102030405060708 -md md5 -P`.
        assert_eq!(
            hex::encode_upper(&key),
            "E7B0971E52CA5CC8D0539FB3412F6316F7BA2E6EE293D9F3457B99436B51CE02"
        );
    }

    #[test]
    fn encrypt_decrypt_round_trip_and_header_format() {
        let data = b"0123456789abcdef-and-more".to_vec();
        let iv = [0xabu8; 16];
        let block = encrypt_with_iv("ENCRYPTED PRIVATE KEY", &data, b"secret", iv).unwrap();
        assert_eq!(block.header("Proc-Type"), Some("4,ENCRYPTED"));
        assert_eq!(
            block.header("DEK-Info"),
            Some("AES-256-CBC,abababababababababababababababab")
        );
        assert_eq!(block.bytes.len(), 32, "PKCS#7 pads 25 bytes to 32");
        assert_eq!(decrypt_pem_block(&block, b"secret").unwrap(), data);
        // Uppercase IV hex (OpenSSL style) is accepted too.
        let mut upper = block.clone();
        upper.headers[1].1 = "AES-256-CBC,ABABABABABABABABABABABABABABABAB".into();
        assert_eq!(decrypt_pem_block(&upper, b"secret").unwrap(), data);
    }

    #[test]
    fn decrypt_failures_are_errors() {
        let block = encrypt_pem_block("X", &[7u8; 100], b"right").unwrap();
        assert!(matches!(
            decrypt_pem_block(&block, b"wrong"),
            Err(CertError::WrongPassword) | Ok(_)
        ));
        let mut b = block.clone();
        b.headers[1].1 = "DES-EDE3-CBC,0011223344556677".into();
        assert!(matches!(
            decrypt_pem_block(&b, b"right"),
            Err(CertError::Encryption(_))
        ));
        b.headers[1].1 = "AES-256-CBC,00".into();
        assert!(decrypt_pem_block(&b, b"right").is_err());
        b.headers[1].1 = "AES-256-CBC".into();
        assert!(decrypt_pem_block(&b, b"right").is_err());
        let mut short = block.clone();
        short.bytes.truncate(15);
        assert!(decrypt_pem_block(&short, b"right").is_err());
        short.bytes.clear();
        assert!(decrypt_pem_block(&short, b"right").is_err());
    }
}
