//! Provisioning bundles: one box's identity, written so that one image serves every box. The bundle is a
//! directory, `provision/`, that the operator copies onto the EFI system partition of a freshly flashed disk
//! (any file manager can write FAT). At its first boot the box moves it to its data partition
//! (`/data/edge-agent`) and deletes it from the ESP:
//!
//! ```text
//! provision/config.toml      the agent's config: [ingest], and [fleet] pointing at the files below
//! provision/fleet/ca.pem     the fleet CA (verifies the broker)
//! provision/fleet/device.pem the box's client certificate (its CN is the device id)
//! provision/fleet/device.key its key
//! provision/keystore.json    optional: the box's encrypted chain keystore
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::Error;

/// Where the box keeps its data (the image's data partition).
pub const DATA_ROOT: &str = "/data/edge-agent";

/// One box's identity and where it finds its fleet.
#[derive(Debug, Clone)]
pub struct Provision {
    /// The fleet PKI (`edge-fleet pki init`): `ca.pem` and the device's `<id>.pem`/`<id>.key`.
    pub pki: PathBuf,
    pub device: String,
    /// Broker host name or address as the box reaches it (one of the broker certificate's SANs).
    pub broker_host: String,
    pub broker_port: u16,
    pub labels: BTreeMap<String, String>,
    /// The agent's ingest and HLS address on the box.
    pub ingest_listen: String,
    /// An encrypted chain keystore to put on the box.
    pub keystore: Option<PathBuf>,
}

fn io(what: &Path, e: std::io::Error) -> Error {
    Error::Other(format!("{}: {e}", what.display()))
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(from, to).map_err(|e| io(from, e))?;
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).map_err(|e| io(to, e))
}

/// Writes the bundle as `<out>/provision/` and returns that directory.
pub fn write(p: &Provision, out: &Path) -> Result<PathBuf, Error> {
    if !crate::topics::valid_device_id(&p.device) {
        return Err(Error::Other(format!(
            "`{}` is not a valid device id",
            p.device
        )));
    }
    let dir = out.join("provision");
    let fleet = dir.join("fleet");
    std::fs::create_dir_all(&fleet).map_err(|e| io(&fleet, e))?;
    copy(&p.pki.join("ca.pem"), &fleet.join("ca.pem"), 0o644)?;
    copy(
        &p.pki.join(format!("{}.pem", p.device)),
        &fleet.join("device.pem"),
        0o644,
    )?;
    copy(
        &p.pki.join(format!("{}.key", p.device)),
        &fleet.join("device.key"),
        0o600,
    )?;
    if let Some(k) = &p.keystore {
        copy(k, &dir.join("keystore.json"), 0o600)?;
    }
    // The [fleet] table as the agent reads it (DeviceConfig), with the box's own paths.
    let mut fleet_table = toml::Table::new();
    fleet_table.insert("host".into(), p.broker_host.clone().into());
    fleet_table.insert("port".into(), i64::from(p.broker_port).into());
    fleet_table.insert("ca_file".into(), format!("{DATA_ROOT}/fleet/ca.pem").into());
    fleet_table.insert(
        "cert_file".into(),
        format!("{DATA_ROOT}/fleet/device.pem").into(),
    );
    fleet_table.insert(
        "key_file".into(),
        format!("{DATA_ROOT}/fleet/device.key").into(),
    );
    fleet_table.insert(
        "state_dir".into(),
        format!("{DATA_ROOT}/fleet/state").into(),
    );
    if !p.labels.is_empty() {
        let labels: toml::Table = p
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), toml::Value::from(v.clone())))
            .collect();
        fleet_table.insert("labels".into(), labels.into());
    }
    let mut ingest = toml::Table::new();
    ingest.insert("listen".into(), p.ingest_listen.clone().into());
    let mut doc = toml::Table::new();
    doc.insert("ingest".into(), ingest.into());
    doc.insert("fleet".into(), fleet_table.into());
    let text = format!(
        "# Provisioned for `{}` by `edge-fleet provision`; moved to {DATA_ROOT}/config.toml at first boot.\n{}",
        p.device,
        toml::to_string(&doc).map_err(|e| Error::Other(format!("config: {e}")))?
    );
    let cfg = dir.join("config.toml");
    std::fs::write(&cfg, text).map_err(|e| io(&cfg, e))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundle_holds_a_config_the_agent_reads_and_the_identity_it_names() {
        let t = tempfile::tempdir().unwrap();
        let pki = t.path().join("pki");
        crate::pki::create_ca(&pki, "test CA").unwrap();
        crate::pki::issue(&pki, crate::pki::Role::Device, "box-7").unwrap();
        let p = Provision {
            pki: pki.clone(),
            device: "box-7".into(),
            broker_host: "10.0.2.2".into(),
            broker_port: 8883,
            labels: [("site".to_string(), "lab".to_string())].into(),
            ingest_listen: "0.0.0.0:8935".into(),
            keystore: None,
        };
        let dir = write(&p, t.path()).unwrap();
        let doc: toml::Table =
            toml::from_str(&std::fs::read_to_string(dir.join("config.toml")).unwrap()).unwrap();
        let fleet: crate::DeviceConfig = doc["fleet"].clone().try_into().unwrap();
        assert_eq!(fleet.host, "10.0.2.2");
        assert_eq!(fleet.labels["site"], "lab");
        assert_eq!(
            fleet.cert_file,
            Path::new("/data/edge-agent/fleet/device.pem")
        );
        assert_eq!(doc["ingest"]["listen"].as_str(), Some("0.0.0.0:8935"));
        assert_eq!(
            std::fs::read(dir.join("fleet/device.pem")).unwrap(),
            std::fs::read(pki.join("box-7.pem")).unwrap()
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("fleet/device.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            write(
                &Provision {
                    device: "bad id".into(),
                    ..p
                },
                t.path()
            )
            .is_err()
        );
    }
}
