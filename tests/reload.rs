//! Hot reload: a new config is validated, then swapped atomically under traffic; an invalid one
//! is refused and the old one keeps serving.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use hookgate::config;
use hookgate::verify::UnixTime;
use http::StatusCode;

fn config_text(upstream: &str, secret: &str, extra_route: bool) -> String {
    let mut text = format!(
        "listen: 127.0.0.1:0\nadmin_listen: 127.0.0.1:0\nroutes:\n  - {{ name: hooks, path: /hooks, upstream: \"{upstream}\", verify: {{ scheme: github, secret: {secret} }} }}\n"
    );
    if extra_route {
        text.push_str(&format!(
            "  - {{ name: extra, path: /extra, upstream: \"{upstream}\", verify: {{ scheme: flow, secret: x }} }}\n"
        ));
    }
    text
}

/// A gateway started from a config file, with its reloader.
struct Running {
    public: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    reloader: hookgate::reload::Reloader,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

async fn start(text: &str) -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gateway.yaml");
    std::fs::write(&path, text).expect("write config");
    let gateway = hookgate::Gateway::bind(config::load(&path).expect("valid")).await.expect("bind");
    let (public, admin) = (gateway.public_addr(), gateway.admin_addr());
    let reloader = gateway.reloader(path.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway.serve(async { drop(stopped.await) }));
    Running { public, admin, reloader, stop: Some(stop), _dir: dir, path }
}

/// A POST to `/hooks` at `public`, signed as GitHub signs with `secret`.
fn signed(
    public: std::net::SocketAddr,
    secret: &str,
    body: &'static [u8],
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    let scheme = config::scheme(&config::RawVerify { scheme: "github".into(), ..Default::default() }).expect("github");
    let route = hookgate::config::Route { scheme, ..dummy_route() };
    let headers = sign_with(&route, secret, body, UnixTime::now());
    with_headers(post(format!("http://{public}/hooks"), body), headers)
}

fn dummy_route() -> hookgate::config::Route {
    let text = "routes:\n  - { name: d, path: /d, upstream: echo, verify: { scheme: github, secret: s } }\n";
    config::parse(text, "d.yaml".as_ref(), &|_| None).expect("valid").routes.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_under_continuous_traffic_fail_no_request() {
    let upstream = Upstream::start().await;
    let running = Arc::new(start(&config_text(&upstream.url(), "s1", false)).await);

    // Four senders keep requests in flight for the whole run; every one must succeed.
    let sent = Arc::new(AtomicUsize::new(0));
    let stop_at = Instant::now() + Duration::from_millis(1500);
    let mut senders = Vec::new();
    for _ in 0..4 {
        let (running, sent) = (running.clone(), sent.clone());
        senders.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while Instant::now() < stop_at {
                let reply = send(signed(running.public, "s1", b"{\"n\":1}")).await;
                if reply.status != StatusCode::OK {
                    failures.push(reply.status);
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
            failures
        }));
    }
    let mut reloads = 0;
    while Instant::now() < stop_at {
        // Alternate between two valid configs that both accept s1.
        std::fs::write(&running.path, config_text(&upstream.url(), "s1", reloads % 2 == 0)).expect("write");
        running.reloader.reload().expect("valid config reloads");
        reloads += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for sender in senders {
        assert_eq!(sender.await.expect("sender"), Vec::<StatusCode>::new(), "no request may fail during reloads");
    }
    let sent = sent.load(Ordering::Relaxed);
    assert!(reloads >= 20 && sent >= 100, "{reloads} reloads under {sent} requests");

    let metrics = Scrape::parse(
        send(http::Request::get(format!("http://{}/metrics", running.admin)).body(Default::default()).expect("req"))
            .await
            .text(),
    );
    assert_eq!(metrics.value("hookgate_config_reloads_total", &[("result", "ok")]), reloads as f64);
    assert_eq!(metrics.value("hookgate_config_reloads_total", &[("result", "error")]), 0.0);
    assert_eq!(metrics.value("hookgate_requests_total", &[("route", "hooks"), ("outcome", "forwarded")]), sent as f64);
    let loaded_at = metrics.value("hookgate_config_last_reload_success_timestamp_seconds", &[]);
    assert!((UnixTime::now().as_secs() as f64 - loaded_at).abs() < 10.0, "last reload stamped now, not {loaded_at}");
}

#[tokio::test]
async fn a_new_secret_takes_effect_and_an_invalid_config_is_refused() {
    let upstream = Upstream::start().await;
    let mut running = start(&config_text(&upstream.url(), "s1", false)).await;
    assert_eq!(send(signed(running.public, "s1", b"a")).await.status, StatusCode::OK);

    std::fs::write(&running.path, config_text(&upstream.url(), "s2", true)).expect("write");
    running.reloader.reload().expect("reload");
    assert_eq!(send(signed(running.public, "s1", b"b")).await.status, StatusCode::FORBIDDEN, "the old secret is gone");
    assert_eq!(send(signed(running.public, "s2", b"c")).await.status, StatusCode::OK);

    // Invalid: duplicate route name and an unknown scheme. Refused; s2 keeps working.
    let invalid = format!(
        "routes:\n  - {{ name: hooks, path: /hooks, upstream: \"{0}\", verify: {{ scheme: nope, secret: s3 }} }}\n  - {{ name: hooks, path: /x, upstream: \"{0}\", verify: {{ scheme: github, secret: s3 }} }}\n",
        upstream.url()
    );
    std::fs::write(&running.path, invalid).expect("write");
    let error = running.reloader.reload().expect_err("invalid config is refused").to_string();
    assert!(error.contains("unknown scheme") && error.contains("duplicate route name"), "{error}");
    assert_eq!(send(signed(running.public, "s2", b"d")).await.status, StatusCode::OK, "the old config keeps serving");
    assert_eq!(send(signed(running.public, "s3", b"e")).await.status, StatusCode::FORBIDDEN);

    let metrics = Scrape::parse(
        send(http::Request::get(format!("http://{}/metrics", running.admin)).body(Default::default()).expect("req"))
            .await
            .text(),
    );
    assert_eq!(metrics.value("hookgate_config_reloads_total", &[("result", "ok")]), 1.0);
    assert_eq!(metrics.value("hookgate_config_reloads_total", &[("result", "error")]), 1.0);
    // The route added by the reload has its series from the moment it exists.
    assert_eq!(metrics.value("hookgate_requests_total", &[("route", "extra"), ("outcome", "forwarded")]), 0.0);
    // A route that survives reloads counts into the same series under each config: 3 forwarded
    // (s1 before, s2 twice after) and 2 refused, timed in full.
    let hooks = [("route", "hooks")];
    assert_eq!(metrics.value("hookgate_requests_total", &[("route", "hooks"), ("outcome", "forwarded")]), 3.0);
    assert_eq!(metrics.value("hookgate_requests_total", &[("route", "hooks"), ("outcome", "invalid_signature")]), 2.0);
    assert_eq!(metrics.value("hookgate_request_duration_seconds_count", &hooks), 5.0);
    assert_eq!(metrics.value("hookgate_upstream_duration_seconds_count", &hooks), 3.0);
    let _ = running.stop.take().map(|stop| stop.send(()));
}

/// The binary reloads on SIGHUP and on a change of the file, and survives an invalid edit.
#[test]
fn the_binary_reloads_on_sighup_and_on_file_change() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let upstream = runtime.block_on(Upstream::start());
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("gateway.yaml");
    let ports = [free_port(), free_port()];
    let text = |secret: &str| {
        config_text(&upstream.url(), secret, false)
            .replace("admin_listen: 127.0.0.1:0", &format!("admin_listen: 127.0.0.1:{}", ports[1]))
            .replacen("listen: 127.0.0.1:0", &format!("listen: 127.0.0.1:{}", ports[0]), 1)
    };
    std::fs::write(&path, text("s1")).expect("write");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["--config", path.to_str().expect("utf-8 path")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start hookgate");
    let public: std::net::SocketAddr = format!("127.0.0.1:{}", ports[0]).parse().expect("addr");
    let admin: std::net::SocketAddr = format!("127.0.0.1:{}", ports[1]).parse().expect("addr");
    let status = |secret: &'static str| runtime.block_on(async { send(signed(public, secret, b"x")).await.status });
    let wait_for = |what: &str, check: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("startup", &|| std::net::TcpStream::connect(admin).is_ok());
    assert_eq!(status("s1"), StatusCode::OK);

    // SIGHUP after rewriting the file.
    std::fs::write(&path, text("s2")).expect("write");
    let hup = std::process::Command::new("kill").args(["-HUP", &child.id().to_string()]).status().expect("kill");
    assert!(hup.success());
    wait_for("the SIGHUP reload", &|| status("s2") == StatusCode::OK);
    assert_eq!(status("s1"), StatusCode::FORBIDDEN);

    // An invalid edit is refused, then a valid edit is picked up by the file watch alone.
    std::fs::write(&path, "routes: [ { name: broken } ]\n").expect("write");
    std::thread::sleep(hookgate::reload::POLL_INTERVAL * 2);
    assert_eq!(status("s2"), StatusCode::OK, "an invalid file leaves the old config serving");
    std::fs::write(&path, text("s3")).expect("write");
    wait_for("the file-change reload", &|| status("s3") == StatusCode::OK);

    let term = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(term.success());
    assert!(child.wait().expect("exit").success(), "SIGTERM exits 0");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}
