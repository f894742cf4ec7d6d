//! The box's key: one Web3 Secret Storage (v3, scrypt) keystore file, opened with a password that comes from a
//! file, an environment variable or a systemd credential. The password is held in a zeroizing buffer only
//! while the keystore is decrypted; the key lives inside the ethers-signers wallet, whose `Debug` shows the
//! address only. Nothing here logs or formats either of them.

use std::path::{Path, PathBuf};

use ethers_core::types::Address;
use ethers_signers::{LocalWallet, Signer};
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "wrong password for keystore {path} (the keystore's MAC does not match): check the password source"
    )]
    WrongPassword { path: String },
    #[error("reading keystore {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("writing keystore in {dir}: {reason}")]
    Write { dir: String, reason: String },
    #[error("keystore {0} already exists: refusing to overwrite a key")]
    Exists(String),
    #[error("no password: {0}")]
    NoPassword(String),
    #[error("the private key to import is not 32 bytes of hex")]
    BadKey,
}

/// Where the keystore password comes from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum PasswordSource {
    /// A file holding the password (one trailing newline is ignored).
    File(PathBuf),
    /// An environment variable holding the password.
    Env(String),
    /// A systemd credential (`LoadCredential=`/`LoadCredentialEncrypted=`): `$CREDENTIALS_DIRECTORY/<name>`.
    Credential(String),
}

impl PasswordSource {
    /// Reads the password. The value is returned in a buffer that is wiped when dropped.
    pub fn read(&self) -> Result<Zeroizing<String>, KeyError> {
        let from_file = |p: &Path| -> Result<Zeroizing<String>, KeyError> {
            let raw = Zeroizing::new(std::fs::read(p).map_err(|e| {
                KeyError::NoPassword(format!("password file {}: {e}", p.display()))
            })?);
            let mut s = Zeroizing::new(
                String::from_utf8(raw.to_vec())
                    .map_err(|_| KeyError::NoPassword(format!("{} is not UTF-8", p.display())))?,
            );
            if s.ends_with('\n') {
                s.pop();
                if s.ends_with('\r') {
                    s.pop();
                }
            }
            Ok(s)
        };
        match self {
            PasswordSource::File(p) => from_file(p),
            PasswordSource::Env(var) => std::env::var(var).map(Zeroizing::new).map_err(|_| {
                KeyError::NoPassword(format!("environment variable {var} is not set"))
            }),
            PasswordSource::Credential(name) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                    KeyError::NoPassword(format!(
                        "systemd credential {name}: $CREDENTIALS_DIRECTORY is not set (is LoadCredential= in the unit?)"
                    ))
                })?;
                from_file(&Path::new(&dir).join(name))
            }
        }
    }
}

/// Decrypts `path` with the password from `source`; the wallet is bound to `chain_id`.
pub fn open(path: &Path, source: &PasswordSource, chain_id: u64) -> Result<LocalWallet, KeyError> {
    let password = source.read()?;
    decrypt(path, &password, chain_id)
}

pub fn decrypt(path: &Path, password: &str, chain_id: u64) -> Result<LocalWallet, KeyError> {
    let shown = path.display().to_string();
    if !path.exists() {
        return Err(KeyError::Read {
            path: shown,
            reason: "no such file (create one with `edge-agent account new`)".into(),
        });
    }
    match LocalWallet::decrypt_keystore(path, password) {
        Ok(w) => Ok(w.with_chain_id(chain_id)),
        Err(ethers_signers::WalletError::EthKeystoreError(
            eth_keystore::KeystoreError::MacMismatch,
        )) => Err(KeyError::WrongPassword { path: shown }),
        Err(e) => Err(KeyError::Read {
            path: shown,
            reason: e.to_string(),
        }),
    }
}

/// Creates `path` holding a new random key encrypted with `password`; returns its address.
pub fn create(path: &Path, password: &str) -> Result<Address, KeyError> {
    let key = Zeroizing::new(
        ethers_core::k256::ecdsa::SigningKey::random(&mut rand::thread_rng())
            .to_bytes()
            .to_vec(),
    );
    write(path, &key, password)
}

/// Encrypts an existing private key (hex, with or without 0x) into `path`.
pub fn import(path: &Path, key_hex: &str, password: &str) -> Result<Address, KeyError> {
    let key = Zeroizing::new(
        hex::decode(key_hex.trim().trim_start_matches("0x")).map_err(|_| KeyError::BadKey)?,
    );
    if key.len() != 32 {
        return Err(KeyError::BadKey);
    }
    write(path, &key, password)
}

fn write(path: &Path, key: &[u8], password: &str) -> Result<Address, KeyError> {
    if path.exists() {
        return Err(KeyError::Exists(path.display().to_string()));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| KeyError::Write {
            dir: dir.display().to_string(),
            reason: "keystore path has no file name".into(),
        })?;
    let werr = |reason: String| KeyError::Write {
        dir: dir.display().to_string(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| werr(e.to_string()))?;
    eth_keystore::encrypt_key(dir, &mut rand::thread_rng(), key, password, Some(name))
        .map_err(|e| werr(e.to_string()))?;
    restrict(path).map_err(|e| werr(e.to_string()))?;
    let wallet = LocalWallet::from_bytes(key).map_err(|_| KeyError::BadKey)?;
    Ok(wallet.address())
}

/// The keystore is readable by its owner only.
fn restrict(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// The address a keystore file declares (without decrypting it), if it declares one.
pub fn address_of(path: &Path) -> Result<Option<Address>, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|e| KeyError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| KeyError::Read {
        path: path.display().to_string(),
        reason: format!("not a keystore: {e}"),
    })?;
    Ok(v.get("address")
        .and_then(|a| a.as_str())
        .and_then(|a| a.trim_start_matches("0x").parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_open_import_and_wrong_password() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.json");
        let addr = create(&p, "correct horse").unwrap();
        let w = decrypt(&p, "correct horse", 31337).unwrap();
        assert_eq!(w.address(), addr);
        assert_eq!(w.chain_id(), 31337);
        let e = decrypt(&p, "wrong", 1).unwrap_err();
        assert!(matches!(e, KeyError::WrongPassword { .. }), "{e}");
        assert!(e.to_string().contains("wrong password"));
        assert!(matches!(create(&p, "x"), Err(KeyError::Exists(_))));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );

        // anvil's first dev key
        let q = dir.path().join("dev.json");
        let a = import(
            &q,
            "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
            "pw",
        )
        .unwrap();
        assert_eq!(
            format!("{a:?}"),
            "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
        );
        assert_eq!(decrypt(&q, "pw", 1).unwrap().address(), a);
        assert!(matches!(
            import(&dir.path().join("b.json"), "abcd", "pw"),
            Err(KeyError::BadKey)
        ));
        // the wallet's Debug never shows the key
        let shown = format!("{:?}", decrypt(&q, "pw", 1).unwrap());
        assert!(!shown.contains("ac0974be"), "{shown}");
    }

    #[test]
    fn password_sources() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        assert_eq!(&*PasswordSource::File(f.clone()).read().unwrap(), "s3cret");
        let e = PasswordSource::Env("EDGE_AGENT_TEST_NO_SUCH_VAR".into())
            .read()
            .unwrap_err();
        assert!(e.to_string().contains("EDGE_AGENT_TEST_NO_SUCH_VAR"));
        let e = PasswordSource::File(dir.path().join("missing"))
            .read()
            .unwrap_err();
        assert!(e.to_string().contains("password file"));
    }
}
