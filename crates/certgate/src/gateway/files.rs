//! API definitions and policies on disk: loading `app_path` and `policies.policy_path`,
//! and writing Gateway API changes there atomically (nothing half-written is ever loaded).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use crate::apidef::{self, ApiDefinition};
use crate::config::Config;

/// Loads every `*.json` policy in `policies.policy_path` (one object per file, keyed
/// by its `id`, else the file name). Bad files are reported and skipped.
pub(super) async fn load_policies(
    config: &Config,
    errors: &mut Vec<String>,
) -> BTreeMap<String, Value> {
    let Some(dir) = config.policies.policy_path.clone() else {
        return BTreeMap::new();
    };
    let (policies, errs) = tokio::task::spawn_blocking(move || load_policies_sync(&dir))
        .await
        .unwrap_or_else(|e| {
            (
                BTreeMap::new(),
                vec![format!("loading policies failed: {e}")],
            )
        });
    errors.extend(errs);
    policies
}

fn load_policies_sync(dir: &Path) -> (BTreeMap<String, Value>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (out, errors);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    paths.sort();
    for path in paths {
        let parsed = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Value>(&b).map_err(|e| e.to_string()));
        match parsed {
            Ok(v) if v.is_object() => {
                let id = v
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .or_else(|| path.file_stem().and_then(|s| s.to_str()).map(str::to_owned));
                if let Some(id) = id {
                    out.insert(id, v);
                }
            }
            Ok(_) => errors.push(format!(
                "{}: a policy must be a JSON object; skipped",
                path.display()
            )),
            Err(e) => errors.push(format!("{}: {e}; policy skipped", path.display())),
        }
    }
    (out, errors)
}

/// Checks an id used as a file name: `[A-Za-z0-9_.-]{1,255}`, not `.`/`..`.
pub fn validate_file_id(id: &str) -> Result<(), &'static str> {
    let ok = !id.is_empty()
        && id.len() <= 255
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err("id must be 1 to 255 characters from A-Z, a-z, 0-9, '_', '.' and '-'")
    }
}

/// Writes `name` in `dir` as pretty JSON, atomically.
pub async fn write_json_file(dir: &Path, name: &str, v: &Value) -> std::io::Result<()> {
    tokio::fs::create_dir_all(dir).await?;
    let bytes = serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?;
    write_atomic(&dir.join(name), &bytes).await
}

/// Loads every API definition in `dir`: `<id>.json` (Classic) and `<id>-oas.json`
/// (OAS, preferred over the Classic file of the same id, which Tyk writes beside it).
/// Files load in name order; a bad file is reported and skipped.
pub async fn load_app_path(dir: &Path) -> (Vec<ApiDefinition>, Vec<String>) {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || load_app_path_sync(&dir))
        .await
        .unwrap_or_else(|e| (Vec::new(), vec![format!("loading APIs failed: {e}")]))
}

fn load_app_path_sync(dir: &Path) -> (Vec<ApiDefinition>, Vec<String>) {
    let mut errors = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(app_path = %dir.display(), "app_path does not exist; no APIs loaded");
            return (Vec::new(), errors);
        }
        Err(e) => {
            errors.push(format!("cannot read app_path {}: {e}", dir.display()));
            return (Vec::new(), errors);
        }
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    names.sort();
    let mut defs = Vec::new();
    for path in &names {
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let is_oas = stem.ends_with("-oas");
        if !is_oas && dir.join(format!("{stem}-oas.json")).is_file() {
            continue; // the OAS document is the source of truth for this API
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                errors.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let parsed = if is_oas {
            apidef::parse_oas(&bytes)
        } else {
            apidef::parse_classic(&bytes)
        };
        match parsed {
            Ok(def) if def.spec.api_id.is_empty() => errors.push(format!(
                "{}: api_id is missing; API skipped",
                path.display()
            )),
            Ok(def) => defs.push(def),
            Err(e) => errors.push(format!("{}: {e}; API skipped", path.display())),
        }
    }
    (defs, errors)
}

/// Writes an API definition to `app_path`: `<id>.json` with the Classic form and, for
/// OAS APIs, `<id>-oas.json`, replacing what was there. Every file is written in full
/// (temporary file, synced) before any is renamed into place, so a failed write leaves
/// the previous definition whole. A Classic definition replacing an OAS API removes the
/// stale `<id>-oas.json`, which the loader would otherwise prefer.
pub async fn write_api_files(app_path: &Path, def: &ApiDefinition) -> std::io::Result<()> {
    let (classic_name, oas_name) = apidef::file_names(&def.spec.api_id, def.oas.is_some());
    tokio::fs::create_dir_all(app_path).await?;
    let mut files = Vec::with_capacity(2);
    if let (Some(name), Some(oas)) = (oas_name, &def.oas) {
        files.push((
            name,
            serde_json::to_vec_pretty(oas).map_err(std::io::Error::other)?,
        ));
    }
    let classic = serde_json::to_vec_pretty(&def.classic).map_err(std::io::Error::other)?;
    files.push((classic_name, classic));
    let mut staged = Vec::with_capacity(files.len());
    for (name, bytes) in &files {
        let path = app_path.join(name);
        match stage(&path, bytes).await {
            Ok(tmp) => staged.push((tmp, path)),
            Err(e) => {
                for (tmp, _) in &staged {
                    let _ = tokio::fs::remove_file(tmp).await;
                }
                return Err(e);
            }
        }
    }
    // The OAS document first: while it is in place the loader ignores `<id>.json`.
    let mut result = Ok(());
    for (tmp, path) in &staged {
        if result.is_ok() {
            result = tokio::fs::rename(tmp, path).await;
        }
        if result.is_err() {
            let _ = tokio::fs::remove_file(tmp).await;
        }
    }
    result?;
    if def.oas.is_none() {
        let (_, stale) = apidef::file_names(&def.spec.api_id, true);
        if let Some(stale) = stale {
            match tokio::fs::remove_file(app_path.join(stale)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Removes an API's files. True if anything was removed.
pub async fn remove_api_files(app_path: &Path, api_id: &str) -> std::io::Result<bool> {
    let (classic, oas) = apidef::file_names(api_id, true);
    let mut removed = false;
    for name in std::iter::once(classic).chain(oas) {
        match tokio::fs::remove_file(app_path.join(name)).await {
            Ok(()) => removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

async fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = stage(path, bytes).await?;
    match tokio::fs::rename(&tmp, path).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(e)
        }
    }
}

/// Writes `bytes` to a synced temporary file beside `path`; returns its path.
async fn stage(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = path.with_extension(format!("json.tmp-{}-{n}", std::process::id()));
    let written = async {
        use tokio::io::AsyncWriteExt;
        let mut f = tokio::fs::File::create(&tmp).await?;
        f.write_all(bytes).await?;
        f.sync_all().await
    }
    .await;
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(e)
        }
    }
}
