//! HTTP/2 with prior knowledge (h2c) on the public listener: the same verification and the same
//! forwarding as HTTP/1.1.

mod common;

use common::{Gateway, Upstream, post, pseudo_random_bytes, send_h2, with_headers};
use http::{StatusCode, Version};

const ROUTES: &str = r#"
routes:
  - name: flow
    path: /hooks/flow
    upstream: "{upstream}"
    verify: { scheme: flow, secret: flow-secret }
"#;

#[tokio::test]
async fn a_signed_h2c_request_is_forwarded_byte_identically() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(ROUTES, &upstream).await;
    let body = pseudo_random_bytes(100 * 1024, 2);
    let reply = send_h2(gateway.signed_post("flow", "/hooks/flow?attempt=1", body.clone())).await;
    assert_eq!(reply.version, Version::HTTP_2);
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"upstream says hi"[..]));

    let received = upstream.only();
    assert!(received.body == body, "the upstream got different bytes");
    assert_eq!(received.target, "/hooks/flow?attempt=1");
    assert_eq!(received.header("x-flow-signature"), gateway.sign("flow", &body)[0].1.to_str().ok());
    assert_eq!(received.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(received.header("x-forwarded-host"), Some(gateway.public.to_string().as_str()), ":authority");
}

#[tokio::test]
async fn a_forged_h2c_request_is_rejected() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(ROUTES, &upstream).await;
    let forged = with_headers(post(gateway.url("/hooks/flow"), "{\"amount\":1}"), gateway.sign("flow", b"{}"));
    let reply = send_h2(forged).await;
    assert_eq!(reply.version, Version::HTTP_2);
    reply.assert_error(StatusCode::FORBIDDEN, "invalid_signature");
    let reply = send_h2(post(gateway.url("/hooks/flow"), "{}")).await;
    reply.assert_error(StatusCode::BAD_REQUEST, "missing_signature");
    upstream.assert_untouched();
}
