//! Overload and slow senders (issue 4, point 4): heads and bodies that never finish are cut off
//! within `limits.header_read_timeout` / `limits.body_read_timeout`, idle keep-alive connections
//! are closed, oversized heads are refused, and the global and per-route concurrency limits
//! answer 503 with `Retry-After` at once instead of queueing. Nothing slow or oversized ever
//! reaches the upstream.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Answer, Gateway, Upstream, read_raw_reply, send, within};
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The short timeouts every test here configures, so a cut-off shows in well under a second.
const TIMEOUT: Duration = Duration::from_millis(300);

/// How much later than its timeout the gateway may act before the test calls it a failure
/// (scheduling on a loaded CI machine, not a tolerance the gateway is allowed to use).
const SLACK: Duration = Duration::from_millis(1500);

const SLOW_SENDERS: &str = r#"
limits:
  header_read_timeout: 300ms
  body_read_timeout: 300ms
  max_header_bytes: 8192
  max_headers: 20
routes:
  - name: app
    path: /hooks/app
    upstream: "{upstream}"
    verify: { scheme: freispace, secret: app-secret }
"#;

async fn slow_senders() -> (Upstream, Gateway) {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(SLOW_SENDERS, &upstream).await;
    (upstream, gateway)
}

/// The signature header line a correct sender attaches to `body` for `route`.
fn signature_line(gateway: &Gateway, route: &str, body: &[u8]) -> String {
    let (name, value) = gateway.sign(route, body).remove(0);
    format!("{name}: {}\r\n", value.to_str().expect("ASCII"))
}

/// A complete signed request for `/hooks/app`, with `extra` header lines before the blank line.
fn signed_request(gateway: &Gateway, body: &[u8], extra: &str) -> Vec<u8> {
    let head = format!(
        "POST /hooks/app HTTP/1.1\r\nHost: h\r\n{}Content-Length: {}\r\n{extra}\r\n",
        signature_line(gateway, "app", body),
        body.len()
    );
    [head.as_bytes(), body].concat()
}

/// Reads until the gateway closes the connection (end of stream or reset) and returns what
/// arrived before. Fails the test if the connection is still open after `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Vec<u8> {
    let reading = async {
        let mut received = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return received,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(limit, reading)
        .await
        .unwrap_or_else(|_| panic!("the gateway kept the connection open for more than {limit:?}"))
}

/// The status code of the first response in `bytes`, if any arrived.
fn first_status(bytes: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(bytes);
    let status_line = text.lines().next().filter(|line| !line.is_empty())?;
    let status = status_line.strip_prefix("HTTP/1.1 ").unwrap_or_else(|| panic!("a status line, got {status_line:?}"));
    Some(status[..3].parse().expect("a status code"))
}

/// Asserts that `elapsed` lies in `[at_least, at_least + SLACK)`.
/// A head over a limit is answered 431, or the connection is closed before the answer.
fn assert_431_or_closed(answer: &[u8]) {
    assert!(matches!(first_status(answer), None | Some(431)), "431 or a close: {:?}", String::from_utf8_lossy(answer));
}

fn assert_cut_off_in_time(what: &str, elapsed: Duration, at_least: Duration) {
    assert!(elapsed >= at_least, "{what} was cut off after {elapsed:?}, before its {at_least:?} timeout");
    assert!(elapsed < at_least + SLACK, "{what} was cut off only after {elapsed:?} (timeout {at_least:?})");
}

// ----------------------------------------------------------------------------------------------
// Slow heads, slow bodies, idle connections

#[tokio::test]
async fn a_head_that_stalls_is_cut_off_after_the_header_read_timeout() {
    let (upstream, gateway) = slow_senders().await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    // Half a head: the request line and a header, then nothing.
    stream.write_all(b"POST /hooks/app HTTP/1.1\r\nHost: h\r\nx-freispace-signature: ab").await.expect("write");
    let answer = read_until_closed(&mut stream, TIMEOUT + SLACK).await;
    assert_cut_off_in_time("a stalled head", started.elapsed(), TIMEOUT);
    // hyper closes without an answer; a 408 would do as well. Never a forwarded answer.
    assert!(matches!(first_status(&answer), None | Some(408)), "{:?}", String::from_utf8_lossy(&answer));
    upstream.assert_untouched();
}

#[tokio::test]
async fn a_head_sent_one_byte_at_a_time_is_cut_off_at_the_same_deadline() {
    let (upstream, gateway) = slow_senders().await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    let head = b"POST /hooks/app HTTP/1.1\r\nHost: h\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    // A byte every 50ms keeps the connection busy but never finishes the head in time: the
    // timeout bounds the whole head, it is not an idle timer that each byte restarts.
    let mut closed_at = None;
    for byte in head {
        if stream.write_all(&[*byte]).await.is_err() {
            closed_at = Some(started.elapsed());
            break;
        }
        let mut probe = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut probe)).await {
            Err(_) => continue, // still open, nothing to read
            Ok(Ok(n)) if n > 0 => panic!("the gateway answered a head it never got"),
            Ok(_) => {
                closed_at = Some(started.elapsed());
                break;
            }
        }
    }
    let closed_at = closed_at.expect("the gateway kept reading a head that took longer than its timeout");
    assert_cut_off_in_time("a dripping head", closed_at, TIMEOUT);
    upstream.assert_untouched();
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_read_timeout() {
    let (upstream, gateway) = slow_senders().await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    // Not one byte: the cheapest slowloris of all, one file descriptor per connection.
    let answer = read_until_closed(&mut stream, TIMEOUT + SLACK).await;
    assert_cut_off_in_time("a silent connection", started.elapsed(), TIMEOUT);
    assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    upstream.assert_untouched();
}

#[tokio::test]
async fn a_stalled_http2_preface_is_closed_after_the_header_read_timeout() {
    let (upstream, gateway) = slow_senders().await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    // The first 16 of the 24 bytes of the HTTP/2 preface: the server cannot tell HTTP/1 from
    // HTTP/2 yet, and must not wait for the rest forever.
    stream.write_all(b"PRI * HTTP/2.0\r\n").await.expect("write");
    read_until_closed(&mut stream, TIMEOUT + SLACK).await;
    assert_cut_off_in_time("a stalled preface", started.elapsed(), TIMEOUT);
    upstream.assert_untouched();
}

#[tokio::test]
async fn a_body_that_stalls_gets_408_after_the_body_read_timeout() {
    let (upstream, gateway) = slow_senders().await;
    let body = vec![b'b'; 1000];
    let request = signed_request(&gateway, &body, "");
    let head_len = request.len() - body.len();
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    // The head, and 10 of the 1000 bytes it announces.
    stream.write_all(&request[..head_len + 10]).await.expect("write");
    let started = Instant::now();
    let reply = read_raw_reply(&mut stream).await;
    assert_cut_off_in_time("a stalled body", started.elapsed(), TIMEOUT);
    reply.assert_error(408, "request_timeout");
    // The unread rest of the body makes the connection useless: it is closed, not kept alive.
    read_until_closed(&mut stream, SLACK).await;
    upstream.assert_untouched();
    let scrape = gateway.metrics().await;
    assert_eq!(scrape.value("hookgate_requests_total", &[("route", "app"), ("outcome", "request_timeout")]), 1.0);
    assert_eq!(scrape.value("hookgate_requests_total", &[("route", "app"), ("outcome", "forwarded")]), 0.0);
}

#[tokio::test]
async fn a_body_sent_one_byte_at_a_time_gets_408_at_the_same_deadline() {
    let (upstream, gateway) = slow_senders().await;
    let body = vec![b'd'; 100];
    let request = signed_request(&gateway, &body, "");
    let head_len = request.len() - body.len();
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    stream.write_all(&request[..head_len]).await.expect("write the head");
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    // A byte every 50ms: each arrives well within the timeout, the whole body never does.
    let dripping = tokio::spawn(async move {
        for byte in body {
            if writer.write_all(&[byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = within("the 408", reader.read(&mut chunk)).await.expect("reading");
        assert!(n > 0, "closed without an answer");
        answer.extend_from_slice(&chunk[..n]);
    }
    assert_cut_off_in_time("a dripping body", started.elapsed(), TIMEOUT);
    assert_eq!(first_status(&answer), Some(408), "{:?}", String::from_utf8_lossy(&answer));
    dripping.abort();
    upstream.assert_untouched();
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_read_timeout() {
    let (upstream, gateway) = slow_senders().await;
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    // Two requests on one connection, each after 100ms of quiet: the timer is per head, so a
    // connection in use is never cut, however long it lives.
    for n in 0..2 {
        if n > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let body = format!("{{\"n\":{n}}}");
        stream.write_all(&signed_request(&gateway, body.as_bytes(), "")).await.expect("write");
        let reply = read_raw_reply(&mut stream).await;
        assert_eq!(reply.status, 200, "request {n} on the kept-alive connection: {reply:?}");
    }
    let idle_since = Instant::now();
    let after = read_until_closed(&mut stream, TIMEOUT + SLACK).await;
    assert!(after.is_empty(), "nothing more is sent on an idle connection: {after:?}");
    assert_cut_off_in_time("an idle keep-alive connection", idle_since.elapsed(), TIMEOUT);
    assert_eq!(upstream.received().len(), 2);
}

#[tokio::test]
async fn an_answer_slower_than_the_header_read_timeout_is_delivered_and_the_connection_kept() {
    let (upstream, gateway) = slow_senders().await;
    // The head timer counts from the end of the previous answer, never while one is awaited.
    upstream.answer(Answer::Reply {
        status: StatusCode::OK,
        headers: Vec::new(),
        body: "slow".into(),
        delay: TIMEOUT * 2,
    });
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    for n in 0..2 {
        let body = format!("{{\"n\":{n}}}");
        stream.write_all(&signed_request(&gateway, body.as_bytes(), "")).await.expect("write");
        let reply = read_raw_reply(&mut stream).await;
        assert_eq!((reply.status, &reply.body[..]), (200, &b"slow"[..]), "request {n}: {reply:?}");
    }
    assert_eq!(upstream.received().len(), 2);
}

/// An idle keep-alive connection gives hyper's buffers back after a short quiet (20 ms); what
/// arrives next must be served exactly as if it had not.
async fn answered_then_idle(gateway: &Gateway) -> TcpStream {
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    stream.write_all(&signed_request(gateway, b"{\"n\":0}", "")).await.expect("write");
    assert_eq!(read_raw_reply(&mut stream).await.status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream
}

#[tokio::test]
async fn requests_pipelined_after_an_idle_pause_are_all_answered_in_order() {
    let (upstream, gateway) = slow_senders().await;
    let mut stream = answered_then_idle(&gateway).await;
    let pipelined = [signed_request(&gateway, b"{\"n\":1}", ""), signed_request(&gateway, b"{\"n\":2}", "")].concat();
    stream.write_all(&pipelined).await.expect("write");
    for n in 1..=2 {
        assert_eq!(read_raw_reply(&mut stream).await.status, 200, "request {n}");
    }
    let bodies: Vec<_> = upstream.received().iter().map(|r| r.body.clone()).collect();
    assert_eq!(bodies, [&b"{\"n\":0}"[..], b"{\"n\":1}", b"{\"n\":2}"]);
}

#[tokio::test]
async fn a_head_split_by_a_pause_is_read_whole() {
    let (upstream, gateway) = slow_senders().await;
    let mut stream = answered_then_idle(&gateway).await;
    let request = signed_request(&gateway, b"{\"n\":1}", "");
    let (first, rest) = request.split_at(request.len() / 2);
    stream.write_all(first).await.expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(rest).await.expect("write");
    assert_eq!(read_raw_reply(&mut stream).await.status, 200);
    assert_eq!(upstream.received().len(), 2);
    assert_eq!(upstream.received()[1].body, &b"{\"n\":1}"[..]);
}

#[tokio::test]
async fn a_head_trickled_after_an_idle_pause_is_still_cut_off_in_time() {
    let (upstream, gateway) = slow_senders().await;
    let mut stream = answered_then_idle(&gateway).await;
    let request = signed_request(&gateway, b"{\"n\":1}", "");
    let started = Instant::now();
    let trickle = async {
        for byte in &request {
            if stream.write_all(std::slice::from_ref(byte)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    };
    within("the trickle", trickle).await;
    let after = read_until_closed(&mut stream, SLACK).await;
    assert!(!after.starts_with(b"HTTP/1.1 200"), "a trickled head must not be served: {after:?}");
    // Cut off at the header timeout of the new head, not after the whole trickle.
    assert!(started.elapsed() < TIMEOUT + SLACK, "cut off after {:?}", started.elapsed());
    assert_eq!(upstream.received().len(), 1);
}

// ----------------------------------------------------------------------------------------------
// Oversized heads

#[tokio::test]
async fn a_head_larger_than_max_header_bytes_is_refused_and_not_forwarded() {
    let (upstream, gateway) = slow_senders().await;
    let body = b"{\"big\":true}";
    // 4 KiB of padding fits the 8 KiB limit; 10 KiB does not.
    let fits = signed_request(&gateway, body, &format!("x-padding: {}\r\n", "p".repeat(4096)));
    let reply = common::raw_exchange(gateway.public, &fits).await;
    assert_eq!(reply.status, 200, "a head under the limit passes: {reply:?}");

    let too_big = signed_request(&gateway, body, &format!("x-padding: {}\r\n", "p".repeat(10 * 1024)));
    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    // The gateway may stop reading (and close) before it has taken all of it.
    let _ = stream.write_all(&too_big).await;
    assert_431_or_closed(&read_until_closed(&mut stream, SLACK).await);
    assert_eq!(upstream.received().len(), 1, "only the head under the limit was forwarded");
}

#[tokio::test]
async fn a_head_with_more_than_max_headers_lines_is_refused_and_not_forwarded() {
    let (upstream, gateway) = slow_senders().await;
    let body = b"{\"many\":true}";
    let lines = |n: usize| (0..n).map(|i| format!("x-h{i}: {i}\r\n")).collect::<String>();
    // Host, the signature and Content-Length are 3 of the 20 allowed lines.
    let reply = common::raw_exchange(gateway.public, &signed_request(&gateway, body, &lines(17))).await;
    assert_eq!(reply.status, 200, "20 header lines pass: {reply:?}");

    let mut stream = TcpStream::connect(gateway.public).await.expect("connect");
    stream.write_all(&signed_request(&gateway, body, &lines(18))).await.expect("write");
    assert_431_or_closed(&read_until_closed(&mut stream, SLACK).await);
    assert_eq!(upstream.received().len(), 1, "only the head within the limit was forwarded");
}

#[tokio::test]
async fn an_http2_header_list_larger_than_max_header_bytes_is_refused() {
    let (upstream, gateway) = slow_senders().await;
    let client = Client::builder(TokioExecutor::new()).http2_only(true).build_http::<Full<Bytes>>();
    let mut request = gateway.signed_post("app", "/hooks/app", "{\"h2\":true}");
    request.headers_mut().insert("x-padding", "p".repeat(10 * 1024).parse().expect("a header value"));
    match within("the h2 answer", client.request(request)).await {
        // h2 answers 431 for a header list over SETTINGS_MAX_HEADER_LIST_SIZE, or resets the stream.
        Ok(response) => {
            assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            let _ = within("the body", response.into_body().collect()).await;
        }
        Err(error) => assert!(!error.is_connect(), "the connection itself worked: {error:?}"),
    }
    upstream.assert_untouched();
}

// ----------------------------------------------------------------------------------------------
// Concurrency limits

const TWO_AT_A_TIME: &str = r#"
limits:
  max_concurrent_requests: 2
routes:
  - name: app
    path: /hooks/app
    upstream: "{upstream}"
    verify: { scheme: freispace, secret: app-secret }
"#;

#[tokio::test]
async fn past_max_concurrent_requests_the_gateway_answers_503_at_once_and_recovers() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(TWO_AT_A_TIME, &upstream).await;
    upstream.answer(Answer::Hold);

    let held: Vec<_> = (0..2)
        .map(|n| tokio::spawn(send(gateway.signed_post("app", "/hooks/app", format!("{{\"held\":{n}}}")))))
        .collect();
    upstream.arrived(2).await;

    // The upstream holds both until released, so a queued third request could never be
    // answered: getting an answer at all shows it was not queued.
    let started = Instant::now();
    let refused = send(gateway.signed_post("app", "/hooks/app", "{\"third\":true}")).await;
    let waited = started.elapsed();
    refused.assert_error(StatusCode::SERVICE_UNAVAILABLE, "overloaded");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(waited < Duration::from_secs(1), "answered at once, not queued: {waited:?}");
    assert_eq!(upstream.received().len(), 2, "the refused request never reached the upstream");
    // A path no route claims takes no slot and is still answered.
    let unrouted = send(common::post(gateway.url("/nowhere"), "{}")).await;
    unrouted.assert_error(StatusCode::NOT_FOUND, "no_route");

    let scrape = gateway.metrics().await;
    assert_eq!(scrape.value("hookgate_requests_total", &[("route", "app"), ("outcome", "overloaded")]), 1.0);
    assert_eq!(scrape.value("hookgate_inflight_requests", &[]), 2.0);

    upstream.release();
    for task in held {
        let reply = within("a held request", task).await.expect("the client task");
        assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"released"[..]));
    }
    // Both slots are free again.
    for n in 0..2 {
        let reply = send(gateway.signed_post("app", "/hooks/app", format!("{{\"after\":{n}}}"))).await;
        assert_eq!(reply.status, StatusCode::OK, "after the burst: {reply:?}");
    }
    let scrape = gateway.metrics().await;
    assert_eq!(scrape.value("hookgate_requests_total", &[("route", "app"), ("outcome", "forwarded")]), 4.0);
    assert_eq!(scrape.value("hookgate_requests_total", &[("route", "app"), ("outcome", "overloaded")]), 1.0);
    assert_eq!(upstream.received().len(), 4);
}

const ONE_AT_THE_UPSTREAM: &str = r#"
routes:
  - name: limited
    path: /hooks/limited
    upstream: "{upstream}"
    max_upstream_concurrency: 1
    verify: { scheme: freispace, secret: limited-secret }
  - name: other
    path: /hooks/other
    upstream: "{other}"
    verify: { scheme: freispace, secret: other-secret }
"#;

#[tokio::test]
async fn past_a_routes_max_upstream_concurrency_it_answers_503_and_other_routes_pass() {
    let (limited_upstream, other_upstream) = (Upstream::start().await, Upstream::start().await);
    let yaml = ONE_AT_THE_UPSTREAM.replace("{other}", &other_upstream.url());
    let gateway = Gateway::start_with(&yaml, &limited_upstream).await;
    limited_upstream.answer(Answer::Hold);

    let held = tokio::spawn(send(gateway.signed_post("limited", "/hooks/limited", "{\"held\":1}")));
    limited_upstream.arrived(1).await;

    let started = Instant::now();
    let refused = send(gateway.signed_post("limited", "/hooks/limited", "{\"second\":1}")).await;
    refused.assert_error(StatusCode::SERVICE_UNAVAILABLE, "overloaded");
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(started.elapsed() < Duration::from_secs(1), "answered at once, not queued");
    // Verification still comes first: a forgery is refused as a forgery, not as overload.
    let forged = common::with_headers(
        common::post(gateway.url("/hooks/limited"), "{\"forged\":1}"),
        gateway.sign("limited", b"{\"other body\":1}"),
    );
    send(forged).await.assert_error(StatusCode::FORBIDDEN, "invalid_signature");
    // Another route is not held back by this one's limit.
    let other = send(gateway.signed_post("other", "/hooks/other", "{\"other\":1}")).await;
    assert_eq!(other.status, StatusCode::OK, "{other:?}");
    assert_eq!(other_upstream.only().body, "{\"other\":1}");
    assert_eq!(limited_upstream.received().len(), 1);

    let scrape = gateway.metrics().await;
    let count = |route, outcome| scrape.value("hookgate_requests_total", &[("route", route), ("outcome", outcome)]);
    assert_eq!(count("limited", "overloaded"), 1.0);
    assert_eq!(count("other", "overloaded"), 0.0);
    assert_eq!(count("other", "forwarded"), 1.0);

    limited_upstream.release();
    let reply = within("the held request", held).await.expect("the client task");
    assert_eq!(reply.status, StatusCode::OK);
    let reply = send(gateway.signed_post("limited", "/hooks/limited", "{\"after\":1}")).await;
    assert_eq!(reply.status, StatusCode::OK, "the slot is free again: {reply:?}");
    let bodies: Vec<Bytes> = limited_upstream.received().into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, [Bytes::from("{\"held\":1}"), Bytes::from("{\"after\":1}")]);
}

// ----------------------------------------------------------------------------------------------
// Bursts of connections

/// How many connections a burst may open before the gateway accepts the first of them: the
/// 1,000 concurrent senders of issue 4 must each get an answer (200 or 503 + `Retry-After`).
const BURST: usize = 1000;

// The default single-threaded test runtime is the point: while this test runs synchronous
// code, the gateway's accept loop (a task on the same runtime) cannot run, so every connection
// below waits in the kernel's accept queue, exactly as in a burst that outpaces the accept loop.
#[tokio::test]
async fn a_burst_of_senders_fits_in_the_listen_backlog() {
    let (upstream, gateway) = slow_senders().await;
    let mut queued = Vec::with_capacity(BURST);
    while queued.len() < BURST {
        // Once the accept queue is full the kernel drops the SYN: the connect times out (and a
        // real sender is left retrying with backoff, or is reset when its SYN cookie fails,
        // instead of being answered 503 + Retry-After).
        match std::net::TcpStream::connect_timeout(&gateway.public, Duration::from_millis(300)) {
            Ok(stream) => queued.push(stream),
            Err(_) => break,
        }
    }
    let fitted = queued.len();
    drop(queued);
    assert!(
        fitted >= BURST,
        "the listen backlog held only {fitted} connections of a burst of {BURST}: the public listener is bound \
         with the default backlog (128 for tokio/mio's TcpListener::bind)"
    );
    upstream.assert_untouched();
}
