//! Body limits: an announced length over the limit is refused before the body is read, a body
//! without one is counted as it arrives, and a body exactly at the limit passes.

mod common;

use common::{Gateway, Upstream, raw_exchange, read_raw_reply, send};
use http::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const ROUTES: &str = r#"
max_body_bytes: 1000
routes:
  - name: default
    path: /hooks/default
    upstream: "{upstream}"
    verify: { scheme: freispace, secret: default-secret }
  - name: small
    path: /hooks/small
    upstream: "{upstream}"
    max_body_bytes: 64
    verify: { scheme: freispace, secret: small-secret }
"#;

async fn setup() -> (Upstream, Gateway) {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(ROUTES, &upstream).await;
    (upstream, gateway)
}

/// A request head for `route` with its signature over `signed` and the given framing header.
fn head(gateway: &Gateway, route: &str, signed: &[u8], framing: &str) -> String {
    let (name, value) = gateway.sign(route, signed).remove(0);
    let value = value.to_str().expect("ASCII");
    format!("POST /hooks/{route} HTTP/1.1\r\nHost: h\r\n{name}: {value}\r\n{framing}\r\n\r\n")
}

/// `parts` in chunked encoding, with the closing zero-length chunk when `finish`.
fn chunked(parts: &[&[u8]], finish: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        out.extend(format!("{:x}\r\n", part.len()).as_bytes());
        out.extend(*part);
        out.extend(b"\r\n");
    }
    if finish {
        out.extend(b"0\r\n\r\n");
    }
    out
}

#[tokio::test]
async fn an_announced_length_over_the_limit_is_refused_before_the_body_is_sent() {
    let (upstream, gateway) = setup().await;
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    // Only the head: if the gateway waited for the 10 MB it would never answer.
    let head = head(&gateway, "default", b"", "Content-Length: 10000000");
    stream.write_all(head.as_bytes()).await.expect("write the head");
    let reply = read_raw_reply(&mut stream).await;
    reply.assert_error(413, "too_large");
    upstream.assert_untouched();
}

#[tokio::test]
async fn a_chunked_body_is_refused_as_soon_as_it_passes_the_limit() {
    let (upstream, gateway) = setup().await;
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    let head = head(&gateway, "default", b"", "Transfer-Encoding: chunked");
    // 1001 bytes and no closing chunk: the answer can only come from counting.
    let body = chunked(&[&[b'a'; 600], &[b'b'; 401]], false);
    stream.write_all(&[head.as_bytes(), &body].concat()).await.expect("write");
    let reply = read_raw_reply(&mut stream).await;
    reply.assert_error(413, "too_large");
    upstream.assert_untouched();
}

#[tokio::test]
async fn a_body_exactly_at_the_limit_passes_and_one_byte_more_does_not() {
    let (upstream, gateway) = setup().await;
    let at_limit = vec![b'x'; 1000];
    let reply = send(gateway.signed_post("default", "/hooks/default", at_limit.clone())).await;
    assert_eq!(reply.status, StatusCode::OK);

    let head = head(&gateway, "default", &at_limit, "Transfer-Encoding: chunked");
    let request = [head.into_bytes(), chunked(&[&at_limit[..300], &at_limit[300..]], true)];
    let reply = raw_exchange(gateway.public, &request.concat()).await;
    assert_eq!(reply.status, 200, "chunked, exactly at the limit: {reply:?}");

    let received = upstream.received();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|r| r.body == at_limit));

    let over = vec![b'x'; 1001];
    send(gateway.signed_post("default", "/hooks/default", over))
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    assert_eq!(upstream.received().len(), 2, "nothing more was forwarded");
}

#[tokio::test]
async fn a_routes_own_limit_overrides_the_default() {
    let (upstream, gateway) = setup().await;
    let reply = send(gateway.signed_post("small", "/hooks/small", vec![b's'; 64])).await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = send(gateway.signed_post("small", "/hooks/small", vec![b's'; 65])).await;
    reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    let reply = send(gateway.signed_post("default", "/hooks/default", vec![b'd'; 65])).await;
    assert_eq!(reply.status, StatusCode::OK, "the other route keeps the default");

    let sizes: Vec<usize> = upstream.received().iter().map(|r| r.body.len()).collect();
    assert_eq!(sizes, [64, 65]);
}

#[tokio::test]
async fn expect_continue_over_the_limit_gets_413_instead_of_100() {
    let (upstream, gateway) = setup().await;
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    let head = head(&gateway, "default", b"", "Content-Length: 5000\r\nExpect: 100-continue");
    stream.write_all(head.as_bytes()).await.expect("write the head");
    let reply = read_raw_reply(&mut stream).await;
    reply.assert_error(413, "too_large"); // no 100 Continue first
    upstream.assert_untouched();
}

#[tokio::test]
async fn expect_continue_within_the_limit_gets_100_and_is_not_forwarded() {
    let (upstream, gateway) = setup().await;
    let body = vec![b'e'; 500];
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    let head = head(&gateway, "default", &body, "Content-Length: 500\r\nExpect: 100-continue");
    stream.write_all(head.as_bytes()).await.expect("write the head");
    let interim = read_raw_reply(&mut stream).await;
    assert_eq!(interim.status, 100, "the sender is told to go on");
    stream.write_all(&body).await.expect("write the body");
    let reply = read_raw_reply(&mut stream).await;
    assert_eq!(reply.status, 200);
    let received = upstream.only();
    assert_eq!(received.body, body);
    assert_eq!(received.header("expect"), None, "Expect is between the sender and us");
}
