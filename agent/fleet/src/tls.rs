//! Mutual TLS: rustls client configs (ring provider) from PEM files, and the device id from a cert's CN.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::Identity(format!("reading {}: {e}", path.display())))
}

pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = read(path)?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Identity(format!("{}: bad PEM certificate: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Identity(format!(
            "{}: no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| Error::Identity(format!("{}: bad PEM private key: {e}", path.display())))
}

/// The subject CN of a DER certificate.
pub fn common_name(cert: &CertificateDer<'_>) -> Result<String, Error> {
    let (_, c) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| Error::Identity(format!("parsing certificate: {e}")))?;
    let cn = c
        .subject()
        .iter_common_name()
        .next()
        .ok_or_else(|| Error::Identity("certificate has no CN".into()))?
        .as_str()
        .map_err(|e| Error::Identity(format!("certificate CN: {e}")))?;
    Ok(cn.to_string())
}

/// The id a client certificate file stands for (its CN).
pub fn identity_of(cert_file: &Path) -> Result<String, Error> {
    let certs = load_certs(cert_file)?;
    common_name(&certs[0])
}

/// A rustls client config that trusts only `ca_file` and presents `cert_file`/`key_file`.
pub fn client_config(
    ca_file: &Path,
    cert_file: &Path,
    key_file: &Path,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for c in load_certs(ca_file)? {
        roots
            .add(c)
            .map_err(|e| Error::Identity(format!("{}: {e}", ca_file.display())))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Identity(format!("TLS versions: {e}")))?
        .with_root_certificates(roots)
        .with_client_auth_cert(load_certs(cert_file)?, load_key(key_file)?)
        .map_err(|e| Error::Identity(format!("client certificate/key: {e}")))?;
    Ok(Arc::new(cfg))
}
