//! Connections to one upstream: HTTP/1.1 over TCP or TLS, kept alive and reused. Each route
//! with an `http(s)://` upstream owns a pool; a request takes a connection out and the
//! forwarder puts it back once the answer has been read in full.
//!
//! A connection that waits in the pool for 250 ms gives hyper's buffers and task back
//! (about 30 KiB) and keeps only its socket and TLS session; the next request on it starts a new
//! HTTP/1 exchange on the same socket, with no new TCP or TLS handshake.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
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
use crate::lock;
use crate::watchdog::Watchdog;

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
    /// Which driving task runs it, so that task can find it in the pool.
    id: u64,
}

/// A connection waiting in the pool.
enum Idle {
    /// hyper's task and buffers alive: ready to send.
    Warm(Connection),
    /// hyper's state released after [`COOL_AFTER`]: only the socket (and its TLS session).
    Cold(Io),
}

/// Idle connections with the time each came back, oldest first.
type IdleList = Mutex<Vec<(Idle, Instant)>>;

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
    /// with the connections' driving tasks, which cool their own connection.
    idle: Arc<IdleList>,
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

    /// Sends `request` (origin-form URI, `Host` set) on an idle connection, or a new one; `now`
    /// (the caller's clock reading, for its deadline) tells which idle connections expired.
    /// Returns the answer's head and the connection, to [`Self::put_back`] once the body is read.
    ///
    /// Not an `async fn`, which would hold `request` twice; and connecting and starting a cold
    /// connection are boxed, being rare: this future is part of every request's.
    #[expect(clippy::manual_async_fn, reason = "an async fn would hold `request` twice")]
    pub fn send(
        &self,
        mut request: Request<Full<Body>>,
        now: Instant,
    ) -> impl Future<Output = Result<(Response<Incoming>, Connection), ForwardError>> + Send + '_ {
        async move {
            while let Some(idle) = self.take_idle(now) {
                let mut connection = match idle {
                    Idle::Warm(connection) => connection,
                    Idle::Cold(io) => match Box::pin(self.start(io)).await {
                        Ok(connection) => connection,
                        Err(_) => continue,
                    },
                };
                if connection.sender.ready().await.is_err() {
                    continue;
                }
                match connection.sender.try_send_request(request).await {
                    Ok(response) => return Ok((response, connection)),
                    Err(mut error) => match error.take_message() {
                        // Closed while idle, before anything was written: the request goes on another.
                        Some(unsent) => request = unsent,
                        None => return Err(ForwardError::Unreachable(error_chain(&error.into_error()))),
                    },
                }
            }
            let mut connection = Box::pin(self.connect()).await?;
            let response = connection
                .sender
                .send_request(request)
                .await
                .map_err(|error| ForwardError::Unreachable(error_chain(&error)))?;
            Ok((response, connection))
        }
    }

    /// Returns a connection whose answer was read in full, for the next request.
    pub fn put_back(&self, connection: Connection) {
        if connection.sender.is_closed() {
            return;
        }
        let (mut idle, now) = (lock(&self.idle), Instant::now());
        // The oldest are first: drop the expired ones so connections do not linger unused.
        let expired = idle.iter().take_while(|(_, since)| now.duration_since(*since) >= IDLE_TIMEOUT).count();
        idle.drain(..expired);
        if idle.len() < MAX_IDLE {
            idle.push((Idle::Warm(connection), now));
        }
    }

    fn take_idle(&self, now: Instant) -> Option<Idle> {
        let mut idle = lock(&self.idle);
        while let Some((connection, since)) = idle.pop() {
            // A cold socket the upstream closed is found out by hyper before anything is sent.
            let closed = matches!(&connection, Idle::Warm(warm) if warm.sender.is_closed());
            if now.duration_since(since) < IDLE_TIMEOUT && !closed {
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
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let (sender, connection) = self.http1.handshake(io).await.map_err(|error| {
            ForwardError::Unreachable(format!("HTTP handshake with {}: {}", self.authority, error_chain(&error)))
        })?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(drive(connection, id, Arc::downgrade(&self.idle)));
        Ok(Connection { sender, id })
    }
}

/// Runs a connection until it closes; its errors reach the request that was using it. Once it
/// has waited in the pool for [`COOL_AFTER`], takes it out, lets hyper finish without closing
/// the socket, and puts the bare socket back in the pool.
async fn drive(mut connection: http1::Connection<Io, Full<Body>>, id: u64, pool: Weak<IdleList>) {
    let mut cooled = None;
    let sleep = std::pin::pin!(tokio::time::sleep(COOL_AFTER));
    let mut cool_check = Watchdog::new(sleep);
    loop {
        tokio::select! {
            biased;
            finished = poll_fn(|cx| connection.poll_without_shutdown(cx)) => match finished {
                Ok(()) => break,
                Err(error) => return tracing::debug!(%error, "upstream connection ended with an error"),
            },
            () = &mut cool_check, if cooled.is_none() => {
                // Dropping its sender (in `take_if_cool`) lets hyper finish the connection.
                cooled = pool.upgrade().and_then(|idle| take_if_cool(&idle, id));
                cool_check.reset(tokio::time::Instant::now() + COOL_AFTER);
            }
        }
    }
    let parts = connection.into_parts();
    match (cooled, pool.upgrade()) {
        // Nothing arrived unasked: the socket is as good as it was in hyper's hands.
        (Some(since), Some(idle)) if parts.read_buf.is_empty() => {
            let mut idle = lock(&idle);
            let at = idle.partition_point(|(_, other)| *other <= since);
            idle.insert(at, (Idle::Cold(parts.io), since));
            drop(idle);
            crate::server::heap::note_release();
        }
        // The upstream closed it, or the pool is gone (configuration reloaded): close it.
        _ => {
            let mut io = parts.io;
            let _ = poll_fn(|cx| hyper::rt::Write::poll_shutdown(Pin::new(&mut io), cx)).await;
        }
    }
}

/// Takes connection `id` out of the pool if it has waited there for [`COOL_AFTER`]; returns
/// when it came back.
fn take_if_cool(idle: &IdleList, id: u64) -> Option<Instant> {
    let mut idle = lock(idle);
    let at = idle.iter().position(|(connection, since)| {
        matches!(connection, Idle::Warm(warm) if warm.id == id) && since.elapsed() >= COOL_AFTER
    })?;
    Some(idle.remove(at).1)
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
        let (response, connection) = pool.send(request, Instant::now()).await.expect("an answer");
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.expect("the body").to_bytes();
        assert_eq!(&body[..], b"ok");
        pool.put_back(connection);
    }

    fn kinds(pool: &UpstreamPool) -> Vec<&'static str> {
        lock(&pool.idle).iter().map(|(idle, _)| if matches!(idle, Idle::Warm(_)) { "warm" } else { "cold" }).collect()
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
            exchange(&pool).await;
            assert_eq!(accepted.load(Ordering::SeqCst), 2, "a new connection, and no request lost");
        }
    }
}
