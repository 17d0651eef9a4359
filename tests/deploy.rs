//! The deploy artifacts (deploy/) against the gateway they deploy:
//!
//! - every `hookgate_*` metric that the Grafana dashboard, the Prometheus rules and the rules'
//!   unit tests use exists in a live scrape of a gateway that has served a few requests
//!   (histograms as their `_bucket`, `_sum` and `_count` series; names listed in
//!   deploy/grafana/pending-metrics.txt excepted), with label names the series carry and
//!   `outcome`/`result` values the gateway uses; every recording rule used is defined;
//! - every hookgate config that the Kubernetes manifests embed is valid with the environment the
//!   manifest gives its container (values from Secrets replaced by a dummy), and agrees with the
//!   manifest: ports, probes, scrape annotations, drain timing, memory, upstreams and Services.
//!
//! `.ci/deploy-checks` checks the rest: Kubernetes schemas, promtool, the Dockerfile.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Gateway, Upstream, post, send};
use hookgate::config::{Config, Upstream as Target};
use http::StatusCode;
use serde::Deserialize as _;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every document of a YAML file, as JSON values (empty documents left out).
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The files under `dir` whose names end in one of `extensions`, sorted.
fn files_under(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if extensions.iter().any(|ext| path.extension().is_some_and(|e| e == *ext)) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

// ================================================================================================
// Metric names

/// A PromQL token, as far as finding metric names and labels needs.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Op(&'static str),
    Punct(char),
    /// A number, a duration, or a Grafana variable.
    Skip,
}

fn tokenize(expr: &str) -> Vec<Tok> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if matches!(c, '"' | '\'' | '`') {
            let mut value = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && c != '`' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
            i += 1;
            out.push(Tok::Str(value));
        } else if c == '$' {
            i += 1;
            if chars.get(i) == Some(&'{') {
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            out.push(Tok::Skip);
        } else if c.is_ascii_digit() || (c == '.' && next.is_some_and(|d| d.is_ascii_digit())) {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Skip);
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            let pair: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if let Some(op) = ["=~", "!~", "!=", "==", ">=", "<="].into_iter().find(|op| pair == *op) {
                out.push(Tok::Op(op));
                i += 2;
            } else {
                out.push(if c == '=' { Tok::Op("=") } else { Tok::Punct(c) });
                i += 1;
            }
        }
    }
    out
}

/// A metric name as used, with its label matchers `(label, op, value)`.
#[derive(Debug)]
struct Selector {
    name: String,
    matchers: Vec<(String, String, String)>,
    at: String,
}

/// What the deploy artifacts use.
#[derive(Debug, Default)]
struct Usage {
    selectors: Vec<Selector>,
    /// Label names in `by`, `without`, `on`, `ignoring`, `group_left`, `group_right` and
    /// Grafana's `label_values()`, with where.
    grouping: Vec<(String, String)>,
    /// Recording rules the rules files define.
    recorded: BTreeSet<String>,
}

const GROUPING: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan"];

impl Usage {
    /// Records the names and labels of one PromQL expression.
    fn promql(&mut self, expr: &str, at: &str) {
        let toks = tokenize(expr);
        let mut i = 0;
        while i < toks.len() {
            match &toks[i] {
                // Ranges and subqueries: durations only.
                Tok::Punct('[') => {
                    while i < toks.len() && toks[i] != Tok::Punct(']') {
                        i += 1;
                    }
                    i += 1;
                }
                Tok::Punct('{') => {
                    let (matchers, next) = matchers(&toks, i);
                    self.selectors.push(Selector { name: String::new(), matchers, at: at.to_owned() });
                    i = next;
                }
                Tok::Ident(word) => {
                    let lower = word.to_ascii_lowercase();
                    let call = toks.get(i + 1) == Some(&Tok::Punct('('));
                    if GROUPING.contains(&lower.as_str()) {
                        i += 1;
                        if call {
                            i += 1;
                            while i < toks.len() && toks[i] != Tok::Punct(')') {
                                if let Tok::Ident(label) = &toks[i] {
                                    self.grouping.push((label.clone(), at.to_owned()));
                                }
                                i += 1;
                            }
                            i += 1;
                        }
                    } else if call || KEYWORDS.contains(&lower.as_str()) {
                        i += 1;
                    } else {
                        let (matchers, next) = match toks.get(i + 1) {
                            Some(Tok::Punct('{')) => matchers(&toks, i + 1),
                            _ => (Vec::new(), i + 1),
                        };
                        self.selectors.push(Selector { name: word.clone(), matchers, at: at.to_owned() });
                        i = next;
                    }
                }
                _ => i += 1,
            }
        }
    }

    /// A Grafana variable query: `label_values(selector, label)`, `label_values(label)`, or PromQL.
    fn grafana_variable(&mut self, query: &str, at: &str) {
        let Some(inner) = query.trim().strip_prefix("label_values(").and_then(|q| q.strip_suffix(')')) else {
            return self.promql(query, at);
        };
        let (selector, label) = inner.rsplit_once(',').unwrap_or(("", inner));
        self.promql(selector, at);
        self.grouping.push((label.trim().to_owned(), at.to_owned()));
    }

    /// Every `expr` in a Grafana dashboard (panels, rows' panels, annotations) and every query
    /// variable.
    fn dashboard(&mut self, value: &Value, at: &str) {
        match value {
            Value::Object(object) => {
                let here = match object.get("title").or_else(|| object.get("name")).and_then(Value::as_str) {
                    Some(title) => format!("{at} > {title}"),
                    None => at.to_owned(),
                };
                if let Some(Value::String(expr)) = object.get("expr") {
                    self.promql(expr, &here);
                }
                if object.get("type").and_then(Value::as_str) == Some("query") {
                    match object.get("query") {
                        Some(Value::String(query)) => self.grafana_variable(query, &here),
                        Some(Value::Object(query)) => {
                            let query = query.get("query").and_then(Value::as_str).unwrap_or_default();
                            self.grafana_variable(query, &here);
                        }
                        _ => {}
                    }
                }
                for (key, child) in object {
                    if key != "expr" && key != "query" {
                        self.dashboard(child, &here);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| self.dashboard(item, at)),
            _ => {}
        }
    }

    /// A Prometheus rules file, or a promtool rule-test file.
    fn prometheus(&mut self, doc: &Value, file: &str) {
        for group in doc["groups"].as_array().into_iter().flatten() {
            for rule in group["rules"].as_array().into_iter().flatten() {
                let name = rule["record"].as_str().or(rule["alert"].as_str()).unwrap_or("?");
                if let Some(record) = rule["record"].as_str() {
                    self.recorded.insert(record.to_owned());
                }
                self.promql(rule["expr"].as_str().unwrap_or_default(), &format!("{file} > {name}"));
            }
        }
        for (i, test) in doc["tests"].as_array().into_iter().flatten().enumerate() {
            let at = format!("{file} > tests[{i}]");
            for series in test["input_series"].as_array().into_iter().flatten() {
                self.promql(series["series"].as_str().unwrap_or_default(), &at);
            }
            for case in test["promql_expr_test"].as_array().into_iter().flatten() {
                self.promql(case["expr"].as_str().unwrap_or_default(), &at);
                for sample in case["exp_samples"].as_array().into_iter().flatten() {
                    self.promql(sample["labels"].as_str().unwrap_or_default(), &at);
                }
            }
        }
    }
}

/// The matchers of `{a="x", b=~"y"}` whose `{` is at `start`, and the index after its `}`.
fn matchers(toks: &[Tok], start: usize) -> (Vec<(String, String, String)>, usize) {
    let mut found = Vec::new();
    let mut i = start + 1;
    while i < toks.len() && toks[i] != Tok::Punct('}') {
        if let (Some(Tok::Ident(label)), Some(Tok::Op(op)), Some(Tok::Str(value))) =
            (toks.get(i), toks.get(i + 1), toks.get(i + 2))
        {
            found.push((label.clone(), (*op).to_owned(), value.clone()));
            i += 3;
        } else {
            i += 1;
        }
    }
    (found, i + 1)
}

/// What a scrape of /metrics holds.
#[derive(Debug, Default)]
struct Exported {
    /// Series name (`_bucket` and all) -> label name -> values seen.
    series: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// Family name -> type, from `# TYPE` lines.
    types: BTreeMap<String, String>,
}

impl Exported {
    fn parse(text: &str) -> Self {
        let mut exported = Self::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
                exported.types.insert(name.to_owned(), kind.trim().to_owned());
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let toks = tokenize(line.rsplit_once(' ').expect("`series value`").0);
            let Some(Tok::Ident(name)) = toks.first() else { panic!("no metric name in {line:?}") };
            let labels = exported.series.entry(name.clone()).or_default();
            if toks.get(1) == Some(&Tok::Punct('{')) {
                for (label, _, value) in matchers(&toks, 1).0 {
                    labels.entry(label).or_default().insert(value);
                }
            }
        }
        exported
    }
}

/// Labels Prometheus adds to every series it scrapes (kubernetes_sd and prometheus-operator).
const TARGET_LABELS: &[&str] = &["job", "instance", "namespace", "pod", "service", "container", "endpoint"];
/// Labels whose values are a fixed set the gateway defines (route names are the config's).
const CHECKED_VALUES: &[&str] = &["outcome", "result"];

/// deploy/grafana/pending-metrics.txt: name -> why it is not exported yet.
fn parse_pending(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut pending = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let Some((name, reason)) = line.split_once('#') else {
            return Err(format!("{line:?}: say why after a `#`"));
        };
        let (name, reason) = (name.trim(), reason.trim());
        let valid = name
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit()));
        if !valid || name.is_empty() || reason.is_empty() {
            return Err(format!("{line:?}: want `metric_name  # why it is not exported yet`"));
        }
        pending.insert(name.to_owned(), reason.to_owned());
    }
    Ok(pending)
}

/// Problems with what the artifacts use, and notes (pending names exported by now, exported
/// families no artifact shows).
fn check_usage(usage: &Usage, exported: &Exported, pending: &BTreeMap<String, String>) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let hookgate = |name: &str| name.starts_with("hookgate_");
    let mut known_labels: BTreeSet<&str> = TARGET_LABELS.iter().copied().collect();
    let mut known_values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (_, labels) in exported.series.iter().filter(|(name, _)| hookgate(name)) {
        for (label, values) in labels {
            known_labels.insert(label);
            known_values.entry(label).or_default().extend(values.iter().map(String::as_str));
        }
    }
    let check_value = |problems: &mut Vec<String>, at: &str, label: &str, op: &str, value: &str| {
        if !CHECKED_VALUES.contains(&label) || value.contains('$') || value.is_empty() {
            return;
        }
        let alternatives: Vec<&str> = match op {
            "=" | "!=" => vec![value],
            _ if value.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c == '|') => value.split('|').collect(),
            _ => return,
        };
        let known = known_values.get(label).cloned().unwrap_or_default();
        for alternative in alternatives.into_iter().filter(|a| !known.contains(a)) {
            problems.push(format!(
                "{at}: {label} {op} {value:?}: the gateway has no {label} {alternative:?} (it has {known:?})"
            ));
        }
    };

    let mut used = BTreeSet::new();
    for selector in &usage.selectors {
        let (name, at) = (selector.name.as_str(), selector.at.as_str());
        used.insert(name);
        let allowed: Option<BTreeSet<&str>> = if name.contains(':') {
            if !usage.recorded.contains(name) {
                problems.push(format!("{at}: recording rule {name} is not defined in deploy/prometheus"));
            }
            Some(known_labels.clone())
        } else if !hookgate(name) {
            None // Prometheus' own series (up, ALERTS) and nameless selectors.
        } else if let Some(labels) = exported.series.get(name) {
            Some(labels.keys().map(String::as_str).chain(TARGET_LABELS.iter().copied()).collect())
        } else if pending.contains_key(name) {
            None
        } else if exported.types.get(name).is_some_and(|t| t == "histogram" || t == "summary") {
            problems.push(format!("{at}: {name} is a histogram: query {name}_bucket, {name}_sum or {name}_count"));
            None
        } else {
            let names: Vec<&String> = exported.series.keys().filter(|n| hookgate(n)).collect();
            problems.push(format!("{at}: {name} is not exported by the gateway (it exports {names:?})"));
            None
        };
        let Some(allowed) = allowed else { continue };
        for (label, op, value) in &selector.matchers {
            if !allowed.contains(label.as_str()) {
                problems.push(format!("{at}: {name} has no label {label:?} (it has {allowed:?})"));
            }
            check_value(&mut problems, at, label, op, value);
        }
    }
    for (label, at) in &usage.grouping {
        if !known_labels.contains(label.as_str()) && label != "le" {
            problems.push(format!("{at}: no hookgate series has the label {label:?} (labels: {known_labels:?})"));
        }
    }
    for name in pending.keys() {
        let is_exported = exported.series.contains_key(name) || exported.types.contains_key(name);
        if !used.contains(name.as_str()) {
            problems.push(format!("pending-metrics.txt lists {name}, which nothing uses: delete it"));
        } else if is_exported {
            notes.push(format!("pending-metrics.txt lists {name}, which the gateway exports now: delete it"));
        }
    }
    for family in exported.types.keys().filter(|f| hookgate(f)) {
        if !used
            .iter()
            .any(|u| u.strip_prefix(family.as_str()).is_some_and(|s| ["", "_bucket", "_sum", "_count"].contains(&s)))
        {
            notes.push(format!("{family} is exported, and neither the dashboard nor the rules use it"));
        }
    }
    let mut seen = BTreeSet::new();
    problems.retain(|p| seen.insert(p.clone()));
    (problems, notes)
}

/// Every name, label and value the dashboard, the rules and the rule tests use.
fn deploy_usage() -> Usage {
    let mut usage = Usage::default();
    let dashboard = root().join("deploy/grafana/hookgate.json");
    let json: Value = serde_json::from_str(&read(&dashboard)).expect("the dashboard is JSON");
    usage.dashboard(&json, "deploy/grafana/hookgate.json");
    for path in files_under(&root().join("deploy/prometheus"), &["yml", "yaml"]) {
        let file = path.strip_prefix(root()).expect("under the root").display().to_string();
        for doc in yaml_docs(&path) {
            usage.prometheus(&doc, &file);
        }
    }
    usage
}

fn pending() -> BTreeMap<String, String> {
    let path = root().join("deploy/grafana/pending-metrics.txt");
    parse_pending(&read(&path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const SCRAPED_ROUTES: &str = r#"
routes:
  - name: github
    path: /webhooks/github
    upstream: "{upstream}"
    verify: { scheme: github, secret: deploy-test-secret }
  - name: rollout
    path: /webhooks/rollout
    upstream: "{upstream}"
    enforce: false
    verify: { scheme: github, secret: deploy-test-secret }
"#;

#[tokio::test]
async fn every_metric_the_dashboard_and_the_rules_use_is_exported() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(SCRAPED_ROUTES, &upstream).await;
    // A verified request (both histograms observe it), an unsigned one, an unmatched path, and a
    // report-only verdict (hookgate_report_only_total has series only once one is counted).
    assert_eq!(send(gateway.signed_post("github", "/webhooks/github", "{}")).await.status, StatusCode::OK);
    assert_eq!(send(post(gateway.url("/webhooks/github"), "{}")).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(send(post(gateway.url("/nowhere"), "{}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(send(post(gateway.url("/webhooks/rollout"), "{}")).await.status, StatusCode::OK);
    let reply = gateway.admin_get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    let exported = Exported::parse(reply.text());

    let usage = deploy_usage();
    // The parser found what the artifacts are about (an empty usage would pass vacuously).
    for name in ["hookgate_requests_total", "hookgate_request_duration_seconds_bucket", "hookgate_inflight_requests"] {
        assert!(usage.selectors.iter().any(|s| s.name == name), "the dashboard or the rules use {name}");
    }
    assert!(usage.selectors.len() > 50, "{} selectors found", usage.selectors.len());
    let (problems, notes) = check_usage(&usage, &exported, &pending());
    for note in &notes {
        eprintln!("note: {note}");
    }
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_name_check_catches_misspellings_and_honours_the_pending_list() {
    let exported = Exported::parse(concat!(
        "# TYPE hookgate_requests_total counter\n",
        "hookgate_requests_total{outcome=\"forwarded\",route=\"a\"} 1\n",
        "hookgate_requests_total{outcome=\"invalid_signature\",route=\"a\"} 0\n",
        "# TYPE hookgate_request_duration_seconds histogram\n",
        "hookgate_request_duration_seconds_bucket{route=\"a\",le=\"+Inf\"} 1\n",
        "hookgate_request_duration_seconds_sum{route=\"a\"} 0.1\n",
        "hookgate_request_duration_seconds_count{route=\"a\"} 1\n",
    ));
    let check = |exprs: &[&str], pending: &str| {
        let mut usage = Usage::default();
        usage.recorded.insert("job:hookgate_requests:rate5m".to_owned());
        for expr in exprs {
            usage.promql(expr, "test");
        }
        let pending = parse_pending(pending).expect("a valid pending list");
        check_usage(&usage, &exported, &pending)
    };
    let problems = |exprs: &[&str], pending: &str| check(exprs, pending).0;

    let good = [
        r#"sum by (route, outcome) (rate(hookgate_requests_total{route=~"$route", outcome=~"forwarded|invalid_signature"}[$__rate_interval])) > 0"#,
        "histogram_quantile(0.99, sum by (le) (rate(hookgate_request_duration_seconds_bucket[5m])))",
        "rate(hookgate_request_duration_seconds_sum[5m]) / rate(hookgate_request_duration_seconds_count[5m])",
        r#"job:hookgate_requests:rate5m{job="x"} and on (job, instance) up == 0"#,
    ];
    assert_eq!(problems(&good, ""), Vec::<String>::new());

    // A misspelt name, a histogram's base name, an undefined recording rule.
    assert_eq!(problems(&["rate(hookgate_request_total[5m])"], "").len(), 1);
    assert_eq!(problems(&["hookgate_request_duration_seconds"], "").len(), 1);
    assert_eq!(problems(&["job:hookgate_request:rate5m"], "").len(), 1);
    // A label the series lacks, an outcome that does not exist, a grouping label that no series has.
    assert_eq!(problems(&[r#"hookgate_requests_total{rout="a"}"#], "").len(), 1);
    assert_eq!(problems(&[r#"hookgate_requests_total{outcome=~"forwarded|invalid_signatur"}"#], "").len(), 1);
    assert_eq!(problems(&[r#"hookgate_requests_total{outcome="forwarde"}"#], "").len(), 1);
    assert_eq!(problems(&["sum by (outcom) (hookgate_requests_total)"], "").len(), 1);

    // A pending name passes, with its labels unchecked; an unused entry fails; one exported by
    // now is a note; an entry must say why.
    let future = [r#"increase(hookgate_replays_total{result="hit"}[5m])"#];
    assert_eq!(problems(&future, ""), vec![
        "test: hookgate_replays_total is not exported by the gateway (it exports [\"hookgate_request_duration_seconds_bucket\", \"hookgate_request_duration_seconds_count\", \"hookgate_request_duration_seconds_sum\", \"hookgate_requests_total\"])".to_owned()
    ]);
    assert_eq!(
        problems(&future, "hookgate_replays_total  # replay protection, not merged yet\n"),
        Vec::<String>::new()
    );
    assert_eq!(problems(&good, "hookgate_replays_total  # replay protection\n").len(), 1);
    let (problems, notes) = check(&good, "hookgate_requests_total  # was pending\n");
    assert!(problems.is_empty() && notes.iter().any(|n| n.contains("exports now")), "{problems:?} {notes:?}");
    assert!(parse_pending("hookgate_replays_total\n").is_err());
    assert!(parse_pending("hookgate_replays_total #\n").is_err());
    assert!(parse_pending("# only comments\n\n").is_ok_and(|p| p.is_empty()));
}

// ================================================================================================
// Manifests and the configs they embed

const DEFAULT_CONFIG: &str = "/etc/hookgate/gateway.yaml";
/// What a `${VAR}` from a Secret becomes: valid for every shared-secret scheme.
const DUMMY_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Beyond the drain, what terminationGracePeriodSeconds leaves for the process to exit.
const GRACE_MARGIN: Duration = Duration::from_secs(5);
/// Beyond the bodies hookgate may hold at once, memory for everything else.
const MEMORY_HEADROOM: u64 = 32 << 20;

/// One directory of manifests (a kustomization): every document with its file.
struct Bundle {
    docs: Vec<(PathBuf, Value)>,
}

impl Bundle {
    fn all() -> Vec<Bundle> {
        let mut by_dir: BTreeMap<PathBuf, Vec<(PathBuf, Value)>> = BTreeMap::new();
        for path in files_under(&root().join("deploy/kubernetes"), &["yaml", "yml"]) {
            let dir = path.parent().expect("a directory").to_path_buf();
            for doc in yaml_docs(&path) {
                by_dir.entry(dir.clone()).or_default().push((path.clone(), doc));
            }
        }
        by_dir.into_values().map(|docs| Bundle { docs }).collect()
    }

    fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.docs.iter().map(|(_, d)| d).find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
    }
}

fn is_hookgate(container: &Value) -> bool {
    let image = container["image"].as_str().unwrap_or_default();
    let name = image.split('@').next().unwrap_or_default().rsplit('/').next().unwrap_or_default();
    name.split(':').next() == Some("hookgate")
}

fn port_named(container: &Value, name: &str) -> Option<u16> {
    container["ports"].as_array()?.iter().find(|p| p["name"] == name)?["containerPort"].as_u64()?.try_into().ok()
}

fn pre_stop_sleep(container: &Value) -> Duration {
    Duration::from_secs(container["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64().unwrap_or(0))
}

/// A Kubernetes quantity of bytes: `192Mi`, `1Gi`, `500M`, `1048576`.
fn bytes(quantity: &str) -> u64 {
    let units =
        [("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("k", 1000), ("M", 1_000_000), ("G", 1_000_000_000)];
    let (number, unit) = units
        .iter()
        .find_map(|(suffix, unit)| quantity.strip_suffix(suffix).map(|n| (n, *unit)))
        .unwrap_or((quantity, 1));
    number.parse::<u64>().unwrap_or_else(|_| panic!("a byte quantity, not {quantity:?}")) * unit
}

/// The config a hookgate container reads, and the environment it runs with.
fn container_config(
    bundle: &Bundle,
    pod: &Value,
    container: &Value,
    problems: &mut Vec<String>,
) -> Option<(String, BTreeMap<String, String>)> {
    let args: Vec<&str> = container["args"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let config_path = args
        .iter()
        .position(|a| *a == "--config" || *a == "-c")
        .and_then(|i| args.get(i + 1).copied())
        .unwrap_or(DEFAULT_CONFIG);
    let mounts = container["volumeMounts"].as_array().into_iter().flatten();
    let Some(mount) = mounts.into_iter().find(|m| {
        let at = m["mountPath"].as_str().unwrap_or_default().trim_end_matches('/');
        config_path == at || config_path.strip_prefix(at).is_some_and(|rest| rest.starts_with('/'))
    }) else {
        problems.push(format!("nothing is mounted at {config_path}"));
        return None;
    };
    let at = mount["mountPath"].as_str().unwrap_or_default().trim_end_matches('/');
    let volume = pod["volumes"].as_array().into_iter().flatten().find(|v| v["name"] == mount["name"]);
    let Some(config_map) = volume.map(|v| &v["configMap"]).filter(|c| c.is_object()) else {
        problems.push(format!("{config_path} is not from a ConfigMap"));
        return None;
    };
    let mut key = mount["subPath"].as_str().unwrap_or(&config_path[(at.len() + 1).min(config_path.len())..]).to_owned();
    for item in config_map["items"].as_array().into_iter().flatten() {
        if item["path"] == key.as_str() {
            key = item["key"].as_str().unwrap_or_default().to_owned();
        }
    }
    let name = config_map["name"].as_str().unwrap_or_default();
    let Some(text) = bundle.find("ConfigMap", name).and_then(|cm| cm["data"][&key].as_str()) else {
        problems.push(format!("no ConfigMap {name} with key {key} beside the Deployment"));
        return None;
    };
    let mut env = BTreeMap::new();
    for var in container["env"].as_array().into_iter().flatten() {
        let var_name = var["name"].as_str().unwrap_or_default().to_owned();
        if let Some(value) = var["value"].as_str() {
            env.insert(var_name, value.to_owned());
            continue;
        }
        let secret_ref = &var["valueFrom"]["secretKeyRef"];
        if let (Some(secret), Some(key)) = (secret_ref["name"].as_str(), secret_ref["key"].as_str()) {
            match bundle.find("Secret", secret) {
                Some(s) if s["stringData"].get(key).is_none() && s["data"].get(key).is_none() => {
                    problems.push(format!("env {var_name}: Secret {secret} has no key {key}"))
                }
                None => problems.push(format!("env {var_name}: no Secret {secret} beside the Deployment")),
                Some(_) => {}
            }
        }
        env.insert(var_name, DUMMY_SECRET.to_owned());
    }
    if container.get("envFrom").is_some() {
        problems.push("envFrom: name each variable in env, so the config's ${VAR}s can be checked".to_owned());
    }
    Some((text.to_owned(), env))
}

/// Everything a manifest and its hookgate config must agree on.
fn check_gateway(bundle: &Bundle, workload: &Value, pod: &Value, container: &Value, config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    let http = port_named(container, "http");
    let admin = port_named(container, "admin");
    if http != Some(config.listen.port()) || admin != Some(config.admin_listen.port()) {
        problems.push(format!(
            "container ports http {http:?} / admin {admin:?} are not the config's listen {} / admin_listen {}",
            config.listen, config.admin_listen
        ));
    }
    if !config.listen.ip().is_unspecified() || !config.admin_listen.ip().is_unspecified() {
        problems
            .push("listen and admin_listen must bind 0.0.0.0 in a pod (Services and probes use the pod IP)".to_owned());
    }
    for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
        let get = &container[probe]["httpGet"];
        let on_admin = get["port"] == "admin" || get["port"].as_u64() == admin.map(u64::from);
        if get["path"] != path || !on_admin {
            problems.push(format!("{probe} must GET {path} on the admin port"));
        }
    }
    let annotations = &workload["spec"]["template"]["metadata"]["annotations"];
    if let Some(port) = annotations["prometheus.io/port"].as_str()
        && (port.parse::<u16>().ok() != admin || annotations["prometheus.io/path"] != "/metrics")
    {
        problems.push(format!("prometheus.io/port {port} and path must be the admin port and /metrics"));
    }

    // Drain: the preStop sleep, then shutdown_timeout, within the grace period; a drain long
    // enough for the slowest upstream.
    let grace = Duration::from_secs(pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30));
    let pre_stop = pre_stop_sleep(container);
    if pre_stop.is_zero() {
        problems.push("no preStop sleep: the pod would stop accepting before endpoints drop it".to_owned());
    }
    if pre_stop + config.shutdown_timeout + GRACE_MARGIN > grace {
        problems.push(format!(
            "terminationGracePeriodSeconds {}s < preStop {}s + shutdown_timeout {:?} + {}s",
            grace.as_secs(),
            pre_stop.as_secs(),
            config.shutdown_timeout,
            GRACE_MARGIN.as_secs()
        ));
    }
    for route in config.routes.iter().filter(|r| r.upstream_timeout > config.shutdown_timeout) {
        problems.push(format!(
            "route {}: upstream_timeout {:?} is longer than shutdown_timeout {:?}: a drain would cut it",
            route.name, route.upstream_timeout, config.shutdown_timeout
        ));
    }

    // Memory: the bodies hookgate may hold at once, in the worst case twice their size (they stay
    // in the buffers they were read into: `hookgate::body::Collector`).
    let largest_body = config.routes.iter().map(|r| r.max_body_bytes).max().unwrap_or(0) as u64;
    let bodies = 2 * config.limits.max_concurrent_requests as u64 * largest_body;
    match container["resources"]["limits"]["memory"].as_str().map(bytes) {
        Some(limit) if limit >= bodies + MEMORY_HEADROOM => {}
        limit => problems.push(format!(
            "memory limit {limit:?} bytes is below 2 x max_concurrent_requests x max_body_bytes ({bodies}) + {MEMORY_HEADROOM}"
        )),
    }

    // Sidecar: the app is in the same pod, reached on loopback, and outlives hookgate's drain.
    let containers = pod["containers"].as_array().into_iter().flatten();
    let apps: Vec<&Value> = containers.filter(|c| !is_hookgate(c)).collect();
    if !apps.is_empty() {
        let app_ports: BTreeSet<u64> = apps
            .iter()
            .flat_map(|c| c["ports"].as_array().into_iter().flatten())
            .filter_map(|p| p["containerPort"].as_u64())
            .collect();
        for route in &config.routes {
            let Target::Http(pool) = &route.upstream else {
                problems.push(format!("route {}: a sidecar forwards to the app, not to the built-in echo", route.name));
                continue;
            };
            let authority = pool.authority();
            let port = authority.port_u16().map(u64::from);
            if authority.host() != "127.0.0.1" || !port.is_some_and(|p| app_ports.contains(&p)) {
                problems.push(format!(
                    "route {}: upstream {authority} is not 127.0.0.1:<a port of the app container> ({app_ports:?})",
                    route.name
                ));
            }
        }
        for app in &apps {
            let app_stop = pre_stop_sleep(app);
            if app_stop < pre_stop + config.shutdown_timeout || app_stop >= grace {
                problems.push(format!(
                    "container {}: preStop sleep {}s must cover hookgate's preStop + shutdown_timeout ({}s) and end within the grace period ({}s)",
                    app["name"],
                    app_stop.as_secs(),
                    (pre_stop + config.shutdown_timeout).as_secs(),
                    grace.as_secs()
                ));
            }
        }
    }

    // Services that select this pod reach hookgate's ports only; one of them its public port.
    let pod_labels = &workload["spec"]["template"]["metadata"]["labels"];
    let mut public = false;
    for (_, service) in bundle.docs.iter().filter(|(_, d)| d["kind"] == "Service") {
        let selector = service["spec"]["selector"].as_object();
        if !selector.is_some_and(|s| s.iter().all(|(k, v)| &pod_labels[k] == v)) {
            continue;
        }
        for port in service["spec"]["ports"].as_array().into_iter().flatten() {
            let target = &port["targetPort"];
            let to_http = target == "http" || target.as_u64() == http.map(u64::from);
            let to_admin = target == "admin" || target.as_u64() == admin.map(u64::from);
            public |= to_http;
            if !to_http && !to_admin {
                problems.push(format!(
                    "Service {}: port {} targets {target}, not hookgate: requests would skip verification",
                    service["metadata"]["name"], port["name"]
                ));
            }
        }
    }
    if !public {
        problems.push("no Service sends traffic to hookgate's http port".to_owned());
    }
    problems
}

#[test]
fn configs_in_the_manifests_are_valid_and_agree_with_them() {
    let mut problems = Vec::new();
    let mut checked = Vec::new();
    for bundle in Bundle::all() {
        for (path, workload) in &bundle.docs {
            let pod = &workload["spec"]["template"]["spec"];
            for container in pod["containers"].as_array().into_iter().flatten().filter(|c| is_hookgate(c)) {
                let at = format!(
                    "{}: {} {}, container {}",
                    path.strip_prefix(root()).expect("under the root").display(),
                    workload["kind"].as_str().unwrap_or_default(),
                    workload["metadata"]["name"].as_str().unwrap_or_default(),
                    container["name"].as_str().unwrap_or_default()
                );
                checked.push(at.clone());
                let mut found = Vec::new();
                let Some((text, env)) = container_config(&bundle, pod, container, &mut found) else {
                    problems.extend(found.into_iter().map(|p| format!("{at}: {p}")));
                    continue;
                };
                // Only the variables the manifest sets: a ${VAR} it forgot fails here.
                let config = match hookgate::config::parse(&text, Path::new(DEFAULT_CONFIG), &|name| {
                    env.get(name).cloned()
                }) {
                    Ok(config) => config,
                    Err(error) => {
                        problems
                            .push(format!("{at}: the embedded config is invalid with env {:?}: {error}", env.keys()));
                        continue;
                    }
                };
                found.extend(check_gateway(&bundle, workload, pod, container, &config));
                problems.extend(found.into_iter().map(|p| format!("{at}: {p}")));
            }
        }
    }
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
    assert!(checked.len() >= 2, "the sidecar and the edge Deployments are found: {checked:?}");
}

#[test]
fn the_container_demo_config_is_valid() {
    let path = root().join("deploy/gateway.container.yaml");
    let config = hookgate::config::parse(&read(&path), &path, &|_| None).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.listen.ip().is_unspecified() && config.admin_listen.ip().is_unspecified(), "binds 0.0.0.0");
    assert_eq!((config.listen.port(), config.admin_listen.port()), (8080, 9090), "the ports the Dockerfile exposes");
}
