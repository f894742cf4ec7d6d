//! The agent's one typed configuration.
//!
//! Sources, later ones win: embedded defaults, the TOML file (`--config`, default
//! `/etc/edge-agent/config.toml` when it exists), then `EDGE_AGENT__SECTION__KEY=value` environment
//! overrides (double underscore separates the path; values are parsed as TOML scalars, falling back to a
//! string).  Unknown keys are an error everywhere (`deny_unknown_fields`), so a typo never silently
//! becomes a default.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// Where the packaged unit looks for its configuration.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/edge-agent/config.toml";
/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "EDGE_AGENT__";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub agent: AgentConfig,
    pub media: MediaConfig,
    pub hw: HwConfig,
    pub ingest: IngestConfig,
    pub swarm: SwarmConfig,
    pub fleet: Option<fleet::DeviceConfig>,
    /// Protocol participation (node, deployment, keystore, automation); absent: the box only transcodes.
    pub chain: Option<chain::ChainConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// State (HLS output, journals) lives here.
    pub data_dir: PathBuf,
    /// Log filter in `tracing` EnvFilter syntax; can be changed live.
    pub log_level: String,
    /// Emit logs as JSON lines (for journald/fleet collection) instead of human text.
    pub log_json: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/var/lib/edge-agent"),
            log_level: "info".into(),
            log_json: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Profile names of the default ladder (standard names or names of `custom_profiles`).
    pub ladder: Vec<String>,
    /// Extra, operator-defined profiles (same fields as the standard ones; `gop` optional).
    pub custom_profiles: Vec<media::profiles::Profile>,
    /// Concurrent streams this box accepts; `0` means "what this box measured for the ladder on its encoder"
    /// (`edge-agent hw --calibrate`, cached per box, encoder and ladder), or the limit of the selected
    /// encoder/board where it has not measured.
    pub max_sessions: u32,
    /// Target segment duration of the HLS output, seconds (used by file/test-source inputs).
    pub segment_seconds: f64,
    /// Number of segments kept in a live media playlist.
    pub playlist_window: usize,
    /// How a live stream's segments follow each other in the encoders: `continuous` (they run on from
    /// segment to segment; one engine per stream), `restart` (they restart at every segment) or `lookahead`
    /// (they run on with their lookahead and B-frames: each segment waits for the next one's first frames,
    /// at most a second, before its renditions are out; for streams whose segments come faster than real
    /// time, such as a backlog). Jobs that ask for bit-exact verification always restart.
    pub segment_mode: media::engine::SegmentMode,
    /// With `max_sessions = 0`: when this box has no calibration for its ladder and encoder yet, measure it
    /// at start (about a minute of CPU beside the first streams; `edge-agent hw --calibrate` does it ahead).
    pub calibrate_at_start: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            ladder: vec![
                "P720p30fps16x9".into(),
                "P360p30fps16x9".into(),
                "P240p30fps16x9".into(),
            ],
            custom_profiles: Vec::new(),
            max_sessions: 0,
            segment_seconds: 2.0,
            playlist_window: 6,
            segment_mode: media::engine::SegmentMode::Continuous,
            calibrate_at_start: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HwConfig {
    /// Board profile name, or `auto` to detect.
    pub board: String,
    /// Extra board profile directory (TOML files) that overrides the embedded ones.
    pub boards_dir: Option<PathBuf>,
    /// Force the software encoder even when an accelerator is present.
    pub force_software: bool,
}

impl Default for HwConfig {
    fn default() -> Self {
        Self {
            board: "auto".into(),
            boards_dir: None,
            force_software: false,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// HTTP listen address for segment ingest, HLS serving, health and metrics; empty disables it.
    pub listen: String,
    /// Largest accepted input segment, bytes.
    pub max_segment_bytes: usize,
    /// Connections served at once; more wait in the kernel's accept queue.  With `max_segment_bytes`, this
    /// bounds the memory bodies being received can take.
    pub max_connections: usize,
    /// Bytes of segments one stream may have received and not yet transcoded (its queue); more is 429.
    pub max_stream_queue_bytes: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8935".into(),
            max_segment_bytes: 64 << 20,
            max_connections: 32,
            max_stream_queue_bytes: 128 << 20,
        }
    }
}

/// PPSPP live swarms: the broadcasters' swarms the box reads jobs from, and the rendition swarms it
/// publishes for viewers (one UDP socket each).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SwarmConfig {
    /// Publish every stream's renditions as live swarms (`GET /swarm/{stream}` lists them).
    pub publish: bool,
    /// Address the swarm sockets bind (each on a port of its own).
    pub bind: std::net::IpAddr,
    /// Address peers are told to reach the box at; unset: the host the manifest was asked from.
    pub advertise: Option<std::net::IpAddr>,
    /// Streams read from broadcasters' swarms at once.
    pub max_joined: usize,
    /// A joined broadcaster's swarm that delivers no segment for this long has lost its broadcaster: the
    /// stream is ended (playlists and rendition swarms end cleanly), as if it had sent its end record.
    pub source_idle_s: u64,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        Self {
            publish: true,
            bind: std::net::Ipv4Addr::UNSPECIFIED.into(),
            advertise: None,
            max_joined: 8,
            source_idle_s: 30,
        }
    }
}

impl Config {
    /// Load: embedded defaults, then `path` (if given, it must exist; if not given, the default path is
    /// used when present), then environment overrides from `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        let mut doc = toml::Table::try_from(Config::default()).context("serializing defaults")?;
        let file = match path {
            Some(p) => Some(p.to_path_buf()),
            None => {
                let p = PathBuf::from(DEFAULT_CONFIG_PATH);
                p.exists().then_some(p)
            }
        };
        if let Some(file) = &file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading config {}", file.display()))?;
            let user: toml::Table = toml::from_str(&text)
                .with_context(|| format!("parsing config {}", file.display()))?;
            merge(&mut doc, user);
        }
        for (k, v) in env {
            let Some(rest) = k.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            set_path(&mut doc, &path, parse_scalar(&v)).with_context(|| format!("env {k}"))?;
        }
        let cfg: Config = toml::Value::Table(doc)
            .try_into()
            .context("validating configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.media.ladder.is_empty() {
            bail!("media.ladder is empty: at least one profile is needed");
        }
        if !(0.5..=30.0).contains(&self.media.segment_seconds) {
            bail!(
                "media.segment_seconds = {} is outside 0.5..=30",
                self.media.segment_seconds
            );
        }
        if self.swarm.source_idle_s == 0 {
            bail!("swarm.source_idle_s is 0: every joined stream would end at once");
        }
        if self.ingest.max_connections == 0 {
            bail!("ingest.max_connections is 0: no connection could be served");
        }
        if self.ingest.max_stream_queue_bytes < self.ingest.max_segment_bytes {
            bail!(
                "ingest.max_stream_queue_bytes = {} is below ingest.max_segment_bytes = {}: a segment of the largest size could never be queued",
                self.ingest.max_stream_queue_bytes,
                self.ingest.max_segment_bytes
            );
        }
        let set = self.profile_set()?;
        for name in &self.media.ladder {
            set.by_name(name).context("media.ladder")?;
        }
        tracing_subscriber::EnvFilter::try_new(&self.agent.log_level)
            .with_context(|| format!("agent.log_level = {:?}", self.agent.log_level))?;
        Ok(())
    }
}

impl Config {
    /// The standard profiles plus the configured custom ones.
    pub fn profile_set(&self) -> anyhow::Result<media::profiles::ProfileSet> {
        media::profiles::ProfileSet::with_custom(&self.media.custom_profiles)
            .context("media.custom_profiles")
    }
}

fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn set_path(doc: &mut toml::Table, path: &[String], value: toml::Value) -> anyhow::Result<()> {
    match path {
        [] => bail!("empty key"),
        [last] => {
            doc.insert(last.clone(), value);
            Ok(())
        }
        [head, rest @ ..] => {
            let entry = doc
                .entry(head.clone())
                .or_insert_with(|| toml::Value::Table(Default::default()));
            match entry {
                toml::Value::Table(t) => set_path(t, rest, value),
                _ => bail!("{head} is not a table"),
            }
        }
    }
}

fn parse_scalar(v: &str) -> toml::Value {
    // `key = <v>` parses numbers, booleans, arrays and quoted strings; anything else is a bare string.
    toml::from_str::<toml::Table>(&format!("v = {v}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load_str(text: &str, env: &[(&str, &str)]) -> anyhow::Result<Config> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        Config::load(
            Some(f.path()),
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_are_valid() {
        Config::default().validate().unwrap();
        assert_eq!(load_str("", &[]).unwrap(), Config::default());
    }

    #[test]
    fn example_config_is_the_defaults() {
        let text = include_str!("../config.example.toml");
        assert_eq!(load_str(text, &[]).unwrap(), Config::default());
    }

    #[test]
    fn example_chain_section_is_the_chain_defaults() {
        let text = include_str!("../config.example.toml");
        let start = text.find("# [chain]").expect("a [chain] section");
        let chain: String = text[start..]
            .lines()
            .map(|l| l.strip_prefix("# ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let cfg = load_str(&chain, &[]).unwrap();
        assert_eq!(cfg.chain, Some(chain::ChainConfig::default()));
    }

    #[test]
    fn file_then_env_override() {
        let cfg = load_str(
            "[media]\nmax_sessions = 4\nladder = [\"P360p30fps16x9\"]\n",
            &[
                ("EDGE_AGENT__MEDIA__MAX_SESSIONS", "7"),
                ("EDGE_AGENT__AGENT__LOG_LEVEL", "debug"),
                ("UNRELATED", "x"),
            ],
        )
        .unwrap();
        assert_eq!(cfg.media.max_sessions, 7);
        assert_eq!(cfg.media.ladder, vec!["P360p30fps16x9".to_string()]);
        assert_eq!(cfg.agent.log_level, "debug");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = load_str("[media]\nmax_sesions = 4\n", &[]).unwrap_err();
        assert!(format!("{err:#}").contains("max_sesions"), "{err:#}");
        let err = load_str("", &[("EDGE_AGENT__NOPE__X", "1")]).unwrap_err();
        assert!(format!("{err:#}").contains("nope"), "{err:#}");
    }

    #[test]
    fn invalid_values_are_errors() {
        assert!(load_str("[media]\nladder = []\n", &[]).is_err());
        assert!(load_str("[media]\nsegment_seconds = 0.0\n", &[]).is_err());
        assert!(load_str("[agent]\nlog_level = \"info,[\"\n", &[]).is_err());
        assert!(load_str("[media]\nmax_sessions = \"many\"\n", &[]).is_err());
        assert!(load_str("[media]\nladder = [\"P999p\"]\n", &[]).is_err());
        assert!(load_str("[ingest]\nmax_connections = 0\n", &[]).is_err());
        assert!(
            load_str(
                "[ingest]\nmax_segment_bytes = 2000\nmax_stream_queue_bytes = 1000\n",
                &[]
            )
            .is_err(),
            "a queue that cannot hold one segment"
        );
        let bad_custom = "[[media.custom_profiles]]\nname = \"x\"\nwidth = 0\nheight = 2\nfps = 30\nbitrate_kbps = 1\n";
        assert!(load_str(bad_custom, &[]).is_err());
    }

    #[test]
    fn custom_profiles_join_the_ladder() {
        let cfg = load_str(
            "[media]\nladder = [\"Pfoo\", \"P360p30fps16x9\"]\n[[media.custom_profiles]]\nname = \"Pfoo\"\nwidth = 800\nheight = 450\nfps = 30\nbitrate_kbps = 1800\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            cfg.profile_set().unwrap().by_name("Pfoo").unwrap().width,
            800
        );
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = Config::load(Some(Path::new("/nonexistent/edge.toml")), []).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/edge.toml"));
    }
}
