//! The memory bound of issue 4, point 4, measured on the real binary: with the limits at their
//! defaults (`max_concurrent_requests` 256, `max_body_bytes` 1 MiB), a thousand senders each
//! pushing a body at the size limit must not grow the gateway past
//! 256 × 1 MiB + a fixed overhead. The gateway's peak resident set (`VmHWM`) is read from
//! `/proc/<pid>/status`.
//!
//! The upstream (in this test process, so its memory is not counted) holds every request until
//! all thousand senders have either been refused or have their request waiting there: at that
//! moment the gateway holds as many bodies as it ever will.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write as _};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Scrape;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const SENDERS: usize = 1000;
const MIB: u64 = 1024 * 1024;
/// The defaults under test (`Limits::default()` and the default `max_body_bytes`).
const MAX_CONCURRENT_REQUESTS: usize = 256;
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Runtime, allocator, buffers, sockets and everything else that does not scale with bodies.
const FIXED_OVERHEAD: u64 = 64 * MIB;
/// The whole test must finish well within this.
const DEADLINE: Duration = Duration::from_secs(20);
const TOKEN: &str = "bulk-token-0123456789";

/// The default limits, and nothing else: the `limits:` block is left out on purpose.
/// `gitlab` checks a token header rather than hashing the body, so the run measures buffering,
/// not SHA-256 over 256 MiB in a debug build; every scheme buffers the body before verifying.
const CONFIG: &str = r#"
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
routes:
  - name: bulk
    path: /hooks/bulk
    upstream: http://{upstream}
    verify: { scheme: gitlab, secret: bulk-token-0123456789 }
"#;

// ----------------------------------------------------------------------------------------------
// The gateway process

/// A `hookgate` process; killed if the test ends early.
struct Process {
    child: Child,
    public: SocketAddr,
    admin: SocketAddr,
    /// Log lines after the ready line, kept for failure messages.
    log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Process {
    /// Starts the binary on `config` and waits for its `hookgate ready` log line, which names
    /// the addresses it bound.
    fn start(config: &std::path::Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
            .args(["--log-format", "json", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting hookgate");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        {
            let log = log.clone();
            // Drains stderr for the whole run: a full pipe would stall the gateway's logging.
            std::thread::spawn(move || {
                let mut ready = Some(ready_tx);
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(tx) = ready.take_if(|_| line.contains("hookgate ready")) {
                        let _ = tx.send(line.clone());
                    }
                    log.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line);
                }
            });
        }
        let line = ready_rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("hookgate did not log `hookgate ready`: {:?}", log.lock().map(|l| l.clone()))
        });
        let fields: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
        let address = |name: &str| -> SocketAddr {
            fields[name].as_str().and_then(|text| text.parse().ok()).unwrap_or_else(|| panic!("{name} in {line}"))
        };
        Self { public: address("listen"), admin: address("admin_listen"), child, log }
    }

    /// `VmRSS` and `VmHWM` (peak) from `/proc/<pid>/status`, in bytes.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("/proc/<pid>/status");
        let field = |name: &str| -> u64 {
            let line =
                status.lines().find(|line| line.starts_with(name)).unwrap_or_else(|| panic!("{name} in {status}"));
            let kib: u64 = line[name.len()..].trim().trim_end_matches("kB").trim().parse().expect("a number of kB");
            kib * 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        log.iter().rev().take(20).rev().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ----------------------------------------------------------------------------------------------
// The holding upstream

/// Counts arrivals and holds every request until released. Bodies are drained as they arrive
/// and only counted, so this process stays small.
struct HoldingUpstream {
    addr: SocketAddr,
    arrived: watch::Sender<usize>,
    released: watch::Sender<bool>,
    /// Bodies that arrived with exactly `MAX_BODY_BYTES` bytes.
    whole_bodies: Arc<AtomicUsize>,
}

impl HoldingUpstream {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the upstream");
        let addr = listener.local_addr().expect("an address");
        let arrived = watch::Sender::new(0);
        let released = watch::Sender::new(false);
        let whole_bodies = Arc::new(AtomicUsize::new(0));
        let (arrived_tx, released_tx, whole) = (arrived.clone(), released.clone(), whole_bodies.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (arrived, released, whole) = (arrived_tx.clone(), released_tx.clone(), whole.clone());
                let service = service_fn(move |request: Request<Incoming>| {
                    let (arrived, mut released, whole) = (arrived.clone(), released.subscribe(), whole.clone());
                    async move {
                        // Like an app that is stuck: the head is in, the body is left unread
                        // until released, so the gateway cannot finish sending its copy.
                        arrived.send_modify(|n| *n += 1);
                        let _ = released.wait_for(|released| *released).await;
                        let mut body = request.into_body();
                        let mut length = 0;
                        while let Some(Ok(frame)) = body.frame().await {
                            length += frame.data_ref().map_or(0, Bytes::len);
                        }
                        if length == MAX_BODY_BYTES {
                            whole.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(b"held"))))
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Self { addr, arrived, released, whole_bodies }
    }
}

// ----------------------------------------------------------------------------------------------
// The senders

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Status(u16),
    /// The connection was refused or reset before a single byte of answer arrived. This is the
    /// kernel, not the gateway: a burst larger than the listen backlog overflows the accept
    /// queue, and connections whose SYN cookie then fails are reset (see `tests/overload.rs`,
    /// `a_burst_of_senders_fits_in_the_listen_backlog`).
    ResetUnanswered,
}

/// One sender: the head, then the body in 64 KiB writes, while reading the answer.
async fn sender(gateway: SocketAddr, head: Bytes, body: Bytes, finished: Arc<AtomicUsize>) -> Outcome {
    let Ok(stream) = TcpStream::connect(gateway).await else {
        finished.fetch_add(1, Ordering::SeqCst);
        return Outcome::ResetUnanswered;
    };
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        if writer.write_all(&head).await.is_err() {
            return;
        }
        for chunk in body.chunks(64 * 1024) {
            // A refused sender's connection is closed under it: stop writing then.
            if writer.write_all(chunk).await.is_err() {
                return;
            }
        }
        // Keep the write side open until the answer is read (the gateway may read to the end).
        std::future::pending::<()>().await;
    });
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    let outcome = loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]);
            let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
            break Outcome::Status(status);
        }
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) if answer.is_empty() => break Outcome::ResetUnanswered,
            Ok(0) | Err(_) => panic!("the connection ended inside an answer head: {answer:?}"),
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    };
    writing.abort();
    if outcome != Outcome::Status(200) {
        finished.fetch_add(1, Ordering::SeqCst);
    }
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_senders_at_the_body_limit_stay_under_the_memory_bound() {
    let started = Instant::now();
    let upstream = HoldingUpstream::start().await;
    let mut config = tempfile::NamedTempFile::new().expect("a config file");
    config.write_all(CONFIG.replace("{upstream}", &upstream.addr.to_string()).as_bytes()).expect("write the config");
    let gateway = Process::start(config.path());

    // One small request first, so lazily built parts (worker threads, the upstream pool)
    // count as idle, not as load.
    upstream.released.send_replace(true);
    let warm_up = format!(
        "POST /hooks/bulk HTTP/1.1\r\nHost: h\r\nx-gitlab-token: {TOKEN}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    assert_eq!(common::raw_exchange(gateway.public, warm_up.as_bytes()).await.status, 200);
    upstream.released.send_replace(false);
    upstream.arrived.send_replace(0);
    let (idle_rss, _) = gateway.memory();

    let head = Bytes::from(format!(
        "POST /hooks/bulk HTTP/1.1\r\nHost: h\r\nx-gitlab-token: {TOKEN}\r\nContent-Length: {MAX_BODY_BYTES}\r\n\r\n"
    ));
    let body = Bytes::from(vec![b'm'; MAX_BODY_BYTES]);
    let finished = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| tokio::spawn(sender(gateway.public, head.clone(), body.clone(), finished.clone())))
        .collect();

    // Every sender is either refused (finished) or has its request held at the upstream.
    let mut arrived = upstream.arrived.subscribe();
    let all_placed = async {
        loop {
            if *arrived.borrow_and_update() + finished.load(Ordering::SeqCst) >= SENDERS {
                return;
            }
            // Refusals do not notify; a short poll bounds how late we notice them.
            let _ = tokio::time::timeout(Duration::from_millis(20), arrived.changed()).await;
        }
    };
    if tokio::time::timeout(DEADLINE.saturating_sub(started.elapsed()), all_placed).await.is_err() {
        panic!(
            "not every sender was answered or held in time: {} held, {} finished\n{}",
            *upstream.arrived.borrow(),
            finished.load(Ordering::SeqCst),
            gateway.log_tail()
        );
    }
    let held = *upstream.arrived.borrow();
    let (loaded_rss, _) = gateway.memory();
    upstream.released.send_replace(true);

    let mut outcomes = BTreeMap::<Outcome, usize>::new();
    for sender in senders {
        let outcome =
            tokio::time::timeout(Duration::from_secs(10), sender).await.expect("a sender ends").expect("a sender task");
        *outcomes.entry(outcome).or_default() += 1;
    }
    let outcome = |outcome| outcomes.get(&outcome).copied().unwrap_or(0);
    let (rss_after, hwm) = gateway.memory();
    // VmHWM is updated lazily; a sample of VmRSS may be a little above it.
    let peak = hwm.max(loaded_rss).max(rss_after);
    let scrape = {
        let request = b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n";
        let reply = common::raw_exchange(gateway.admin, request).await;
        Scrape::parse(std::str::from_utf8(&reply.body).expect("UTF-8 metrics"))
    };
    let count = |outcome| scrape.value("hookgate_requests_total", &[("route", "bulk"), ("outcome", outcome)]) as usize;
    let (forwarded, overloaded) = (count("forwarded") - 1, count("overloaded")); // less the warm-up

    let mib = |bytes: u64| bytes as f64 / MIB as f64;
    let bound = MAX_CONCURRENT_REQUESTS as u64 * MAX_BODY_BYTES as u64 + FIXED_OVERHEAD;
    eprintln!(
        "memory: idle RSS {:.1} MiB; RSS with every sender placed ({held} held at the upstream) {:.1} MiB; \
         peak {:.1} MiB (bound {:.1} MiB); senders: {} answered 200, {} answered 503, {} reset by the kernel \
         unanswered; the gateway counted {forwarded} forwarded, {overloaded} overloaded; took {:?}",
        mib(idle_rss),
        mib(loaded_rss),
        mib(peak),
        mib(bound),
        outcome(Outcome::Status(200)),
        outcome(Outcome::Status(503)),
        outcome(Outcome::ResetUnanswered),
        started.elapsed(),
    );

    // The run really loaded the gateway: every slot was taken at once, the rest were refused
    // as overloaded (or never got past the kernel), and the bodies show in its memory.
    assert_eq!(held, MAX_CONCURRENT_REQUESTS, "the upstream held one request per slot at once");
    assert_eq!(upstream.whole_bodies.load(Ordering::SeqCst), MAX_CONCURRENT_REQUESTS, "every held body was whole");
    assert_eq!(forwarded, MAX_CONCURRENT_REQUESTS);
    assert_eq!(outcome(Outcome::Status(200)), MAX_CONCURRENT_REQUESTS, "{outcomes:?}");
    assert_eq!(outcome(Outcome::Status(503)), overloaded, "every refusal the gateway counted reached its sender");
    assert!(overloaded > 0, "some senders were refused as overloaded: {outcomes:?}");
    assert_eq!(
        outcome(Outcome::Status(200)) + outcome(Outcome::Status(503)) + outcome(Outcome::ResetUnanswered),
        SENDERS,
        "no other answers: {outcomes:?}"
    );
    // Bodies leave the gateway as they are forwarded, so how many are held at once depends on
    // scheduling: 190-235 MiB over idle on a quiet machine, 125 MiB once under a loaded test run.
    // A quarter of the slots' worth still proves the bodies were in memory.
    assert!(
        peak > idle_rss + (MAX_CONCURRENT_REQUESTS * MAX_BODY_BYTES / 4) as u64,
        "the held bodies show in the peak ({:.1} MiB over an idle {:.1} MiB)",
        mib(peak),
        mib(idle_rss)
    );
    // The bound itself.
    assert!(
        peak <= bound,
        "peak RSS {:.1} MiB is over the bound of {:.1} MiB (idle {:.1} MiB)",
        mib(peak),
        mib(bound),
        mib(idle_rss)
    );
    assert!(started.elapsed() < DEADLINE, "the run took {:?}", started.elapsed());
}
