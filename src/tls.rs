//! TLS with rustls: the listener's certificate, which is re-read when its files change, and the
//! client configuration for `https://` upstreams (webpki roots or a configured CA, optional
//! client certificate for mTLS).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
}

fn certificates(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|error| format!("{}: not a PEM certificate chain: {error}", path.display()))?;
    match certs.is_empty() {
        true => Err(format!("{}: no certificate in the file", path.display())),
        false => Ok(certs),
    }
}

fn private_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|error| format!("{}: not a PEM private key: {error}", path.display()))
}

/// The listener's certificate and key, swapped in place when the files change, so a renewed
/// certificate is served to new connections without a restart.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: ArcSwap<CertifiedKey>,
    /// The file contents `current` was built from, to notice a change.
    loaded: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl ReloadingCert {
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Self, String> {
        let (cert_pem, key_pem) = (read(cert_file)?, read(key_file)?);
        let key = certified_key(&cert_pem, cert_file, &key_pem, key_file)?;
        Ok(Self {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            current: ArcSwap::from_pointee(key),
            loaded: Mutex::new((cert_pem, key_pem)),
        })
    }

    /// Re-reads the files; swaps in a changed pair if it is valid. `Ok(true)` when it changed.
    /// A broken or half-written pair is refused and the old certificate keeps serving.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let (cert_pem, key_pem) = (read(&self.cert_file)?, read(&self.key_file)?);
        let mut loaded = crate::lock(&self.loaded);
        if (&cert_pem, &key_pem) == (&loaded.0, &loaded.1) {
            return Ok(false);
        }
        let key = certified_key(&cert_pem, &self.cert_file, &key_pem, &self.key_file)?;
        self.current.store(Arc::new(key));
        *loaded = (cert_pem, key_pem);
        Ok(true)
    }

    /// The TLS configuration for the listener: this certificate, ALPN `h2` then `http/1.1`.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<ServerConfig>, String> {
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn certified_key(cert_pem: &[u8], cert_file: &Path, key_pem: &[u8], key_file: &Path) -> Result<CertifiedKey, String> {
    let certs = certificates(cert_pem, cert_file)?;
    let key = private_key(key_pem, key_file)?;
    let key = CertifiedKey::from_der(certs, key, &provider()).map_err(|error| {
        format!("{} and {} do not form a usable pair: {error}", cert_file.display(), key_file.display())
    })?;
    Ok(key)
}

/// How to reach an `https://` upstream: the CA that signs it (default: the webpki roots) and
/// a client certificate for mTLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamTls {
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

impl UpstreamTls {
    /// The rustls client configuration; reads and checks every file.
    pub fn client_config(&self) -> Result<ClientConfig, String> {
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                for cert in certificates(&read(path)?, path)? {
                    roots.add(cert).map_err(|error| format!("{}: {error}", path.display()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(roots);
        match (&self.client_cert_file, &self.client_key_file) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(certificates(&read(cert)?, cert)?, private_key(&read(key)?, key)?)
                .map_err(|error| format!("client certificate: {error}")),
            (None, None) => Ok(builder.with_no_client_auth()),
            _ => Err("client_cert_file and client_key_file go together".into()),
        }
    }
}
