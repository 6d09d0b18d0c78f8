//! Revocation races on one node with the embedded store (issue 11, hole 9), and the
//! periodic reconciliation of static allow lists.

use std::time::Duration;

use serde_json::json;

use crate::common::*;
use crate::race_loop::{race_loop, race_node};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_race_one_node_embedded_store() {
    let up = upstream().await;
    let gw = race_node(json!({"type": "embedded", "path": "data"}), &up).await;
    race_loop(&[&gw], 40).await;
    gw.stop().await;
}

/// A certificate removed from the store without a notification (as a Tyk node
/// removes one: it publishes nothing) stops passing a static allow list within the
/// reconciliation period (here 1 s: `cached_session_timeout`), with no reload asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_lists_follow_unannounced_certificate_removals() {
    let up = upstream().await;
    let id = cert_id("default", &pki().client);
    let mut api = classic_api("allow", "/allow/", &up.url());
    api["use_mutual_tls_auth"] = json!(true);
    api["client_certificates"] = json!([id]);
    let gw = gateway()
        .set("local_session_cache", json!({"cached_session_timeout": 1}))
        .api(api)
        .start()
        .await;
    let cl = client(&gw, Some(&pki().client));
    let url = gw.url("/allow/x");
    let allowed = || {
        let (cl, url) = (cl.clone(), url.clone());
        async move { cl.get(url).send().await.is_ok_and(|r| r.status() == 200) }
    };
    let refused = || {
        let allowed = allowed();
        async move { !allowed.await }
    };
    // Uploaded through the Gateway API: announced, the list reloads.
    assert_eq!(upload(&gw, &pki().client, "default").await, id);
    assert!(
        eventually(Duration::from_secs(10), allowed).await,
        "the uploaded certificate was never allowed"
    );
    // Removed behind the gateway's back.
    assert!(gw
        .gateway()
        .store
        .delete(&format!("cert-raw-{id}"))
        .await
        .unwrap());
    assert!(
        eventually(Duration::from_secs(10), refused).await,
        "a certificate removed from the store stayed allowed"
    );
    // And back: allowed again without any notification either.
    let raw = pki().client.cert_pem.clone();
    gw.gateway()
        .store
        .set(&format!("cert-raw-{id}"), &raw, None)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), allowed).await,
        "a certificate put back into the store was not allowed again"
    );
    gw.stop().await;
}
