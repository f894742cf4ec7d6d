//! Video profiles: the standard Livepeer-style ladder, custom profiles from config, and the on-chain
//! `transcodingOptions` encoding (concatenated 4-byte profile IDs, 8 hex characters each).

use serde::{Deserialize, Serialize};
use tiny_keccak::{Hasher, Keccak};

/// One rendition of a ladder: a bounding box, a maximum frame rate and a target bitrate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Profile name; its keccak256 prefix is the on-chain ID.
    pub name: String,
    /// Width of the bounding box in pixels.
    pub width: u32,
    /// Height of the bounding box in pixels.
    pub height: u32,
    /// Maximum frame rate (frames per second); inputs with a lower rate keep theirs.
    pub fps: u32,
    /// Target video bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// Keyframe interval in frames; `None` means one keyframe per segment (the segment start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gop: Option<u32>,
}

/// Errors of profile parsing and validation.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("transcodingOptions {0:?}: length {1} is not a multiple of 8 hex characters")]
    BadLength(String, usize),
    #[error("transcodingOptions {0:?}: not hexadecimal")]
    NotHex(String),
    #[error(
        "unknown profile ID {0} (not in the standard ladder nor in the configured custom profiles)"
    )]
    UnknownId(String),
    #[error("unknown profile name {0:?}")]
    UnknownName(String),
    #[error("profile {name:?}: {why}")]
    Invalid { name: String, why: String },
    #[error("custom profile {0:?} collides with the ID of an existing profile")]
    Duplicate(String),
}

/// The first 4 bytes of keccak256(name).
pub fn profile_id(name: &str) -> [u8; 4] {
    let mut k = Keccak::v256();
    k.update(name.as_bytes());
    let mut out = [0u8; 32];
    k.finalize(&mut out);
    [out[0], out[1], out[2], out[3]]
}

impl Profile {
    /// Build a profile, validating its numbers.
    pub fn new(
        name: &str,
        width: u32,
        height: u32,
        fps: u32,
        bitrate_kbps: u32,
    ) -> Result<Self, ProfileError> {
        let p = Profile {
            name: name.to_string(),
            width,
            height,
            fps,
            bitrate_kbps,
            gop: None,
        };
        p.validate()?;
        Ok(p)
    }

    /// The on-chain ID of this profile.
    pub fn id(&self) -> [u8; 4] {
        profile_id(&self.name)
    }

    /// The ID as 8 lowercase hex characters.
    pub fn id_hex(&self) -> String {
        hex::encode(self.id())
    }

    /// Check that the numbers make sense (non-zero, even box, sane bounds).
    pub fn validate(&self) -> Result<(), ProfileError> {
        let bad = |why: &str| {
            Err(ProfileError::Invalid {
                name: self.name.clone(),
                why: why.to_string(),
            })
        };
        if self.name.is_empty() {
            return bad("empty name");
        }
        if !(16..=8192).contains(&self.width) || !(16..=8192).contains(&self.height) {
            return bad("width and height must be within 16..=8192");
        }
        if !(1..=240).contains(&self.fps) {
            return bad("fps must be within 1..=240");
        }
        if !(16..=200_000).contains(&self.bitrate_kbps) {
            return bad("bitrate_kbps must be within 16..=200000");
        }
        if self.gop == Some(0) {
            return bad("gop must be at least 1 frame");
        }
        Ok(())
    }
}

/// The standard ladder (name, width, height, fps, kbit/s) as the 2018 networks used it.
pub const STANDARD: &[(&str, u32, u32, u32, u32)] = &[
    ("P720p60fps16x9", 1280, 720, 60, 6000),
    ("P720p30fps16x9", 1280, 720, 30, 4000),
    ("P720p25fps16x9", 1280, 720, 25, 3500),
    ("P720p30fps4x3", 960, 720, 30, 3500),
    ("P576p30fps16x9", 1024, 576, 30, 1500),
    ("P576p25fps16x9", 1024, 576, 25, 1500),
    ("P360p30fps16x9", 640, 360, 30, 1200),
    ("P360p25fps16x9", 640, 360, 25, 1000),
    ("P360p30fps4x3", 480, 360, 30, 1000),
    ("P240p30fps16x9", 426, 240, 30, 600),
    ("P240p25fps16x9", 426, 240, 25, 600),
    ("P240p30fps4x3", 320, 240, 30, 600),
    ("P144p30fps16x9", 256, 144, 30, 400),
    ("P144p25fps16x9", 256, 144, 25, 400),
];

/// All standard profiles.
pub fn standard_profiles() -> Vec<Profile> {
    STANDARD
        .iter()
        .map(|&(n, w, h, f, b)| Profile {
            name: n.to_string(),
            width: w,
            height: h,
            fps: f,
            bitrate_kbps: b,
            gop: None,
        })
        .collect()
}

/// A registry of known profiles: the standard ladder plus custom ones from config.
#[derive(Debug, Clone)]
pub struct ProfileSet {
    profiles: Vec<Profile>,
}

impl Default for ProfileSet {
    fn default() -> Self {
        ProfileSet {
            profiles: standard_profiles(),
        }
    }
}

impl ProfileSet {
    /// Standard ladder plus `custom` (validated; an ID collision is an error).
    pub fn with_custom(custom: &[Profile]) -> Result<Self, ProfileError> {
        let mut set = ProfileSet::default();
        for p in custom {
            p.validate()?;
            if set.profiles.iter().any(|q| q.id() == p.id()) {
                return Err(ProfileError::Duplicate(p.name.clone()));
            }
            set.profiles.push(p.clone());
        }
        Ok(set)
    }

    /// All known profiles.
    pub fn all(&self) -> &[Profile] {
        &self.profiles
    }

    /// Look a profile up by name.
    pub fn by_name(&self, name: &str) -> Result<&Profile, ProfileError> {
        self.profiles
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| ProfileError::UnknownName(name.to_string()))
    }

    /// Look a profile up by ID.
    pub fn by_id(&self, id: [u8; 4]) -> Result<&Profile, ProfileError> {
        self.profiles
            .iter()
            .find(|p| p.id() == id)
            .ok_or_else(|| ProfileError::UnknownId(hex::encode(id)))
    }

    /// Parse a job's transcodingOptions (concatenated 8-hex-character IDs, optional `0x`).
    pub fn parse_options(&self, options: &str) -> Result<Vec<Profile>, ProfileError> {
        let s = options.trim();
        let s = s.strip_prefix("0x").unwrap_or(s);
        if s.len() % 8 != 0 || s.is_empty() {
            return Err(ProfileError::BadLength(options.to_string(), s.len()));
        }
        let bytes = hex::decode(s).map_err(|_| ProfileError::NotHex(options.to_string()))?;
        bytes
            .chunks(4)
            .map(|c| self.by_id([c[0], c[1], c[2], c[3]]).cloned())
            .collect()
    }
}

/// Format a ladder as transcodingOptions (lowercase hex, no prefix).
pub fn format_options(profiles: &[Profile]) -> String {
    profiles.iter().map(Profile::id_hex).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden vectors: the IDs from the protocol table (../shared/notes/protocol-facts.md).
    const GOLDEN: &[(&str, &str)] = &[
        ("P720p60fps16x9", "a7ac137a"),
        ("P720p30fps16x9", "49d54ea9"),
        ("P720p25fps16x9", "e4a64019"),
        ("P720p30fps4x3", "79332fe7"),
        ("P576p30fps16x9", "5ecf4b52"),
        ("P576p25fps16x9", "8b1843d6"),
        ("P360p30fps16x9", "93c717e7"),
        ("P360p25fps16x9", "7cd40fc7"),
        ("P360p30fps4x3", "b60382a0"),
        ("P240p30fps16x9", "c0a6517a"),
        ("P240p25fps16x9", "1301a7d0"),
        ("P240p30fps4x3", "d435c53a"),
        ("P144p30fps16x9", "fca40bf9"),
        ("P144p25fps16x9", "03f01d1f"),
    ];

    #[test]
    fn golden_ids() {
        assert_eq!(GOLDEN.len(), STANDARD.len());
        for (name, id) in GOLDEN {
            assert_eq!(hex::encode(profile_id(name)), *id, "{name}");
        }
        for p in standard_profiles() {
            p.validate().unwrap();
        }
    }

    #[test]
    fn parse_and_format_options() {
        let set = ProfileSet::default();
        let ps = set.parse_options("49d54ea993c717e7c0a6517a").unwrap();
        let names: Vec<_> = ps.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["P720p30fps16x9", "P360p30fps16x9", "P240p30fps16x9"]
        );
        assert_eq!(ps[0].width, 1280);
        assert_eq!(ps[0].bitrate_kbps, 4000);
        assert_eq!(format_options(&ps), "49d54ea993c717e7c0a6517a");
        assert_eq!(
            set.parse_options("0x49D54EA9").unwrap()[0].name,
            "P720p30fps16x9"
        );
    }

    #[test]
    fn bad_options_are_clear_errors() {
        let set = ProfileSet::default();
        assert_eq!(
            set.parse_options("49d54e").unwrap_err(),
            ProfileError::BadLength("49d54e".into(), 6)
        );
        assert_eq!(
            set.parse_options("").unwrap_err(),
            ProfileError::BadLength("".into(), 0)
        );
        assert_eq!(
            set.parse_options("zzzzzzzz").unwrap_err(),
            ProfileError::NotHex("zzzzzzzz".into())
        );
        assert_eq!(
            set.parse_options("deadbeef").unwrap_err(),
            ProfileError::UnknownId("deadbeef".into())
        );
    }

    #[test]
    fn custom_profiles_from_toml() {
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Cfg {
            profiles: Vec<Profile>,
        }
        let cfg: Cfg = toml::from_str(
            r#"
            [[profiles]]
            name = "Box540p30"
            width = 960
            height = 540
            fps = 30
            bitrate_kbps = 2000
            gop = 60
            "#,
        )
        .unwrap();
        let set = ProfileSet::with_custom(&cfg.profiles).unwrap();
        let id = cfg.profiles[0].id_hex();
        let parsed = set.parse_options(&format!("49d54ea9{id}")).unwrap();
        assert_eq!(parsed[1].name, "Box540p30");
        assert_eq!(parsed[1].gop, Some(60));
        // unknown fields are rejected
        let err = toml::from_str::<Cfg>(
            "[[profiles]]\nname='x'\nwidth=2\nheight=2\nfps=1\nbitrate_kbps=1\ncolour='red'\n",
        );
        assert!(err.unwrap_err().to_string().contains("colour"));
        // invalid numbers are rejected with the profile name
        let bad = Profile {
            name: "Tiny".into(),
            width: 2,
            height: 2,
            fps: 30,
            bitrate_kbps: 100,
            gop: None,
        };
        assert!(matches!(
            ProfileSet::with_custom(&[bad]),
            Err(ProfileError::Invalid { .. })
        ));
        // a custom profile may not reuse a standard name (same ID)
        let dup = standard_profiles()[0].clone();
        assert_eq!(
            ProfileSet::with_custom(&[dup]).unwrap_err(),
            ProfileError::Duplicate("P720p60fps16x9".into())
        );
    }
}
