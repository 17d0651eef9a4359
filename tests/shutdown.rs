//! Graceful shutdown: in-flight requests finish, new connections are refused, `/readyz` says
//! 503 while draining, and `serve()` returns within `shutdown_timeout` whatever hangs.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Answer, Gateway, PATIENCE, Upstream, send, within};
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn routes(shutdown_timeout: &str) -> String {
    format!(
        r#"
shutdown_timeout: {shutdown_timeout}
routes:
  - name: slow
    path: /hooks/slow
    upstream: "{{upstream}}"
    upstream_timeout: 3s
    verify: {{ scheme: freispace, secret: slow-secret }}
"#
    )
}

/// One kept-alive HTTP/1.1 connection to the admin listener, opened before shutdown.
async fn admin_connection(gateway: &Gateway) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(gateway.admin).await.expect("connect to admin");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(connection);
    sender
}

async fn readyz(sender: &mut SendRequest<Full<Bytes>>) -> StatusCode {
    within("the admin connection", sender.ready()).await.expect("the admin connection is open");
    let request = Request::get("/readyz").header("host", "admin").body(Full::default()).expect("request");
    within("/readyz", sender.send_request(request)).await.expect("an answer").status()
}

/// Polls until connecting to `addr` is refused.
async fn until_refused(addr: std::net::SocketAddr) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match TcpStream::connect(addr).await {
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionRefused => return,
            _ if Instant::now() > deadline => panic!("{addr} still accepts connections after shutdown"),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Polls `/readyz` on `admin` until it stops answering 200.
async fn until_not_ready(admin: &mut SendRequest<Full<Bytes>>) -> StatusCode {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match readyz(admin).await {
            StatusCode::OK if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(10)).await,
            status => return status,
        }
    }
}

#[tokio::test]
async fn an_in_flight_request_completes_while_new_connections_are_refused() {
    let upstream = Upstream::start().await;
    let mut gateway = Gateway::start_with(&routes("5s"), &upstream).await;
    let mut admin = admin_connection(&gateway).await;
    assert_eq!(readyz(&mut admin).await, StatusCode::OK);

    upstream.answer(Answer::Hold);
    let in_flight = tokio::spawn(send(gateway.signed_post("slow", "/hooks/slow", "{\"in\":\"flight\"}")));
    upstream.arrived(1).await;
    gateway.shutdown();

    assert_eq!(until_not_ready(&mut admin).await, StatusCode::SERVICE_UNAVAILABLE, "/readyz while draining");
    until_refused(gateway.public).await;

    upstream.release();
    let reply = within("the in-flight request", in_flight).await.expect("no panic");
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"released"[..]));
    assert_eq!(upstream.only().body, "{\"in\":\"flight\"}");
    gateway.stopped().await;
}

/// Probes (a kubelet's, a load balancer's) open a new connection each time; while the gateway
/// drains they must get 503, not silence.
#[tokio::test]
async fn readyz_answers_503_on_a_new_connection_while_draining() {
    let upstream = Upstream::start().await;
    let mut gateway = Gateway::start_with(&routes("5s"), &upstream).await;
    upstream.answer(Answer::Hold);
    let _in_flight = tokio::spawn(send(gateway.signed_post("slow", "/hooks/slow", "{}")));
    upstream.arrived(1).await;
    gateway.shutdown();
    until_refused(gateway.public).await;

    let probe = send(Request::get(format!("http://{}/readyz", gateway.admin)).body(Full::default()).expect("request"));
    let probe = tokio::time::timeout(Duration::from_secs(1), probe).await;
    upstream.release();
    let reply = probe.expect("a new admin connection gets no answer while the gateway drains");
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn serve_returns_within_the_shutdown_timeout_when_a_request_hangs() {
    let upstream = Upstream::start().await;
    let mut gateway = Gateway::start_with(&routes("300ms"), &upstream).await;
    upstream.answer(Answer::Hold);
    let _hanging = tokio::spawn(send(gateway.signed_post("slow", "/hooks/slow", "{}")));
    upstream.arrived(1).await;

    let started = Instant::now();
    gateway.shutdown();
    gateway.stopped().await;
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(300), "returned before the in-flight request or the timeout: {took:?}");
    assert!(took < Duration::from_millis(1500), "shutdown_timeout is 300ms: {took:?}");
}

/// A signed POST of `{}` to the slow route, as bytes for a raw socket.
fn raw_signed_post(gateway: &Gateway) -> Vec<u8> {
    let (name, value) = gateway.sign("slow", b"{}").remove(0);
    let signature = value.to_str().expect("ASCII");
    format!("POST /hooks/slow HTTP/1.1\r\nHost: h\r\n{name}: {signature}\r\nContent-Length: 2\r\n\r\n{{}}").into_bytes()
}

/// Once `serve()` has given up waiting, the connections it waited for are closed: the gateway
/// does not go on serving (and forwarding) after it has returned.
#[tokio::test]
async fn connections_still_open_when_serve_returns_are_closed() {
    let upstream = Upstream::start().await;
    let mut gateway = Gateway::start_with(&routes("300ms"), &upstream).await;
    upstream.answer(Answer::Hold);
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    stream.write_all(&raw_signed_post(&gateway)).await.expect("write");
    upstream.arrived(1).await;
    gateway.shutdown();
    gateway.stopped().await;

    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(1), stream.read_to_end(&mut rest)).await;
    if closed.is_err() {
        // Still served: the route's upstream_timeout (3s) gives a 504 from a stopped gateway.
        let mut late = [0u8; 256];
        let n = within("the late answer", stream.read(&mut late)).await.unwrap_or(0);
        let first_line = String::from_utf8_lossy(&late[..n]).lines().next().unwrap_or_default().to_owned();
        panic!("the connection is still open 1s after serve() returned; later it got {first_line:?}");
    }
}

/// A kept-alive connection that has gone quiet (its buffers released, waiting in a task of its
/// own) must not hold up the drain: it is closed at once, and `serve()` returns long before
/// `shutdown_timeout`.
#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_once_by_the_drain() {
    let upstream = Upstream::start().await;
    let mut gateway = Gateway::start_with(&routes("5s"), &upstream).await;
    let request = raw_signed_post(&gateway);
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    for pause in [0, 100] {
        // The second request comes after the connection released its buffers, and is served anew.
        tokio::time::sleep(Duration::from_millis(pause)).await;
        stream.write_all(&request).await.expect("write");
        let reply = common::read_raw_reply(&mut stream).await;
        assert_eq!(reply.status, 200, "request after {pause} ms of quiet: {reply:?}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    gateway.shutdown();
    gateway.stopped().await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the drain waited {:?} for an idle connection",
        started.elapsed()
    );
    let mut rest = Vec::new();
    within("the idle connection to close", stream.read_to_end(&mut rest)).await.expect("a clean close");
    assert_eq!(upstream.received().len(), 2);
}
