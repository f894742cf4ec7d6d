//! Rollouts on disk: one JSON file (`rollouts.json` in the state directory), replaced atomically (temp
//! file, fsync, rename, fsync of the directory) after every change, so `edge-fleet serve` picks its
//! rollouts up where they were after a restart or a crash.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConsoleError;
use super::rollout::Rollout;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    rollouts: Vec<Rollout>,
}

/// Writes `data` to `path` so readers see the old or the new content, never a mix.
pub fn write_atomic(path: &Path, data: &[u8], secret: bool) -> Result<(), ConsoleError> {
    let io = |e| ConsoleError::Io(path.display().to_string(), e);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("state")
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn new(state_dir: &Path) -> Result<Store, ConsoleError> {
        std::fs::create_dir_all(state_dir)
            .map_err(|e| ConsoleError::Io(state_dir.display().to_string(), e))?;
        Ok(Store {
            path: state_dir.join("rollouts.json"),
        })
    }

    pub fn load(&self) -> Result<Vec<Rollout>, ConsoleError> {
        match std::fs::read(&self.path) {
            Ok(b) => serde_json::from_slice::<File>(&b)
                .map(|f| f.rollouts)
                .map_err(|e| ConsoleError::State(format!("{}: {e}", self.path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(ConsoleError::Io(self.path.display().to_string(), e)),
        }
    }

    pub fn save(&self, rollouts: &[Rollout]) -> Result<(), ConsoleError> {
        let f = File {
            rollouts: rollouts.to_vec(),
        };
        let data = serde_json::to_vec_pretty(&f).map_err(|e| ConsoleError::State(e.to_string()))?;
        write_atomic(&self.path, &data, false)
    }
}
