//! TLS on the listener (HTTP/1.1 and HTTP/2 by ALPN, certificate renewal without a restart) and
//! to the upstream (a configured CA, and a client certificate for mTLS). Every certificate is
//! generated here, at test time.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpListener;

/// A certificate authority that issues leaf certificates for `localhost`.
struct Authority {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Authority {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        Self { pem: cert.pem(), issuer: Issuer::new(params, key) }
    }

    /// (certificate PEM, key PEM) for `localhost` and 127.0.0.1, with `name` as its CN.
    fn leaf(&self, name: &str) -> (String, String) {
        let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("signed leaf");
        (cert.pem(), key.serialize_pem())
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.pem.as_bytes()) {
            roots.add(cert.expect("CA pem")).expect("CA");
        }
        roots
    }
}

use rustls::pki_types::pem::PemObject as _;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(authority: &Authority, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(authority.roots())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// The common name of the certificate the server at `addr` presents.
async fn presented_name(addr: SocketAddr, authority: &Authority) -> String {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(authority, &[b"http/1.1"])));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let tls = connector.connect(ServerName::try_from("localhost").expect("name"), tcp).await.expect("handshake");
    let der = tls.get_ref().1.peer_certificates().expect("a certificate")[0].clone();
    let (_, cert) = x509_common_name(&der);
    cert
}

/// Finds the CN in a DER certificate without an X.509 parser: rcgen writes it as a UTF8String
/// after the commonName OID (2.5.4.3).
fn x509_common_name(der: &[u8]) -> ((), String) {
    let oid = [0x06, 0x03, 0x55, 0x04, 0x03];
    let at = der.windows(oid.len()).rposition(|w| w == oid).expect("a CN");
    let value = &der[at + oid.len()..];
    let len = value[1] as usize;
    ((), String::from_utf8(value[2..2 + len].to_vec()).expect("utf-8 CN"))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.to_str().expect("utf-8 path").to_owned()
}

/// A GitHub-signed POST to `url`.
fn signed(url: &str, body: &'static [u8]) -> Request<Full<Bytes>> {
    let text = "routes:\n  - { name: d, path: /d, upstream: echo, verify: { scheme: github, secret: s } }\n";
    let route = hookgate::config::parse(text, "d.yaml".as_ref(), &|_| None).expect("valid").routes.remove(0);
    let headers = sign_with(&route, "s", body, hookgate::verify::UnixTime::now());
    with_headers(post(url, body), headers)
}

/// Sends `request` over TLS, offering only `version` by ALPN.
async fn https_send(
    authority: &Authority,
    version: Version,
    request: Request<Full<Bytes>>,
) -> (StatusCode, Version, Bytes) {
    let builder =
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(client_config(authority, &[])).https_only();
    let connector = match version {
        Version::HTTP_2 => builder.enable_http2().build(),
        _ => builder.enable_http1().build(),
    };
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let response = within("an https answer", client.request(request)).await.expect("https request");
    let (status, version) = (response.status(), response.version());
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, version, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_speaks_tls_with_alpn_and_picks_up_a_renewed_certificate() {
    let authority = Authority::new("hookgate test CA");
    let dir = tempfile::tempdir().expect("dir");
    let (cert, key) = authority.leaf("first");
    let (cert_file, key_file) = (write(dir.path(), "tls.crt", &cert), write(dir.path(), "tls.key", &key));
    let yaml = format!(
        "tls: {{ cert_file: \"{cert_file}\", key_file: \"{key_file}\" }}\nroutes:\n  - {{ name: hooks, path: /hooks, upstream: echo, verify: {{ scheme: github, secret: s }} }}\n"
    );
    let gateway = Gateway::start(&yaml).await;
    let url = format!("https://localhost:{}/hooks", gateway.public.port());

    for version in [Version::HTTP_2, Version::HTTP_11] {
        let (status, negotiated, body) = https_send(&authority, version, signed(&url, b"{\"tls\":1}")).await;
        assert_eq!((status, negotiated), (StatusCode::OK, version));
        assert_eq!(&body[..], b"{\"tls\":1}", "the echo upstream answers the verified body");
    }
    let (status, _, _) = https_send(&authority, Version::HTTP_2, post(&url, &b"forged"[..])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unsigned over TLS is still refused");

    // Plain HTTP on the TLS port is not served.
    let plain = tokio::time::timeout(Duration::from_secs(5), send_plain(gateway.public)).await;
    assert!(matches!(plain, Ok(None)), "plain HTTP gets no HTTP answer");

    // Renewal: new files, same paths; new connections get the new certificate.
    assert_eq!(presented_name(gateway.public, &authority).await, "first");
    let (cert, key) = authority.leaf("renewed");
    write(dir.path(), "tls.key", &key);
    write(dir.path(), "tls.crt", &cert);
    let deadline = Instant::now() + hookgate::reload::POLL_INTERVAL * 3;
    while presented_name(gateway.public, &authority).await != "renewed" {
        assert!(Instant::now() < deadline, "the renewed certificate was not picked up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A broken renewal is refused: the last good certificate keeps serving.
    write(dir.path(), "tls.crt", "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    tokio::time::sleep(hookgate::reload::POLL_INTERVAL * 2).await;
    assert_eq!(presented_name(gateway.public, &authority).await, "renewed");
}

/// Sends a plain HTTP request and returns the status line, if any came back.
async fn send_plain(addr: SocketAddr) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream.write_all(b"GET /hooks HTTP/1.1\r\nhost: x\r\n\r\n").await.ok()?;
    let mut reply = vec![0; 64];
    let n = stream.read(&mut reply).await.ok()?;
    let text = String::from_utf8_lossy(&reply[..n]).to_string();
    text.starts_with("HTTP/").then_some(text)
}

/// An HTTPS upstream that answers 200 with the body it got, optionally requiring a client
/// certificate issued by `clients`; counts the TLS handshakes it completed.
async fn tls_upstream(authority: &Authority, clients: Option<&Authority>) -> (SocketAddr, Arc<AtomicUsize>) {
    let (cert, key) = authority.leaf("upstream");
    let certs: Vec<_> = CertificateDer::pem_slice_iter(cert.as_bytes()).map(|c| c.expect("pem")).collect();
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key");
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = match clients {
        Some(clients) => builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(clients.roots()), provider())
                .build()
                .expect("verifier"),
        ),
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certs, key).expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counter = handshakes.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let (acceptor, counter) = (acceptor.clone(), counter.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                let service = hyper::service::service_fn(|request: Request<hyper::body::Incoming>| async move {
                    let body = request.into_body().collect().await?.to_bytes();
                    Ok::<_, hyper::Error>(http::Response::new(Full::new(body)))
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    (addr, handshakes)
}

#[tokio::test]
async fn https_upstreams_use_the_configured_ca_and_client_certificate() {
    let servers = Authority::new("upstream CA");
    let clients = Authority::new("client CA");
    let dir = tempfile::tempdir().expect("dir");
    let ca_file = write(dir.path(), "ca.pem", &servers.pem);
    let (client_cert, client_key) = clients.leaf("hookgate");
    let (client_cert, client_key) =
        (write(dir.path(), "client.crt", &client_cert), write(dir.path(), "client.key", &client_key));
    let (plain, _) = tls_upstream(&servers, None).await;
    let (mutual, _) = tls_upstream(&servers, Some(&clients)).await;
    let yaml = format!(
        r#"upstream_timeout: 5s
routes:
  - {{ name: trusted, path: /trusted, upstream: "https://localhost:{plain}", upstream_tls: {{ ca_file: "{ca_file}" }}, verify: {{ scheme: github, secret: s }} }}
  - {{ name: untrusted, path: /untrusted, upstream: "https://localhost:{plain}", verify: {{ scheme: github, secret: s }} }}
  - {{ name: mtls, path: /mtls, upstream: "https://localhost:{mutual}", upstream_tls: {{ ca_file: "{ca_file}", client_cert_file: "{client_cert}", client_key_file: "{client_key}" }}, verify: {{ scheme: github, secret: s }} }}
  - {{ name: no-client-cert, path: /no-client-cert, upstream: "https://localhost:{mutual}", upstream_tls: {{ ca_file: "{ca_file}" }}, verify: {{ scheme: github, secret: s }} }}
"#,
        plain = plain.port(),
        mutual = mutual.port()
    );
    let gateway = Gateway::start(&yaml).await;
    let reply = send(signed(&gateway.url("/trusted"), b"over tls")).await;
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"over tls"[..]));
    send(signed(&gateway.url("/untrusted"), b"x")).await.assert_error(StatusCode::BAD_GATEWAY, "upstream_error");
    let reply = send(signed(&gateway.url("/mtls"), b"mutual")).await;
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"mutual"[..]));
    send(signed(&gateway.url("/no-client-cert"), b"x")).await.assert_error(StatusCode::BAD_GATEWAY, "upstream_error");
}

#[tokio::test]
async fn an_https_upstream_connection_is_reused_after_it_gave_its_buffers_back() {
    let servers = Authority::new("upstream CA");
    let dir = tempfile::tempdir().expect("dir");
    let ca_file = write(dir.path(), "ca.pem", &servers.pem);
    let (upstream, handshakes) = tls_upstream(&servers, None).await;
    let yaml = format!(
        r#"routes:
  - {{ name: app, path: /app, upstream: "https://localhost:{port}", upstream_tls: {{ ca_file: "{ca_file}" }}, verify: {{ scheme: github, secret: s }} }}
"#,
        port = upstream.port()
    );
    let gateway = Gateway::start(&yaml).await;
    let reply = send(signed(&gateway.url("/app"), b"first")).await;
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"first"[..]));
    // A pooled connection unused for 250 ms keeps only its TLS stream (checked every 250 ms).
    tokio::time::sleep(Duration::from_millis(800)).await;
    let reply = send(signed(&gateway.url("/app"), b"second")).await;
    assert_eq!((reply.status, &reply.body[..]), (StatusCode::OK, &b"second"[..]));
    assert_eq!(handshakes.load(Ordering::SeqCst), 1, "the second request went over the first TLS session");
}

#[test]
fn tls_settings_are_checked_when_the_config_loads() {
    let dir = tempfile::tempdir().expect("dir");
    let garbage = write(dir.path(), "garbage.pem", "not a pem");
    let text = format!(
        r#"tls: {{ cert_file: "{garbage}", key_file: /nonexistent/key.pem }}
routes:
  - {{ name: a, path: /a, upstream: "http://127.0.0.1:1", upstream_tls: {{ ca_file: "{garbage}" }}, verify: {{ scheme: github, secret: s }} }}
  - {{ name: b, path: /b, upstream: "https://127.0.0.1:1", upstream_tls: {{ client_cert_file: "{garbage}" }}, verify: {{ scheme: github, secret: s }} }}
"#
    );
    let error = hookgate::config::parse(&text, "t.yaml".as_ref(), &|_| None).expect_err("invalid").to_string();
    for wanted in [
        "tls: cannot read /nonexistent/key.pem",
        "routes[0] (a).upstream_tls: applies only to an https:// upstream",
        "routes[1] (b).upstream_tls: client_cert_file and client_key_file go together",
    ] {
        assert!(error.contains(wanted), "missing {wanted:?} in:\n{error}");
    }
}
