//! Issue 12: policies need an id (`id` or the legacy `_id`); `POST /tyk/policies` replaces
//! an existing policy and `PUT /tyk/policies/{id}` writes one that does not exist, as Tyk.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn policies_need_an_id_and_are_created_or_replaced_as_in_tyk() {
    let gw = gateway()
        .set(
            "policies",
            json!({"policy_source": "file", "policy_path": "policies"}),
        )
        .start()
        .await;
    let c = admin(&gw);
    let dir = gw.dir.path().join("policies");
    let files = || std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);

    // Neither `id` nor `_id`: Tyk's 400, nothing written (no generated id).
    for body in [
        json!({"rate": 1, "per": 1}),
        json!({"id": "", "rate": 1}),
        json!({"id": null, "_id": null}),
    ] {
        let (status, v) = admin_send(c.post(gw.url("/tyk/policies")).json(&body)).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["message"], "Unable to create policy without id.");
    }
    assert_eq!(files(), 0);

    // The legacy `_id` names the policy.
    let mid = "5ead7120575961000181867e";
    let (status, v) = admin_send(
        c.post(gw.url("/tyk/policies"))
            .json(&json!({"_id": mid, "rate": 3, "per": 1})),
    )
    .await;
    assert_eq!((status, v["key"].as_str()), (200, Some(mid)), "{v}");
    assert!(dir.join(format!("{mid}.json")).is_file());

    // POST of an existing id replaces it.
    let (status, _) = admin_send(
        c.post(gw.url("/tyk/policies"))
            .json(&json!({"id": "p2", "rate": 1, "per": 1})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, v) = admin_send(
        c.post(gw.url("/tyk/policies"))
            .json(&json!({"id": "p2", "rate": 2, "per": 1})),
    )
    .await;
    assert_eq!((status, &v["action"]), (200, &json!("added")), "{v}");

    // PUT: the body's id must be the path's, present included; nothing written otherwise.
    for body in [
        json!({"rate": 9}),
        json!({"id": "other", "rate": 9}),
        json!({"id": "", "rate": 9}),
        json!({"_id": mid, "rate": 9}),
    ] {
        let (status, v) = admin_send(c.put(gw.url("/tyk/policies/p2")).json(&body)).await;
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(
            v["message"],
            "Request ID does not match that in policy! For Update operations these must match."
        );
    }
    let (status, _) = admin_send(
        c.put(gw.url("/tyk/policies/fresh"))
            .json(&json!({"rate": 9})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(!dir.join("fresh.json").exists());

    // PUT of an id that does not exist writes it, as Tyk does.
    let (status, v) = admin_send(
        c.put(gw.url("/tyk/policies/fresh"))
            .json(&json!({"id": "fresh", "rate": 5, "per": 1})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v,
        json!({"key": "fresh", "status": "ok", "action": "modified"})
    );
    assert!(dir.join("fresh.json").is_file());

    admin_reload(&gw).await;
    let (_, p2) = admin_send(c.get(gw.url("/tyk/policies/p2"))).await;
    assert_eq!(p2["rate"], 2);
    let (_, fresh) = admin_send(c.get(gw.url("/tyk/policies/fresh"))).await;
    assert_eq!(fresh["rate"], 5);
    let (status, legacy) = admin_send(c.get(gw.url(&format!("/tyk/policies/{mid}")))).await;
    assert_eq!((status, &legacy["rate"]), (200, &json!(3)), "{legacy}");
    assert_eq!(gw.gateway().snapshot().policy_set.len(), 3);
    gw.stop().await;
}
