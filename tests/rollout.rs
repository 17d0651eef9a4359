//! Putting a provider in front of an app safely, end to end: the gateway answering the
//! provider's endpoint check (`challenge: answer`), report-only routes (`enforce: false`), and
//! `hookgate sign` output for URL-signing, body-signing and asymmetric schemes accepted by a
//! running gateway.

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output};

use bytes::Bytes;
use common::{Gateway, Reply, Scrape, Upstream, post, send, sign_request, sign_with, with_headers};
use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use hmac::{Hmac, Mac as _};
use hookgate::config;
use hookgate::verify::{KeyMaterial, SigningKey, UnixTime};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Request, StatusCode};
use http_body_util::Full;
use tempfile::NamedTempFile;

const BIN: &str = env!("CARGO_BIN_EXE_hookgate");
const JSON: &str = "application/json";

fn ed25519(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

fn pairs(pairs: &[(&str, &str)]) -> Vec<(HeaderName, HeaderValue)> {
    pairs
        .iter()
        .map(|(name, value)| {
            (HeaderName::from_bytes(name.as_bytes()).expect("a name"), HeaderValue::from_str(value).expect("a value"))
        })
        .collect()
}

fn header_map(list: &[(&str, &str)]) -> HeaderMap {
    pairs(list).into_iter().collect()
}

/// `request` with every header of `headers` added.
fn with_map(request: Request<Full<Bytes>>, headers: &HeaderMap) -> Request<Full<Bytes>> {
    with_headers(request, headers.iter().map(|(name, value)| (name.clone(), value.clone())))
}

/// The signing key of the route's first shared secret.
fn route_key(gateway: &Gateway, route: &str) -> SigningKey {
    match &gateway.route(route).keys[0].material {
        KeyMaterial::Shared(secret) => SigningKey::Shared(secret.clone()),
        other => panic!("{route}: not a shared secret: {other:?}"),
    }
}

/// A POST of `body` to `/hooks/<route>` with `own` headers, signed by `key` at `now`.
fn signed(
    gateway: &Gateway,
    route: &str,
    key: &SigningKey,
    own: &HeaderMap,
    body: &[u8],
    now: UnixTime,
) -> Request<Full<Bytes>> {
    let (signature, body) = sign_request(gateway.route(route), key, None, own, body, now);
    let own = own.iter().map(|(name, value)| (name.clone(), value.clone()));
    with_headers(post(gateway.url(&format!("/hooks/{route}")), body), own.chain(signature))
}

/// Asserts the gateway's own refusal, naming `what` when it fails.
fn assert_refused(what: &str, reply: &Reply, status: StatusCode, error: &str) {
    assert_eq!(reply.status, status, "{what}: body {:?}", reply.body);
    let json: serde_json::Value = serde_json::from_slice(&reply.body).expect("a JSON error body");
    assert_eq!(json, serde_json::json!({ "error": error }), "{what}");
}

fn json_of(reply: &Reply) -> serde_json::Value {
    assert_eq!(reply.header("content-type"), Some(JSON), "{reply:?}");
    serde_json::from_slice(&reply.body).expect("a JSON body")
}

fn requests(scrape: &Scrape, route: &str, outcome: &str) -> f64 {
    scrape.value("hookgate_requests_total", &[("route", route), ("outcome", outcome)])
}

// ----------------------------------------------------------------------------------------------
// Endpoint checks

const SLACK_CHALLENGE: &str = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P";

fn slack_url_verification() -> Vec<u8> {
    format!(r#"{{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"{SLACK_CHALLENGE}","type":"url_verification"}}"#)
        .into_bytes()
}

/// Slack's `url_verification` is answered by the gateway only once it verified; unsigned,
/// forged or stale checks are refused like any request, and ordinary events are still forwarded.
/// With the default `challenge: forward` the check reaches the upstream.
#[tokio::test]
async fn slack_url_verification_is_answered_only_when_signed() {
    let yaml = r#"
routes:
  - name: slack
    path: /hooks/slack
    upstream: "{upstream}"
    challenge: answer
    verify: { scheme: slack, secret: slack-signing-secret }
  - name: slack-forward
    path: /hooks/slack-forward
    upstream: "{upstream}"
    verify: { scheme: slack, secret: slack-signing-secret }
"#;
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(yaml, &upstream).await;
    let body = slack_url_verification();
    let own = header_map(&[("content-type", JSON)]);
    let key = route_key(&gateway, "slack");
    let now = UnixTime::now();

    let reply = send(signed(&gateway, "slack", &key, &own, &body, now)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(json_of(&reply), serde_json::json!({ "challenge": SLACK_CHALLENGE }));
    upstream.assert_untouched();

    let unsigned = send(with_map(post(gateway.url("/hooks/slack"), body.clone()), &own)).await;
    assert_refused("unsigned url_verification", &unsigned, StatusCode::BAD_REQUEST, "missing_signature");
    let forger = SigningKey::Shared(hookgate::config::secret::Secret::new("not-the-signing-secret"));
    let forged = send(signed(&gateway, "slack", &forger, &own, &body, now)).await;
    assert_refused("forged url_verification", &forged, StatusCode::FORBIDDEN, "invalid_signature");
    let stale = UnixTime::from_secs(now.as_secs() - 600);
    let replayed = send(signed(&gateway, "slack", &key, &own, &body, stale)).await;
    assert_refused("stale url_verification", &replayed, StatusCode::FORBIDDEN, "expired");
    for reply in [&unsigned, &forged, &replayed] {
        assert!(!String::from_utf8_lossy(&reply.body).contains(SLACK_CHALLENGE), "never answered: {reply:?}");
    }
    upstream.assert_untouched();

    let event = br#"{"type":"event_callback","event":{"type":"app_mention","text":"hi"}}"#;
    let reply = send(signed(&gateway, "slack", &key, &own, event, now)).await;
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"upstream says hi"[..]), "events are forwarded");
    assert_eq!(&upstream.only().body[..], event);

    let reply = send(signed(&gateway, "slack-forward", &key, &own, &body, now)).await;
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"upstream says hi"[..]), "challenge: forward");
    assert_eq!(upstream.received().len(), 2);
    assert_eq!(upstream.received()[1].body, body);

    let scrape = gateway.metrics().await;
    assert_eq!(requests(&scrape, "slack", "challenge"), 1.0);
    assert_eq!(requests(&scrape, "slack", "forwarded"), 1.0);
    assert_eq!(requests(&scrape, "slack", "missing_signature"), 1.0);
    assert_eq!(requests(&scrape, "slack", "invalid_signature"), 1.0);
    assert_eq!(requests(&scrape, "slack", "expired"), 1.0);
    assert_eq!(requests(&scrape, "slack-forward", "forwarded"), 1.0);
    assert_eq!(requests(&scrape, "slack-forward", "challenge"), 0.0);
}

/// Twitch's `webhook_callback_verification` gets the challenge back as plain text.
#[tokio::test]
async fn twitch_callback_verification_gets_the_plain_challenge() {
    let yaml = r#"
routes:
  - name: twitch
    path: /hooks/twitch
    upstream: "{upstream}"
    challenge: answer
    verify: { scheme: twitch, secret: twitch-eventsub-secret }
"#;
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(yaml, &upstream).await;
    let challenge = "pogchamp-kappa-360noscope-vohiyo";
    let body = concat!(
        r#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"#,
        r#""id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"webhook_callback_verification_pending","#,
        r#""type":"channel.follow","version":"2","condition":{"broadcaster_user_id":"12826"},"#,
        r#""transport":{"method":"webhook","callback":"https://hooks.example.com/hooks/twitch"},"#,
        r#""created_at":"2019-11-16T10:11:12.634234626Z"}}"#,
    );
    let own = header_map(&[
        ("content-type", JSON),
        ("twitch-eventsub-message-id", "e76c6bd4-55c9-4987-8304-da1588d8988b"),
        ("twitch-eventsub-message-type", "webhook_callback_verification"),
        ("twitch-eventsub-subscription-type", "channel.follow"),
    ]);
    let now = UnixTime::now();

    let reply = send(signed(&gateway, "twitch", &route_key(&gateway, "twitch"), &own, body.as_bytes(), now)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(reply.body, challenge);

    let forger = SigningKey::Shared(hookgate::config::secret::Secret::new("not-the-secret"));
    let forged = send(signed(&gateway, "twitch", &forger, &own, body.as_bytes(), now)).await;
    assert_refused("forged twitch verification", &forged, StatusCode::FORBIDDEN, "invalid_signature");
    upstream.assert_untouched();
    assert_eq!(requests(&gateway.metrics().await, "twitch", "challenge"), 1.0);
}

/// Zoom's `endpoint.url_validation` is answered with the token hashed under the secret that
/// verified the request (here the second of two, as during a rotation).
#[tokio::test]
async fn zoom_url_validation_is_answered_under_the_verifying_secret() {
    let yaml = r#"
routes:
  - name: zoom
    path: /hooks/zoom
    upstream: "{upstream}"
    challenge: answer
    verify: { scheme: zoom, secrets: [old-zoom-secret-token, new-zoom-secret-token] }
"#;
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(yaml, &upstream).await;
    let plain = "qgg8vlvZRS6UYooatFL8Aw";
    let body = format!(
        r#"{{"payload":{{"plainToken":"{plain}"}},"event_ts":1654503849680,"event":"endpoint.url_validation"}}"#
    );
    let own = header_map(&[("content-type", JSON)]);
    let now = UnixTime::now();
    for secret in ["new-zoom-secret-token", "old-zoom-secret-token"] {
        let signature = sign_with(gateway.route("zoom"), secret, body.as_bytes(), now);
        let request = with_map(post(gateway.url("/hooks/zoom"), body.clone()), &own);
        let reply = send(with_headers(request, signature)).await;
        assert_eq!(reply.status, StatusCode::OK, "{secret}: {:?}", reply.body);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(plain.as_bytes());
        let encrypted = hex::encode(mac.finalize().into_bytes());
        assert_eq!(
            json_of(&reply),
            serde_json::json!({ "plainToken": plain, "encryptedToken": encrypted }),
            "{secret}"
        );
    }

    let unsigned = send(with_map(post(gateway.url("/hooks/zoom"), body.clone()), &own)).await;
    assert_refused("unsigned zoom validation", &unsigned, StatusCode::BAD_REQUEST, "missing_signature");
    upstream.assert_untouched();
    assert_eq!(requests(&gateway.metrics().await, "zoom", "challenge"), 2.0);
}

/// Discord's signed PING gets `{"type":1}`; a PING with a bad signature gets 401, which
/// Discord's endpoint probe requires; other interactions are forwarded.
#[tokio::test]
async fn discord_ping_is_answered_with_pong() {
    let public = hex::encode(ed25519(7).verifying_key().as_bytes());
    let yaml = format!(
        r#"
routes:
  - name: discord
    path: /hooks/discord
    upstream: "{{upstream}}"
    challenge: answer
    verify: {{ scheme: discord, public_key: "{public}" }}
"#
    );
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(&yaml, &upstream).await;
    let now = UnixTime::now();
    let own = header_map(&[("content-type", JSON), ("x-signature-timestamp", &now.as_secs().to_string())]);
    let ping = br#"{"application_id":"1104417812386734080","id":"1104418470552899634","type":1,"version":1}"#;
    let key = SigningKey::Ed25519(ed25519(7));

    let reply = send(signed(&gateway, "discord", &key, &own, ping, now)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(json_of(&reply), serde_json::json!({ "type": 1 }));

    let forged = send(signed(&gateway, "discord", &SigningKey::Ed25519(ed25519(8)), &own, ping, now)).await;
    assert_refused("PING with a bad signature", &forged, StatusCode::UNAUTHORIZED, "invalid_signature");
    let unsigned = send(with_map(post(gateway.url("/hooks/discord"), &ping[..]), &own)).await;
    assert_refused("unsigned PING", &unsigned, StatusCode::BAD_REQUEST, "missing_signature");
    upstream.assert_untouched();

    let command = br#"{"type":2,"id":"1104418470552899635","data":{"name":"ping"}}"#;
    let reply = send(signed(&gateway, "discord", &key, &own, command, now)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(&upstream.only().body[..], command);
    assert_eq!(requests(&gateway.metrics().await, "discord", "challenge"), 1.0);
}

/// Dropbox checks with an unsigned `GET ?challenge=…`: answered as inert text on a route that
/// takes GET; refused (405) on one that does not; not answered with the default
/// `challenge: forward`. Signed notifications are still forwarded.
#[tokio::test]
async fn dropbox_get_challenge_is_echoed_as_plain_text() {
    let yaml = r#"
routes:
  - name: dropbox
    path: /hooks/dropbox
    methods: [GET, POST]
    upstream: "{upstream}"
    challenge: answer
    verify: { scheme: dropbox, secret: dropbox-app-secret }
  - name: dropbox-post
    path: /hooks/dropbox-post
    upstream: "{upstream}"
    challenge: answer
    verify: { scheme: dropbox, secret: dropbox-app-secret }
  - name: dropbox-forward
    path: /hooks/dropbox-forward
    methods: [GET, POST]
    upstream: "{upstream}"
    verify: { scheme: dropbox, secret: dropbox-app-secret }
"#;
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(yaml, &upstream).await;
    let get = |path: &str| Request::get(gateway.url(path)).body(Full::default()).expect("a request");

    let reply = send(get("/hooks/dropbox?challenge=Yt5vMZOUbQUvo9mYaYbH")).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body, "Yt5vMZOUbQUvo9mYaYbH");
    assert_eq!(reply.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));

    let reply = send(get("/hooks/dropbox-post?challenge=Yt5vMZOUbQUvo9mYaYbH")).await;
    assert_refused("GET not in methods", &reply, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    assert_eq!(reply.header("allow"), Some("POST"));
    let reply = send(get("/hooks/dropbox-forward?challenge=Yt5vMZOUbQUvo9mYaYbH")).await;
    assert_refused("challenge: forward", &reply, StatusCode::BAD_REQUEST, "missing_signature");
    upstream.assert_untouched();

    let notification =
        br#"{"list_folder":{"accounts":["dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"]},"delta":{"users":[12345]}}"#;
    let reply = send(gateway.signed_post("dropbox", "/hooks/dropbox", &notification[..])).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(&upstream.only().body[..], notification);
    let scrape = gateway.metrics().await;
    assert_eq!(requests(&scrape, "dropbox", "challenge"), 1.0);
    assert_eq!(requests(&scrape, "dropbox", "forwarded"), 1.0);
}

/// `challenge: answer` on a scheme without an endpoint check stops the gateway at startup.
#[test]
fn challenge_answer_on_a_scheme_without_a_check_is_a_config_error() {
    let yaml = r#"
routes:
  - name: github
    path: /hooks/github
    upstream: http://127.0.0.1:3000
    challenge: answer
    verify: { scheme: github, secret: github-secret }
"#;
    let error = config::parse(yaml, Path::new("gateway.yaml"), &|_| None).expect_err("refused").to_string();
    assert!(error.contains("routes[0] (github).challenge"), "{error}");
    assert!(error.contains("scheme github has no endpoint check to answer"), "{error}");
    for scheme in ["slack", "twitch", "zoom", "dropbox"] {
        let yaml = yaml.replace("scheme: github", &format!("scheme: {scheme}"));
        assert!(config::parse(&yaml, Path::new("gateway.yaml"), &|_| None).is_ok(), "{scheme} has a check");
    }
}

// ----------------------------------------------------------------------------------------------
// Report-only routes

/// `enforce: false` forwards what fails verification, marked `X-Hookgate-Unverified`, counts
/// it as `forwarded`, and counts each verdict in `hookgate_report_only_total`. The same forged
/// request on an enforcing route is refused.
#[tokio::test]
async fn report_only_routes_forward_and_count_verdicts() {
    let yaml = r#"
routes:
  - name: report
    path: /hooks/report
    upstream: "{upstream}"
    enforce: false
    verify: { scheme: github, secret: github-secret }
  - name: enforced
    path: /hooks/enforced
    upstream: "{upstream}"
    verify: { scheme: github, secret: github-secret }
"#;
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(yaml, &upstream).await;
    let body = br#"{"action":"opened","issue":{"number":1999}}"#;
    let forged_signature = gateway.sign("report", br#"{"action":"closed"}"#);
    let forged = |route: &str| with_headers(post(gateway.url(route), &body[..]), forged_signature.clone());

    let mut request = gateway.signed_post("report", "/hooks/report", &body[..]);
    request.headers_mut().insert("x-hookgate-unverified", HeaderValue::from_static("spoofed"));
    let reply = send(request).await;
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"upstream says hi"[..]));

    let reply = send(forged("/hooks/report")).await;
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"upstream says hi"[..]), "forwarded anyway");
    let reply = send(post(gateway.url("/hooks/report"), &body[..])).await;
    assert_eq!(reply.status, StatusCode::OK, "unsigned, forwarded anyway");

    let received = upstream.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| &r.body[..] == body), "the body arrives unchanged");
    assert_eq!(received[0].header("x-hookgate-unverified"), None, "verified; the sender's copy is removed");
    assert_eq!(received[1].header("x-hookgate-unverified"), Some("invalid_signature"));
    assert_eq!(received[2].header("x-hookgate-unverified"), Some("missing_signature"));

    let reply = send(forged("/hooks/enforced")).await;
    assert_refused("enforced by default", &reply, StatusCode::FORBIDDEN, "invalid_signature");
    assert_eq!(upstream.received().len(), 3);

    let scrape = gateway.metrics().await;
    assert_eq!(requests(&scrape, "report", "forwarded"), 3.0);
    assert_eq!(requests(&scrape, "report", "invalid_signature"), 0.0);
    assert_eq!(requests(&scrape, "report", "missing_signature"), 0.0);
    assert_eq!(requests(&scrape, "enforced", "invalid_signature"), 1.0);
    let verdicts = scrape.family("hookgate_report_only_total");
    let expected: Vec<(&str, f64)> = vec![
        (r#"hookgate_report_only_total{outcome="invalid_signature",route="report"}"#, 1.0),
        (r#"hookgate_report_only_total{outcome="missing_signature",route="report"}"#, 1.0),
        (r#"hookgate_report_only_total{outcome="verified",route="report"}"#, 1.0),
    ];
    assert_eq!(verdicts.into_iter().collect::<Vec<_>>(), expected, "enforcing routes count no verdicts");
}

// ----------------------------------------------------------------------------------------------
// hookgate sign

fn file_with(contents: &[u8]) -> NamedTempFile {
    let mut file = NamedTempFile::new().expect("a temp file");
    file.write_all(contents).expect("writing the temp file");
    file
}

fn path(file: &NamedTempFile) -> &str {
    file.path().to_str().expect("a UTF-8 temp path")
}

fn hookgate_sign(args: &[&str]) -> Output {
    let output = Command::new(BIN).arg("sign").args(args).env_remove("HOOKGATE_SECRET").output().expect("hookgate");
    assert!(output.status.success(), "hookgate sign {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output
}

/// `sign`'s output, one `name: value` per line, as headers.
fn printed_headers(output: &Output) -> Vec<(HeaderName, HeaderValue)> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("`name: value`, got {line:?}"));
            (HeaderName::from_bytes(name.as_bytes()).expect("name"), HeaderValue::from_str(value).expect("value"))
        })
        .collect()
}

const SIGN_ROUTES: &str = r#"
routes:
  - name: twilio
    path: /hooks/twilio
    upstream: "{upstream}"
    public_url: https://hooks.example.com
    verify: { scheme: twilio, secret: twilio-auth-token }
  - name: hubspot
    path: /hooks/hubspot
    upstream: "{upstream}"
    public_url: https://hooks.example.com
    verify: { scheme: hubspot, secret: hubspot-client-secret }
  - name: mailgun
    path: /hooks/mailgun
    upstream: "{upstream}"
    verify: { scheme: mailgun, secret: mailgun-signing-key }
  - name: discord
    path: /hooks/discord
    upstream: "{upstream}"
    verify: { scheme: discord, public_key: "{discord_public_key}" }
"#;

async fn sign_setup() -> (Upstream, Gateway) {
    let upstream = Upstream::start().await;
    let public = hex::encode(ed25519(7).verifying_key().as_bytes());
    let gateway = Gateway::start_with(&SIGN_ROUTES.replace("{discord_public_key}", &public), &upstream).await;
    (upstream, gateway)
}

/// `--url` for the schemes that sign the public URL: Twilio (its own code) and HubSpot (a
/// recipe that also signs the method and a timestamp).
#[tokio::test]
async fn sign_with_url_is_accepted_behind_public_url() {
    let (upstream, gateway) = sign_setup().await;
    let form =
        b"AccountSid=AC00000000000000000000000000000000&Body=Hello+from+Zo%C3%AB&From=%2B14155550100&To=%2B14155550199";
    let json = br#"[{"eventId":1999,"subscriptionType":"contact.creation","objectId":123}]"#;
    let cases: [(&str, &str, &[u8], &str); 2] = [
        ("twilio", "twilio-auth-token", form, "application/x-www-form-urlencoded"),
        ("hubspot", "hubspot-client-secret", json, JSON),
    ];
    for (i, (scheme, secret, body, content_type)) in cases.into_iter().enumerate() {
        let target = format!("/hooks/{scheme}?tenant=acme&attempt=1");
        let url = format!("https://hooks.example.com{target}");
        let body_file = file_with(body);
        let output =
            hookgate_sign(&["--scheme", scheme, "--secret", secret, "--url", &url, "--body-file", path(&body_file)]);
        let headers = printed_headers(&output);
        let request = with_headers(post(gateway.url(&target), body), headers.clone());
        let request = with_headers(request, pairs(&[("content-type", content_type)]));
        let reply = send(request).await;
        assert_eq!(reply.status, StatusCode::OK, "{scheme}: {headers:?} {:?}", reply.body);
        assert_eq!(upstream.received().len(), i + 1);
        assert_eq!(&upstream.received()[i].body[..], body, "{scheme}");

        // Signed for the gateway's own address instead: refused.
        let output = hookgate_sign(&[
            "--scheme",
            scheme,
            "--secret",
            secret,
            "--url",
            &gateway.url(&target),
            "--body-file",
            path(&body_file),
        ]);
        let request = with_headers(post(gateway.url(&target), body), printed_headers(&output));
        let reply = send(with_headers(request, pairs(&[("content-type", content_type)]))).await;
        assert_refused(
            &format!("{scheme} signed for the wrong URL"),
            &reply,
            StatusCode::FORBIDDEN,
            "invalid_signature",
        );
        assert_eq!(upstream.received().len(), i + 1);
    }
}

/// Mailgun signs inside the body: `--body-out` writes the body to send, and nothing is printed.
#[tokio::test]
async fn sign_with_body_out_is_accepted_for_mailgun() {
    let (upstream, gateway) = sign_setup().await;
    let event =
        br#"{"event-data":{"event":"delivered","id":"CPgfbmQMTCKtHW6uIWtuVe","recipient":"alice@example.com"}}"#;
    let body_file = file_with(event);
    let out = NamedTempFile::new().expect("a temp file");
    let output = hookgate_sign(&[
        "--scheme",
        "mailgun",
        "--secret",
        "mailgun-signing-key",
        "--body-file",
        path(&body_file),
        "--body-out",
        path(&out),
    ]);
    assert!(output.stdout.is_empty(), "no headers: {:?}", String::from_utf8_lossy(&output.stdout));
    let signed_body = std::fs::read(out.path()).expect("the signed body");
    let json: serde_json::Value = serde_json::from_slice(&signed_body).expect("JSON");
    assert_eq!(json["event-data"]["id"], "CPgfbmQMTCKtHW6uIWtuVe", "the event is kept");
    assert!(json["signature"]["signature"].as_str().is_some_and(|s| s.len() == 64), "{json}");

    let request =
        with_headers(post(gateway.url("/hooks/mailgun"), signed_body.clone()), pairs(&[("content-type", JSON)]));
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(upstream.only().body, signed_body);

    // The unsigned original is refused.
    let reply =
        send(with_headers(post(gateway.url("/hooks/mailgun"), &event[..]), pairs(&[("content-type", JSON)]))).await;
    assert_refused("mailgun without signature", &reply, StatusCode::BAD_REQUEST, "missing_signature");
}

/// Discord: the sender's Ed25519 private key as a PKCS#8 PEM file.
#[tokio::test]
async fn sign_with_a_private_key_file_is_accepted_for_discord() {
    let (upstream, gateway) = sign_setup().await;
    let pem = ed25519(7).to_pkcs8_pem(LineEnding::LF).expect("PKCS#8 PEM");
    let key_file = file_with(pem.as_bytes());
    let body = br#"{"type":2,"id":"1104418470552899635","data":{"name":"ping"}}"#;
    let body_file = file_with(body);
    let output =
        hookgate_sign(&["--scheme", "discord", "--private-key-file", path(&key_file), "--body-file", path(&body_file)]);
    let headers = printed_headers(&output);
    let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
    assert!(names.contains(&"x-signature-ed25519"), "{names:?}");
    assert!(names.contains(&"x-signature-timestamp"), "the signed timestamp header is printed: {names:?}");

    let reply = send(with_headers(post(gateway.url("/hooks/discord"), &body[..]), headers.clone())).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(&upstream.only().body[..], body);

    // Another key's PEM: 401, as Discord requires.
    let other = file_with(ed25519(8).to_pkcs8_pem(LineEnding::LF).expect("PEM").as_bytes());
    let output =
        hookgate_sign(&["--scheme", "discord", "--private-key-file", path(&other), "--body-file", path(&body_file)]);
    let reply = send(with_headers(post(gateway.url("/hooks/discord"), &body[..]), printed_headers(&output))).await;
    assert_refused("another private key", &reply, StatusCode::UNAUTHORIZED, "invalid_signature");
    assert_eq!(upstream.received().len(), 1);
}

/// `--private-key-file` with `--scheme standard-webhooks` (or `svix`) should sign the `v1a`
/// (Ed25519) variant that a route with `public_key` verifies, as it does for discord.
#[tokio::test]
async fn sign_with_a_private_key_file_signs_standard_webhooks_v1a() {
    let public = hex::encode(ed25519(7).verifying_key().as_bytes());
    let yaml = format!(
        r#"
routes:
  - name: standard-webhooks
    path: /hooks/standard-webhooks
    upstream: "{{upstream}}"
    verify: {{ scheme: standard-webhooks, public_key: "{public}" }}
  - name: svix
    path: /hooks/svix
    upstream: "{{upstream}}"
    verify: {{ scheme: svix, public_key: "{public}" }}
"#
    );
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(&yaml, &upstream).await;
    let key_file = file_with(ed25519(7).to_pkcs8_pem(LineEnding::LF).expect("PKCS#8 PEM").as_bytes());
    let body = br#"{"type":"invoice.paid","data":{"id":"inv_1999"}}"#;
    let body_file = file_with(body);
    for (i, scheme) in ["standard-webhooks", "svix"].into_iter().enumerate() {
        let output = hookgate_sign(&[
            "--scheme",
            scheme,
            "--private-key-file",
            path(&key_file),
            "--body-file",
            path(&body_file),
        ]);
        let headers = printed_headers(&output);
        let reply =
            send(with_headers(post(gateway.url(&format!("/hooks/{scheme}")), &body[..]), headers.clone())).await;
        assert_eq!(reply.status, StatusCode::OK, "{scheme}: {headers:?} {:?}", reply.body);
        assert_eq!(upstream.received().len(), i + 1);
    }
}
