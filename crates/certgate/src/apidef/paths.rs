//! Per-version endpoint lists and expiry: Classic `version_data.versions.<v>` (`expires`,
//! `extended_paths.{ignored,white_list,black_list}`, legacy `paths.*`) and OAS
//! `middleware.operations.<id>.{allow,block,ignoreAuthentication}`, as Tyk's VersionCheck
//! applies them (`gateway/api_definition.go` `URLAllowedAndIgnored`, `RequestValid`).
//!
//! # Matching (Tyk 5 with `enable_path_prefix_matching` and `_suffix_` off, its default)
//! A pattern is prepared as Tyk's `httputil.PreparePathRegexp` does (`{name}` → `([^/]+)`
//! when the braces balance, `/*/` → `/[^/]+/`, `/*` → `/.*`), `(?i)` is prepended for
//! `ignore_case` / `ignore_endpoint_case`, and the regex is searched (not anchored) in the
//! request path with the listen path stripped, then in the full path. Rules are tried in
//! Tyk's order — ignored, black list, white list — and the first rule whose path and method
//! match decides. With a white list, a request no rule matches is refused.
//!
//! **certgate difference:** an `ignored` rule (which skips authentication) must match the
//! *whole* path (stripped or full): `/health` skips authentication for `/health` only, not
//! for `/orders/health` as Tyk's unanchored search would.

use std::sync::Arc;

use regex::Regex;
use serde_json::{json, Map, Value};

use super::field::Fields;
use super::ApiDefError;

/// `http_server_options.enable_path_prefix_matching` / `enable_path_suffix_matching`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathMatching {
    /// A pattern starting with `/` must match from the start of the path.
    pub prefix: bool,
    /// A pattern must match to the end of the path.
    pub suffix: bool,
}

/// Tyk's `expires` / `expiration` layout, `2006-01-02 15:04` (UTC).
pub const EXPIRY_FORMAT: &str = "2006-01-02 15:04";

/// Which list a rule comes from, in Tyk's evaluation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// `ignored`: the request skips authentication and the post-auth checks.
    Ignored,
    /// `black_list`: the request is refused.
    BlackList,
    /// `white_list`: the request is allowed (and everything unlisted is refused).
    WhiteList,
}

impl RuleKind {
    fn classic_key(self) -> &'static str {
        match self {
            Self::Ignored => "ignored",
            Self::BlackList => "black_list",
            Self::WhiteList => "white_list",
        }
    }
}

/// The methods a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleMethods {
    /// `method` empty and no `method_actions`: every method.
    Any,
    /// `method`: exactly this method (compared as sent, like Tyk's `==`).
    One(String),
    /// Deprecated `method_actions`: the methods listed; `true` for `no_action`, `false` for
    /// any other action except `reply` (which is refused at load), which Tyk blocks.
    Actions(Vec<(String, bool)>),
}

/// A compiled path pattern; compares by its source.
#[derive(Clone, Debug)]
pub struct Pattern {
    /// The regex as compiled with Tyk's default matching (prefix and suffix off).
    pub source: String,
    re: Arc<Regex>,
    /// The path after Tyk's preparation, before anchoring and `(?i)`.
    prepared: String,
    ignore_case: bool,
    /// Ignored rules: always anchored at both ends.
    whole: bool,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}
impl Eq for Pattern {}

impl Pattern {
    /// Whether the pattern matches `path` under `m` (Tyk's `PreparePathRegexp` anchoring).
    fn matches(&self, path: &str, m: PathMatching) -> bool {
        if self.whole || !(m.prefix || m.suffix) {
            return self.re.is_match(path);
        }
        let source = anchored(&self.prepared, self.ignore_case, m);
        cached_regex(&source).is_some_and(|re| re.is_match(path))
    }
}

/// Tyk's anchoring: `^` before a pattern starting with `/` (prefix), `$` after one not
/// ending with `$` (suffix); then `(?i)` for case-insensitive rules.
pub fn anchored(prepared: &str, ignore_case: bool, m: PathMatching) -> String {
    let mut p = String::with_capacity(prepared.len() + 6);
    if ignore_case {
        p.push_str("(?i)");
    }
    if m.prefix && prepared.starts_with('/') {
        p.push('^');
    }
    p.push_str(prepared);
    if m.suffix && !prepared.ends_with('$') {
        p.push('$');
    }
    p
}

const REGEX_CACHE_MAX: usize = 4096;

/// Compiled request-time patterns (`allowed_urls`, anchored list rules), shared by all
/// requests. An invalid pattern matches nothing (fail closed).
pub fn cached_regex(pattern: &str) -> Option<Arc<Regex>> {
    use std::collections::HashMap;
    use std::sync::{OnceLock, RwLock};
    static CACHE: OnceLock<RwLock<HashMap<String, Option<Arc<Regex>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| RwLock::new(HashMap::new()));
    if let Ok(c) = cache.read() {
        if let Some(r) = c.get(pattern) {
            return r.clone();
        }
    }
    let compiled = regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .ok()
        .map(Arc::new);
    if let Ok(mut c) = cache.write() {
        if c.len() >= REGEX_CACHE_MAX {
            c.clear();
        }
        c.insert(pattern.to_owned(), compiled.clone());
    }
    compiled
}

/// One entry of a white, black or ignored list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRule {
    /// The list it came from.
    pub kind: RuleKind,
    /// The path as written in the definition.
    pub path: String,
    /// The compiled pattern.
    pub pattern: Pattern,
    /// The methods it applies to.
    pub methods: RuleMethods,
    /// `ignore_case` as written (for the Classic form of OAS APIs).
    pub ignore_case: bool,
}

/// One version's restrictions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionRules {
    /// The key under `version_data.versions`.
    pub name: String,
    /// `expires` as unix seconds; `None` for never (`""` or `"-1"`).
    pub expires: Option<i64>,
    /// The rules in Tyk's order: ignored, then black list, then white list.
    pub rules: Vec<PathRule>,
}

/// What the lists decide for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointStatus {
    /// Proceed with authentication as usual.
    Ok,
    /// An `ignored` rule matched: no authentication.
    Ignored,
    /// Refused: `Requested endpoint is forbidden`.
    Forbidden,
}

impl VersionRules {
    /// Whether a white list is in force (Tyk's `WhiteListEnabled`).
    pub fn has_white_list(&self) -> bool {
        self.rules.iter().any(|r| r.kind == RuleKind::WhiteList)
    }

    /// Whether any rule skips authentication.
    pub fn has_ignored(&self) -> bool {
        self.rules.iter().any(|r| r.kind == RuleKind::Ignored)
    }

    /// Tyk's `URLAllowedAndIgnored` for `method` on `clean` (listen path stripped) and
    /// `full` (as received, decoded).
    pub fn evaluate(
        &self,
        method: &str,
        clean: &str,
        full: &str,
        m: PathMatching,
    ) -> EndpointStatus {
        for rule in &self.rules {
            if !(rule.pattern.matches(clean, m) || rule.pattern.matches(full, m)) {
                continue;
            }
            let allowed_action = match &rule.methods {
                RuleMethods::Any => true,
                RuleMethods::One(m) if m == method => true,
                RuleMethods::One(_) => continue,
                RuleMethods::Actions(list) => match list.iter().find(|(m, _)| m == method) {
                    Some((_, no_action)) => *no_action,
                    None => continue,
                },
            };
            if !allowed_action {
                return EndpointStatus::Forbidden;
            }
            return match rule.kind {
                RuleKind::Ignored => EndpointStatus::Ignored,
                RuleKind::BlackList => EndpointStatus::Forbidden,
                RuleKind::WhiteList => EndpointStatus::Ok,
            };
        }
        if self.has_white_list() {
            EndpointStatus::Forbidden
        } else {
            EndpointStatus::Ok
        }
    }

    /// The Classic `version_data.versions.<name>` entry for an OAS API.
    pub(super) fn to_classic_json(&self) -> Value {
        let mut lists = Map::new();
        for kind in [RuleKind::Ignored, RuleKind::WhiteList, RuleKind::BlackList] {
            let entries: Vec<Value> = self
                .rules
                .iter()
                .filter(|r| r.kind == kind)
                .map(|r| {
                    let method = match &r.methods {
                        RuleMethods::One(m) => m.as_str(),
                        _ => "",
                    };
                    json!({"path": r.path, "method": method, "ignore_case": r.ignore_case})
                })
                .collect();
            lists.insert(kind.classic_key().to_owned(), Value::Array(entries));
        }
        json!({
            "name": self.name,
            "use_extended_paths": true,
            "extended_paths": lists,
        })
    }
}

/// Tyk's `httputil.PreparePathRegexp` with prefix and suffix matching off.
pub fn prepare_pattern(path: &str, ignore_case: bool) -> String {
    let opens = path.matches('{').count();
    let mut p = if opens > 0 && opens == path.matches('}').count() {
        replace_mux_params(path)
    } else {
        path.to_owned()
    };
    if p.contains("/*") {
        p = p.replace("/*/", "/[^/]+/").replace("/*", "/.*");
    }
    if ignore_case {
        p.insert_str(0, "(?i)");
    }
    p
}

/// `{[^}]+}` → `([^/]+)`.
fn replace_mux_params(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if close > 0 => {
                out.push_str(&rest[..open]);
                out.push_str("([^/]+)");
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Compiles a rule, refusing a pattern that is not a valid regex.
pub(super) fn rule(
    kind: RuleKind,
    field: &str,
    path: &str,
    methods: RuleMethods,
    ignore_case: bool,
) -> Result<PathRule, ApiDefError> {
    let prepared = prepare_pattern(path, false);
    let default = anchored(&prepared, ignore_case, PathMatching::default());
    let whole = kind == RuleKind::Ignored;
    // Ignored rules skip authentication: they must match the whole path (certgate).
    let source = if whole {
        format!("^(?:{default})$")
    } else {
        default
    };
    let re = regex::RegexBuilder::new(&source)
        .size_limit(1 << 20)
        .build()
        .map_err(|_| {
            ApiDefError::Validation(format!(
                "{field}: path {path:?} is not a valid regular expression"
            ))
        })?;
    Ok(PathRule {
        kind,
        path: path.to_owned(),
        pattern: Pattern {
            source,
            re: Arc::new(re),
            prepared,
            ignore_case,
            whole,
        },
        methods,
        ignore_case,
    })
}

/// Parses `2006-01-02 15:04` (Go's `time.Parse`: hour of one or two digits) as UTC unix
/// seconds. `None` when malformed.
pub fn parse_expiry(text: &str) -> Option<i64> {
    let (date, clock) = text.split_once(' ')?;
    let mut d = date.split('-');
    let (y, m, day) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() || y.len() != 4 || m.len() != 2 || day.len() != 2 {
        return None;
    }
    let (h, min) = clock.split_once(':')?;
    if !(1..=2).contains(&h.len()) || min.len() != 2 {
        return None;
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if ![y, m, day, h, min].iter().all(|s| digits(s)) {
        return None;
    }
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let date = time::Date::from_calendar_date(y.parse().ok()?, month, day.parse().ok()?).ok()?;
    let clock = time::Time::from_hms(h.parse().ok()?, min.parse().ok()?, 0).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// Formats unix seconds in [`EXPIRY_FORMAT`] (the inverse of [`parse_expiry`]).
pub fn format_expiry(at: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(at) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        Err(_) => String::new(),
    }
}

/// `expires` / `expiration`: `None` for never (`""`, `"-1"`), else the instant, or a
/// validation error naming `field` (Tyk treats an unreadable date as already expired).
pub(super) fn expiry_field(f: Fields<'_>, key: &str) -> Result<Option<i64>, ApiDefError> {
    match f.opt_str(key)? {
        None | Some("") | Some("-1") => Ok(None),
        Some(text) => parse_expiry(text).map(Some).ok_or_else(|| {
            ApiDefError::Validation(format!(
                "{} must be a date in the form \"{EXPIRY_FORMAT}\" (UTC), \"\" or \"-1\"",
                f.path_of(key)
            ))
        }),
    }
}

/// `extended_paths` keys of middleware certgate does not implement that are harmless to
/// ignore (analytics only): accepted with a warning when non-empty.
const IGNORABLE_EXTENDED: [&str; 2] = ["track_endpoints", "do_not_track_endpoints"];

/// The three lists, in Tyk's order.
const LISTS: [RuleKind; 3] = [RuleKind::Ignored, RuleKind::BlackList, RuleKind::WhiteList];

/// Reads one Classic `version_data.versions.<name>` entry.
pub(super) fn classic_version(name: &str, f: Fields<'_>) -> Result<VersionRules, ApiDefError> {
    let use_extended = f.bool("use_extended_paths")?;
    let ignore_endpoint_case = f.bool("ignore_endpoint_case")?;
    let mut rules = Vec::new();
    let extended = f.opt_obj("extended_paths")?;
    let legacy = f.opt_obj("paths")?;
    if let Some(ext) = &extended {
        let ext = ext.fields();
        for key in ext.keys() {
            let listed = LISTS.iter().any(|k| k.classic_key() == key);
            if listed {
                continue;
            }
            let active = match ext.opt_array(key) {
                Ok(Some(items)) => items
                    .iter()
                    .any(|i| i.get("disabled") != Some(&Value::Bool(true))),
                Ok(None) => false,
                // Not an array (e.g. a misspelt object): refuse as unsupported.
                Err(_) => true,
            };
            if !active {
                continue;
            }
            if IGNORABLE_EXTENDED.contains(&key.as_str()) {
                tracing::warn!(field = %ext.path_of(key), "ignored: certgate keeps no per-endpoint analytics");
                continue;
            }
            return Err(ApiDefError::Validation(format!(
                "{} is not supported by certgate (only ignored, white_list and black_list are)",
                ext.path_of(key)
            )));
        }
        for kind in LISTS {
            let Some(items) = ext.opt_array(kind.classic_key())? else {
                continue;
            };
            if !use_extended {
                if items.is_empty() {
                    continue;
                }
                return Err(ApiDefError::Validation(format!(
                    "{} is set but use_extended_paths is false, so Tyk would ignore it: set \
                     {} to true or remove the list",
                    ext.path_of(kind.classic_key()),
                    f.path_of("use_extended_paths")
                )));
            }
            let field = ext.path_of(kind.classic_key());
            for (i, item) in items.iter().enumerate() {
                let entry = super::field::Obj::at(item, format!("{field}[{i}]"))?;
                if let Some(r) = extended_entry(kind, entry.fields(), ignore_endpoint_case)? {
                    rules.push(r);
                }
            }
        }
    }
    if let Some(paths) = &legacy {
        let paths = paths.fields();
        for kind in LISTS {
            let list = paths.str_list(kind.classic_key())?;
            if list.is_empty() {
                continue;
            }
            if use_extended {
                return Err(ApiDefError::Validation(format!(
                    "{} is set but use_extended_paths is true, so Tyk would ignore it: move it \
                     to extended_paths",
                    paths.path_of(kind.classic_key())
                )));
            }
            let field = paths.path_of(kind.classic_key());
            for path in list {
                rules.push(rule(kind, &field, &path, RuleMethods::Any, false)?);
            }
        }
    }
    // Tyk's order: every ignored rule, then black list, then white list.
    rules.sort_by_key(|r| LISTS.iter().position(|k| *k == r.kind));
    Ok(VersionRules {
        name: name.to_owned(),
        expires: expiry_field(f, "expires")?,
        rules,
    })
}

/// One `EndPointMeta`: `path`, `method`, `ignore_case`, `disabled`, `method_actions`.
fn extended_entry(
    kind: RuleKind,
    f: Fields<'_>,
    ignore_endpoint_case: bool,
) -> Result<Option<PathRule>, ApiDefError> {
    if f.bool("disabled")? {
        return Ok(None);
    }
    let path = f.string("path")?;
    let method = f.string("method")?;
    let ignore_case = f.bool("ignore_case")?;
    let methods = match f.opt_obj("method_actions")? {
        Some(actions) => {
            let actions = actions.fields();
            let mut list = Vec::new();
            for m in actions.keys() {
                let meta = actions.req_obj(m)?;
                let action = meta.fields().string("action")?;
                if action == "reply" {
                    return Err(ApiDefError::Validation(format!(
                        "{}: the reply action (mock response) is not supported by certgate",
                        actions.path_of(m)
                    )));
                }
                list.push((m.clone(), action == "no_action"));
            }
            RuleMethods::Actions(list)
        }
        None if method.is_empty() => RuleMethods::Any,
        None => RuleMethods::One(method),
    };
    rule(
        kind,
        &f.path_of("path"),
        &path,
        methods,
        ignore_case || ignore_endpoint_case,
    )
    .map(Some)
}

/// HTTP methods an OAS path item may hold.
const OAS_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// OAS `middleware.operations.<operationId>.{allow,block,ignoreAuthentication}`, placed on the
/// method and path that carry the `operationId` in `paths` (as Tyk's OAS → Classic
/// conversion does). An operation naming an unknown `operationId` with one of these enabled
/// is refused: its restriction would silently vanish.
pub(super) fn oas_rules(
    root: Fields<'_>,
    operations: Fields<'_>,
) -> Result<VersionRules, ApiDefError> {
    const ALLOWANCES: [(&str, RuleKind); 3] = [
        ("ignoreAuthentication", RuleKind::Ignored),
        ("block", RuleKind::BlackList),
        ("allow", RuleKind::WhiteList),
    ];
    let mut rules = Vec::new();
    for op_id in operations.keys() {
        let op = operations.req_obj(op_id)?;
        let op = op.fields();
        for (key, kind) in ALLOWANCES {
            let Some(allowance) = op.opt_obj(key)? else {
                continue;
            };
            let allowance = allowance.fields();
            if !allowance.bool("enabled")? {
                continue;
            }
            let ignore_case = allowance.bool("ignoreCase")?;
            let (path, method) = operation_route(root, op_id).ok_or_else(|| {
                ApiDefError::Validation(format!(
                    "{}: no operation with operationId {op_id:?} in paths",
                    op.path_of(key)
                ))
            })?;
            rules.push(rule(
                kind,
                &op.path_of(key),
                &path,
                RuleMethods::One(method),
                ignore_case,
            )?);
        }
    }
    rules.sort_by_key(|r| LISTS.iter().position(|k| *k == r.kind));
    Ok(VersionRules {
        name: "Default".to_owned(),
        expires: None,
        rules,
    })
}

/// The path and upper-case method of the operation with `op_id` in the OAS `paths`.
fn operation_route(root: Fields<'_>, op_id: &str) -> Option<(String, String)> {
    let paths = root.get("paths")?.as_object()?;
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for method in OAS_METHODS {
            let id = item
                .get(method)
                .and_then(|o| o.get("operationId"))
                .and_then(Value::as_str);
            if id == Some(op_id) {
                return Some((path.clone(), method.to_ascii_uppercase()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: PathMatching = PathMatching {
        prefix: false,
        suffix: false,
    };

    #[test]
    fn prefix_and_suffix_matching_anchor_as_tyk_does() {
        let v = rules(&[(RuleKind::WhiteList, "/users", RuleMethods::Any)]);
        let both = PathMatching {
            prefix: true,
            suffix: true,
        };
        let prefix = PathMatching {
            prefix: true,
            suffix: false,
        };
        assert_eq!(
            v.evaluate("GET", "/x/users", "/api/x/users", D),
            EndpointStatus::Ok
        );
        assert_eq!(
            v.evaluate("GET", "/x/users", "/api/x/users", prefix),
            EndpointStatus::Forbidden
        );
        assert_eq!(
            v.evaluate("GET", "/users/1", "/api/users/1", prefix),
            EndpointStatus::Ok
        );
        assert_eq!(
            v.evaluate("GET", "/users/1", "/api/users/1", both),
            EndpointStatus::Forbidden
        );
        assert_eq!(
            v.evaluate("GET", "/users", "/api/users", both),
            EndpointStatus::Ok
        );
        assert_eq!(anchored("/a", true, both), "(?i)^/a$");
    }

    fn rules(list: &[(RuleKind, &str, RuleMethods)]) -> VersionRules {
        VersionRules {
            rules: list
                .iter()
                .map(|(k, p, m)| rule(*k, "f", p, m.clone(), false).unwrap())
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn patterns_are_prepared_as_tyk_does() {
        assert_eq!(prepare_pattern("/users/{id}", false), "/users/([^/]+)");
        assert_eq!(prepare_pattern("/a/*/b/*", false), "/a/[^/]+/b/.*");
        assert_eq!(prepare_pattern("/x{2}", false), "/x([^/]+)");
        assert_eq!(prepare_pattern("/x{", false), "/x{");
        assert_eq!(prepare_pattern("/Users", true), "(?i)/Users");
    }

    #[test]
    fn lists_decide_in_tyks_order() {
        use RuleKind::*;
        let v = rules(&[
            (Ignored, "/health", RuleMethods::Any),
            (BlackList, "/admin", RuleMethods::Any),
            (WhiteList, "/users", RuleMethods::One("GET".into())),
        ]);
        let e = |m: &str, p: &str| v.evaluate(m, p, &format!("/api{p}"), D);
        assert_eq!(e("GET", "/users/1"), EndpointStatus::Ok);
        assert_eq!(e("POST", "/users/1"), EndpointStatus::Forbidden);
        assert_eq!(e("GET", "/admin"), EndpointStatus::Forbidden);
        assert_eq!(e("GET", "/other"), EndpointStatus::Forbidden);
        assert_eq!(e("GET", "/health"), EndpointStatus::Ignored);
        // Ignored rules match the whole path only (certgate).
        assert_eq!(e("GET", "/users/health"), EndpointStatus::Ok);
        assert_eq!(e("GET", "/health/x"), EndpointStatus::Forbidden);
        // Without a white list, unlisted paths pass; black list is a search.
        let v = rules(&[(BlackList, "/admin", RuleMethods::Any)]);
        assert_eq!(v.evaluate("GET", "/x", "/api/x", D), EndpointStatus::Ok);
        assert_eq!(
            v.evaluate("GET", "/x/admin/y", "/api/x/admin/y", D),
            EndpointStatus::Forbidden
        );
        // method_actions: listed method with no_action decides, other actions block,
        // unlisted methods fall through.
        let v = rules(&[
            (
                WhiteList,
                "/a",
                RuleMethods::Actions(vec![("GET".into(), true), ("PUT".into(), false)]),
            ),
            (WhiteList, "/b", RuleMethods::Any),
        ]);
        assert_eq!(v.evaluate("GET", "/a", "/a", D), EndpointStatus::Ok);
        assert_eq!(v.evaluate("PUT", "/a", "/a", D), EndpointStatus::Forbidden);
        assert_eq!(v.evaluate("POST", "/a", "/a", D), EndpointStatus::Forbidden);
        assert_eq!(v.evaluate("DELETE", "/b", "/b", D), EndpointStatus::Ok);
    }

    #[test]
    fn whole_match_finds_longer_alternatives() {
        let v = rules(&[(RuleKind::Ignored, "/a|/a/b", RuleMethods::Any)]);
        assert_eq!(
            v.evaluate("GET", "/a/b", "/a/b", D),
            EndpointStatus::Ignored
        );
        assert_eq!(v.evaluate("GET", "/a/bc", "/a/bc", D), EndpointStatus::Ok);
    }

    #[test]
    fn expiry_is_gos_layout() {
        assert_eq!(parse_expiry("1970-01-01 00:00"), Some(0));
        assert_eq!(parse_expiry("2000-03-01 1:05"), Some(951_872_700));
        assert_eq!(format_expiry(951_872_700), "2000-03-01 01:05");
        for bad in [
            "2000-3-01 10:05",
            "2000-02-30 10:00",
            "2000-01-01 24:00",
            "2000-01-01T10:00",
            "2000-01-01 10:00:00",
            "20000-01-01 10:00",
            "+200-01-01 10:00",
        ] {
            assert_eq!(parse_expiry(bad), None, "{bad}");
        }
    }
}
