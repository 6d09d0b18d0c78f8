//! The field audit (issue 12 #8): every field of `tyk.conf`, of Classic API definitions
//! and of `x-tyk-api-gateway` has a fate, listed in a table per parser and, identically,
//! in the "Field audit" section of `docs/compatibility.md` (a test compares them):
//!
//! - **honoured**: read and applied (possibly by refusing requests, fail closed);
//! - **refused**: the document is refused at load when the field is *set* — it would
//!   change who gets in or what reaches the upstream, and certgate does not implement it;
//! - **ignored**: accepted, with a warning at load naming it when it is set.
//!
//! A field absent from the table is unknown: a warning names it when it is set.
//!
//! *Set* means: not `null`, `false`, `0`, `""`, an empty array or object; an object with an
//! `enabled` / `enable` / `is_enabled` / `enable_cache` / `use_discovery_service` / `use_rpc`
//! flag is set
//! exactly when that flag is; another object when any of its values is set.

use serde_json::{Map, Value};

/// What certgate does with a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Read and applied.
    Honoured,
    /// Refused at load when set.
    Refused,
    /// Accepted; a warning names it when set.
    Ignored,
}

impl Fate {
    /// The word used in the documentation table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Honoured => "honoured",
            Self::Refused => "refused",
            Self::Ignored => "ignored",
        }
    }
}

/// One row of a parser's table. `path` is dotted; `*` stands for any key of a map.
#[derive(Clone, Copy, Debug)]
pub struct FieldFate {
    /// Dotted path below the scope's root.
    pub path: &'static str,
    /// Its fate.
    pub fate: Fate,
    /// Why, in a few words (shown in refusals and warnings).
    pub note: &'static str,
}

/// Shorthand constructors for the tables.
pub const fn honoured(path: &'static str, note: &'static str) -> FieldFate {
    FieldFate {
        path,
        fate: Fate::Honoured,
        note,
    }
}

/// See [`honoured`].
pub const fn refused(path: &'static str, note: &'static str) -> FieldFate {
    FieldFate {
        path,
        fate: Fate::Refused,
        note,
    }
}

/// See [`honoured`].
pub const fn ignored(path: &'static str, note: &'static str) -> FieldFate {
    FieldFate {
        path,
        fate: Fate::Ignored,
        note,
    }
}

/// A field found set whose fate needs telling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// A refused field is set: `<prefix><path> is not supported by certgate: <note>`.
    Refused(String),
    /// An ignored or unknown field is set (the warning text).
    Warning(String),
}

/// Whether a value counts as set (see the module docs).
pub fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items.iter().any(is_set),
        Value::Object(map) => {
            for flag in [
                "enabled",
                "enable",
                "is_enabled",
                "enable_cache",
                "use_discovery_service",
                "use_rpc",
            ] {
                if let Some(f) = map.get(flag) {
                    return is_set(f);
                }
            }
            map.values().any(is_set)
        }
    }
}

fn segments_match(pattern: &str, path: &[&str]) -> bool {
    let mut p = pattern.split('.');
    for seg in path {
        match p.next() {
            Some("*") => {}
            Some(s) if s == *seg => {}
            _ => return false,
        }
    }
    p.next().is_none()
}

fn has_children(table: &[FieldFate], path: &[&str]) -> bool {
    table.iter().any(|f| {
        let n = f.path.split('.').count();
        n > path.len() && {
            let prefix: Vec<&str> = f.path.split('.').take(path.len()).collect();
            segments_match(&prefix.join("."), path)
        }
    })
}

/// Audits `root` against `table`; `prefix` is prepended to paths in messages
/// (`"x-tyk-api-gateway."`). Honoured objects with rows below them are audited too.
pub fn audit(table: &[FieldFate], prefix: &str, root: &Map<String, Value>) -> Vec<Finding> {
    let mut out = Vec::new();
    walk(table, prefix, root, &mut Vec::new(), &mut out);
    out
}

fn walk<'a>(
    table: &[FieldFate],
    prefix: &str,
    obj: &'a Map<String, Value>,
    path: &mut Vec<&'a str>,
    out: &mut Vec<Finding>,
) {
    for (key, value) in obj {
        path.push(key);
        let shown = format!("{prefix}{}", path.join("."));
        match table.iter().find(|f| segments_match(f.path, path)) {
            Some(f) => match f.fate {
                Fate::Refused if is_set(value) => out.push(Finding::Refused(format!(
                    "{shown} is not supported by certgate: {}",
                    f.note
                ))),
                Fate::Ignored if is_set(value) => out.push(Finding::Warning(format!(
                    "{shown} is accepted but ignored by certgate: {}",
                    f.note
                ))),
                Fate::Honoured => {
                    if let Value::Object(child) = value {
                        if has_children(table, path) {
                            walk(table, prefix, child, path, out);
                        }
                    }
                }
                _ => {}
            },
            None => match value {
                // A map level (`*`) above rows: audit its entries.
                Value::Object(child) if has_children(table, path) => {
                    walk(table, prefix, child, path, out)
                }
                v if is_set(v) => out.push(Finding::Warning(format!(
                    "{shown} is not a field certgate knows; ignored"
                ))),
                _ => {}
            },
        }
        path.pop();
    }
}

/// Logs the warnings and returns the first refusal, if any.
pub fn first_refusal(findings: Vec<Finding>, what: &str) -> Option<String> {
    let mut refusal = None;
    for f in findings {
        match f {
            Finding::Warning(w) => tracing::warn!(source = what, "{w}"),
            Finding::Refused(r) => {
                refusal.get_or_insert(r);
            }
        }
    }
    refusal
}

/// The rows of the `## Field audit` section of `docs/compatibility.md` for `scope`:
/// `(field, fate)` pairs, for the documentation test.
#[cfg(test)]
pub fn doc_rows(doc: &str, scope: &str) -> Vec<(String, String)> {
    let section = doc.split("## Field audit").nth(1).unwrap_or("");
    section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() >= 5 && cells[1] == scope)
                .then(|| (cells[2].trim_matches('`').to_owned(), cells[3].to_owned()))
        })
        .collect()
}

/// Checks a table against the documentation (used by each parser's test).
#[cfg(test)]
pub fn assert_documented(table: &[FieldFate], scope: &str) {
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/compatibility.md");
    let doc = std::fs::read_to_string(doc_path).expect("docs/compatibility.md");
    let mut want: Vec<(String, String)> = table
        .iter()
        .map(|f| (f.path.to_owned(), f.fate.as_str().to_owned()))
        .collect();
    let mut got = doc_rows(&doc, scope);
    want.sort();
    got.sort();
    let missing: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
    let extra: Vec<_> = got.iter().filter(|g| !want.contains(g)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "docs/compatibility.md Field audit ({scope}) differs from the parser's table:\n\
         in the parser, not the doc: {missing:?}\nin the doc, not the parser: {extra:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T: &[FieldFate] = &[
        honoured("a", ""),
        honoured("p", ""),
        honoured("p.x", ""),
        refused("p.bad", "no"),
        ignored("q", "meh"),
        honoured("m", ""),
        refused("m.*.r", "nope"),
    ];

    #[test]
    fn fates_apply_when_set() {
        let root = json!({"a": 1, "p": {"x": 1, "bad": {"enabled": false, "v": 1}, "new": 0},
            "q": {"enable": false}, "z": "", "m": {"k": {"r": [{"path": "/"}]}}});
        let f = audit(T, "", root.as_object().unwrap());
        assert_eq!(
            f,
            [Finding::Refused(
                "m.k.r is not supported by certgate: nope".into()
            )]
        );
        let root = json!({"p": {"bad": true, "new": 1}, "q": 1, "z": "x"});
        let f = audit(T, "pre.", root.as_object().unwrap());
        assert_eq!(
            f,
            [
                Finding::Refused("pre.p.bad is not supported by certgate: no".into()),
                Finding::Warning("pre.p.new is not a field certgate knows; ignored".into()),
                Finding::Warning("pre.q is accepted but ignored by certgate: meh".into()),
                Finding::Warning("pre.z is not a field certgate knows; ignored".into()),
            ]
        );
    }

    #[test]
    fn doc_rows_are_read_from_the_section() {
        let doc = "| S | `a` | honoured | x |\n## Field audit\n| scope | field | fate | note |\n\
                   |---|---|---|---|\n| S | `b.c` | refused | y |\n| T | `d` | ignored | |\n";
        assert_eq!(doc_rows(doc, "S"), [("b.c".into(), "refused".into())]);
    }
}
