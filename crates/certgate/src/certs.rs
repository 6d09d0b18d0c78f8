//! The certificate store (Tyk's certificate manager): `/tyk/certs` semantics over the
//! [`Store`], in Tyk's exact Redis layout so Go gateways and certgate can share one Redis.
//!
//! # Layout (spec §2.1, §2.6, §3)
//!
//! - **ID** = `org_id` given at upload + lowercase hex SHA-256 of the first `CERTIFICATE`
//!   block's DER, or of the SubjectPublicKeyInfo DER for a `PUBLIC KEY` upload.
//! - **Value** at `cert-raw-<ID>` (string, no TTL): each certificate re-encoded as PEM
//!   (64-column base64, LF), blocks joined by an extra LF; if a private key was uploaded, LF
//!   and an `ENCRYPTED PRIVATE KEY` block: the key's DER under Go's legacy
//!   `x509.EncryptPEMBlock` (AES-256-CBC, MD5 `EVP_BytesToKey`, `DEK-Info` IV in lowercase
//!   hex as Go writes it; see `certs/keys.rs`) keyed by `private_certificate_encoding_secret`
//!   (or the gateway `secret`). A public key is stored as its `PUBLIC KEY` PEM. Go gateways
//!   read these values directly, which is why the legacy scheme is kept byte-compatible.
//! - **Org index** `cert-<org>-index`: a list of `raw-<ID>` (RPUSH on add, LREM on delete),
//!   plus the `cert-<org>-index-migrated` flag Tyk sets once it has scanned an org.
//!
//! Uploads are validated like Tyk's `GetCertIDAndChainPEM` (same checks, order and messages):
//! every certificate parses and is not expired (NotBefore is not checked), at most one private
//! key and it must belong to the leaf, or a single public key. Nothing is written unless all
//! of it is valid.
//!
//! # Deliberate differences from Tyk
//!
//! - `list_ids("")` returns every ID on every call (Tyk returns them once, then `null`
//!   forever, §11.1-13) and writes nothing, so it does not switch Go gateways sharing the
//!   store into that state either.
//! - The legacy scan of `cert-raw-<org>*` only accepts `<org>` + 64 hex digits, so org `1`
//!   no longer picks up org `12`'s certificates.
//! - A well-framed PEM block with broken base64 is refused instead of skipped; RSA keys must
//!   be 2048–8192 bits (what aws-lc-rs, and so rustls, can use); certificates are stored
//!   without PEM headers; a `PUBLIC KEY` must be a valid SubjectPublicKeyInfo; an upload is
//!   bounded to [`MAX_PEM_BYTES`].
//! - `add` writes with `SET NX`, so two concurrent uploads of one certificate cannot both
//!   succeed.
//!
//! There is no in-process cache here (Tyk caches parsed entries for 5 minutes); callers on
//! hot paths (static allow lists, handshake CA pools) should cache what they build.

mod der;
mod keys;
mod parse;
use crate::gocompat::pem;
#[cfg(test)]
mod tests;

use std::path::Path;

use crate::store::{Store, StoreError};

pub use parse::{go_time, parse_stored, DistinguishedName, StoredCert, GO_ZERO_TIME};

/// Largest PEM accepted for an upload or read back from the store: 1 MiB.
pub const MAX_PEM_BYTES: usize = 1 << 20;

/// Key prefix of stored certificates (`cert-raw-<ID>`).
const RAW_PREFIX: &str = "cert-raw-";

/// An error from the certificate store. `Display` is Tyk's message wherever Tyk has one, so
/// the Gateway API can return it verbatim (as a 403 for uploads).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// A `CERTIFICATE` block's NotAfter is in the past.
    #[error("certificate is expired")]
    Expired,
    /// More than one `*PRIVATE KEY` block.
    #[error("Found multiple private keys")]
    MultiplePrivateKeys,
    /// No `CERTIFICATE` and no `PUBLIC KEY` block in an upload.
    #[error("Failed to decode certificate. It should be PEM encoded.")]
    NoCertificate,
    /// No `CERTIFICATE` and no `PUBLIC KEY` block in a stored value.
    #[error("Can't find CERTIFICATE block")]
    NoCertificateBlock,
    /// Certificates and a `PUBLIC KEY` in one upload.
    #[error("Public keys can't be combined with certificates")]
    PublicKeyWithCertificates,
    /// A private key with a public key but no certificate (Go's `tls.X509KeyPair` message).
    #[error(
        "tls: failed to find \"CERTIFICATE\" PEM block in certificate input after skipping \
         PEM blocks of the following types: [PUBLIC KEY]"
    )]
    KeyWithoutCertificate,
    /// The private key is valid but belongs to another certificate.
    #[error("tls: private key does not match public key")]
    KeyMismatch,
    /// The private key's algorithm differs from the leaf certificate's.
    #[error("tls: private key type does not match public key type")]
    KeyTypeMismatch,
    /// The leaf's public key algorithm is not RSA, ECDSA (P-256/384/521) or Ed25519.
    #[error("tls: unknown public key algorithm")]
    UnknownPublicKeyAlgorithm,
    /// The private key is not PKCS#1, PKCS#8 or SEC1, or is not a valid key.
    #[error("tls: failed to parse private key")]
    InvalidPrivateKey,
    /// PKCS#8 of an algorithm other than RSA, ECDSA or Ed25519.
    #[error("tls: found unknown private key type in PKCS#8 wrapping")]
    UnsupportedPrivateKeyType,
    /// An RSA private key outside 2048–8192 bits.
    #[error("unsupported RSA private key size {bits} bits: 2048 to 8192 bits are supported")]
    UnsupportedRsaKeySize {
        /// The modulus size.
        bits: usize,
    },
    /// A `CERTIFICATE` block that is not an X.509 certificate.
    #[error("x509: failed to parse certificate in PEM block {index}: {reason}")]
    InvalidCertificate {
        /// 1-based position of the PEM block.
        index: usize,
        /// What was wrong.
        reason: String,
    },
    /// A `PUBLIC KEY` block that is not a SubjectPublicKeyInfo.
    #[error("x509: failed to parse public key: not a valid SubjectPublicKeyInfo")]
    InvalidPublicKey,
    /// A PEM block whose body is not valid base64.
    #[error("PEM block {index} ({block_type}) is not valid base64: {reason}")]
    Pem {
        /// 1-based position of the PEM block.
        index: usize,
        /// Its type.
        block_type: String,
        /// What the decoder said.
        reason: String,
    },
    /// The input is larger than [`MAX_PEM_BYTES`].
    #[error("certificate data is {size} bytes; at most {limit} bytes are accepted")]
    TooLarge {
        /// Input size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// `cert-raw-<ID>` already exists.
    #[error("Certificate with {0} id already exists")]
    AlreadyExists(String),
    /// An encrypted block could not be decrypted with the configured secret.
    #[error("x509: decryption password incorrect")]
    WrongPassword,
    /// An encrypted block's headers are malformed or name an unsupported cipher.
    #[error("x509: {0}")]
    Encryption(String),
    /// A local cryptographic failure (random numbers, cipher setup). Not the client's fault.
    #[error("certificate store internal error: {0}")]
    Internal(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CertError {
    /// Whether the error is about the input (Tyk answers uploads with 403) rather than a
    /// failure of the gateway itself (store or local crypto failure: 500).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, CertError::Store(_) | CertError::Internal(_))
    }
}

/// The certificate manager: add, read, list and delete certificate-store entries.
#[derive(Clone)]
pub struct CertManager {
    store: Store,
    /// `private_certificate_encoding_secret`, or the gateway `secret` when that is empty.
    secret: String,
}

impl std::fmt::Debug for CertManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertManager")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

fn raw_key(id: &str) -> String {
    format!("{RAW_PREFIX}{id}")
}

fn index_key(org: &str) -> String {
    format!("cert-{org}-index")
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Whether `id` is `org` followed by 64 lowercase hex digits.
fn is_org_id(id: &str, org: &str) -> bool {
    id.strip_prefix(org)
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

impl CertManager {
    /// A manager over `store`; `encoding_secret` encrypts private keys at rest (Tyk:
    /// `security.private_certificate_encoding_secret`, or `secret` if that is empty).
    pub fn new(store: Store, encoding_secret: String) -> Self {
        CertManager {
            store,
            secret: encoding_secret,
        }
    }

    /// `POST /tyk/certs?org_id=<org>`: validates `pem` (§3.1), stores it at `cert-raw-<ID>`
    /// with no TTL and, for a non-empty org, appends `raw-<ID>` to `cert-<org>-index`.
    /// Returns the ID. Nothing is written unless the whole input is valid.
    pub async fn add(&self, pem: &[u8], org: &str) -> Result<String, CertError> {
        let prepared = parse::prepare_upload(pem, &self.secret, now_unix())?;
        let id = format!("{org}{}", prepared.id_hash);
        let key = raw_key(&id);
        if !self.store.set_nx(&key, &prepared.value, None).await? {
            // Tyk treats an empty value as absent; anything else is a duplicate.
            match self.store.get(&key).await? {
                Some(v) if v.is_empty() => self.store.set(&key, &prepared.value, None).await?,
                _ => return Err(CertError::AlreadyExists(id)),
            }
        }
        if !org.is_empty() {
            if let Err(e) = self
                .store
                .list_push(&index_key(org), &format!("raw-{id}"))
                .await
            {
                // Best effort: do not leave an unindexed entry behind a failed add.
                let _ = self.store.delete(&key).await;
                return Err(e.into());
            }
        }
        Ok(id)
    }

    /// The raw stored value of `id` (Tyk's `GetRaw`: an uncached read of `cert-raw-<id>`).
    /// A key holding a non-string is treated as absent, as Tyk's `GET` error would be.
    pub async fn get_raw(&self, id: &str) -> Result<Option<String>, CertError> {
        match self.store.get(&raw_key(id)).await {
            Ok(v) => Ok(v),
            Err(StoreError::WrongType { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `id` is in the store (uncached). Certificate authentication calls this on every
    /// request, which makes deleting a certificate an immediate revocation.
    pub async fn exists(&self, id: &str) -> Result<bool, CertError> {
        // A GET, not EXISTS: a non-string value is "absent", as Tyk's GET error is.
        Ok(self.get_raw(id).await?.is_some())
    }

    /// The parsed entry `id` (private key decrypted, in memory only); `None` if absent.
    /// A stored value that does not parse is an error.
    pub async fn get(&self, id: &str) -> Result<Option<StoredCert>, CertError> {
        match self.get_raw(id).await? {
            Some(v) => parse_stored(id, v.as_bytes(), &self.secret).map(Some),
            None => Ok(None),
        }
    }

    /// Resolves a certificate reference the way API definitions use them (Tyk's `List`,
    /// §3.7): an inline PEM (anything containing `-----BEGIN `; surrounding whitespace, CRLF
    /// and newlines collapsed to spaces are tolerated), else a store ID, else a file path.
    /// `None` when nothing was found. An inline PEM's ID is the hex SHA-256 of its first block.
    pub async fn resolve(&self, reference: &str) -> Result<Option<StoredCert>, CertError> {
        if reference.contains("-----BEGIN ") {
            return parse_inline(reference, &self.secret).map(Some);
        }
        if let Some(cert) = self.get(reference).await? {
            return Ok(Some(cert));
        }
        if reference.is_empty() {
            return Ok(None);
        }
        let path = Path::new(reference);
        let size = match tokio::fs::metadata(path).await {
            Ok(m) if m.is_file() => m.len(),
            _ => return Ok(None),
        };
        if size > MAX_PEM_BYTES as u64 {
            return Err(CertError::TooLarge {
                size: usize::try_from(size).unwrap_or(usize::MAX),
                limit: MAX_PEM_BYTES,
            });
        }
        match tokio::fs::read(path).await {
            Ok(data) => parse_stored(reference, &data, &self.secret).map(Some),
            Err(_) => Ok(None),
        }
    }

    /// `GET /tyk/certs?org_id=<org>`: the IDs of `org`, in a stable order.
    ///
    /// For a non-empty org: the `cert-<org>-index` list (insertion order, duplicates dropped)
    /// if it exists; else nothing if `cert-<org>-index-migrated` exists; else a scan of
    /// `cert-raw-<org>…` (sorted), which is written to the index; then the migrated flag is
    /// set (as Tyk does). For org `""`: every ID in the store, sorted, on every call, with no
    /// writes (deliberately not Tyk's "only the first call" quirk).
    pub async fn list_ids(&self, org: &str) -> Result<Vec<String>, CertError> {
        if org.is_empty() {
            return self.scan_ids("").await;
        }
        let index = index_key(org);
        let migrated = format!("{index}-migrated");
        let ids = if self.store.exists(&index).await? {
            let mut seen = std::collections::HashSet::new();
            self.store
                .list_range(&index)
                .await?
                .into_iter()
                .map(|e| e.strip_prefix("raw-").map(str::to_string).unwrap_or(e))
                .filter(|id| seen.insert(id.clone()))
                .collect()
        } else if self.store.exists(&migrated).await? {
            Vec::new()
        } else {
            let ids = self.scan_ids(org).await?;
            for id in &ids {
                self.store.list_push(&index, &format!("raw-{id}")).await?;
            }
            ids
        };
        self.store.set(&migrated, "1", None).await?;
        Ok(ids)
    }

    /// IDs of `cert-raw-<org>…` keys that are `<org>` + 64 hex digits, sorted.
    async fn scan_ids(&self, org: &str) -> Result<Vec<String>, CertError> {
        let mut ids: Vec<String> = self
            .store
            .keys_with_prefix(&raw_key(org))
            .await?
            .into_iter()
            .filter_map(|k| k.strip_prefix(RAW_PREFIX).map(str::to_string))
            .filter(|id| org.is_empty() || is_org_id(id, org))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// `DELETE /tyk/certs/{id}[?org_id=<org>]`: removes `raw-<id>` from the org index and
    /// deletes `cert-raw-<id>`. Succeeds whether or not anything existed.
    ///
    /// The org is `org` when given and non-empty, else (as Tyk does) `id` minus its last 64
    /// characters when `id` is at least 64 characters long.
    pub async fn delete(&self, id: &str, org: Option<&str>) -> Result<(), CertError> {
        let org = match org {
            Some(o) if !o.is_empty() => o,
            _ => id
                .len()
                .checked_sub(64)
                .and_then(|n| id.get(..n))
                .unwrap_or_default(),
        };
        if !org.is_empty() {
            self.store
                .list_remove(&index_key(org), &format!("raw-{id}"))
                .await?;
        }
        self.store.delete(&raw_key(id)).await?;
        Ok(())
    }
}

/// Parses an inline PEM reference; if it yields no block as given, retries with the PEM
/// markers put on their own lines and the whitespace between them turned into newlines (a
/// PEM pasted into a single-line field).
fn parse_inline(text: &str, secret: &str) -> Result<StoredCert, CertError> {
    let trimmed = text.trim();
    let data = if parse::decode_pem(trimmed.as_bytes())?.is_empty() {
        uncollapse_pem(trimmed)
    } else {
        trimmed.to_string()
    };
    let first = parse::decode_pem(data.as_bytes())?
        .into_iter()
        .next()
        .map(|b| parse::sha256_hex(&b.bytes))
        .unwrap_or_default();
    parse_stored(&first, data.as_bytes(), secret)
}

/// Rebuilds line structure for a PEM whose newlines were collapsed to spaces.
fn uncollapse_pem(text: &str) -> String {
    static MARKER: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let marker = MARKER.get_or_init(|| {
        regex::Regex::new(r"-----(?:BEGIN|END) [A-Z0-9 ]+?-----").expect("constant regex")
    });
    let mut out = String::with_capacity(text.len() + 64);
    let mut last = 0;
    for m in marker.find_iter(text) {
        for token in text[last..m.start()].split_whitespace() {
            out.push_str(token);
            out.push('\n');
        }
        out.push_str(m.as_str());
        out.push('\n');
        last = m.end();
    }
    for token in text[last..].split_whitespace() {
        out.push_str(token);
        out.push('\n');
    }
    out
}

/// A stored entry's leaf certificate as a listing shows it, expired or not (`get` refuses
/// an expired entry, as Tyk does; an operator still needs to see it to remove it).
#[derive(Debug, Clone)]
pub struct LeafSummary {
    /// Subject CN.
    pub subject_cn: String,
    /// Issuer CN.
    pub issuer_cn: String,
    /// NotAfter, unix seconds.
    pub not_after: i64,
    /// Lowercase hex SHA-256 of the leaf DER.
    pub sha256_hex: String,
    /// Whether a private key is stored with it.
    pub has_private_key: bool,
}

/// Validates an upload exactly as `POST /tyk/certs` does, without storing anything: the
/// certificate ID (without the org prefix) on success. `now` is unix seconds. Also the entry
/// point of the `pem_upload` fuzz target.
pub fn validate_upload(data: &[u8], secret: &str, now: i64) -> Result<String, CertError> {
    parse::prepare_upload(data, secret, now).map(|p| p.id_hash)
}

/// [`LeafSummary`] of a stored value (`cert-raw-<ID>`); `None` when no certificate parses.
pub fn leaf_summary(raw: &str) -> Option<LeafSummary> {
    let blocks = pem::decode_all(raw.as_bytes()).ok()?;
    let has_private_key = blocks.iter().any(|b| b.typ.ends_with("PRIVATE KEY"));
    let leaf = blocks.iter().find(|b| b.typ == "CERTIFICATE")?;
    let info = parse::parse_certificate(&leaf.bytes).ok()?;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &leaf.bytes);
    Some(LeafSummary {
        subject_cn: info.subject.common_name,
        issuer_cn: info.issuer.common_name,
        not_after: info.not_after,
        sha256_hex: hex::encode(digest.as_ref()),
        has_private_key,
    })
}
