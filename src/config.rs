//! Configuration: YAML to [`RawConfig`] (serde, unknown fields refused), then validated into a
//! [`Config`] of typed values. Every problem is collected and reported with where it is, so an
//! operator fixes a file in one pass. Anything that can fail at startup fails here.

pub mod keys;
mod scheme;
pub mod secret;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use http::uri::{Authority, Scheme as UriScheme, Uri};
use serde::Deserialize;

pub use self::scheme::scheme;
use crate::upstream::UpstreamPool;
use crate::verify::{Key, Scheme};

/// The file as written. Strings that may hold `${VAR}` are interpolated during validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default = "default_admin_listen")]
    admin_listen: String,
    #[serde(default = "default_max_body_bytes")]
    max_body_bytes: u64,
    #[serde(default = "default_upstream_timeout")]
    upstream_timeout: String,
    #[serde(default = "default_shutdown_timeout")]
    shutdown_timeout: String,
    #[serde(default)]
    trust_forwarded_headers: bool,
    #[serde(default)]
    preserve_header_case: bool,
    tls: Option<RawTls>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    routes: Vec<RawRoute>,
}

/// The listener's certificate: `tls: { cert_file, key_file }` (PEM).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: String,
    key_file: String,
}

/// A route's `upstream_tls:` block (PEM files).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstreamTls {
    ca_file: Option<String>,
    client_cert_file: Option<String>,
    client_key_file: Option<String>,
}

/// The `limits:` block: how much the edge may make the gateway hold. Absent fields take
/// [`Limits::default`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_concurrent_requests: Option<usize>,
    header_read_timeout: Option<String>,
    body_read_timeout: Option<String>,
    max_header_bytes: Option<usize>,
    max_headers: Option<usize>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_admin_listen() -> String {
    "127.0.0.1:9090".into()
}
fn default_max_body_bytes() -> u64 {
    1024 * 1024
}
fn default_upstream_timeout() -> String {
    "30s".into()
}
fn default_shutdown_timeout() -> String {
    "30s".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: String,
    path: Option<String>,
    path_prefix: Option<String>,
    methods: Option<Vec<String>>,
    upstream: String,
    max_body_bytes: Option<u64>,
    upstream_timeout: Option<String>,
    max_upstream_concurrency: Option<usize>,
    upstream_tls: Option<RawUpstreamTls>,
    public_url: Option<String>,
    #[serde(default)]
    challenge: Challenge,
    #[serde(default = "yes")]
    enforce: bool,
    rejection_status: Option<u16>,
    #[serde(default)]
    forward_headers: ForwardHeaders,
    verify: RawVerify,
    /// Replay protection; absent means none.
    replay: Option<crate::replay::RawReplay>,
}

fn yes() -> bool {
    true
}

/// The `verify:` block. The fields after `tolerance` describe a generic `hmac` scheme (and
/// `header` the generic `token` scheme).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerify {
    pub scheme: String,
    pub secret: Option<String>,
    pub secrets: Option<Vec<keys::RawKey>>,
    pub secret_file: Option<String>,
    pub public_key: Option<String>,
    pub public_keys: Option<Vec<keys::RawKey>>,
    pub public_key_file: Option<String>,
    /// FreshBooks only: forward the unsigned `callback.verify` registration request.
    #[serde(default)]
    pub enrolment: bool,
    pub tolerance: Option<String>,
    pub header: Option<String>,
    pub algorithm: Option<String>,
    pub encoding: Option<String>,
    pub prefix: Option<String>,
    pub timestamp_header: Option<String>,
    pub timestamp_format: Option<String>,
    pub timestamp_window: Option<String>,
    pub message: Option<String>,
}

/// Who answers a provider's endpoint check (Slack `url_verification`, Twitch
/// `webhook_callback_verification`, Zoom `endpoint.url_validation`, Discord PING, Dropbox
/// `challenge`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Challenge {
    /// The upstream answers, like any other delivery.
    #[default]
    Forward,
    /// The gateway answers itself, after the check verified where the provider signs it.
    Answer,
}

/// Extra headers towards the upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardHeaders {
    /// Add `X-Hookgate-Verified: <scheme>` (and `X-Hookgate-Delivery-Id`,
    /// `X-Hookgate-Timestamp` where the scheme has them).
    #[serde(default)]
    pub verified: bool,
    /// Remove the headers that carried the signature.
    #[serde(default)]
    pub strip_signature: bool,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// How long in-flight requests may run after SIGTERM before the process exits anyway.
    pub shutdown_timeout: Duration,
    /// Keep the sender's `X-Forwarded-*` headers (a trusted proxy stands in front).
    pub trust_forwarded_headers: bool,
    /// Send HTTP/1 header names upstream in the case the sender wrote them (legacy apps that
    /// compare names exactly); off, they go out in lower case, as HTTP allows.
    pub preserve_header_case: bool,
    /// Terminate TLS on the public listener with this certificate and key.
    pub tls: Option<TlsFiles>,
    pub limits: Limits,
    pub routes: Vec<Route>,
}

/// PEM files of the listener's certificate chain and private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Bounds on what senders can make the gateway hold. Memory for bodies stays under
/// `max_concurrent_requests` × (twice the largest `max_body_bytes` + `max_header_bytes`) (bodies
/// are kept in the buffers they were read into; see [`crate::body::Collector`]), and about
/// `max_concurrent_requests` × the largest `max_body_bytes` in practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests handled at once; more are answered 503 with `Retry-After` at once.
    pub max_concurrent_requests: usize,
    /// Time to send a request head, counted from the end of the previous answer (or the
    /// connection's start); so also how long an idle HTTP/1 keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// Time to send the whole body once the head arrived; more is 408.
    pub body_read_timeout: Duration,
    /// Largest request head (HTTP/1) or header list (HTTP/2).
    pub max_header_bytes: usize,
    /// Most header lines in an HTTP/1 request head.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_concurrent_requests: 256,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// One validated route.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    pub path: PathMatch,
    pub methods: Vec<Method>,
    pub upstream: Upstream,
    pub max_body_bytes: usize,
    pub upstream_timeout: Duration,
    /// Requests this route may have at its upstream at once; more are answered 503.
    pub upstream_slots: Option<Arc<crate::slots::Slots>>,
    pub scheme: Scheme,
    /// May be empty only while `enrolment` waits for the first FreshBooks verifier.
    pub keys: Vec<Key>,
    /// FreshBooks enrolment mode: the unsigned `callback.verify` request is forwarded, flagged
    /// and rate-limited, so the app can learn the verifier.
    pub enrolment: bool,
    /// The URL senders call, for schemes that sign it.
    pub public_url: Option<PublicUrl>,
    pub challenge: Challenge,
    /// `false`: report-only; verdicts are counted and logged, and everything is forwarded.
    pub enforce: bool,
    /// One status for every failed verification, in place of 400/403 by cause (and the
    /// scheme's own, such as Discord's 401), for senders and monitors that expect a single one.
    pub rejection_status: Option<http::StatusCode>,
    pub forward_headers: ForwardHeaders,
    /// Replay protection: deliveries seen within the window are answered 409.
    pub replay: Option<crate::replay::Replay>,
    /// The series every request of this route counts in, bound to the gateway's registry when
    /// the route starts serving (`handler::Snapshot::new`).
    pub metrics: crate::metrics::RouteMetrics,
}

/// The public URL of a route as senders see it: `https://host[:port]`, optionally with the
/// path senders use (when a proxy in front rewrites it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    origin: String,
    path: Option<String>,
}

impl PublicUrl {
    /// The URL the sender called: this origin, the configured path or else the request's, and
    /// the request's query.
    pub fn for_request(&self, uri: &Uri) -> String {
        let path = self.path.as_deref().unwrap_or(uri.path());
        match uri.query() {
            Some(query) => format!("{}{path}?{query}", self.origin),
            None => format!("{}{path}", self.origin),
        }
    }
}

/// How a route claims request paths.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
}

/// Where verified requests go.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// An HTTP origin, by its pool of keep-alive connections; the request's own path and query
    /// are sent to it.
    Http(Arc<UpstreamPool>),
    /// The built-in echo: answers 200 with the body it received (for trying the gateway out).
    Echo,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path}: {} problem(s):\n{}", problems.len(), list(problems))]
    Invalid { path: PathBuf, problems: Vec<Problem> },
}

/// One validation problem: where (`routes[1] (github).verify.secret`) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: String,
    pub message: String,
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  - {}: {}", p.at, p.message)).collect::<Vec<_>>().join("\n")
}

/// Reads, parses and validates the file at `path`; `${VAR}` reads the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
    parse(&text, path, &|name| std::env::var(name).ok())
}

/// Parses and validates `text`; `env` resolves `${VAR}` (tests pass a fixed map).
pub fn parse(text: &str, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let raw: RawConfig = serde_yaml_ng::from_str(text)
        .map_err(|error| ConfigError::Syntax { path: path.into(), message: error.to_string() })?;
    let mut check = Checker {
        problems: Vec::new(),
        env,
        base_dir: path.parent().unwrap_or(Path::new(".")),
        trust_forwarded: raw.trust_forwarded_headers,
        preserve_header_case: raw.preserve_header_case,
    };
    let config = check.config(raw);
    match config {
        Some(config) if check.problems.is_empty() => Ok(config),
        _ => Err(ConfigError::Invalid { path: path.into(), problems: check.problems }),
    }
}

/// Validation state: problems found so far, and how to resolve `${VAR}` and relative files.
struct Checker<'a> {
    problems: Vec<Problem>,
    env: &'a dyn Fn(&str) -> Option<String>,
    base_dir: &'a Path,
    /// Routes that sign the URL may rebuild it from trusted `X-Forwarded-*` headers.
    trust_forwarded: bool,
    /// For the upstream clients routes build.
    preserve_header_case: bool,
}

impl Checker<'_> {
    fn problem(&mut self, at: &str, message: impl Into<String>) {
        self.problems.push(Problem { at: at.to_owned(), message: message.into() });
    }

    /// Records `result`'s error at `at` and turns it into an `Option`.
    fn ok<T>(&mut self, at: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.problem(at, message)).ok()
    }

    fn config(&mut self, raw: RawConfig) -> Option<Config> {
        let listen = self.address("listen", &raw.listen);
        let admin_listen = self.address("admin_listen", &raw.admin_listen);
        let max_body_bytes = self.ok("max_body_bytes", body_limit(raw.max_body_bytes));
        let upstream_timeout = self.ok("upstream_timeout", duration(&raw.upstream_timeout));
        let shutdown_timeout = self.ok("shutdown_timeout", duration(&raw.shutdown_timeout));
        let limits = self.limits(&raw.limits);
        let tls = raw.tls.as_ref().and_then(|tls| {
            let files = TlsFiles {
                cert_file: self.file("tls.cert_file", &tls.cert_file)?,
                key_file: self.file("tls.key_file", &tls.key_file)?,
            };
            self.ok("tls", crate::tls::ReloadingCert::load(&files.cert_file, &files.key_file).map(|_| files))
        });
        let tls_wanted = raw.tls.is_some();
        if raw.routes.is_empty() {
            self.problem("routes", "at least one route is required");
        }
        let mut names = HashSet::new();
        let mut paths = std::collections::HashMap::new();
        let mut routes = Vec::new();
        for (i, raw_route) in raw.routes.into_iter().enumerate() {
            let at = format!("routes[{i}] ({})", raw_route.name);
            if !names.insert(raw_route.name.clone()) {
                self.problem(&at, format!("duplicate route name {:?}", raw_route.name));
            }
            let route = self.route(&at, raw_route, max_body_bytes.unwrap_or(1), upstream_timeout.unwrap_or_default());
            if let Some(route) = route {
                if let Some(other) = paths.insert(route.path.clone(), route.name.clone()) {
                    self.problem(&at, format!("same path as route {other:?}"));
                }
                routes.push(route);
            }
        }
        Some(Config {
            listen: listen?,
            admin_listen: admin_listen?,
            shutdown_timeout: shutdown_timeout?,
            trust_forwarded_headers: raw.trust_forwarded_headers,
            preserve_header_case: raw.preserve_header_case,
            tls: if tls_wanted { Some(tls?) } else { None },
            limits: limits?,
            routes,
        })
    }

    fn limits(&mut self, raw: &RawLimits) -> Option<Limits> {
        let default = Limits::default();
        let timeout = |text: &Option<String>, fallback| text.as_deref().map_or(Ok(fallback), duration);
        let at_least = |value: Option<usize>, fallback: usize, least: usize| match value.unwrap_or(fallback) {
            value if value >= least => Ok(value),
            _ => Err(format!("must be at least {least}")),
        };
        let header_read_timeout =
            self.ok("limits.header_read_timeout", timeout(&raw.header_read_timeout, default.header_read_timeout));
        let body_read_timeout =
            self.ok("limits.body_read_timeout", timeout(&raw.body_read_timeout, default.body_read_timeout));
        let max_concurrent_requests = self.ok(
            "limits.max_concurrent_requests",
            at_least(raw.max_concurrent_requests, default.max_concurrent_requests, 1),
        );
        // hyper cannot read a head with a buffer under 8 KiB.
        let max_header_bytes =
            self.ok("limits.max_header_bytes", at_least(raw.max_header_bytes, default.max_header_bytes, 8192));
        let max_headers = self.ok("limits.max_headers", at_least(raw.max_headers, default.max_headers, 1));
        Some(Limits {
            max_concurrent_requests: max_concurrent_requests?,
            header_read_timeout: header_read_timeout?,
            body_read_timeout: body_read_timeout?,
            max_header_bytes: max_header_bytes?,
            max_headers: max_headers?,
        })
    }

    fn route(&mut self, at: &str, raw: RawRoute, default_body: usize, default_timeout: Duration) -> Option<Route> {
        let name_ok = !raw.name.is_empty()
            && raw.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !name_ok {
            self.problem(&format!("{at}.name"), "must be non-empty and use only a-z, 0-9, '_' and '-'");
        }
        let path = match (raw.path, raw.path_prefix) {
            (Some(path), None) => self.ok(&format!("{at}.path"), request_path(&path)).map(PathMatch::Exact),
            (None, Some(prefix)) => self.ok(&format!("{at}.path_prefix"), request_path(&prefix)).map(PathMatch::Prefix),
            _ => {
                self.problem(at, "set exactly one of path or path_prefix");
                None
            }
        };
        let methods = self.ok(&format!("{at}.methods"), methods(raw.methods));
        let upstream = self.interpolate(&format!("{at}.upstream"), &raw.upstream);
        let target = upstream.and_then(|text| self.ok(&format!("{at}.upstream"), upstream_target(&text)));
        let max_body_bytes = match raw.max_body_bytes {
            Some(limit) => self.ok(&format!("{at}.max_body_bytes"), body_limit(limit)),
            None => Some(default_body),
        };
        let upstream_timeout = match raw.upstream_timeout {
            Some(text) => self.ok(&format!("{at}.upstream_timeout"), duration(&text)),
            None => Some(default_timeout),
        };
        let upstream_slots = match raw.max_upstream_concurrency {
            Some(0) => {
                self.problem(&format!("{at}.max_upstream_concurrency"), "must be at least 1");
                None
            }
            Some(slots) => Some(Some(Arc::new(crate::slots::Slots::new(slots)))),
            None => Some(None),
        };
        let upstream_tls = match (&raw.upstream_tls, &target) {
            (None, _) => Some(None),
            (Some(_), Some(Some((scheme, _)))) if scheme != &UriScheme::HTTPS => {
                self.problem(&format!("{at}.upstream_tls"), "applies only to an https:// upstream");
                None
            }
            (Some(raw_tls), _) => self.upstream_tls(&format!("{at}.upstream_tls"), raw_tls).map(Some),
        };
        let upstream = match (target, upstream_tls) {
            (Some(None), _) => Some(Upstream::Echo),
            (Some(Some((scheme, authority))), Some(tls)) => {
                let pool = UpstreamPool::new(&scheme, &authority, tls, self.preserve_header_case);
                self.ok(&format!("{at}.upstream"), pool).map(|pool| Upstream::Http(Arc::new(pool)))
            }
            _ => None,
        };
        let verify_at = format!("{at}.verify");
        let scheme = self.ok(&verify_at, scheme(&raw.verify));
        // Keys are checked even when the scheme is unknown, so every problem shows at once.
        let kind = scheme.as_ref().map_or(crate::verify::KeyKind::Shared, Scheme::key_kind);
        let keys = self.keys(&verify_at, &raw.verify, kind);
        if raw.verify.enrolment && raw.verify.scheme != "freshbooks" {
            self.problem(&format!("{verify_at}.enrolment"), "applies only to scheme freshbooks");
        }
        let public_url = match &raw.public_url {
            Some(text) => self
                .interpolate(&format!("{at}.public_url"), text)
                .and_then(|text| self.ok(&format!("{at}.public_url"), public_url(&text))),
            None => None,
        };
        if let Some(scheme) = &scheme
            && scheme.signs_url()
            && raw.public_url.is_none()
            && !self.trust_forwarded
        {
            self.problem(&format!("{at}.public_url"), format!(
                "scheme {} signs the URL the sender called: set public_url (or trust_forwarded_headers behind a trusted proxy)",
                scheme.name
            ));
        }
        if raw.challenge == Challenge::Answer && !crate::challenge::answers(&raw.verify.scheme) {
            self.problem(
                &format!("{at}.challenge"),
                format!("scheme {} has no endpoint check to answer", raw.verify.scheme),
            );
        }
        let rejection_status = match raw.rejection_status {
            Some(code @ 400..=499) => Some(http::StatusCode::from_u16(code).ok()),
            Some(_) => {
                self.problem(&format!("{at}.rejection_status"), "must be a 4xx status");
                None
            }
            None => Some(None),
        };
        let replay = match &raw.replay {
            Some(replay) => self.replay(&format!("{at}.replay"), &raw.name, replay, scheme.as_ref()),
            None => Some(None),
        };
        Some(Route {
            name: raw.name,
            path: path?,
            methods: methods?,
            upstream: upstream?,
            max_body_bytes: max_body_bytes?,
            upstream_timeout: upstream_timeout?,
            upstream_slots: upstream_slots?,
            scheme: scheme?,
            keys: keys?,
            enrolment: raw.verify.enrolment,
            public_url,
            challenge: raw.challenge,
            enforce: raw.enforce,
            rejection_status: rejection_status?,
            forward_headers: raw.forward_headers,
            replay: replay?,
            metrics: Default::default(),
        })
    }

    fn upstream_tls(&mut self, at: &str, raw: &RawUpstreamTls) -> Option<rustls::ClientConfig> {
        let mut file = |field: &str, text: &Option<String>| match text {
            Some(text) => self.file(&format!("{at}.{field}"), text).map(Some),
            None => Some(None),
        };
        let tls = crate::tls::UpstreamTls {
            ca_file: file("ca_file", &raw.ca_file)?,
            client_cert_file: file("client_cert_file", &raw.client_cert_file)?,
            client_key_file: file("client_key_file", &raw.client_key_file)?,
        };
        self.ok(at, tls.client_config())
    }

    /// A file path, `${VAR}` interpolated, relative to the config file's folder.
    fn file(&mut self, at: &str, text: &str) -> Option<PathBuf> {
        Some(self.base_dir.join(self.interpolate(at, text)?))
    }

    /// The `replay:` block; its `store` may name a password with `${VAR}`.
    fn replay(
        &mut self,
        at: &str,
        route: &str,
        raw: &crate::replay::RawReplay,
        scheme: Option<&Scheme>,
    ) -> Option<Option<crate::replay::Replay>> {
        let store = self.interpolate(&format!("{at}.store"), raw.store.as_deref().unwrap_or("memory"))?;
        match crate::replay::Replay::build(route, raw, &store, scheme) {
            Ok(replay) => Some(Some(replay)),
            Err(problems) => {
                for (field, message) in problems {
                    self.problem(&format!("{at}.{field}"), message);
                }
                None
            }
        }
    }

    fn address(&mut self, at: &str, text: &str) -> Option<SocketAddr> {
        let text = self.interpolate(at, text)?;
        self.ok(at, text.parse().map_err(|_| format!("{text:?} is not an IP:port address")))
    }

    /// Replaces every `${VAR}` with the variable's value; an unset variable is a problem.
    fn interpolate(&mut self, at: &str, text: &str) -> Option<String> {
        let result = interpolate(text, self.env);
        self.ok(at, result)
    }
}

fn interpolate(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| "unclosed ${ in value".to_owned())?;
        let name = &after[..end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("${{{name}}} is not a valid environment variable reference"));
        }
        out.push_str(&env(name).ok_or_else(|| format!("environment variable {name} is not set"))?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses a human duration such as `500ms`, `30s` or `5m`; zero is refused.
pub fn duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be greater than zero".into()),
        Ok(d) => Ok(d),
        Err(_) => Err(format!("{text:?} is not a duration such as 500ms, 30s or 5m")),
    }
}

fn body_limit(limit: u64) -> Result<usize, String> {
    match usize::try_from(limit) {
        Ok(0) | Err(_) => Err("must be between 1 and the address space".into()),
        Ok(limit) => Ok(limit),
    }
}

fn request_path(path: &str) -> Result<String, String> {
    if !path.starts_with('/') || path.contains(['?', '#', ' ']) {
        return Err(format!("{path:?} must start with '/' and hold no query, fragment or space"));
    }
    Ok(path.to_owned())
}

fn methods(raw: Option<Vec<String>>) -> Result<Vec<Method>, String> {
    let Some(raw) = raw else { return Ok(vec![Method::POST]) };
    if raw.is_empty() {
        return Err("must list at least one method".into());
    }
    raw.iter()
        .map(|name| match Method::from_bytes(name.as_bytes()) {
            Ok(method) if name.bytes().all(|b| b.is_ascii_uppercase()) => Ok(method),
            _ => Err(format!("{name:?} is not an upper-case HTTP method")),
        })
        .collect()
}

/// `http(s)://host[:port]`, or `None` for `echo`.
fn upstream_target(text: &str) -> Result<Option<(UriScheme, Authority)>, String> {
    if text == "echo" {
        return Ok(None);
    }
    let uri: Uri = text.parse().map_err(|_| format!("{text:?} is not a URL"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
        return Err(format!("{text:?} must be http(s)://host[:port] or echo"));
    };
    if scheme != &UriScheme::HTTP && scheme != &UriScheme::HTTPS {
        return Err(format!("{text:?} must be http://, https:// or echo"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!("{text:?} must not carry a path or query: the request's own path and query are forwarded"));
    }
    Ok(Some((scheme.clone(), authority.clone())))
}

/// `https://host[:port]` or `https://host[:port]/path`, without query or fragment.
fn public_url(text: &str) -> Result<PublicUrl, String> {
    let uri: Uri = text.parse().map_err(|_| format!("{text:?} is not a URL"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(format!("{text:?} must be an absolute http:// or https:// URL"));
    };
    if !matches!(scheme, "http" | "https") || uri.query().is_some() || text.contains('#') {
        return Err(format!("{text:?} must be http(s)://host[:port][/path] without query or fragment"));
    }
    // `https://host` and `https://host/` both mean "keep the request's path".
    let path = uri.path_and_query().map(|pq| pq.path()).filter(|path| *path != "/");
    Ok(PublicUrl { origin: format!("{scheme}://{authority}"), path: path.map(str::to_owned) })
}

#[cfg(test)]
mod tests;
