//! The end-to-end harness: a real gateway on loopback sockets, a recording upstream, HTTP
//! clients (hyper, and raw bytes for what hyper would not send), and a metrics scraper.
//!
//! Every wait is bounded by [`PATIENCE`], so a broken gateway fails a test instead of hanging it.
// Each test file uses a different part of the harness.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};

use hookgate::body::Body;
use hookgate::config::keys::signing_key;
use hookgate::config::{self, Config, Route};
use hookgate::verify::{KeyMaterial, SignedRequest, SigningKey, UnixTime};

/// The longest any one wait may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// Awaits `future`, failing the test with `what` if it takes longer than [`PATIENCE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

// ----------------------------------------------------------------------------------------------
// The gateway

/// A gateway serving in a task of the test's runtime, on ephemeral loopback ports.
pub struct Gateway {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<()>>,
}

impl Gateway {
    /// Starts a gateway from `yaml`, which leaves out `listen` and `admin_listen` (both become
    /// `127.0.0.1:0`).
    pub async fn start(yaml: &str) -> Self {
        let text = format!("listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\n{yaml}");
        let config = config::parse(&text, Path::new("test.yaml"), &|_| None).unwrap_or_else(|e| panic!("{e}"));
        let gateway = hookgate::Gateway::bind(config.clone()).await.expect("binding loopback ports");
        let (public, admin) = (gateway.public_addr(), gateway.admin_addr());
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(gateway.serve(async {
            let _ = stopped.await;
        }));
        Self { public, admin, config, stop: Some(stop), served: Some(served) }
    }

    /// Starts a gateway from `yaml` with every `{upstream}` replaced by `upstream`'s URL.
    pub async fn start_with(yaml: &str, upstream: &Upstream) -> Self {
        Self::start(&yaml.replace("{upstream}", &upstream.url())).await
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.public)
    }

    pub fn route(&self, name: &str) -> &Route {
        self.config.routes.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no route {name}"))
    }

    /// The headers a sender with the route's first secret attaches to `body` at `now`.
    pub fn sign_at(&self, route: &str, body: &[u8], now: UnixTime) -> Vec<(HeaderName, HeaderValue)> {
        let route = self.route(route);
        let KeyMaterial::Shared(secret) = &route.keys[0].material else {
            panic!("{} has no shared secret", route.name)
        };
        sign_with_key(route, &SigningKey::Shared(secret.clone()), body, now)
    }

    pub fn sign(&self, route: &str, body: &[u8]) -> Vec<(HeaderName, HeaderValue)> {
        self.sign_at(route, body, UnixTime::now())
    }

    /// A POST of `body` to `path_and_query`, signed as `route` signs.
    pub fn signed_post(&self, route: &str, path_and_query: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
        let body = body.into();
        let headers = self.sign(route, &body);
        with_headers(post(self.url(path_and_query), body), headers)
    }

    /// Fires the shutdown signal; [`Gateway::stopped`] waits for `serve` to return.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for `serve` to return (at most [`PATIENCE`]).
    pub async fn stopped(&mut self) {
        let served = self.served.take().expect("stopped is awaited once");
        within("serve() to return", served).await.expect("serve() does not panic");
    }

    pub async fn admin_get(&self, path: &str) -> Reply {
        send(Request::get(format!("http://{}{path}", self.admin)).body(Full::default()).expect("request")).await
    }

    pub async fn metrics(&self) -> Scrape {
        let reply = self.admin_get("/metrics").await;
        assert_eq!(reply.status, StatusCode::OK, "/metrics answers 200");
        Scrape::parse(reply.text())
    }
}

/// The headers a sender holding `secret` attaches to a POST of `body` at `now`, signed as
/// `route`'s scheme signs.
pub fn sign_with(route: &Route, secret: &str, body: &[u8], now: UnixTime) -> Vec<(HeaderName, HeaderValue)> {
    let key = signing_key(route.scheme.key_kind(), secret).expect("a signing key");
    sign_with_key(route, &key, body, now)
}

/// What a sender holding `key` attaches to a POST of `body` to `route` at `now`: the headers to
/// add, and the body to send (the same bytes, except for schemes that sign inside the body, such
/// as Mailgun). `url` is the public URL, for schemes that sign it; `headers` are the request's
/// own (signed ids and timestamps it lacks are generated and returned with the signature).
pub fn sign_request(
    route: &Route,
    key: &SigningKey,
    url: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
    now: UnixTime,
) -> (Vec<(HeaderName, HeaderValue)>, Vec<u8>) {
    let request = SignedRequest { method: &Method::POST, url, headers, body: &Body::from(body) };
    let signature = route.scheme.sign(key, request, now, None).unwrap_or_else(|e| panic!("{}: {e}", route.name));
    (signature.headers, signature.body.unwrap_or_else(|| body.to_vec()))
}

fn sign_with_key(route: &Route, key: &SigningKey, body: &[u8], now: UnixTime) -> Vec<(HeaderName, HeaderValue)> {
    let request =
        SignedRequest { method: &Method::POST, url: None, headers: &HeaderMap::new(), body: &Body::from(body) };
    let signature = route.scheme.sign(key, request, now, None).expect("the body can be signed");
    assert!(signature.body.is_none(), "the tests use schemes that sign headers only");
    signature.headers
}

// ----------------------------------------------------------------------------------------------
// The recording upstream

/// One request as the upstream received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    /// Path and query, as written on the request line.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self.headers.get_all(name).iter();
        let value = values.next()?;
        assert!(values.next().is_none(), "the upstream got {name} more than once");
        Some(value.to_str().expect("visible ASCII"))
    }
}

/// How the upstream answers the requests it records.
#[derive(Debug, Clone)]
pub enum Answer {
    Reply {
        status: StatusCode,
        headers: Vec<(&'static str, &'static str)>,
        body: Bytes,
        delay: Duration,
    },
    /// Waits until [`Upstream::release`], then answers 200 `released`.
    Hold,
    /// Closes the connection with a TCP reset instead of answering.
    Reset,
}

impl Answer {
    pub fn ok(body: impl Into<Bytes>) -> Self {
        Answer::Reply { status: StatusCode::OK, headers: Vec::new(), body: body.into(), delay: Duration::ZERO }
    }
}

/// A small HTTP/1.1 server that records every request and answers as the test says.
pub struct Upstream {
    pub addr: SocketAddr,
    shared: Arc<UpstreamState>,
    accepting: JoinHandle<()>,
}

struct UpstreamState {
    answer: Mutex<Answer>,
    received: Mutex<Vec<Received>>,
    /// How many requests have been recorded, for tests that wait for one to arrive.
    count: watch::Sender<usize>,
    released: watch::Sender<bool>,
}

impl Upstream {
    /// Starts an upstream on an ephemeral port that answers 200 `upstream says hi`.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("address")).await
    }

    pub async fn start_on(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.expect("binding the upstream");
        let addr = listener.local_addr().expect("bound address");
        let shared = Arc::new(UpstreamState {
            answer: Mutex::new(Answer::ok("upstream says hi")),
            received: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
            released: watch::Sender::new(false),
        });
        let accepting = tokio::spawn(accept_loop(listener, shared.clone()));
        Self { addr, shared, accepting }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How later requests are answered.
    pub fn answer(&self, answer: Answer) {
        *self.shared.answer.lock().unwrap_or_else(PoisonError::into_inner) = answer;
    }

    /// Lets every held request (and every later one) answer.
    pub fn release(&self) {
        self.shared.released.send_replace(true);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The one request received so far.
    pub fn only(&self) -> Received {
        let received = self.received();
        assert_eq!(received.len(), 1, "the upstream got {} requests, expected 1", received.len());
        received.into_iter().next().expect("one request")
    }

    pub fn assert_untouched(&self) {
        let received = self.received();
        assert!(received.is_empty(), "the upstream must get nothing, got {received:#?}");
    }

    /// Waits until `n` requests have arrived in all.
    pub async fn arrived(&self, n: usize) {
        let mut count = self.shared.count.subscribe();
        within("the upstream to receive the request", count.wait_for(|c| *c >= n)).await.expect("upstream alive");
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        // Dropping the accept task drops its JoinSet, which aborts every connection task.
        self.accepting.abort();
    }
}

/// An address where nothing listens: connecting to it is refused.
pub async fn refusing_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
    listener.local_addr().expect("bound address")
}

async fn accept_loop(listener: TcpListener, shared: Arc<UpstreamState>) {
    let mut connections = JoinSet::new();
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            connections.spawn(serve_upstream_connection(stream, shared.clone()));
        }
        while connections.try_join_next().is_some() {}
    }
}

async fn serve_upstream_connection(stream: TcpStream, shared: Arc<UpstreamState>) {
    // A second handle on the socket, so that an `Answer::Reset` can set SO_LINGER to zero while
    // hyper owns the first; closing both then sends RST.
    let stream = stream.into_std().expect("a tokio stream converts");
    let second = stream.try_clone().expect("dup a socket");
    let stream = TcpStream::from_std(stream).expect("back to tokio");
    let reset = Arc::new(Notify::new());
    let service = {
        let reset = reset.clone();
        service_fn(move |request| answer(shared.clone(), reset.clone(), request))
    };
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = connection => {}
        () = reset.notified() => {
            let second = TcpStream::from_std(second).expect("back to tokio");
            second.set_zero_linger().expect("SO_LINGER");
        }
    }
}

async fn answer(
    shared: Arc<UpstreamState>,
    reset: Arc<Notify>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let target = parts.uri.path_and_query().map_or("", |pq| pq.as_str()).to_owned();
    let received = Received { method: parts.method, target, headers: parts.headers, body };
    shared.received.lock().unwrap_or_else(PoisonError::into_inner).push(received);
    shared.count.send_modify(|count| *count += 1);

    let answer = shared.answer.lock().unwrap_or_else(PoisonError::into_inner).clone();
    match answer {
        Answer::Reply { status, headers, body, delay } => {
            tokio::time::sleep(delay).await;
            let mut response = Response::new(Full::new(body));
            *response.status_mut() = status;
            for (name, value) in headers {
                response.headers_mut().append(name, HeaderValue::from_static(value));
            }
            Ok(response)
        }
        Answer::Hold => {
            let _ = shared.released.subscribe().wait_for(|released| *released).await;
            Ok(Response::new(Full::new(Bytes::from_static(b"released"))))
        }
        Answer::Reset => {
            reset.notify_one();
            std::future::pending().await
        }
    }
}

/// A bare HTTP/1.1 upstream on raw sockets, for what the hyper-based [`Upstream`] hides: each
/// request head as it arrived on the wire (hyper lower-cases names) and how many connections
/// were opened. It answers every request `200 ok`; with `close_after_answer` it closes each
/// connection after its first answer without saying so, as servers with a short keep-alive
/// timeout do.
pub struct RawUpstream {
    pub url: String,
    heads: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
}

impl RawUpstream {
    pub async fn start(close_after_answer: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (heads, connections) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicUsize::new(0)));
        let (recorded, counter) = (Arc::clone(&heads), Arc::clone(&connections));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(raw_answer_each(stream, Arc::clone(&recorded), close_after_answer));
            }
        });
        Self { url, heads, connections }
    }

    /// The request heads received so far, in order, without the blank line.
    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Reads requests (a head, then `Content-Length` bytes of body) and answers each `200 ok`.
async fn raw_answer_each(mut stream: TcpStream, heads: Arc<Mutex<Vec<String>>>, close_after_answer: bool) {
    let mut buffer = Vec::new();
    loop {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            if !read_some(&mut stream, &mut buffer).await {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
            .map_or(0, |v| v.parse().expect("a length"));
        while buffer.len() < head_end + 4 + length {
            if !read_some(&mut stream, &mut buffer).await {
                return;
            }
        }
        buffer.drain(..head_end + 4 + length);
        heads.lock().unwrap_or_else(PoisonError::into_inner).push(head);
        if stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await.is_err() || close_after_answer {
            return;
        }
    }
}

/// Appends what the socket has to `buffer`; `false` once it is closed.
async fn read_some(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buffer.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Clients

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("a UTF-8 body")
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().expect("visible ASCII"))
    }

    /// Asserts the gateway's own error answer: `status`, JSON, and exactly `{"error": error}`.
    pub fn assert_error(&self, status: StatusCode, error: &str) {
        assert_eq!(self.status, status, "status; body {:?}", self.body);
        assert_eq!(self.header("content-type"), Some("application/json"));
        let json: serde_json::Value = serde_json::from_slice(&self.body).expect("a JSON body");
        assert_eq!(json, serde_json::json!({ "error": error }));
    }
}

pub fn post(url: impl AsRef<str>, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::post(url.as_ref()).body(Full::new(body.into())).expect("a valid request")
}

pub fn with_headers(
    mut request: Request<Full<Bytes>>,
    headers: impl IntoIterator<Item = (HeaderName, HeaderValue)>,
) -> Request<Full<Bytes>> {
    for (name, value) in headers {
        request.headers_mut().append(name, value);
    }
    request
}

/// Sends `request` over HTTP/1.1 on a connection of its own (no pooling, so one test's
/// connection state never leaks into its next request).
pub async fn send(request: Request<Full<Bytes>>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(0).build_http();
    exchange(client, request).await
}

/// Sends `request` over HTTP/2 with prior knowledge (h2c).
pub async fn send_h2(request: Request<Full<Bytes>>) -> Reply {
    let client = Client::builder(TokioExecutor::new()).http2_only(true).build_http();
    exchange(client, request).await
}

async fn exchange(
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Reply {
    let response = within("the gateway's answer", client.request(request)).await.expect("an HTTP answer");
    let (parts, body) = response.into_parts();
    let body = within("the answer's body", body.collect()).await.expect("a complete body").to_bytes();
    Reply { status: parts.status, version: parts.version, headers: parts.headers, body }
}

/// A response read off a raw socket.
#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Asserts the gateway's own error answer, as [`Reply::assert_error`] does.
    pub fn assert_error(&self, status: u16, error: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        let json: serde_json::Value = serde_json::from_slice(&self.body).expect("a JSON body");
        assert_eq!(json, serde_json::json!({ "error": error }));
    }
}

/// Writes `request` as is on a new connection and reads one response.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> RawReply {
    let mut stream = TcpStream::connect(addr).await.expect("connecting");
    stream.write_all(request).await.expect("writing the request");
    read_raw_reply(&mut stream).await
}

/// Reads one response with a `Content-Length` body (the gateway always sends one).
pub async fn read_raw_reply(stream: &mut TcpStream) -> RawReply {
    within("a raw response", async {
        let mut buffer = Vec::new();
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("reading the response");
            assert!(n > 0, "connection closed before a complete response head: {buffer:?}");
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&buffer[..head_end]).expect("an ASCII head").to_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().expect("a status line");
        let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(':').expect("name: value");
                (name.to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .map_or(0, |(_, value)| value.parse().expect("a number"));
        let mut body = buffer[head_end + 4..].to_vec();
        while body.len() < length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await.expect("reading the body");
            assert!(n > 0, "connection closed inside the body");
            body.extend_from_slice(&chunk[..n]);
        }
        RawReply { status, headers, body }
    })
    .await
}

// ----------------------------------------------------------------------------------------------
// Metrics

/// One scrape of `/metrics`: series (`name{labels}`, labels sorted by name) to value.
#[derive(Debug)]
pub struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    pub fn parse(text: &str) -> Self {
        let mut series = BTreeMap::new();
        for line in text.lines().filter(|line| !line.is_empty() && !line.starts_with('#')) {
            let (name_and_labels, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("a number in {line:?}"));
            let (name, labels) = match name_and_labels.split_once('{') {
                Some((name, labels)) => (name, parse_labels(labels.strip_suffix('}').expect("closing brace"))),
                None => (name_and_labels, Vec::new()),
            };
            series.insert(series_key(name, labels), value);
        }
        Self(series)
    }

    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.0.get(&series_key(name, labels)).copied()
    }

    /// The value of a series that must exist.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or_else(|| panic!("no series {name} {labels:?} in {:#?}", self.0))
    }

    /// Every series of the metric `name`.
    pub fn family(&self, name: &str) -> BTreeMap<&str, f64> {
        self.0
            .iter()
            .filter(|(key, _)| key.split('{').next() == Some(name))
            .map(|(key, value)| (key.as_str(), *value))
            .collect()
    }
}

fn series_key(name: &str, mut labels: Vec<(String, String)>) -> String {
    if labels.is_empty() {
        return name.to_owned();
    }
    labels.sort();
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

/// `a="x",b="y\"z"` to pairs, unescaping the values.
fn parse_labels(text: &str) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"").expect("label=\"value\"");
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect("a closing quote") {
                (_, '\\') => match chars.next().expect("an escaped character").1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (at, '"') => break at,
                (_, c) => value.push(c),
            }
        };
        labels.push((key.to_owned(), value));
        rest = after[end + 1..].trim_start_matches(',');
    }
    labels
}

// ----------------------------------------------------------------------------------------------
// Data

/// `len` bytes from a fixed-seed xorshift generator: arbitrary but the same on every run.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// One named case from `tests/vectors/<file>`.
pub fn vector(file: &str, name: &str) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).expect("a JSON array");
    cases.into_iter().find(|case| case["name"] == name).unwrap_or_else(|| panic!("no vector {name} in {file}"))
}
