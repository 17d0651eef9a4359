//! The floor of hookgate's stack, for the load benchmark: a reverse proxy made of nothing but
//! hyper's HTTP/1 server and client on one tokio `current_thread` runtime, as hookgate is built.
//! Each downstream connection gets its own upstream connection (no pool, no routing, no
//! verification, no metrics, no logs); each request body is collected, as a verifying gateway
//! must, and sent on with its head unchanged; the answer is collected and relayed.
//!
//! ```sh
//! bench-hyper-proxy 127.0.0.1:18182 127.0.0.1:18180
//! bench-hyper-proxy --config hookgate.yaml   # its `listen` and first `upstream`, so that
//!                                            # bench/profile.py can run it in hookgate's place
//! ```

use std::convert::Infallible;
use std::sync::Arc;

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

async fn relay(upstream: Upstream, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let answer = async {
        let body = body.collect().await.ok()?.to_bytes();
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

async fn serve(downstream: TcpStream, upstream_addr: String) -> Option<()> {
    let upstream = TcpStream::connect(&upstream_addr).await.ok()?;
    let _ = upstream.set_nodelay(true);
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(upstream)).await.ok()?;
    tokio::spawn(connection);
    let sender: Upstream = Arc::new(Mutex::new(sender));
    let service = service_fn(move |request| relay(sender.clone(), request));
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
    let args: Vec<String> = std::env::args().skip(1).collect();
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
            tokio::spawn(serve(stream, upstream.clone()));
        }
    })
}
