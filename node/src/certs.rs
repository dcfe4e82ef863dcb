//! `ollystack-node certs`: a cluster CA and node certificates for a quick
//! start (production deployments may bring their own: any CA works, and a
//! node is known by the first DNS name of its certificate). The CA is made
//! once per directory and reused, so nodes can be added later; private
//! keys are written readable by their owner only.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};

#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("{0:?} is not a usable node name: letters, digits, '-' and '.', starting with a letter or digit")]
    Name(String),
    #[error("making a certificate: {0}")]
    Make(#[from] rcgen::Error),
}

/// What `certs` wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Made {
    /// Whether the CA was made now (false: an existing one was reused).
    pub new_ca: bool,
    /// (certificate, key) per node.
    pub nodes: Vec<(PathBuf, PathBuf)>,
}

fn file_error(path: &Path, e: impl ToString) -> CertsError {
    CertsError::File { path: path.to_owned(), message: e.to_string() }
}

/// A node name that is also a valid DNS name (it goes into the
/// certificate's subject alternative names). Pure.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn write_file(path: &Path, content: &str, private: bool) -> Result<(), CertsError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(|e| file_error(path, e))?;
    file.write_all(content.as_bytes()).map_err(|e| file_error(path, e))
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(i64::from(days));
}

/// A host clients dial: an IP address or a DNS name. Pure.
fn valid_host(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok() || valid_name(host)
}

/// A node as `certs --nodes` names it: `NAME`, or `NAME=HOST+HOST…` with
/// the host names or IP addresses clients dial it by (they go into its
/// certificate beside the name, so the OTLP and API ports can serve it to
/// clients that check host names). Pure.
pub fn parse_node(text: &str) -> Result<(String, Vec<String>), CertsError> {
    let (name, hosts) = match text.split_once('=') {
        Some((name, hosts)) => (name, hosts.split('+').map(str::to_owned).collect()),
        None => (text, Vec::new()),
    };
    if !valid_name(name) {
        return Err(CertsError::Name(name.to_owned()));
    }
    if let Some(bad) = hosts.iter().find(|h| !valid_host(h)) {
        return Err(CertsError::Name(bad.clone()));
    }
    Ok((name.to_owned(), hosts))
}

/// Makes (or reuses) `dir/ca.pem` + `dir/ca-key.pem`, then a certificate
/// and key per node (`dir/NAME.pem`, `dir/NAME-key.pem`; see
/// [`parse_node`]), valid `days` days, for both ends of a connection.
/// `hosts` go into every node's certificate.
pub fn make(dir: &Path, nodes: &[String], hosts: &[String], days: u32) -> Result<Made, CertsError> {
    let nodes: Vec<(String, Vec<String>)> = nodes.iter().map(|n| parse_node(n)).collect::<Result<_, _>>()?;
    if let Some(bad) = hosts.iter().find(|h| !valid_host(h)) {
        return Err(CertsError::Name(bad.clone()));
    }
    let all = hosts;
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
    let (ca_path, ca_key_path) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    let mut made = Made::default();
    let (ca, ca_key) = if ca_path.exists() && ca_key_path.exists() {
        let key_pem = std::fs::read_to_string(&ca_key_path).map_err(|e| file_error(&ca_key_path, e))?;
        let cert_pem = std::fs::read_to_string(&ca_path).map_err(|e| file_error(&ca_path, e))?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| file_error(&ca_key_path, e))?;
        let params = CertificateParams::from_ca_cert_pem(&cert_pem).map_err(|e| file_error(&ca_path, e))?;
        // Re-signed in memory only, to sign with: same name, same key, so
        // what it signs chains to the ca.pem on disk.
        (params.self_signed(&key)?, key)
    } else {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "OllyStack cluster CA");
        params.distinguished_name = dn;
        validity(&mut params, days.max(3650));
        let cert = params.self_signed(&key)?;
        write_file(&ca_key_path, &key.serialize_pem(), true)?;
        write_file(&ca_path, &cert.pem(), false)?;
        made.new_ca = true;
        (cert, key)
    };
    for (name, own) in &nodes {
        let key = KeyPair::generate()?;
        // The name first: a node is known by its first DNS name.
        let names: Vec<String> = std::iter::once(name.clone()).chain(own.iter().cloned()).chain(all.iter().cloned()).collect();
        let mut params = CertificateParams::new(names)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name.as_str());
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params, days);
        let cert = params.signed_by(&key, &ca, &ca_key)?;
        let (cert_path, key_path) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}-key.pem")));
        write_file(&key_path, &key.serialize_pem(), true)?;
        write_file(&cert_path, &cert.pem(), false)?;
        made.nodes.push((cert_path, key_path));
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ollystack_cluster::net::tls::{TlsFiles, TlsMaterial};

    #[test]
    fn node_names_are_dns_names() {
        for good in ["node-1", "n1.cluster.local", "a"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "-a", "a-", "a..b", "a_b", "a b", "ä"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn made_certificates_load_as_cluster_tls_with_their_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let made = make(dir.path(), &["node-1=127.0.0.9+n1.example".into()], &["lb.example".into()], 30).expect("certs");
        assert!(made.new_ca);
        // A second run reuses the CA; both nodes chain to it.
        let again = make(dir.path(), &["node-2".into()], &[], 30).expect("certs");
        assert!(!again.new_ca);
        for name in ["node-1", "node-2"] {
            let files = TlsFiles {
                cert: dir.path().join(format!("{name}.pem")),
                key: dir.path().join(format!("{name}-key.pem")),
                ca: dir.path().join("ca.pem"),
            };
            let material = TlsMaterial::load(&files).expect("loads");
            assert_eq!(&*material.identity, name);
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("node-1-key.pem")).expect("key").permissions().mode();
            assert_eq!(mode & 0o077, 0, "a key must not be readable by others");
        }
    }

    #[test]
    fn nodes_may_name_the_hosts_clients_dial() {
        assert_eq!(parse_node("n1").expect("ok"), ("n1".into(), vec![]));
        assert_eq!(parse_node("n1=10.0.0.1+n1.example").expect("ok"), ("n1".into(), vec!["10.0.0.1".into(), "n1.example".into()]));
        assert!(parse_node("n1=").is_err());
    }

    #[test]
    fn a_bad_name_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(make(dir.path(), &["ok".into(), "not ok".into()], &[], 30), Err(CertsError::Name(_))));
        assert!(matches!(make(dir.path(), &["ok=bad host".into()], &[], 30), Err(CertsError::Name(_))));
        assert!(matches!(make(dir.path(), &["ok".into()], &["bad_host".into()], 30), Err(CertsError::Name(_))));
        assert!(!dir.path().join("ca.pem").exists());
    }
}
