//! Certificate-store behaviour against a real embedded store, with PKI generated at run time
//! (spec §3, scenarios S74–S95 at manager level).

use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use rcgen::{CertificateParams, KeyPair, PublicKeyData as _};
use rustls_pki_types::PrivateKeyDer;
use serde_json::Value;

use super::*;
use crate::gocompat::pem::{self, Block};
use crate::pki::{Ca, Issued};
use crate::store::Ttl;

const SECRET: &str = "encoding-secret";

struct Env {
    _dir: tempfile::TempDir,
    store: Store,
    mgr: CertManager,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_embedded(dir.path()).await.expect("store");
    let mgr = CertManager::new(store.clone(), SECRET.to_string());
    Env {
        _dir: dir,
        store,
        mgr,
    }
}

impl Env {
    async fn all_keys(&self) -> Vec<String> {
        let mut k = self.store.keys_with_prefix("").await.unwrap();
        k.sort();
        k
    }
}

fn ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| Ca::new("certs test root").expect("ca"))
}

/// A self-signed RSA-2048 certificate: (cert PEM, cert DER, PKCS#8 key DER). Generated once.
fn rsa() -> &'static (String, Vec<u8>, Vec<u8>) {
    static RSA: OnceLock<(String, Vec<u8>, Vec<u8>)> = OnceLock::new();
    RSA.get_or_init(|| {
        let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("rsa key");
        let params = CertificateParams::new(vec!["rsa.example".to_string()]).expect("params");
        let cert = params.self_signed(&key).expect("self-signed");
        (cert.pem(), cert.der().to_vec(), key.serialize_der())
    })
}

fn pem_of(typ: &str, der: &[u8]) -> String {
    pem::encode(&Block::new(typ, der.to_vec()))
}

fn sha(der: &[u8]) -> String {
    parse::sha256_hex(der)
}

fn pkcs8_of(issued: &Issued) -> Vec<u8> {
    let blocks = pem::decode_all(issued.key_pem.as_bytes()).unwrap();
    blocks[0].bytes.clone()
}

fn expired_client() -> Issued {
    let now = time::OffsetDateTime::now_utc();
    ca().client_valid(
        "old",
        now - time::Duration::days(30),
        now - time::Duration::days(1),
    )
    .unwrap()
}

async fn add_err(e: &Env, pem: &str, org: &str) -> CertError {
    let err = e.mgr.add(pem.as_bytes(), org).await.unwrap_err();
    assert!(err.is_client_error(), "{err:?}");
    err
}

#[tokio::test]
async fn add_certificate_id_value_and_index() {
    let e = env().await;
    let client = ca().client("alice").unwrap();
    let id = e.mgr.add(client.cert_pem.as_bytes(), "org1").await.unwrap();
    assert_eq!(id, format!("org1{}", client.sha256_hex()));
    let raw = e
        .store
        .get(&format!("cert-raw-{id}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(raw, pem_of("CERTIFICATE", &client.der));
    assert_eq!(
        e.store.ttl(&format!("cert-raw-{id}")).await.unwrap(),
        Ttl::Persistent
    );
    assert_eq!(
        e.store.list_range("cert-org1-index").await.unwrap(),
        vec![format!("raw-{id}")]
    );
    assert!(e.mgr.exists(&id).await.unwrap());
    assert_eq!(e.mgr.get_raw(&id).await.unwrap().as_deref(), Some(&*raw));

    // No org: bare hash, no index written.
    let server = ca().server(&["localhost"]).unwrap();
    let id2 = e.mgr.add(server.cert_pem.as_bytes(), "").await.unwrap();
    assert_eq!(id2, server.sha256_hex());
    let mut expected = vec![
        "cert-org1-index".to_string(),
        format!("cert-raw-{id}"),
        format!("cert-raw-{id2}"),
    ];
    expected.sort();
    assert_eq!(e.all_keys().await, expected);
}

#[tokio::test]
async fn duplicate_is_refused_with_tyks_message() {
    let e = env().await;
    let client = ca().client("dup").unwrap();
    let id = e.mgr.add(client.cert_pem.as_bytes(), "1").await.unwrap();
    let err = add_err(&e, &client.cert_pem, "1").await;
    assert_eq!(
        err.to_string(),
        format!("Certificate with {id} id already exists")
    );
    assert_eq!(e.store.list_range("cert-1-index").await.unwrap().len(), 1);
    // Same certificate under another org is another ID (S90 vs org scoping).
    assert!(e.mgr.add(client.cert_pem.as_bytes(), "2").await.is_ok());
}

#[tokio::test]
async fn expired_certificate_is_refused_and_nothing_written() {
    let e = env().await;
    let old = expired_client();
    let err = add_err(&e, &old.cert_pem, "1").await;
    assert_eq!(err.to_string(), "certificate is expired");
    // An expired certificate anywhere in a chain refuses the whole upload.
    let good = ca().client("fresh").unwrap();
    let chain = format!("{}{}", good.cert_pem, old.cert_pem);
    assert_eq!(
        add_err(&e, &chain, "1").await.to_string(),
        "certificate is expired"
    );
    assert!(e.all_keys().await.is_empty());
}

/// Checks the stored value of a cert+key upload and its round trip; returns the parsed entry.
async fn check_key_upload(e: &Env, cert_pem: &str, cert_der: &[u8], key_pem: &str) -> StoredCert {
    let id = e
        .mgr
        .add(format!("{cert_pem}{key_pem}").as_bytes(), "o")
        .await
        .unwrap();
    assert_eq!(id, format!("o{}", sha(cert_der)));
    let raw = e.mgr.get_raw(&id).await.unwrap().unwrap();
    let cert_part = pem_of("CERTIFICATE", cert_der);
    let rest = raw.strip_prefix(&cert_part).expect("certificate first");
    let rest = rest
        .strip_prefix(&format!(
            "\n-----BEGIN {} PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n",
            "ENCRYPTED"
        ))
        .expect("encrypted key block after a blank line");
    let (dek, body) = rest.split_once("\n\n").unwrap();
    let iv = dek.strip_prefix("DEK-Info: AES-256-CBC,").unwrap();
    assert_eq!(iv.len(), 32);
    assert!(iv
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert!(body.ends_with("-----END ENCRYPTED PRIVATE KEY-----\n"));
    assert!(
        !raw.contains(key_pem.lines().nth(1).unwrap()),
        "key stored in clear"
    );

    let parsed = e.mgr.get(&id).await.unwrap().unwrap();
    assert!(parsed.has_private_key());
    assert_eq!(parsed.id, id);
    assert_eq!(parsed.chain.len(), 1);
    assert_eq!(parsed.fingerprint, sha(cert_der));
    // Wrong password: a clean error, never a panic.
    let wrong = parse_stored(&id, raw.as_bytes(), "not-the-secret").unwrap_err();
    assert!(
        matches!(
            wrong,
            CertError::WrongPassword | CertError::InvalidPrivateKey
        ),
        "{wrong:?}"
    );
    // Debug and JSON never show the key.
    let key_der = parsed.private_key.as_ref().unwrap().secret_der().to_vec();
    let shown = format!("{parsed:?} {} {}", parsed.meta_json(), parsed.basics_json());
    assert!(!shown.contains(&hex::encode(&key_der[..16])));
    assert!(!shown.contains(&format!("{:?}", &key_der[..8])));
    assert!(!shown.to_lowercase().contains("private key"));
    assert_eq!(parsed.meta_json()["has_private"], true);
    parsed
}

#[tokio::test]
async fn ecdsa_certificate_with_pkcs8_and_sec1_keys() {
    let e = env().await;
    let server = ca().server(&["api.example"]).unwrap();
    let pkcs8 = pkcs8_of(&server);
    let parsed = check_key_upload(&e, &server.cert_pem, &server.der, &server.key_pem).await;
    match parsed.private_key.as_ref().unwrap() {
        PrivateKeyDer::Pkcs8(k) => assert_eq!(k.secret_pkcs8_der(), &pkcs8[..]),
        other => panic!("expected PKCS#8, got {other:?}"),
    }

    let other = ca().server(&["sec1.example"]).unwrap();
    let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &pkcs8_of(&other)).unwrap();
    let sec1 = kp.private_key().as_der().unwrap().as_ref().to_vec();
    let parsed = check_key_upload(
        &e,
        &other.cert_pem,
        &other.der,
        &pem_of("EC PRIVATE KEY", &sec1),
    )
    .await;
    match parsed.private_key.as_ref().unwrap() {
        PrivateKeyDer::Sec1(k) => assert_eq!(k.secret_sec1_der(), &sec1[..]),
        other => panic!("expected SEC1, got {other:?}"),
    }
}

#[tokio::test]
async fn rsa_certificate_with_pkcs8_and_pkcs1_keys() {
    let e = env().await;
    let (cert_pem, cert_der, pkcs8) = rsa();
    let parsed = check_key_upload(&e, cert_pem, cert_der, &pem_of("PRIVATE KEY", pkcs8)).await;
    assert!(matches!(parsed.private_key, Some(PrivateKeyDer::Pkcs8(_))));
    assert_eq!(parsed.dns_names, ["rsa.example"]);

    let e = env().await;
    let pkcs1 = der::pkcs8_inner(pkcs8).unwrap().to_vec();
    let parsed = check_key_upload(&e, cert_pem, cert_der, &pem_of("RSA PRIVATE KEY", &pkcs1)).await;
    match parsed.private_key.as_ref().unwrap() {
        PrivateKeyDer::Pkcs1(k) => assert_eq!(k.secret_pkcs1_der(), &pkcs1[..]),
        other => panic!("expected PKCS#1, got {other:?}"),
    }
}

#[tokio::test]
async fn mismatching_or_multiple_keys_are_refused() {
    let e = env().await;
    let a = ca().client("a").unwrap();
    let b = ca().client("b").unwrap();
    let err = add_err(&e, &format!("{}{}", a.cert_pem, b.key_pem), "1").await;
    assert_eq!(
        err.to_string(),
        "tls: private key does not match public key"
    );
    let (rsa_pem, _, rsa_key) = rsa();
    let err = add_err(&e, &format!("{rsa_pem}{}", a.key_pem), "1").await;
    assert_eq!(
        err.to_string(),
        "tls: private key type does not match public key type"
    );
    let err = add_err(
        &e,
        &format!("{}{}", a.cert_pem, pem_of("PRIVATE KEY", rsa_key)),
        "1",
    )
    .await;
    assert_eq!(
        err.to_string(),
        "tls: private key type does not match public key type"
    );
    let err = add_err(
        &e,
        &format!("{}{}{}", a.cert_pem, a.key_pem, a.key_pem),
        "1",
    )
    .await;
    assert_eq!(err.to_string(), "Found multiple private keys");
    let junk_key = pem_of("PRIVATE KEY", b"\x30\x03\x02\x01\x00");
    let err = add_err(&e, &format!("{}{junk_key}", a.cert_pem), "1").await;
    assert_eq!(err.to_string(), "tls: failed to parse private key");
    // An already-encrypted key is not accepted (Tyk cannot parse it either).
    let enc = keys::encrypt_pem_block("ENCRYPTED PRIVATE KEY", &pkcs8_of(&a), b"x").unwrap();
    let err = add_err(&e, &format!("{}{}", a.cert_pem, pem::encode(&enc)), "1").await;
    assert!(matches!(err, CertError::InvalidPrivateKey), "{err:?}");
    assert!(e.all_keys().await.is_empty());
}

#[tokio::test]
async fn public_key_entries() {
    let e = env().await;
    let key = KeyPair::generate().unwrap();
    let spki = key.subject_public_key_info();
    let public_pem = key.public_key_pem();
    let id = e.mgr.add(public_pem.as_bytes(), "org").await.unwrap();
    assert_eq!(id, format!("org{}", sha(&spki)));
    let raw = e.mgr.get_raw(&id).await.unwrap().unwrap();
    assert_eq!(raw, pem_of("PUBLIC KEY", &spki));
    let entry = e.mgr.get(&id).await.unwrap().unwrap();
    assert_eq!(entry.public_key_only.as_deref(), Some(&spki[..]));
    assert!(entry.chain.is_empty() && entry.trust_anchors().is_empty());
    let meta = entry.meta_json();
    assert_eq!(meta["fingerprint"], "");
    assert_eq!(meta["has_private"], false);
    assert_eq!(
        meta["subject"]["CommonName"],
        format!("Public Key: {}", sha(&spki))
    );
    assert_eq!(meta["issuer"]["CommonName"], "");
    assert_eq!(meta["issuer"]["Names"], Value::Null);
    assert_eq!(meta["not_before"], "0001-01-01T00:00:00Z");
    assert_eq!(meta["is_ca"], false);

    let client = ca().client("pk").unwrap();
    let err = add_err(&e, &format!("{}{public_pem}", client.cert_pem), "org").await;
    assert_eq!(
        err.to_string(),
        "Public keys can't be combined with certificates"
    );
    let err = add_err(&e, &format!("{public_pem}{}", client.key_pem), "org").await;
    assert!(matches!(err, CertError::KeyWithoutCertificate), "{err:?}");
    let err = add_err(&e, &pem_of("PUBLIC KEY", b"not spki"), "org").await;
    assert!(matches!(err, CertError::InvalidPublicKey), "{err:?}");
    assert_eq!(
        e.all_keys().await.len(),
        2,
        "only the first upload was written"
    );
}

#[tokio::test]
async fn garbage_is_refused_without_panics_or_writes() {
    let e = env().await;
    let decode_msg = "Failed to decode certificate. It should be PEM encoded.";
    for input in [
        "",
        "hello",
        "-----BEGIN CERTIFICATE-----",
        concat!(
            "-----BEGIN PRIVATE",
            " KEY-----\nYQ==\n-----END PRIVATE KEY-----"
        ),
        "-----BEGIN FOO-----\nYQ==\n-----END FOO-----\n",
    ] {
        assert_eq!(
            add_err(&e, input, "1").await.to_string(),
            decode_msg,
            "{input:?}"
        );
    }
    let err = add_err(
        &e,
        "-----BEGIN CERTIFICATE-----\nYQ==\n-----END CERTIFICATE-----",
        "1",
    )
    .await;
    assert!(
        matches!(err, CertError::InvalidCertificate { index: 1, .. }),
        "{err:?}"
    );
    let client = ca().client("trunc").unwrap();
    let mut lines: Vec<&str> = client.cert_pem.lines().collect();
    let last_body = lines.len() - 2;
    let cut = &lines[last_body][..lines[last_body].len() - 3];
    lines[last_body] = cut;
    let err = add_err(&e, &lines.join("\n"), "1").await;
    assert!(matches!(err, CertError::Pem { .. }), "{err:?}");
    let huge = "A".repeat(MAX_PEM_BYTES + 1);
    assert!(matches!(
        add_err(&e, &huge, "1").await,
        CertError::TooLarge { .. }
    ));
    let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    assert!(e.mgr.add(&binary, "1").await.is_err());
    assert!(e.all_keys().await.is_empty());
}

#[test]
fn every_truncation_and_corruption_of_a_valid_upload_is_handled() {
    let server = ca().server(&["fuzz.example"]).unwrap();
    let input = format!("{}{}", server.cert_pem, server.key_pem).into_bytes();
    let now = now_unix();
    for cut in 0..input.len() {
        let _ = parse::prepare_upload(&input[..cut], SECRET, now);
    }
    for i in (0..input.len()).step_by(7) {
        let mut bad = input.clone();
        bad[i] ^= 0x55;
        let _ = parse::prepare_upload(&bad, SECRET, now);
    }
    let ok = parse::prepare_upload(&input, SECRET, now).unwrap();
    for cut in (0..ok.value.len()).step_by(3) {
        let _ = parse_stored("x", &ok.value.as_bytes()[..cut], SECRET);
    }
}

#[tokio::test]
async fn chains_id_from_first_fingerprint_from_last() {
    let e = env().await;
    let leaf = ca().client("chained").unwrap();
    let chain = format!("{}{}", leaf.cert_pem, ca().cert.cert_pem);
    let id = e.mgr.add(chain.as_bytes(), "1").await.unwrap();
    assert_eq!(id, format!("1{}", leaf.sha256_hex()));
    let raw = e.mgr.get_raw(&id).await.unwrap().unwrap();
    assert_eq!(
        raw,
        format!(
            "{}\n{}",
            pem_of("CERTIFICATE", &leaf.der),
            pem_of("CERTIFICATE", &ca().cert.der)
        )
    );
    let entry = e.mgr.get(&id).await.unwrap().unwrap();
    assert_eq!(entry.fingerprint, ca().cert.sha256_hex(), "§3.5 quirk");
    assert_eq!(entry.leaf_sha256_hex(), leaf.sha256_hex());
    assert_eq!(entry.meta_json()["fingerprint"], ca().cert.sha256_hex());
    assert!(!entry.is_ca, "leaf facts come from the first block");
    // CA pool: chains contribute only CA-flagged certificates after the first.
    assert_eq!(entry.trust_anchors(), vec![ca().cert.der.clone().into()]);
    let two_leaves = format!("{}{}", leaf.cert_pem, ca().client("x").unwrap().cert_pem);
    let id2 = e.mgr.add(two_leaves.as_bytes(), "2").await.unwrap();
    assert!(e
        .mgr
        .get(&id2)
        .await
        .unwrap()
        .unwrap()
        .trust_anchors()
        .is_empty());
    // A single certificate is its own anchor (CA or not).
    let root_id = e.mgr.add(ca().cert.cert_pem.as_bytes(), "1").await.unwrap();
    let root = e.mgr.get(&root_id).await.unwrap().unwrap();
    assert!(root.is_ca);
    assert_eq!(root.trust_anchors(), vec![ca().cert.der.clone().into()]);
}

#[tokio::test]
async fn list_ids_per_org_and_for_all() {
    let e = env().await;
    assert!(e.mgr.list_ids("1").await.unwrap().is_empty(), "S74");
    let mut org1 = Vec::new();
    for cn in ["z", "a", "m"] {
        let c = ca().client(cn).unwrap();
        org1.push(e.mgr.add(c.cert_pem.as_bytes(), "1").await.unwrap());
    }
    let b = e
        .mgr
        .add(ca().client("b").unwrap().cert_pem.as_bytes(), "orgb")
        .await
        .unwrap();
    let none = e
        .mgr
        .add(ca().client("n").unwrap().cert_pem.as_bytes(), "")
        .await
        .unwrap();
    assert_eq!(e.mgr.list_ids("1").await.unwrap(), org1, "insertion order");
    assert_eq!(e.mgr.list_ids("orgb").await.unwrap(), vec![b.clone()]);
    assert_eq!(
        e.store
            .get("cert-1-index-migrated")
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
    let mut all = org1.clone();
    all.extend([b, none]);
    all.sort();
    for _ in 0..3 {
        assert_eq!(e.mgr.list_ids("").await.unwrap(), all, "every call, sorted");
    }
    assert!(!e.store.exists("cert--index-migrated").await.unwrap());
    // S83: deleting everything empties the org's list.
    for id in &org1 {
        e.mgr.delete(id, Some("1")).await.unwrap();
    }
    assert!(e.mgr.list_ids("1").await.unwrap().is_empty());
}

#[tokio::test]
async fn list_ids_migrates_unindexed_entries() {
    let e = env().await;
    let h1 = "a".repeat(64);
    let h2 = "0".repeat(64);
    for key in [
        format!("cert-raw-1{h1}"),
        format!("cert-raw-1{h2}"),
        format!("cert-raw-12{h1}"),
        "cert-raw-1short".to_string(),
    ] {
        e.store.set(&key, "pem", None).await.unwrap();
    }
    let expected = vec![format!("1{h2}"), format!("1{h1}")];
    assert_eq!(e.mgr.list_ids("1").await.unwrap(), expected);
    assert_eq!(
        e.store.list_range("cert-1-index").await.unwrap(),
        vec![format!("raw-1{h2}"), format!("raw-1{h1}")]
    );
    assert_eq!(e.mgr.list_ids("1").await.unwrap(), expected);
    // S94: a migrated org without an index is empty; add/delete maintain the index.
    assert!(e.mgr.list_ids("orgid-1").await.unwrap().is_empty());
    assert!(e.store.exists("cert-orgid-1-index-migrated").await.unwrap());
    let c = ca().client("s94").unwrap();
    let id = e.mgr.add(c.cert_pem.as_bytes(), "orgid-1").await.unwrap();
    assert_eq!(e.mgr.list_ids("orgid-1").await.unwrap(), vec![id.clone()]);
    e.mgr.delete(&id, Some("orgid-1")).await.unwrap();
    assert!(e.mgr.list_ids("orgid-1").await.unwrap().is_empty());
}

#[tokio::test]
async fn delete_with_and_without_org() {
    let e = env().await;
    let c = ca().client("del").unwrap();
    let id = e.mgr.add(c.cert_pem.as_bytes(), "my-org").await.unwrap();
    // No org given: derived from the ID (all but the last 64 characters).
    e.mgr.delete(&id, None).await.unwrap();
    assert!(!e.mgr.exists(&id).await.unwrap());
    assert!(e.all_keys().await.is_empty(), "index emptied and removed");
    e.mgr.delete(&id, None).await.unwrap(); // idempotent

    let id = e.mgr.add(c.cert_pem.as_bytes(), "my-org").await.unwrap();
    e.mgr.delete(&id, Some("")).await.unwrap(); // empty org = absent
    assert!(e.all_keys().await.is_empty());
    let id = e.mgr.add(c.cert_pem.as_bytes(), "my-org").await.unwrap();
    e.mgr.delete(&id, Some("my-org")).await.unwrap();
    assert!(e.all_keys().await.is_empty());
    // Short and non-ASCII IDs do not panic.
    for weird in [
        "",
        "short",
        &"é".repeat(40),
        &format!("ü{}", "a".repeat(63)),
    ] {
        e.mgr.delete(weird, None).await.unwrap();
        assert!(e.mgr.get(weird).await.unwrap().is_none());
    }
    assert!(!e.mgr.exists("nope").await.unwrap());
    // A non-string value is "absent", as Tyk's GET error would be.
    e.store.list_push("cert-raw-listy", "x").await.unwrap();
    assert!(!e.mgr.exists("listy").await.unwrap());
}

fn keys_of(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[tokio::test]
async fn meta_and_basics_json_shapes() {
    let e = env().await;
    let client = ca().client("alice").unwrap();
    let id = e.mgr.add(client.cert_pem.as_bytes(), "1").await.unwrap();
    let meta = e.mgr.get(&id).await.unwrap().unwrap().meta_json();
    assert_eq!(
        keys_of(&meta),
        [
            "id",
            "fingerprint",
            "has_private",
            "issuer",
            "subject",
            "not_before",
            "not_after",
            "is_ca"
        ]
    );
    let text = meta.to_string();
    let sha = client.sha256_hex();
    assert!(
        text.starts_with(&format!(
            r#"{{"id":"1{sha}","fingerprint":"{sha}","has_private":false"#
        )),
        "S79: {text}"
    );
    assert_eq!(
        keys_of(&meta["subject"]),
        [
            "Country",
            "Organization",
            "OrganizationalUnit",
            "Locality",
            "Province",
            "StreetAddress",
            "PostalCode",
            "SerialNumber",
            "CommonName",
            "Names",
            "ExtraNames"
        ]
    );
    assert_eq!(meta["subject"]["CommonName"], "alice");
    assert_eq!(
        meta["subject"]["Organization"],
        serde_json::json!(["certgate"])
    );
    assert_eq!(meta["subject"]["Country"], Value::Null);
    assert_eq!(meta["subject"]["ExtraNames"], Value::Null);
    let names = meta["subject"]["Names"].as_array().unwrap();
    assert!(names.contains(&serde_json::json!({"Type": [2, 5, 4, 3], "Value": "alice"})));
    assert_eq!(meta["issuer"]["CommonName"], "certs test root");
    let rfc3339 = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$").unwrap();
    assert!(rfc3339.is_match(meta["not_after"].as_str().unwrap()));

    let server = ca().server(&["a.example", "b.example"]).unwrap();
    let both = format!("{}{}", server.cert_pem, server.key_pem);
    let sid = e.mgr.add(both.as_bytes(), "1").await.unwrap();
    let s = e.mgr.get(&sid).await.unwrap().unwrap();
    let meta = s.meta_json();
    assert_eq!(keys_of(&meta)[7], "dns_names");
    assert_eq!(
        meta["dns_names"],
        serde_json::json!(["a.example", "b.example"])
    );
    assert!(meta.to_string().starts_with(&format!(
        r#"{{"id":"{sid}","fingerprint":"{}","has_private":true"#,
        server.sha256_hex()
    )));
    let basics = s.basics_json();
    assert_eq!(
        keys_of(&basics),
        [
            "id",
            "issuer_cn",
            "subject_cn",
            "dns_names",
            "has_private",
            "not_before",
            "not_after",
            "is_ca"
        ]
    );
    assert_eq!(basics["has_private"], true);
    assert_eq!(basics["subject_cn"], "a.example");
    let root_id = e.mgr.add(ca().cert.cert_pem.as_bytes(), "1").await.unwrap();
    let root = e.mgr.get(&root_id).await.unwrap().unwrap().basics_json();
    assert_eq!(root["is_ca"], true, "S78/S81");
    assert_eq!(root["dns_names"], Value::Null);
}

#[test]
fn go_time_format() {
    assert_eq!(go_time(1_798_761_600), "2027-01-01T00:00:00Z");
    assert_eq!(go_time(GO_ZERO_TIME), "0001-01-01T00:00:00Z");
    assert_eq!(go_time(i64::MAX), "0001-01-01T00:00:00Z");
}

#[test]
fn tyk_format_encrypted_values_decrypt() {
    let server = ca().server(&["enc.example"]).unwrap();
    let pkcs8 = pkcs8_of(&server);
    let cert = pem_of("CERTIFICATE", &server.der);
    let enc = keys::encrypt_pem_block("ENCRYPTED PRIVATE KEY", &pkcs8, SECRET.as_bytes()).unwrap();
    let mut value = format!("{cert}\n{}", pem::encode(&enc));
    let parsed = parse_stored("id", value.as_bytes(), SECRET).unwrap();
    assert_eq!(
        parsed.private_key.unwrap().secret_der(),
        &pkcs8[..],
        "decrypted to the original DER"
    );
    // OpenSSL-style uppercase IV hex and CRLF line endings are read too.
    let dek = enc.header("DEK-Info").unwrap();
    value = value
        .replace(dek, &dek.to_uppercase())
        .replace('\n', "\r\n");
    assert!(parse_stored("id", value.as_bytes(), SECRET)
        .unwrap()
        .has_private_key());
    // A PKCS#1 key under Tyk's generic label is recognised from its DER.
    let (rsa_pem, _, rsa_key) = rsa();
    let pkcs1 = der::pkcs8_inner(rsa_key).unwrap();
    let enc = keys::encrypt_pem_block("ENCRYPTED PRIVATE KEY", pkcs1, b"pw").unwrap();
    let value = format!("{rsa_pem}\n{}", pem::encode(&enc));
    let parsed = parse_stored("id", value.as_bytes(), "pw").unwrap();
    assert!(matches!(parsed.private_key, Some(PrivateKeyDer::Pkcs1(_))));
    assert!(parse_stored("id", value.as_bytes(), "wrong").is_err());
    assert!(matches!(
        parse_stored("id", b"", "pw"),
        Err(CertError::NoCertificateBlock)
    ));
}

#[tokio::test]
async fn resolve_inline_store_and_file_references() {
    let e = env().await;
    let c = ca().client("inline").unwrap();
    let single_line = c.cert_pem.replace('\n', " ");
    for text in [
        c.cert_pem.clone(),
        format!("  \n{}\n\n", c.cert_pem),
        c.cert_pem.replace('\n', "\r\n"),
        single_line,
    ] {
        let got = e.mgr.resolve(&text).await.unwrap().expect("parsed");
        assert_eq!(got.id, c.sha256_hex());
        assert_eq!(got.fingerprint, c.sha256_hex());
    }
    let collapsed_pair = format!("{}{}", c.cert_pem, c.key_pem).replace('\n', " ");
    assert!(e
        .mgr
        .resolve(&collapsed_pair)
        .await
        .unwrap()
        .unwrap()
        .has_private_key());
    assert!(e
        .mgr
        .resolve("-----BEGIN CERTIFICATE----- YQ== -----END CERTIFICATE-----")
        .await
        .is_err());

    let id = e.mgr.add(c.cert_pem.as_bytes(), "1").await.unwrap();
    assert_eq!(e.mgr.resolve(&id).await.unwrap().unwrap().id, id);
    let file = e._dir.path().join("client.pem");
    std::fs::write(&file, &c.cert_pem).unwrap();
    let path = file.to_str().unwrap();
    assert_eq!(e.mgr.resolve(path).await.unwrap().unwrap().chain.len(), 1);
    assert!(e.mgr.resolve("wrong").await.unwrap().is_none());
    assert!(e.mgr.resolve("").await.unwrap().is_none());
}

#[tokio::test]
async fn debug_output_redacts_secrets() {
    let e = env().await;
    let shown = format!("{:?}", e.mgr);
    assert!(!shown.contains(SECRET), "{shown}");
    let err = CertError::AlreadyExists("x".into());
    assert!(err.is_client_error());
    let store_err = CertError::from(crate::store::StoreError::Unavailable("down".into()));
    assert!(!store_err.is_client_error());
}
