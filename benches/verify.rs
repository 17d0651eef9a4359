//! Criterion benchmarks of the pure, per-request work: `Scheme::verify` per preset and body
//! size, `RouteTable::find` with many routes, and FreshBooks' form canonicalisation.
//!
//! Everything is built through the public API, as an operator's config would build it
//! (`hookgate::config::parse`), and every request is signed with `Scheme::sign` and checked to
//! verify before it is timed, so a benchmark never measures a fast rejection by mistake.
//!
//! ```sh
//! cargo bench --bench verify                       # everything (about 6 minutes)
//! cargo bench --bench verify -- 'verify/github'    # one group or a filter
//! cargo bench --bench verify -- --quick            # a fast, rougher pass
//! ```
//!
//! Results: `target/criterion/`, and a summary in BENCHMARKS.md.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hookgate::body::Body;
use hookgate::config::keys::signing_key;
use hookgate::config::{self, Route};
use hookgate::routes::{Lookup, RouteTable};
use hookgate::verify::form_json::form_to_python_json;
use hookgate::verify::{KeyKind, SignedRequest, SigningKey, UnixTime};
use http::Method;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use p256::pkcs8::EncodePublicKey as _;

/// Body sizes for `verify`: empty, a typical delivery, a large one, and the default limit.
const SIZES: &[(usize, &str)] = &[(0, "0B"), (1024, "1KiB"), (64 * 1024, "64KiB"), (1024 * 1024, "1MiB")];

/// The presets timed, in the order the summary lists them.
const PRESETS: &[&str] = &[
    "github",
    "stripe",
    "slack",
    "standard-webhooks",
    "freshbooks",
    "twilio",
    "discord",
    "sendgrid",
    "mailgun",
    "shopify",
];

const PUBLIC_URL: &str = "https://hooks.example.com";

/// Parses a config the way `hookgate --config` does (no environment).
fn parse(yaml: &str) -> config::Config {
    config::parse(yaml, Path::new("bench.yaml"), &|_| None).unwrap_or_else(|e| panic!("bench config: {e}"))
}

/// The route for `preset` with a key of the kind it takes, and the key a sender signs with.
fn route_for(preset: &str) -> (Route, SigningKey) {
    let kind = config::scheme(&config::RawVerify { scheme: preset.to_owned(), ..Default::default() })
        .expect("a known preset")
        .key_kind();
    let (field, text, key) = match kind {
        KeyKind::Shared => {
            let text = format!("{preset}-s3cret-0123456789abcdef");
            ("secret", text.clone(), signing_key(kind, &text).expect("a shared secret"))
        }
        KeyKind::SharedBase64 => {
            let text = format!("whsec_{}", STANDARD.encode(format!("{preset}-s3cret-0123456789abcdef")));
            ("secret", text.clone(), signing_key(kind, &text).expect("a whsec secret"))
        }
        KeyKind::Ed25519Public => {
            let private = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
            ("public_key", hex::encode(private.verifying_key().as_bytes()), SigningKey::Ed25519(private))
        }
        KeyKind::P256Public => {
            let private = p256::ecdsa::SigningKey::from_slice(&[9; 32]).expect("a P-256 scalar");
            let der = private.verifying_key().to_public_key_der().expect("DER");
            ("public_key", STANDARD.encode(der.as_bytes()), SigningKey::P256(private))
        }
    };
    let yaml = format!(
        "routes:\n  - name: bench\n    path: /hooks/{preset}\n    upstream: echo\n    public_url: {PUBLIC_URL}\n    \
         max_body_bytes: 4194304\n    verify: {{ scheme: {preset}, {field}: \"{text}\" }}\n"
    );
    let route = parse(&yaml).routes.pop().expect("one route");
    (route, key)
}

/// Whether `preset` signs an `application/x-www-form-urlencoded` body.
fn is_form(preset: &str) -> bool {
    matches!(preset, "freshbooks" | "twilio")
}

/// A JSON object of exactly `size` bytes (empty for 0), shaped like a delivery.
fn json_body(size: usize) -> Vec<u8> {
    if size == 0 {
        return Vec::new();
    }
    let head = r#"{"id":"evt_1NcP2aXk","type":"invoice.paid","amount":1999,"pad":""#;
    let tail = r#""}"#;
    let mut body = head.as_bytes().to_vec();
    body.resize(size.saturating_sub(tail.len()).max(head.len()), b'x');
    body.extend_from_slice(tail.as_bytes());
    body
}

/// A urlencoded form of exactly `size` bytes (empty for 0): FreshBooks' fields, then
/// `fNNNN=` fields of about 60 bytes with some escapes, as real forms have.
fn form_body(size: usize) -> Vec<u8> {
    if size == 0 {
        return Vec::new();
    }
    let mut body = String::from("name=invoice.create&object_id=1234567&account_id=6BApk&business_id=6543");
    let mut i = 0;
    while body.len() + 64 < size {
        body.push_str(&format!("&f{i:05}=caf%C3%A9+order+{i}+shipped+to+alice%40example.com+ok"));
        i += 1;
    }
    let filler = size.saturating_sub(body.len() + "&zz=".len());
    body.push_str("&zz=");
    body.push_str(&"y".repeat(filler));
    body.truncate(size.max(1));
    body.into_bytes()
}

/// The request's own headers (content type, ids and timestamps the provider sends).
fn own_headers(preset: &str, now: UnixTime) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let content_type = if is_form(preset) { "application/x-www-form-urlencoded" } else { "application/json" };
    headers.insert("content-type", HeaderValue::from_static(content_type));
    let secs = HeaderValue::from(now.as_secs());
    match preset {
        "github" => {
            headers.insert("x-github-delivery", HeaderValue::from_static("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
            headers.insert("x-github-event", HeaderValue::from_static("issues"));
        }
        "standard-webhooks" => {
            headers.insert("webhook-id", HeaderValue::from_static("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"));
        }
        "discord" => {
            headers.insert("x-signature-timestamp", secs);
        }
        "sendgrid" => {
            headers.insert("x-twilio-email-event-webhook-timestamp", secs);
        }
        _ => {}
    }
    // Typical transport headers a real sender adds, so header lookups search a realistic map.
    for (name, value) in [("user-agent", "GitHub-Hookshot/044aadd"), ("accept", "*/*"), ("host", "hooks.example.com")] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    headers
}

/// A signed request for `route` with a body of about `size` bytes; `None` when the scheme
/// cannot sign or verify such a body (for example an empty one where a body is required).
fn signed(route: &Route, key: &SigningKey, preset: &str, size: usize, now: UnixTime) -> Option<(HeaderMap, Body)> {
    let body = if is_form(preset) { form_body(size) } else { json_body(size) };
    let mut headers = own_headers(preset, now);
    let url = format!("{PUBLIC_URL}/hooks/{preset}");
    let request =
        SignedRequest { method: &Method::POST, url: Some(&url), headers: &headers, body: &Body::from(&body[..]) };
    let signature = match route.scheme.sign(key, request, now, None) {
        Ok(signature) => signature,
        Err(error) => {
            eprintln!("verify/{preset}/{size}: not timed, cannot sign: {error}");
            return None;
        }
    };
    for (name, value) in signature.headers {
        headers.insert(name, value);
    }
    let body = Body::from(signature.body.unwrap_or(body));
    let request = SignedRequest { method: &Method::POST, url: Some(&url), headers: &headers, body: &body };
    if let Err(rejection) = route.scheme.verify(&route.keys, request, now) {
        eprintln!("verify/{preset}/{size}: not timed, a signed request is rejected: {rejection}");
        return None;
    }
    Some((headers, body))
}

fn bench_verify(c: &mut Criterion) {
    let now = UnixTime::now();
    for &preset in PRESETS {
        let (route, key) = route_for(preset);
        let mut group = c.benchmark_group(format!("verify/{preset}"));
        group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(40);
        let url = format!("{PUBLIC_URL}/hooks/{preset}");
        for &(size, label) in SIZES {
            let Some((headers, body)) = signed(&route, &key, preset, size, now) else { continue };
            group.throughput(Throughput::Bytes(body.len() as u64));
            group.bench_with_input(BenchmarkId::from_parameter(label), &body, |b, body| {
                let request = SignedRequest { method: &Method::POST, url: Some(&url), headers: &headers, body };
                b.iter(|| route.scheme.verify(black_box(&route.keys), black_box(request), now).expect("verifies"));
            });
        }
        group.finish();
    }
}

/// A table of `n` routes, all exact paths or all prefixes.
fn table(n: usize, prefix: bool) -> RouteTable {
    let mut yaml = String::from("routes:\n");
    for i in 0..n {
        let path =
            if prefix { format!("path_prefix: /tenants/t{i:05}/hooks") } else { format!("path: /hooks/r{i:05}") };
        yaml.push_str(&format!(
            "  - {{ name: r{i:05}, {path}, upstream: echo, verify: {{ scheme: github, secret: s3cret }} }}\n"
        ));
    }
    RouteTable::new(parse(&yaml).routes)
}

fn bench_routes(c: &mut Criterion) {
    let mut group = c.benchmark_group("routes/find");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(40);
    for n in [1usize, 100, 10_000] {
        let exact = table(n, false);
        let last = n - 1;
        let hit = format!("/hooks/r{last:05}");
        group.bench_with_input(BenchmarkId::new("exact_hit", n), &hit, |b, path| {
            b.iter(|| assert!(matches!(exact.find(&Method::POST, black_box(path)), Lookup::Found(_))));
        });
        group.bench_with_input(BenchmarkId::new("exact_miss", n), &"/hooks/nobody", |b, path| {
            b.iter(|| assert!(matches!(exact.find(&Method::POST, black_box(path)), Lookup::NotFound)));
        });

        let prefixes = table(n, true);
        // The first and the last route of the table: a linear scan would find the last one last.
        let first = "/tenants/t00000/hooks/github".to_owned();
        let worst = format!("/tenants/t{last:05}/hooks/github");
        group.bench_with_input(BenchmarkId::new("prefix_hit_first", n), &first, |b, path| {
            b.iter(|| assert!(matches!(prefixes.find(&Method::POST, black_box(path)), Lookup::Found(_))));
        });
        group.bench_with_input(BenchmarkId::new("prefix_hit_last", n), &worst, |b, path| {
            b.iter(|| assert!(matches!(prefixes.find(&Method::POST, black_box(path)), Lookup::Found(_))));
        });
        group.bench_with_input(BenchmarkId::new("prefix_miss", n), &"/tenants/nobody/hooks", |b, path| {
            b.iter(|| assert!(matches!(prefixes.find(&Method::POST, black_box(path)), Lookup::NotFound)));
        });
    }
    group.finish();
}

fn bench_form_json(c: &mut Criterion) {
    let mut group = c.benchmark_group("freshbooks/form_to_python_json");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(40);
    // FreshBooks' own example (6 fields, ~100 B), a delivery with escapes (1 KiB), and large forms.
    let example =
        b"name=invoice.create&object_id=1234567&account_id=6BApk&business_id=6543&identity_id=1234&user_id=1".to_vec();
    let bodies = [
        ("example", example),
        ("1KiB", form_body(1024)),
        ("64KiB", form_body(64 * 1024)),
        ("1MiB", form_body(1024 * 1024)),
    ];
    for (label, body) in &bodies {
        form_to_python_json(body).expect("a canonicalisable form");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(label), body, |b, body| {
            b.iter(|| form_to_python_json(black_box(body)).expect("canonicalises"));
        });
    }
    group.finish();
}

/// The primitives under the schemes, against `ring` (already linked for TLS): what the same
/// work costs in another implementation on this machine, to judge what a swap would gain.
fn bench_primitives(c: &mut Criterion) {
    use hmac::Mac as _;
    let mut group = c.benchmark_group("primitive/hmac_sha256");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(40);
    let secret = b"It's a Secret to Everybody";
    let ring_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    for &(size, label) in &SIZES[1..] {
        let body = json_body(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("rustcrypto", label), &body, |b, body| {
            b.iter(|| {
                let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
                mac.update(black_box(body));
                mac.finalize().into_bytes()
            });
        });
        group.bench_with_input(BenchmarkId::new("ring", label), &body, |b, body| {
            b.iter(|| ring::hmac::sign(&ring_key, black_box(body)));
        });
    }
    group.finish();

    let mut group = c.benchmark_group("primitive/signature_1KiB");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);
    let message = json_body(1024);
    {
        use p256::ecdsa::signature::{Signer as _, Verifier as _};
        let private = p256::ecdsa::SigningKey::from_slice(&[9; 32]).expect("a P-256 scalar");
        let signature: p256::ecdsa::Signature = private.sign(&message);
        let der = signature.to_der();
        let public = *private.verifying_key();
        group.bench_function("p256_ecdsa/rustcrypto", |b| {
            b.iter(|| public.verify(black_box(&message), &signature).expect("valid"));
        });
        let point = public.to_encoded_point(false);
        let ring_public = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            point.as_bytes().to_vec(),
        );
        group.bench_function("p256_ecdsa/ring", |b| {
            b.iter(|| ring_public.verify(black_box(&message), der.as_bytes()).expect("valid"));
        });
    }
    {
        use ed25519_dalek::{Signer as _, Verifier as _};
        let private = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let signature = private.sign(&message);
        let public = private.verifying_key();
        group.bench_function("ed25519/dalek", |b| {
            b.iter(|| public.verify(black_box(&message), &signature).expect("valid"));
        });
        let ring_public =
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public.to_bytes().to_vec());
        group.bench_function("ed25519/ring", |b| {
            b.iter(|| ring_public.verify(black_box(&message), &signature.to_bytes()).expect("valid"));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_verify, bench_routes, bench_form_json, bench_primitives);
criterion_main!(benches);
