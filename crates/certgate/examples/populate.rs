//! Fills a store with N registered client certificates and a certificate-bound session for
//! each, for the scale benchmark (`bench/scale.sh`): the gateway's throughput must not
//! depend on how many clients are registered.
//!
//! Each certificate is a real X.509 certificate (distinct serial and CN, so a distinct
//! SHA-256), stored through the certificate store exactly as `POST /tyk/certs` stores it;
//! each session is stored under the key Certificate Authentication looks up for it. The
//! filler certificates go in no organisation index (org `""`): Tyk keeps that index as one
//! list, and nothing on the request path reads it.
//!
//! ```sh
//! cargo run --release --example populate -- embedded /tmp/data 1000000
//! cargo run --release --example populate -- redis 127.0.0.1:6380 1000000
//! ```
#![allow(clippy::unwrap_used)] // a benchmark harness: a failed step ends the run

use std::time::Instant;

use certgate::certs::CertManager;
use certgate::store::{RedisOptions, Store};
use futures_util::future::join_all;
use serde_json::json;

/// Writes in flight at once (the embedded store commits up to 256 per transaction).
const CONCURRENCY: usize = 1024;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: populate embedded DIR N | populate redis HOST:PORT N";
    let (kind, target, n) = match args.as_slice() {
        [_, kind, target, n] => (kind.as_str(), target.as_str(), n.parse::<usize>()),
        _ => panic!("{usage}"),
    };
    let n = n.expect(usage);
    let store = match kind {
        "embedded" => Store::open_embedded(std::path::Path::new(target))
            .await
            .expect("open embedded store"),
        "redis" => {
            let (host, port) = target.rsplit_once(':').expect(usage);
            let opts = RedisOptions {
                addrs: vec![format!("{host}:{port}")],
                ..RedisOptions::default()
            };
            Store::open_redis(&opts).await.expect("open redis")
        }
        _ => panic!("{usage}"),
    };
    let certs = CertManager::new(store.clone(), String::new());
    let key_pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let chunk = (n - done).min(CONCURRENCY);
        let pems: Vec<String> = (done..done + chunk)
            .map(|i| filler_cert(&key_pair, i))
            .collect();
        let writes = pems.iter().map(|pem| {
            let certs = &certs;
            let store = &store;
            async move {
                let id = certs
                    .add(pem.as_bytes(), "")
                    .await
                    .expect("store certificate");
                let token = certgate::tokens::generate_token("default", &id, "murmur64");
                let session = json!({"org_id": "default", "certificate": id,
                    "rate": 1000, "per": 1, "quota_max": -1, "expires": 0,
                    "access_rights": {"bench": {"api_id": "bench", "api_name": "bench",
                        "versions": ["Default"]}}});
                store
                    .set(
                        &format!("apikey-{}", certgate::tokens::hash_key(&token, true)),
                        &session.to_string(),
                        None,
                    )
                    .await
                    .expect("store session");
            }
        });
        join_all(writes).await;
        done += chunk;
        if done % 100_000 < CONCURRENCY {
            eprintln!("populate: {done}/{n} in {:.0?}", start.elapsed());
        }
    }
    println!(
        "populate: {n} certificates and sessions in {:.1?}",
        start.elapsed()
    );
}

fn filler_cert(key_pair: &rcgen::KeyPair, i: usize) -> String {
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).expect("certificate params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("filler-{i}"));
    params.serial_number = Some(rcgen::SerialNumber::from(
        (i as u64 + 1).to_be_bytes().to_vec(),
    ));
    params.self_signed(key_pair).expect("sign").pem()
}
