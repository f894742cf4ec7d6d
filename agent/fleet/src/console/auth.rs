//! Operator logins for the console: a password file of `user:argon2id-PHC-hash` lines (`#` comments), and
//! HTTP Basic credentials checked against it.  Argon2 is slow on purpose; a check that passed is
//! remembered for [`REMEMBER`] (as a SHA-256 of the credentials under a random per-process key), so a
//! scraper or script sending the same header every few seconds does not pay it each time.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use sha2::{Digest, Sha256};

use super::ConsoleError;

/// How long a verified credential is taken without running Argon2 again.
pub const REMEMBER: Duration = Duration::from_secs(60);

fn valid_user(u: &str) -> bool {
    !u.is_empty()
        && u.len() <= 64
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
}

/// Parses a password file.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>, ConsoleError> {
    let mut users = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |why: &str| ConsoleError::Passwords(format!("line {}: {why}", n + 1));
        let (u, h) = line.split_once(':').ok_or_else(|| bad("not user:hash"))?;
        if !valid_user(u) {
            return Err(bad("bad user name"));
        }
        PasswordHash::new(h).map_err(|_| bad("not a PHC password hash"))?;
        users.insert(u.to_string(), h.to_string());
    }
    Ok(users)
}

/// Adds or replaces `user` in the password file at `path` (created if missing; written atomically, 0600).
pub fn add_user(path: &Path, user: &str, password: &str) -> Result<(), ConsoleError> {
    if !valid_user(user) {
        return Err(ConsoleError::Passwords(format!(
            "`{user}` is not a valid user name (1-64 of [A-Za-z0-9-_.@])"
        )));
    }
    if password.len() < 8 {
        return Err(ConsoleError::Passwords(
            "password shorter than 8 characters".into(),
        ));
    }
    let mut users = match std::fs::read_to_string(path) {
        Ok(t) => parse(&t)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(ConsoleError::Io(path.display().to_string(), e)),
    };
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| ConsoleError::Passwords(e.to_string()))?
        .to_string();
    users.insert(user.to_string(), hash);
    let mut text = String::from("# edge-fleet serve operators: user:argon2id hash\n");
    for (u, h) in &users {
        text.push_str(&format!("{u}:{h}\n"));
    }
    super::store::write_atomic(path, text.as_bytes(), true)
}

pub struct Passwords {
    users: BTreeMap<String, String>,
    key: [u8; 32],
    remembered: Mutex<BTreeMap<[u8; 32], Instant>>,
}

impl Passwords {
    pub fn load(path: &Path) -> Result<Passwords, ConsoleError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConsoleError::Io(path.display().to_string(), e))?;
        let users = parse(&text)?;
        if users.is_empty() {
            return Err(ConsoleError::Passwords(format!(
                "{} has no users (add one with `edge-fleet passwd`)",
                path.display()
            )));
        }
        Ok(Passwords {
            users,
            key: rand::random(),
            remembered: Mutex::new(BTreeMap::new()),
        })
    }

    /// The user an `Authorization: Basic ...` header value authenticates, if any.
    pub fn check_basic(&self, header: &str) -> Option<String> {
        let b64 = header.strip_prefix("Basic ")?.trim();
        let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        let raw = String::from_utf8(raw).ok()?;
        let (user, password) = raw.split_once(':')?;
        let hash = self.users.get(user)?;
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(raw.as_bytes());
        let tag: [u8; 32] = h.finalize().into();
        let now = Instant::now();
        {
            let mut m = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
            m.retain(|_, t| *t > now);
            if m.contains_key(&tag) {
                return Some(user.to_string());
            }
        }
        let parsed = PasswordHash::new(hash).ok()?;
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .ok()?;
        let mut m = self.remembered.lock().unwrap_or_else(|e| e.into_inner());
        if m.len() < 1024 {
            m.insert(tag, now + REMEMBER);
        }
        Some(user.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(u: &str, p: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    #[test]
    fn add_check_and_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("passwords");
        add_user(&f, "alice", "correct horse").unwrap();
        add_user(&f, "bob", "battery staple").unwrap();
        add_user(&f, "alice", "new password").unwrap();
        assert!(add_user(&f, "a:b", "whatever123").is_err());
        assert!(add_user(&f, "carol", "short").is_err());
        let p = Passwords::load(&f).unwrap();
        assert_eq!(
            p.check_basic(&basic("alice", "new password")).as_deref(),
            Some("alice")
        );
        assert_eq!(
            p.check_basic(&basic("alice", "new password")).as_deref(),
            Some("alice")
        );
        assert_eq!(p.check_basic(&basic("alice", "correct horse")), None);
        assert_eq!(
            p.check_basic(&basic("bob", "battery staple")).as_deref(),
            Some("bob")
        );
        assert_eq!(p.check_basic(&basic("mallory", "battery staple")), None);
        assert_eq!(p.check_basic("Bearer x"), None);
        assert_eq!(p.check_basic("Basic !!!"), None);
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(!text.contains("new password") && text.contains("$argon2id$"));
        assert!(parse("x:notahash").is_err());
    }
}
