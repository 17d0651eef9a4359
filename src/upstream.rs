//! Connections to one upstream: HTTP/1.1 over TCP or TLS, kept alive and reused. Each route
//! with an `http(s)://` upstream owns a pool; a request takes a connection out and the
//! forwarder puts it back once the answer has been read in full.
//!
//! No task runs a connection: the request that holds one polls hyper's side of it along with
//! what it waits for ([`Connection::drive`]), so an exchange costs no task wake-ups and no
//! hand-over between tasks. In the pool nobody polls it: an upstream that closed it, or wrote to
//! it unasked, is found out by the next request, which then goes on another connection.
//!
//! A connection that waits in the pool for 250 ms gives hyper's buffers back (about 30 KiB) and
//! keeps only its socket and TLS session; the next request on it starts a new HTTP/1 exchange on
//! the same socket, with no new TCP or TLS handshake. A sweeper task does that while warm
//! connections wait, and ends when none do.

use std::future::poll_fn;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::body::Body;
use crate::forward::{ForwardError, error_chain};

/// A connection idle longer than this is closed rather than reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A connection in the pool this long releases hyper's state: long enough that a busy pool
/// keeps its connections warm, short enough that after a burst the buffers go within a second.
const COOL_AFTER: Duration = Duration::from_millis(250);
/// Idle connections kept per upstream; more are closed when they come back.
const MAX_IDLE: usize = 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection lent to one request; [`UpstreamPool::put_back`] once its answer is read.
pub struct Connection {
    sender: SendRequest<Full<Body>>,
    /// hyper's side: it reads and writes only while polled. `None` once hyper is done with it.
    driver: Driver,
    /// Why hyper ended it (the upstream closed it, or broke the protocol).
    ended: Option<String>,
    /// The waker hyper's side is polled with, and what it wakes.
    nudge: Arc<Nudge>,
    nudge_waker: Waker,
}

/// Wakes the task driving a connection, unless a poll of it is under way: then the wake is only
/// noted and that poll goes round once more. Reading the answer's body wakes hyper's side
/// (it may read on); without this, each such wake would poll the whole task again for nothing.
#[derive(Default)]
struct Nudge {
    task: Mutex<Option<Waker>>,
    polling: AtomicBool,
    woken: AtomicBool,
}

impl std::task::Wake for Nudge {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Both SeqCst, against `poll_along`'s end: one of the two sees the other, so no wake is lost.
        self.woken.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst)
            && let Some(task) = lock_task(self).as_ref()
        {
            task.wake_by_ref();
        }
    }
}

/// Rounds of one poll of a connection: enough for an answer and its body to come through.
const ROUNDS: usize = 4;

impl Connection {
    fn new(sender: SendRequest<Full<Body>>, driver: http1::Connection<Io, Full<Body>>) -> Self {
        // Woken, so that it is polled first thing: nothing is registered to wake it yet.
        let nudge = Arc::new(Nudge { woken: AtomicBool::new(true), ..Nudge::default() });
        let nudge_waker = Waker::from(nudge.clone());
        Self { sender, driver: Some(Box::new(driver)), ended: None, nudge, nudge_waker }
    }

    /// Runs `work`, which waits on this connection (its answer, or its body), and polls the
    /// connection along with it. Fails if hyper ends the connection while `work` still waits.
    pub async fn drive<F: Future>(&mut self, work: F) -> Result<F::Output, ForwardError> {
        let mut work = pin!(work);
        poll_fn(|cx| self.poll_along(cx, |quiet, _| work.as_mut().poll(quiet))).await
    }

    /// Polls hyper's side, then `work`, and again while the one woke the other ([`Nudge`]).
    /// `work` gets a waker that does nothing: only this connection moves it, and it is polled
    /// after the connection every time.
    fn poll_along<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut work: impl FnMut(&mut Context<'_>, &mut SendRequest<Full<Body>>) -> Poll<T>,
    ) -> Poll<Result<T, ForwardError>> {
        {
            let mut task = lock_task(&self.nudge);
            if !task.as_ref().is_some_and(|task| task.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        self.nudge.polling.store(true, Ordering::SeqCst);
        let quiet = &mut Context::from_waker(Waker::noop());
        // What hyper read last time may be all `work` needs (a body read with its head).
        let mut done = work(quiet, &mut self.sender);
        // hyper's side is polled only when something woke it (it has nothing to do otherwise):
        // the task is also polled for its other half, the sender's connection.
        let mut rounds = 0;
        while done.is_pending() && rounds < ROUNDS && self.nudge.woken.swap(false, Ordering::SeqCst) {
            let nudged = &mut Context::from_waker(&self.nudge_waker);
            poll_driver(&mut self.driver, &mut self.ended, nudged);
            done = work(quiet, &mut self.sender);
            rounds += 1;
        }
        self.nudge.polling.store(false, Ordering::SeqCst);
        match done {
            Poll::Ready(done) => Poll::Ready(Ok(done)),
            Poll::Pending => match &self.ended {
                Some(why) => Poll::Ready(Err(ForwardError::Unreachable(format!("upstream connection ended: {why}")))),
                None => {
                    // Woken in the last round, or by another thread just now: poll again.
                    if self.nudge.woken.load(Ordering::SeqCst) {
                        cx.waker().wake_by_ref();
                    }
                    Poll::Pending
                }
            },
        }
    }

    /// Polls hyper's side once with a waker that does nothing: it takes in whatever the upstream
    /// sent while nobody polled (an end, or bytes nobody asked for), and wakes nobody later.
    /// False if the connection has ended.
    fn check(&mut self) -> bool {
        poll_driver(&mut self.driver, &mut self.ended, &mut Context::from_waker(Waker::noop()));
        self.ended.is_none()
    }

    /// Sends `request` once hyper wants one, and waits for the answer's head, driving the
    /// connection all along (the request is handed over within the poll, so that wakes nobody).
    /// On failure, gives the request back if it never left, for another connection.
    async fn exchange(&mut self, request: Request<Full<Body>>) -> Result<Response<Incoming>, NotSent> {
        let mut request = Some(request);
        let mut sending = pin!(None);
        let outcome = poll_fn(|cx| {
            self.poll_along(cx, |quiet, sender| {
                if sending.is_none() {
                    if let Err(error) = ready!(sender.poll_ready(quiet)) {
                        return Poll::Ready(Err((error_chain(&error), None)));
                    }
                    let Some(request) = request.take() else { return Poll::Pending };
                    sending.set(Some(sender.try_send_request(request)));
                }
                let Some(sent) = sending.as_mut().as_pin_mut() else { return Poll::Pending };
                sent.poll(quiet).map_err(|mut error| {
                    let unsent = error.take_message();
                    (error_chain(&error.into_error()), unsent)
                })
            })
        })
        .await;
        match outcome {
            Ok(Ok(response)) => Ok(response),
            Ok(Err((why, unsent))) => Err((ForwardError::Unreachable(why), unsent.or(request))),
            Err(ended) => Err((ended, request)),
        }
    }
}

/// Why a request got no answer, and the request itself if it never left.
type NotSent = (ForwardError, Option<Request<Full<Body>>>);

type Driver = Option<Box<http1::Connection<Io, Full<Body>>>>;

/// Polls hyper's side of a connection; notes why, if that ends it.
fn poll_driver(driver: &mut Driver, ended: &mut Option<String>, cx: &mut Context<'_>) {
    if let Some(polled) = driver
        && let Poll::Ready(end) = polled.poll_without_shutdown(cx)
    {
        // Dropping hyper's state hands back a request it never took, for another connection.
        *driver = None;
        *ended = Some(end.map_or_else(|error| error_chain(&error), |()| "closed".to_owned()));
    }
}

/// A connection waiting in the pool.
enum Idle {
    /// hyper's buffers alive: ready to send.
    Warm(Connection),
    /// hyper's state released after [`COOL_AFTER`]: only the socket (and its TLS session).
    Cold(Io),
}

/// Idle connections with the time each came back, oldest first.
#[derive(Default)]
struct IdleList {
    connections: Vec<(Idle, Instant)>,
    /// A sweeper task is cooling warm connections.
    sweeping: bool,
}

type SharedIdle = Mutex<IdleList>;

/// An upstream socket, plain or TLS, under one type so a cold one can be started again.
trait Transport: hyper::rt::Read + hyper::rt::Write + Unpin + Send {}

impl<T: hyper::rt::Read + hyper::rt::Write + Unpin + Send> Transport for T {}

type Io = Box<dyn Transport>;

/// Keep-alive connections to one `http://` or `https://` authority.
pub struct UpstreamPool {
    authority: Authority,
    /// `Host` of every request sent here: the upstream's authority.
    host: HeaderValue,
    /// For `https://`: the TLS settings and the name the certificate must carry.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    http1: http1::Builder,
    /// Most recently used last: reusing the warmest connection lets the others expire. Shared
    /// with the sweeper, which cools the connections that wait.
    idle: Arc<SharedIdle>,
}

impl std::fmt::Debug for UpstreamPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPool").field("authority", &self.authority).finish_non_exhaustive()
    }
}

impl UpstreamPool {
    /// A pool for `scheme://authority`; `https://` uses `tls`, or the webpki roots when `None`.
    /// With `preserve_header_case`, header names go out in the case the sender wrote them.
    pub fn new(
        scheme: &Scheme,
        authority: &Authority,
        tls: Option<rustls::ClientConfig>,
        preserve_header_case: bool,
    ) -> Result<Self, String> {
        let host = HeaderValue::from_str(authority.as_str()).map_err(|e| e.to_string())?;
        let tls = match *scheme == Scheme::HTTPS {
            true => {
                let config = match tls {
                    Some(config) => Arc::new(with_http1_alpn(config)),
                    None => default_tls()?,
                };
                let name = ServerName::try_from(authority.host().trim_matches(['[', ']']).to_owned())
                    .map_err(|e| format!("{}: not a TLS server name: {e}", authority.host()))?;
                Some((TlsConnector::from(config), name))
            }
            false => None,
        };
        let mut http1 = http1::Builder::new();
        http1.preserve_header_case(preserve_header_case);
        Ok(Self { authority: authority.clone(), host, tls, http1, idle: Arc::default() })
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    pub fn host(&self) -> &HeaderValue {
        &self.host
    }

    /// Sends `request` (origin-form URI, `Host` set) on an idle connection, or a new one.
    /// Returns the answer's head and the connection, whose body the caller reads with
    /// [`Connection::drive`] and then [`Self::put_back`].
    ///
    /// Not an `async fn`, which would hold `request` twice; and connecting and starting a cold
    /// connection are boxed, being rare: this future is part of every request's.
    #[expect(clippy::manual_async_fn, reason = "an async fn would hold `request` twice")]
    pub fn send(
        &self,
        mut request: Request<Full<Body>>,
    ) -> impl Future<Output = Result<(Response<Incoming>, Connection), ForwardError>> + Send + '_ {
        async move {
            while let Some(idle) = self.take_idle() {
                let mut connection = match idle {
                    Idle::Warm(connection) => connection,
                    Idle::Cold(io) => match Box::pin(self.start(io)).await {
                        Ok(connection) => connection,
                        Err(_) => continue,
                    },
                };
                match connection.exchange(request).await {
                    Ok(response) => return Ok((response, connection)),
                    // Closed while idle, before anything was written: the request goes on another.
                    Err((_, Some(unsent))) => request = unsent,
                    Err((error, None)) => return Err(error),
                }
            }
            let mut connection = Box::pin(self.connect()).await?;
            let response = connection.exchange(request).await.map_err(|(error, _)| error)?;
            Ok((response, connection))
        }
    }

    /// Returns a connection whose answer was read in full, for the next request.
    pub fn put_back(&self, connection: Connection) {
        if connection.ended.is_some() {
            return;
        }
        // Whatever hyper's side is woken for while it waits here (the upstream closing it,
        // or the next request sent on it), it wakes nobody: the request's task is done with it.
        *lock_task(&connection.nudge) = None;
        // And the next request polls it first thing, whatever it was woken for meanwhile.
        connection.nudge.woken.store(true, Ordering::SeqCst);
        let now = Instant::now();
        let mut idle = lock(&self.idle);
        // The oldest are first: drop the expired ones so connections do not linger unused.
        let expired =
            idle.connections.iter().take_while(|(_, since)| now.duration_since(*since) >= IDLE_TIMEOUT).count();
        idle.connections.drain(..expired);
        if idle.connections.len() < MAX_IDLE {
            idle.connections.push((Idle::Warm(connection), now));
        }
        if !std::mem::replace(&mut idle.sweeping, true) {
            tokio::spawn(sweep(Arc::downgrade(&self.idle)));
        }
    }

    fn take_idle(&self) -> Option<Idle> {
        let mut idle = lock(&self.idle);
        while let Some((connection, since)) = idle.connections.pop() {
            if since.elapsed() < IDLE_TIMEOUT {
                return Some(connection);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Connection, ForwardError> {
        let unreachable = |what: &str, error: &dyn std::error::Error| {
            ForwardError::Unreachable(format!("{what} {}: {}", self.authority, error_chain(error)))
        };
        let port = self.authority.port_u16().unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let host = self.authority.host().trim_matches(['[', ']']);
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host, port)))
            .await
            .map_err(|_| ForwardError::Unreachable(format!("connecting to {}: timed out", self.authority)))?
            .map_err(|e| unreachable("connecting to", &e))?;
        let _ = tcp.set_nodelay(true);
        let io: Io = match &self.tls {
            None => Box::new(TokioIo::new(tcp)),
            Some((connector, name)) => Box::new(TokioIo::new(
                connector.connect(name.clone(), tcp).await.map_err(|e| unreachable("TLS with", &e))?,
            )),
        };
        self.start(io).await
    }

    /// Starts HTTP/1 on a connected socket (no I/O: hyper only sets up its state).
    async fn start(&self, io: Io) -> Result<Connection, ForwardError> {
        let (sender, driver) = self.http1.handshake(io).await.map_err(|error| {
            ForwardError::Unreachable(format!("HTTP handshake with {}: {}", self.authority, error_chain(&error)))
        })?;
        Ok(Connection::new(sender, driver))
    }
}

/// Every [`COOL_AFTER`], while warm connections wait in the pool: each that has waited that long
/// gives hyper's state back and stays as a bare socket, unless the upstream closed it or sent
/// something unasked meanwhile (then it is closed). Ends when no warm connection is left, or
/// the pool is gone (configuration reloaded).
async fn sweep(pool: Weak<SharedIdle>) {
    loop {
        tokio::time::sleep(COOL_AFTER).await;
        let Some(idle) = pool.upgrade() else { return };
        let mut idle = lock(&idle);
        let now = Instant::now();
        let mut released = false;
        let mut kept = Vec::with_capacity(idle.connections.len());
        for (connection, since) in idle.connections.drain(..) {
            match connection {
                Idle::Warm(mut warm) if now.duration_since(since) >= COOL_AFTER => {
                    if let Some(io) = warm.check().then(|| warm.cool()).flatten() {
                        kept.push((Idle::Cold(io), since));
                        released = true;
                    }
                }
                other => kept.push((other, since)),
            }
        }
        idle.connections = kept;
        if released {
            crate::server::heap::note_release();
        }
        if !idle.connections.iter().any(|(connection, _)| matches!(connection, Idle::Warm(_))) {
            idle.sweeping = false;
            return;
        }
    }
}

impl Connection {
    /// hyper's state given back, the socket kept: `None` if hyper holds bytes nobody asked for.
    fn cool(self) -> Option<Io> {
        drop(self.sender);
        let parts = self.driver?.into_parts();
        parts.read_buf.is_empty().then_some(parts.io)
    }
}

fn lock_task(nudge: &Nudge) -> MutexGuard<'_, Option<Waker>> {
    nudge.task.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn lock(idle: &SharedIdle) -> MutexGuard<'_, IdleList> {
    idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The TLS settings of `https://` upstreams without `upstream_tls:`: the webpki roots, made once.
fn default_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    static DEFAULT: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    DEFAULT
        .get_or_init(|| crate::tls::UpstreamTls::default().client_config().map(|c| Arc::new(with_http1_alpn(c))))
        .clone()
}

/// Upstreams are spoken to in HTTP/1.1; say so in ALPN, for servers that require it.
fn with_http1_alpn(mut config: rustls::ClientConfig) -> rustls::ClientConfig {
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// What the test upstream does after answering the first request.
    #[derive(Clone, Copy)]
    enum Then {
        KeepAnswering,
        /// Closes the connection once the test says so.
        Close,
        /// Sends bytes nobody asked for once the test says so.
        Babble,
    }

    /// An upstream that answers `200 ok` to every request and counts its connections.
    async fn upstream(then: Then) -> (UpstreamPool, Arc<std::sync::atomic::AtomicUsize>, Arc<tokio::sync::Notify>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let authority: Authority = listener.local_addr().expect("address").to_string().parse().expect("authority");
        let (accepted, act) = (Arc::new(std::sync::atomic::AtomicUsize::new(0)), Arc::new(tokio::sync::Notify::new()));
        let (counter, signal) = (accepted.clone(), act.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let signal = signal.clone();
                tokio::spawn(async move {
                    let mut buffer = [0; 4096];
                    let mut answered = false;
                    loop {
                        tokio::select! {
                            read = socket.read(&mut buffer) => match read {
                                Ok(0) | Err(_) => return,
                                // Each test request is a head and a 2-byte body, in one segment.
                                Ok(_) => {
                                    answered = true;
                                    let _ = socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
                                }
                            },
                            () = signal.notified(), if answered => match then {
                                Then::KeepAnswering => {}
                                Then::Close => return,
                                Then::Babble => { let _ = socket.write_all(b"HTTP/1.1 200 OK\r\n").await; }
                            },
                        }
                    }
                });
            }
        });
        let pool = UpstreamPool::new(&Scheme::HTTP, &authority, None, false).expect("pool");
        (pool, accepted, act)
    }

    /// Sends one request, reads the answer, returns the connection to the pool.
    async fn exchange(pool: &UpstreamPool) {
        let request = Request::post("/hook").header("host", "u").body(Full::new(Body::from("hi"))).expect("request");
        let (response, mut connection) = pool.send(request).await.expect("an answer");
        assert_eq!(response.status(), 200);
        let body =
            connection.drive(response.into_body().collect()).await.expect("driven").expect("the body").to_bytes();
        assert_eq!(&body[..], b"ok");
        pool.put_back(connection);
    }

    fn kinds(pool: &UpstreamPool) -> Vec<&'static str> {
        lock(&pool.idle)
            .connections
            .iter()
            .map(|(idle, _)| if matches!(idle, Idle::Warm(_)) { "warm" } else { "cold" })
            .collect()
    }

    /// Long enough for the driving task's check to have run once past [`COOL_AFTER`].
    const COOLED: Duration = Duration::from_millis(2 * COOL_AFTER.as_millis() as u64 + 200);

    #[tokio::test]
    async fn an_idle_connection_gives_its_state_back_and_is_reused_on_the_same_socket() {
        let (pool, accepted, _) = upstream(Then::KeepAnswering).await;
        exchange(&pool).await;
        assert_eq!(kinds(&pool), ["warm"], "warm right after its answer");
        tokio::time::sleep(COOLED).await;
        assert_eq!(kinds(&pool), ["cold"], "cooled after waiting in the pool");
        exchange(&pool).await;
        exchange(&pool).await;
        assert_eq!(kinds(&pool), ["warm"]);
        assert_eq!(accepted.load(Ordering::SeqCst), 1, "one socket for every request");
    }

    #[tokio::test]
    async fn a_cold_connection_the_upstream_closed_or_wrote_to_is_not_used() {
        for then in [Then::Close, Then::Babble] {
            let (pool, accepted, act) = upstream(then).await;
            exchange(&pool).await;
            tokio::time::sleep(COOLED).await;
            assert_eq!(kinds(&pool), ["cold"]);
            act.notify_one();
            tokio::time::sleep(Duration::from_millis(100)).await;
            exchange(&pool).await;
            assert_eq!(accepted.load(Ordering::SeqCst), 2, "a new connection, and no request lost");
        }
    }

    #[tokio::test]
    async fn a_busy_connection_stays_warm() {
        let (pool, accepted, _) = upstream(Then::KeepAnswering).await;
        let until = Instant::now() + COOLED;
        while Instant::now() < until {
            exchange(&pool).await;
            tokio::time::sleep(COOL_AFTER / 10).await;
            assert_eq!(kinds(&pool), ["warm"]);
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_warm_connection_the_upstream_closed_or_wrote_to_is_not_used() {
        for then in [Then::Close, Then::Babble] {
            let (pool, accepted, act) = upstream(then).await;
            exchange(&pool).await;
            act.notify_one();
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(kinds(&pool), ["warm"], "nobody polls it in the pool");
            exchange(&pool).await;
            assert_eq!(accepted.load(Ordering::SeqCst), 2, "a new connection, and no request lost");
        }
    }

    /// The connection is driven by the request alone: an answer whose head and body come in
    /// pieces, apart in time, still comes through whole, and the connection is reused after.
    #[tokio::test]
    async fn an_answer_in_pieces_is_read_whole_by_the_request_driving_its_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let authority: Authority = listener.local_addr().expect("address").to_string().parse().expect("authority");
        let body: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let sent = body.clone();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buffer = [0; 4096];
            for _ in 0..2 {
                let _ = socket.read(&mut buffer).await.expect("a request");
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", sent.len());
                socket.write_all(head.as_bytes()).await.expect("head");
                for piece in sent.chunks(300_000) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    socket.write_all(piece).await.expect("a piece");
                }
            }
        });
        let pool = UpstreamPool::new(&Scheme::HTTP, &authority, None, false).expect("pool");
        // The upstream takes one connection only: a second would wait forever.
        let both = async {
            for _ in 0..2 {
                let request =
                    Request::post("/hook").header("host", "u").body(Full::new(Body::from("hi"))).expect("request");
                let (response, mut connection) = pool.send(request).await.expect("an answer");
                let received =
                    connection.drive(response.into_body().collect()).await.expect("driven").expect("the body");
                assert!(received.to_bytes() == body, "the body as sent");
                pool.put_back(connection);
            }
        };
        tokio::time::timeout(Duration::from_secs(10), both).await.expect("both answers on the one connection");
    }
}
