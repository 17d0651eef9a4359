//! Listeners and connections: bind, accept, one task per connection (HTTP/1.1 and h2c on the
//! same port), and a graceful stop that lets in-flight requests finish within a bound.
//!
//! Each connection's protocol is decided before hyper sees it (the first bytes on plain TCP,
//! ALPN under TLS), so a connection holds the state of one protocol only.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::admin;

pub(crate) mod heap;
mod idle;
use crate::config::Config;
use crate::reload::{ListenerSettings, Reloader};
use crate::tls::ReloadingCert;
use arc_swap::ArcSwap;

use crate::handler::{self, AppState, Downstream, EnrolmentLimiter, Snapshot};
use crate::metrics::Metrics;

/// A gateway whose listeners are bound (so their addresses are known) but not yet serving.
pub struct Gateway {
    public: TcpListener,
    admin: TcpListener,
    state: Arc<AppState>,
    ready: Arc<AtomicBool>,
    shutdown_timeout: Duration,
    /// As configured, to spot changes on reload.
    listeners: ListenerSettings,
    /// The listener's certificate, when it terminates TLS.
    tls: Option<Arc<ReloadingCert>>,
}

impl Gateway {
    /// Binds the public and admin listeners of `config`.
    pub async fn bind(config: Config) -> std::io::Result<Self> {
        let tls = match &config.tls {
            Some(files) => {
                Some(Arc::new(ReloadingCert::load(&files.cert_file, &files.key_file).map_err(std::io::Error::other)?))
            }
            None => None,
        };
        let public = listen(config.listen)?;
        let admin = listen(config.admin_listen)?;
        let metrics = Metrics::new();
        let shutdown_timeout = config.shutdown_timeout;
        let limits = config.limits;
        let listeners = ListenerSettings::of(&config);
        metrics.record_startup(crate::verify::UnixTime::now().as_nanos() as f64 / 1e9);
        let state = AppState {
            snapshot: ArcSwap::from_pointee(Snapshot::new(config, &metrics)),
            metrics,
            enrolment: EnrolmentLimiter::default(),
            request_slots: crate::slots::Slots::new(limits.max_concurrent_requests),
            limits,
        };
        Ok(Self {
            public,
            admin,
            state: Arc::new(state),
            ready: Arc::new(AtomicBool::new(false)),
            shutdown_timeout,
            listeners,
            tls,
        })
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public.local_addr().expect("a bound listener has an address")
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr().expect("a bound listener has an address")
    }

    /// A handle that reloads this gateway's routes from `path` (SIGHUP, file changes, tests).
    pub fn reloader(&self, path: PathBuf) -> Reloader {
        Reloader::new(self.state.clone(), path, self.listeners)
    }

    /// Serves until `shutdown` completes; then reports not-ready, stops accepting, and waits up
    /// to `shutdown_timeout` for in-flight requests. Connections still open after that are
    /// closed. The admin listener answers (`/readyz` 503) until the drain is over.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        let builder = Protocols::new(&self.state.limits, self.listeners.preserve_header_case);
        let first_request_timeout = self.state.limits.header_read_timeout;
        let (hard_stop, hard_stopped) = watch::channel(false);
        self.ready.store(true, Ordering::SeqCst);
        tracing::info!(listen = %self.public_addr(), admin_listen = %self.admin_addr(),
            routes = self.state.snapshot.load().routes.routes().len(), "hookgate ready");

        let admin_connections = Drain::new();
        let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin = {
            let (state, ready, builder, hard_stopped) =
                (self.state.clone(), self.ready.clone(), builder.clone(), hard_stopped.clone());
            tokio::spawn(async move {
                accept_until(&self.admin, async { drop(admin_stopped.await) }, |stream, _| {
                    let (state, ready) = (state.clone(), ready.clone());
                    let service = service_fn(move |request: Request<Incoming>| {
                        let response = admin::respond(&request, &state.metrics, ready.load(Ordering::SeqCst));
                        std::future::ready(Ok::<_, Infallible>(response))
                    });
                    serve_connection(
                        &builder,
                        &admin_connections,
                        stream,
                        service,
                        hard_stopped.clone(),
                        first_request_timeout,
                    );
                })
                .await;
                admin_connections
            })
        };

        let acceptor = match &self.tls {
            Some(cert) => {
                tokio::spawn(watch_certificate(cert.clone(), hard_stopped.clone()));
                let config = cert.server_config().expect("the certificate was checked when the config loaded");
                Some(TlsAcceptor::from(config))
            }
            None => None,
        };
        let handshake_timeout = self.state.limits.header_read_timeout;
        let trimmer = tokio::spawn(heap::return_released_memory());
        let public_connections = Drain::new();
        accept_until(&self.public, shutdown, |stream, peer| {
            let state = self.state.clone();
            let proto = if acceptor.is_some() { "https" } else { "http" };
            let downstream = Downstream::new(peer, proto);
            // Not boxed here: `idle` keeps one box per serving connection for it.
            let service = service_fn(move |request: Request<Incoming>| {
                handler::handle(state.clone(), request, downstream.clone())
            });
            match &acceptor {
                None => serve_connection(
                    &builder,
                    &public_connections,
                    stream,
                    service,
                    hard_stopped.clone(),
                    handshake_timeout,
                ),
                Some(acceptor) => {
                    // The handshake runs in the connection's own task, bounded like a request head.
                    let (acceptor, builder, hard_stopped) = (acceptor.clone(), builder.clone(), hard_stopped.clone());
                    let draining = public_connections.watcher();
                    tokio::spawn(async move {
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => {
                                // No ALPN means HTTP/1.1 (RFC 7301): TLS clients offer h2 by ALPN.
                                let protocol = match stream.get_ref().1.alpn_protocol() {
                                    Some(b"h2") => Protocol::Http2,
                                    _ => Protocol::Http1,
                                };
                                run_connection(
                                    &builder,
                                    draining,
                                    stream,
                                    protocol,
                                    service,
                                    hard_stopped,
                                    handshake_timeout,
                                )
                                .await
                            }
                            Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
            }
        })
        .await;

        self.ready.store(false, Ordering::SeqCst);
        drop(self.public);
        tracing::info!(timeout = ?self.shutdown_timeout, "shutting down: no new connections, draining in-flight requests");
        if tokio::time::timeout(self.shutdown_timeout, public_connections.start()).await.is_err() {
            tracing::warn!("drain timed out; closing the remaining connections");
        }
        let _ = admin_stop.send(());
        if let Ok(admin_connections) = admin.await {
            let _ = tokio::time::timeout(Duration::from_secs(1), admin_connections.start()).await;
        }
        trimmer.abort();
        let _ = hard_stop.send(true);
        tracing::info!("stopped");
    }
}

/// Serves the built-in echo upstream on `listener` until `shutdown` completes.
pub async fn serve_echo(listener: TcpListener, shutdown: impl Future<Output = ()>) {
    let connections = Drain::new();
    let limits = crate::config::Limits::default();
    let builder = Protocols::new(&limits, false);
    let (hard_stop, hard_stopped) = watch::channel(false);
    accept_until(&listener, shutdown, |stream, _| {
        let service = service_fn(|request: Request<Incoming>| {
            Box::pin(async move {
                use http_body_util::BodyExt;
                let (parts, body) = request.into_parts();
                let response = match body.collect().await {
                    Ok(body) => crate::forward::echo(&parts.headers, body.to_bytes()),
                    Err(_) => Response::builder().status(400).body(Default::default()).expect("static response"),
                };
                Ok::<_, Infallible>(response)
            })
        });
        serve_connection(&builder, &connections, stream, service, hard_stopped.clone(), limits.header_read_timeout);
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(5), connections.start()).await;
    let _ = hard_stop.send(true);
}

/// Accepts connections on `listener` and hands each to `serve` until `stop` completes. A failed
/// accept (out of file descriptors, say) pauses briefly, so the loop neither spins nor dies.
async fn accept_until(
    listener: &TcpListener,
    stop: impl Future<Output = ()>,
    mut serve: impl FnMut(TcpStream, SocketAddr),
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Answers go out as soon as they are written, on every listener.
                    let _ = stream.set_nodelay(true);
                    serve(stream, peer)
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut stop => return,
        }
    }
}

/// What a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// The HTTP/2 connection preface (RFC 9113 3.4), with which h2c with prior knowledge begins.
const HTTP2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Looks at (without consuming) the first bytes of a plain connection: the HTTP/2 preface, or
/// anything else for HTTP/1. `None` if the peer closed first. The caller bounds the wait.
async fn sniff_protocol(stream: &TcpStream) -> std::io::Result<Option<Protocol>> {
    let mut first = [0u8; HTTP2_PREFACE.len()];
    loop {
        let seen = stream.peek(&mut first).await?;
        if seen == 0 {
            return Ok(None);
        }
        if first[..seen] != HTTP2_PREFACE[..seen] {
            return Ok(Some(Protocol::Http1));
        }
        if seen == HTTP2_PREFACE.len() {
            return Ok(Some(Protocol::Http2));
        }
        // Part of a preface: peek would return the same bytes at once, so wait for the rest.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The connection settings of both protocols, from the configured limits.
struct Protocols {
    /// HTTP/1 on plain TCP. Its request heads are timed by [`idle`]'s one timer per connection,
    /// not by hyper's header timer (a boxed timer started and stopped for every request).
    http1: http1::Builder,
    /// HTTP/1 under TLS, timed by hyper's header timer.
    http1_tls: http1::Builder,
    /// How long a sender may take to send a request head, counted from the end of its previous
    /// answer: also how long an HTTP/1 connection may wait idle for its next request.
    header_read_timeout: Duration,
    http2: http2::Builder<TokioExecutor>,
}

impl Protocols {
    /// Shared: each connection task holds a pointer, not a copy of both builders.
    fn new(limits: &crate::config::Limits, preserve_header_case: bool) -> Arc<Self> {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_header_size(limits.max_header_bytes)
            // Also caps each read of a body; the head limit is `max_header_size`, exact.
            .max_buf_size(limits.max_header_bytes)
            .max_headers(limits.max_headers)
            // Off by default: keeping the sender's header-name case costs a map per request.
            .preserve_header_case(preserve_header_case);
        let mut http1_tls = http1.clone();
        // A sender that has not finished its request head in time is cut off (slowloris); hyper
        // also runs this timer while a keep-alive connection waits idle for its next request.
        http1_tls.header_read_timeout(limits.header_read_timeout);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            // Dead peers are found by pings, so an idle HTTP/2 connection cannot be held forever.
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10));
        Arc::new(Self { http1, http1_tls, header_read_timeout: limits.header_read_timeout, http2 })
    }
}

/// Binds `addr` with a listen backlog of 1024 (tokio's default is 128: a burst of senders past
/// that is reset by the kernel before the gateway can even answer 503).
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Serves one plain connection in a task of its own, watched by `drain`.
fn serve_connection<S: ConnectionService + Clone + Unpin>(
    builder: &Arc<Protocols>,
    drain: &Drain,
    stream: TcpStream,
    service: S,
    hard_stopped: watch::Receiver<bool>,
    first_request_timeout: Duration,
) {
    let (builder, draining) = (builder.clone(), drain.watcher());
    tokio::spawn(async move {
        let protocol = match tokio::time::timeout(first_request_timeout, sniff_protocol(&stream)).await {
            Ok(Ok(Some(protocol))) => protocol,
            Ok(Ok(None) | Err(_)) => return,
            Err(_) => return tracing::debug!("no request within header_read_timeout; closing the connection"),
        };
        match protocol {
            Protocol::Http1 => {
                idle::serve(idle::Connection { socket: stream, service, protocols: builder, draining, hard_stopped })
                    .await
            }
            // Boxed: an HTTP/2 connection's state is kilobytes, and would size every task.
            Protocol::Http2 => {
                Box::pin(run_connection(
                    &builder,
                    draining,
                    stream,
                    protocol,
                    service,
                    hard_stopped,
                    first_request_timeout,
                ))
                .await
            }
        }
    });
}

/// Tells connections to finish the request they are on and close, and waits until they have.
struct Drain(watch::Sender<bool>);

impl Drain {
    fn new() -> Self {
        Self(watch::channel(false).0)
    }

    /// For a connection: changes to `true` when the drain starts; dropped when it closes.
    fn watcher(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }

    /// Starts the drain; completes once every connection has closed.
    async fn start(&self) {
        self.0.send_replace(true);
        self.0.closed().await
    }
}

/// A hyper service a connection can run; the bounds hyper needs, written once.
pub trait ConnectionService:
    hyper::service::Service<
        Request<Incoming>,
        Response = Response<Self::ResponseBody>,
        Error = Infallible,
        Future: Send + 'static,
    > + Send
    + 'static
{
    type ResponseBody: Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static;
}

impl<S, B> ConnectionService for S
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type ResponseBody = B;
}

/// A byte stream a connection can be served over: TCP, or TLS over TCP.
pub trait Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Connection for T {}

async fn run_connection<I, S>(
    builder: &Protocols,
    draining: watch::Receiver<bool>,
    stream: I,
    protocol: Protocol,
    service: S,
    hard_stopped: watch::Receiver<bool>,
    first_request_timeout: Duration,
) where
    I: Connection,
    S: ConnectionService,
{
    let io = TokioIo::new(stream);
    match protocol {
        // hyper's header timer bounds the first request head as it does every later one.
        Protocol::Http1 => {
            let connection = std::pin::pin!(builder.http1_tls.serve_connection(io, service));
            drive(connection, |c| c.graceful_shutdown(), std::future::pending(), draining, hard_stopped).await
        }
        // HTTP/2 has no such timer: a peer that sends the preface and no request is cut off here.
        Protocol::Http2 => {
            let first_request = Arc::new(tokio::sync::Notify::new());
            let started = first_request.clone();
            let service = service_fn(move |request| {
                started.notify_one();
                service.call(request)
            });
            let deadline = async {
                tokio::select! {
                    () = first_request.notified() => std::future::pending::<()>().await,
                    () = tokio::time::sleep(first_request_timeout) => {}
                }
            };
            let connection = std::pin::pin!(builder.http2.serve_connection(io, service));
            drive(connection, |c| c.graceful_shutdown(), deadline, draining, hard_stopped).await
        }
    }
}

/// Runs `connection` until it ends, `deadline` passes, or the drain is over (then dropping it
/// closes the socket). When the drain starts, `graceful_shutdown` lets the request in flight
/// finish.
async fn drive<C: Future<Output = Result<(), E>>, E: std::fmt::Display>(
    mut connection: Pin<&mut C>,
    graceful_shutdown: impl Fn(Pin<&mut C>),
    deadline: impl Future<Output = ()>,
    mut draining: watch::Receiver<bool>,
    mut hard_stopped: watch::Receiver<bool>,
) {
    tokio::pin!(deadline);
    let mut drain_started = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => return if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            },
            _ = draining.wait_for(|drain| *drain), if !drain_started => {
                drain_started = true;
                graceful_shutdown(connection.as_mut());
            }
            () = &mut deadline => return tracing::debug!("no request within header_read_timeout; closing the connection"),
            _ = hard_stopped.wait_for(|stop| *stop) => return,
        }
    }
}

/// Re-reads the listener's certificate files every [`crate::reload::POLL_INTERVAL`], so a
/// renewed certificate (cert-manager, certbot) is served to new connections without a restart.
async fn watch_certificate(cert: Arc<ReloadingCert>, mut hard_stopped: watch::Receiver<bool>) {
    let mut poll = tokio::time::interval(crate::reload::POLL_INTERVAL);
    loop {
        tokio::select! {
            _ = poll.tick() => match cert.reload_if_changed() {
                Ok(true) => tracing::info!("TLS certificate reloaded"),
                Ok(false) => {}
                Err(error) => tracing::error!(%error, "TLS certificate reload refused; the previous certificate keeps serving"),
            },
            _ = hard_stopped.wait_for(|stop| *stop) => return,
        }
    }
}
