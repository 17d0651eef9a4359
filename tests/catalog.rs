//! The provider catalog as a user configures it from the README, end to end: every preset
//! behind a three-line route, the Standard Webhooks `v1a` and Svix variants, public URLs for
//! schemes that sign the URL, key rotation with `not_after`, and `forward_headers`.

mod common;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use common::{Gateway, Reply, Upstream, post, send, sign_request, sign_with, with_headers};
use hookgate::config::keys::signing_key;
use hookgate::config::{self, RawVerify};
use hookgate::verify::message::Part;
use hookgate::verify::presets::{PRESETS, Preset, PresetRule};
use hookgate::verify::timestamp::TimestampFormat;
use hookgate::verify::{KeyKind, Rule, SigningKey, UnixTime};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Request, StatusCode};
use http_body_util::Full;
use p256::pkcs8::EncodePublicKey as _;

/// The origin senders call in these tests (a load balancer in front of the gateway).
const PUBLIC_ORIGIN: &str = "https://hooks.example.com";
/// The query every table request carries, so URL-signing schemes sign one.
const QUERY: &str = "?source=catalog";
/// The header the generic `token` scheme is configured with.
const TOKEN_HEADER: &str = "X-Webhook-Token";
const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

fn ed25519(seed: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
}

fn p256(seed: u8) -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[seed; 32]).expect("a valid P-256 scalar")
}

/// An Ed25519 public key as Discord's developer portal shows it: hex.
fn ed25519_public_hex(seed: u8) -> String {
    hex::encode(ed25519(seed).verifying_key().as_bytes())
}

fn header(name: &str, value: &str) -> (HeaderName, HeaderValue) {
    (HeaderName::from_bytes(name.as_bytes()).expect("a header name"), HeaderValue::from_str(value).expect("a value"))
}

fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs.iter().map(|(name, value)| header(name, value)).collect()
}

/// A POST of `body` to `path_and_query` with the request's own `headers` plus the `signed` ones.
fn signed_post(
    gateway: &Gateway,
    path_and_query: &str,
    headers: &HeaderMap,
    signed: &[(HeaderName, HeaderValue)],
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    let own = headers.iter().map(|(name, value)| (name.clone(), value.clone()));
    with_headers(post(gateway.url(path_and_query), body), own.chain(signed.iter().cloned()))
}

/// Asserts the gateway's own refusal, naming `what` when it fails.
fn assert_refused(what: &str, reply: &Reply, status: StatusCode, error: &str) {
    assert_eq!(reply.status, status, "{what}: body {:?}", reply.body);
    let json: serde_json::Value = serde_json::from_slice(&reply.body).expect("a JSON error body");
    assert_eq!(json, serde_json::json!({ "error": error }), "{what}");
}

/// The body with its `1999` changed to `1998`: one byte, and still well-formed JSON or form.
fn tamper(body: &[u8]) -> Vec<u8> {
    let at = body.windows(4).position(|w| w == b"1999").expect("every test body holds 1999");
    let mut tampered = body.to_vec();
    tampered[at + 3] = b'8';
    tampered
}

// ----------------------------------------------------------------------------------------------
// Every preset

const FRESHBOOKS_BODY: &str =
    "name=invoice.create&object_id=1999&account_id=6BApk&business_id=6543&identity_id=712&user_id=1";
const TWILIO_BODY: &str = "AccountSid=AC00000000000000000000000000000000&ApiVersion=2010-04-01\
    &Body=Order+1999+shipped+%E2%9C%85&From=%2B14155550100\
    &MessageSid=SMc1afd21363214523997ff65434618a19&NumMedia=0&To=%2B14155550199";
const LINEAR_BODY: &str = concat!(
    r#"{"action":"create","type":"Issue","#,
    r#""data":{"id":"2174add1-f7c8-44e3-bbf3-2d60b5ea8bc9","title":"Crash on café ☕ (#1999)"},"#,
    r#""url":"https://linear.app/acme/issue/ENG-1999","webhookTimestamp":WEBHOOK_TIMESTAMP}"#,
);
const MAILGUN_BODY: &str = concat!(
    r#"{"event-data":{"event":"delivered","id":"CPgfbmQMTCKtHW6uIWtuVe","timestamp":1521472262.908181,"#,
    r#""recipient":"alice@example.com","user-variables":{"order":1999}}}"#,
);
const SENDGRID_BODY: &str = concat!(
    r#"[{"email":"alice@example.com","event":"processed","sg_event_id":"rbtnWrG1DVDGGGFHFyun0A==","#,
    r#""sg_message_id":"14c5d75ce93.dfd.64b469","timestamp":1999}]"#,
);
const DISCORD_BODY: &str =
    r#"{"type":2,"id":"1999","application_id":"11","token":"aW50ZXJhY3Rpb24","data":{"name":"ping"}}"#;
const JSON_BODY: &str =
    r#"{"id":"evt_1999","provider":"PROVIDER","type":"invoice.paid","amount":1999,"note":"café ☕"}"#;

/// How the table test configures, signs and attacks one preset.
struct Case {
    preset: &'static Preset,
    kind: KeyKind,
    /// The scheme signs the URL the sender called, so the route needs `public_url`.
    signs_url: bool,
    /// The signature covers the body (or fields parsed from it), not just a credential.
    signs_body: bool,
    mailgun: bool,
    /// The key as written in the route's `verify:` block.
    key_text: String,
    key: SigningKey,
    wrong_key: SigningKey,
}

impl Case {
    fn new(preset: &'static Preset) -> Self {
        let name = preset.name;
        let token = matches!(preset.rule, PresetRule::Token { header: None });
        let raw = RawVerify {
            scheme: name.to_owned(),
            header: token.then(|| TOKEN_HEADER.to_owned()),
            ..RawVerify::default()
        };
        let scheme = config::scheme(&raw).unwrap_or_else(|e| panic!("{name}: {e}"));
        let signs_body = match &scheme.rule {
            Rule::Recipe(recipe) => {
                recipe.message.parts().iter().any(|part| matches!(part, Part::Body | Part::FormJson))
            }
            Rule::Twilio(_) => true,
            Rule::Mailgun(_) | Rule::Credentials(_) => false,
        };
        let kind = scheme.key_kind();
        let shared = |text: String, wrong: String| {
            let key = signing_key(kind, &text).expect("a shared secret");
            let wrong_key = signing_key(kind, &wrong).expect("a shared secret");
            (text, key, wrong_key)
        };
        let (key_text, key, wrong_key) = match kind {
            KeyKind::Shared if matches!(preset.rule, PresetRule::Basic) => {
                shared(format!("hookgate:{name}-password"), format!("hookgate:{name}-guess"))
            }
            KeyKind::Shared => shared(format!("{name}-s3cret"), format!("{name}-guess")),
            KeyKind::SharedBase64 => shared(
                format!("whsec_{}", STANDARD.encode(format!("{name}-s3cret"))),
                format!("whsec_{}", STANDARD.encode(format!("{name}-guess"))),
            ),
            KeyKind::Ed25519Public => {
                (ed25519_public_hex(7), SigningKey::Ed25519(ed25519(7)), SigningKey::Ed25519(ed25519(8)))
            }
            KeyKind::P256Public => {
                // SendGrid's settings page shows the base64 of the DER public key.
                let der = p256(9).verifying_key().to_public_key_der().expect("DER");
                (STANDARD.encode(der.as_bytes()), SigningKey::P256(p256(9)), SigningKey::P256(p256(10)))
            }
        };
        let mailgun = matches!(scheme.rule, Rule::Mailgun(_));
        Self { preset, kind, signs_url: scheme.signs_url(), signs_body, mailgun, key_text, key, wrong_key }
    }

    fn name(&self) -> &'static str {
        self.preset.name
    }

    /// The route as a user writes it: name, path, upstream, and a one-line `verify:`.
    fn route_yaml(&self) -> String {
        let name = self.name();
        let field = match self.kind {
            KeyKind::Ed25519Public | KeyKind::P256Public => "public_key",
            KeyKind::Shared | KeyKind::SharedBase64 => "secret",
        };
        let mut verify = format!("scheme: {name}, {field}: \"{}\"", self.key_text);
        if matches!(self.preset.rule, PresetRule::Token { header: None }) {
            verify.push_str(&format!(", header: {TOKEN_HEADER}"));
        }
        let mut lines = vec![
            format!("  - name: {name}"),
            format!("    path: /hooks/{name}"),
            "    upstream: \"{upstream}\"".to_owned(),
        ];
        if self.signs_url {
            lines.push(format!("    public_url: {PUBLIC_ORIGIN}"));
        }
        lines.push(format!("    verify: {{ {verify} }}\n"));
        lines.join("\n")
    }

    fn target(&self) -> String {
        format!("/hooks/{}{QUERY}", self.name())
    }

    /// The URL the sender signs, for schemes that sign it.
    fn url(&self) -> Option<String> {
        self.signs_url.then(|| format!("{PUBLIC_ORIGIN}{}", self.target()))
    }

    /// A delivery as the provider would send it (each holds `1999`, for [`tamper`]).
    fn body(&self, now: UnixTime) -> Vec<u8> {
        let text = match self.name() {
            "freshbooks" => FRESHBOOKS_BODY.to_owned(),
            "twilio" => TWILIO_BODY.to_owned(),
            "linear" => LINEAR_BODY.replace("WEBHOOK_TIMESTAMP", &(now.as_nanos() / 1_000_000).to_string()),
            "mailgun" => MAILGUN_BODY.to_owned(),
            "sendgrid" => SENDGRID_BODY.to_owned(),
            "discord" => DISCORD_BODY.to_owned(),
            name => JSON_BODY.replace("PROVIDER", name),
        };
        text.into_bytes()
    }

    /// The request's own headers: content type, and the ids and timestamps providers send.
    fn headers(&self, now: UnixTime) -> HeaderMap {
        let secs = now.as_secs().to_string();
        let form = matches!(self.name(), "freshbooks" | "twilio");
        let mut headers = header_map(&[("content-type", if form { FORM } else { JSON })]);
        let extra: &[(&str, &str)] = match self.name() {
            "github" | "github-sha1" => {
                &[("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"), ("x-github-event", "issues")]
            }
            "standard-webhooks" => &[("webhook-id", "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W")],
            "svix" => &[("svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")],
            "twitch" => &[
                ("twitch-eventsub-message-id", "befa7b53-d79d-478f-86b9-120f112b044e"),
                ("twitch-eventsub-message-type", "notification"),
            ],
            "zendesk" => &[("x-zendesk-webhook-invocation-id", "8350205582")],
            "linear" => &[("linear-delivery", "234d1a4e-b617-4388-90fe-adc3633d6b72"), ("linear-event", "Issue")],
            _ => &[],
        };
        headers.extend(header_map(extra));
        match self.name() {
            "discord" => headers.extend(header_map(&[("x-signature-timestamp", &secs)])),
            "sendgrid" => headers.extend(header_map(&[("x-twilio-email-event-webhook-timestamp", &secs)])),
            "zendesk" => headers.extend(header_map(&[(
                "x-zendesk-webhook-signature-timestamp",
                &TimestampFormat::Rfc3339.format(now),
            )])),
            _ => {}
        }
        headers
    }

    /// What a refused signature gets: 401 for Discord (its endpoint probe requires it), else 403.
    fn mismatch_status(&self) -> StatusCode {
        if self.name() == "discord" { StatusCode::UNAUTHORIZED } else { StatusCode::FORBIDDEN }
    }
}

/// Asserts that the upstream has received `count` requests, the last one `sent` to `name`'s route.
fn assert_arrived(upstream: &Upstream, count: usize, name: &str, sent: &[u8]) {
    let received = upstream.received();
    assert_eq!(received.len(), count, "{name}: the upstream's request count");
    let last = received.last().expect("one request");
    assert!(last.body == sent, "{name}: the upstream got other bytes: {:?}", last.body);
    assert_eq!(last.target, format!("/hooks/{name}{QUERY}"), "{name}");
}

/// The Mailgun body with one hex digit of its signed `token` changed.
fn tamper_mailgun_token(body: &[u8]) -> Vec<u8> {
    let mut json: serde_json::Value = serde_json::from_slice(body).expect("a signed Mailgun body");
    let token = json["signature"]["token"].as_str().expect("a token").to_owned();
    let flipped = if token.starts_with('0') { "1" } else { "0" };
    json["signature"]["token"] = serde_json::Value::String(format!("{flipped}{}", &token[1..]));
    serde_json::to_vec(&json).expect("JSON")
}

/// One gateway with a three-line route per preset in `PRESETS` (new presets are covered as
/// they are added): a signed delivery arrives byte for byte; a one-byte-tampered body, or a
/// signature made with another key, is refused and never reaches the upstream.
#[tokio::test]
async fn every_preset_verifies_behind_a_three_line_route() {
    let cases: Vec<Case> = PRESETS.iter().map(Case::new).collect();
    let yaml = format!("routes:\n{}", cases.iter().map(Case::route_yaml).collect::<String>());
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(&yaml, &upstream).await;
    let unsigned_bodies: Vec<&str> = cases.iter().filter(|case| !case.signs_body).map(Case::name).collect();
    // The README: gitlab, token, postmark and basic check a credential; mailgun signs only
    // timestamp + token. Any other preset must fail on a tampered body.
    assert_eq!(unsigned_bodies, ["gitlab", "mailgun", "postmark", "basic", "token"]);

    let mut forwarded = 0;
    for case in &cases {
        let name = case.name();
        let route = gateway.route(name);
        let now = UnixTime::now();
        let headers = case.headers(now);
        let url = case.url();
        let (signed, sent) = sign_request(route, &case.key, url.as_deref(), &headers, &case.body(now), now);

        let reply = send(signed_post(&gateway, &case.target(), &headers, &signed, sent.clone())).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {:?}", reply.body);
        assert_eq!(reply.body, "upstream says hi", "{name}");
        forwarded += 1;
        assert_arrived(&upstream, forwarded, name, &sent);

        let tampered = tamper(&sent);
        let reply = send(signed_post(&gateway, &case.target(), &headers, &signed, tampered.clone())).await;
        if case.signs_body {
            assert_refused(&format!("{name}, tampered body"), &reply, case.mismatch_status(), "invalid_signature");
        } else {
            // Documented: credential schemes and Mailgun do not authenticate the body.
            assert_eq!(reply.status, StatusCode::OK, "{name}: the body is not signed");
            forwarded += 1;
            assert_arrived(&upstream, forwarded, name, &tampered);
        }

        if case.mailgun {
            let forged = tamper_mailgun_token(&sent);
            let reply = send(signed_post(&gateway, &case.target(), &headers, &signed, forged)).await;
            assert_refused(&format!("{name}, tampered token"), &reply, StatusCode::FORBIDDEN, "invalid_signature");
        }

        let (wrong, wrong_body) = sign_request(route, &case.wrong_key, url.as_deref(), &headers, &case.body(now), now);
        let reply = send(signed_post(&gateway, &case.target(), &headers, &wrong, wrong_body)).await;
        assert_refused(&format!("{name}, another key"), &reply, case.mismatch_status(), "invalid_signature");
        assert_eq!(upstream.received().len(), forwarded, "{name}: a refused request reached the upstream");
    }

    let scrape = gateway.metrics().await;
    for case in &cases {
        let labels = |outcome| [("route", case.name()), ("outcome", outcome)];
        let (ok, refused) = match (case.signs_body, case.mailgun) {
            (true, _) => (1.0, 2.0),
            (false, true) => (2.0, 2.0),
            (false, false) => (2.0, 1.0),
        };
        assert_eq!(scrape.value("hookgate_requests_total", &labels("forwarded")), ok, "{}", case.name());
        assert_eq!(scrape.value("hookgate_requests_total", &labels("invalid_signature")), refused, "{}", case.name());
    }
}

// ----------------------------------------------------------------------------------------------
// Standard Webhooks variants

/// `v1a` (Ed25519, with `public_key`) for both Standard Webhooks and Svix: the asymmetric
/// signature verifies, a tampered body does not.
#[tokio::test]
async fn standard_webhooks_and_svix_v1a_verify_with_a_public_key() {
    let public = STANDARD.encode(ed25519(7).verifying_key().as_bytes());
    let yaml = format!(
        r#"
routes:
  - name: standard
    path: /hooks/standard
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
    let body = br#"{"type":"invoice.paid","timestamp":"2024-06-10T06:13:20Z","data":{"id":"inv_1999"}}"#;
    let cases = [("standard", "webhook-id", "webhook-signature"), ("svix", "svix-id", "svix-signature")];
    for (i, (name, id_header, signature_header)) in cases.into_iter().enumerate() {
        let now = UnixTime::now();
        let headers = header_map(&[(id_header, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"), ("content-type", JSON)]);
        let key = SigningKey::Ed25519(ed25519(7));
        let (signed, sent) = sign_request(gateway.route(name), &key, None, &headers, body, now);
        let signature = signed.iter().find(|(n, _)| n == signature_header).expect("a signature header");
        assert!(signature.1.to_str().expect("ASCII").starts_with("v1a,"), "{name}: {signature:?}");

        let reply = send(signed_post(&gateway, &format!("/hooks/{name}"), &headers, &signed, sent)).await;
        assert_eq!(reply.status, StatusCode::OK, "{name}: {:?}", reply.body);
        assert_eq!(upstream.received().len(), i + 1);
        assert_eq!(&upstream.received()[i].body[..], body, "{name}");

        let reply = send(signed_post(&gateway, &format!("/hooks/{name}"), &headers, &signed, tamper(body))).await;
        assert_refused(name, &reply, StatusCode::FORBIDDEN, "invalid_signature");

        let other = SigningKey::Ed25519(ed25519(8));
        let (forged, _) = sign_request(gateway.route(name), &other, None, &headers, body, now);
        let reply = send(signed_post(&gateway, &format!("/hooks/{name}"), &headers, &forged, &body[..])).await;
        assert_refused(name, &reply, StatusCode::FORBIDDEN, "invalid_signature");
        assert_eq!(upstream.received().len(), i + 1, "{name}: refused requests reach the upstream");
    }
}

/// Svix also sends its headers under the Standard Webhooks names (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`); a svix route accepts either.
#[tokio::test]
async fn svix_falls_back_to_webhook_headers() {
    let secret = format!("whsec_{}", STANDARD.encode("svix-fallback-secret"));
    let yaml = format!(
        r#"
routes:
  - name: svix
    path: /hooks/svix
    upstream: "{{upstream}}"
    forward_headers: {{ verified: true }}
    verify: {{ scheme: svix, secret: "{secret}" }}
"#
    );
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(&yaml, &upstream).await;
    let body = br#"{"type":"user.created","data":{"id":"user_1999"}}"#;
    let now = UnixTime::now();
    let headers = header_map(&[("svix-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"), ("content-type", JSON)]);
    let (signed, _) = sign_request(gateway.route("svix"), &gateway_key(&gateway, "svix"), None, &headers, body, now);

    // The same signature, under the webhook-* names only.
    let rename = |name: &HeaderName| {
        let renamed = name.as_str().strip_prefix("svix-").map(|rest| format!("webhook-{rest}"));
        HeaderName::from_bytes(renamed.expect("svix-* headers").as_bytes()).expect("a header name")
    };
    let own = header_map(&[("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"), ("content-type", JSON)]);
    let moved: Vec<_> = signed.iter().map(|(name, value)| (rename(name), value.clone())).collect();
    assert!(moved.iter().any(|(name, _)| name == "webhook-signature"), "{moved:?}");
    let reply = send(signed_post(&gateway, "/hooks/svix", &own, &moved, &body[..])).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    let received = upstream.only();
    assert_eq!(&received.body[..], body);
    assert_eq!(received.header("x-hookgate-verified"), Some("svix"));
    assert_eq!(received.header("x-hookgate-delivery-id"), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
    assert_eq!(received.header("x-hookgate-timestamp"), Some(now.as_secs().to_string().as_str()));

    let reply = send(signed_post(&gateway, "/hooks/svix", &own, &moved, tamper(body))).await;
    assert_refused("svix via webhook-*", &reply, StatusCode::FORBIDDEN, "invalid_signature");
    assert_eq!(upstream.received().len(), 1);
}

/// The signing key of the route's first configured shared secret.
fn gateway_key(gateway: &Gateway, route: &str) -> SigningKey {
    let route = gateway.route(route);
    match &route.keys[0].material {
        hookgate::verify::KeyMaterial::Shared(secret) => SigningKey::Shared(secret.clone()),
        other => panic!("{}: not a shared secret: {other:?}", route.name),
    }
}

/// Linear's timestamp is the body field `webhookTimestamp` (milliseconds), covered by the
/// signature: a correctly signed but old delivery is `expired`, a fresh one carries its time to
/// the upstream as `X-Hookgate-Timestamp` (seconds).
#[tokio::test]
async fn linear_reads_its_timestamp_from_the_signed_body() {
    let yaml = r#"
routes:
  - name: linear
    path: /hooks/linear
    upstream: "{upstream}"
    forward_headers: { verified: true }
    verify: { scheme: linear, secret: lin_wh_secret }
"#;
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(yaml, &upstream).await;
    let now = UnixTime::now();
    let body_at =
        |ms: i128| format!(r#"{{"action":"update","type":"Issue","data":{{"id":"1999"}},"webhookTimestamp":{ms}}}"#);
    let headers = header_map(&[("content-type", JSON), ("linear-delivery", "234d1a4e-b617-4388-90fe-adc3633d6b72")]);
    let key = gateway_key(&gateway, "linear");

    let stale = body_at(now.as_nanos() / 1_000_000 - 120_000);
    let (signed, _) = sign_request(gateway.route("linear"), &key, None, &headers, stale.as_bytes(), now);
    let reply = send(signed_post(&gateway, "/hooks/linear", &headers, &signed, stale)).await;
    assert_refused("two minutes old", &reply, StatusCode::FORBIDDEN, "expired");
    upstream.assert_untouched();

    let fresh = body_at(now.as_nanos() / 1_000_000);
    let (signed, _) = sign_request(gateway.route("linear"), &key, None, &headers, fresh.as_bytes(), now);
    let reply = send(signed_post(&gateway, "/hooks/linear", &headers, &signed, fresh.clone())).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let received = upstream.only();
    assert_eq!(received.body, fresh);
    assert_eq!(received.header("x-hookgate-timestamp"), Some(now.as_secs().to_string().as_str()));
    assert_eq!(received.header("x-hookgate-delivery-id"), Some("234d1a4e-b617-4388-90fe-adc3633d6b72"));
}

// ----------------------------------------------------------------------------------------------
// Public URLs

const TWILIO_FORM: &[u8] = b"AccountSid=AC00000000000000000000000000000000&Body=Hello+from+Zo%C3%AB\
&From=%2B14155550100&MessageSid=SMc1afd21363214523997ff65434618a19&NumMedia=0&To=%2B14155550199";

/// A Twilio form POST to `path_and_query`, signed for `signed_url` with the route's secret, plus
/// the request's own `extra` headers.
async fn twilio_post(
    gateway: &Gateway,
    route: &str,
    path_and_query: &str,
    signed_url: &str,
    extra: &[(&str, &str)],
) -> Reply {
    let headers = header_map(&[("content-type", FORM)]);
    let route_config = gateway.route(route);
    let (signed, _) = sign_request(
        route_config,
        &gateway_key(gateway, route),
        Some(signed_url),
        &headers,
        TWILIO_FORM,
        UnixTime::now(),
    );
    let mut own = headers;
    own.extend(header_map(extra));
    send(signed_post(gateway, path_and_query, &own, &signed, TWILIO_FORM)).await
}

/// `public_url: https://hooks.example.com` keeps the request's path and query; a path in it
/// replaces the request's path. A signature over the gateway's own loopback URL is refused, and
/// so is one over a host the sender names in `X-Forwarded-Host` (not trusted here).
#[tokio::test]
async fn twilio_signs_the_public_url_not_the_gateways_own() {
    let yaml = r#"
routes:
  - name: twilio
    path: /hooks/twilio
    upstream: "{upstream}"
    public_url: https://hooks.example.com
    verify: { scheme: twilio, secret: twilio-auth-token }
  - name: twilio-sms
    path: /hooks/twilio-sms
    upstream: "{upstream}"
    public_url: https://hooks.example.com/twilio/sms
    verify: { scheme: twilio, secret: twilio-auth-token }
"#;
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(yaml, &upstream).await;

    let target = "/hooks/twilio?tenant=acme&lang=en-US";
    let public = format!("{PUBLIC_ORIGIN}{target}");
    let reply = twilio_post(&gateway, "twilio", target, &public, &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let received = upstream.only();
    assert_eq!(&received.body[..], TWILIO_FORM);
    assert_eq!(received.target, target);

    let own_url = gateway.url(target);
    assert!(own_url.starts_with("http://127.0.0.1:"), "{own_url}");
    let reply = twilio_post(&gateway, "twilio", target, &own_url, &[]).await;
    assert_refused("signed for the gateway's own URL", &reply, StatusCode::FORBIDDEN, "invalid_signature");

    let spoofed = format!("https://evil.example{target}");
    let forwarded = [("x-forwarded-proto", "https"), ("x-forwarded-host", "evil.example")];
    let reply = twilio_post(&gateway, "twilio", target, &spoofed, &forwarded).await;
    assert_refused("untrusted X-Forwarded-Host", &reply, StatusCode::FORBIDDEN, "invalid_signature");

    let without_query = format!("{PUBLIC_ORIGIN}/hooks/twilio");
    let reply = twilio_post(&gateway, "twilio", target, &without_query, &[]).await;
    assert_refused("signed without the query", &reply, StatusCode::FORBIDDEN, "invalid_signature");
    assert_eq!(upstream.received().len(), 1);

    // The configured path replaces the request's; the query is still the request's.
    let target = "/hooks/twilio-sms?tenant=acme";
    let reply =
        twilio_post(&gateway, "twilio-sms", target, &format!("{PUBLIC_ORIGIN}/twilio/sms?tenant=acme"), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(upstream.received().len(), 2);
    assert_eq!(upstream.received()[1].target, target, "the upstream still gets the request's own path");
    let reply = twilio_post(&gateway, "twilio-sms", target, &format!("{PUBLIC_ORIGIN}{target}"), &[]).await;
    assert_refused("signed for the request path", &reply, StatusCode::FORBIDDEN, "invalid_signature");
    assert_eq!(upstream.received().len(), 2);
}

/// Behind a trusted proxy and without `public_url`, the URL is rebuilt from
/// `X-Forwarded-Proto` and `X-Forwarded-Host`.
#[tokio::test]
async fn trusted_forwarded_headers_rebuild_the_public_url() {
    let yaml = r#"
trust_forwarded_headers: true
routes:
  - name: twilio
    path: /hooks/twilio
    upstream: "{upstream}"
    verify: { scheme: twilio, secret: twilio-auth-token }
"#;
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(yaml, &upstream).await;
    let target = "/hooks/twilio?tenant=acme";
    let public = format!("{PUBLIC_ORIGIN}{target}");
    let forwarded = [("x-forwarded-proto", "https"), ("x-forwarded-host", "hooks.example.com")];

    let reply = twilio_post(&gateway, "twilio", target, &public, &forwarded).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(&upstream.only().body[..], TWILIO_FORM);

    let reply = twilio_post(&gateway, "twilio", target, &public, &[]).await;
    assert_refused("no X-Forwarded-* headers", &reply, StatusCode::FORBIDDEN, "invalid_signature");
    assert_eq!(upstream.received().len(), 1);
}

/// Every scheme that signs the URL is refused at load time on a route with neither
/// `public_url` nor `trust_forwarded_headers`, and the message says what to set.
#[test]
fn a_url_signing_route_without_a_public_url_is_a_config_error() {
    let mut checked = Vec::new();
    for case in PRESETS.iter().map(Case::new).filter(|case| case.signs_url) {
        let name = case.name();
        let route = format!(
            "routes:\n  - {{ name: {name}, path: /hooks/{name}, upstream: http://127.0.0.1:3000, \
             verify: {{ scheme: {name}, secret: s3cret }} }}\n"
        );
        let error = config::parse(&route, Path::new("gateway.yaml"), &|_| None).expect_err(name).to_string();
        assert!(error.contains(&format!("routes[0] ({name}).public_url")), "{name}: {error}");
        assert!(error.contains(&format!("scheme {name} signs the URL the sender called")), "{name}: {error}");
        assert!(error.contains("set public_url (or trust_forwarded_headers"), "{name}: {error}");
        assert!(error.contains("1 problem"), "{name}: {error}");

        let trusted = format!("trust_forwarded_headers: true\n{route}");
        assert!(config::parse(&trusted, Path::new("gateway.yaml"), &|_| None).is_ok(), "{name} behind a trusted proxy");
        checked.push(name);
    }
    for expected in ["twilio", "square", "hubspot"] {
        assert!(checked.contains(&expected), "{expected} signs the URL: {checked:?}");
    }
}

// ----------------------------------------------------------------------------------------------
// Rotation

/// A `secrets:` entry past its `not_after` stops matching by itself; one before it still matches.
#[tokio::test]
async fn a_secret_stops_matching_after_its_not_after() {
    let yaml = r#"
routes:
  - name: expired
    path: /hooks/expired
    upstream: "{upstream}"
    verify:
      scheme: github
      secrets:
        - new-github-secret
        - { secret: old-github-secret, not_after: 2020-01-01T00:00:00Z }
  - name: grace
    path: /hooks/grace
    upstream: "{upstream}"
    verify:
      scheme: github
      secrets:
        - new-github-secret
        - { secret: old-github-secret, not_after: 2999-12-31T23:59:59Z }
"#;
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(yaml, &upstream).await;
    let body = br#"{"action":"opened","issue":{"number":1999}}"#;
    let cases = [
        ("expired", "new-github-secret", StatusCode::OK),
        ("expired", "old-github-secret", StatusCode::FORBIDDEN),
        ("grace", "new-github-secret", StatusCode::OK),
        ("grace", "old-github-secret", StatusCode::OK),
    ];
    for (route, secret, status) in cases {
        let signature = sign_with(gateway.route(route), secret, body, UnixTime::now());
        let reply = send(with_headers(post(gateway.url(&format!("/hooks/{route}")), &body[..]), signature)).await;
        assert_eq!(reply.status, status, "{route} with {secret}: {:?}", reply.body);
    }
    let received = upstream.received();
    assert_eq!(received.len(), 3);
    assert!(received.iter().all(|r| &r.body[..] == body));

    let scrape = gateway.metrics().await;
    let count = |route, outcome| scrape.value("hookgate_requests_total", &[("route", route), ("outcome", outcome)]);
    assert_eq!(count("expired", "forwarded"), 1.0);
    assert_eq!(count("expired", "invalid_signature"), 1.0);
    assert_eq!(count("grace", "forwarded"), 2.0, "the counter does not change with which key matched");
}

/// `public_keys:` rotate the same way (Discord, which answers a refused signature with 401).
#[tokio::test]
async fn a_public_key_stops_matching_after_its_not_after() {
    let (new, old) = (ed25519_public_hex(7), ed25519_public_hex(8));
    let yaml = format!(
        r#"
routes:
  - name: expired
    path: /hooks/expired
    upstream: "{{upstream}}"
    verify:
      scheme: discord
      public_keys:
        - "{new}"
        - {{ public_key: "{old}", not_after: 2020-01-01T00:00:00Z }}
  - name: grace
    path: /hooks/grace
    upstream: "{{upstream}}"
    verify:
      scheme: discord
      public_keys:
        - "{new}"
        - {{ public_key: "{old}", not_after: 2999-12-31T23:59:59Z }}
"#
    );
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(&yaml, &upstream).await;
    let body = br#"{"type":2,"id":"1999","data":{"name":"ping"}}"#;
    let cases = [
        ("expired", 7, StatusCode::OK),
        ("expired", 8, StatusCode::UNAUTHORIZED),
        ("grace", 7, StatusCode::OK),
        ("grace", 8, StatusCode::OK),
    ];
    for (route, seed, status) in cases {
        let now = UnixTime::now();
        let headers = header_map(&[("x-signature-timestamp", &now.as_secs().to_string()), ("content-type", JSON)]);
        let key = SigningKey::Ed25519(ed25519(seed));
        let (signed, sent) = sign_request(gateway.route(route), &key, None, &headers, body, now);
        let reply = send(signed_post(&gateway, &format!("/hooks/{route}"), &headers, &signed, sent)).await;
        assert_eq!(reply.status, status, "{route} with key {seed}: {:?}", reply.body);
    }
    assert_eq!(upstream.received().len(), 3);
}

/// README: `not_after:` is RFC 3339, which allows a numeric offset as well as `Z`. An operator
/// who writes the end of a grace period in local time gets the same instant.
#[tokio::test]
async fn not_after_accepts_an_rfc3339_offset() {
    let yaml = r#"
routes:
  - name: expired
    path: /hooks/expired
    upstream: "{upstream}"
    verify:
      scheme: github
      secrets: [new-github-secret, { secret: old-github-secret, not_after: "2020-01-01T02:00:00+02:00" }]
  - name: grace
    path: /hooks/grace
    upstream: "{upstream}"
    verify:
      scheme: github
      secrets: [new-github-secret, { secret: old-github-secret, not_after: "2999-12-31T23:59:59-05:00" }]
"#;
    let text = format!("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n{yaml}");
    let loaded = config::parse(&text.replace("{upstream}", "http://127.0.0.1:9"), Path::new("gateway.yaml"), &|_| None);
    if let Err(error) = loaded {
        panic!("a valid RFC 3339 not_after is refused:\n{error}");
    }
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(yaml, &upstream).await;
    let body = br#"{"action":"opened","issue":{"number":1999}}"#;
    for (route, status) in [("expired", StatusCode::FORBIDDEN), ("grace", StatusCode::OK)] {
        let signature = sign_with(gateway.route(route), "old-github-secret", body, UnixTime::now());
        let reply = send(with_headers(post(gateway.url(&format!("/hooks/{route}")), &body[..]), signature)).await;
        assert_eq!(reply.status, status, "{route}: {:?}", reply.body);
    }
}

// ----------------------------------------------------------------------------------------------
// forward_headers

/// `forward_headers: { verified: true, strip_signature: true }`: the upstream learns what was
/// verified (scheme, delivery id, signed timestamp) and no longer sees the signature material.
/// Senders cannot set `X-Hookgate-*` themselves, with or without `forward_headers`.
#[tokio::test]
async fn forward_headers_mark_verified_requests_and_strip_signatures() {
    let yaml = r#"
routes:
  - name: github
    path: /hooks/github
    upstream: "{upstream}"
    forward_headers: { verified: true, strip_signature: true }
    verify: { scheme: github, secret: github-secret }
  - name: stripe
    path: /hooks/stripe
    upstream: "{upstream}"
    forward_headers: { verified: true, strip_signature: true }
    verify: { scheme: stripe, secret: whsec_stripe-secret }
  - name: gitlab
    path: /hooks/gitlab
    upstream: "{upstream}"
    forward_headers: { verified: true, strip_signature: true }
    verify: { scheme: gitlab, secret: gitlab-token }
  - name: plain
    path: /hooks/plain
    upstream: "{upstream}"
    verify: { scheme: github, secret: github-secret }
"#;
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(yaml, &upstream).await;
    let body = br#"{"action":"opened","issue":{"number":1999}}"#;
    let delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let spoofed = [
        ("x-hookgate-verified", "forged"),
        ("x-hookgate-delivery-id", "forged"),
        ("x-hookgate-timestamp", "1"),
        ("x-hookgate-unverified", "forged"),
    ];
    let mut own = header_map(&[("x-github-delivery", delivery), ("x-github-event", "issues"), ("content-type", JSON)]);
    own.extend(header_map(&spoofed));

    let now = UnixTime::now();
    for (i, route) in ["github", "stripe", "gitlab", "plain"].into_iter().enumerate() {
        let (signed, _) = sign_request(gateway.route(route), &gateway_key(&gateway, route), None, &own, body, now);
        let reply = send(signed_post(&gateway, &format!("/hooks/{route}"), &own, &signed, &body[..])).await;
        assert_eq!(reply.status, StatusCode::OK, "{route}: {:?}", reply.body);
        assert_eq!(upstream.received().len(), i + 1);
    }
    let received = upstream.received();

    let github = &received[0];
    assert_eq!(&github.body[..], body);
    assert_eq!(github.header("x-hookgate-verified"), Some("github"));
    assert_eq!(github.header("x-hookgate-delivery-id"), Some(delivery));
    assert_eq!(github.header("x-hookgate-timestamp"), None, "github signs no timestamp");
    assert_eq!(github.header("x-hookgate-unverified"), None);
    assert_eq!(github.header("x-hub-signature-256"), None, "the signature is stripped");
    assert_eq!(github.header("x-github-delivery"), Some(delivery), "other provider headers are kept");
    assert_eq!(github.header("x-github-event"), Some("issues"));

    let stripe = &received[1];
    assert_eq!(stripe.header("x-hookgate-verified"), Some("stripe"));
    assert_eq!(stripe.header("x-hookgate-timestamp"), Some(now.as_secs().to_string().as_str()), "the signed t");
    assert_eq!(stripe.header("x-hookgate-delivery-id"), None, "stripe sends no delivery id header");
    assert_eq!(stripe.header("stripe-signature"), None, "the signature is stripped");

    let gitlab = &received[2];
    assert_eq!(gitlab.header("x-hookgate-verified"), Some("gitlab"));
    assert_eq!(gitlab.header("x-gitlab-token"), None, "the credential is stripped");

    let plain = &received[3];
    for (name, _) in spoofed {
        assert_eq!(plain.header(name), None, "a sender's {name} is removed");
    }
    assert!(plain.header("x-hub-signature-256").is_some_and(|v| v.starts_with("sha256=")), "kept without strip");
}
