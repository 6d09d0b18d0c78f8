//! Reloads swap the whole snapshot: requests in flight and arriving during a reload
//! never fail and never see a half-loaded set.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_under_load_fails_no_request() {
    let up = upstream().await;
    let mut b = gateway();
    for i in 0..20 {
        b = b.api(classic_api(
            &format!("api{i}"),
            &format!("/api{i}/"),
            &up.url(),
        ));
    }
    let gw = b.start().await;
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let c = client(&gw, None);
        let url = gw.url(&format!("/api{}/x", w % 20));
        let (ok, failed, stop) = (ok.clone(), failed.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        eprintln!("failed: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }));
    }
    let g = gw.gateway().clone();
    for _ in 0..30 {
        let report = g.reload().await;
        assert_eq!(report.loaded, 20);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(
        ok.load(Ordering::Relaxed) > 50,
        "only {} requests",
        ok.load(Ordering::Relaxed)
    );
    assert!(g.snapshot().generation > 30);
    gw.stop().await;
}

#[tokio::test]
async fn one_bad_file_is_skipped_the_rest_load() {
    let up = upstream().await;
    let gw = gateway()
        .api(classic_api("good", "/good/", &up.url()))
        .start()
        .await;
    std::fs::write(gw.app_path().join("bad.json"), b"{ this is not json").unwrap();
    let mut wrong = classic_api("wrong", "/wrong/", &up.url());
    wrong["proxy"]["target_url"] = serde_json::json!(12);
    write(&gw.app_path().join("wrong.json"), &wrong);
    write(
        &gw.app_path().join("good2.json"),
        &classic_api("good2", "/good2/", &up.url()),
    );
    let report = gw.gateway().reload().await;
    assert_eq!(report.loaded, 2, "{:?}", report.errors);
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    let c = client(&gw, None);
    assert_eq!(
        c.get(gw.url("/good2/x")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.get(gw.url("/wrong/x")).send().await.unwrap().status(),
        404
    );
    gw.stop().await;
}
