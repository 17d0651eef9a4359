//! The fuzz targets' bodies: each takes raw input, drives one parser of untrusted text through
//! hookgate's public API, and asserts what must hold for every input, beyond not panicking.
//!
//! `fuzz_targets/*.rs` call these under libFuzzer; `tests/fuzz_corpus.rs` includes this file
//! with `#[path]` and replays `fuzz/corpus/<target>/` under plain `cargo test`, so it may use only
//! crates that both packages depend on: `hookgate` and some of its own dependencies.

use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use hookgate::body::Body;
use hookgate::challenge;
use hookgate::config::keys::{key_material, signing_key};
use hookgate::config::{self, ConfigError, PathMatch};
use hookgate::routes::{Lookup, RouteTable};
use hookgate::verify::form_json::{FormError, form_to_python_json, parse_form};
use hookgate::verify::layout::Layout;
use hookgate::verify::message::{Part, Template};
use hookgate::verify::presets::PRESETS;
use hookgate::verify::timestamp::{TimestampFormat, TimestampRule, TimestampSource, Window};
use hookgate::verify::{Key, KeyKind, KeyMaterial, Rejection, Rule, Scheme, SignedRequest, SigningKey, UnixTime};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

/// A target's body: takes one input, panics on a finding.
pub type Target = fn(&[u8]);

/// Every target, by its directory under `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("form_json", form_json),
    ("signature_layout", signature_layout),
    ("timestamp", timestamp),
    ("template", template),
    ("config", config),
    ("verify", verify),
    ("keys", keys),
];

/// The `now` of inputs that do not give one (the vectors' usual clock).
const NOW: i64 = 1_718_000_000;

/// FreshBooks' form canonicaliser: the output is ASCII JSON that reads back as exactly the
/// decoded fields; errors are only non-UTF-8 bodies and repeated decoded names.
pub fn form_json(data: &[u8]) {
    let result = form_to_python_json(data);
    let Ok(text) = std::str::from_utf8(data) else {
        assert_eq!(result, Err(FormError::NotUtf8));
        return;
    };
    let fields = parse_form(text);
    match result {
        Ok(json) => {
            assert!(json.is_ascii(), "not ASCII: {json:?}");
            let object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&json).unwrap_or_else(|e| panic!("not a JSON object ({e}): {json:?}"));
            assert_eq!(object.len(), fields.len(), "{json:?}");
            for (name, value) in &fields {
                assert_eq!(object.get(name).and_then(|v| v.as_str()), Some(value.as_str()), "{json:?}");
            }
        }
        Err(FormError::DuplicateName) => {
            let mut names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert!(names.len() < fields.len(), "no repeated name in {fields:?}");
        }
        Err(FormError::NotUtf8) => panic!("valid UTF-8 refused"),
    }
}

/// Every layout the presets use, plus a generic `hmac` prefix.
static LAYOUTS: LazyLock<Vec<Layout>> = LazyLock::new(|| {
    let mut layouts = vec![Layout::Plain { prefix: "sha256=".into() }];
    for scheme in SCHEMES.iter() {
        let mut recipe = match &scheme.rule {
            Rule::Recipe(recipe) => Some(recipe),
            Rule::Twilio(_) | Rule::Mailgun(_) | Rule::Credentials(_) => None,
        };
        while let Some(next) = recipe {
            if !layouts.contains(&next.layout) {
                layouts.push(next.layout.clone());
            }
            recipe = next.fallback.as_deref();
        }
    }
    layouts
});

/// `Layout::parse` on the whole input for every layout; whatever it finds, and the input split
/// at its first newline into (signature, timestamp), reads back after `Layout::format`.
pub fn signature_layout(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (signature, timestamp) = text.split_once('\n').unwrap_or((text, "1718000000"));
    for layout in LAYOUTS.iter() {
        if let Some(presented) = layout.parse(text) {
            assert!(!presented.signatures.is_empty(), "{layout:?} accepted {text:?} with no signature");
            for found in &presented.signatures {
                round_trip(layout, found, presented.timestamp.unwrap_or(""));
            }
        }
        let writable = match layout {
            Layout::Plain { .. } => true,
            Layout::Params { separator, .. } => !signature.contains(*separator) && !timestamp.contains(*separator),
            Layout::Versioned { .. } => !signature.contains(' '),
        };
        if writable {
            round_trip(layout, signature, timestamp);
        }
        let _ = layout.describe(signature);
    }
}

fn round_trip(layout: &Layout, signature: &str, timestamp: &str) {
    let written = layout.format(signature, timestamp);
    let read = layout.parse(&written).unwrap_or_else(|| panic!("{layout:?} cannot read back {written:?}"));
    assert_eq!(read.signatures[..], [signature], "{layout:?} {written:?}");
    if let Layout::Params { .. } = layout {
        assert_eq!(read.timestamp, Some(timestamp), "{layout:?} {written:?}");
    }
}

const FORMATS: [TimestampFormat; 4] =
    [TimestampFormat::UnixSeconds, TimestampFormat::UnixMillis, TimestampFormat::UnixFloat, TimestampFormat::Rfc3339];

/// Every `TimestampFormat::parse`; a time a sender can write (the epoch to 2554, where
/// nanoseconds fit a u64) reads back from `format` to the format's precision, and freshness
/// arithmetic never overflows.
pub fn timestamp(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for format in FORMATS {
        assert_eq!(TimestampFormat::parse_name(format.name()), Some(format));
        let Some(at) = format.parse(text) else { continue };
        let nanos = at.as_nanos();
        if (0..=i128::from(u64::MAX)).contains(&nanos) {
            let precision = match format {
                TimestampFormat::UnixSeconds | TimestampFormat::Rfc3339 => 1_000_000_000,
                TimestampFormat::UnixMillis => 1_000_000,
                TimestampFormat::UnixFloat => 1_000,
            };
            let written = format.format(at);
            let expected = UnixTime::from_nanos(nanos - nanos.rem_euclid(precision));
            assert_eq!(format.parse(&written), Some(expected), "{format:?}: {text:?} written as {written:?}");
        }
        for window in [Window::Symmetric, Window::PastOnly] {
            for tolerance in [None, Some(Duration::ZERO), Some(Duration::from_secs(300)), Some(Duration::MAX)] {
                let rule = TimestampRule { source: TimestampSource::SignatureHeader, format, tolerance, window };
                assert!(rule.is_fresh(at, at));
                for now in [i64::MIN, 0, NOW, i64::MAX] {
                    let _ = rule.is_fresh(at, UnixTime::from_secs(now));
                }
            }
        }
    }
}

/// `Template::parse` on the first line; a template reads back from its text form, and renders
/// with the second line as the URL and the rest as the body: with every header it names present,
/// only `{form_json}` (an unreadable form) or a missing URL can refuse.
pub fn template(data: &[u8]) {
    let mut lines = data.splitn(3, |&b| b == b'\n');
    let Some(Ok(text)) = lines.next().map(std::str::from_utf8) else { return };
    let url = lines.next().and_then(|line| std::str::from_utf8(line).ok());
    let body = lines.next().unwrap_or_default();
    let Ok(template) = Template::parse(text) else { return };
    let written = template.to_string();
    assert_eq!(Template::parse(&written).as_ref(), Ok(&template), "{text:?} written as {written:?}");

    let mut headers = HeaderMap::new();
    for names in template.headers() {
        headers.insert(names[0].clone(), HeaderValue::from_static("msg_fuzz"));
    }
    let request = SignedRequest { method: &Method::POST, url, headers: &headers, body: &Body::from(body) };
    assert_eq!(template.check_headers(&request), Ok(()));
    match template.render(&request, "1718000000") {
        Ok(message) => assert_eq!(message.to_vec(), message.pieces().collect::<Vec<_>>().concat()),
        Err(Rejection::MalformedBody(_)) => assert!(template.parts().contains(&Part::FormJson)),
        Err(Rejection::Missing(_)) => assert!(url.is_none() && template.signs_url()),
        Err(other) => panic!("{text:?} refused with {other:?}"),
    }
}

/// The environment `${VAR}` sees in the config target.
fn env(name: &str) -> Option<String> {
    let value = match name {
        "SECRET" => "fuzz-secret",
        "WHSEC" => "whsec_ZnV6ei1zZWNyZXQ=",
        "LISTEN" => "127.0.0.1:8080",
        "UPSTREAM" => "http://127.0.0.1:3000",
        "PUBLIC_URL" => "https://hooks.example.com",
        _ => return None,
    };
    Some(value.to_owned())
}

/// `config::parse` with a fixed environment; a valid config has keys of its schemes' kind and a
/// route table that finds every route at its own path; an invalid one names a problem.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if names_special_files(text) {
        return;
    }
    // The directory does not exist, so relative `secret_file`s fail to read.
    let path = Path::new("/nonexistent/hookgate-fuzz/gateway.yaml");
    let config = match config::parse(text, path, &env) {
        Ok(config) => config,
        Err(ConfigError::Invalid { problems, .. }) => {
            assert!(!problems.is_empty(), "invalid with no problem named");
            return;
        }
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    for route in &config.routes {
        assert!(!route.keys.is_empty() || route.enrolment, "route {} has no key", route.name);
        for key in &route.keys {
            let matches = matches!(
                (route.scheme.key_kind(), &key.material),
                (KeyKind::Shared | KeyKind::SharedBase64, KeyMaterial::Shared(_))
                    | (KeyKind::Ed25519Public, KeyMaterial::Ed25519(_))
                    | (KeyKind::P256Public, KeyMaterial::P256(_))
            );
            assert!(matches, "route {}: {:?} key for a {:?} scheme", route.name, key.material, route.scheme.key_kind());
        }
    }
    let table = RouteTable::new(config.routes);
    for route in table.routes() {
        let path = match &route.path {
            PathMatch::Exact(path) | PathMatch::Prefix(path) => path,
        };
        match table.find(&route.methods[0], path) {
            Lookup::Found(found) if std::ptr::eq(found, route) => {}
            // An exact route on a prefix's own path wins over the prefix.
            Lookup::Found(found) if found.path == PathMatch::Exact(path.clone()) => {}
            other => panic!("route {} at {path}: {other:?}", route.name),
        }
    }
}

/// Whether the YAML names a device or kernel file anywhere: `secret_file: /dev/zero` would make
/// the loader read forever, which is the operator's business, not a finding.
fn names_special_files(text: &str) -> bool {
    fn any_string(value: &serde_yaml_ng::Value, test: &dyn Fn(&str) -> bool) -> bool {
        use serde_yaml_ng::Value;
        match value {
            Value::String(text) => test(text),
            Value::Sequence(items) => items.iter().any(|item| any_string(item, test)),
            Value::Mapping(map) => map.iter().any(|(k, v)| any_string(k, test) || any_string(v, test)),
            Value::Tagged(tagged) => any_string(&tagged.value, test),
            Value::Null | Value::Bool(_) | Value::Number(_) => false,
        }
    }
    let special = |text: &str| ["/dev", "/proc", "/sys"].iter().any(|dir| text.contains(dir));
    match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(text) {
        Ok(value) => any_string(&value, &special),
        // Unparseable as a tree, so almost surely as a config; escapes could still spell a path.
        Err(_) => special(text) || text.contains('\\'),
    }
}

/// A request as the `verify` corpus writes it, in the shape of HTTP/1.1:
///
/// ```text
/// POST https://hooks.example.com/twilio 1718000000   method, public URL (or -), now in seconds
/// :secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw    a route key, one line each, in order
/// Stripe-Signature: t=1718000000,v1=5257a8...         headers; lines that do not parse are skipped
///                                                     a blank line
/// {"id":"evt_1"}                                      the body, verbatim to the end
/// ```
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub url: Option<String>,
    pub now: UnixTime,
    pub secrets: Vec<String>,
    pub headers: HeaderMap,
    pub body: Body,
}

impl Request {
    pub fn decode(data: &[u8]) -> Self {
        let (head, body) = match data.windows(2).position(|pair| pair == b"\n\n") {
            Some(at) => (&data[..at], &data[at + 2..]),
            None => (data, &[][..]),
        };
        let mut lines = head.split(|&b| b == b'\n');
        let first = String::from_utf8_lossy(lines.next().unwrap_or_default());
        let mut words = first.split(' ');
        let method = words.next().and_then(|word| Method::from_bytes(word.as_bytes()).ok()).unwrap_or(Method::POST);
        let url = words.next().filter(|word| *word != "-").map(str::to_owned);
        let now = UnixTime::from_secs(words.next().and_then(|word| word.parse().ok()).unwrap_or(NOW));
        let mut secrets = Vec::new();
        let mut headers = HeaderMap::new();
        for line in lines {
            if let Some(secret) = line.strip_prefix(b":secret: ") {
                secrets.push(String::from_utf8_lossy(secret).into_owned());
                continue;
            }
            let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
            let value = &line[colon + 1..];
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(value)) {
                headers.append(name, value);
            }
        }
        Self { method, url, now, secrets, headers, body: body.into() }
    }

    fn signed(&self) -> SignedRequest<'_> {
        SignedRequest { method: &self.method, url: self.url.as_deref(), headers: &self.headers, body: &self.body }
    }
}

/// Every preset (and its public-key variant), plus two generic `hmac` recipes.
static SCHEMES: LazyLock<Vec<Scheme>> = LazyLock::new(|| {
    let mut schemes = Vec::new();
    for preset in PRESETS {
        schemes.push(Scheme { name: preset.name.into(), rule: preset.build(None, None, false) });
        if preset.public_key_variant.is_some() {
            schemes.push(Scheme { name: preset.name.into(), rule: preset.build(None, None, true) });
        }
    }
    let custom = |encoding: &str, format: &str, message: &str| config::RawVerify {
        scheme: "hmac".into(),
        header: Some("x-signature".into()),
        algorithm: Some("sha1".into()),
        encoding: Some(encoding.into()),
        prefix: Some("sha1=".into()),
        timestamp_header: Some("x-timestamp".into()),
        timestamp_format: Some(format.into()),
        message: Some(message.into()),
        ..config::RawVerify::default()
    };
    for raw in [
        custom("hex", "unix_float", "{timestamp}.{body}"),
        custom("base64", "rfc3339", "{method}{hubspot_url}{header:x-id|x-alt-id}{timestamp}{form_json}"),
    ] {
        schemes.push(config::scheme(&raw).expect("the generic recipes are valid"));
    }
    schemes
});

/// The shared secret every scheme also holds (Basic needs its `user:password` shape).
const FIXED_SECRET: &str = "fuzz:secret";

/// The key every scheme holds besides the input's, and the matching signing key, per kind.
static FIXED_KEYS: LazyLock<Vec<(KeyKind, KeyMaterial, SigningKey)>> = LazyLock::new(|| {
    let texts = [
        (KeyKind::Shared, FIXED_SECRET),
        (KeyKind::SharedBase64, "whsec_ZnV6ejpzZWNyZXQ="),
        // Private keys from fixed seeds: 32 bytes of 7s and of 9s.
        (KeyKind::Ed25519Public, "0707070707070707070707070707070707070707070707070707070707070707"),
        (KeyKind::P256Public, "0909090909090909090909090909090909090909090909090909090909090909"),
    ];
    texts
        .into_iter()
        .map(|(kind, text)| {
            let signing = signing_key(kind, text).expect("the fixed keys are valid");
            let verifying = match &signing {
                SigningKey::Shared(secret) => KeyMaterial::Shared(secret.clone()),
                SigningKey::Ed25519(private) => KeyMaterial::Ed25519(private.verifying_key()),
                SigningKey::P256(private) => KeyMaterial::P256(*private.verifying_key()),
            };
            (kind, verifying, signing)
        })
        .collect()
});

fn fixed_key(kind: KeyKind) -> (&'static KeyMaterial, &'static SigningKey) {
    let (_, verifying, signing) =
        FIXED_KEYS.iter().find(|(fixed, ..)| *fixed == kind).expect("a fixed key of every kind");
    (verifying, signing)
}

/// `Scheme::verify` for every scheme, with the input's secrets, an expired key and the fixed key.
/// A match names an active key; a signed endpoint check answers without panicking. For one
/// scheme (picked by the input's hash), the request stripped of its signature headers and signed
/// with the fixed key at a writable `now` verifies, but for an empty body where one is required, a stale timestamp inside the body, or
/// a Twilio URL whose `bodySHA256` is not the body's.
pub fn verify(data: &[u8]) {
    let request = Request::decode(data);
    for scheme in SCHEMES.iter() {
        let kind = scheme.key_kind();
        let mut keys: Vec<Key> = request
            .secrets
            .iter()
            .filter_map(|text| key_material(kind, text).ok())
            .map(|material| Key { material, not_after: None })
            .collect();
        let (fixed, _) = fixed_key(kind);
        keys.push(Key { material: fixed.clone(), not_after: Some(UnixTime::from_secs(0)) });
        keys.push(Key { material: fixed.clone(), not_after: None });
        match scheme.verify(&keys, request.signed(), request.now) {
            Ok(verified) => {
                let key = keys.get(verified.key_index).expect("the matching key is one of the route's");
                assert!(key.is_active(request.now), "{}: matched an expired key", scheme.name);
                let _ = challenge::verified_answer(
                    &scheme.name,
                    &keys,
                    &verified,
                    &request.headers,
                    &request.body.contiguous(),
                );
            }
            Err(rejection) => {
                let status = scheme.status(&rejection);
                assert!(
                    [StatusCode::BAD_REQUEST, StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN].contains(&status),
                    "{}: {rejection:?} answered {status}",
                    scheme.name
                );
                let _ = rejection.outcome();
            }
        }
    }
    if let Some(uri) = request.url.as_deref().and_then(|url| url.parse::<Uri>().ok()) {
        let _ = challenge::unsigned_answer("dropbox", &request.method, &uri);
    }
    let pick = data.iter().fold(0usize, |hash, &b| hash.wrapping_mul(31).wrapping_add(usize::from(b)));
    sign_then_verify(&SCHEMES[pick % SCHEMES.len()], &request);
}

fn sign_then_verify(scheme: &Scheme, request: &Request) {
    // Nanoseconds past a u64 (after 2554) or before the epoch are times no sender writes.
    if !(0..=i128::from(u64::MAX)).contains(&request.now.as_nanos()) {
        return;
    }
    // Without the signature material it carries, so `sign` writes all of it (a timestamp header
    // already present would be signed as it is, however stale).
    let mut headers = request.headers.clone();
    for name in scheme.signature_headers() {
        headers.remove(name);
    }
    let (verifying, signing) = fixed_key(scheme.key_kind());
    let unsigned = SignedRequest { headers: &headers, ..request.signed() };
    let Ok(signature) = scheme.sign(signing, unsigned, request.now, None) else { return };
    for (name, value) in signature.headers {
        headers.insert(name, value);
    }
    let body = signature.body.map_or_else(|| request.body.clone(), Body::from);
    let signed = SignedRequest { method: &request.method, url: request.url.as_deref(), headers: &headers, body: &body };
    let keys = [Key { material: verifying.clone(), not_after: None }];
    match (scheme.verify(&keys, signed, request.now), &scheme.rule) {
        (Ok(_), _) => {}
        (Err(Rejection::MalformedBody(_)), Rule::Recipe(recipe)) if recipe.require_body && body.is_empty() => {}
        (Err(Rejection::TimestampOutsideTolerance), Rule::Recipe(recipe))
            if recipe.timestamp.as_ref().is_some_and(|rule| matches!(rule.source, TimestampSource::BodyField(_))) => {}
        // Twilio signs the URL as given, so a `bodySHA256` that is not the body's never verifies.
        (Err(Rejection::SignatureMismatch), Rule::Twilio(_)) if claims_body_hash(request.url.as_deref()) => {}
        (Err(rejection), _) => panic!("{}: signed request refused: {rejection:?}\nheaders {headers:?}", scheme.name),
    }
}

/// Whether the URL's query has a `bodySHA256` parameter (decoded as Twilio's verifier reads it).
fn claims_body_hash(url: Option<&str>) -> bool {
    let query = url.and_then(|url| url.split_once('?')).map_or("", |(_, query)| query);
    parse_form(query).iter().any(|(name, _)| name == "bodySHA256")
}

const KINDS: [KeyKind; 4] = [KeyKind::Shared, KeyKind::SharedBase64, KeyKind::Ed25519Public, KeyKind::P256Public];

/// `key_material` and `signing_key` for every kind: a key comes back as the kind asked for, a
/// public key reads back from hex, and a private key's public half is one `key_material` reads.
pub fn keys(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for kind in KINDS {
        match (kind, key_material(kind, text)) {
            (KeyKind::Shared, Ok(KeyMaterial::Shared(secret))) => assert_eq!(secret.expose(), text.as_bytes()),
            (KeyKind::Ed25519Public, Ok(KeyMaterial::Ed25519(key))) => ed25519_reads_back(key),
            (KeyKind::P256Public, Ok(KeyMaterial::P256(key))) => p256_reads_back(key),
            (KeyKind::SharedBase64, Ok(KeyMaterial::Shared(_))) => {}
            (KeyKind::SharedBase64 | KeyKind::Ed25519Public | KeyKind::P256Public, Err(_)) => {}
            (kind, other) => panic!("{kind:?} key gave {other:?}"),
        }
        match signing_key(kind, text) {
            Ok(SigningKey::Ed25519(private)) => ed25519_reads_back(private.verifying_key()),
            Ok(SigningKey::P256(private)) => p256_reads_back(*private.verifying_key()),
            Ok(SigningKey::Shared(_)) | Err(_) => {}
        }
    }
}

fn ed25519_reads_back(key: ed25519_dalek::VerifyingKey) {
    match key_material(KeyKind::Ed25519Public, &hex(key.as_bytes())) {
        Ok(KeyMaterial::Ed25519(read)) => assert_eq!(read, key),
        other => panic!("{key:?} read back as {other:?}"),
    }
}

fn p256_reads_back(key: p256::ecdsa::VerifyingKey) {
    for compress in [true, false] {
        match key_material(KeyKind::P256Public, &hex(key.to_encoded_point(compress).as_bytes())) {
            Ok(KeyMaterial::P256(read)) => assert_eq!(read, key),
            other => panic!("{key:?} read back as {other:?}"),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
