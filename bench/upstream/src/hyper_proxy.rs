//! The floor of hookgate's stack, for the load benchmark: a reverse proxy made of nothing but
//! hyper's HTTP/1 server and client on one tokio `current_thread` runtime, as hookgate is built.
//! Each downstream connection gets its own upstream connection (no pool, no routing, no
//! verification, no metrics, no logs); each request body is collected, as a verifying gateway
//! must, and sent on with its head unchanged; the answer is collected and relayed.
//!
//! With `--verify-github SECRET` it also checks GitHub's `X-Hub-Signature-256` (HMAC-SHA256 of
//! the body, hex, compared in constant time) and answers 403 without forwarding when it does not
//! match: the least a verifying gateway on this stack can do, and so the floor for hookgate's
//! 1 KiB target against nginx.
//!
//! ```sh
//! bench-hyper-proxy 127.0.0.1:18182 127.0.0.1:18180
//! bench-hyper-proxy --verify-github 'the secret' 127.0.0.1:18183 127.0.0.1:18180
//! bench-hyper-proxy --config hookgate.yaml   # its `listen` and first `upstream`, so that
//!                                            # bench/profile.py can run it in hookgate's place
//! ```

use std::convert::Infallible;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

type Upstream = Arc<Mutex<SendRequest<Full<Bytes>>>>;
/// HMAC-SHA256 with the secret already taken in, cloned per request.
type Verifier = Option<Hmac<sha2::Sha256>>;

/// Whether `signature` (`sha256=<hex>`) is the HMAC of `body`.
fn signed(verifier: &Hmac<sha2::Sha256>, signature: Option<&[u8]>, body: &[u8]) -> bool {
    let Some(hex_mac) = signature.and_then(|s| s.strip_prefix(b"sha256=")) else { return false };
    let mut presented = [0u8; 32];
    if hex::decode_to_slice(hex_mac, &mut presented).is_err() {
        return false;
    }
    let mut mac = verifier.clone();
    mac.update(body);
    constant_time_eq::constant_time_eq(&mac.finalize().into_bytes(), &presented)
}

async fn relay(
    upstream: Upstream,
    verifier: Arc<Verifier>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let answer = async {
        let body = body.collect().await.ok()?.to_bytes();
        if let Some(verifier) = verifier.as_ref() {
            let signature = parts.headers.get("x-hub-signature-256").map(|v| v.as_bytes());
            if !signed(verifier, signature, &body) {
                let mut response = Response::new(Full::new(Bytes::from_static(b"forbidden\n")));
                *response.status_mut() = StatusCode::FORBIDDEN;
                return Some(response);
            }
        }
        let response = upstream.lock().await.send_request(Request::from_parts(parts, Full::new(body))).await.ok()?;
        let (parts, body) = response.into_parts();
        Some(Response::from_parts(parts, Full::new(body.collect().await.ok()?.to_bytes())))
    };
    Ok(answer.await.unwrap_or_else(|| {
        let mut response = Response::new(Full::new(Bytes::from_static(b"bad gateway\n")));
        *response.status_mut() = StatusCode::BAD_GATEWAY;
        response
    }))
}

async fn serve(downstream: TcpStream, upstream_addr: String, verifier: Arc<Verifier>) -> Option<()> {
    let upstream = TcpStream::connect(&upstream_addr).await.ok()?;
    let _ = upstream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(upstream)).await.ok()?;
    tokio::spawn(connection);
    let sender: Upstream = Arc::new(Mutex::new(sender));
    let service = service_fn(move |request| relay(sender.clone(), verifier.clone(), request));
    http1::Builder::new().serve_connection(TokioIo::new(downstream), service).await.ok()
}

/// The `listen` and first `upstream` address of a hookgate config (one `key: value` per line).
fn addresses_from_config(path: &str) -> std::io::Result<(String, String)> {
    let text = std::fs::read_to_string(path)?;
    let value = |key: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(key))
            .map(|v| v.trim().trim_start_matches("http://").to_owned())
    };
    match (value("listen:"), value("upstream:")) {
        (Some(listen), Some(upstream)) => Ok((listen, upstream)),
        _ => Err(std::io::Error::other(format!("{path}: no `listen:` or `upstream:` line"))),
    }
}

fn main() -> std::io::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let verifier: Arc<Verifier> = Arc::new(match args.first().map(String::as_str) {
        Some("--verify-github") if args.len() >= 2 => {
            let secret = args.remove(1);
            args.remove(0);
            Some(Hmac::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length"))
        }
        _ => None,
    });
    let (listen, upstream) = match args.as_slice() {
        [flag, path] if flag == "--config" => addresses_from_config(path)?,
        [listen, upstream] => (listen.clone(), upstream.clone()),
        _ => ("127.0.0.1:18182".to_owned(), "127.0.0.1:18180".to_owned()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&listen).await?;
        eprintln!("bench-hyper-proxy listening on {listen}, upstream {upstream}");
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            tokio::spawn(serve(stream, upstream.clone(), verifier.clone()));
        }
    })
}
