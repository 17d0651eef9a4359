//! Every way a request is refused: the status, the exact JSON error, that the upstream got
//! nothing, and that the answer gives away neither the secret nor the signature it expected.

mod common;

use bytes::Bytes;
use common::{Gateway, Reply, Upstream, post, raw_exchange, send, sign_with, with_headers};
use hookgate::verify::UnixTime;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, StatusCode};

const ROUTES: &str = r#"
routes:
  - name: freispace
    path: /hooks/freispace
    upstream: "{upstream}"
    verify: { scheme: freispace, secret: freispace-secret-1234 }
  - name: flow
    path: /hooks/flow
    methods: [POST, PUT]
    upstream: "{upstream}"
    verify: { scheme: flow, secret: flow-secret-5678 }
  - name: barker
    path: /hooks/barker
    upstream: "{upstream}"
    verify: { scheme: barker, secret: barker-secret-9012, tolerance: 5m }
  - name: rotating
    path: /hooks/rotating
    upstream: "{upstream}"
    verify: { scheme: freispace, secrets: [old-secret-aaaa, new-secret-bbbb] }
"#;

const SECRETS: &[&str] =
    &["freispace-secret-1234", "flow-secret-5678", "barker-secret-9012", "old-secret-aaaa", "new-secret-bbbb"];

const BODY: &[u8] = br#"{"id":"evt_1","type":"invoice.paid","amount":1999}"#;

async fn setup() -> (Upstream, Gateway) {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(ROUTES, &upstream).await;
    (upstream, gateway)
}

fn header(name: &'static str, value: &str) -> (HeaderName, HeaderValue) {
    (HeaderName::from_static(name), HeaderValue::from_str(value).expect("a valid value"))
}

/// Asserts a refusal, that nothing was forwarded, and that the answer (head and body) holds
/// no secret and none of `expected` (the signature values the gateway computed).
fn assert_refused(reply: &Reply, upstream: &Upstream, status: StatusCode, error: &str, expected: &[HeaderValue]) {
    reply.assert_error(status, error);
    upstream.assert_untouched();
    let mut answer = format!("{:?}", reply.headers);
    answer.push_str(&String::from_utf8_lossy(&reply.body));
    let signatures = expected.iter().map(|v| v.to_str().expect("ASCII"));
    for leak in SECRETS.iter().copied().chain(signatures) {
        assert!(!answer.contains(leak), "the answer leaks {leak:?}: {answer}");
    }
}

/// The signature value a correct sender would attach to `body` for `route`.
fn expected_signature(gateway: &Gateway, route: &str, body: &[u8]) -> Vec<HeaderValue> {
    gateway.sign(route, body).into_iter().map(|(_, value)| value).collect()
}

#[tokio::test]
async fn a_missing_signature_is_400() {
    let (upstream, gateway) = setup().await;
    let reply = send(post(gateway.url("/hooks/freispace"), BODY)).await;
    let expected = expected_signature(&gateway, "freispace", BODY);
    assert_refused(&reply, &upstream, StatusCode::BAD_REQUEST, "missing_signature", &expected);
}

#[tokio::test]
async fn an_empty_signature_header_is_missing() {
    let (upstream, gateway) = setup().await;
    let reply =
        send(with_headers(post(gateway.url("/hooks/freispace"), BODY), [header("x-freispace-signature", "")])).await;
    assert_refused(&reply, &upstream, StatusCode::BAD_REQUEST, "missing_signature", &[]);
}

#[tokio::test]
async fn a_malformed_signature_is_400() {
    let (upstream, gateway) = setup().await;
    let expected = expected_signature(&gateway, "flow", BODY);
    let good = expected[0].to_str().expect("ASCII");
    let hex = good.strip_prefix("sha-256=").expect("flow's prefix");
    for malformed in [
        hex.to_owned(),                      // prefix left out
        format!("sha-256={}", &hex[..62]),   // too short
        format!("sha-256={}zz", &hex[..62]), // not hex
        format!("sha256={hex}"),             // another prefix
        format!("sha-256={hex}{hex}"),       // too long
    ] {
        let request = with_headers(post(gateway.url("/hooks/flow"), BODY), [header("x-flow-signature", &malformed)]);
        let reply = send(request).await;
        assert_refused(&reply, &upstream, StatusCode::BAD_REQUEST, "malformed_signature", &expected);
    }
}

#[tokio::test]
async fn a_signature_over_another_body_is_403() {
    let (upstream, gateway) = setup().await;
    let mut tampered = BODY.to_vec();
    tampered[30] ^= 0x01;
    let signature = gateway.sign("freispace", BODY);
    let reply = send(with_headers(post(gateway.url("/hooks/freispace"), tampered.clone()), signature)).await;
    let expected = expected_signature(&gateway, "freispace", &tampered);
    assert_refused(&reply, &upstream, StatusCode::FORBIDDEN, "invalid_signature", &expected);
}

#[tokio::test]
async fn a_signature_made_with_the_wrong_secret_is_403() {
    let (upstream, gateway) = setup().await;
    let route = gateway.route("freispace");
    let signature = sign_with(route, "not-the-secret", BODY, UnixTime::now());
    let reply = send(with_headers(post(gateway.url("/hooks/freispace"), BODY), signature)).await;
    let expected = expected_signature(&gateway, "freispace", BODY);
    assert_refused(&reply, &upstream, StatusCode::FORBIDDEN, "invalid_signature", &expected);
}

#[tokio::test]
async fn a_stale_barker_timestamp_is_403_expired() {
    let (upstream, gateway) = setup().await;
    let ten_minutes_ago = UnixTime::from_secs(UnixTime::now().as_secs() - 600);
    let signature = gateway.sign_at("barker", BODY, ten_minutes_ago);
    let reply = send(with_headers(post(gateway.url("/hooks/barker"), BODY), signature)).await;
    assert_refused(&reply, &upstream, StatusCode::FORBIDDEN, "expired", &expected_signature(&gateway, "barker", BODY));
}

#[tokio::test]
async fn a_barker_signature_without_its_timestamp_is_400() {
    let (upstream, gateway) = setup().await;
    let signature = gateway.sign("barker", BODY).into_iter().filter(|(name, _)| name == "barker_signature");
    let reply = send(with_headers(post(gateway.url("/hooks/barker"), BODY), signature)).await;
    assert_refused(&reply, &upstream, StatusCode::BAD_REQUEST, "missing_signature", &[]);
}

#[tokio::test]
async fn a_repeated_signature_header_is_400() {
    let (upstream, gateway) = setup().await;
    let good = gateway.sign("freispace", BODY);
    let mut decoy = BODY.to_vec();
    decoy.push(b' ');
    let other = gateway.sign("freispace", &decoy);
    // Both orders: neither copy may win, whichever one is valid.
    for pair in [[good[0].clone(), other[0].clone()], [other[0].clone(), good[0].clone()]] {
        let reply = send(with_headers(post(gateway.url("/hooks/freispace"), BODY), pair)).await;
        assert_refused(&reply, &upstream, StatusCode::BAD_REQUEST, "malformed_signature", &[]);
    }
}

#[tokio::test]
async fn an_unknown_path_is_404() {
    let (upstream, gateway) = setup().await;
    for path in ["/", "/hooks", "/hooks/freispace/extra", "/hooks/freispacex", "/HOOKS/FREISPACE"] {
        let request = with_headers(post(gateway.url(path), BODY), gateway.sign("freispace", BODY));
        send(request).await.assert_error(StatusCode::NOT_FOUND, "no_route");
    }
    upstream.assert_untouched();
}

#[tokio::test]
async fn a_method_the_route_does_not_take_is_405_with_allow() {
    let (upstream, gateway) = setup().await;
    for (path, allow) in [("/hooks/freispace", "POST"), ("/hooks/flow", "POST, PUT")] {
        for method in [Method::GET, Method::DELETE, Method::PATCH] {
            let request = Request::builder()
                .method(method.clone())
                .uri(gateway.url(path))
                .body(http_body_util::Full::new(Bytes::from_static(BODY)))
                .expect("request");
            let route = if path.ends_with("flow") { "flow" } else { "freispace" };
            let reply = send(with_headers(request, gateway.sign(route, BODY))).await;
            reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
            assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
        }
    }
    upstream.assert_untouched();
}

#[tokio::test]
async fn a_body_cut_short_is_not_forwarded() {
    let (upstream, gateway) = setup().await;
    let (name, value) = gateway.sign("freispace", BODY).remove(0);
    let head = format!(
        "POST /hooks/freispace HTTP/1.1\r\nHost: h\r\n{name}: {}\r\nContent-Length: {}\r\n\r\n",
        value.to_str().expect("ASCII"),
        BODY.len() + 10,
    );
    let mut stream = tokio::net::TcpStream::connect(gateway.public).await.expect("connect");
    use tokio::io::AsyncWriteExt as _;
    stream.write_all(&[head.as_bytes(), BODY].concat()).await.expect("write");
    stream.shutdown().await.expect("half-close: the promised bytes never come");
    let reply = common::read_raw_reply(&mut stream).await;
    reply.assert_error(400, "bad_request");
    upstream.assert_untouched();
}

#[tokio::test]
async fn rotation_accepts_the_old_and_the_new_secret_and_nothing_else() {
    let (upstream, gateway) = setup().await;
    let route = gateway.route("rotating");
    for (i, secret) in ["old-secret-aaaa", "new-secret-bbbb"].into_iter().enumerate() {
        let body = format!("{{\"signed_with\":{i}}}");
        let signature = sign_with(route, secret, body.as_bytes(), UnixTime::now());
        let reply = send(with_headers(post(gateway.url("/hooks/rotating"), body.clone()), signature)).await;
        assert_eq!(reply.status, StatusCode::OK, "{secret}");
        assert_eq!(upstream.received()[i].body, body);
    }
    // Another route's secret is not one of this route's.
    let signature = sign_with(route, "freispace-secret-1234", BODY, UnixTime::now());
    let reply = send(with_headers(post(gateway.url("/hooks/rotating"), BODY), signature)).await;
    reply.assert_error(StatusCode::FORBIDDEN, "invalid_signature");
    assert_eq!(upstream.received().len(), 2);
}

/// The raw-socket path gives the same answers as hyper's client: nothing depends on how a
/// client happens to write its request.
#[tokio::test]
async fn a_forged_request_written_by_hand_is_403() {
    let (upstream, gateway) = setup().await;
    let head = format!(
        "POST /hooks/freispace HTTP/1.1\r\nHost: h\r\nX-Freispace-Signature: {}\r\nContent-Length: {}\r\n\r\n",
        "0".repeat(64),
        BODY.len()
    );
    let reply = raw_exchange(gateway.public, &[head.as_bytes(), BODY].concat()).await;
    reply.assert_error(403, "invalid_signature");
    upstream.assert_untouched();
}

#[tokio::test]
async fn rejection_status_gives_every_failed_verification_one_status() {
    let upstream = Upstream::start().await;
    let routes = ROUTES.replace(
        "    verify: { scheme: flow, secret: flow-secret-5678 }",
        "    rejection_status: 403\n    verify: { scheme: flow, secret: flow-secret-5678 }",
    );
    let gateway = Gateway::start_with(&routes, &upstream).await;
    let expected = expected_signature(&gateway, "flow", BODY);
    let flow = |signature: Option<&str>| {
        let request = post(gateway.url("/hooks/flow"), BODY);
        match signature {
            Some(value) => with_headers(request, [header("x-flow-signature", value)]),
            None => request,
        }
    };
    // Missing, malformed and wrong: the error still names the cause; only the status is one.
    let reply = send(flow(None)).await;
    assert_refused(&reply, &upstream, StatusCode::FORBIDDEN, "missing_signature", &expected);
    let reply = send(flow(Some("SHA-256=00"))).await;
    assert_refused(&reply, &upstream, StatusCode::FORBIDDEN, "malformed_signature", &expected);
    let reply = send(flow(Some(&format!("sha-256={}", "0".repeat(64))))).await;
    assert_refused(&reply, &upstream, StatusCode::FORBIDDEN, "invalid_signature", &expected);
    // Other routes keep the statuses by cause.
    let reply = send(post(gateway.url("/hooks/freispace"), BODY)).await;
    assert_refused(&reply, &upstream, StatusCode::BAD_REQUEST, "missing_signature", &[]);
}
