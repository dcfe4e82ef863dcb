//! TLS for the ports clients call (OTLP gRPC and HTTP, the API): the
//! server presents a certificate, clients check it the usual way (their
//! trust store, the host name they dialled) and authenticate by bearer
//! token, not by certificate. HTTP/2 and HTTP/1.1 are offered by ALPN.
//! Handshakes run off the accept loop under the same bounds as the
//! cluster's ([`super::tls`]); the files are read again when they change,
//! and new connections get the new certificate.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use rustls::ServerConfig;

use super::tls::{file_error, listen_tls, load_chain_and_key, ServerConfigSource, TlsError};
use super::transport::Acceptor;

/// A server certificate and its key (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// The certificate, then any intermediates.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

fn load(files: &ServerTlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let (chain, key) = load_chain_and_key(&files.cert, &files.key)?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| file_error(&files.key, format!("does not match the certificate ({e})")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn modified(files: &ServerTlsFiles) -> Vec<Option<SystemTime>> {
    [&files.cert, &files.key].iter().map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()).collect()
}

/// Server-side TLS for client ports, shared by all of a node's client
/// listeners.
pub struct ServerTls {
    files: ServerTlsFiles,
    config: Arc<RwLock<Arc<ServerConfig>>>,
    read_at: Mutex<Vec<Option<SystemTime>>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").field("files", &self.files).finish_non_exhaustive()
    }
}

impl ServerTls {
    pub fn new(files: ServerTlsFiles) -> Result<Arc<Self>, TlsError> {
        let read_at = modified(&files);
        let config = load(&files)?;
        Ok(Arc::new(Self { files, config: Arc::new(RwLock::new(config)), read_at: Mutex::new(read_at) }))
    }

    /// Wraps a plain listener: what it accepts is served over TLS.
    pub fn wrap(&self, inner: Box<dyn Acceptor>) -> io::Result<Box<dyn Acceptor>> {
        let config = self.config.clone();
        let source: ServerConfigSource = Arc::new(move || config.read().unwrap_or_else(|p| p.into_inner()).clone());
        Ok(Box::new(listen_tls(inner, source)?))
    }

    /// Reads the files again if one changed. `Ok(true)` when the new
    /// certificate is in use; on an error the old one stays.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = modified(&self.files);
        let mut read_at = self.read_at.lock().unwrap_or_else(|p| p.into_inner());
        if *read_at == now {
            return Ok(false);
        }
        let config = load(&self.files)?;
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
        *read_at = now;
        Ok(true)
    }

    /// Where the certificate is read from.
    pub fn files(&self) -> &ServerTlsFiles {
        &self.files
    }
}
