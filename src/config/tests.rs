//! Config tests: what loads, and that every problem is reported with where it is.

use std::path::Path;

use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "HOOK_SECRET" => Some("from-env".into()),
        "EMPTY" => Some(String::new()),
        "UPSTREAM_PORT" => Some("3000".into()),
        _ => None,
    }
}

/// The shared secrets of a route, as bytes.
fn secrets(route: &Route) -> Vec<Vec<u8>> {
    route
        .keys
        .iter()
        .map(|key| match &key.material {
            crate::verify::KeyMaterial::Shared(secret) => secret.expose().to_vec(),
            other => panic!("not a shared secret: {other:?}"),
        })
        .collect()
}

fn load_text(text: &str) -> Result<Config, ConfigError> {
    parse(text, Path::new("test.yaml"), &env)
}

fn problems(text: &str) -> Vec<Problem> {
    match load_text(text) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected validation problems, got {other:?}"),
    }
}

const MINIMAL: &str = r#"
routes:
  - name: fb
    path: /webhooks/freshbooks
    upstream: http://127.0.0.1:${UPSTREAM_PORT}
    verify: { scheme: freshbooks, secret: "${HOOK_SECRET}" }
"#;

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let config = load_text(MINIMAL).expect("valid");
    assert_eq!(config.listen, "127.0.0.1:8080".parse().expect("addr"));
    assert_eq!(config.admin_listen, "127.0.0.1:9090".parse().expect("addr"));
    assert_eq!(config.shutdown_timeout, Duration::from_secs(30));
    assert!(!config.trust_forwarded_headers);
    let route = &config.routes[0];
    assert_eq!(route.methods, vec![Method::POST]);
    assert_eq!(route.max_body_bytes, 1_048_576);
    assert_eq!(route.upstream_timeout, Duration::from_secs(30));
    assert_eq!(route.path, PathMatch::Exact("/webhooks/freshbooks".into()));
    assert_eq!(secrets(route), [b"from-env"]);
    match &route.upstream {
        Upstream::Http(pool) => assert_eq!(pool.host(), "127.0.0.1:3000"),
        Upstream::Echo => panic!("expected an http upstream"),
    }
}

#[test]
fn the_example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.example.yaml");
    let config = load(&path).expect("gateway.example.yaml loads");
    let names: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["freshbooks", "freispace", "flow", "barker", "github", "slack", "twilio", "custom"]);
}

#[test]
fn every_problem_is_listed_with_its_place() {
    let text = r#"
listen: nonsense
upstream_timeout: soon
routes:
  - name: a
    path: /a
    upstream: http://127.0.0.1:1
    verify: { scheme: nope, secret: "${UNSET_VAR}" }
  - name: a
    path: /b
    upstream: http://127.0.0.1:1/base
    verify: { scheme: freispace, secret: "" }
  - name: Bad Name
    path: c
    methods: [post]
    upstream: ftp://example.com
    verify: { scheme: flow, secrets: [ok, "${EMPTY}"] }
"#;
    let found: Vec<String> = problems(text).iter().map(|p| format!("{}: {}", p.at, p.message)).collect();
    let expect = [
        "listen: \"nonsense\" is not an IP:port address",
        "upstream_timeout: \"soon\" is not a duration",
        "routes[0] (a).verify.secret: environment variable UNSET_VAR is not set",
        "routes[0] (a).verify: unknown scheme \"nope\"",
        "routes[1] (a): duplicate route name \"a\"",
        "routes[1] (a).upstream: \"http://127.0.0.1:1/base\" must not carry a path",
        "routes[1] (a).verify.secret: secret is empty",
        "routes[2] (Bad Name).name: must be non-empty",
        "routes[2] (Bad Name).path: \"c\" must start with '/'",
        "routes[2] (Bad Name).methods: \"post\" is not an upper-case HTTP method",
        "routes[2] (Bad Name).upstream: \"ftp://example.com\" must be http://, https:// or echo",
        "routes[2] (Bad Name).verify.secrets[1]: secret is empty",
    ];
    for wanted in expect {
        assert!(found.iter().any(|f| f.starts_with(wanted)), "missing {wanted:?} in:\n{}", found.join("\n"));
    }
    assert_eq!(found.len(), expect.len(), "{}", found.join("\n"));
}

#[test]
fn the_error_message_names_the_file_and_every_problem() {
    let text = "routes:\n  - { name: x, path: /x, upstream: echo, verify: { scheme: nope, secret: s } }\n  - { name: x, path: /y, upstream: echo, verify: { scheme: flow, secret: s } }\n";
    let message = load_text(text).expect_err("invalid").to_string();
    assert!(message.starts_with("test.yaml: 2 problem(s):"), "{message}");
    assert!(message.contains("routes[0] (x).verify: unknown scheme \"nope\""), "{message}");
    assert!(message.contains("routes[1] (x): duplicate route name"), "{message}");
}

#[test]
fn unknown_fields_are_refused() {
    for text in [
        "listen: 127.0.0.1:1\nlisten_tls: x\nroutes: []\n",
        "routes:\n  - { name: x, path: /x, upstream: echo, timeout: 3s, verify: { scheme: flow, secret: s } }\n",
        "routes:\n  - { name: x, path: /x, upstream: echo, verify: { scheme: flow, secret: s, secert: t } }\n",
    ] {
        match load_text(text) {
            Err(ConfigError::Syntax { message, .. }) => assert!(message.contains("unknown field"), "{message}"),
            other => panic!("expected an unknown-field error, got {other:?}"),
        }
    }
}

#[test]
fn secret_sources_are_exclusive_and_required() {
    for verify in [
        "{ scheme: flow }",
        "{ scheme: flow, secret: a, secrets: [b] }",
        "{ scheme: flow, secrets: [] }",
        "{ scheme: flow, secret: a, secret_file: /x }",
    ] {
        let text = format!("routes:\n  - {{ name: x, path: /x, upstream: echo, verify: {verify} }}\n");
        let found = problems(&text);
        assert!(found.iter().any(|p| p.message.starts_with("set exactly one of secret")), "{verify}: {found:?}");
    }
}

#[test]
fn secret_file_is_read_relative_to_the_config_and_trimmed() {
    let dir = std::env::temp_dir().join(format!("hookgate-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("key"), "s3cret\r\n").expect("write");
    let text = "routes:\n  - { name: x, path: /x, upstream: echo, verify: { scheme: flow, secret_file: key } }\n";
    let config = parse(text, &dir.join("gateway.yaml"), &env).expect("valid");
    assert_eq!(secrets(&config.routes[0]), [b"s3cret"]);

    std::fs::write(dir.join("empty"), "\n").expect("write");
    let text = "routes:\n  - { name: x, path: /x, upstream: echo, verify: { scheme: flow, secret_file: empty } }\n";
    assert!(matches!(parse(text, &dir.join("g.yaml"), &env), Err(ConfigError::Invalid { .. })));
    let text = "routes:\n  - { name: x, path: /x, upstream: echo, verify: { scheme: flow, secret_file: absent } }\n";
    assert!(matches!(parse(text, &dir.join("g.yaml"), &env), Err(ConfigError::Invalid { .. })));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn scheme_fields_are_checked() {
    let cases = [
        ("{ scheme: flow, secret: s, header: X-Sig }", "header applies only to schemes hmac and token"),
        ("{ scheme: flow, secret: s, message: \"{body}\" }", "apply only to scheme hmac"),
        ("{ scheme: token, secret: s }", "needs header"),
        ("{ scheme: discord, secret: s }", "verifies with a public key"),
        ("{ scheme: github, public_key: s }", "verifies with a shared secret"),
        ("{ scheme: discord, public_key: abcd }", "not an Ed25519 public key"),
        ("{ scheme: standard-webhooks, secret: \"whsec_!!\" }", "expected whsec_"),
        ("{ scheme: github, secrets: [{ secret: a, not_after: tomorrow }] }", "not an RFC 3339 time"),
        ("{ scheme: github, secrets: [{ secret: a, secret_file: b }] }", "set exactly one of secret, secret_file"),
        ("{ scheme: flow, secret: s, tolerance: 1m }", "signs no timestamp"),
        ("{ scheme: barker, secret: s, tolerance: forever }", "tolerance:"),
        ("{ scheme: hmac, secret: s }", "needs header"),
        ("{ scheme: hmac, secret: s, header: X, algorithm: sha3 }", "algorithm:"),
        ("{ scheme: hmac, secret: s, header: X, encoding: base32 }", "encoding:"),
        ("{ scheme: hmac, secret: s, header: X, message: \"{nonce}\" }", "unknown placeholder {nonce}"),
        ("{ scheme: hmac, secret: s, header: X, message: \"{timestamp}{body}\" }", "no timestamp_header"),
        ("{ scheme: hmac, secret: s, header: X, timestamp_header: T }", "does not sign {timestamp}"),
        ("{ scheme: hmac, secret: s, header: X, tolerance: 1m }", "need timestamp_header"),
        ("{ scheme: hmac, secret: s, header: \"bad header\" }", "not a valid header name"),
    ];
    for (verify, wanted) in cases {
        let text = format!("routes:\n  - {{ name: x, path: /x, upstream: echo, verify: {verify} }}\n");
        let found = problems(&text);
        assert!(found.iter().any(|p| p.message.contains(wanted)), "{verify}: wanted {wanted:?}, got {found:?}");
    }
}

#[test]
fn route_limits_and_paths() {
    let text = r#"
max_body_bytes: 100
upstream_timeout: 2s
routes:
  - { name: a, path_prefix: /hooks/, upstream: echo, max_body_bytes: 10, upstream_timeout: 500ms, methods: [POST, PUT], verify: { scheme: flow, secret: s } }
  - { name: b, path: /b, upstream: echo, verify: { scheme: flow, secret: s } }
  - { name: c, path: /b, upstream: echo, verify: { scheme: flow, secret: s } }
  - { name: d, path: /d, path_prefix: /d, upstream: echo, verify: { scheme: flow, secret: s } }
  - { name: e, path: /e, upstream: echo, max_body_bytes: 0, upstream_timeout: 0s, verify: { scheme: flow, secret: s } }
  - { name: f, path: /f, upstream: echo, rejection_status: 200, verify: { scheme: flow, secret: s } }
"#;
    let found: Vec<String> = problems(text).iter().map(|p| format!("{}: {}", p.at, p.message)).collect();
    assert_eq!(
        found,
        [
            "routes[2] (c): same path as route \"b\"",
            "routes[3] (d): set exactly one of path or path_prefix",
            "routes[4] (e).max_body_bytes: must be between 1 and the address space",
            "routes[4] (e).upstream_timeout: must be greater than zero",
            "routes[5] (f).rejection_status: must be a 4xx status",
        ]
    );
    let valid = text.lines().take(6).collect::<Vec<_>>().join("\n");
    let config = load_text(&valid).expect("valid");
    assert_eq!(config.routes[0].max_body_bytes, 10);
    assert_eq!(config.routes[0].upstream_timeout, Duration::from_millis(500));
    assert_eq!(config.routes[1].max_body_bytes, 100);
    assert_eq!(config.routes[1].upstream_timeout, Duration::from_secs(2));
}

#[test]
fn no_routes_is_an_error() {
    assert_eq!(problems("listen: 127.0.0.1:1\n")[0].message, "at least one route is required");
}

#[test]
fn interpolation() {
    let get = |text: &str| interpolate(text, &env);
    assert_eq!(get("a${HOOK_SECRET}b${UPSTREAM_PORT}"), Ok("afrom-envb3000".into()));
    assert_eq!(get("no vars $ {x}"), Ok("no vars $ {x}".into()));
    assert!(get("${UNSET}").expect_err("unset").contains("UNSET is not set"));
    assert!(get("${HOOK_SECRET").is_err());
    assert!(get("${BAD-NAME}").is_err());
}

#[test]
fn config_debug_output_never_shows_secrets() {
    let config = load_text(MINIMAL).expect("valid");
    let dump = format!("{config:?}");
    assert!(!dump.contains("from-env"), "{dump}");
    assert!(dump.contains("***"));
}
