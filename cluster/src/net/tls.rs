//! Mutual TLS on the cluster port. Every node holds a certificate signed by
//! the cluster's own CA; both ends of every node-to-node connection present
//! theirs and check the other's against that CA. A peer's identity is the
//! first DNS name among its certificate's subject alternative names
//! (`ollystack-node certs` puts the node's name there); the cluster's
//! services serve members by it (see [`super::auth`]). Host names are not
//! checked against the address dialled: the CA is the cluster's alone, and
//! a certificate it signed is a cluster identity wherever it answers from.
//!
//! [`TlsTransport`] wraps another [`Transport`]: the same tonic servers and
//! clients run over it unchanged. Handshakes run off the accept loop, each
//! under a deadline and with a bound on how many run at once, so a peer
//! that stalls its handshake holds no one else up. The files are read again
//! when they change ([`TlsTransport::reload_if_changed`]); new connections
//! use the new certificate, open ones keep theirs.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio::sync::{mpsc, Semaphore};

use super::transport::{accept_retrying, Acceptor, BoxIo, Peer, SharedTransport, Transport};

/// How long a peer may take over its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Handshakes in progress per listener, at most; more connections wait in
/// the kernel's backlog.
const MAX_HANDSHAKES: usize = 128;
/// The name a client sends (SNI); servers do not check it.
const SERVER_NAME: &str = "ollystack-cluster";

/// Where a node's TLS material lives (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// This node's certificate, then any intermediates.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The cluster CA: a peer's certificate must chain to it.
    pub ca: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("TLS settings: {0}")]
    Config(String),
}

/// Server and client settings built from one set of files.
pub struct TlsMaterial {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    /// This node's identity (the first DNS name of its certificate).
    pub identity: Arc<str>,
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsMaterial").field("identity", &self.identity).finish_non_exhaustive()
    }
}

pub(crate) fn file_error(path: &Path, message: impl ToString) -> TlsError {
    TlsError::File { path: path.to_owned(), message: message.to_string() }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The first DNS name of a certificate's subject alternative names.
pub fn identity_of(cert: &CertificateDer<'_>) -> Option<Arc<str>> {
    let cert = webpki::EndEntityCert::try_from(cert).ok()?;
    let name = cert.valid_dns_names().next().map(Arc::from);
    name
}

/// A certificate chain (leaf first) and its private key, from PEM files;
/// the chain holds at least one certificate.
pub(crate) fn load_chain_and_key(cert: &Path, key: &Path) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(cert).map_err(|e| file_error(cert, e))?.collect::<Result<_, _>>().map_err(|e| file_error(cert, e))?;
    if chain.is_empty() {
        return Err(file_error(cert, "holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e))?;
    Ok((chain, key))
}

impl TlsMaterial {
    pub fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let (chain, key) = load_chain_and_key(&files.cert, &files.key)?;
        let leaf = chain.first().ok_or_else(|| file_error(&files.cert, "holds no certificate"))?;
        let identity = identity_of(leaf).ok_or_else(|| {
            file_error(
                &files.cert,
                "the certificate names no DNS name (subject alternative name); `ollystack-node certs` makes ones that do",
            )
        })?;
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&files.ca).map_err(|e| file_error(&files.ca, e))? {
            roots.add(ca.map_err(|e| file_error(&files.ca, e))?).map_err(|e| file_error(&files.ca, e))?;
        }
        if roots.is_empty() {
            return Err(file_error(&files.ca, "holds no CA certificate"));
        }
        let roots = Arc::new(roots);
        let config = |e: rustls::Error| TlsError::Config(e.to_string());
        let clients =
            WebPkiClientVerifier::builder_with_provider(roots.clone(), provider()).build().map_err(|e| TlsError::Config(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config)?
            .with_client_cert_verifier(clients)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| file_error(&files.key, format!("does not match the certificate ({e})")))?;
        let servers = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
            .build()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let client = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(config)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ClusterCa(servers)))
            .with_client_auth_cert(chain, key)
            .map_err(|e| file_error(&files.key, format!("does not match the certificate ({e})")))?;
        let mut server = server;
        server.alpn_protocols = vec![b"h2".to_vec()];
        let mut client = client;
        client.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self { server: Arc::new(server), client: Arc::new(client), identity })
    }
}

/// Checks a server's certificate chain against the cluster CA, and not its
/// names (see the module docs).
#[derive(Debug)]
struct ClusterCa(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ClusterCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The chain is checked first; a name mismatch is reported only for
        // a certificate the CA signed.
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. })) => {
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A [`Transport`] whose connections are mutual TLS over `inner`'s.
pub struct TlsTransport {
    inner: SharedTransport,
    files: TlsFiles,
    /// Shared with this transport's listeners, which read it per
    /// connection: a reload reaches both sides.
    material: Arc<RwLock<Arc<TlsMaterial>>>,
    /// Modification times of the files the material was read from.
    read_at: Mutex<Vec<Option<SystemTime>>>,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport").field("files", &self.files).finish_non_exhaustive()
    }
}

fn modified(files: &TlsFiles) -> Vec<Option<SystemTime>> {
    [&files.cert, &files.key, &files.ca].iter().map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok()).collect()
}

impl TlsTransport {
    pub fn new(inner: SharedTransport, files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let read_at = modified(&files);
        let material = TlsMaterial::load(&files)?;
        Ok(Arc::new(Self { inner, files, material: Arc::new(RwLock::new(Arc::new(material))), read_at: Mutex::new(read_at) }))
    }

    fn material(&self) -> Arc<TlsMaterial> {
        self.material.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// This node's identity.
    pub fn identity(&self) -> Arc<str> {
        self.material().identity.clone()
    }

    /// Reads the files again if one changed since they were read. `Ok(true)`
    /// when new material is in use; on an error the old one stays.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = modified(&self.files);
        let mut read_at = self.read_at.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *read_at == now {
            return Ok(false);
        }
        let material = TlsMaterial::load(&self.files)?;
        if material.identity != self.identity() {
            return Err(TlsError::Config(format!(
                "the new certificate names {:?}, this node is {:?}; a node keeps its name",
                material.identity,
                self.identity()
            )));
        }
        *self.material.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(material);
        *read_at = now;
        Ok(true)
    }
}

impl Transport for TlsTransport {
    fn bind(&self, addr: SocketAddr) -> BoxFuture<'static, io::Result<Box<dyn Acceptor>>> {
        let bound = self.inner.bind(addr);
        let material = self.material.clone();
        let source: ServerConfigSource = Arc::new(move || material.read().unwrap_or_else(|poisoned| poisoned.into_inner()).server.clone());
        Box::pin(async move { Ok(Box::new(listen_tls(bound.await?, source)?) as Box<dyn Acceptor>) })
    }

    fn connect(&self, addr: String) -> BoxFuture<'static, io::Result<BoxIo>> {
        let connect = self.inner.connect(addr);
        let connector = tokio_rustls::TlsConnector::from(self.material().client.clone());
        Box::pin(async move {
            let io = connect.await?;
            let name = ServerName::try_from(SERVER_NAME).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, io))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
            Ok(Box::new(tls) as BoxIo)
        })
    }
}

/// The server settings a listener uses for its next handshake.
pub(crate) type ServerConfigSource = Arc<dyn Fn() -> Arc<ServerConfig> + Send + Sync>;

/// Serves TLS on `inner`, with the settings `source` gives at each
/// handshake.
pub(crate) fn listen_tls(inner: Box<dyn Acceptor>, source: ServerConfigSource) -> io::Result<TlsListener> {
    TlsListener::start(inner, source)
}

/// Accepts on the inner listener and hands over connections whose
/// handshake completed.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(BoxIo, Peer)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    fn start(mut inner: Box<dyn Acceptor>, source: ServerConfigSource) -> io::Result<Self> {
        let local = inner.local_addr()?;
        let (tx, ready) = mpsc::channel(MAX_HANDSHAKES);
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let accepting = tokio::spawn(async move {
            loop {
                let Ok(permit) = handshakes.clone().acquire_owned().await else { return };
                let conn = accept_retrying(inner.as_mut()).await;
                let addr = conn.peer.addr;
                let (acceptor, tx) = (tokio_rustls::TlsAcceptor::from(source()), tx.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(conn)).await {
                        Ok(Ok(tls)) => {
                            let identity = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(identity_of);
                            let _ = tx.send((Box::new(tls) as BoxIo, Peer { addr, identity })).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake refused"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, local, accepting })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // Closes the inner listener.
        self.accepting.abort();
    }
}

impl Acceptor for TlsListener {
    fn accept(&mut self) -> BoxFuture<'_, io::Result<(BoxIo, Peer)>> {
        Box::pin(async move { self.ready.recv().await.ok_or_else(|| io::Error::other("the TLS listener stopped")) })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
