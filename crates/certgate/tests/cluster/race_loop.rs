//! The revocation race (issue 11, hole 9), as a bounded loop: callers hammer a
//! certificate-auth API on every node while node A creates the key, the callers get
//! in, and A deletes the key (even iterations) or the certificate (odd ones). Meanwhile
//! the node-local cache entries are evicted continuously while both are in the store
//! (as expiry would), so cache fills are in flight when a DELETE lands.
//!
//! The rule checked: no request that **started** after the revocation took effect on
//! its node got a 200 — on A, after the DELETE returned; on another node, after that
//! node applied the DELETE's notification (a cluster change is asynchronous; the
//! point is that nothing stale survives it). No timing is asserted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

/// The API every node serves.
pub const API: &str = "race";

/// A node for the loop (certificate auth on `/race/`, a long cache timeout so a stale
/// entry would live on).
pub async fn race_node(storage: serde_json::Value, up: &Upstream) -> Gw {
    gateway()
        .set("storage", storage)
        .set(
            "local_session_cache",
            json!({"cached_session_timeout": 300}),
        )
        .api(cert_api(API, "/race/", &up.url()))
        .start()
        .await
}

struct Hit {
    node: usize,
    start: Instant,
    end: Instant,
    status: u16,
}

/// On `node`, requests running entirely within `[from, until)` must be refused.
struct Revoked {
    node: usize,
    from: Instant,
    until: Option<Instant>,
    what: &'static str,
    iteration: usize,
}

async fn call(method: reqwest::Method, gw: &Gw, path: &str, body: Option<String>) -> u16 {
    let mut r = admin(gw)
        .request(method, gw.url(path))
        .header("x-tyk-authorization", SECRET);
    if let Some(b) = body {
        r = r.body(b);
    }
    r.send().await.unwrap().status().as_u16()
}

/// Waits until every node other than A has applied one more notification than
/// `before` says (each admin call on A publishes exactly one), returning the times.
async fn applied_elsewhere(nodes: &[&Gw], before: &[u64]) -> Vec<Instant> {
    let mut at = vec![Instant::now()];
    for (n, b) in nodes.iter().zip(before).skip(1) {
        let ok = eventually(Duration::from_secs(10), || async {
            n.gateway().notifications_applied() > *b
        })
        .await;
        assert!(ok, "a node never applied the notification");
        at.push(Instant::now());
    }
    at
}

fn applied(nodes: &[&Gw]) -> Vec<u64> {
    nodes
        .iter()
        .map(|n| n.gateway().notifications_applied())
        .collect()
}

/// Runs the loop; node A (`nodes[0]`) makes every change.
pub async fn race_loop(nodes: &[&Gw], iterations: usize) {
    let a = nodes[0];
    let stop = Arc::new(AtomicBool::new(false));
    let hits = Arc::new(Mutex::new(Vec::<Hit>::new()));

    let before = applied(nodes);
    let id = upload(a, &pki().client, "default").await;
    applied_elsewhere(nodes, &before).await;
    let store_key = {
        let cfg = &a.gateway().config;
        let key = certgate::tokens::generate_token("default", &id, &cfg.hash_key_function);
        certgate::pipeline::session_store_key(cfg, &key)
    };

    let mut tasks = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        for _ in 0..3 {
            let cl = client(n, Some(&pki().client));
            let url = n.url("/race/x");
            let (stop, hits) = (stop.clone(), hits.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    let status = cl
                        .get(&url)
                        .send()
                        .await
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0);
                    hits.lock().unwrap().push(Hit {
                        node: i,
                        start,
                        end: Instant::now(),
                        status,
                    });
                }
            }));
        }
        // Cache churn: while the key and the certificate are in the store, their cache
        // entries vanish all the time (as expiry would), so fills keep happening and
        // some are in flight when a DELETE lands. Once either is gone, the churn
        // stops: an entry cached from then on stays, as it would for the cache timeout.
        let gw = n.gateway().clone();
        let (stop, store_key, id) = (stop.clone(), store_key.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let raw = format!("cert-raw-{id}");
            while !stop.load(Ordering::Relaxed) {
                let live = gw.store.exists(&store_key).await.unwrap_or(false)
                    && gw.store.exists(&raw).await.unwrap_or(false);
                if live {
                    gw.caches.sessions.remove(&store_key);
                    gw.caches.certs.remove(&id);
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }));
    }

    let mut revoked: Vec<Revoked> = Vec::new();
    let (mut key_exists, mut cert_exists) = (false, true);
    for iteration in 0..iterations {
        // Restore access; refusals end for requests starting after this point.
        let restore = Instant::now();
        for r in revoked.iter_mut().filter(|r| r.until.is_none()) {
            r.until = Some(restore);
        }
        if !cert_exists {
            let before = applied(nodes);
            assert_eq!(upload(a, &pki().client, "default").await, id);
            applied_elsewhere(nodes, &before).await;
            cert_exists = true;
        }
        if !key_exists {
            let before = applied(nodes);
            let (st, v) = create_key_raw(a, &session(API, Some(&id))).await;
            assert_eq!(st, 200, "{v}");
            applied_elsewhere(nodes, &before).await;
            key_exists = true;
        }
        // Every node lets the certificate in.
        for n in nodes {
            let cl = client(n, Some(&pki().client));
            let url = n.url("/race/x");
            let ok = eventually(Duration::from_secs(10), || {
                let (cl, url) = (cl.clone(), url.clone());
                async move { cl.get(&url).send().await.is_ok_and(|r| r.status() == 200) }
            })
            .await;
            assert!(ok, "iteration {iteration}: access was not restored");
        }
        // Revoke.
        let before = applied(nodes);
        let what = if iteration % 2 == 0 {
            let key = certgate::tokens::generate_token(
                "default",
                &id,
                &a.gateway().config.hash_key_function,
            );
            let st = call(
                reqwest::Method::DELETE,
                a,
                &format!("/tyk/keys/{key}"),
                None,
            )
            .await;
            assert_eq!(st, 200);
            key_exists = false;
            "key"
        } else {
            let path = format!("/tyk/certs/{id}?org_id=default");
            assert_eq!(call(reqwest::Method::DELETE, a, &path, None).await, 200);
            cert_exists = false;
            "certificate"
        };
        for (node, from) in applied_elsewhere(nodes, &before)
            .await
            .into_iter()
            .enumerate()
        {
            revoked.push(Revoked {
                node,
                from,
                until: None,
                what,
                iteration,
            });
        }
        // Let the callers run into the revoked state for a moment.
        let seen = hits.lock().unwrap().len();
        let _ = eventually(Duration::from_secs(5), || {
            let hits = hits.clone();
            async move { hits.lock().unwrap().len() >= seen + 10 * nodes.len() }
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }

    let hits = hits.lock().unwrap();
    let mut checked = 0usize;
    for r in &revoked {
        for h in hits.iter().filter(|h| {
            // Started after the revocation took effect, answered before access was
            // restored (a request still running then may legitimately get in).
            h.node == r.node && h.start > r.from && r.until.is_none_or(|u| h.end < u)
        }) {
            checked += 1;
            assert_ne!(
                h.status, 200,
                "iteration {}: a request on node {} that started after the {} was revoked got in",
                r.iteration, r.node, r.what
            );
        }
    }
    assert!(checked > 0, "no request ran into a revoked state");
    eprintln!(
        "{} requests, {checked} after a revocation, all refused",
        hits.len()
    );
}
