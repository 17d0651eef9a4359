//! Replay protection end to end: a verified delivery seen within the window is answered 409 and
//! never forwarded, with the in-memory store and with a real Redis (shared by two gateways, and
//! stopped, restarted and frozen mid-run).
//!
//! The Redis tests use the server `.ci/redis` starts (`HOOKGATE_TEST_REDIS_URL`, default
//! redis://127.0.0.1:6390/0) and private `redis-server` processes on ephemeral ports. Without
//! them they are skipped with a loud message, unless `HOOKGATE_REQUIRE_REDIS` is set (CI), which
//! makes that a failure.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use hookgate::config::keys::signing_key;
use hookgate::config::{self, Route};
use hookgate::verify::{KeyKind, KeyMaterial, SignedRequest, SigningKey, UnixTime};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::Full;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_c29tZW9uZS1lbHNlcy1zZWNyZXQtMDEyMzQ1";

// ----------------------------------------------------------------------------------------------
// Senders

/// A Standard Webhooks delivery `id` of `body`, signed at `at` with `key` (which signs the id).
fn delivery_with(
    route: &Route,
    key: &SigningKey,
    url: String,
    id: &str,
    body: &str,
    at: UnixTime,
) -> Request<Full<Bytes>> {
    let id_header = (HeaderName::from_static("webhook-id"), HeaderValue::from_str(id).expect("an id"));
    let mut headers = HeaderMap::new();
    headers.insert(id_header.0.clone(), id_header.1.clone());
    let request = SignedRequest { method: &Method::POST, url: None, headers: &headers, body: &body[..].into() };
    let signature = route.scheme.sign(key, request, at, None).expect("signs");
    with_headers(with_headers(post(url, body.to_owned()), [id_header]), signature.headers)
}

/// The route's own first secret, as its sender holds it.
fn route_key(route: &Route) -> SigningKey {
    let KeyMaterial::Shared(secret) = &route.keys[0].material else { panic!("{} has a shared secret", route.name) };
    SigningKey::Shared(secret.clone())
}

/// A delivery signed now by the route's sender.
fn delivery(gateway: &Gateway, route: &str, path: &str, id: &str, body: &str) -> Request<Full<Bytes>> {
    delivery_at(gateway, route, path, id, body, UnixTime::now())
}

fn delivery_at(gateway: &Gateway, route: &str, path: &str, id: &str, body: &str, at: UnixTime) -> Request<Full<Bytes>> {
    let route = gateway.route(route);
    delivery_with(route, &route_key(route), gateway.url(path), id, body, at)
}

/// The same delivery signed with a secret the route does not hold.
fn forged(gateway: &Gateway, route: &str, path: &str, id: &str, body: &str) -> Request<Full<Bytes>> {
    let key = signing_key(KeyKind::SharedBase64, OTHER_SECRET).expect("a key");
    delivery_with(gateway.route(route), &key, gateway.url(path), id, body, UnixTime::now())
}

/// A GitHub delivery: the body is signed, `X-GitHub-Delivery` is not.
fn github(gateway: &Gateway, route: &str, path: &str, delivery_id: &str, body: &str) -> Request<Full<Bytes>> {
    let id = (HeaderName::from_static("x-github-delivery"), HeaderValue::from_str(delivery_id).expect("an id"));
    with_headers(gateway.signed_post(route, path, body.to_owned()), [id])
}

async fn status(request: Request<Full<Bytes>>) -> StatusCode {
    send(request).await.status
}

async fn assert_replayed(request: Request<Full<Bytes>>) {
    send(request).await.assert_error(StatusCode::CONFLICT, "replayed");
}

fn count(scrape: &Scrape, route: &str, outcome: &str) -> f64 {
    scrape.value("hookgate_requests_total", &[("route", route), ("outcome", outcome)])
}

/// Something no other test and no earlier run used (the shared Redis outlives a test run).
fn unique(what: &str) -> String {
    format!("{what}-{}-{}", std::process::id(), UnixTime::now().as_nanos())
}

// ----------------------------------------------------------------------------------------------
// The memory store

const MEMORY: &str = r#"
routes:
  - name: hooks
    path: /hooks
    upstream: "{upstream}"
    verify: { scheme: standard-webhooks, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }
    replay: {}
  - name: other
    path: /other
    upstream: "{upstream}"
    verify: { scheme: standard-webhooks, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }
    replay: { store: memory }
  - name: gh
    path: /gh
    upstream: "{upstream}"
    verify: { scheme: github, secret: gh-secret }
    replay: { window: 1s }
  - name: small
    path: /small
    upstream: "{upstream}"
    verify: { scheme: github, secret: gh-secret }
    replay: { capacity: 2 }
  - name: brief
    path: /brief
    upstream: "{upstream}"
    verify: { scheme: standard-webhooks, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }
    replay: { window: 100ms }
  - name: report
    path: /report
    upstream: "{upstream}"
    enforce: false
    verify: { scheme: standard-webhooks, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }
    replay: {}
"#;

#[tokio::test]
async fn a_resent_delivery_is_answered_409_and_never_forwarded() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(MEMORY, &upstream).await;

    assert_eq!(status(delivery(&gateway, "hooks", "/hooks", "msg_1", r#"{"n":1}"#)).await, StatusCode::OK);
    assert_eq!(upstream.only().body, Bytes::from_static(br#"{"n":1}"#));
    assert_replayed(delivery(&gateway, "hooks", "/hooks", "msg_1", r#"{"n":1}"#)).await;
    assert_eq!(upstream.received().len(), 1, "the replay did not reach the upstream");

    // Another id is another delivery, even with the same body.
    assert_eq!(status(delivery(&gateway, "hooks", "/hooks", "msg_2", r#"{"n":1}"#)).await, StatusCode::OK);
    assert_eq!(upstream.received().len(), 2);

    let scrape = gateway.metrics().await;
    assert_eq!(count(&scrape, "hooks", "forwarded"), 2.0);
    assert_eq!(count(&scrape, "hooks", "replayed"), 1.0);
    assert_eq!(count(&scrape, "other", "replayed"), 0.0, "every route's series exists from startup");
    assert_eq!(scrape.value("hookgate_replay_store_errors_total", &[("route", "hooks")]), 0.0);
}

#[tokio::test]
async fn a_signed_id_is_a_replay_whatever_its_timestamp_and_signature() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(MEMORY, &upstream).await;
    let now = UnixTime::now();
    assert_eq!(status(delivery_at(&gateway, "hooks", "/hooks", "msg_r", "{}", now)).await, StatusCode::OK);
    // A sender's retry (or a replay re-signed by nobody but the sender) carries a new timestamp.
    let later = UnixTime::from_secs(now.as_secs() + 30);
    assert_replayed(delivery_at(&gateway, "hooks", "/hooks", "msg_r", "{}", later)).await;
    upstream.only();
}

#[tokio::test]
async fn an_unsigned_delivery_id_cannot_be_changed_to_slip_a_replay_through() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(MEMORY, &upstream).await;
    assert_eq!(status(github(&gateway, "gh", "/gh", "guid-1", r#"{"push":1}"#)).await, StatusCode::OK);
    // X-GitHub-Delivery is not signed: the body is what identifies the delivery.
    assert_replayed(github(&gateway, "gh", "/gh", "guid-2", r#"{"push":1}"#)).await;
    assert_eq!(status(github(&gateway, "gh", "/gh", "guid-3", r#"{"push":2}"#)).await, StatusCode::OK);
    assert_eq!(upstream.received().len(), 2);
}

#[tokio::test]
async fn a_key_expires_after_the_window() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(MEMORY, &upstream).await;
    assert_eq!(status(github(&gateway, "gh", "/gh", "g", "expiring")).await, StatusCode::OK);
    assert_replayed(github(&gateway, "gh", "/gh", "g", "expiring")).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(status(github(&gateway, "gh", "/gh", "g", "expiring")).await, StatusCode::OK, "the 1s window passed");
    assert_eq!(upstream.received().len(), 2);
}

#[tokio::test]
async fn a_key_outlives_a_short_window_while_its_timestamp_is_fresh() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(MEMORY, &upstream).await;
    assert_eq!(status(delivery(&gateway, "brief", "/brief", "msg_b", "{}")).await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The 100ms window is over, but the signed timestamp is good for 5 minutes: still a replay.
    assert_replayed(delivery(&gateway, "brief", "/brief", "msg_b", "{}")).await;
    upstream.only();
}

#[tokio::test]
async fn the_memory_store_stays_within_its_capacity() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(MEMORY, &upstream).await;
    for body in ["a", "b", "c"] {
        assert_eq!(status(github(&gateway, "small", "/small", body, body)).await, StatusCode::OK);
    }
    // Capacity 2: "a" (the soonest to expire) made room for "c".
    assert_replayed(github(&gateway, "small", "/small", "c", "c")).await;
    assert_replayed(github(&gateway, "small", "/small", "b", "b")).await;
    assert_eq!(status(github(&gateway, "small", "/small", "a", "a")).await, StatusCode::OK, "evicted");
    assert_eq!(upstream.received().len(), 4);
    let scrape = gateway.metrics().await;
    assert_eq!(scrape.value("hookgate_replay_evictions_total", &[("route", "small")]), 2.0);
    assert_eq!(scrape.value("hookgate_replay_evictions_total", &[("route", "hooks")]), 0.0);
}

#[tokio::test]
async fn a_forgery_cannot_burn_an_id() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(MEMORY, &upstream).await;
    // The attacker learned the next id and sends it first, with a body of their own.
    forged_then_real(&gateway, "hooks", "/hooks", "msg_f").await;
    upstream.only();
}

async fn forged_then_real(gateway: &Gateway, route: &str, path: &str, id: &str) {
    send(forged(gateway, route, path, id, "{\"evil\":1}"))
        .await
        .assert_error(StatusCode::FORBIDDEN, "invalid_signature");
    assert_eq!(status(delivery(gateway, route, path, id, "{}")).await, StatusCode::OK, "the real delivery passes");
    // After it, a forgery is still a forgery (403), and learns nothing about the store.
    send(forged(gateway, route, path, id, "{}")).await.assert_error(StatusCode::FORBIDDEN, "invalid_signature");
    assert_replayed(delivery(gateway, route, path, id, "{}")).await;
}

#[tokio::test]
async fn a_failed_forward_releases_the_id_so_the_senders_retry_passes() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(MEMORY, &upstream).await;
    upstream_failure_then_retry(&gateway, &upstream, "hooks", "/hooks", "msg_502").await;
}

async fn upstream_failure_then_retry(gateway: &Gateway, upstream: &Upstream, route: &str, path: &str, id: &str) {
    let failing =
        Answer::Reply { status: StatusCode::BAD_GATEWAY, headers: vec![], body: Bytes::new(), delay: Duration::ZERO };
    upstream.answer(failing);
    assert_eq!(status(delivery(gateway, route, path, id, "{}")).await, StatusCode::BAD_GATEWAY);
    assert_eq!(status(delivery(gateway, route, path, id, "{}")).await, StatusCode::BAD_GATEWAY, "retried, not 409");
    upstream.answer(Answer::ok("ok"));
    assert_eq!(status(delivery(gateway, route, path, id, "{}")).await, StatusCode::OK);
    assert_replayed(delivery(gateway, route, path, id, "{}")).await;
    assert_eq!(upstream.received().len(), 3, "two failed attempts and the one that was taken");
}

#[tokio::test]
async fn an_unreachable_upstream_releases_the_id_too() {
    let refusing = refusing_addr().await;
    let yaml = MEMORY.replace("{upstream}", &format!("http://{refusing}"));
    let gateway = Gateway::start(&yaml).await;
    for _ in 0..2 {
        send(delivery(&gateway, "hooks", "/hooks", "msg_down", "{}"))
            .await
            .assert_error(StatusCode::BAD_GATEWAY, "upstream_error");
    }
}

#[tokio::test]
async fn two_routes_never_share_an_id() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(MEMORY, &upstream).await;
    assert_eq!(status(delivery(&gateway, "hooks", "/hooks", "msg_same", "{}")).await, StatusCode::OK);
    assert_eq!(status(delivery(&gateway, "other", "/other", "msg_same", "{}")).await, StatusCode::OK);
    assert_replayed(delivery(&gateway, "other", "/other", "msg_same", "{}")).await;
    assert_eq!(upstream.received().len(), 2);
}

#[tokio::test]
async fn a_report_only_route_counts_a_replay_and_forwards_it() {
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(MEMORY, &upstream).await;
    for _ in 0..2 {
        assert_eq!(status(delivery(&gateway, "report", "/report", "msg_ro", "{}")).await, StatusCode::OK);
    }
    assert_eq!(upstream.received().len(), 2);
    let scrape = gateway.metrics().await;
    assert_eq!(scrape.value("hookgate_report_only_total", &[("route", "report"), ("outcome", "replayed")]), 1.0);
}

#[tokio::test]
async fn a_reload_keeps_the_seen_keys_unless_the_store_changed() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().expect("a temp dir");
    let path: PathBuf = dir.path().join("gateway.yaml");
    let text = |replay: &str| {
        format!(
            "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\nroutes:\n  - {{ name: hooks, path: /hooks, upstream: \"{}\", verify: {{ scheme: standard-webhooks, secret: \"{SECRET}\" }}, replay: {replay} }}\n",
            upstream.url()
        )
    };
    std::fs::write(&path, text("{ window: 1h }")).expect("writing the config");
    let config = config::load(&path).expect("valid");
    let route = config.routes[0].clone();
    let gateway = hookgate::Gateway::bind(config).await.expect("binding");
    let public = gateway.public_addr();
    let reloader = gateway.reloader(path.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(gateway.serve(async { drop(stopped.await) }));
    let send_id = |id: &str| {
        send(delivery_with(&route, &route_key(&route), format!("http://{public}/hooks"), id, "{}", UnixTime::now()))
    };

    assert_eq!(send_id("msg_kept").await.status, StatusCode::OK);
    // Another window keeps the store ...
    std::fs::write(&path, text("{ window: 2h }")).expect("writing the config");
    reloader.reload().expect("a valid config");
    send_id("msg_kept").await.assert_error(StatusCode::CONFLICT, "replayed");
    // ... another capacity starts a new one.
    std::fs::write(&path, text("{ window: 2h, capacity: 10 }")).expect("writing the config");
    reloader.reload().expect("a valid config");
    assert_eq!(send_id("msg_kept").await.status, StatusCode::OK);
    assert_eq!(upstream.received().len(), 2);

    let _ = stop.send(());
    within("the gateway to stop", served).await.expect("serve() returns");
}

// ----------------------------------------------------------------------------------------------
// Redis

/// Skips (loudly) or fails, as `HOOKGATE_REQUIRE_REDIS` says.
fn skip_or_fail<T>(why: &str) -> Option<T> {
    if std::env::var_os("HOOKGATE_REQUIRE_REDIS").is_some() {
        panic!("HOOKGATE_REQUIRE_REDIS is set and {why}: run .ci/redis");
    }
    // Straight to stderr: the test harness captures eprintln! of passing tests.
    let banner = format!(
        "\n**********\n*** SKIPPED: {why}. Run .ci/redis (HOOKGATE_REQUIRE_REDIS=1 makes this fail). ***\n**********\n"
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr(), banner.as_bytes());
    None
}

async fn ping(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let connecting = tokio::time::timeout(Duration::from_secs(2), client.get_multiplexed_async_connection());
    let mut connection = connecting.await.map_err(|_| "connect timed out".to_owned())?.map_err(|e| e.to_string())?;
    let pong: String = redis::cmd("PING").query_async(&mut connection).await.map_err(|e| e.to_string())?;
    (pong == "PONG").then_some(()).ok_or(pong)
}

/// The Redis `.ci/redis` started, if it answers.
async fn shared_redis() -> Option<String> {
    let url = std::env::var("HOOKGATE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6390/0".into());
    match ping(&url).await {
        Ok(()) => Some(url),
        Err(error) => skip_or_fail(&format!("no redis answers at {url} ({error})")),
    }
}

/// A `redis-server` of this test's own, on an ephemeral loopback port, that the test may stop.
struct PrivateRedis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl PrivateRedis {
    async fn start() -> Option<Self> {
        if Command::new("redis-server").arg("--version").output().is_err() {
            return skip_or_fail("redis-server is not installed");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
        let mut redis = Self { child: None, port, dir: tempfile::tempdir().expect("a temp dir") };
        redis.restart().await;
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Starts the server (again, on the same port, empty) and waits until it answers.
    async fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting redis-server");
        self.child = Some(child);
        let url = self.url();
        within("the private redis-server to answer", async {
            while ping(&url).await.is_err() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    /// Kills the server mid-run (SIGKILL: no goodbye to its clients).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (STOP freezes it, CONT thaws it).
    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([format!("-{signal}"), pid]).status().expect("kill runs");
        assert!(status.success(), "kill -{signal}");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        // SIGKILL ends a frozen (SIGSTOP) server too.
        self.kill();
    }
}

fn redis_routes(url: &str, on_store_error: &str) -> String {
    format!(
        r#"
routes:
  - name: hooks
    path: /hooks
    upstream: "{{upstream}}"
    verify: {{ scheme: standard-webhooks, secret: "{SECRET}" }}
    replay: {{ store: "{url}", on_store_error: {on_store_error}, timeout: 200ms }}
  - name: other
    path: /other
    upstream: "{{upstream}}"
    verify: {{ scheme: standard-webhooks, secret: "{SECRET}" }}
    replay: {{ store: "{url}", on_store_error: {on_store_error}, timeout: 200ms }}
  - name: gh
    path: /gh
    upstream: "{{upstream}}"
    verify: {{ scheme: github, secret: gh-secret }}
    replay: {{ store: "{url}", window: 1s }}
"#
    )
}

#[tokio::test]
async fn redis_store_refuses_replays_and_releases_failed_deliveries() {
    let Some(url) = shared_redis().await else { return };
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(&redis_routes(&url, "reject"), &upstream).await;

    let id = unique("msg");
    assert_eq!(status(delivery(&gateway, "hooks", "/hooks", &id, "{}")).await, StatusCode::OK);
    assert_replayed(delivery(&gateway, "hooks", "/hooks", &id, "{}")).await;
    assert_eq!(status(delivery(&gateway, "hooks", "/hooks", &unique("msg"), "{}")).await, StatusCode::OK);
    assert_eq!(upstream.received().len(), 2);

    // The same id on another route is another delivery.
    assert_eq!(status(delivery(&gateway, "other", "/other", &id, "{}")).await, StatusCode::OK);
    assert_eq!(upstream.received().len(), 3);

    let scrape = gateway.metrics().await;
    assert_eq!(count(&scrape, "hooks", "replayed"), 1.0);
    assert_eq!(scrape.value("hookgate_replay_store_errors_total", &[("route", "hooks")]), 0.0);
}

#[tokio::test]
async fn redis_store_a_forgery_cannot_burn_an_id() {
    let Some(url) = shared_redis().await else { return };
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(&redis_routes(&url, "reject"), &upstream).await;
    forged_then_real(&gateway, "hooks", "/hooks", &unique("msg")).await;
    upstream.only();
}

#[tokio::test]
async fn redis_store_releases_the_id_when_the_upstream_fails() {
    let Some(url) = shared_redis().await else { return };
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(&redis_routes(&url, "reject"), &upstream).await;
    upstream_failure_then_retry(&gateway, &upstream, "hooks", "/hooks", &unique("msg")).await;
}

#[tokio::test]
async fn redis_store_keys_expire_with_the_window() {
    let Some(url) = shared_redis().await else { return };
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(&redis_routes(&url, "reject"), &upstream).await;
    let body = unique("body");
    assert_eq!(status(github(&gateway, "gh", "/gh", "g", &body)).await, StatusCode::OK);
    assert_replayed(github(&gateway, "gh", "/gh", "g", &body)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(status(github(&gateway, "gh", "/gh", "g", &body)).await, StatusCode::OK, "PX 1000 passed");
}

#[tokio::test]
async fn redis_store_is_shared_by_replicas() {
    let Some(url) = shared_redis().await else { return };
    let upstream = Upstream::start().await;
    let a = Gateway::start_with(&redis_routes(&url, "reject"), &upstream).await;
    let b = Gateway::start_with(&redis_routes(&url, "reject"), &upstream).await;
    let id = unique("msg");
    assert_eq!(status(delivery(&a, "hooks", "/hooks", &id, "{}")).await, StatusCode::OK, "replica A takes it");
    assert_replayed(delivery(&b, "hooks", "/hooks", &id, "{}")).await;
    assert_replayed(delivery(&a, "hooks", "/hooks", &id, "{}")).await;
    assert_eq!(status(delivery(&b, "hooks", "/hooks", &unique("msg"), "{}")).await, StatusCode::OK);
    assert_eq!(upstream.received().len(), 2);
}

/// Sends new deliveries, each twice, until the second is refused: the store is answering again
/// (with `allow`, a 200 alone proves nothing). Bounded by [`PATIENCE`].
async fn until_the_store_answers(gateway: &Gateway) {
    within("the replay store to answer again", async {
        loop {
            let id = unique("msg");
            if status(delivery(gateway, "hooks", "/hooks", &id, "{}")).await == StatusCode::OK
                && status(delivery(gateway, "hooks", "/hooks", &id, "{}")).await == StatusCode::CONFLICT
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

#[tokio::test]
async fn redis_stopped_mid_run_fails_closed_with_reject_and_recovers() {
    let Some(mut redis) = PrivateRedis::start().await else { return };
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(&redis_routes(&redis.url(), "reject"), &upstream).await;
    let id = unique("msg");
    assert_eq!(status(delivery(&gateway, "hooks", "/hooks", &id, "{}")).await, StatusCode::OK);

    redis.kill();
    for id in [unique("msg"), unique("msg"), id.clone()] {
        let reply = send(delivery(&gateway, "hooks", "/hooks", &id, "{}")).await;
        reply.assert_error(StatusCode::SERVICE_UNAVAILABLE, "replay_store_error");
        assert_eq!(reply.header("retry-after"), Some("5"));
    }
    assert_eq!(upstream.received().len(), 1, "nothing unchecked reached the upstream");
    let scrape = gateway.metrics().await;
    assert_eq!(count(&scrape, "hooks", "replay_store_error"), 3.0);
    assert!(scrape.value("hookgate_replay_store_errors_total", &[("route", "hooks")]) >= 3.0);

    // Back (empty: it kept nothing), the gateway reconnects by itself.
    redis.restart().await;
    until_the_store_answers(&gateway).await;
}

#[tokio::test]
async fn redis_stopped_mid_run_forwards_and_counts_with_allow() {
    let Some(mut redis) = PrivateRedis::start().await else { return };
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(&redis_routes(&redis.url(), "allow"), &upstream).await;
    let id = unique("msg");
    assert_eq!(status(delivery(&gateway, "hooks", "/hooks", &id, "{}")).await, StatusCode::OK);
    assert_replayed(delivery(&gateway, "hooks", "/hooks", &id, "{}")).await;

    redis.kill();
    // Fail open: forwarded unchecked, a replay included, and counted.
    assert_eq!(status(delivery(&gateway, "hooks", "/hooks", &unique("msg"), "{}")).await, StatusCode::OK);
    assert_eq!(status(delivery(&gateway, "hooks", "/hooks", &id, "{}")).await, StatusCode::OK);
    assert_eq!(upstream.received().len(), 3);
    let scrape = gateway.metrics().await;
    assert!(scrape.value("hookgate_replay_store_errors_total", &[("route", "hooks")]) >= 2.0);
    assert_eq!(count(&scrape, "hooks", "forwarded"), 3.0);
    assert_eq!(count(&scrape, "hooks", "replay_store_error"), 0.0);

    redis.restart().await;
    until_the_store_answers(&gateway).await;
}

#[tokio::test]
async fn a_frozen_redis_delays_a_request_by_the_timeout_only() {
    let Some(redis) = PrivateRedis::start().await else { return };
    let upstream = Upstream::start().await;
    let gateway = Gateway::start_with(&redis_routes(&redis.url(), "reject"), &upstream).await;
    assert_eq!(status(delivery(&gateway, "hooks", "/hooks", &unique("msg"), "{}")).await, StatusCode::OK);

    redis.signal("STOP");
    let started = Instant::now();
    send(delivery(&gateway, "hooks", "/hooks", &unique("msg"), "{}"))
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "replay_store_error");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "a hung redis held the request for {took:?} (timeout 200ms)");
    redis.signal("CONT");
    until_the_store_answers(&gateway).await;
}

#[tokio::test]
async fn a_gateway_starts_while_redis_is_down() {
    let refusing = refusing_addr().await;
    let upstream = Upstream::start().await;
    let url = format!("redis://{refusing}/0");
    let closed = Gateway::start_with(&redis_routes(&url, "reject"), &upstream).await;
    send(delivery(&closed, "hooks", "/hooks", "msg_down", "{}"))
        .await
        .assert_error(StatusCode::SERVICE_UNAVAILABLE, "replay_store_error");
    let open = Gateway::start_with(&redis_routes(&url, "allow"), &upstream).await;
    assert_eq!(status(delivery(&open, "hooks", "/hooks", "msg_down", "{}")).await, StatusCode::OK);
    upstream.only();
}
