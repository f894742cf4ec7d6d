//! Fleet PKI: one CA, then a certificate per device (CN = device id), one for the operator and one for the
//! broker.  Keys are ECDSA P-256.  Files are PEM: `ca.pem`/`ca.key`, `<name>.pem`/`<name>.key`.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};

use crate::Error;

fn pki_err(e: impl std::fmt::Display) -> Error {
    Error::Identity(format!("pki: {e}"))
}

fn write(path: &Path, data: &str, secret: bool) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    if secret {
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .map_err(|e| pki_err(format!("{}: {e}", path.display())))?;
    f.write_all(data.as_bytes())
        .map_err(|e| pki_err(format!("{}: {e}", path.display())))
}

/// Creates `dir/ca.pem` and `dir/ca.key`.  Refuses to overwrite an existing CA.
pub fn create_ca(dir: &Path, name: &str) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| pki_err(format!("{}: {e}", dir.display())))?;
    if dir.join("ca.key").exists() {
        return Err(pki_err(format!(
            "{} already holds a CA; refusing to overwrite",
            dir.display()
        )));
    }
    let key = KeyPair::generate().map_err(pki_err)?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "edge fleet");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_after = rcgen::date_time_ymd(2046, 1, 1);
    let cert = p.self_signed(&key).map_err(pki_err)?;
    write(&dir.join("ca.pem"), &cert.pem(), false)?;
    write(&dir.join("ca.key"), &key.serialize_pem(), true)?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Client cert; CN = device id.
    Device,
    /// Client cert with CN `operator` (full access in the ACL).
    Operator,
    /// Server cert for the broker; `name` goes in the SAN (DNS name or IP).
    Broker,
}

pub const OPERATOR_CN: &str = "operator";

/// Issues `dir/<name>.pem` + `.key` signed by the CA in `dir`.  Returns the certificate path.
pub fn issue(dir: &Path, role: Role, name: &str) -> Result<PathBuf, Error> {
    // A broker may be reached by several names (`127.0.0.1,10.0.2.2`): each is a SAN, the first names it.
    let names: Vec<&str> = name
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    let first = match role {
        Role::Broker => *names
            .first()
            .ok_or_else(|| pki_err("the broker needs a name"))?,
        _ => name,
    };
    let cn = match role {
        Role::Operator => OPERATOR_CN,
        _ => first,
    };
    if role == Role::Device && (!crate::topics::valid_device_id(cn) || cn == OPERATOR_CN) {
        return Err(pki_err(format!(
            "`{cn}` is not a valid device id (1-64 of [A-Za-z0-9._-], not `{OPERATOR_CN}`)"
        )));
    }
    let ca_pem = std::fs::read_to_string(dir.join("ca.pem")).map_err(|e| {
        pki_err(format!(
            "{}/ca.pem: {e} (create the CA first)",
            dir.display()
        ))
    })?;
    let ca_key_pem = std::fs::read_to_string(dir.join("ca.key"))
        .map_err(|e| pki_err(format!("{}/ca.key: {e}", dir.display())))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(pki_err)?;
    let ca_params = CertificateParams::from_ca_cert_pem(&ca_pem).map_err(pki_err)?;
    let ca = ca_params.self_signed(&ca_key).map_err(pki_err)?;

    let key = KeyPair::generate().map_err(pki_err)?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    match role {
        Role::Broker => {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            p.subject_alt_names = names
                .iter()
                .map(|n| match n.parse::<std::net::IpAddr>() {
                    Ok(ip) => Ok(SanType::IpAddress(ip)),
                    Err(_) => Ok(SanType::DnsName((*n).try_into().map_err(pki_err)?)),
                })
                .collect::<Result<_, Error>>()?;
        }
        _ => p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth],
    }
    let cert = p.signed_by(&key, &ca, &ca_key).map_err(pki_err)?;
    let file = match role {
        Role::Operator => OPERATOR_CN,
        _ => first,
    };
    let pem = dir.join(format!("{file}.pem"));
    write(&pem, &cert.pem(), false)?;
    write(&dir.join(format!("{file}.key")), &key.serialize_pem(), true)?;
    Ok(pem)
}
