//! When the upstream refuses, resets or hangs: 502 or 504 with a generic body, within a bound,
//! and requests succeed again once the upstream is back.

mod common;

use std::time::{Duration, Instant};

use common::{Answer, Gateway, RawUpstream, Upstream, refusing_addr, send};
use http::StatusCode;

const ROUTE: &str = r#"
upstream_timeout: 30s
routes:
  - name: app
    path: /hooks/app
    upstream: "{upstream}"
    upstream_timeout: 300ms
    verify: { scheme: flow, secret: flow-secret }
"#;

#[tokio::test]
async fn a_refused_connection_is_502_until_the_upstream_comes_back() {
    let addr = refusing_addr().await;
    let gateway = Gateway::start(&ROUTE.replace("{upstream}", &format!("http://{addr}"))).await;
    let reply = send(gateway.signed_post("app", "/hooks/app", "{\"n\":1}")).await;
    reply.assert_error(StatusCode::BAD_GATEWAY, "upstream_error");

    let upstream = Upstream::start_on(addr).await;
    let reply = send(gateway.signed_post("app", "/hooks/app", "{\"n\":2}")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "upstream says hi");
    assert_eq!(upstream.only().body, "{\"n\":2}");
}

#[tokio::test]
async fn a_reset_connection_is_502_and_the_next_request_succeeds() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(ROUTE, &upstream).await;
    upstream.answer(Answer::Reset);
    let reply = send(gateway.signed_post("app", "/hooks/app", "{\"n\":1}")).await;
    reply.assert_error(StatusCode::BAD_GATEWAY, "upstream_error");
    assert_eq!(upstream.received().len(), 1, "the request reached the upstream before the reset");

    upstream.answer(Answer::ok("recovered"));
    let reply = send(gateway.signed_post("app", "/hooks/app", "{\"n\":2}")).await;
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"recovered"[..]));
    assert_eq!(upstream.received().len(), 2, "no retry of the reset request");
}

#[tokio::test]
async fn a_hanging_upstream_is_504_after_the_routes_timeout() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(ROUTE, &upstream).await;
    upstream.answer(Answer::Hold);
    let started = Instant::now();
    let reply = send(gateway.signed_post("app", "/hooks/app", "{\"n\":1}")).await;
    let waited = started.elapsed();
    reply.assert_error(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout");
    assert!(waited >= Duration::from_millis(300), "answered before the timeout: {waited:?}");
    assert!(waited < Duration::from_millis(1500), "the route's 300ms applies, not the global 30s: {waited:?}");

    upstream.release();
    upstream.answer(Answer::ok("recovered"));
    let reply = send(gateway.signed_post("app", "/hooks/app", "{\"n\":2}")).await;
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"recovered"[..]));
}

#[tokio::test]
async fn a_slow_upstream_within_the_timeout_is_waited_for() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(ROUTE, &upstream).await;
    upstream.answer(Answer::Reply {
        status: StatusCode::OK,
        headers: Vec::new(),
        body: "slow but fine".into(),
        delay: Duration::from_millis(50),
    });
    let reply = send(gateway.signed_post("app", "/hooks/app", "{}")).await;
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"slow but fine"[..]));
}

/// Keeps the harness honest: `Answer::Reset` is a TCP reset, not an orderly close.
#[tokio::test]
async fn the_harness_reset_is_a_tcp_reset() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = Upstream::start().await;
    upstream.answer(Answer::Reset);
    let mut stream = tokio::net::TcpStream::connect(upstream.addr).await.expect("connect");
    stream.write_all(b"POST / HTTP/1.1\r\nHost: u\r\nContent-Length: 0\r\n\r\n").await.expect("write");
    let mut buffer = [0u8; 64];
    let read = common::within("the reset", stream.read(&mut buffer)).await;
    assert_eq!(read.map_err(|e| e.kind()), Err(std::io::ErrorKind::ConnectionReset));
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let upstream = RawUpstream::start(false).await;
    let gateway = Gateway::start(&ROUTE.replace("{upstream}", &upstream.url)).await;
    for n in 0..5 {
        let reply = send(gateway.signed_post("app", "/hooks/app", format!("{{\"n\":{n}}}"))).await;
        assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"ok"[..]));
    }
    assert_eq!(upstream.connections(), 1, "one connection for five requests");
}

#[tokio::test]
async fn an_upstream_that_closes_idle_connections_costs_no_request() {
    let upstream = RawUpstream::start(true).await;
    let gateway = Gateway::start(&ROUTE.replace("{upstream}", &upstream.url)).await;
    for n in 0..5 {
        let reply = send(gateway.signed_post("app", "/hooks/app", format!("{{\"n\":{n}}}"))).await;
        assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"ok"[..]), "request {n}");
        // Time for the close to arrive: a request racing a close in flight is lost in any
        // HTTP/1.1 client (it may have been received), and answered 502.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(upstream.connections(), 5, "a new connection after each close");
}
