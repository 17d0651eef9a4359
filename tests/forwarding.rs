//! What a verified request looks like when it reaches the upstream, and what the sender gets
//! back: the body byte for byte, method, path and query, end-to-end headers, no hop-by-hop
//! headers, and `X-Forwarded-*` that the sender cannot forge.

mod common;

use bytes::Bytes;
use common::{Answer, Gateway, Upstream, post, pseudo_random_bytes, raw_exchange, send, vector, with_headers};
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use tokio::io::AsyncWriteExt;

const ROUTES: &str = r#"
routes:
  - name: freispace
    path_prefix: /hooks/freispace
    methods: [POST, PUT]
    upstream: "{upstream}"
    verify: { scheme: freispace, secret: freispace-secret }
  - name: barker
    path: /hooks/barker
    upstream: "{upstream}"
    verify: { scheme: barker, secret: barker-secret }
"#;

async fn setup(extra: &str) -> (Upstream, Gateway) {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(&format!("{extra}{ROUTES}"), &upstream).await;
    (upstream, gateway)
}

/// Sends `body`, signed, to the freispace route and returns what the upstream received.
async fn forward_body(body: Vec<u8>) -> common::Received {
    let (upstream, gateway) = setup("").await;
    let request = gateway.signed_post("freispace", "/hooks/freispace", body.clone());
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "upstream says hi");
    let received = upstream.only();
    assert_eq!(received.body.len(), body.len());
    assert!(received.body == body, "the upstream got different bytes");
    received
}

#[tokio::test]
async fn every_byte_value_arrives_unchanged() {
    let mut body: Vec<u8> = (0..=255u8).collect();
    body.extend((0..=255u8).rev());
    body.extend(b"\r\n\r\n\0\xff");
    let received = forward_body(body).await;
    assert_eq!(received.header("content-length"), Some("518"));
}

#[tokio::test]
async fn a_200_kib_random_body_arrives_unchanged() {
    forward_body(pseudo_random_bytes(200 * 1024, 0x5eed)).await;
}

/// A body that reaches the gateway in many pieces of every size, tiny chunks and large ones,
/// in one write and across pauses, is verified and forwarded as one body, byte for byte.
#[tokio::test]
async fn a_body_read_in_pieces_of_every_size_arrives_unchanged() {
    let (upstream, gateway) = setup("").await;
    let body = pseudo_random_bytes(300 * 1024, 0xc0ffee);
    let signature = gateway.sign("freispace", &body);
    let (name, value) = (&signature[0].0, signature[0].1.to_str().expect("ASCII"));
    // Pieces of 1 B to 70 KB, repeated until the body is cut up.
    let mut sizes = [1, 7, 100, 40_000, 1, 3, 70_000, 20_000, 2, 65_536, 1].into_iter().cycle();
    let mut pieces = Vec::new();
    let mut rest = &body[..];
    while let Some(size) = sizes.next().filter(|_| !rest.is_empty()) {
        let (piece, after) = rest.split_at(size.min(rest.len()));
        pieces.push(piece);
        rest = after;
    }

    // Chunked: hyper hands each chunk over as a frame of its own.
    let mut request =
        format!("POST /hooks/freispace HTTP/1.1\r\nHost: h\r\n{name}: {value}\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    for piece in &pieces {
        request.extend(format!("{:x}\r\n", piece.len()).as_bytes());
        request.extend(*piece);
        request.extend(b"\r\n");
    }
    request.extend(b"0\r\n\r\n");
    let reply = raw_exchange(gateway.public, &request).await;
    assert_eq!(reply.status, 200, "{reply:?}");

    // Content-Length, written in pieces with pauses: each read is a frame.
    let mut stream = tokio::net::TcpStream::connect(gateway.public).await.expect("connecting");
    let head = format!(
        "POST /hooks/freispace HTTP/1.1\r\nHost: h\r\n{name}: {value}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("writing the head");
    for piece in &pieces {
        stream.write_all(piece).await.expect("writing the body");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(common::read_raw_reply(&mut stream).await.status, 200);

    let received = upstream.received();
    assert_eq!(received.len(), 2);
    for received in received {
        assert!(received.body == body, "the upstream got different bytes");
        assert_eq!(received.header("content-length"), Some(body.len().to_string().as_str()));
    }
}

#[tokio::test]
async fn an_empty_body_arrives_empty() {
    let received = forward_body(Vec::new()).await;
    assert_eq!(received.header("content-length"), Some("0"));
}

#[tokio::test]
async fn json_body_method_path_and_query_are_kept() {
    let (upstream, gateway) = setup("").await;
    let body = Bytes::from_static(br#"{"event":"invoice.paid","amount":1999,"note":"caf\u00e9 \u2615"}"#);
    let target = "/hooks/freispace/orders/7?page=2&q=a%20b&flag&empty=";
    let mut request = gateway.signed_post("freispace", target, body.clone());
    *request.method_mut() = Method::PUT;
    request.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    assert_eq!(send(request).await.status, StatusCode::OK);

    let received = upstream.only();
    assert_eq!(received.method, Method::PUT);
    assert_eq!(received.target, target);
    assert_eq!(received.body, body);
    assert_eq!(received.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn signature_and_end_to_end_headers_arrive() {
    let (upstream, gateway) = setup("").await;
    let body = b"{\"id\":1}";
    let signature = gateway.sign("freispace", body);
    let request = with_headers(post(gateway.url("/hooks/freispace"), &body[..]), signature.clone());
    let request = with_headers(
        request,
        [
            ("x-request-id", "req-42"),
            ("user-agent", "sender/1.0"),
            ("accept", "*/*"),
            ("x-multi", "first"),
            ("x-multi", "second"),
            ("authorization", "Bearer app-token"),
        ]
        .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v))),
    );
    assert_eq!(send(request).await.status, StatusCode::OK);

    let received = upstream.only();
    let (name, value) = &signature[0];
    assert_eq!(received.headers.get(name), Some(value), "the signature header is forwarded");
    assert_eq!(received.header("x-request-id"), Some("req-42"));
    assert_eq!(received.header("user-agent"), Some("sender/1.0"));
    assert_eq!(received.header("accept"), Some("*/*"));
    assert_eq!(received.header("authorization"), Some("Bearer app-token"));
    let multi: Vec<_> = received.headers.get_all("x-multi").iter().collect();
    assert_eq!(multi, ["first", "second"], "repeated headers keep their order");
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed() {
    let (upstream, gateway) = setup("").await;
    let body = b"{\"hop\":true}";
    let (name, value) = gateway.sign("freispace", body).remove(0);
    let head = format!(
        "POST /hooks/freispace HTTP/1.1\r\n\
         Host: hooks.example.test\r\n\
         Connection: keep-alive, X-Hop-Named\r\n\
         Keep-Alive: timeout=5\r\n\
         TE: trailers\r\n\
         Upgrade: h2c\r\n\
         Proxy-Connection: keep-alive\r\n\
         X-Hop-Named: private to this connection\r\n\
         X-End-To-End: kept\r\n\
         {name}: {value}\r\n\
         Content-Length: {len}\r\n\r\n",
        value = value.to_str().expect("ASCII"),
        len = body.len(),
    );
    let reply = raw_exchange(gateway.public, &[head.as_bytes(), body].concat()).await;
    assert_eq!(reply.status, 200, "{reply:?}");

    let received = upstream.only();
    for hop in ["connection", "keep-alive", "te", "upgrade", "proxy-connection", "x-hop-named", "transfer-encoding"] {
        assert_eq!(received.header(hop), None, "{hop} must not be forwarded");
    }
    assert_eq!(received.header("x-end-to-end"), Some("kept"));
    assert_eq!(received.header(name.as_str()), value.to_str().ok());
    assert_eq!(&received.body[..], body);
}

#[tokio::test]
async fn forwarded_headers_describe_what_the_gateway_saw() {
    let (upstream, gateway) = setup("").await;
    let mut request = gateway.signed_post("freispace", "/hooks/freispace", "{}");
    request.headers_mut().insert("host", HeaderValue::from_static("hooks.example.test:8443"));
    assert_eq!(send(request).await.status, StatusCode::OK);

    let received = upstream.only();
    assert_eq!(received.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(received.header("x-forwarded-proto"), Some("http"));
    assert_eq!(received.header("x-forwarded-host"), Some("hooks.example.test:8443"));
    assert_eq!(received.header("host"), Some(upstream.addr.to_string().as_str()), "Host names the upstream");
}

fn forged(request: Request<Full<Bytes>>) -> Request<Full<Bytes>> {
    with_headers(
        request,
        [
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "bank.example"),
            ("x-hookgate-unauthenticated", "freshbooks-callback-verify"),
            ("x-hookgate-verified", "yes"),
        ]
        .map(|(n, v)| (HeaderName::from_static(n), HeaderValue::from_static(v))),
    )
}

#[tokio::test]
async fn a_senders_forwarded_headers_are_replaced_by_default() {
    let (upstream, gateway) = setup("").await;
    let request = forged(gateway.signed_post("freispace", "/hooks/freispace", "{}"));
    assert_eq!(send(request).await.status, StatusCode::OK);

    let received = upstream.only();
    assert_eq!(received.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(received.header("x-forwarded-proto"), Some("http"));
    assert_eq!(received.header("x-forwarded-host"), Some(gateway.public.to_string().as_str()));
    assert_eq!(received.header("x-hookgate-unauthenticated"), None, "a sender cannot set our headers");
    assert_eq!(received.header("x-hookgate-verified"), None);
}

#[tokio::test]
async fn a_trusted_senders_forwarded_headers_are_kept_and_appended_to() {
    let (upstream, gateway) = setup("trust_forwarded_headers: true\n").await;
    let request = forged(gateway.signed_post("freispace", "/hooks/freispace", "{}"));
    assert_eq!(send(request).await.status, StatusCode::OK);

    let received = upstream.only();
    assert_eq!(received.header("x-forwarded-for"), Some("203.0.113.9, 127.0.0.1"));
    assert_eq!(received.header("x-forwarded-proto"), Some("https"));
    assert_eq!(received.header("x-forwarded-host"), Some("bank.example"));
    assert_eq!(received.header("x-hookgate-unauthenticated"), None, "trust covers X-Forwarded-* only");
}

/// A chain may arrive as several header lines (RFC 9110 5.3: they are one comma-separated
/// list); a trusted chain must keep every hop.
#[tokio::test]
async fn a_trusted_chain_on_several_lines_keeps_every_hop() {
    let (upstream, gateway) = setup("trust_forwarded_headers: true\n").await;
    let request = with_headers(
        gateway.signed_post("freispace", "/hooks/freispace", "{}"),
        ["203.0.113.9", "198.51.100.7"]
            .map(|hop| (HeaderName::from_static("x-forwarded-for"), HeaderValue::from_static(hop))),
    );
    assert_eq!(send(request).await.status, StatusCode::OK);

    let received = upstream.only();
    assert_eq!(received.header("x-forwarded-for"), Some("203.0.113.9, 198.51.100.7, 127.0.0.1"));
}

#[tokio::test]
async fn the_upstreams_status_headers_and_body_are_relayed() {
    let (upstream, gateway) = setup("").await;
    upstream.answer(Answer::Reply {
        status: StatusCode::ACCEPTED,
        headers: vec![
            ("content-type", "text/plain; charset=utf-8"),
            ("x-upstream", "yes"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
            ("connection", "x-upstream-hop"),
            ("x-upstream-hop", "private"),
            ("keep-alive", "timeout=9"),
        ],
        body: Bytes::from_static(b"queued \xe2\x9c\x93\n\0"),
        delay: std::time::Duration::ZERO,
    });
    let reply = send(gateway.signed_post("freispace", "/hooks/freispace", "{}")).await;

    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert_eq!(reply.body, &b"queued \xe2\x9c\x93\n\0"[..]);
    assert_eq!(reply.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(reply.header("x-upstream"), Some("yes"));
    let cookies: Vec<_> = reply.headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert_eq!(reply.header("x-upstream-hop"), None, "hop-by-hop on the way back too");
    assert_eq!(reply.header("keep-alive"), None);
}

#[tokio::test]
async fn barkers_underscore_headers_are_accepted_and_forwarded() {
    let (upstream, gateway) = setup("").await;
    let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    let signed = gateway.sign("barker", body);
    let value = |name: &str| {
        let (_, value) = signed.iter().find(|(n, _)| n == name).expect("signed header");
        value.to_str().expect("ASCII").to_owned()
    };
    let (signature, timestamp) = (value("barker_signature"), value("barker_timestamp"));
    // As barker's Python sender writes them: upper case, with underscores.
    let head = format!(
        "POST /hooks/barker HTTP/1.1\r\nHost: h\r\nBARKER_SIGNATURE: {signature}\r\n\
         BARKER_TIMESTAMP: {timestamp}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let reply = raw_exchange(gateway.public, &[head.as_bytes(), body].concat()).await;
    assert_eq!(reply.status, 200, "{reply:?}");

    let received = upstream.only();
    assert_eq!(received.header("barker_signature"), Some(signature.as_str()));
    assert_eq!(received.header("barker_timestamp"), Some(timestamp.as_str()));
    assert_eq!(&received.body[..], body);
}

#[tokio::test]
async fn a_freshbooks_form_from_the_vectors_is_forwarded_byte_for_byte() {
    let case = vector("freshbooks.json", "unicode_values_escaped_as_u_sequences_ok");
    let secret = case["secret"].as_str().expect("secret");
    let upstream = Upstream::start().await;
    let yaml = format!(
        "routes:\n  - name: fb\n    path: /hooks/freshbooks\n    upstream: \"{{upstream}}\"\n    \
         verify: {{ scheme: freshbooks, secret: \"{secret}\" }}\n"
    );
    let gateway = Gateway::start_with(&yaml, &upstream).await;
    let body = case["body"].as_str().expect("body").to_owned();
    let headers = case["headers"].as_object().expect("headers").iter().map(|(name, value)| {
        let value = value.as_str().expect("a string");
        (HeaderName::from_bytes(name.as_bytes()).expect("name"), HeaderValue::from_str(value).expect("value"))
    });
    let reply = send(with_headers(post(gateway.url("/hooks/freshbooks"), body.clone()), headers)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);

    let received = upstream.only();
    assert_eq!(received.body, body.as_bytes());
    assert_eq!(received.header("content-type"), Some("application/x-www-form-urlencoded"));
    assert_eq!(received.header("x-freshbooks-hmac-sha256"), case["headers"]["X-FreshBooks-Hmac-SHA256"].as_str());
}

/// The head the upstream sees for a signed request whose header names are in mixed case.
async fn upstream_head(extra: &str) -> String {
    upstream_head_with(extra, "Content-Length: 2\r\n").await
}

/// [`upstream_head`] with the request's `Content-Length` lines written as `length_lines`.
async fn upstream_head_with(extra: &str, length_lines: &str) -> String {
    let upstream = common::RawUpstream::start(false).await;
    let gateway = Gateway::start(&format!("{extra}{}", ROUTES.replace("{upstream}", &upstream.url))).await;
    let body = b"{}";
    let signature = gateway.sign("freispace", body);
    let (name, value) = &signature[0];
    let request = format!(
        "POST /hooks/freispace HTTP/1.1\r\nHost: h\r\nX-Custom-Case: 1\r\n{name}: {}\r\n{length_lines}\r\n",
        value.to_str().expect("ASCII")
    );
    let reply = raw_exchange(gateway.public, &[request.as_bytes(), body].concat()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    upstream.heads().pop().expect("the upstream's copy of the head")
}

#[tokio::test]
async fn the_upstream_gets_exactly_one_content_length() {
    // hyper accepts a length repeated on two lines (and refuses `2, 2` with 400).
    for lines in ["Content-Length: 2\r\n", "Content-Length: 2\r\nContent-Length: 2\r\n"] {
        let head = upstream_head_with("", lines).await.to_ascii_lowercase();
        let lengths: Vec<&str> = head.split("\r\n").filter(|line| line.starts_with("content-length:")).collect();
        assert_eq!(lengths, ["content-length: 2"], "sent {lines:?}, forwarded {head}");
    }
}

#[tokio::test]
async fn header_name_case_is_kept_only_when_asked() {
    let head = upstream_head("").await;
    assert!(head.contains("\r\nx-custom-case: 1"), "lower case by default: {head}");
    let head = upstream_head("preserve_header_case: true\n").await;
    assert!(head.contains("\r\nX-Custom-Case: 1"), "as the sender wrote it: {head}");
}
