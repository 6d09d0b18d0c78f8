//! Hostile input: the parsers must return, never panic, whatever JSON they are given.

use serde_json::{json, Value};

use super::{bytes, cert_oas, fixture, header_key, minimal_classic, token_oas};
use crate::apidef::{parse_classic, parse_oas};

/// Every JSON type at every position of a valid document: parsing returns, never panics.
#[test]
fn every_type_at_every_position_never_panics() {
    let replacements = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(u64::MAX),
        json!("x"),
        json!(""),
        json!([]),
        json!([1, "a"]),
        json!({}),
        json!({"a": [1]}),
    ];
    let bases = [
        minimal_classic(),
        serde_json::from_slice(&fixture("classic_legacy_auth.json")).unwrap(),
        cert_oas(),
        token_oas(
            json!({"enabled": true, "header": {"enabled": true}}),
            json!({}),
            header_key(),
        ),
    ];
    for base in bases {
        let mut paths = Vec::new();
        collect_paths(&base, &mut Vec::new(), &mut paths);
        for path in &paths {
            for replacement in &replacements {
                let mut doc = base.clone();
                if let Some(slot) = pointer_mut(&mut doc, path) {
                    *slot = replacement.clone();
                }
                let raw = bytes(&doc);
                let _ = parse_classic(&raw);
                let _ = parse_oas(&raw);
            }
        }
    }
}

fn collect_paths(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    };
    for (key, child) in children {
        prefix.push(key);
        collect_paths(child, prefix, out);
        prefix.pop();
    }
}

fn pointer_mut<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, key| match v {
        Value::Object(m) => m.get_mut(key),
        Value::Array(a) => a.get_mut(key.parse::<usize>().ok()?),
        _ => None,
    })
}

/// Random documents from a fixed-seed generator, biased towards the keys the parsers read.
#[test]
fn random_documents_never_panic() {
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..2000 {
        let doc = random_value(&mut rng, 0);
        let raw = bytes(&doc);
        let _ = parse_classic(&raw);
        let _ = parse_oas(&raw);
    }
    for raw in [
        &b"null"[..],
        b"1",
        b"\"s\"",
        b"{",
        b"{\"openapi\": null}",
        &[0xff, 0xfe][..],
    ] {
        let _ = parse_classic(raw);
        let _ = parse_oas(raw);
    }
}

fn next(rng: &mut u64) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    *rng
}

fn random_value(rng: &mut u64, depth: u32) -> Value {
    const KEYS: [&str; 24] = [
        "openapi",
        "x-tyk-api-gateway",
        "info",
        "state",
        "active",
        "name",
        "upstream",
        "url",
        "server",
        "listenPath",
        "value",
        "authentication",
        "enabled",
        "certificateAuth",
        "securitySchemes",
        "security",
        "components",
        "proxy",
        "listen_path",
        "target_url",
        "auth_configs",
        "authToken",
        "auth",
        "version_data",
    ];
    let pick = next(rng) % if depth > 4 { 6 } else { 8 };
    match pick {
        0 => Value::Null,
        1 => json!(next(rng).is_multiple_of(2)),
        2 => json!(next(rng) % 70_000),
        3 => json!((next(rng) % 1000) as f64 / 7.0),
        4 => json!(["http://up", "/p/", "3.0.3", "apiKey", "header", ""][(next(rng) % 6) as usize]),
        5 => json!(-((next(rng) % 5) as i64)),
        6 => Value::Array(
            (0..next(rng) % 3)
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..next(rng) % 6)
                .map(|_| {
                    let key = KEYS[(next(rng) % KEYS.len() as u64) as usize].to_owned();
                    (key, random_value(rng, depth + 1))
                })
                .collect(),
        ),
    }
}
