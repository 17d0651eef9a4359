//! Connections to one upstream: HTTP/1.1 over TCP or TLS, kept alive and reused. Each route
//! with an `http(s)://` upstream owns a pool; a request takes a connection out and the
//! forwarder puts it back once the answer has been read in full.

use std::sync::{Arc, Mutex, OnceLock};
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
/// Idle connections kept per upstream; more are closed when they come back.
const MAX_IDLE: usize = 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection that can carry one request at a time.
pub type Sender = SendRequest<Full<Body>>;

/// Keep-alive connections to one `http://` or `https://` authority.
pub struct UpstreamPool {
    authority: Authority,
    /// `Host` of every request sent here: the upstream's authority.
    host: HeaderValue,
    /// For `https://`: the TLS settings and the name the certificate must carry.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    http1: http1::Builder,
    /// Most recently used last: reusing the warmest connection lets the others expire.
    idle: Mutex<Vec<(Sender, Instant)>>,
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
        Ok(Self { authority: authority.clone(), host, tls, http1, idle: Mutex::new(Vec::new()) })
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    pub fn host(&self) -> &HeaderValue {
        &self.host
    }

    /// Sends `request` (origin-form URI, `Host` set) on an idle connection, or a new one.
    /// Returns the answer's head and the connection, to [`Self::put_back`] once the body is read.
    pub async fn send(&self, mut request: Request<Full<Body>>) -> Result<(Response<Incoming>, Sender), ForwardError> {
        while let Some(mut sender) = self.take_idle() {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => return Ok((response, sender)),
                Err(mut error) => match error.take_message() {
                    // Closed while idle, before anything was written: the request goes on another.
                    Some(unsent) => request = unsent,
                    None => return Err(ForwardError::Unreachable(error_chain(&error.into_error()))),
                },
            }
        }
        let mut sender = self.connect().await?;
        let response =
            sender.send_request(request).await.map_err(|error| ForwardError::Unreachable(error_chain(&error)))?;
        Ok((response, sender))
    }

    /// Returns a connection whose answer was read in full, for the next request.
    pub fn put_back(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // The oldest are first: drop the expired ones so connections do not linger unused.
        let expired = idle.iter().take_while(|(_, since)| since.elapsed() >= IDLE_TIMEOUT).count();
        idle.drain(..expired);
        if idle.len() < MAX_IDLE {
            idle.push((sender, Instant::now()));
        }
    }

    fn take_idle(&self) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while let Some((sender, since)) = idle.pop() {
            if since.elapsed() < IDLE_TIMEOUT && !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Sender, ForwardError> {
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
        let handshake_failed = |e: hyper::Error| unreachable("HTTP handshake with", &e);
        match &self.tls {
            None => {
                let (sender, connection) = self.http1.handshake(TokioIo::new(tcp)).await.map_err(handshake_failed)?;
                tokio::spawn(drive(connection));
                Ok(sender)
            }
            Some((connector, name)) => {
                let tls = connector.connect(name.clone(), tcp).await.map_err(|e| unreachable("TLS with", &e))?;
                let (sender, connection) = self.http1.handshake(TokioIo::new(tls)).await.map_err(handshake_failed)?;
                tokio::spawn(drive(connection));
                Ok(sender)
            }
        }
    }
}

/// Runs a connection until it closes; its errors reach the request that was using it.
async fn drive<T>(connection: http1::Connection<T, Full<Body>>)
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    if let Err(error) = connection.await {
        tracing::debug!(%error, "upstream connection ended with an error");
    }
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
