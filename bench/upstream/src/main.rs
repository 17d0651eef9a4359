//! The cheapest upstream we could write for the load benchmark: one thread (tokio
//! `current_thread`), HTTP/1.1 keep-alive, TCP_NODELAY; it drains the request body and answers
//! `200 ok\n`. `GET /__stats` answers `requests=N` (asked directly, it proves that rejected
//! requests never arrived).
//!
//! ```sh
//! bench-upstream 127.0.0.1:18180
//! ```

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

static REQUESTS: AtomicU64 = AtomicU64::new(0);

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() == "/__stats" {
        let text = format!("requests={}\n", REQUESTS.load(Ordering::Relaxed));
        return Ok(Response::new(Full::new(Bytes::from(text))));
    }
    let mut body = request.into_body();
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            let mut response = Response::new(Full::new(Bytes::from_static(b"bad body\n")));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            return Ok(response);
        }
    }
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    Ok(Response::new(Full::new(Bytes::from_static(b"ok\n"))))
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18180".to_owned());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("bench-upstream listening on {addr}");
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(handle)).await;
            });
        }
    })
}
