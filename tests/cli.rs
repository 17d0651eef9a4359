//! The `hookgate` binary: `check`, `sign`, `schemes`, `echo`, and serving from a config file as
//! the README's "Try it" does, stopped with SIGTERM.

mod common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Gateway, Upstream, post, send, with_headers};
use http::header::{HeaderName, HeaderValue};
use http::{Request, StatusCode};
use tempfile::NamedTempFile;

const BIN: &str = env!("CARGO_BIN_EXE_hookgate");

fn hookgate(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_remove("HOOKGATE_SECRET").output().expect("running hookgate")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn file_with(contents: &[u8]) -> NamedTempFile {
    let mut file = NamedTempFile::new().expect("a temp file");
    file.write_all(contents).expect("writing the temp file");
    file
}

fn path(file: &NamedTempFile) -> &str {
    file.path().to_str().expect("a UTF-8 temp path")
}

/// `sign`'s output, one `name: value` per line, as headers.
fn headers(stdout: &[u8]) -> Vec<(HeaderName, HeaderValue)> {
    text(stdout)
        .lines()
        .map(|line| {
            let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("`name: value`, got {line:?}"));
            (HeaderName::from_bytes(name.as_bytes()).expect("name"), HeaderValue::from_str(value).expect("value"))
        })
        .collect()
}

/// A loopback port nothing listens on (bound and released; the binary needs fixed ports).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// A `hookgate` process that is killed if the test ends without stopping it.
struct Running {
    child: Option<Child>,
    log: NamedTempFile,
}

impl Running {
    /// Starts `hookgate args` and waits until `ready` accepts connections.
    async fn start(args: &[&str], ready: SocketAddr) -> Self {
        let log = NamedTempFile::new().expect("a log file");
        let child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("the log file"))
            .spawn()
            .expect("starting hookgate");
        let mut running = Self { child: Some(child), log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(ready).await.is_err() {
            if let Some(status) = running.child().try_wait().expect("try_wait") {
                panic!("hookgate exited with {status} before listening:\n{}", running.log());
            }
            assert!(Instant::now() < deadline, "hookgate is not listening on {ready}:\n{}", running.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        running
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("still running")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit.
    async fn terminate(mut self) -> ExitStatus {
        let pid = self.child().id().to_string();
        let kill = Command::new("kill").args(["-TERM", &pid]).status().expect("running kill");
        assert!(kill.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child().try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(Instant::now() < deadline, "hookgate did not exit after SIGTERM:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn check_accepts_the_example_config() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.example.yaml");
    let output = hookgate(&["check", "--config", example.to_str().expect("UTF-8 path")]);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output.stdout).contains("ok"), "{output:?}");
}

#[test]
fn check_lists_every_problem_with_its_route_and_exits_1() {
    let config = file_with(
        br#"
routes:
  - name: alpha
    path: /a
    upstream: echo
    verify: { scheme: freispace, secret: x }
  - name: alpha
    path: /b
    upstream: echo
    verify: { scheme: freispace, secret: x }
  - name: beta
    path: /c
    upstream: echo
    verify: { scheme: no-such-scheme, secret: x }
  - name: gamma
    path: /d
    upstream: echo
    verify: { scheme: flow, secret: "${HOOKGATE_TEST_UNSET_VARIABLE}" }
  - name: delta
    path: /e
    upstream: echo
    verify: { scheme: barker, secret: "" }
"#,
    );
    let output = Command::new(BIN)
        .args(["check", "--config", path(&config)])
        .env_remove("HOOKGATE_TEST_UNSET_VARIABLE")
        .output()
        .expect("running hookgate");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let report = format!("{}{}", text(&output.stdout), text(&output.stderr));
    let line_with = |needle: &str| {
        report.lines().find(|line| line.contains(needle)).unwrap_or_else(|| panic!("no {needle:?} in:\n{report}"))
    };
    assert!(line_with("duplicate route name").contains("alpha"), "{report}");
    assert!(line_with("no-such-scheme").contains("(beta)"), "{report}");
    assert!(line_with("HOOKGATE_TEST_UNSET_VARIABLE").contains("(gamma)"), "{report}");
    assert!(line_with("empty").contains("(delta)"), "{report}");
    assert!(report.contains("4 problem"), "exactly the four problems: {report}");
}

#[test]
fn schemes_lists_the_four_presets() {
    let output = hookgate(&["schemes"]);
    assert!(output.status.success(), "{output:?}");
    let listing = text(&output.stdout);
    for scheme in ["freshbooks", "freispace", "flow", "barker", "hmac"] {
        assert!(listing.lines().any(|line| line.split_whitespace().next() == Some(scheme)), "{scheme}: {listing}");
    }
}

/// What `hookgate sign` prints verifies at a running gateway, for every preset.
#[tokio::test]
async fn sign_output_is_accepted_for_every_preset() {
    let upstream = Upstream::start().await;
    let yaml = r#"
routes:
  - { name: freshbooks, path: /fb, upstream: "{upstream}", verify: { scheme: freshbooks, secret: fb-key } }
  - { name: freispace, path: /fs, upstream: "{upstream}", verify: { scheme: freispace, secret: fs-key } }
  - { name: flow, path: /flow, upstream: "{upstream}", verify: { scheme: flow, secret: flow-key } }
  - { name: barker, path: /barker, upstream: "{upstream}", verify: { scheme: barker, secret: barker-key } }
"#;
    let gateway = Gateway::start_with(yaml, &upstream).await;
    let json = br#"{"event":"ping","id":42}"#;
    let form = b"name=invoice.create&object_id=1234567&account_id=6BApk&user_id=1";
    let cases: [(&str, &str, &str, &[u8]); 4] = [
        ("freshbooks", "fb-key", "/fb", form),
        ("freispace", "fs-key", "/fs", json),
        ("flow", "flow-key", "/flow", json),
        ("barker", "barker-key", "/barker", json),
    ];
    for (i, (scheme, secret, route_path, body)) in cases.into_iter().enumerate() {
        let body_file = file_with(body);
        let output = hookgate(&["sign", "--scheme", scheme, "--secret", secret, "--body-file", path(&body_file)]);
        assert!(output.status.success(), "{output:?}");
        let signed = headers(&output.stdout);
        assert_eq!(signed.len(), if scheme == "barker" { 2 } else { 1 }, "{scheme}: {signed:?}");
        let reply = send(with_headers(post(gateway.url(route_path), body.to_vec()), signed)).await;
        assert_eq!(reply.status, StatusCode::OK, "{scheme}: {:?}", reply.body);
        assert_eq!(upstream.received()[i].body, body, "{scheme}");
    }

    // Barker with a timestamp given, and the body on standard input.
    let timestamp = format!("{}.250000", hookgate::verify::UnixTime::now().as_secs());
    let mut child = Command::new(BIN)
        .args(["sign", "--scheme", "barker", "--secret", "barker-key", "--timestamp", &timestamp])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("running hookgate");
    child.stdin.take().expect("stdin").write_all(json).expect("writing the body");
    let output = child.wait_with_output().expect("hookgate output");
    let signed = headers(&output.stdout);
    let sent_timestamp = signed.iter().find(|(name, _)| name == "barker_timestamp").map(|(_, v)| v.clone());
    assert_eq!(sent_timestamp, HeaderValue::from_str(&timestamp).ok());
    let reply = send(with_headers(post(gateway.url("/barker"), &json[..]), signed)).await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// The README's "Try it": serve a config with the echo upstream, sign with `--route`, send.
#[tokio::test]
async fn try_it_serve_sign_send_tamper_and_stop() {
    let (public, admin) = (free_port(), free_port());
    let config = file_with(
        format!(
            r#"
listen: 127.0.0.1:{public}
admin_listen: 127.0.0.1:{admin}
shutdown_timeout: 5s
routes:
  - name: freispace
    path: /webhooks/freispace
    upstream: echo
    verify:
      scheme: freispace
      secret: demo-freispace-secret
"#
        )
        .as_bytes(),
    );
    let admin_addr: SocketAddr = ([127, 0, 0, 1], admin).into();
    let gateway = Running::start(&["--config", path(&config)], admin_addr).await;
    let url = format!("http://127.0.0.1:{public}/webhooks/freispace");

    let body = br#"{"event":"ping","id":42}"#;
    let body_file = file_with(body);
    let output =
        hookgate(&["sign", "--config", path(&config), "--route", "freispace", "--body-file", path(&body_file)]);
    assert!(output.status.success(), "{output:?}");
    let signed = headers(&output.stdout);

    let mut request = with_headers(post(&url, &body[..]), signed.clone());
    request.headers_mut().insert("content-type", HeaderValue::from_static("application/json"));
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}\n{}", reply.body, gateway.log());
    assert_eq!(reply.body, &body[..], "the echo upstream answers with the body");
    assert_eq!(reply.header("content-type"), Some("application/json"));

    let mut forged = body.to_vec();
    forged[22] = b'3'; // "id":42 becomes "id":43
    let reply = send(with_headers(post(&url, forged), signed)).await;
    reply.assert_error(StatusCode::FORBIDDEN, "invalid_signature");

    let metrics = send(Request::get(format!("http://{admin_addr}/metrics")).body(Default::default()).expect("request"));
    let scrape = common::Scrape::parse(metrics.await.text());
    let requests = |outcome| scrape.value("hookgate_requests_total", &[("route", "freispace"), ("outcome", outcome)]);
    assert_eq!((requests("forwarded"), requests("invalid_signature")), (1.0, 1.0));

    let status = gateway.terminate().await;
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
}

/// `hookgate run --config` forwarding to `hookgate echo` as a separate upstream.
#[tokio::test]
async fn run_forwards_to_the_echo_subcommand() {
    let echo_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let echo = Running::start(&["echo", "--listen", &echo_addr.to_string()], echo_addr).await;
    let (public, admin) = (free_port(), free_port());
    let config = file_with(
        format!(
            r#"
listen: 127.0.0.1:{public}
admin_listen: 127.0.0.1:{admin}
routes:
  - name: flow
    path_prefix: /webhooks
    upstream: http://{echo_addr}
    verify: {{ scheme: flow, secrets: [old-key, new-key] }}
"#
        )
        .as_bytes(),
    );
    let gateway = Running::start(&["run", "--config", path(&config)], ([127, 0, 0, 1], admin).into()).await;

    let body = common::pseudo_random_bytes(4096, 7);
    let body_file = file_with(&body);
    let output = hookgate(&["sign", "--scheme", "flow", "--secret", "new-key", "--body-file", path(&body_file)]);
    let request = with_headers(
        post(format!("http://127.0.0.1:{public}/webhooks/flow?x=1"), body.clone()),
        headers(&output.stdout),
    );
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK, "{}\n{}", gateway.log(), echo.log());
    assert!(reply.body == body, "the echo answers with exactly the bytes forwarded");

    assert_eq!(gateway.terminate().await.code(), Some(0));
    assert_eq!(echo.terminate().await.code(), Some(0));
}
